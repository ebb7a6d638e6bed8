//! Tests of the ECS line against issue 2's field list, read back with
//! serde_json as a consumer would.

use std::sync::Arc;

use serde_json::{Value, json};
use time::macros::datetime;

use super::ecs::{syslog_priority, write_json_line};
use crate::event::{
    AgentRun, Alert, Body, Class, Event, Hidden, HiddenFound, Lost, LostReason, Method,
    ParentContext, ProcessContext, Rename, Severity, StopReason, Summary, Writer,
};
use crate::names::Name;

fn process() -> ProcessContext {
    ProcessContext {
        pid: 4242,
        name: Name::from("kworker/0:1"),
        executable: Some(Name::from("/tmp/x")),
        executable_file: None,
        args: Arc::from([Name::from("/tmp/x"), Name::from("--flag")]),
        args_truncated: false,
        start: Some(datetime!(2026-11-23 11:59:00.5 UTC)),
        uid: Some(1000),
        unit: Some("evil.service".to_owned()),
        cgroup: None,
        parent: Some(ParentContext {
            pid: 1,
            name: Some(Name::from("systemd")),
            executable: Some(Name::from("/usr/lib/systemd/systemd")),
        }),
    }
}

fn rename() -> Rename {
    Rename {
        tid: 4242,
        old_name: Name::from("x"),
        new_name: Name::from("kworker/0:1"),
        main_thread: true,
        method: Method::Prctl,
        writer: Writer {
            pid: 4242,
            tid: 4243,
            name: Name::from("worker"),
        },
        original_name: Name::from("x"),
        count: 3,
    }
}

fn event(body: Body) -> Event {
    Event {
        sequence: 42,
        timestamp: datetime!(2026-11-23 12:00:00.123456789 UTC),
        host: Arc::from("build-7"),
        process: Some(process()),
        body,
        alert: None,
    }
}

fn line(ev: &Event) -> String {
    let mut out = Vec::new();
    write_json_line(ev, &mut out);
    String::from_utf8(out).expect("a line is UTF-8 even for non-UTF-8 names")
}

/// Parses a line, checking it is exactly one line holding one object.
fn parse(line: &str) -> Value {
    assert!(
        line.ends_with('\n'),
        "line must end with a newline: {line:?}"
    );
    let body = &line[..line.len() - 1];
    assert!(
        !body.contains('\n') && !body.contains('\r'),
        "line must hold no raw CR/LF: {line:?}"
    );
    assert!(
        !body
            .chars()
            .any(|c| c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')),
        "line must hold no raw control or separator character: {line:?}"
    );
    let v: Value = serde_json::from_str(body).expect("line is valid JSON");
    assert!(v.is_object(), "line is an object: {line}");
    v
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "hex has even length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("lowercase hex"))
        .collect()
}

/// A name's raw bytes as a consumer recovers them: `<field>_hex` when
/// present, else the text.
fn raw(obj: &Value, field: &str) -> Vec<u8> {
    match &obj[format!("{field}_hex")] {
        Value::String(h) => unhex(h),
        Value::Null => obj[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} must be a string in {obj}"))
            .as_bytes()
            .to_vec(),
        other => panic!("{field}_hex must be a string, got {other}"),
    }
}

const GOLDEN: &str = concat!(
    r#"{"@timestamp":"2026-11-23T12:00:00.123456Z","ecs":{"version":"8.11.0"},"#,
    r#""event":{"kind":"event","category":["process"],"type":["change"],"action":"process-renamed","id":"RUN-42","sequence":42,"module":"rename_audit","dataset":"rename_audit.renames"},"#,
    r#""agent":{"type":"rename-audit","version":"VERSION","ephemeral_id":"RUN"},"#,
    r#""host":{"name":"build-7","hostname":"build-7"},"#,
    r#""process":{"pid":4242,"name":"kworker/0:1","executable":"/tmp/x","args":["/tmp/x","--flag"],"start":"2026-11-23T11:59:00.500000Z","user":{"id":"1000"},"#,
    r#""parent":{"pid":1,"name":"systemd","executable":"/usr/lib/systemd/systemd"},"thread":{"id":4242,"name":"kworker/0:1"}},"#,
    r#""systemd":{"unit":"evil.service"},"#,
    r#""rename":{"old_name":"x","new_name":"kworker/0:1","main_thread":true,"method":"prctl","writer":{"pid":4242,"tid":4243,"name":"worker"},"original_name":"x","count":3}}"#,
    "\n"
);

#[test]
fn golden_process_rename_line() {
    let run = crate::event::run_id();
    assert_eq!(
        line(&event(Body::Rename(rename()))),
        GOLDEN
            .replace("RUN", run)
            .replace("VERSION", env!("CARGO_PKG_VERSION"))
    );
    // A version 4 UUID: random, so unique across restarts and hosts.
    let id = uuid::Uuid::parse_str(run).expect("the run id is a UUID");
    assert_eq!(id.get_version_num(), 4);
}

#[test]
fn the_identity_names_host_and_agent_on_every_line() {
    let identity = crate::identity::Identity {
        name: "db 1 \u{fc}".into(),
        hostname: "vm".into(),
        id: Some("0123456789abcdef0123456789abcdef".into()),
        os: crate::identity::Os {
            kernel: "6.12.0-1-amd64".into(),
            name: Some("Debian GNU/Linux".into()),
            version: Some("13".into()),
        },
        agent_id: "7f0c1f9e-58a4-4b5e-9d6f-0123456789ab".into(),
        agent_name: "db 1 \u{fc}".into(),
        labels: [("env", "prod"), ("role", "db")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    };
    let mut ev = event(Body::Rename(rename()));
    ev.host = Arc::from("db 1 \u{fc}");
    let mut out = Vec::new();
    super::ecs::write_json_line_as(&ev, Some(&identity), &mut out);
    let text = String::from_utf8(out).unwrap();
    let run = crate::event::run_id();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            r#""agent":{{"type":"rename-audit","version":"{version}","ephemeral_id":"{run}","id":"7f0c1f9e-58a4-4b5e-9d6f-0123456789ab","name":"db 1 ü"}},"host":{{"name":"db 1 ü","hostname":"vm","id":"0123456789abcdef0123456789abcdef","os":{{"kernel":"6.12.0-1-amd64","name":"Debian GNU/Linux","version":"13"}}}},"labels":{{"env":"prod","role":"db"}},"process":"#
        )),
        "{text}"
    );
    // Left out: no machine id, no os-release, no labels.
    let bare = crate::identity::Identity {
        id: None,
        os: crate::identity::Os {
            kernel: "k".into(),
            name: None,
            version: None,
        },
        labels: Default::default(),
        ..identity
    };
    let mut out = Vec::new();
    super::ecs::write_json_line_as(&ev, Some(&bare), &mut out);
    let v = parse(&String::from_utf8(out).unwrap());
    assert_eq!(
        v["host"],
        json!({"name": "db 1 \u{fc}", "hostname": "vm", "os": {"kernel": "k"}})
    );
    assert_eq!(v.get("labels"), None);
}

