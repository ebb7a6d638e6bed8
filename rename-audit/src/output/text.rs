//! The readable line: one event on one line for a person at a terminal
//! (`run --format text`, and what `search` prints by default).
//!
//! ```text
//! 2026-11-23T12:55:34.361593Z process-renamed 14096/14096 "rn" → "sshd" prctl by 14096/14096 "rn" exe /tmp/rn ALERT high writable-path-stomp (+process-renamed)
//! ```
//!
//! Every name, path and word taken from an event goes through
//! [`escape_into`]: control bytes, DEL, C1 controls, line and paragraph
//! separators and bidi controls are written as escapes and bytes that are
//! not UTF-8 as `\xNN`, so a name can neither end the line nor move the
//! cursor, recolour or reorder what a terminal shows. Colour (ANSI SGR, via
//! anstyle) is only added when the caller says the output is a terminal.

use std::borrow::Cow;
use std::io::Write as _;

use anstyle::{AnsiColor, Style};

use crate::event::{Body, Event};

/// What a readable line shows; borrowed from an [`Event`] in the daemon or
/// from a parsed log line in `search`.
#[derive(Debug, Default)]
pub struct TextLine<'a> {
    /// RFC 3339 UTC.
    pub timestamp: Cow<'a, str>,
    /// `event.action`.
    pub action: Cow<'a, str>,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub executable: Option<Cow<'a, [u8]>>,
    pub rename: Option<RenameText<'a>>,
    pub summary: Option<SummaryText<'a>>,
    pub lost: Option<LostText<'a>>,
    pub alert: Option<AlertText<'a>>,
}

#[derive(Debug, Default)]
pub struct RenameText<'a> {
    pub old_name: Cow<'a, [u8]>,
    pub new_name: Cow<'a, [u8]>,
    pub method: Cow<'a, str>,
    pub writer_pid: u32,
    pub writer_tid: u32,
    pub writer_name: Cow<'a, [u8]>,
}

#[derive(Debug, Default)]
pub struct SummaryText<'a> {
    pub count: u64,
    pub last_name: Cow<'a, [u8]>,
    pub class: Cow<'a, str>,
    pub thread_exited: bool,
}

#[derive(Debug, Default)]
pub struct LostText<'a> {
    pub count: u64,
    pub class: Cow<'a, str>,
}

#[derive(Debug, Default)]
pub struct AlertText<'a> {
    pub rule_id: Cow<'a, str>,
    pub severity: Cow<'a, str>,
    /// Every matched rule, `rule_id` first.
    pub matched: Vec<Cow<'a, str>>,
}

/// Appends exactly one readable line for `ev` (and `'\n'`) to `out`.
pub fn write_text_line(ev: &Event, out: &mut Vec<u8>, color: bool) {
    TextLine::of(ev).write(out, color);
}

