//! Task names and paths as the kernel gives them: bytes, not text.
//!
//! A name may hold any byte but NUL. It is kept raw everywhere inside the
//! daemon and only turned into text at an output edge, where [`Name::text`]
//! gives the exact string when the bytes are UTF-8 and a lossy one otherwise,
//! with [`Name::hex`] keeping the raw bytes recoverable.

use std::fmt;

#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Vec<u8>);

impl Name {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// A name from a NUL-padded kernel buffer such as `task_struct.comm`.
    pub fn from_c_buf(buf: &[u8]) -> Self {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Self(buf[..end].to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name as text: exact when it is UTF-8, lossy otherwise.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The raw bytes in lowercase hex, only when [`Name::text`] is lossy.
    pub fn hex(&self) -> Option<String> {
        if std::str::from_utf8(&self.0).is_ok() {
            return None;
        }
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            use fmt::Write;
            let _ = write!(out, "{b:02x}");
        }
        Some(out)
    }

    /// Text safe for one-line human output (syslog, alert messages): every
    /// control character, line or paragraph separator, bidi control,
    /// backslash and non-UTF-8 byte is written as a visible escape (the set
    /// the JSON output escapes, see [`must_escape`]), so the result is a
    /// single line that cannot forge structure or reorder what a reader
    /// sees.
    pub fn escaped(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    c if c.is_control() => out.extend(c.escape_default()),
                    c if is_invisible_format(c) => out.extend(c.escape_unicode()),
                    c => out.push(c),
                }
            }
            for b in chunk.invalid() {
                use fmt::Write;
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        out
    }
}

/// Characters that are not control characters but still break a line
/// (U+2028 line separator, U+2029 paragraph separator) or change how text
/// around them is displayed (the bidi controls: U+061C, U+200E, U+200F,
/// U+202A-U+202E, U+2066-U+2069).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Every character a name must not carry raw into any sink: control
/// characters (C0, DEL, C1) and [`is_invisible_format`].
pub fn must_escape(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.escaped())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped())
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_buffer_stops_at_first_nul() {
        assert_eq!(Name::from_c_buf(b"abc\0def\0").as_bytes(), b"abc");
        assert_eq!(Name::from_c_buf(b"0123456789abcdef").as_bytes().len(), 16);
    }

    #[test]
    fn utf8_has_no_hex_and_invalid_utf8_does() {
        assert_eq!(Name::from("kworker/0:1").hex(), None);
        let raw = Name::new(vec![b'a', 0xff, 0xfe]);
        assert_eq!(raw.hex().as_deref(), Some("61fffe"));
        assert_eq!(raw.text(), "a\u{fffd}\u{fffd}");
    }

    #[test]
    fn escaped_is_one_line_and_marks_every_odd_byte() {
        let n = Name::new(b"a\nb\x1b[31m\"\\\xff".to_vec());
        let e = n.escaped();
        assert!(!e.contains('\n') && !e.contains('\x1b'));
        assert_eq!(e, "a\\nb\\u{1b}[31m\\\"\\\\\\xff");
    }

    #[test]
    fn separators_and_bidi_controls_are_escaped_visibly() {
        let n = Name::from("a\u{2028}b\u{2029}c\u{202e}d\u{2066}e\u{200f}f\u{61c}g\u{85}");
        assert_eq!(
            n.escaped(),
            "a\\u{2028}b\\u{2029}c\\u{202e}d\\u{2066}e\\u{200f}f\\u{61c}g\\u{85}"
        );
        // Neighbours of the ranges stay as they are.
        let n = Name::from("\u{2027}\u{202f}\u{2065}\u{206a}\u{200d}ü");
        assert_eq!(n.escaped(), n.text());
    }
}
