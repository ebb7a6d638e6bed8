//! The sinks against Debian's real servers on loopback: Alertmanager,
//! rsyslog and Prometheus (see `support::servers`). Events are synthetic and
//! go straight into `Sinks`; the daemon's own end-to-end tests cover capture
//! (one test here starts it, to see its sink threads' priority).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::servers::{Alertmanager, Prometheus, Rsyslog};
use rename_audit::config::{
    AlertmanagerSink, PrometheusSink, SinksConfig, SyslogSink, SyslogTarget,
};
use rename_audit::event::{Alert, Body, Event, Method, ProcessContext, Rename, Severity, Writer};
use rename_audit::metrics::Metrics;
use rename_audit::names::Name;
use rename_audit::sinks::{Facility, Sinks};
use serde_json::Value;
use time::OffsetDateTime;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A host label no other test (or run) uses, to pick out our alerts.
fn host(test: &str) -> Arc<str> {
    Arc::from(format!("sinks-test-{test}-{}", std::process::id()))
}

struct RuleKind {
    id: &'static str,
    severity: Severity,
    technique: Option<&'static str>,
}

const RULES: [RuleKind; 5] = [
    RuleKind {
        id: "kernel-thread-mimic",
        severity: Severity::Critical,
        technique: Some("T1036.004"),
    },
    RuleKind {
        id: "writable-path-stomp",
        severity: Severity::High,
        technique: Some("T1036.005"),
    },
    RuleKind {
        id: "system-name-mimic",
        severity: Severity::High,
        technique: Some("T1036.004"),
    },
    RuleKind {
        id: "sibling-renamed-main",
        severity: Severity::Medium,
        technique: None,
    },
    RuleKind {
        id: "process-renamed",
        severity: Severity::Low,
        technique: None,
    },
];

fn rename(host: &Arc<str>, seq: u64, exe: &str, new_name: &[u8], main_thread: bool) -> Event {
    let pid = 40_000 + (seq % 10_000) as u32;
    Event {
        sequence: seq,
        timestamp: OffsetDateTime::now_utc(),
        host: Arc::clone(host),
        process: Some(ProcessContext {
            pid,
            name: if main_thread {
                Name::new(new_name.to_vec())
            } else {
                Name::from("python3")
            },
            executable: Some(Name::from(exe)),
            uid: Some(1000),
            ..Default::default()
        }),
        body: Body::Rename(Rename {
            tid: if main_thread { pid } else { pid + 1 },
            old_name: Name::from("python3"),
            new_name: Name::new(new_name.to_vec()),
            main_thread,
            method: Method::Prctl,
            writer: Writer {
                pid,
                tid: if main_thread { pid } else { pid + 1 },
                name: Name::from("python3"),
            },
            original_name: Name::from("python3"),
            count: 1,
        }),
        alert: None,
    }
}

fn alert(mut ev: Event, rule: &RuleKind) -> Arc<Event> {
    let name = match &ev.body {
        Body::Rename(r) => r.new_name.escaped(),
        _ => String::new(),
    };
    ev.alert = Some(Alert {
        rule_id: rule.id,
        rule_name: rule.id,
        severity: rule.severity,
        technique: rule.technique,
        message: format!("process took the name \"{name}\""),
        matched: vec![rule.id],
        judged: None,
    });
    Arc::new(ev)
}

/// One sample of the exposition, by its exact series text.
fn sample(metrics: &Metrics, series: &str) -> f64 {
    sample_opt(metrics, series)
        .unwrap_or_else(|| panic!("no series {series} in:\n{}", metrics.encode()))
}

fn sample_opt(metrics: &Metrics, series: &str) -> Option<f64> {
    metrics.encode().lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse::<f64>().expect("numeric sample"))
    })
}

/// The total of an Alertmanager counter over the sink's own series and its
/// replicas' (`{sink="alertmanager"}` and `{sink="alertmanager",replica=..}`).
fn am_total(metrics: &Metrics, name: &str) -> f64 {
    let prefix = format!("{name}{{sink=\"alertmanager\"");
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse::<f64>().expect("numeric sample"))
        .sum()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < until,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn am_config(am: &Alertmanager) -> AlertmanagerSink {
    AlertmanagerSink::new(am.url().parse().expect("Alertmanager URL"))
}