#[test]
fn process_rename_has_every_field_of_issue_2() {
    let v = parse(&line(&event(Body::Rename(rename()))));
    assert_eq!(v["@timestamp"], "2026-11-23T12:00:00.123456Z");
    assert_eq!(v["event"]["kind"], "event");
    assert_eq!(v["event"]["category"], json!(["process"]));
    assert_eq!(v["event"]["type"], json!(["change"]));
    assert_eq!(v["event"]["action"], "process-renamed");
    assert_eq!(v["event"]["sequence"], 42);
    assert_eq!(v["host"]["hostname"], "build-7");
    let p = &v["process"];
    assert_eq!(p["pid"], 4242);
    assert_eq!(p["name"], "kworker/0:1");
    assert_eq!(p["executable"], "/tmp/x");
    assert_eq!(p["args"], json!(["/tmp/x", "--flag"]));
    assert_eq!(p["start"], "2026-11-23T11:59:00.500000Z");
    assert_eq!(p["user"]["id"], "1000", "ECS user.id is a string");
    assert_eq!(p["parent"]["pid"], 1);
    assert_eq!(p["parent"]["name"], "systemd");
    assert_eq!(p["parent"]["executable"], "/usr/lib/systemd/systemd");
    assert_eq!(p["thread"]["id"], 4242);
    assert_eq!(
        p["thread"]["name"], "kworker/0:1",
        "thread.name is the new name"
    );
    let r = &v["rename"];
    assert_eq!(r["old_name"], "x");
    assert_eq!(r["new_name"], "kworker/0:1");
    assert_eq!(r["main_thread"], true);
    assert_eq!(r["method"], "prctl");
    assert_eq!(r["writer"]["pid"], 4242);
    assert_eq!(r["writer"]["tid"], 4243);
    assert_eq!(r["writer"]["name"], "worker");
    assert_eq!(r["original_name"], "x");
    assert_eq!(r["count"], 3);
    for absent in ["summary", "lost", "rule", "threat", "message"] {
        assert!(
            v.get(absent).is_none(),
            "{absent} must be absent on a plain rename"
        );
    }
    assert!(
        v["event"].get("severity").is_none(),
        "no severity without alert"
    );
    assert!(
        !line(&event(Body::Rename(rename()))).contains("_hex"),
        "UTF-8 names have no hex sibling"
    );
}

