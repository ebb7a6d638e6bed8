//! Deserialization that finds every structural problem, not only the first.
//!
//! serde stops at the first error. Each error toml reports carries the span
//! of the key or value at fault, so the node holding that span is recorded
//! and removed from the parsed tree, and deserialization runs again: every
//! run either succeeds or removes one node, so it ends. With every field
//! defaulted, a removed key just takes its default for the checks that
//! follow, which therefore never report on a value already reported.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A problem at a byte span of the file.
#[derive(Debug)]
pub(crate) struct Problem {
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl Problem {
    pub fn at(span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem {
            span: Some(span),
            message: message.into(),
        }
    }
}

/// `T` from `text`, with every problem found. After a syntax error only the
/// syntax errors are reported: the recovered tree would produce noise.
pub(super) fn deserialize<T: DeserializeOwned + Default>(text: &str) -> (T, Vec<Problem>) {
    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let problems = syntax
            .into_iter()
            .map(|e| Problem {
                span: e.span(),
                message: e.message().to_owned(),
            })
            .collect();
        return (T::default(), problems);
    }
    let mut problems = Vec::new();
    loop {
        let error = match T::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(value) => return (value, problems),
            Err(error) => error,
        };
        let span = error.span();
        let mut path = Vec::new();
        let found = span
            .as_ref()
            .is_some_and(|s| locate(root.get_ref(), s, &mut path));
        // The same error twice means the removal did not take: stop rather
        // than loop.
        let repeated = problems.last().is_some_and(|p: &Problem| p.span == span);
        if !found || repeated {
            // Nothing to cut out: report it and give up on the rest.
            problems.push(Problem {
                span,
                message: error.message().to_owned(),
            });
            return (T::default(), problems);
        }
        problems.push(Problem {
            span,
            message: format!("{}: {}", render(&path), error.message()),
        });
        remove(root.get_mut(), &path);
    }
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Dotted key path, without array indexes: those shift as elements are
/// removed, and the line and column say which element anyway.
fn render(path: &[Seg]) -> String {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    keys.join(".")
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Finds the deepest key or array element whose key or value covers `span`,
/// leaving its path in `path`.
fn locate(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        if locate_in(value, span, path)
            || contains(&key.span(), span)
            || contains(&value.span(), span)
        {
            return true;
        }
        path.pop();
    }
    false
}

/// Whether something strictly inside `value` covers `span`.
fn locate_in(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => locate(table, span, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                if locate_in(item, span, path) || contains(&item.span(), span) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

fn remove(table: &mut DeTable<'_>, path: &[Seg]) {
    match path {
        [Seg::Key(key)] => {
            table.remove(key.as_str());
        }
        [Seg::Key(key), rest @ ..] => {
            if let Some(value) = table.get_mut(key.as_str()) {
                remove_in(value.get_mut(), rest);
            }
        }
        _ => {}
    }
}

fn remove_in(value: &mut DeValue<'_>, path: &[Seg]) {
    match (value, path) {
        (DeValue::Table(table), _) => remove(table, path),
        (DeValue::Array(items), [Seg::Index(i)]) => {
            *items = items
                .iter()
                .enumerate()
                .filter(|(j, _)| j != i)
                .map(|(_, item)| item.clone())
                .collect();
        }
        (DeValue::Array(items), [Seg::Index(i), rest @ ..]) => {
            if let Some(item) = items.get_mut(*i) {
                remove_in(item.get_mut(), rest);
            }
        }
        _ => {}
    }
}