fn label<'a>(alert: &'a Value, key: &str) -> &'a str {
    alert["labels"][key]
        .as_str()
        .unwrap_or_else(|| panic!("alert has no label {key}: {alert:#}"))
}

#[test]
fn alertmanager_gets_an_alert_of_each_rule_with_its_labels() {
    let am = Alertmanager::start();
    let rt = runtime();
    let metrics = Metrics::new();
    let host = host("am-labels");
    let cfg = SinksConfig {
        alertmanager: Some(am_config(&am)),
        ..Default::default()
    };
    let sinks = Sinks::start(&cfg, Arc::clone(&metrics), Arc::clone(&host), rt.handle())
        .expect("start sinks");

    for (i, rule) in RULES.iter().enumerate() {
        let name: &[u8] = if i == 0 {
            b"kworker/0:1"
        } else {
            b"bad\nname\x1b[0m"
        };
        let exe = format!("/tmp/masq-{i}/payload");
        sinks.send(&alert(rename(&host, i as u64, &exe, name, true), rule));
    }

    let alerts = am.wait_for_alerts("host", &host, Duration::from_secs(15), |a| {
        a.len() == RULES.len()
    });
    for (i, rule) in RULES.iter().enumerate() {
        let a = alerts
            .iter()
            .find(|a| label(a, "rule") == rule.id)
            .unwrap_or_else(|| panic!("no alert for {} in {alerts:#?}", rule.id));
        let camel: String = rule
            .id
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert_eq!(label(a, "alertname"), camel);
        assert_eq!(label(a, "severity"), rule.severity.as_str());
        assert_eq!(label(a, "host"), &*host);
        assert_eq!(label(a, "executable"), format!("/tmp/masq-{i}/payload"));
        let expected_name = if i == 0 {
            "kworker/0:1"
        } else {
            r"bad\nname\u{1b}[0m"
        };
        assert_eq!(label(a, "process_name"), expected_name, "{a:#}");
        let summary = a["annotations"]["summary"].as_str().unwrap_or_default();
        let description = a["annotations"]["description"].as_str().unwrap_or_default();
        assert!(summary.contains(expected_name), "summary: {a:#}");
        assert!(description.starts_with("process took the name"), "{a:#}");
        assert_eq!(a["status"]["state"], "active", "{a:#}");
    }
    rt.block_on(sinks.shutdown(Duration::from_secs(2)));
    assert_eq!(am_total(&metrics, "rename_audit_sink_sent_total"), 5.0);
}

#[test]
fn a_burst_of_1000_identical_alerts_arrives_as_one() {
    let am = Alertmanager::start();
    let rt = runtime();
    let metrics = Metrics::new();
    let host = host("am-burst");
    let cfg = SinksConfig {
        alertmanager: Some(AlertmanagerSink {
            dedup_window: Duration::from_secs(3),
            ..am_config(&am)
        }),
        ..Default::default()
    };
    let sinks = Sinks::start(&cfg, Arc::clone(&metrics), Arc::clone(&host), rt.handle())
        .expect("start sinks");

    let rule = &RULES[0];
    for i in 0..1000 {
        sinks.send(&alert(
            rename(&host, i, "/tmp/totally/legit", b"kworker/0:1", true),
            rule,
        ));
    }
    let suppressed = "rename_audit_alerts_suppressed_total{rule=\"kernel-thread-mimic\"}";
    wait_for("999 repeats suppressed", Duration::from_secs(10), || {
        sample_opt(&metrics, suppressed) == Some(999.0)
    });
    assert_eq!(
        am_total(&metrics, "rename_audit_sink_queue_dropped_total"),
        0.0
    );
    let first = am.wait_for_alerts("host", &host, Duration::from_secs(10), |a| !a.is_empty());
    assert_eq!(first.len(), 1, "{first:#?}");
    let sent = "rename_audit_sink_sent_total";
    assert_eq!(
        am_total(&metrics, sent),
        1.0,
        "one post for the whole burst"
    );

    // When the window ends the repeat count is posted on the same alert.
    let after = am.wait_for_alerts("host", &host, Duration::from_secs(15), |a| {
        a.iter()
            .any(|a| a["annotations"]["suppressed_count"] == "999")
    });
    assert_eq!(after.len(), 1, "still one alert: {after:#?}");
    assert_eq!(
        am_total(&metrics, sent),
        2.0,
        "plus one post carrying the count"
    );
    assert_eq!(sample(&metrics, suppressed), 999.0);
    rt.block_on(sinks.shutdown(Duration::from_secs(2)));
}