#[test]
fn thread_rename_and_optional_context() {
    let mut r = rename();
    r.tid = 4243;
    r.main_thread = false;
    r.method = Method::Procfs;
    let mut ev = event(Body::Rename(r));
    let p = ev.process.as_mut().expect("process");
    p.name = Name::from("x");
    p.start = None;
    p.uid = None;
    p.unit = None;
    p.parent = Some(ParentContext {
        pid: 7,
        name: None,
        executable: None,
    });
    p.executable = None;
    p.args = Arc::from([]);
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["action"], "thread-renamed");
    assert_eq!(v["rename"]["main_thread"], false);
    assert_eq!(v["rename"]["method"], "procfs");
    assert_eq!(
        v["process"]["name"], "x",
        "process name unchanged by a thread rename"
    );
    assert_eq!(
        v["process"]["thread"],
        json!({"id": 4243, "name": "kworker/0:1"})
    );
    assert_eq!(v["process"]["parent"], json!({"pid": 7}));
    assert_eq!(v["process"]["args"], json!([]));
    for absent in ["start", "user", "executable"] {
        assert!(
            v["process"].get(absent).is_none(),
            "unknown {absent} is omitted"
        );
    }
    assert!(v.get("systemd").is_none());
}

#[test]
fn alert_line() {
    let mut ev = event(Body::Rename(rename()));
    ev.alert = Some(Alert {
        rule_id: "kernel-thread-mimic",
        rule_name: "Process named like a kernel thread",
        severity: Severity::Critical,
        technique: Some("T1036.004"),
        message: "process x (pid 4242, /tmp/x) renamed itself to \"kworker/0:1\"".to_owned(),
        matched: vec!["kernel-thread-mimic"],
        judged: None,
    });
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["kind"], "alert");
    assert_eq!(v["event"]["severity"], 99);
    assert_eq!(v["event"]["type"], json!(["change"]));
    assert_eq!(
        v["rule"],
        json!({"id": "kernel-thread-mimic", "name": "Process named like a kernel thread", "severity": "critical"})
    );
    assert_eq!(v["threat"]["framework"], "MITRE ATT&CK");
    assert_eq!(v["threat"]["technique"]["id"], json!(["T1036.004"]));
    assert_eq!(
        v["threat"]["technique"]["reference"],
        json!(["https://attack.mitre.org/techniques/T1036/004/"])
    );
    assert_eq!(
        v["message"],
        "process x (pid 4242, /tmp/x) renamed itself to \"kworker/0:1\""
    );
    assert_eq!(syslog_priority(&ev), 2, "critical alerts are crit");
    assert!(v["rename"].is_object(), "an alert keeps the rename");

    // A rule without an ATT&CK technique has no threat object.
    ev.alert.as_mut().expect("alert").technique = None;
    ev.alert.as_mut().expect("alert").severity = Severity::Medium;
    let v = parse(&line(&ev));
    assert!(v.get("threat").is_none());
    assert_eq!(v["event"]["severity"], 47);
    assert_eq!(v["rule"]["severity"], "medium");
}

fn summary(exited: bool) -> Summary {
    Summary {
        class: Class::Thread,
        tid: 5000,
        count: 123_456,
        first_seen: datetime!(2026-11-23 12:00:00.000001 UTC),
        last_seen: datetime!(2026-11-23 12:00:01.999999 UTC),
        last_name: Name::from("storm-99"),
        thread_exited: exited,
    }
}

#[test]
fn summary_line_with_and_without_process() {
    let ev = event(Body::Summary(summary(true)));
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["kind"], "event");
    assert_eq!(v["event"]["action"], "renames-summarized");
    assert_eq!(v["event"]["type"], json!(["info"]));
    assert_eq!(
        v["summary"],
        json!({
            "count": 123456,
            "first_seen": "2026-11-23T12:00:00.000001Z",
            "last_seen": "2026-11-23T12:00:01.999999Z",
            "last_name": "storm-99",
            "class": "thread",
            "thread_exited": true,
        })
    );
    assert_eq!(v["process"]["pid"], 4242);
    assert_eq!(
        v["process"]["thread"],
        json!({"id": 5000, "name": "storm-99"})
    );
    assert!(v.get("rename").is_none() && v.get("lost").is_none());
    assert_eq!(syslog_priority(&ev), 6);

    let mut ev = event(Body::Summary(Summary {
        class: Class::Process,
        ..summary(false)
    }));
    ev.process = None;
    let v = parse(&line(&ev));
    assert_eq!(
        v["process"],
        json!({"thread": {"id": 5000, "name": "storm-99"}}),
        "unknown process: only the thread"
    );
    assert_eq!(v["summary"]["class"], "process");
    assert_eq!(v["summary"]["thread_exited"], false);
    assert!(v.get("systemd").is_none());
}

