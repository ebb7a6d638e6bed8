//! A small RFC 5424 formatter and RFC 6587 octet-counting framer.
//!
//! Every field is made safe here, whatever the caller passes: header fields
//! are printable US-ASCII without spaces, PARAM-VALUEs escape `"`, `\` and `]`
//! (RFC 5424 section 6.3.3), and no control character survives anywhere, so a
//! message is always exactly one line. MSG is kept to printable ASCII so it
//! needs no BOM (section 6.4); the exact UTF-8 text lives in the
//! structured data, where UTF-8 is always allowed.

use std::fmt::Write;

use time::{OffsetDateTime, UtcOffset};

/// The NILVALUE.
const NIL: &str = "-";

pub(crate) struct Header<'a> {
    /// Facility code, 0-23.
    pub facility: u8,
    /// Severity code, 0 (emergency) to 7 (debug).
    pub severity: u8,
    pub timestamp: OffsetDateTime,
    pub hostname: &'a str,
    pub app_name: &'a str,
    pub procid: &'a str,
    pub msgid: &'a str,
}

/// One SD-ELEMENT. `id` must be a valid SD-ID (checked in tests, not at run
/// time: ids are constants).
pub(crate) struct SdElement {
    pub id: &'static str,
    pub params: Vec<(&'static str, String)>,
}

/// The whole message, at most `max_len` bytes as long as header and
/// structured data fit (MSG is what gets shortened).
pub(crate) fn format(h: &Header<'_>, sd: &[SdElement], msg: &str, max_len: usize) -> String {
    let mut out = head(h, sd, 256);
    let room = max_len.saturating_sub(out.len() + 1);
    let msg = ascii_msg(msg, room);
    if !msg.is_empty() {
        out.push(' ');
        out.push_str(&msg);
    }
    out
}

/// The whole message with `msg` as MSG, uncut. The caller vouches that
/// `msg` is one line of UTF-8 with no control character (an ECS JSON line:
/// its encoder escapes them all). No BOM: MSG-ANY (section 6.4), which
/// receivers store as it came.
pub(crate) fn format_uncut(h: &Header<'_>, sd: &[SdElement], msg: &str) -> String {
    let mut out = head(h, sd, msg.len() + 160);
    if !msg.is_empty() {
        out.push(' ');
        out.push_str(msg);
    }
    out
}

/// HEADER SP STRUCTURED-DATA.
fn head(h: &Header<'_>, sd: &[SdElement], capacity: usize) -> String {
    let pri = u16::from(h.facility.min(23)) * 8 + u16::from(h.severity.min(7));
    let mut out = String::with_capacity(capacity);
    let _ = write!(
        out,
        "<{pri}>1 {} {} {} {} {} ",
        timestamp(h.timestamp),
        header_field(h.hostname, 255),
        header_field(h.app_name, 48),
        header_field(h.procid, 128),
        header_field(h.msgid, 32),
    );
    if sd.is_empty() {
        out.push_str(NIL);
    }
    for el in sd {
        out.push('[');
        out.push_str(el.id);
        for (name, value) in &el.params {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_param_value(value, &mut out);
            out.push('"');
        }
        out.push(']');
    }
    out
}

/// RFC 6587 octet-counting: `MSG-LEN SP SYSLOG-MSG`.
pub(crate) fn octet_frame(msg: &str) -> Vec<u8> {
    let mut framed = Vec::with_capacity(msg.len() + 8);
    framed.extend_from_slice(msg.len().to_string().as_bytes());
    framed.push(b' ');
    framed.extend_from_slice(msg.as_bytes());
    framed
}

/// `YYYY-MM-DDThh:mm:ss.ffffffZ`: UTC, at most 6 fractional digits.
pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return NIL.to_owned();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// PRINTUSASCII (33-126) only, at most `max` chars; `-` when empty. Every
/// other character (a space, a control, anything not ASCII) becomes one
/// `_`: HOSTNAME and the other header fields must be printable ASCII
/// (section 6.2), while the JSON keeps the exact text.
pub(crate) fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if out.is_empty() { NIL.to_owned() } else { out }
}

/// PARAM-VALUE escaping. Control characters, line separators and bidi
/// controls are not forbidden by the RFC but would let a value break a line
/// in receivers that store messages as lines, or display reordered; they
/// are escaped visibly, the way the JSON output and `Name::escaped` do.
pub(crate) fn escape_param_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            // Escaped the way `Name::escaped` writes it, then SD-escaped.
            c if crate::names::must_escape(c) => {
                let escape = if c.is_control() {
                    c.escape_default().collect::<String>()
                } else {
                    c.escape_unicode().collect()
                };
                for e in escape.chars() {
                    if e == '\\' {
                        out.push('\\');
                    }
                    out.push(e);
                }
            }
            c => out.push(c),
        }
    }
}

