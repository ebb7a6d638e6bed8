//! The alerting rules for the daemon's own health
//! (`deploy/prometheus/rename-audit.rules.yml`, issue 20 item 6):
//! - promtool (Debian's `prometheus` package) accepts them, and their unit
//!   tests pass, with every rule tested both firing and not firing;
//! - every metric and label they use is one the real daemon exports, so a
//!   renamed metric or label breaks this test rather than the rules;
//! - a real Prometheus scraping a real daemon evaluates every rule without
//!   error, and a refused reload and a stopped daemon move their rules.
//!
//! Host only: needs promtool and prometheus, nothing kernel-dependent.
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    daemon::Daemon,
    http,
    servers::{Prometheus, free_port},
};

const PROMTOOL: &str = "/usr/bin/promtool";
const RULES: &str = "rename-audit.rules.yml";
const RULE_TESTS: &str = "rename-audit.rules.test.yml";
/// The alerts the rules file defines, one per failure the issue names.
const ALERTS: [&str; 8] = [
    "RenameAuditDown",
    "RenameAuditAbsent",
    "RenameAuditEventsLost",
    "RenameAuditOutputFailing",
    "RenameAuditSinkDeliveriesFailing",
    "RenameAuditSinkErrors",
    "RenameAuditKernelFaults",
    "RenameAuditConfigReloadFailed",
];

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn read(name: &str) -> String {
    let path = rules_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn promtool(args: &[&str]) -> String {
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: install Debian's prometheus package (cargo xtask setup does)"
    );
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// `alert:` names in the rules file, in order.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let rules = read(RULES);
    assert_eq!(alert_names(&rules), ALERTS, "the rules file's alerts");
    let checked = promtool(&["check", "rules", RULES]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{checked}"
    );
    let tested = promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // Each rule is tested both ways: some evaluation expects it firing and
    // some expects it silent. promtool would pass a test file that never
    // names a rule.
    let tests = read(RULE_TESTS);
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut lines = tests.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let Some(alert) = line.strip_prefix("alertname:") else {
            continue;
        };
        let expect = lines.next().expect("exp_alerts after alertname");
        let entry = seen.entry(alert.trim().to_owned()).or_default();
        match expect {
            "exp_alerts: []" => entry.1 += 1,
            "exp_alerts:" => entry.0 += 1,
            other => panic!("after alertname {alert}: {other:?}"),
        }
    }
    for alert in ALERTS {
        let (firing, silent) = seen.get(alert).copied().unwrap_or_default();
        assert!(
            firing > 0 && silent > 0,
            "{alert}: {firing} firing and {silent} silent cases in {RULE_TESTS}"
        );
    }
}

/// A sample line of the exposition: metric name and labels.
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

fn parse_exposition(body: &str) -> Vec<Series> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, _value) = l.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            let labels = split_matchers(labels)
                .into_iter()
                .map(|(k, op, v)| {
                    assert_eq!(op, "=", "{l}");
                    (k, v)
                })
                .collect();
            Series {
                name: name.to_owned(),
                labels,
            }
        })
        .collect()
}

/// `a="x",b!="y"` as (label, operator, value); values hold no quote or
/// comma here (fixed vocabularies).
fn split_matchers(s: &str) -> Vec<(String, String, String)> {
    s.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            let at = m
                .find(['=', '!'])
                .unwrap_or_else(|| panic!("matcher {m:?}"));
            let (label, rest) = m.split_at(at);
            let quote = rest.find('"').unwrap_or_else(|| panic!("matcher {m:?}"));
            let (op, value) = rest.split_at(quote);
            (
                label.trim().to_owned(),
                op.to_owned(),
                value.trim_matches('"').to_owned(),
            )
        })
        .collect()
}

/// What the rules ask of the exposition: each `rename_audit_*` name (in
/// expressions and in the text that points operators at other metrics),
/// with the label matchers written after it and the labels an enclosing
/// `by (...)` groups on.
#[derive(Default, Debug)]
struct Uses {
    /// name -> (label, operator, value) matchers.
    matchers: BTreeMap<String, BTreeSet<(String, String, String)>>,
    /// name -> labels grouped on.
    grouped: BTreeMap<String, BTreeSet<String>>,
}