#[test]
fn lost_line() {
    let mut ev = event(Body::Lost(Lost {
        class: Class::Process,
        reason: LostReason::NoStormSlot,
        count: 17,
    }));
    ev.process = None;
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["action"], "events-lost");
    assert_eq!(v["event"]["type"], json!(["info"]));
    assert_eq!(v["event"]["category"], json!(["process"]));
    assert_eq!(
        v["lost"],
        json!({"count": 17, "class": "process", "reason": "no-storm-slot"})
    );
    for absent in ["process", "rename", "summary", "rule"] {
        assert!(v.get(absent).is_none(), "{absent} absent on a lost record");
    }
    assert_eq!(syslog_priority(&ev), 4);
}

#[test]
fn hidden_line_names_the_covered_path() {
    let ev = event(Body::Hidden(Hidden {
        pid: 4242,
        covered_by: Some(2),
        mount_point: Name::from("/proc/4242/task/4242"),
        entry: Some(Name::from("task/4242")),
        found: HiddenFound::Mount,
    }));
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["action"], "process-hidden");
    assert_eq!(
        v["hidden"],
        json!({"pid": 4242, "covered_by": {"pid": 2}, "mount_point": "/proc/4242/task/4242",
               "entry": "task/4242", "found": "mount"})
    );
}

#[test]
fn agent_lines_say_how_the_run_began_ended_and_what_it_missed() {
    let pid = std::process::id();
    let mut ev = event(Body::Agent(AgentRun::Started));
    ev.process = None;
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["action"], "agent-started");
    assert_eq!(v["event"]["kind"], "event");
    assert_eq!(v["event"]["type"], json!(["start"]));
    assert_eq!(v["run"], json!({ "pid": pid }));
    assert_eq!(syslog_priority(&ev), 6);

    ev.body = Body::Agent(AgentRun::Stopped {
        reason: StopReason::OutputFailed,
        error: Some("stdout is closed".into()),
    });
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["action"], "agent-stopped");
    assert_eq!(v["event"]["type"], json!(["end"]));
    assert_eq!(
        v["run"],
        json!({"pid": pid, "stop_reason": "output-failed", "error": "stdout is closed"})
    );

    ev.body = Body::Agent(AgentRun::Gap {
        since: datetime!(2026-11-23 11:00:00.5 UTC),
        previous_run: "prev".into(),
        previous_sequence: 77,
        previous_stopped: false,
        until: datetime!(2026-11-23 12:00:00 UTC),
    });
    let v = parse(&line(&ev));
    assert_eq!(v["event"]["action"], "monitoring-gap");
    assert_eq!(v["event"]["type"], json!(["info"]));
    assert_eq!(
        v["gap"],
        json!({"start": "2026-11-23T11:00:00.500000Z", "end": "2026-11-23T12:00:00.000000Z",
               "previous_ephemeral_id": "prev", "previous_sequence": 77,
               "previous_stopped": false})
    );
    for absent in ["process", "rename", "summary", "lost", "hidden", "rule"] {
        assert!(
            v.get(absent).is_none(),
            "{absent} absent on an agent record"
        );
    }
    assert_eq!(syslog_priority(&ev), 4, "a gap is a warning");
}

/// Names no line may be broken or forged by.
fn hostile_names() -> Vec<Vec<u8>> {
    let mut all_bytes: Vec<u8> = (1..=255).collect();
    all_bytes.extend_from_slice(b"end");
    vec![
        b"a\nb".to_vec(),
        b"a\rb\r\n".to_vec(),
        b"\x1b[31mred\x1b[0m\x1b]0;title\x07".to_vec(),
        br#"x","injected":"1"#.to_vec(),
        b"back\\slash\\".to_vec(),
        b"\\u000a\\n".to_vec(),
        "sep\u{2028}par\u{2029}nel\u{85}csi\u{9b}"
            .as_bytes()
            .to_vec(),
        "bidi\u{202e}txt.exe".as_bytes().to_vec(),
        b"\xff\xfe\xc0invalid\xe2\x80".to_vec(),
        b"\xe2\x80\xa8\xff".to_vec(), // U+2028 followed by an invalid byte
        b"\x7fdel".to_vec(),
        all_bytes,
        Vec::new(),
    ]
}