impl<'a> TextLine<'a> {
    pub fn of(ev: &'a Event) -> TextLine<'a> {
        let process = ev.process.as_ref();
        let mut line = TextLine {
            timestamp: Cow::Owned(super::encode::rfc3339_micros(ev.timestamp)),
            action: Cow::Borrowed(ev.body.action()),
            pid: process.map(|p| p.pid),
            executable: process
                .and_then(|p| p.executable.as_ref())
                .map(|e| Cow::Borrowed(e.as_bytes())),
            alert: ev.alert.as_ref().map(|a| AlertText {
                rule_id: Cow::Borrowed(a.rule_id),
                severity: Cow::Borrowed(a.severity.as_str()),
                matched: a.matched.iter().map(|m| Cow::Borrowed(*m)).collect(),
            }),
            ..TextLine::default()
        };
        match &ev.body {
            Body::Rename(r) => {
                line.tid = Some(r.tid);
                line.rename = Some(RenameText {
                    old_name: Cow::Borrowed(r.old_name.as_bytes()),
                    new_name: Cow::Borrowed(r.new_name.as_bytes()),
                    method: Cow::Borrowed(r.method.as_str()),
                    writer_pid: r.writer.pid,
                    writer_tid: r.writer.tid,
                    writer_name: Cow::Borrowed(r.writer.name.as_bytes()),
                });
            }
            Body::Summary(s) => {
                line.tid = Some(s.tid);
                line.summary = Some(SummaryText {
                    count: s.count,
                    last_name: Cow::Borrowed(s.last_name.as_bytes()),
                    class: Cow::Borrowed(s.class.as_str()),
                    thread_exited: s.thread_exited,
                });
            }
            Body::Lost(l) => {
                line.lost = Some(LostText {
                    count: l.count,
                    class: Cow::Borrowed(l.class.as_str()),
                });
            }
            // The process fields say which one; the alert says how.
            Body::Hidden(_) | Body::Found(_) => {}
            // The action says it; the reason is in the JSON line.
            Body::Agent(_) => {}
        }
        line
    }

    /// Appends the line and `'\n'` to `out`; ANSI colours when `color`.
    pub fn write(&self, out: &mut Vec<u8>, color: bool) {
        let paint = Paint(color);
        paint.styled(out, DIM, |out| escape_into(out, self.timestamp.as_bytes()));
        out.push(b' ');
        let action_style = if self.alert.is_some() { BOLD } else { PLAIN };
        paint.styled(out, action_style, |out| {
            escape_into(out, self.action.as_bytes())
        });
        match (self.pid, self.tid) {
            (Some(pid), Some(tid)) => {
                let _ = write!(out, " {pid}/{tid}");
            }
            (Some(pid), None) => {
                let _ = write!(out, " {pid}");
            }
            (None, Some(tid)) => {
                let _ = write!(out, " ?/{tid}");
            }
            (None, None) => {}
        }
        if let Some(r) = &self.rename {
            out.push(b' ');
            quoted(out, &r.old_name);
            out.extend_from_slice(" → ".as_bytes());
            paint.styled(out, BOLD, |out| quoted(out, &r.new_name));
            out.push(b' ');
            escape_into(out, r.method.as_bytes());
            let _ = write!(out, " by {}/{} ", r.writer_pid, r.writer_tid);
            quoted(out, &r.writer_name);
        }
        if let Some(s) = &self.summary {
            let _ = write!(out, " {} renames, last ", s.count);
            quoted(out, &s.last_name);
            out.extend_from_slice(b" (");
            escape_into(out, s.class.as_bytes());
            if s.thread_exited {
                out.extend_from_slice(b", thread exited");
            }
            out.push(b')');
        }
        if let Some(l) = &self.lost {
            let _ = write!(out, " {} ", l.count);
            escape_into(out, l.class.as_bytes());
            out.extend_from_slice(b" records lost");
        }
        if let Some(exe) = &self.executable {
            out.extend_from_slice(b" exe ");
            escape_into(out, exe);
        }
        if let Some(a) = &self.alert {
            out.push(b' ');
            paint.styled(out, severity_style(&a.severity), |out| {
                out.extend_from_slice(b"ALERT ");
                escape_into(out, a.severity.as_bytes());
                out.push(b' ');
                escape_into(out, a.rule_id.as_bytes());
            });
            let others: Vec<&Cow<'_, str>> =
                a.matched.iter().filter(|m| **m != a.rule_id).collect();
            if !others.is_empty() {
                out.extend_from_slice(b" (");
                for (i, m) in others.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.push(b'+');
                    escape_into(out, m.as_bytes());
                }
                out.push(b')');
            }
        }
        out.push(b'\n');
    }
}

const PLAIN: Style = Style::new();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

fn severity_style(severity: &str) -> Style {
    let color = match severity {
        "critical" => {
            return Style::new()
                .bold()
                .fg_color(Some(AnsiColor::Red.into()))
                .invert();
        }
        "high" => AnsiColor::Red,
        "medium" => AnsiColor::Yellow,
        _ => AnsiColor::Cyan,
    };
    Style::new().bold().fg_color(Some(color.into()))
}

/// Writes styles only when colour is on.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn styled(self, out: &mut Vec<u8>, style: Style, body: impl FnOnce(&mut Vec<u8>)) {
        if self.0 && style != PLAIN {
            let _ = write!(out, "{}", style.render());
            body(out);
            let _ = write!(out, "{}", style.render_reset());
        } else {
            body(out);
        }
    }
}

fn quoted(out: &mut Vec<u8>, name: &[u8]) {
    out.push(b'"');
    escape_into(out, name);
    out.push(b'"');
}

