//! The Alertmanager v2 `postableAlert` built from one alert event.
//!
//! Names and paths reach labels and annotations only through
//! [`Name::escaped`]: one line, no control bytes, raw bytes recoverable.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::{Alert, Body, Event};
use crate::names::Name;

/// Longest label or annotation value taken from a name or path, in chars.
const MAX_VALUE_CHARS: usize = 1024;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct PostableAlert {
    pub labels: BTreeMap<&'static str, String>,
    pub annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
}

/// `None` when the event carries no alert.
pub(crate) fn build(
    ev: &Event,
    host: &str,
    suppressed: u64,
    now: OffsetDateTime,
    resolve_after: Duration,
) -> Option<PostableAlert> {
    let alert = ev.alert.as_ref()?;
    let process = ev.process.as_ref();
    let process_name = process.map(|p| clip(p.name.escaped())).unwrap_or_default();
    let executable = process
        .and_then(|p| p.executable.as_ref())
        .map(|e| clip(e.escaped()))
        // Alertmanager drops labels with empty values; keep the label visible.
        .unwrap_or_else(|| "unknown".to_owned());

    let mut labels = host_labels(host, crate::identity::current());
    labels.insert("alertname", alertname(alert.rule_id));
    labels.insert("rule", alert.rule_id.to_owned());
    labels.insert("severity", alert.severity.as_str().to_owned());
    labels.insert("process_name", nonempty(process_name.clone()));
    labels.insert("executable", executable.clone());

    let pid = process.map(|p| p.pid);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary",
        match pid {
            Some(pid) => format!(
                "{}: \"{}\" (pid {pid}) on {host}",
                alert.rule_name, process_name
            ),
            None => format!("{} on {host}", alert.rule_name),
        },
    );
    annotations.insert("description", description(ev, alert, &executable));
    annotations.insert("rule_name", alert.rule_name.to_owned());
    // Every matched rule, as in the event's `rename.rules`.
    annotations.insert("rules", alert.matched.join(","));
    annotations.insert("severity_score", alert.severity.score().to_string());
    annotations.insert("event_sequence", ev.sequence.to_string());
    annotations.insert("event_id", ev.id());
    if let Some(t) = alert.technique {
        annotations.insert("technique", t.to_owned());
    }
    // Which name a name rule judged (`name` or `argv0`), as `masquerade.judged`.
    if let Some(j) = &alert.judged {
        annotations.insert("judged", j.source.as_str().to_owned());
    }
    if let Some(pid) = pid {
        annotations.insert("pid", pid.to_string());
    }
    if suppressed > 0 {
        annotations.insert("suppressed_count", suppressed.to_string());
    }

    let starts = ev.timestamp;
    // Ends relative to now, not to the rename: a late post must not arrive
    // already resolved.
    let ends = now.max(starts) + resolve_after;
    Some(PostableAlert {
        labels,
        annotations,
        starts_at: rfc3339(starts),
        ends_at: rfc3339(ends),
    })
}

/// The labels that say where an alert comes from, for every alert this
/// sink posts (a rule's, or the sink's own): `host`, and the operator's
/// `[host] labels` when an identity is installed. Their keys never clash
/// with the alert's own labels (the configuration refuses
/// [`crate::identity::ALERT_LABELS_TAKEN`]).
pub(crate) fn host_labels(
    host: &str,
    identity: Option<&'static crate::identity::Identity>,
) -> BTreeMap<&'static str, String> {
    let mut labels: BTreeMap<&'static str, String> = identity
        .into_iter()
        .flat_map(|i| i.alert_labels())
        .collect();
    labels.insert("host", host.to_owned());
    labels
}

fn description(ev: &Event, alert: &Alert, executable: &str) -> String {
    let mut d = alert.message.clone();
    if let Body::Rename(r) = &ev.body {
        let pid = ev.process.as_ref().map(|p| p.pid).unwrap_or(r.writer.pid);
        d.push_str(&format!(
            " (pid {pid}, tid {}, \"{}\" -> \"{}\" via {}, by pid {} tid {} \"{}\", executable {executable}, original name \"{}\")",
            r.tid,
            clip(r.old_name.escaped()),
            clip(r.new_name.escaped()),
            r.method.as_str(),
            r.writer.pid,
            r.writer.tid,
            clip(r.writer.name.escaped()),
            clip(r.original_name.escaped()),
        ));
    }
    // The rule's message is built from escaped names; make sure of one line.
    one_line(d)
}

