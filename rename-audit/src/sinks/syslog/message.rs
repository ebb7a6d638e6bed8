//! One event as an RFC 5424 message: what goes in the header, the structured
//! data and MSG.

use crate::event::{AgentRun, Body, Class, Event};
use crate::names::Name;

use super::rfc5424::{self, Header, SdElement};

/// Private SD-IDs under the documentation enterprise number (RFC 5612).
pub(crate) const SD_RENAME: &str = "rename@32473";
pub(crate) const SD_ALERT: &str = "alert@32473";
#[cfg(test)]
pub(crate) const SD_IDS: [&str; 2] = [SD_RENAME, SD_ALERT];

pub(crate) const APP_NAME: &str = "rename-audit";
/// Plain events are informational.
const INFO: u8 = 6;
/// Longest structured-data value taken from a path, in chars.
const MAX_PATH_CHARS: usize = 512;

/// Who sends: fixed for the daemon's lifetime.
pub(crate) struct Origin {
    pub hostname: String,
    pub procid: String,
    pub facility: u8,
}

pub(crate) fn format(ev: &Event, origin: &Origin, max_len: usize) -> String {
    let severity = ev
        .alert
        .as_ref()
        .map_or(INFO, |a| a.severity.syslog_priority());
    let header = Header {
        facility: origin.facility,
        severity,
        timestamp: ev.timestamp,
        hostname: &origin.hostname,
        app_name: APP_NAME,
        procid: &origin.procid,
        msgid: ev.body.action(),
    };
    let mut sd = vec![SdElement {
        id: SD_RENAME,
        params: params(ev),
    }];
    if let Some(a) = &ev.alert {
        let mut p = vec![
            ("rule", a.rule_id.to_owned()),
            ("rule_name", a.rule_name.to_owned()),
            ("severity", a.severity.as_str().to_owned()),
            ("score", a.severity.score().to_string()),
        ];
        if let Some(t) = a.technique {
            p.push(("technique", t.to_owned()));
        }
        sd.push(SdElement {
            id: SD_ALERT,
            params: p,
        });
    }
    let msg = match &ev.alert {
        Some(a) => a.message.clone(),
        None => one_liner(ev),
    };
    rfc5424::format(&header, &sd, &msg, max_len)
}

/// `format = "ecs-json"`: MSG is the event's ECS JSON line, made by the
/// output's own encoder, so the central store gets exactly the object the
/// host's output has; the priority is the journal's (alerts by severity,
/// losses and gaps warning). `line` is a buffer kept between calls.
pub(crate) fn format_ecs_json(ev: &Event, origin: &Origin, line: &mut Vec<u8>) -> String {
    line.clear();
    crate::output::write_json_line(ev, line);
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    let header = Header {
        facility: origin.facility,
        severity: crate::output::ecs::syslog_priority(ev),
        timestamp: ev.timestamp,
        hostname: &origin.hostname,
        app_name: APP_NAME,
        procid: &origin.procid,
        msgid: ev.body.action(),
    };
    // The encoder writes UTF-8 and escapes every control character, so the
    // line is one line of text; lossy only in name.
    rfc5424::format_uncut(&header, &[], &String::from_utf8_lossy(line))
}

