//! `run --format text` (issue 10 item 2): the real daemon writes one
//! readable line per event, and hostile names (newlines, escape sequences,
//! bidi overrides, bytes that are not UTF-8) come out escaped.
use std::time::{Duration, Instant};

use crate::support::{daemon::Daemon, renamer};

const HOSTILE: &[u8] = b"e2e\nx\x1b[31m\xe2\x80\xae\xff";
const HOSTILE_SHOWN: &str = r#""e2e\nx\u{1b}[31m\u{202e}\xff""#;

/// The lines (text, without '\n') that contain `needle`, once there are `n`.
fn wait_for_lines(d: &Daemon, needle: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let raw = d.raw_output();
        let text = String::from_utf8_lossy(&raw);
        let found: Vec<String> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {n} lines with {needle:?} within 10 s; output so far:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nothing a terminal would act on: no C0 control but the line ends, no
/// DEL, no C1 control, no line separator or bidi control.
fn assert_terminal_safe(raw: &[u8]) {
    for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
        assert!(
            !line.iter().any(|&b| b < 0x20 || b == 0x7f),
            "line {i} has a raw control byte: {:?}",
            String::from_utf8_lossy(line)
        );
        let text = std::str::from_utf8(line)
            .unwrap_or_else(|e| panic!("line {i} is not UTF-8 ({e}): {line:?}"));
        assert!(
            !text.chars().any(|c| matches!(c,
                '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')),
            "line {i} has a raw C1, separator or bidi character: {text:?}"
        );
    }
}

#[test]
fn text_format_is_one_escaped_line_per_event() {
    let d = Daemon::start(&["--format", "text"]);
    let exe = renamer::path().to_str().expect("UTF-8 path").to_owned();

    let pid = renamer::run("prctl", HOSTILE, &[]).get("pid");
    let ours = format!(" {pid}/{pid} ");
    let lines = wait_for_lines(&d, &ours, 1);
    assert_eq!(lines.len(), 1, "one line for one rename: {lines:#?}");
    let line = &lines[0];
    let (ts, rest) = line.split_at(27);
    assert!(
        ts.starts_with("20") && ts.ends_with('Z'),
        "starts with the time: {line}"
    );
    assert!(
        rest.starts_with(&format!(" process-renamed {pid}/{pid} \"")),
        "{line}"
    );
    assert!(
        rest.contains(&format!(" → {HOSTILE_SHOWN} prctl by {pid}/{pid} \"")),
        "{line}"
    );
    assert!(
        rest.ends_with(&format!(" exe {exe} ALERT low process-renamed")),
        "{line}"
    );

    let out = renamer::run("thread-prctl", HOSTILE, &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    let lines = wait_for_lines(&d, &format!(" {pid}/{tid} "), 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&format!(" thread-renamed {pid}/{tid} \"renamer-"))
            && lines[0].contains(&format!(" → {HOSTILE_SHOWN} prctl by {pid}/{tid} ")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(&format!(" exe {exe}")),
        "a thread rename no rule matches is no alert: {}",
        lines[0]
    );

    // The whole file, every other process's renames included: no raw
    // control byte, and no colour in a file.
    assert_terminal_safe(&d.raw_output());
}
