use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::event::{
    AgentRun, Alert, Body, Class, Event, Lost, LostReason, Method, ProcessContext, Rename,
    Severity, StopReason, Summary, Writer,
};
use crate::names::Name;
use crate::output::{text, write_json_line};

fn events() -> Vec<Event> {
    let process = ProcessContext {
        pid: 4242,
        name: Name::new(b"n\xff\x1b".to_vec()),
        executable: Some(Name::new(b"/tmp/a\nb\xfe".to_vec())),
        ..ProcessContext::default()
    };
    let rename = Event {
        sequence: 1,
        timestamp: datetime!(2026-11-23 12:00:00.25 UTC),
        host: Arc::from("h"),
        process: Some(process.clone()),
        body: Body::Rename(Rename {
            tid: 4243,
            old_name: Name::from("old\u{202e}"),
            new_name: Name::new(b"kworker/\xff\n".to_vec()),
            main_thread: false,
            method: Method::Procfs,
            writer: Writer {
                pid: 4242,
                tid: 4242,
                name: Name::from("w\"\\"),
            },
            original_name: Name::from("a"),
            count: 3,
        }),
        alert: Some(Alert {
            rule_id: "kernel-thread-mimic",
            rule_name: "x",
            severity: Severity::Critical,
            technique: Some("T1036.004"),
            message: "m".into(),
            matched: vec!["kernel-thread-mimic", "process-renamed"],
            judged: None,
        }),
    };
    let mut summary = rename.clone();
    summary.alert = None;
    summary.body = Body::Summary(Summary {
        class: Class::Thread,
        tid: 4243,
        count: 77,
        first_seen: summary.timestamp,
        last_seen: summary.timestamp,
        last_name: Name::new(b"s\xff".to_vec()),
        thread_exited: true,
    });
    let mut lost = summary.clone();
    lost.process = None;
    lost.body = Body::Lost(Lost {
        class: Class::Process,
        reason: LostReason::RingFull,
        count: 9,
    });
    vec![rename, summary, lost]
}

#[test]
fn a_logged_event_reads_back_as_the_same_readable_line() {
    for ev in events() {
        let mut json = Vec::new();
        write_json_line(&ev, &mut json);
        let record = Record::parse(json.strip_suffix(b"\n").unwrap()).expect("our own line parses");
        for color in [false, true] {
            let mut from_log = Vec::new();
            record.text().write(&mut from_log, color);
            let mut direct = Vec::new();
            text::write_text_line(&ev, &mut direct, color);
            assert_eq!(
                String::from_utf8_lossy(&from_log),
                String::from_utf8_lossy(&direct)
            );
        }
    }
}