fn params(ev: &Event) -> Vec<(&'static str, String)> {
    let mut p = vec![("sequence", ev.sequence.to_string()), ("event_id", ev.id())];
    if let Some(proc_) = &ev.process {
        p.push(("pid", proc_.pid.to_string()));
        p.push(("process_name", proc_.name.escaped()));
        if let Some(exe) = &proc_.executable {
            p.push(("executable", clip(exe.escaped(), MAX_PATH_CHARS)));
        }
        if let Some(uid) = proc_.uid {
            p.push(("uid", uid.to_string()));
        }
        if let Some(unit) = &proc_.unit {
            p.push(("unit", clip(Name::from(unit.as_str()).escaped(), 256)));
        }
        if let Some(parent) = &proc_.parent {
            p.push(("parent_pid", parent.pid.to_string()));
        }
    }
    match &ev.body {
        Body::Rename(r) => {
            p.extend([
                ("tid", r.tid.to_string()),
                ("main_thread", r.main_thread.to_string()),
                ("method", r.method.as_str().to_owned()),
                ("old_name", r.old_name.escaped()),
                ("new_name", r.new_name.escaped()),
                ("original_name", r.original_name.escaped()),
                ("writer_pid", r.writer.pid.to_string()),
                ("writer_tid", r.writer.tid.to_string()),
                ("writer_name", r.writer.name.escaped()),
                ("count", r.count.to_string()),
            ]);
        }
        Body::Summary(s) => {
            p.extend([
                ("class", s.class.as_str().to_owned()),
                ("tid", s.tid.to_string()),
                ("count", s.count.to_string()),
                ("first_seen", rfc5424::timestamp(s.first_seen)),
                ("last_seen", rfc5424::timestamp(s.last_seen)),
                ("last_name", s.last_name.escaped()),
                ("thread_exited", s.thread_exited.to_string()),
            ]);
        }
        Body::Lost(l) => {
            p.extend([
                ("class", l.class.as_str().to_owned()),
                ("reason", l.reason.as_str().to_owned()),
                ("count", l.count.to_string()),
            ]);
            if let Some(sink) = l.sink {
                p.push(("sink", sink.to_owned()));
            }
        }
        Body::Found(f) => p.push(("name", f.name.escaped())),
        Body::Hidden(h) => {
            p.extend([
                ("hidden_pid", h.pid.to_string()),
                ("mount_point", h.mount_point.escaped()),
                ("found", h.found.as_str().to_owned()),
            ]);
            if let Some(by) = h.covered_by {
                p.push(("covered_by_pid", by.to_string()));
            }
            if let Some(entry) = &h.entry {
                p.push(("entry", entry.escaped()));
            }
        }
        Body::Agent(run) => {
            p.push(("daemon_pid", std::process::id().to_string()));
            match run {
                AgentRun::Started => {}
                AgentRun::Stopped { reason, .. } => {
                    p.push(("stop_reason", reason.as_str().to_owned()));
                }
                AgentRun::Gap {
                    since,
                    previous_run,
                    previous_sequence,
                    previous_stopped,
                    until,
                } => p.extend([
                    ("gap_start", rfc5424::timestamp(*since)),
                    ("gap_end", rfc5424::timestamp(*until)),
                    (
                        "previous_event_id",
                        format!("{previous_run}-{previous_sequence}"),
                    ),
                    ("previous_stopped", previous_stopped.to_string()),
                ]),
            }
        }
    }
    p
}

/// MSG for a plain event: a human line built from escaped names only.
fn one_liner(ev: &Event) -> String {
    let pid = ev.process.as_ref().map(|p| p.pid);
    match &ev.body {
        Body::Rename(r) => {
            let what = if r.main_thread {
                "process renamed"
            } else {
                "thread renamed"
            };
            format!(
                "{what}: pid {} tid {} \"{}\" -> \"{}\" by pid {} tid {} \"{}\" via {}",
                pid.unwrap_or(r.writer.pid),
                r.tid,
                r.old_name.escaped(),
                r.new_name.escaped(),
                r.writer.pid,
                r.writer.tid,
                r.writer.name.escaped(),
                r.method.as_str()
            )
        }
        Body::Summary(s) => format!(
            "renames summarized: tid {} renamed {} times, last name \"{}\"",
            s.tid,
            s.count,
            s.last_name.escaped()
        ),
        Body::Found(f) => format!(
            "process found at start-up: pid {} named \"{}\"",
            pid.unwrap_or(0),
            f.name.escaped()
        ),
        Body::Hidden(h) => format!(
            "process hidden: pid {} is covered by a mount at \"{}\"",
            h.pid,
            h.mount_point.escaped()
        ),
        Body::Agent(AgentRun::Started) => {
            format!("rename-audit started (pid {})", std::process::id())
        }
        Body::Agent(AgentRun::Gap {
            since,
            until,
            previous_stopped,
            ..
        }) => format!(
            "monitoring gap: {}; nothing was recorded from {} to {}",
            if *previous_stopped {
                "the daemon was restarted"
            } else {
                "the previous run did not stop cleanly"
            },
            rfc5424::timestamp(*since),
            rfc5424::timestamp(*until)
        ),
        Body::Agent(AgentRun::Stopped { reason, error }) => {
            let mut msg = format!(
                "rename-audit stopped (pid {}): {}",
                std::process::id(),
                reason.as_str()
            );
            if let Some(error) = error {
                msg.push_str(": ");
                msg.push_str(&Name::from(error.as_str()).escaped());
            }
            msg
        }
        Body::Lost(l) if l.class == Class::Output => format!(
            "events lost: {} records could not be written to the output ({})",
            l.count,
            l.reason.as_str()
        ),
        Body::Lost(l) if l.class == Class::Sink => format!(
            "events lost: {} records could not be delivered by the {} sink ({})",
            l.count,
            l.sink.unwrap_or("?"),
            l.reason.as_str()
        ),
        Body::Lost(l) => format!(
            "events lost: {} {} records could not be sent by the kernel ({})",
            l.count,
            l.class.as_str(),
            l.reason.as_str()
        ),
    }
}

