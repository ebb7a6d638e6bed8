//! End-to-end alerting: the real daemon, real renames, and Debian's real
//! Prometheus, Alertmanager and rsyslog on loopback. Every test filters on
//! its own pids or executables: the daemon sees the whole host.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::support::{
    daemon::{Daemon, at, str_at, u64_at},
    http, patience,
    renamer::{self, Output},
    servers::{Alertmanager, Prometheus, Rsyslog, free_port},
};
use serde_json::Value;

/// A copy of the workload at `dir/name`: rules look at where the executable
/// lives, so tests choose it instead of inheriting the checkout's location
/// (which may itself be under /tmp or /root).
struct Workload {
    path: PathBuf,
}

impl Workload {
    fn at(dir: &str, name: &str) -> Workload {
        let dir = Path::new(dir).join(format!("rename-audit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("workload directory");
        let path = dir.join(name);
        std::fs::copy(renamer::path(), &path).expect("copy the workload");
        Workload { path }
    }

    /// Outside every writable place the rules know.
    fn trusted() -> Workload {
        Workload::at("/var/lib", "renamer")
    }

    fn run(&self, cmd: &str, name: &[u8], extra: &[&str]) -> Output {
        renamer::run_from(&self.path, cmd, name, extra)
    }

    fn exe(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn event_of(d: &mut Daemon, pid: u32, new_name: &str) -> Value {
    let new_name = new_name.to_owned();
    d.wait_for(&format!("{new_name:?} from {pid}"), move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some(new_name.as_str())
    })
}

fn assert_alert(e: &Value, rule: &str, severity: &str, score: u64, technique: Option<&str>) {
    assert_eq!(str_at(e, "event.kind"), "alert", "{e}");
    assert_eq!(str_at(e, "rule.id"), rule, "{e}");
    assert_eq!(str_at(e, "rule.severity"), severity);
    assert_eq!(u64_at(e, "event.severity"), score);
    assert!(!str_at(e, "rule.name").is_empty());
    let message = str_at(e, "message");
    assert!(
        !message.is_empty() && !message.contains('\n'),
        "one-line message: {message:?}"
    );
    match technique {
        Some(t) => assert_eq!(at(e, "threat.technique.id"), &serde_json::json!([t]), "{e}"),
        None => assert!(
            at(e, "threat").is_null(),
            "no ATT&CK technique for {rule}: {e}"
        ),
    }
}

fn assert_no_alert(e: &Value) {
    assert_eq!(str_at(e, "event.kind"), "event", "expected no alert: {e}");
    assert!(at(e, "rule").is_null(), "{e}");
}

#[test]
fn each_rule_fires_on_a_real_masquerading_rename() {
    let mut d = Daemon::start(&[]);
    let trusted = Workload::trusted();

    let pid = trusted.run("prctl", b"kworker/0:1", &[]).get("pid");
    let e = event_of(&mut d, pid, "kworker/0:1");
    assert_alert(&e, "kernel-thread-mimic", "critical", 99, Some("T1036.004"));

    // Atomic Red Team T1036.004: a binary in /tmp renames itself.
    let art = Workload::at("/tmp", "art-t1036");
    let pid = art.run("prctl", b"totally_legit", &[]).get("pid");
    let e = event_of(&mut d, pid, "totally_legit");
    assert_alert(&e, "writable-path-stomp", "high", 73, Some("T1036.005"));
    assert!(
        str_at(&e, "message").contains(art.exe()),
        "the message names the executable"
    );

    let pid = trusted.run("prctl", b"sshd", &[]).get("pid");
    let e = event_of(&mut d, pid, "sshd");
    assert_alert(&e, "system-name-mimic", "high", 73, Some("T1036.004"));

    let pid = trusted.run("sibling", b"e2e-sibling", &[]).get("pid");
    let e = event_of(&mut d, pid, "e2e-sibling");
    assert_alert(&e, "sibling-renamed-main", "medium", 47, None);

    let pid = trusted.run("prctl", b"e2e-plain", &[]).get("pid");
    let e = event_of(&mut d, pid, "e2e-plain");
    assert_alert(&e, "process-renamed", "low", 21, None);
}

/// Issue 10 item 6: a /tmp binary whose worker thread renames the main
/// thread (what a pyenv Python's worker does) used to report only
/// writable-path-stomp. Every matching rule is now listed.
#[test]
fn an_alert_lists_every_rule_that_matched() {
    let mut d = Daemon::start(&[]);
    let tmp = Workload::at("/tmp", "py-worker");
    let out = tmp.run("sibling", b"e2e-multi", &[]);
    assert_eq!(
        out.int("write"),
        0,
        "the worker wrote the main thread's comm"
    );
    let pid = out.get("pid");
    let e = event_of(&mut d, pid, "e2e-multi");
    assert_alert(&e, "writable-path-stomp", "high", 73, Some("T1036.005"));
    assert_eq!(str_at(&e, "rename.method"), "procfs");
    assert_eq!(u64_at(&e, "rename.writer.tid"), u64::from(out.get("tid")));
    assert_eq!(
        at(&e, "rename.rules"),
        &serde_json::json!([
            "writable-path-stomp",
            "sibling-renamed-main",
            "process-renamed"
        ]),
        "{e}"
    );
    // From a trusted place only the sibling rule and the plain rename match.
    let trusted = Workload::trusted();
    let pid = trusted.run("sibling", b"e2e-multi-2", &[]).get("pid");
    let e = event_of(&mut d, pid, "e2e-multi-2");
    assert_alert(&e, "sibling-renamed-main", "medium", 47, None);
    assert_eq!(
        at(&e, "rename.rules"),
        &serde_json::json!(["sibling-renamed-main", "process-renamed"])
    );
}

#[test]
fn benign_allow_listed_and_disabled_renames_raise_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = Workload::trusted();
    let cfg = config(
        dir.path(),
        &format!(
            "[[allow.entry]]\nrules = [\"process-renamed\"]\nexecutable = \"{}\"\nname = \"e2e-allow*\"\n\
             [rules.system-name-mimic]\nenabled = false\n",
            trusted.exe()
        ),
    );
    let mut d = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--include-exec",
        "--thread-renames",
        "all",
    ]);