/// `kernel-thread-mimic` -> `KernelThreadMimic`, the usual alertname shape.
pub(crate) fn alertname(rule_id: &str) -> String {
    rule_id
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn nonempty(s: String) -> String {
    if s.is_empty() {
        "unknown".to_owned()
    } else {
        s
    }
}

fn clip(s: String) -> String {
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn one_line(s: String) -> String {
    if s.chars().any(char::is_control) {
        Name::new(s.into_bytes()).escaped()
    } else {
        s
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Method, ProcessContext, Rename, Severity, Writer};
    use std::sync::Arc;

    fn alert_event(new_name: &[u8], exe: Option<&str>) -> Event {
        Event {
            sequence: 9,
            timestamp: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            host: Arc::from("web-1"),
            process: Some(ProcessContext {
                pid: 4242,
                name: Name::new(new_name.to_vec()),
                executable: exe.map(Name::from),
                ..Default::default()
            }),
            body: Body::Rename(Rename {
                tid: 4242,
                old_name: Name::from("python3"),
                new_name: Name::new(new_name.to_vec()),
                main_thread: true,
                method: Method::Prctl,
                writer: Writer {
                    pid: 4242,
                    tid: 4242,
                    name: Name::from("python3"),
                },
                original_name: Name::from("python3"),
                count: 1,
            }),
            alert: Some(Alert {
                rule_id: "kernel-thread-mimic",
                rule_name: "Executable masquerading as a kernel thread",
                severity: Severity::Critical,
                technique: Some("T1036.004"),
                message: "pid 4242 renamed itself".to_owned(),
                matched: vec!["kernel-thread-mimic"],
                judged: None,
            }),
        }
    }

    #[test]
    fn labels_and_annotations() {
        let ev = alert_event(b"kworker/0:1", Some("/tmp/x"));
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_010).unwrap();
        let a = build(&ev, "web-1", 0, now, Duration::from_secs(600)).expect("alert");
        let l = |k: &str| a.labels.get(k).map(String::as_str);
        assert_eq!(l("alertname"), Some("KernelThreadMimic"));
        assert_eq!(l("rule"), Some("kernel-thread-mimic"));
        assert_eq!(l("severity"), Some("critical"));
        assert_eq!(l("host"), Some("web-1"));
        assert_eq!(l("process_name"), Some("kworker/0:1"));
        assert_eq!(l("executable"), Some("/tmp/x"));
        assert!(a.annotations["summary"].contains("kworker/0:1"));
        assert!(a.annotations["description"].starts_with("pid 4242 renamed itself"));
        assert_eq!(a.annotations["technique"], "T1036.004");
        assert!(!a.annotations.contains_key("suppressed_count"));
        assert_eq!(a.starts_at, "2023-11-14T22:13:20Z");
        assert_eq!(a.ends_at, "2023-11-14T22:23:30Z");
        let json = serde_json::to_value([&a]).unwrap();
        assert!(json[0]["startsAt"].is_string() && json[0]["labels"]["rule"].is_string());
    }

    #[test]
    fn the_host_labels_come_first_and_the_alert_keeps_its_own() {
        let identity: &'static crate::identity::Identity =
            Box::leak(Box::new(crate::identity::Identity {
                name: "db-1".into(),
                labels: [("env", "prod"), ("role", "db")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                ..Default::default()
            }));
        let labels = host_labels("db-1", Some(identity));
        assert_eq!(
            labels
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
            [("env", "prod"), ("host", "db-1"), ("role", "db")]
        );
        assert_eq!(host_labels("h", None).len(), 1);
        // Every label an alert sets itself is one the configuration keeps
        // operators from using.
        let ev = alert_event(b"kworker/0:1", Some("/tmp/x"));
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_010).unwrap();
        let a = build(&ev, "web-1", 0, now, Duration::from_secs(600)).expect("alert");
        for key in a.labels.keys() {
            assert!(
                crate::identity::ALERT_LABELS_TAKEN.contains(key)
                    || crate::identity::current().is_some_and(|i| i.labels.contains_key(*key)),
                "{key} is not reserved"
            );
        }
    }

    #[test]
    fn hostile_names_stay_one_line_and_suppressed_count_is_annotated() {
        let ev = alert_event(b"a\nb\x1b[0m\"]\xff", None);
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a = build(&ev, "h", 999, now, Duration::from_secs(60)).unwrap();
        for v in a.labels.values().chain(a.annotations.values()) {
            assert!(!v.chars().any(char::is_control), "control char in {v:?}");
        }
        assert_eq!(a.labels["process_name"], "a\\nb\\u{1b}[0m\\\"]\\xff");
        assert_eq!(a.labels["executable"], "unknown");
        assert_eq!(a.annotations["suppressed_count"], "999");
    }

    #[test]
    fn separators_and_bidi_controls_are_escaped_in_labels_and_annotations() {
        let ev = alert_event("x\u{2028}y\u{202e}z".as_bytes(), Some("/tmp/\u{2066}e"));
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a = build(&ev, "h", 0, now, Duration::from_secs(60)).unwrap();
        for v in a.labels.values().chain(a.annotations.values()) {
            assert!(!v.chars().any(crate::names::must_escape), "raw in {v:?}");
        }
        assert_eq!(a.labels["process_name"], "x\\u{2028}y\\u{202e}z");
        assert_eq!(a.labels["executable"], "/tmp/\\u{2066}e");
    }

    #[test]
    fn events_without_alert_build_nothing() {
        let mut ev = alert_event(b"x", None);
        ev.alert = None;
        assert!(build(&ev, "h", 0, OffsetDateTime::UNIX_EPOCH, Duration::ZERO).is_none());
    }

    #[test]
    fn alertname_is_camel_case() {
        assert_eq!(alertname("sibling-renamed-main"), "SiblingRenamedMain");
        assert_eq!(alertname("process-renamed"), "ProcessRenamed");
    }
}
