//! Serialization building blocks for the ECS line: a JSON formatter that
//! keeps every line one line for every reader, timestamps, and names with
//! their raw-byte siblings. Nothing here allocates unless a name is not
//! UTF-8.

use std::borrow::Cow;
use std::io;

use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::ser::{CompactFormatter, Formatter};
use time::{OffsetDateTime, UtcOffset};

use crate::names::Name;

/// Compact JSON that additionally escapes, as `\uXXXX`, the characters that
/// serde_json leaves raw but that some readers treat as a line break or
/// that can disguise text on a terminal: DEL, the C1 controls U+0080-U+009F
/// (NEL is a line break for Python's `splitlines`, CSI starts a terminal
/// escape), U+2028/U+2029 (line/paragraph separators) and the bidi
/// controls. serde_json already escapes `"`, `\` and every byte below 0x20.
/// The escapes are plain JSON, so a decoder gets the exact characters back.
#[derive(Clone, Copy, Default)]
pub(super) struct LineSafeFormatter;

/// Length in bytes of the UTF-8 sequence at the start of `b` when it is a
/// character [`LineSafeFormatter`] escapes, else 0.
#[inline]
fn unsafe_char_len(b: &[u8]) -> usize {
    match b {
        [0x7f, ..] => 1,
        // U+0080..=U+009F
        [0xc2, 0x80..=0x9f, ..] => 2,
        // U+061C arabic letter mark
        [0xd8, 0x9c, ..] => 2,
        // U+200E, U+200F, U+2028..=U+202E
        [0xe2, 0x80, 0x8e | 0x8f | 0xa8..=0xae, ..] => 3,
        // U+2066..=U+2069
        [0xe2, 0x81, 0xa6..=0xa9, ..] => 3,
        _ => 0,
    }
}

impl Formatter for LineSafeFormatter {
    #[inline]
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Every escaped character starts with one of these bytes; the
            // check keeps the common ASCII path to one compare per byte.
            if !matches!(bytes[i], 0x7f | 0xc2 | 0xd8 | 0xe2) {
                i += 1;
                continue;
            }
            let len = unsafe_char_len(&bytes[i..]);
            if len == 0 {
                i += 1;
                continue;
            }
            writer.write_all(&bytes[start..i])?;
            // `fragment` is valid UTF-8 and `len` spans exactly one char.
            let c = fragment[i..i + len].chars().next().unwrap_or('\u{fffd}');
            write!(writer, "\\u{:04x}", c as u32)?;
            i += len;
            start = i;
        }
        writer.write_all(&bytes[start..])
    }

    // Everything else as the compact formatter does it.
    #[inline]
    fn write_char_escape<W>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        CompactFormatter.write_char_escape(writer, char_escape)
    }
}

/// RFC 3339 UTC with exactly six fractional digits:
/// `2026-11-23T12:00:00.123456Z`. A time outside years 0000-9999 (a broken
/// clock) is clamped to the nearest representable instant rather than
/// failing the whole line.
#[derive(Clone, Copy)]
pub(super) struct Rfc3339Micros(pub OffsetDateTime);

const TS_LEN: usize = 27;

impl Rfc3339Micros {
    fn format(self) -> [u8; TS_LEN] {
        const MIN: [u8; TS_LEN] = *b"0000-01-01T00:00:00.000000Z";
        const MAX: [u8; TS_LEN] = *b"9999-12-31T23:59:59.999999Z";
        let Some(utc) = self.0.checked_to_offset(UtcOffset::UTC) else {
            return if self.0.year() < 0 { MIN } else { MAX };
        };
        let (year, month, day) = utc.to_calendar_date();
        let year = match u32::try_from(year) {
            Ok(y) if y <= 9999 => y,
            Ok(_) => return MAX,
            Err(_) => return MIN,
        };
        let (h, m, s, us) = utc.to_hms_micro();
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut buf[0..4], year);
        put_digits(&mut buf[5..7], u32::from(month as u8));
        put_digits(&mut buf[8..10], u32::from(day));
        put_digits(&mut buf[11..13], u32::from(h));
        put_digits(&mut buf[14..16], u32::from(m));
        put_digits(&mut buf[17..19], u32::from(s));
        put_digits(&mut buf[20..26], us);
        buf
    }
}

/// `t` as the `@timestamp` text, for the readable line.
pub(super) fn rfc3339_micros(t: OffsetDateTime) -> String {
    String::from_utf8_lossy(&Rfc3339Micros(t).format()).into_owned()
}

/// Writes `v` right-aligned and zero-padded into `dst` (ASCII digits).
#[inline]
fn put_digits(dst: &mut [u8], mut v: u32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

impl Serialize for Rfc3339Micros {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buf = self.format();
        s.serialize_str(std::str::from_utf8(&buf).map_err(S::Error::custom)?)
    }
}