/// Characters that are not control characters to Unicode but can still
/// break or disguise a terminal line: line/paragraph separators and the bidi
/// controls (the same set the JSON lines escape).
pub(crate) fn is_disguising(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Appends `bytes` as one-line, terminal-safe text: `\` and `"` are
/// escaped, control characters (C0, DEL, C1), separators and bidi controls
/// become `\n`, `\t`, `\u{1b}`-style escapes, and bytes that are not UTF-8
/// become `\xNN`.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        // Fast path: nothing to escape in plain printable ASCII.
        if valid
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"')
        {
            out.extend_from_slice(valid.as_bytes());
        } else {
            for c in valid.chars() {
                match c {
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '"' => out.extend_from_slice(b"\\\""),
                    c if c.is_control() || is_disguising(c) => {
                        let _ = write!(out, "{}", c.escape_default());
                    }
                    c => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::event::{
        Alert, Class, Lost, LostReason, Method, ProcessContext, Rename, Severity, Summary, Writer,
    };
    use crate::names::Name;

    fn rename(new: &[u8]) -> Event {
        Event {
            sequence: 1,
            timestamp: datetime!(2026-11-23 12:55:34.361593 UTC),
            host: Arc::from("h"),
            process: Some(ProcessContext {
                pid: 14096,
                name: Name::new(new),
                executable: Some(Name::from("/tmp/rn")),
                ..ProcessContext::default()
            }),
            body: Body::Rename(Rename {
                tid: 14097,
                old_name: Name::from("rn"),
                new_name: Name::new(new),
                main_thread: false,
                method: Method::Procfs,
                writer: Writer {
                    pid: 14096,
                    tid: 14096,
                    name: Name::from("rn"),
                },
                original_name: Name::from("rn"),
                count: 1,
            }),
            alert: None,
        }
    }

    fn text(ev: &Event, color: bool) -> String {
        let mut out = Vec::new();
        write_text_line(ev, &mut out, color);
        String::from_utf8(out).expect("the line is UTF-8")
    }

    #[test]
    fn a_rename_shows_every_part_in_one_line() {
        assert_eq!(
            text(&rename(b"worker"), false),
            "2026-11-23T12:55:34.361593Z thread-renamed 14096/14097 \"rn\" → \"worker\" procfs \
             by 14096/14096 \"rn\" exe /tmp/rn\n"
        );
    }

    #[test]
    fn an_alert_names_its_rule_severity_and_the_other_matches() {
        let mut ev = rename(b"sshd");
        ev.alert = Some(Alert {
            rule_id: "writable-path-stomp",
            rule_name: "x",
            severity: Severity::High,
            technique: None,
            message: String::new(),
            matched: vec!["writable-path-stomp", "process-renamed"],
            judged: None,
        });
        let line = text(&ev, false);
        assert!(
            line.ends_with(" exe /tmp/rn ALERT high writable-path-stomp (+process-renamed)\n"),
            "{line}"
        );
        let colored = text(&ev, true);
        assert!(colored.contains("\x1b[1m\x1b[31mALERT high"), "{colored:?}");
        assert_eq!(colored.matches('\n').count(), 1);
    }

    #[test]
    fn hostile_names_cannot_break_or_restyle_the_line() {
        let hostile = b"a\nb\r\x1b[31m\x07\x7f\xc2\x9b\xe2\x80\xae\xe2\x80\xa8\"\\\xff";
        for color in [false, true] {
            let line = text(&rename(hostile), color);
            let body = line.strip_suffix('\n').expect("ends with a newline");
            assert!(
                !body.contains(['\n', '\r', '\x07', '\x7f', '\u{9b}', '\u{202e}', '\u{2028}']),
                "{line:?}"
            );
            assert!(
                body.contains(r#""a\nb\r\u{1b}[31m\u{7}\u{7f}\u{9b}\u{202e}\u{2028}\"\\\xff""#),
                "{line:?}"
            );
            if !color {
                assert!(!body.contains('\x1b'), "{line:?}");
            }
        }
    }

    #[test]
    fn summaries_and_losses_read_as_sentences() {
        let mut ev = rename(b"x");
        ev.body = Body::Summary(Summary {
            class: Class::Thread,
            tid: 7,
            count: 98996,
            first_seen: ev.timestamp,
            last_seen: ev.timestamp,
            last_name: Name::from("storm-999"),
            thread_exited: true,
        });
        assert_eq!(
            text(&ev, false),
            "2026-11-23T12:55:34.361593Z renames-summarized 14096/7 98996 renames, last \
             \"storm-999\" (thread, thread exited) exe /tmp/rn\n"
        );
        ev.process = None;
        ev.body = Body::Lost(Lost {
            class: Class::Thread,
            reason: LostReason::RingFull,
            count: 5,
            sink: None,
        });
        assert_eq!(
            text(&ev, false),
            "2026-11-23T12:55:34.361593Z events-lost 5 thread records lost\n"
        );
    }
}