#[test]
fn hostile_names_cannot_break_a_line_and_round_trip_exactly() {
    let keys =
        |v: &Value| -> Vec<String> { v.as_object().expect("object").keys().cloned().collect() };
    let baseline = parse(&line(&event(Body::Rename(rename()))));
    for bytes in hostile_names() {
        let n = Name::new(bytes.clone());
        let mut ctx = process();
        ctx.name = n.clone();
        ctx.executable = Some(n.clone());
        ctx.args = Arc::from([n.clone(), Name::from("ok"), n.clone()]);
        let parent = ctx.parent.as_mut().expect("parent");
        parent.name = Some(n.clone());
        parent.executable = Some(n.clone());
        let mut r = rename();
        r.old_name = n.clone();
        r.new_name = n.clone();
        r.original_name = n.clone();
        r.writer.name = n.clone();
        let mut ev = event(Body::Rename(r));
        ev.process = Some(ctx);

        let text = line(&ev);
        assert_eq!(
            text.matches('\n').count(),
            1,
            "exactly one newline for {n:?}"
        );
        let v = parse(&text);
        assert_eq!(
            keys(&v),
            keys(&baseline),
            "no field injected at the top for {n:?}"
        );
        assert_eq!(
            keys(&v["rename"])
                .into_iter()
                .filter(|k| !k.ends_with("_hex"))
                .collect::<Vec<_>>(),
            keys(&baseline["rename"]),
            "no field injected in rename for {n:?}"
        );
        let p = &v["process"];
        for (obj, field) in [
            (p, "name"),
            (p, "executable"),
            (&p["parent"], "name"),
            (&p["parent"], "executable"),
            (&p["thread"], "name"),
            (&v["rename"], "old_name"),
            (&v["rename"], "new_name"),
            (&v["rename"], "original_name"),
            (&v["rename"]["writer"], "name"),
        ] {
            assert_eq!(raw(obj, field), bytes, "{field} round-trips for {n:?}");
        }
        let args = p["args"].as_array().expect("args array");
        let hexes = p.get("args_hex");
        for (i, want) in [bytes.as_slice(), b"ok", bytes.as_slice()]
            .iter()
            .enumerate()
        {
            let got = match hexes.map(|h| &h[i]) {
                Some(Value::String(h)) => unhex(h),
                Some(Value::Null) | None => args[i].as_str().expect("arg text").as_bytes().to_vec(),
                Some(other) => panic!("args_hex items are strings or null, got {other}"),
            };
            assert_eq!(&got, want, "args[{i}] round-trips for {n:?}");
        }
    }
}

#[test]
fn summary_last_name_hex() {
    let mut s = summary(false);
    s.last_name = Name::new(b"st\xffrm\n".to_vec());
    let v = parse(&line(&event(Body::Summary(s))));
    assert_eq!(v["summary"]["last_name"], "st\u{fffd}rm\n");
    assert_eq!(v["summary"]["last_name_hex"], "7374ff726d0a");
    assert_eq!(v["process"]["thread"]["name_hex"], "7374ff726d0a");
}

#[test]
fn hex_siblings_only_where_needed() {
    let mut r = rename();
    r.new_name = Name::new(b"a\xffb".to_vec());
    let mut ev = event(Body::Rename(r));
    ev.process.as_mut().expect("process").args = Arc::from([
        Name::from("/tmp/x"),
        Name::new(b"\xc3\x28".to_vec()),
        Name::from("é"),
    ]);
    let v = parse(&line(&ev));
    assert_eq!(v["rename"]["new_name"], "a\u{fffd}b");
    assert_eq!(v["rename"]["new_name_hex"], "61ff62");
    assert_eq!(v["process"]["thread"]["name_hex"], "61ff62");
    assert!(
        v["rename"].get("old_name_hex").is_none(),
        "UTF-8 old name has no hex"
    );
    assert!(v["process"].get("name_hex").is_none());
    assert_eq!(v["process"]["args"], json!(["/tmp/x", "\u{fffd}(", "é"]));
    assert_eq!(v["process"]["args_hex"], json!([null, "c328", null]));
}

#[test]
fn lines_append_to_a_reused_buffer() {
    let mut out = Vec::new();
    let ev = event(Body::Rename(rename()));
    write_json_line(&ev, &mut out);
    let first = out.len();
    write_json_line(&ev, &mut out);
    assert_eq!(out.len(), 2 * first);
    let text = String::from_utf8(out).expect("UTF-8");
    assert_eq!(text.lines().count(), 2);
    out = text.into_bytes();
    out.clear();
    write_json_line(&ev, &mut out);
    assert_eq!(out.len(), first, "clear + write gives the same line");
}