#[test]
fn a_dead_alertmanager_never_slows_send_and_every_alert_is_accounted() {
    let mut am = Alertmanager::start();
    let rt = runtime();
    let metrics = Metrics::new();
    let host = host("am-dead");
    let cfg = SinksConfig {
        alertmanager: Some(AlertmanagerSink {
            queue: 64,
            timeout: Duration::from_millis(300),
            max_retries: 1,
            ..am_config(&am)
        }),
        ..Default::default()
    };
    let sinks = Sinks::start(&cfg, Arc::clone(&metrics), Arc::clone(&host), rt.handle())
        .expect("start sinks");
    let rule = &RULES[1];
    sinks.send(&alert(rename(&host, 0, "/tmp/before", b"x", true), rule));
    am.wait_for_alerts("host", &host, Duration::from_secs(10), |a| a.len() == 1);

    am.stop();
    let n = 5000u64;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for i in 1..=n {
        // Distinct executables: nothing is deduplicated, everything queues.
        let ev = alert(
            rename(&host, i, &format!("/tmp/after-{i}"), b"x", true),
            rule,
        );
        let t = Instant::now();
        sinks.send(&ev);
        slowest = slowest.max(t.elapsed());
    }
    let total = started.elapsed();
    // A send that waited on the dead server would take at least the 300 ms
    // HTTP timeout.
    assert!(
        slowest < Duration::from_millis(50),
        "slowest send took {slowest:?}"
    );
    assert!(total < Duration::from_secs(2), "{n} sends took {total:?}");

    let errors = "rename_audit_sink_errors_total";
    wait_for("a failed post counted", Duration::from_secs(10), || {
        am_total(&metrics, errors) > 0.0
    });
    rt.block_on(sinks.shutdown(Duration::from_secs(1)));

    let sent = am_total(&metrics, "rename_audit_sink_sent_total");
    let failed = am_total(&metrics, "rename_audit_sink_failed_total");
    let dropped = am_total(&metrics, "rename_audit_sink_queue_dropped_total");
    assert_eq!(sent, 1.0, "only the alert before the outage was delivered");
    assert!(dropped > 0.0, "a queue of 64 cannot hold {n} alerts");
    assert_eq!(
        sent + failed + dropped,
        (n + 1) as f64,
        "every alert is sent, failed or dropped (sent {sent}, failed {failed}, dropped {dropped})"
    );
}

