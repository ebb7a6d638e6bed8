//! Configuration errors, placed by line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use super::collect::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The OS error is the `source` and not part of the message, so that a
    // caller printing the chain prints it once.
    #[error("{}: cannot read the configuration", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: the configuration is larger than {} KiB; is this the right file?",
        path.display(),
        super::MAX_FILE_BYTES / 1024
    )]
    TooLarge { path: PathBuf },
    /// A FIFO, socket, device or directory: refused unopened, since reading
    /// one could block or never end.
    #[error(
        "{}: is {kind}, not a regular file; the configuration must be a regular file \
         (replace it, or point --config at one)",
        path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    /// A command-line flag failed the same check as its key in the file.
    #[error("--{flag}: {problem}")]
    Flag { flag: &'static str, problem: String },
    /// One `path:line:col: message` line per problem, in file order.
    #[error("{}", render(path, diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    pub(super) fn invalid(path: &Path, text: &str, problems: Vec<Problem>) -> ConfigError {
        let mut diagnostics: Vec<Diagnostic> = problems
            .into_iter()
            .map(|p| {
                let (line, column) = p.span.map_or((1, 1), |s| line_col(text, s.start));
                Diagnostic {
                    line,
                    column,
                    message: one_line(&p.message),
                }
            })
            .collect();
        diagnostics.sort();
        diagnostics.dedup();
        ConfigError::Invalid {
            path: path.to_owned(),
            diagnostics,
        }
    }

    /// The problems found in the file; empty when it could not be read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. }
            | ConfigError::TooLarge { .. }
            | ConfigError::NotRegular { .. }
            | ConfigError::Flag { .. } => &[],
            ConfigError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// One line, naming the key.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

fn render(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let path = path.display();
    diagnostics
        .iter()
        .map(|d| format!("{path}:{d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1-based line and character column of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// Messages can quote the file's strings, which may hold escaped newlines or
/// terminal escapes: keep every diagnostic on its line.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        // The one escape rule of everything printed to a terminal
        // (`output::text::escape_into`): a quoted key or value from the
        // file may hold controls, separators and bidi controls.
        if c.is_control() || crate::output::text::is_disguising(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_terminal_safe_line() {
        assert_eq!(
            one_line("unknown variant `x\u{1b}[31m\u{9b}\u{202e}\u{2066}\n`"),
            "unknown variant `x\\u{1b}[31m\\u{9b}\\u{202e}\\u{2066}\\n`"
        );
    }

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // "é" is two bytes but one column.
        assert_eq!(line_col(text, 11), (2, 5));
        assert_eq!(line_col(text, text.len()), (3, 1));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn messages_are_kept_on_one_line() {
        assert_eq!(one_line("bad `a\nb\u{1b}`"), "bad `a\\nb\\u{1b}`");
    }
}