    let out = trusted.run("thread-prctl", b"e2e-worker", &[]);
    let e = event_of(&mut d, out.get("pid"), "e2e-worker");
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
    assert_no_alert(&e);

    let pid = trusted.run("exec", b"", &[]).get("pid");
    let e = event_of(&mut d, pid, "true");
    assert_eq!(str_at(&e, "rename.method"), "exec");
    assert_no_alert(&e);

    let pid = trusted.run("prctl", b"e2e-allowed", &[]).get("pid");
    assert_no_alert(&event_of(&mut d, pid, "e2e-allowed"));

    // system-name-mimic is off; nothing else applies to "sshd" but the
    // plain process-renamed rule, which is not allow-listed for this name.
    let pid = trusted.run("prctl", b"sshd", &[]).get("pid");
    let e = event_of(&mut d, pid, "sshd");
    assert_eq!(
        str_at(&e, "rule.id"),
        "process-renamed",
        "a disabled rule does not fire: {e}"
    );
}

fn metric(addr: SocketAddr, name_and_labels: &str) -> f64 {
    let (status, body) = http::get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| l.starts_with(name_and_labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn prometheus_scrapes_the_daemon_and_sees_renames() {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut d = Daemon::start(&["--metrics-listen", &listen.to_string()]);
    let prometheus = Prometheus::start(&[listen]);
    let renames = r#"sum(rename_audit_renames_total{action="process-renamed",method="prctl"})"#;
    let before = prometheus.wait_for_value(renames, Duration::from_secs(20), |_| true);
    let trusted = Workload::trusted();
    for i in 0..5 {
        let name = format!("e2e-prom-{i}");
        let pid = trusted.run("prctl", name.as_bytes(), &[]).get("pid");
        event_of(&mut d, pid, &name);
    }
    prometheus.wait_for_value(renames, Duration::from_secs(20), |v| v >= before + 5.0);
    let alerts = r#"sum(rename_audit_alerts_total{rule="process-renamed",severity="low"})"#;
    prometheus.wait_for_value(alerts, Duration::from_secs(20), |v| v >= 5.0);
    assert_eq!(metric(listen, "rename_audit_build_info"), 1.0);
    assert!(
        metric(listen, "rename_audit_processes_tracked") > 10.0,
        "the process table is exported"
    );
}

#[test]
fn alertmanager_gets_each_rule_once_per_executable_and_outages_do_not_stop_capture() {
    let mut alertmanager = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let cfg = config(
        dir.path(),
        &format!("[sinks.alertmanager]\nurl = \"{}\"\n", alertmanager.url()),
    );
    let mut d = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-listen",
        &listen.to_string(),
    ]);
    let host = hostname::get().unwrap().to_string_lossy().into_owned();

    let trusted = Workload::trusted();
    let art = Workload::at("/tmp", "am-stomp");
    let cases: [(&Workload, &str, &[u8], &str, &str); 5] = [
        (
            &trusted,
            "prctl",
            b"kworker/1:2",
            "kernel-thread-mimic",
            "critical",
        ),
        (
            &art,
            "prctl",
            b"totally_legit",
            "writable-path-stomp",
            "high",
        ),
        (&trusted, "prctl", b"cron", "system-name-mimic", "high"),
        (
            &trusted,
            "sibling",
            b"e2e-am-sib",
            "sibling-renamed-main",
            "medium",
        ),
        (&trusted, "prctl", b"e2e-am-plain", "process-renamed", "low"),
    ];
    for (workload, cmd, name, rule, severity) in cases {
        workload.run(cmd, name, &[]);
        let name = String::from_utf8(name.to_vec()).unwrap();
        let got = alertmanager.wait_for_alerts(
            "executable",
            workload.exe(),
            Duration::from_secs(20),
            |a| a.iter().any(|x| x["labels"]["rule"] == rule),
        );
        let alert = got.iter().find(|x| x["labels"]["rule"] == rule).unwrap();
        let labels = &alert["labels"];
        assert_eq!(labels["severity"], severity, "{alert}");
        assert_eq!(labels["host"], host.as_str(), "{alert}");
        assert_eq!(labels["process_name"], name.as_str(), "{alert}");
        assert!(
            labels["alertname"].as_str().is_some_and(|n| !n.is_empty()),
            "{alert}"
        );
        assert!(
            alert["annotations"]["summary"].is_string()
                && alert["annotations"]["description"].is_string()
        );
    }

    // 1,000 identical alerts: same rule, same executable.
    let burst = Workload::at("/tmp", "am-burst");
    let pid = burst
        .run("loop-prctl", b"burst", &["1000", "2000"])
        .get("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.events_of(pid).len() < 1000 {
        assert!(
            Instant::now() < deadline,
            "only {} of 1000 burst renames written",
            d.events_of(pid).len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.events_of(pid)
            .iter()
            .all(|e| str_at(e, "rule.id") == "writable-path-stomp")
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(
        listen,
        r#"rename_audit_alerts_suppressed_total{rule="writable-path-stomp""#,
    ) < 999.0
    {
        assert!(
            Instant::now() < deadline,
            "the 999 suppressed repeats are not counted in the metrics"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let held = alertmanager.alerts_with_label("executable", burst.exe());
    assert_eq!(
        held.len(),
        1,
        "1,000 identical alerts arrive as one: {held:#?}"
    );

    // Alertmanager goes away: capture goes on, every rename is written.
    alertmanager.stop();
    let outage = Workload::at("/tmp", "am-outage");
    let started = Instant::now();
    let pid = outage
        .run("loop-prctl", b"outage", &["2000", "4000"])
        .get("pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.events_of(pid).len() < 2000 {
        assert!(
            Instant::now() < deadline,
            "capture stalled with Alertmanager down: {} of 2000",
            d.events_of(pid).len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        d.events_of(pid).len(),
        2000,
        "exactly the 2,000 renames, no more"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn rsyslog_receives_alerts_with_their_priority_and_one_line_per_name() {
    let rsyslog = Rsyslog::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "[sinks.syslog]\ntransport = \"udp\"\naddress = \"{}\"\nfacility = \"local0\"\nalerts = true\nevents = false\n",
            rsyslog.udp
        ),
    );
    let mut d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let trusted = Workload::trusted();

    let pid = trusted.run("prctl", b"kworker/7:7", &[]).get("pid");
    event_of(&mut d, pid, "kworker/7:7");
    // local0 (16) * 8 + crit (2)
    let lines = rsyslog.wait_for_lines(&format!("process {pid} "), 1, Duration::from_secs(20));
    assert!(
        lines[0].contains("pri=130 "),
        "critical alert on local0 has PRI 130: {}",
        lines[0]
    );

    let pid = trusted.run("prctl", b"two\nlines", &[]).get("pid");
    event_of(&mut d, pid, "two\nlines");
    let lines = rsyslog.wait_for_lines(&format!("process {pid} "), 1, Duration::from_secs(20));
    assert_eq!(lines.len(), 1, "one message: {lines:?}");
    assert!(
        lines[0].contains("pri=133 "),
        "low alert on local0 is notice (133): {}",
        lines[0]
    );
    assert!(
        !rsyslog.lines().iter().any(|l| l.starts_with("lines")),
        "the newline in the name split the message"
    );
}

fn rename_audit(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .args(args)
        .output()
        .expect("run rename-audit")
}

#[test]
fn a_bad_config_is_reported_with_line_and_column_and_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let bad = config(
        dir.path(),
        "[storm]\nthread_rate = 0\n\n[rules.no-such-rule]\nenabled = true\n",
    );
    let path = bad.to_str().unwrap();
    let out = rename_audit(&["check-config", path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{path}:2:")),
        "line of thread_rate: {err}"
    );
    assert!(
        err.contains(&format!("{path}:4:")),
        "line of the unknown rule: {err}"
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[storm]\nthread_rate = 50\n").unwrap();
    let out = rename_audit(&["check-config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");

    let out = rename_audit(&["run", "--config", path, "--output", "-"]);
    assert!(!out.status.success(), "an invalid file stops start-up");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{path}:2:")));
}

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_old_one_when_the_new_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "[rules.process-renamed]\nenabled = false\n");
    let mut d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let trusted = Workload::trusted();

    std::fs::write(&cfg, "[rules.process-renamed]\nenabled = maybe\n").unwrap();
    d.signal(libc::SIGHUP);
    let deadline = Instant::now() + patience(Duration::from_secs(10));
    while !d.stderr_text().contains("not reloaded") {
        assert!(Instant::now() < deadline, "the failed reload is not logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = trusted.run("prctl", b"e2e-hup-1", &[]).get("pid");
    assert_no_alert(&event_of(&mut d, pid, "e2e-hup-1"));

    std::fs::write(&cfg, "[rules.process-renamed]\nenabled = true\n").unwrap();
    d.signal(libc::SIGHUP);
    let deadline = Instant::now() + patience(Duration::from_secs(10));
    while !d.stderr_text().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "the reload is not logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = trusted.run("prctl", b"e2e-hup-2", &[]).get("pid");
    assert_eq!(
        str_at(&event_of(&mut d, pid, "e2e-hup-2"), "rule.id"),
        "process-renamed"
    );
}