#[test]
fn rsyslog_gets_alerts_with_their_priority_and_names_never_split_a_message() {
    let rsyslog = Rsyslog::start();
    let rt = runtime();
    let metrics = Metrics::new();
    let host = host("syslog");
    let our_pid = std::process::id().to_string();

    for (transport, target) in [
        ("Udp", SyslogTarget::Udp(rsyslog.udp.to_string())),
        ("Tcp", SyslogTarget::Tcp(rsyslog.tcp.to_string())),
        ("Unix", SyslogTarget::Unix(rsyslog.unix_socket.clone())),
    ] {
        let marker = format!("/tmp/marker-{transport}-{}/payload", std::process::id());
        let cfg = SinksConfig {
            syslog: Some(SyslogSink {
                events: true,
                facility: Facility::LOCAL0,
                ..SyslogSink::new(target)
            }),
            ..Default::default()
        };
        let sinks = Sinks::start(&cfg, Arc::clone(&metrics), Arc::clone(&host), rt.handle())
            .expect("start sinks");
        // Critical alert: local0 (16) * 8 + crit (2) = 130.
        sinks.send(&alert(
            rename(&host, 1, &marker, b"evil\nname]\"\x1b[1m", true),
            &RULES[0],
        ));
        // A plain thread rename: info (6) -> 134.
        sinks.send(&Arc::new(rename(&host, 2, &marker, b"line1\nline2", false)));

        let lines = rsyslog.wait_for_lines(&marker, 2, Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(300));
        let lines_again: Vec<String> = rsyslog
            .lines()
            .into_iter()
            .filter(|l| l.contains(&marker))
            .collect();
        assert_eq!(lines_again.len(), 2, "{transport:?}: {lines_again:#?}");

        let alert_line = lines
            .iter()
            .find(|l| l.contains("msgid=process-renamed"))
            .unwrap_or_else(|| panic!("{transport:?}: no alert line in {lines:#?}"));
        assert!(
            alert_line.starts_with(&format!(
                "pri=130 sev=2 fac=16 app=rename-audit procid={our_pid} msgid=process-renamed sd=[rename@32473 "
            )),
            "{transport:?}: {alert_line}"
        );
        assert!(
            alert_line.contains(r#" new_name="evil\\nname\]\\\"\\u{1b}[1m" "#),
            "{transport:?}: {alert_line}"
        );
        assert!(
            alert_line.contains(r#"[alert@32473 rule="kernel-thread-mimic""#),
            "{transport:?}: {alert_line}"
        );
        let event_line = lines
            .iter()
            .find(|l| l.contains("msgid=thread-renamed"))
            .unwrap_or_else(|| panic!("{transport:?}: no event line in {lines:#?}"));
        assert!(
            event_line.starts_with("pri=134 sev=6 fac=16 "),
            "{transport:?}: {event_line}"
        );
        assert!(
            event_line.contains(r#""python3" -> "line1\nline2" by pid"#),
            "{transport:?}: {event_line}"
        );
        for l in &lines {
            // rsyslog writes a received control byte as #ooo: none may arrive.
            assert!(
                !l.contains("#012") && !l.contains("#033"),
                "{transport:?}: {l}"
            );
        }
        assert_eq!(
            rsyslog
                .lines()
                .iter()
                .filter(|l| l.contains("line2"))
                .count(),
            1,
            "{transport:?}: the newline name is one message"
        );
        rt.block_on(sinks.shutdown(Duration::from_secs(2)));
        // The next transport's messages must not be confused with these.
        assert!(rsyslog.lines().iter().all(|l| l.starts_with("pri=")));
        let _ = std::fs::write(&rsyslog.output, "");
    }
}

#[test]
fn syslog_over_tcp_reconnects_after_a_server_restart() {
    let mut rsyslog = Rsyslog::start();
    let rt = runtime();
    let metrics = Metrics::new();
    let host = host("syslog-reconnect");
    let cfg = SinksConfig {
        syslog: Some(SyslogSink {
            events: true,
            max_retries: 20,
            ..SyslogSink::new(SyslogTarget::Tcp(rsyslog.tcp.to_string()))
        }),
        ..Default::default()
    };
    let sinks = Sinks::start(&cfg, Arc::clone(&metrics), Arc::clone(&host), rt.handle())
        .expect("start sinks");
    let marker = format!("/tmp/reconnect-{}/x", std::process::id());
    sinks.send(&Arc::new(rename(&host, 1, &marker, b"before", true)));
    rsyslog.wait_for_lines("\"before\"", 1, Duration::from_secs(15));

    rsyslog.restart();
    sinks.send(&Arc::new(rename(&host, 2, &marker, b"after", true)));
    rsyslog.wait_for_lines("\"after\"", 1, Duration::from_secs(20));
    assert!(
        sample(&metrics, "rename_audit_sink_errors_total{sink=\"syslog\"}") >= 1.0,
        "the broken connection is counted"
    );
    assert_eq!(
        sample(&metrics, "rename_audit_sink_sent_total{sink=\"syslog\"}"),
        2.0
    );
    rt.block_on(sinks.shutdown(Duration::from_secs(2)));
}

#[test]
fn prometheus_scrapes_the_endpoint_and_sees_the_counter_go_up() {
    let rt = runtime();
    let metrics = Metrics::new();
    let cfg = SinksConfig {
        prometheus: Some(PrometheusSink {
            listen: "127.0.0.1:0".parse().unwrap(),
        }),
        ..Default::default()
    };
    let sinks =
        Sinks::start(&cfg, Arc::clone(&metrics), host("prom"), rt.handle()).expect("start sinks");
    let addr = sinks.metrics_addr().expect("metrics endpoint listening");
    let prom = Prometheus::start(&[addr]);

    let series = format!(
        "rename_audit_renames_total{{action=\"process-renamed\",method=\"prctl\",instance=\"{addr}\"}}"
    );
    prom.wait_for_value(
        &format!("up{{instance=\"{addr}\"}}"),
        Duration::from_secs(20),
        |v| v == 1.0,
    );
    prom.wait_for_value(&series, Duration::from_secs(20), |v| v == 0.0);

    let host = host("prom");
    for i in 0..3 {
        metrics.observe(&rename(&host, i, "/usr/bin/python3", b"worker", true));
    }
    prom.wait_for_value(&series, Duration::from_secs(20), |v| v == 3.0);
    let version = env!("CARGO_PKG_VERSION");
    prom.wait_for_value(
        &format!("rename_audit_build_info{{version=\"{version}\",instance=\"{addr}\"}}"),
        Duration::from_secs(5),
        |v| v == 1.0,
    );
    rt.block_on(sinks.shutdown(Duration::from_secs(2)));
}

/// The niceness of each of a process's threads, by thread name.
fn thread_niceness(pid: u32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon's threads");
    let mut threads: Vec<(String, i64)> = tasks
        .map(|task| {
            let dir = task.expect("a task").path();
            let comm = std::fs::read_to_string(dir.join("comm")).expect("comm");
            let stat = std::fs::read_to_string(dir.join("stat")).expect("stat");
            // Field 19 (nice), counted after the ")" that ends the name.
            let after_name = &stat[stat.rfind(')').expect("stat's name") + 2..];
            let nice = after_name
                .split(' ')
                .nth(16)
                .expect("field 19")
                .parse()
                .expect("a niceness");
            (comm.trim_end().to_owned(), nice)
        })
        .collect();
    threads.sort();
    threads
}

/// TLS to three Alertmanager replicas costs a storm's CPU: the threads that
/// deliver to sinks run niced, below the ring drain and the pipeline, so a
/// busy sink falls behind (and counts what its queue cannot hold) instead
/// of making the kernel lose records.
#[test]
fn the_sinks_threads_run_below_captures_priority() {
    let d = crate::support::daemon::Daemon::start(&[]);
    let threads = thread_niceness(d.pid());
    let niceness_of = |name: &str| -> Vec<i64> {
        threads
            .iter()
            .filter(|(comm, _)| comm == name)
            .map(|(_, nice)| *nice)
            .collect()
    };
    let [base] = niceness_of("ra-pipeline")[..] else {
        panic!("one pipeline thread: {threads:?}");
    };
    if base >= i64::from(rename_audit::util::sched::SINK_NICENESS) {
        crate::support::skip(&format!(
            "the daemon starts at niceness {base}, not below the sinks' own"
        ));
        return;
    }
    assert_eq!(niceness_of("ra-drain"), [base], "{threads:?}");
    let io = niceness_of("rename-audit-io");
    assert!(io.len() >= 2, "the async runtime's workers: {threads:?}");
    assert!(
        io.iter()
            .all(|&nice| nice == i64::from(rename_audit::util::sched::SINK_NICENESS)),
        "every sink thread is niced: {threads:?}"
    );
}