/// A number written as a JSON string, as ECS wants for ids such as
/// `user.id`.
pub(super) struct NumStr(pub u32);

impl Serialize for NumStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 10];
        let mut v = self.0;
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        s.serialize_str(std::str::from_utf8(&buf[i..]).map_err(S::Error::custom)?)
    }
}

/// A name as its text and, only when that text is lossy, its raw bytes in
/// lowercase hex (the value of the `<field>_hex` sibling).
pub(super) fn text_and_hex(name: &Name) -> (Cow<'_, str>, Option<String>) {
    let text = name.text();
    // `text()` borrows exactly when the bytes are UTF-8, so the hex is only
    // computed (and the bytes only validated twice) for the rare lossy name.
    let hex = match text {
        Cow::Borrowed(_) => None,
        Cow::Owned(_) => name.hex(),
    };
    (text, hex)
}

/// `process.args` as an array of texts.
pub(super) struct ArgsText<'a>(pub &'a [Name]);

impl Serialize for ArgsText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for arg in self.0 {
            seq.serialize_element(&*arg.text())?;
        }
        seq.end()
    }
}

/// `process.args_hex`: present only when some argument is not UTF-8; then
/// an array parallel to `process.args` holding the hex of each lossy item
/// and `null` for each item whose text is already exact.
pub(super) struct ArgsHex<'a>(&'a [Name]);

impl<'a> ArgsHex<'a> {
    pub(super) fn of(args: &'a [Name]) -> Option<Self> {
        args.iter()
            .any(|a| std::str::from_utf8(a.as_bytes()).is_err())
            .then_some(Self(args))
    }
}

impl Serialize for ArgsHex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for arg in self.0 {
            seq.serialize_element(&arg.hex())?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn escapes_exactly_what_every_other_sink_escapes() {
        // serde_json escapes everything below 0x20 itself; from there on
        // the formatter's fast byte test must agree with `must_escape`,
        // which syslog and Alertmanager use.
        for c in ('\u{20}'..=char::MAX).filter(|c| *c != '\\' && *c != '"') {
            let mut b = [0; 4];
            let bytes = c.encode_utf8(&mut b).as_bytes();
            assert_eq!(
                unsafe_char_len(bytes) != 0,
                crate::names::must_escape(c),
                "U+{:04X}",
                c as u32
            );
        }
    }

    fn ts(t: OffsetDateTime) -> String {
        String::from_utf8(Rfc3339Micros(t).format().to_vec()).expect("ASCII timestamp")
    }

    #[test]
    fn timestamp_is_utc_with_six_digits() {
        assert_eq!(
            ts(datetime!(2026-11-23 12:00:00.123456789 UTC)),
            "2026-11-23T12:00:00.123456Z"
        );
        assert_eq!(
            ts(datetime!(2026-01-02 03:04:05 UTC)),
            "2026-01-02T03:04:05.000000Z"
        );
        // A non-UTC offset is converted, not copied.
        assert_eq!(
            ts(datetime!(2026-11-23 14:00:00.5 +02:00)),
            "2026-11-23T12:00:00.500000Z"
        );
    }

    #[test]
    fn timestamp_out_of_rfc3339_range_is_clamped() {
        assert_eq!(
            ts(datetime!(-0005-06-01 00:00:00 UTC)),
            "0000-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn num_str_writes_decimal_string() {
        for (v, want) in [
            (0u32, "\"0\""),
            (1000, "\"1000\""),
            (u32::MAX, "\"4294967295\""),
        ] {
            assert_eq!(serde_json::to_string(&NumStr(v)).expect("serialize"), want);
        }
    }

    fn safe(s: &str) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, LineSafeFormatter);
        s.serialize(&mut ser).expect("serialize");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn formatter_escapes_separators_c1_and_bidi() {
        assert_eq!(safe("a\u{2028}b\u{2029}c"), r#""a\u2028b\u2029c""#);
        assert_eq!(safe("\u{85}\u{9b}\u{7f}"), r#""\u0085\u009b\u007f""#);
        assert_eq!(
            safe("x\u{202e}y\u{2066}z\u{200f}\u{61c}"),
            r#""x\u202ey\u2066z\u200f\u061c""#
        );
        // Neighbours of the escaped ranges stay raw.
        assert_eq!(
            safe("\u{a0}\u{2027}\u{202f}é€"),
            "\"\u{a0}\u{2027}\u{202f}é€\""
        );
        assert_eq!(safe("a\nb\"\\"), r#""a\nb\"\\""#);
    }

    #[test]
    fn formatter_escapes_round_trip() {
        let s = "\u{7f}\u{80}\u{85}\u{9f}\u{2028}\u{2029}\u{202a}\u{202e}\u{2069}\u{200e}ok";
        let back: String = serde_json::from_str(&safe(s)).expect("valid JSON");
        assert_eq!(back, s);
    }
}
