//! The parts of a log line that `search` and `report` look at, borrowed
//! from the line: serde_json skips every other field, and strings without
//! escapes are not copied.

use std::borrow::Cow;

use serde::Deserialize;

use crate::output::text::{AlertText, LostText, RenameText, SummaryText, TextLine};

#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    #[serde(rename = "@timestamp", borrow)]
    pub timestamp: Cow<'a, str>,
    #[serde(borrow)]
    pub event: EventPart<'a>,
    #[serde(default, borrow)]
    pub host: Option<HostPart<'a>>,
    #[serde(default, borrow)]
    pub process: Option<ProcessPart<'a>>,
    #[serde(default, borrow)]
    pub rename: Option<RenamePart<'a>>,
    #[serde(default, borrow)]
    pub summary: Option<SummaryPart<'a>>,
    #[serde(default, borrow)]
    pub lost: Option<LostPart<'a>>,
    #[serde(default, borrow)]
    pub rule: Option<RulePart<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct EventPart<'a> {
    #[serde(borrow)]
    pub action: Cow<'a, str>,
}

/// `host.name`, and `host.hostname`, which lines written before `host.name`
/// existed carry alone.
#[derive(Debug, Default, Deserialize)]
pub struct HostPart<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub hostname: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProcessPart<'a> {
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub name_hex: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub executable: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub executable_hex: Option<Cow<'a, str>>,
    #[serde(default)]
    pub thread: Option<ThreadPart>,
}

#[derive(Debug, Deserialize)]
pub struct ThreadPart {
    pub id: u32,
}

#[derive(Debug, Deserialize)]
pub struct RenamePart<'a> {
    #[serde(borrow)]
    pub old_name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub old_name_hex: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub new_name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub new_name_hex: Option<Cow<'a, str>>,
    pub main_thread: bool,
    #[serde(borrow)]
    pub method: Cow<'a, str>,
    #[serde(borrow)]
    pub writer: WriterPart<'a>,
    #[serde(default, borrow)]
    pub rules: Vec<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct WriterPart<'a> {
    pub pid: u32,
    pub tid: u32,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub name_hex: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct SummaryPart<'a> {
    pub count: u64,
    #[serde(borrow)]
    pub last_name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub last_name_hex: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub class: Cow<'a, str>,
    #[serde(default)]
    pub thread_exited: bool,
}

#[derive(Debug, Deserialize)]
pub struct LostPart<'a> {
    pub count: u64,
    #[serde(borrow)]
    pub class: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct RulePart<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub severity: Cow<'a, str>,
}

/// A name's raw bytes: its `<field>_hex` sibling when present (the text is
/// lossy then), else the text's UTF-8.
pub fn raw<'s>(text: &'s str, hex: Option<&str>) -> Cow<'s, [u8]> {
    if let Some(bytes) = hex.and_then(unhex) {
        return Cow::Owned(bytes);
    }
    Cow::Borrowed(text.as_bytes())
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

impl<'a> Record<'a> {
    pub fn parse(line: &'a [u8]) -> Option<Record<'a>> {
        serde_json::from_slice(line).ok()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.pid)
    }

    pub fn tid(&self) -> Option<u32> {
        self.process
            .as_ref()
            .and_then(|p| p.thread.as_ref())
            .map(|t| t.id)
    }

    /// `host.name`, else (older lines) `host.hostname`.
    pub fn host_name(&self) -> Option<&str> {
        let h = self.host.as_ref()?;
        h.name.as_deref().or(h.hostname.as_deref())
    }

    pub fn executable(&self) -> Option<Cow<'_, [u8]>> {
        let p = self.process.as_ref()?;
        let exe = p.executable.as_deref()?;
        Some(raw(exe, p.executable_hex.as_deref()))
    }

    pub fn old_name(&self) -> Option<Cow<'_, [u8]>> {
        let r = self.rename.as_ref()?;
        Some(raw(&r.old_name, r.old_name_hex.as_deref()))
    }

    pub fn new_name(&self) -> Option<Cow<'_, [u8]>> {
        let r = self.rename.as_ref()?;
        Some(raw(&r.new_name, r.new_name_hex.as_deref()))
    }

    pub fn last_name(&self) -> Option<Cow<'_, [u8]>> {
        let s = self.summary.as_ref()?;
        Some(raw(&s.last_name, s.last_name_hex.as_deref()))
    }

    /// The process name, for tables (raw bytes).
    pub fn process_name(&self) -> Option<Cow<'_, [u8]>> {
        let p = self.process.as_ref()?;
        let name = p.name.as_deref()?;
        Some(raw(name, p.name_hex.as_deref()))
    }

    /// Every rule that matched: `rename.rules`, or `rule.id` in logs written
    /// before that field existed.
    pub fn rules(&self) -> Vec<&str> {
        match (&self.rename, &self.rule) {
            (Some(r), _) if !r.rules.is_empty() => r.rules.iter().map(|s| &**s).collect(),
            (_, Some(rule)) => vec![&*rule.id],
            _ => Vec::new(),
        }
    }

    /// The readable line of this record.
    pub fn text(&self) -> TextLine<'_> {
        TextLine {
            timestamp: Cow::Borrowed(&*self.timestamp),
            action: Cow::Borrowed(&*self.event.action),
            pid: self.pid(),
            tid: self.tid(),
            executable: self.executable(),
            rename: self.rename.as_ref().map(|r| RenameText {
                old_name: raw(&r.old_name, r.old_name_hex.as_deref()),
                new_name: raw(&r.new_name, r.new_name_hex.as_deref()),
                method: Cow::Borrowed(&*r.method),
                writer_pid: r.writer.pid,
                writer_tid: r.writer.tid,
                writer_name: raw(&r.writer.name, r.writer.name_hex.as_deref()),
            }),
            summary: self.summary.as_ref().map(|s| SummaryText {
                count: s.count,
                last_name: raw(&s.last_name, s.last_name_hex.as_deref()),
                class: Cow::Borrowed(&*s.class),
                thread_exited: s.thread_exited,
            }),
            lost: self.lost.as_ref().map(|l| LostText {
                count: l.count,
                class: Cow::Borrowed(&*l.class),
            }),
            alert: self.rule.as_ref().map(|rule| AlertText {
                rule_id: Cow::Borrowed(&*rule.id),
                severity: Cow::Borrowed(&*rule.severity),
                matched: self.rules().into_iter().map(Cow::Borrowed).collect(),
            }),
        }
    }
}