/// MSG as printable ASCII (non-ASCII and controls as `\u{..}` escapes), cut
/// to `max` bytes on a character boundary.
fn ascii_msg(msg: &str, max: usize) -> String {
    let mut out = String::with_capacity(msg.len().min(max));
    for c in msg.chars() {
        let start = out.len();
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
        if out.len() > max {
            out.truncate(start);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(msgid: &str) -> Header<'_> {
        Header {
            facility: 4,
            severity: 2,
            timestamp: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
                .unwrap(),
            hostname: "web-1",
            app_name: "rename-audit",
            procid: "77",
            msgid,
        }
    }

    #[test]
    fn header_and_pri() {
        let m = format(&header("process-renamed"), &[], "hello", 2048);
        assert_eq!(
            m,
            "<34>1 2023-11-14T22:13:20.123456Z web-1 rename-audit 77 process-renamed - hello"
        );
        let mut h = header("x");
        h.facility = 16;
        h.severity = 6;
        assert!(format(&h, &[], "", 100).starts_with("<134>1 "));
    }

    #[test]
    fn param_values_escape_quote_backslash_and_bracket() {
        let sd = [SdElement {
            id: "rename@32473",
            params: vec![("new_name", "a\"b\\c]d\ne\u{1b}f".to_owned())],
        }];
        let m = format(&header("m"), &sd, "x", 2048);
        assert!(
            m.ends_with(r#" m [rename@32473 new_name="a\"b\\c\]d\\ne\\u{1b}f"] x"#),
            "{m}"
        );
    }

    #[test]
    fn separators_and_bidi_controls_are_escaped_in_param_values() {
        let sd = [SdElement {
            id: "rename@32473",
            params: vec![("new_name", "a\u{2028}b\u{202e}c".to_owned())],
        }];
        let m = format(&header("m"), &sd, "x\u{2029}", 2048);
        assert!(!m.chars().any(crate::names::must_escape), "{m:?}");
        assert!(
            m.ends_with(r#" m [rename@32473 new_name="a\\u{2028}b\\u{202e}c"] x\u{2029}"#),
            "{m}"
        );
    }

    #[test]
    fn no_control_character_survives_anywhere() {
        let mut h = header("bad id\n");
        h.hostname = "host\nname with space";
        h.procid = "";
        let sd = [SdElement {
            id: "rename@32473",
            params: vec![("v", "line1\nline2\r\0\x7f".to_owned())],
        }];
        let m = format(&h, &sd, "evil\nmsg \u{1b}[31m \u{2028} ünï", 4096);
        assert!(!m.chars().any(|c| c.is_control()), "{m:?}");
        assert!(
            m.contains(" host_name_with_space rename-audit - bad_id_ "),
            "{m}"
        );
        assert!(
            m.ends_with(r" evil\nmsg \u{1b}[31m \u{2028} \u{fc}n\u{ef}"),
            "{m}"
        );
    }

    #[test]
    fn hostname_is_printable_ascii_one_underscore_per_character() {
        let mut h = header("m");
        for (name, sent) in [
            ("web 1", "web_1"),
            ("hôst-ü", "h_st-_"),
            ("数据库", "___"),
            ("a\u{200b}b\u{202e}c", "a_b_c"),
            ("", "-"),
        ] {
            h.hostname = name;
            let m = format_uncut(&h, &[], "{}");
            assert_eq!(
                m,
                format!("<34>1 2023-11-14T22:13:20.123456Z {sent} rename-audit 77 m - {{}}"),
                "{name:?}"
            );
        }
        let long = "h".repeat(300);
        h.hostname = &long;
        let m = format_uncut(&h, &[], "");
        assert!(
            m.contains(&format!(" {} rename-audit ", "h".repeat(255))),
            "{m}"
        );
    }

    #[test]
    fn msg_is_cut_to_fit_on_a_char_boundary() {
        let m = format(&header("m"), &[], &"é".repeat(1000), 120);
        assert!(m.len() <= 120, "{} bytes: {m}", m.len());
        assert!(m.ends_with("\\u{e9}"), "{m}");
        // A header that already fills the limit leaves no MSG, not a broken one.
        let m = format(&header("m"), &[], "hello", 10);
        assert!(m.ends_with(" m -"), "{m}");
    }

    #[test]
    fn octet_counting_frame() {
        assert_eq!(
            octet_frame("<13>1 - - - - - - hi"),
            b"20 <13>1 - - - - - - hi"
        );
        let s = "ü";
        assert_eq!(octet_frame(s), "2 ü".as_bytes());
    }

    #[test]
    fn timestamp_is_utc_micros() {
        let t = OffsetDateTime::from_unix_timestamp(0)
            .unwrap()
            .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(timestamp(t), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn sd_ids_used_are_valid() {
        for id in super::super::message::SD_IDS {
            let (name, pen) = id.split_once('@').expect("private SD-ID");
            assert!(id.len() <= 32 && !name.is_empty());
            assert!(pen.chars().all(|c| c.is_ascii_digit()));
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"'))
            );
        }
    }
}