#[test]
fn report_counts_what_it_is_given() {
    let mut report = report::Report::default();
    for ev in events() {
        let mut json = Vec::new();
        write_json_line(&ev, &mut json);
        report.add(&Record::parse(&json).expect("parse"));
    }
    let mut out = Vec::new();
    report.write(&mut out, 10);
    let out = String::from_utf8(out).expect("UTF-8");
    for want in [
        "rename-audit report: 3 events from 2026-11-23T12:00:00.250000Z to 2026-11-23T12:00:00.250000Z\n",
        "  thread renames               1\n",
        "  storm summaries              1  (77 renames summarized, thread 77)\n",
        "  loss reports                 1  (9 records lost, process 9)\n",
        "Alerts by rule (each matched rule counted)\n       count  rule  severity\n           1  kernel-thread-mimic  critical\n           1  process-renamed  low\n",
        "Renames by new name\n       count  new name\n           1  kworker/\\xff\\n\n",
        "Top renamers (renames, summarized ones included)\n       count  pid  executable  process name\n          78  4242  /tmp/a\\nb\\xfe  n\\xff\\u{1b}\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

#[test]
fn report_counts_the_daemon_s_runs_and_recorded_stops() {
    let mut report = report::Report::default();
    let mut ev = events().remove(0);
    ev.process = None;
    ev.alert = None;
    for run in [
        AgentRun::Started,
        AgentRun::Stopped {
            reason: StopReason::Sigterm,
            error: None,
        },
        AgentRun::Started,
    ] {
        ev.body = Body::Agent(run);
        let mut json = Vec::new();
        write_json_line(&ev, &mut json);
        report.add(&Record::parse(&json).expect("parse"));
    }
    let mut out = Vec::new();
    report.write(&mut out, 10);
    let out = String::from_utf8(out).expect("UTF-8");
    for want in [
        "rename-audit report: 3 events from ",
        "  process renames              0\n",
        "  daemon starts                2  (1 stops recorded)\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

fn lines_of(input: &[u8], cap: usize, read_buf: usize) -> Vec<Result<Vec<u8>, ()>> {
    let mut reader = std::io::BufReader::with_capacity(read_buf, input);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match input::read_line(&mut reader, &mut buf, cap).expect("read") {
            input::LineRead::Line => out.push(Ok(buf.clone())),
            input::LineRead::TooLong => {
                assert!(buf.is_empty());
                out.push(Err(()));
            }
            input::LineRead::Eof => return out,
        }
    }
}

#[test]
fn lines_longer_than_the_cap_are_skipped_whole() {
    let input = b"ab\nabcdef\nabcde\n\nxyz0123456789\nlast";
    // Small read buffers too: a line spans several fills.
    for read_buf in [1, 2, 3, 7, 64] {
        assert_eq!(
            lines_of(input, 6, read_buf),
            [
                Ok(b"ab\n".to_vec()),
                Err(()),
                Ok(b"abcde\n".to_vec()),
                Ok(b"\n".to_vec()),
                Err(()),
                Ok(b"last".to_vec()),
            ],
            "read buffer {read_buf}"
        );
    }
    assert_eq!(lines_of(b"0123456789", 6, 4), [Err(())], "unterminated");
    assert_eq!(lines_of(b"", 6, 4), []);
}

#[test]
fn json_lines_get_the_escape_rule_and_decode_to_the_same_values() {
    let line = "{\"a\":\"x\u{9b}y\u{202e}z\u{2028}\u{85}\u{7f}\u{1F600}\"}\t ".as_bytes();
    let mut out = Vec::new();
    json_escaped(line, &mut out);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "{\"a\":\"x\\u009by\\u202ez\\u2028\\u0085\\u007f\u{1F600}\"}  ",
        "a tab, JSON whitespace, becomes a space"
    );
    let line = "{\"a\":\"x\u{9b}y\u{202e}\"}\t".as_bytes();
    let mut out = Vec::new();
    json_escaped(line, &mut out);
    let a: serde_json::Value = serde_json::from_slice(line).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(a, b);
    let plain = br#"{"@timestamp":"2026-11-23T12:00:00.250000Z"}"#;
    let mut out = Vec::new();
    json_escaped(plain, &mut out);
    assert_eq!(out, plain, "a line the daemon wrote is copied as it is");
}

fn report_of(lines: &[&str]) -> String {
    let mut report = report::Report::default();
    for line in lines {
        report.add(&Record::parse(line.as_bytes()).expect("parse"));
    }
    let mut out = Vec::new();
    report.write(&mut out, 10);
    String::from_utf8(out).expect("the report is UTF-8")
}

#[test]
fn report_totals_do_not_wrap() {
    let max = u64::MAX;
    let summary = format!(
        r#"{{"@timestamp":"2026-11-23T12:00:00.000000Z","event":{{"action":"thread-rename-summary"}},"process":{{"pid":7,"executable":"/x","thread":{{"id":8}}}},"summary":{{"count":{max},"last_name":"n","class":"thread"}}}}"#
    );
    let lost = format!(
        r#"{{"@timestamp":"2026-11-23T12:00:00.000000Z","event":{{"action":"events-lost"}},"lost":{{"count":{max},"class":"thread"}}}}"#
    );
    let out = report_of(&[&summary, &summary, &summary, &lost, &lost]);
    // 3 * (2^64 - 1) and 2 * (2^64 - 1).
    for want in [
        "  storm summaries              3  (55340232221128654845 renames summarized, thread 55340232221128654845)\n",
        "  loss reports                 2  (36893488147419103230 records lost, thread 36893488147419103230)\n",
        "  55340232221128654845  7  /x  -\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

#[test]
fn report_escapes_the_classes() {
    let lost = r#"{"@timestamp":"2026-11-23T12:00:00.000000Z","event":{"action":"events-lost"},"lost":{"count":5,"class":"C\u001b]52;c;aGk=\u0007\u009b\u202e"}}"#;
    let out = report_of(&[lost]);
    assert!(
        out.contains(
            "  loss reports                 1  (5 records lost, C\\u{1b}]52;c;aGk=\\u{7}\\u{9b}\\u{202e} 5)\n"
        ),
        "{out}"
    );
}

/// A rename line from `host` (`host.name`; `None`: an older line with
/// `host.hostname` alone) by `rule`, if any.
fn host_line(host: Option<&str>, hostname: &str, main: bool, rule: Option<&str>) -> String {
    let host = match host {
        Some(name) => format!(r#"{{"name":"{name}","hostname":"{hostname}"}}"#),
        None => format!(r#"{{"hostname":"{hostname}"}}"#),
    };
    let rule = rule.map_or(String::new(), |r| {
        format!(r#","rule":{{"id":"{r}","severity":"critical"}}"#)
    });
    format!(
        r#"{{"@timestamp":"2026-11-23T12:00:00.000000Z","event":{{"action":"process-renamed"}},"host":{host},"process":{{"pid":7,"executable":"/x","thread":{{"id":7}}}},"rename":{{"old_name":"a","new_name":"b","main_thread":{main},"method":"prctl","writer":{{"pid":7,"tid":7,"name":"a"}}}}{rule}}}"#
    )
}

#[test]
fn host_filters_on_host_name_and_falls_back_to_hostname() {
    let args = |glob: &str| crate::cli::FilterArgs {
        host: Some(glob.to_owned()),
        ..Default::default()
    };
    let lines = [
        host_line(Some("db-1"), "x", true, None),
        host_line(Some("web-1"), "db-9", true, None),
        host_line(None, "db-2", true, None),
        host_line(Some("db 3 \u{fc}"), "x", true, None),
    ];
    let matching = |glob: &str| -> Vec<usize> {
        let f = filter::Filters::new(&args(glob), time::OffsetDateTime::now_utc()).unwrap();
        (0..lines.len())
            .filter(|&i| {
                let line = lines[i].as_bytes();
                f.may_match(line) && f.matches(&Record::parse(line).unwrap())
            })
            .collect()
    };
    assert_eq!(matching("db-*"), [0, 2], "host.name, not host.hostname");
    assert_eq!(matching("web-1"), [1]);
    assert_eq!(matching("db?3*"), [3]);
    assert_eq!(matching("*"), [0, 1, 2, 3]);
    assert_eq!(matching("nope"), Vec::<usize>::new());
}

#[test]
fn report_breaks_counts_down_by_host_only_when_there_are_several() {
    let one = report_of(&[&host_line(Some("db-1"), "x", true, None)]);
    assert!(!one.contains("By host"), "{one}");
    let a = host_line(Some("db-1"), "x", true, Some("kernel-thread-mimic"));
    let b = host_line(Some("web\\u001b"), "x", false, None);
    let c = host_line(None, "old", true, None);
    let out = report_of(&[&a, &b, &b, &c]);
    let want = "\nBy host (3 hosts)\n\
                \x20     events     process      thread      alerts        lost      starts  host\n\
                \x20          2           0           2           0           0           0  web\\u{1b}\n\
                \x20          1           1           0           1           0           0  db-1\n\
                \x20          1           1           0           0           0           0  old\n";
    assert!(out.contains(want), "{want}\nnot in\n{out}");
    let top = {
        let mut report = report::Report::default();
        for line in [&a, &b, &c] {
            report.add(&Record::parse(line.as_bytes()).unwrap());
        }
        let mut out = Vec::new();
        report.write(&mut out, 1);
        String::from_utf8(out).unwrap()
    };
    assert!(top.contains("  ... and 2 more\n"), "{top}");
}

#[test]
fn lines_without_the_needle_are_skipped_whole_and_the_rest_read() {
    let input = b"a1\nxx NEEDLE 1\nb2\nc3 longer line\nNEEDLE 2\n\nz NEEDLE 3";
    let needle = memchr::memmem::Finder::new(b"NEEDLE");
    for read_buf in [1, 2, 5, 8, 16, 64] {
        let mut reader = std::io::BufReader::with_capacity(read_buf, &input[..]);
        let mut buf = Vec::new();
        let mut kept = Vec::new();
        loop {
            input::skip_lines_without(&mut reader, &needle).unwrap();
            match input::read_line(&mut reader, &mut buf, 1 << 20).unwrap() {
                input::LineRead::Line => kept.push(String::from_utf8(buf.clone()).unwrap()),
                input::LineRead::TooLong => unreachable!(),
                input::LineRead::Eof => break,
            }
        }
        // Every line holding the needle is read, whole; lines without it
        // may be read too (when they do not end in the buffer).
        let with: Vec<&String> = kept.iter().filter(|l| l.contains("NEEDLE")).collect();
        assert_eq!(
            with,
            ["xx NEEDLE 1\n", "NEEDLE 2\n", "z NEEDLE 3"],
            "read buffer {read_buf}: {kept:?}"
        );
        if read_buf == 64 {
            assert_eq!(kept.len(), 3, "with a large buffer only those: {kept:?}");
        }
    }
}
