use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::event::{
    Alert, Body, Class, Event, Lost, LostReason, Method, ProcessContext, Rename, Severity, Summary,
    Writer,
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