fn uses(rules: &str) -> Uses {
    let text: String = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        // Quoted inside YAML strings in the annotations.
        .replace("\\\"", "\"");
    let mut uses = Uses::default();
    let mut by: Option<BTreeSet<String>> = None;
    let mut rest = text.as_str();
    loop {
        let next_metric = rest.find("rename_audit_");
        let next_by = rest.find("by (");
        match (next_metric, next_by) {
            (Some(m), b) if b.is_none_or(|b| m < b) => {
                let tail = &rest[m..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let name = tail[..end].to_owned();
                let after = &tail[end..];
                let set = uses.matchers.entry(name.clone()).or_default();
                if let Some(inner) = after.strip_prefix('{') {
                    let close = inner.find('}').expect("closing brace");
                    // Annotation templates ({{ $labels.x }}) are not matchers.
                    if !inner[..close].contains('$') {
                        set.extend(split_matchers(&inner[..close]));
                    }
                }
                if let Some(labels) = by.take() {
                    uses.grouped.entry(name).or_default().extend(labels);
                }
                rest = after;
            }
            (_, Some(b)) => {
                let tail = &rest[b + "by (".len()..];
                let close = tail.find(')').expect("closing parenthesis");
                by = Some(
                    tail[..close]
                        .split(',')
                        .map(|l| l.trim().to_owned())
                        .filter(|l| l != "job" && l != "instance")
                        .collect(),
                );
                rest = &tail[close..];
            }
            _ => break,
        }
    }
    uses
}

/// The daemon with `[sinks.prometheus]` on loopback, and an Alertmanager
/// and a syslog sink so that every sink's series exist (nothing listens
/// at their addresses; nothing is sent to them in these tests).
fn daemon_with_metrics(dir: &Path, all_sinks: bool) -> (Daemon, SocketAddr, PathBuf, String) {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = dir.join("config.toml");
    let mut text = format!("[sinks.prometheus]\nlisten = \"{listen}\"\n");
    if all_sinks {
        text.push_str(&format!(
            "\n[sinks.alertmanager]\nurl = \"http://127.0.0.1:{}\"\n\n\
             [sinks.syslog]\ntransport = \"udp\"\naddress = \"127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ));
    }
    std::fs::write(&config, &text).unwrap();
    let d = Daemon::start(&["--config", config.to_str().unwrap()]);
    (d, listen, config, text)
}

#[test]
fn every_metric_and_label_the_rules_use_is_exported_by_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let (mut d, listen, _config, _) = daemon_with_metrics(dir.path(), true);
    let (status, body) = http::get(listen, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    let exported = parse_exposition(&body);
    let uses = uses(&read(RULES));
    // The rules' metric names, as a change to them would show.
    let names: Vec<&str> = uses.matchers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "rename_audit_config_last_reload_successful",
            "rename_audit_events_lost_by_reason_total",
            "rename_audit_events_lost_total",
            "rename_audit_kernel_faults_total",
            "rename_audit_sink_errors_total",
            "rename_audit_sink_failed_total",
            "rename_audit_sink_queue_dropped_total",
        ],
        "{uses:#?}"
    );
    for (name, matchers) in &uses.matchers {
        let series: Vec<&Series> = exported.iter().filter(|s| &s.name == name).collect();
        assert!(
            !series.is_empty(),
            "the rules use {name}, not exported:\n{body}"
        );
        for (label, op, value) in matchers {
            let ok = series.iter().any(|s| match op.as_str() {
                "=" => s.labels.get(label) == Some(value),
                "!=" => s.labels.get(label).is_some_and(|v| v != value),
                other => panic!("operator {other} in the rules"),
            });
            assert!(
                ok,
                "the rules select {name}{{{label}{op}\"{value}\"}}, which no exported series \
                 matches:\n{body}"
            );
        }
        for label in uses.grouped.get(name).into_iter().flatten() {
            assert!(
                series.iter().all(|s| s.labels.contains_key(label)),
                "the rules group {name} by {label}, a label it lacks:\n{body}"
            );
        }
    }
    // Every grouped metric was seen with its grouping labels.
    assert_eq!(
        uses.grouped
            .iter()
            .map(|(n, l)| format!("{n}: {}", l.iter().cloned().collect::<Vec<_>>().join(",")))
            .collect::<Vec<_>>(),
        [
            "rename_audit_config_last_reload_successful: ",
            "rename_audit_events_lost_total: class",
            "rename_audit_kernel_faults_total: fault",
            "rename_audit_sink_errors_total: sink",
            "rename_audit_sink_failed_total: sink",
            "rename_audit_sink_queue_dropped_total: sink",
        ]
    );
    d.stop();
}

/// Prometheus's alerts for `alertname` (pending or firing).
fn alerts(prometheus: &Prometheus, alertname: &str) -> Vec<Value> {
    let v = prometheus.api("/api/v1/alerts");
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .collect()
}

/// Waits for Prometheus to hold `alertname` in `state` for `instance`, or
/// (`state` None) to hold none at all.
fn wait_for_alert(
    prometheus: &Prometheus,
    alertname: &str,
    instance: &str,
    state: Option<&str>,
) -> Option<Value> {
    let deadline = Instant::now() + crate::support::patience(Duration::from_secs(30));
    loop {
        let now = alerts(prometheus, alertname);
        let ours = now.iter().find(|a| a["labels"]["instance"] == instance);
        match (state, ours) {
            (Some(want), Some(a)) if a["state"] == want => return Some(a.clone()),
            (None, None) => return None,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{alertname} for {instance} never became {state:?}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_real_prometheus_evaluates_the_rules_against_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    // Only the Prometheus sink: an Alertmanager nobody runs would fail on
    // the first alert any other process on the host raises.
    let (mut d, listen, config, good) = daemon_with_metrics(dir.path(), false);
    let rules = rules_dir().join(RULES);
    let prometheus = Prometheus::start_with_rules(&[listen], &[&rules]);
    let instance = listen.to_string();
    let up = format!("up{{job=\"rename-audit\",instance=\"{instance}\"}}");
    prometheus.wait_for_value(&up, Duration::from_secs(30), |v| v == 1.0);

    // Every rule evaluates against the real exposition without an error.
    let deadline = Instant::now() + crate::support::patience(Duration::from_secs(30));
    loop {
        let v = prometheus.api("/api/v1/rules");
        let rules: Vec<Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let names: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ALERTS, "{v}");
        // Evaluated since Prometheus loaded them: health moves from
        // "unknown" to "ok" (or "err").
        let evaluated = rules
            .iter()
            .all(|r| r["health"] == "ok" && r["evaluationTime"].as_f64().is_some());
        // lastError is left out when empty.
        if evaluated
            && rules
                .iter()
                .all(|r| r["lastError"].as_str().unwrap_or("").is_empty())
        {
            break;
        }
        assert!(
            rules.iter().all(|r| r["health"] != "err"),
            "a rule fails to evaluate: {v}"
        );
        assert!(Instant::now() < deadline, "rules not evaluated: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A healthy daemon is neither down nor refusing its configuration
    // (losses and faults depend on what the rest of the host does).
    for alertname in ["RenameAuditDown", "RenameAuditConfigReloadFailed"] {
        let now = alerts(&prometheus, alertname);
        assert!(now.is_empty(), "{alertname}: {now:?}");
    }

    // A refused reload fires at once (its rule has no `for`) and names the
    // host; the next good reload clears it.
    std::fs::write(&config, "[sinks.prometheus]\nlisten = 7\n").unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration not reloaded");
    let alert = wait_for_alert(
        &prometheus,
        "RenameAuditConfigReloadFailed",
        &instance,
        Some("firing"),
    )
    .expect("firing");
    assert_eq!(alert["labels"]["job"], "rename-audit", "{alert}");
    assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
    std::fs::write(&config, &good).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded");
    wait_for_alert(
        &prometheus,
        "RenameAuditConfigReloadFailed",
        &instance,
        None,
    );

    // A stopped daemon is down: pending at once, firing after its 5 minutes.
    d.stop();
    let alert = wait_for_alert(&prometheus, "RenameAuditDown", &instance, Some("pending"))
        .expect("pending");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
}