fn clip(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Alert, Class, Lost, LostReason, Method, ProcessContext, Rename, Severity, Summary, Writer,
    };
    use std::sync::Arc;
    use time::OffsetDateTime;

    fn origin() -> Origin {
        Origin {
            hostname: "web-1".into(),
            procid: "77".into(),
            facility: 4,
        }
    }

    fn rename(new_name: &[u8]) -> Event {
        Event {
            sequence: 5,
            timestamp: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            host: Arc::from("web-1"),
            process: Some(ProcessContext {
                pid: 10,
                name: Name::new(new_name.to_vec()),
                executable: Some(Name::from("/tmp/a b]\"")),
                uid: Some(1000),
                ..Default::default()
            }),
            body: Body::Rename(Rename {
                tid: 10,
                old_name: Name::from("sleep"),
                new_name: Name::new(new_name.to_vec()),
                main_thread: true,
                method: Method::Procfs,
                writer: Writer {
                    pid: 10,
                    tid: 11,
                    name: Name::from("worker"),
                },
                original_name: Name::from("sleep"),
                count: 3,
            }),
            alert: None,
        }
    }

    #[test]
    fn plain_event_is_info_with_escaped_params() {
        let m = format(&rename(b"evil\nname\x1b]\"x"), &origin(), 8192);
        assert!(!m.contains('\n') && !m.contains('\x1b'), "{m:?}");
        assert!(
            m.starts_with(&format!("<38>1 2023-11-14T22:13:20.000000Z web-1 rename-audit 77 process-renamed [rename@32473 sequence=\"5\" event_id=\"{}-5\" pid=\"10\" ", crate::event::run_id())),
            "{m}"
        );
        // escaped() then SD escaping: `\n` -> `\\n`, `]` -> `\]`, `\"` -> `\\\"`.
        assert!(
            m.contains(r#" new_name="evil\\nname\\u{1b}\]\\\"x" "#),
            "{m}"
        );
        assert!(m.contains(r#" executable="/tmp/a b\]\\\"" "#), "{m}");
        assert!(
            m.ends_with(r#"] process renamed: pid 10 tid 10 "sleep" -> "evil\nname\u{1b}]\"x" by pid 10 tid 11 "worker" via procfs"#),
            "{m}"
        );
    }

    #[test]
    fn alert_uses_its_severity_and_message() {
        let mut ev = rename(b"kworker/0:1");
        ev.alert = Some(Alert {
            rule_id: "kernel-thread-mimic",
            rule_name: "Kernel thread mimic",
            severity: Severity::Critical,
            technique: Some("T1036.004"),
            message: "pid 10 took the name \"kworker/0:1\"".into(),
            matched: vec!["kernel-thread-mimic"],
            judged: None,
        });
        let m = format(&ev, &origin(), 8192);
        assert!(m.starts_with("<34>1 "), "{m}");
        assert!(
            m.contains(r#"[alert@32473 rule="kernel-thread-mimic" rule_name="Kernel thread mimic" severity="critical" score="99" technique="T1036.004"]"#),
            "{m}"
        );
        assert!(
            m.ends_with(r#"] pid 10 took the name "kworker/0:1""#),
            "{m}"
        );
    }

    #[test]
    fn ecs_json_msg_is_the_output_line_and_hostname_is_printable_ascii() {
        let mut ev = rename(b"evil\nname\xff\xfe\"}");
        ev.host = Arc::from("höst name\t1");
        let mut origin = origin();
        origin.hostname = ev.host.to_string();
        let mut buf = Vec::new();
        let m = format_ecs_json(&ev, &origin, &mut buf);
        let mut line = Vec::new();
        crate::output::write_json_line(&ev, &mut line);
        let line = String::from_utf8(line).unwrap();
        let prefix =
            "<38>1 2023-11-14T22:13:20.000000Z h_st_name_1 rename-audit 77 process-renamed - ";
        assert_eq!(m, format!("{prefix}{}", line.trim_end_matches('\n')));
        assert!(!m.chars().any(char::is_control), "{m:?}");
        // The JSON keeps the exact host name and the name's raw bytes.
        let json: serde_json::Value = serde_json::from_str(&m[prefix.len()..]).unwrap();
        assert_eq!(json["host"]["hostname"], "höst name\t1");
        assert_eq!(json["rename"]["new_name_hex"], "6576696c0a6e616d65fffe227d");
        assert_eq!(json["event"]["id"], ev.id());
        // No cut, however long.
        ev.process.as_mut().unwrap().executable = Some(Name::from("/x".repeat(40_000).as_str()));
        let m = format_ecs_json(&ev, &origin, &mut buf);
        assert!(m.len() > 80_000 && m.ends_with('}'), "{}", m.len());
    }

    #[test]
    fn summaries_and_losses() {
        let mut ev = rename(b"x");
        ev.body = Body::Summary(Summary {
            class: Class::Thread,
            tid: 12,
            count: 5000,
            first_seen: OffsetDateTime::UNIX_EPOCH,
            last_seen: OffsetDateTime::UNIX_EPOCH,
            last_name: Name::from("t\n"),
            thread_exited: true,
        });
        let m = format(&ev, &origin(), 8192);
        assert!(m.contains(" renames-summarized [rename@32473 "), "{m}");
        assert!(m.contains(r#" count="5000" "#), "{m}");
        assert!(m.ends_with(r#"last name "t\n""#), "{m}");

        ev.process = None;
        ev.body = Body::Lost(Lost {
            class: Class::Process,
            reason: LostReason::RingFull,
            count: 2,
            sink: None,
        });
        let m = format(&ev, &origin(), 8192);
        let run = crate::event::run_id();
        assert!(
            m.ends_with(&format!(r#" events-lost [rename@32473 sequence="5" event_id="{run}-5" class="process" reason="ring-full" count="2"] events lost: 2 process records could not be sent by the kernel (ring-full)"#)),
            "{m}"
        );
        ev.body = Body::Lost(Lost {
            class: Class::Output,
            reason: LostReason::WriteFailed,
            count: 7,
            sink: None,
        });
        let m = format(&ev, &origin(), 8192);
        assert!(
            m.ends_with(&format!(r#" events-lost [rename@32473 sequence="5" event_id="{run}-5" class="output" reason="write-failed" count="7"] events lost: 7 records could not be written to the output (write-failed)"#)),
            "{m}"
        );
        ev.body = Body::Lost(Lost {
            class: Class::Sink,
            reason: LostReason::TooBig,
            count: 2,
            sink: Some("syslog"),
        });
        let m = format(&ev, &origin(), 8192);
        assert!(
            m.ends_with(&format!(r#" events-lost [rename@32473 sequence="5" event_id="{run}-5" class="sink" reason="too-big" count="2" sink="syslog"] events lost: 2 records could not be delivered by the syslog sink (too-big)"#)),
            "{m}"
        );
    }

    #[test]
    fn a_gap_says_whether_the_previous_run_stopped_cleanly() {
        let mut ev = rename(b"x");
        ev.process = None;
        let gap = |previous_stopped| {
            Body::Agent(AgentRun::Gap {
                since: OffsetDateTime::from_unix_timestamp(1_699_999_990).unwrap(),
                previous_run: "prev".into(),
                previous_sequence: 9,
                previous_stopped,
                until: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            })
        };
        ev.body = gap(true);
        let m = format(&ev, &origin(), 8192);
        assert!(
            m.ends_with(r#" gap_start="2023-11-14T22:13:10.000000Z" gap_end="2023-11-14T22:13:20.000000Z" previous_event_id="prev-9" previous_stopped="true"] monitoring gap: the daemon was restarted; nothing was recorded from 2023-11-14T22:13:10.000000Z to 2023-11-14T22:13:20.000000Z"#),
            "{m}"
        );
        ev.body = gap(false);
        let m = format(&ev, &origin(), 8192);
        assert!(
            m.ends_with(r#" previous_stopped="false"] monitoring gap: the previous run did not stop cleanly; nothing was recorded from 2023-11-14T22:13:10.000000Z to 2023-11-14T22:13:20.000000Z"#),
            "{m}"
        );
    }
}
