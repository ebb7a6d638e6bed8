//! End-to-end: the real daemon, real renames, and Debian's real Prometheus,
//! Alertmanager and rsyslog on loopback (see `support::servers`). Tests pick
//! out their own renamer pids: the daemon reports the whole host.
mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    alerting::{
        Dropped, KERNEL_THREAD_MIMIC, KillOnDrop, PROCESS_RENAMED, Rule, SIBLING_RENAMED_MAIN,
        SYSTEM_NAME_MIMIC, WRITABLE_PATH_STOMP, assert_alert, rename_of, sample, scrape,
        wait_for_sample, write_config,
    },
    daemon::{Daemon, at, str_at},
    renamer,
    servers::{Alertmanager, Prometheus, Rsyslog, free_port},
};

fn metrics_addr() -> SocketAddr {
    ([127, 0, 0, 1], free_port()).into()
}

/// The daemon with `config` as its file and `/metrics` on `metrics`.
fn daemon_with(config: &str, metrics: SocketAddr) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(dir.path(), "config.toml", config);
    let d = Daemon::start(&[
        "--config",
        path.to_str().unwrap(),
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    (d, dir)
}

fn hostname() -> String {
    hostname::get()
        .expect("host name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn prometheus_scrapes_the_daemon_and_sees_renames_and_alerts_go_up() {
    let addr = metrics_addr();
    let mut d = Daemon::start(&["--metrics-listen", &addr.to_string()]);
    let prom = Prometheus::start(&[addr]);
    let on = |series: &str, labels: &str| format!("{series}{{{labels},instance=\"{addr}\"}}");
    let renames = on(
        "rename_audit_renames_total",
        "action=\"process-renamed\",method=\"prctl\"",
    );
    let alerts = on(
        "rename_audit_alerts_total",
        "rule=\"process-renamed\",severity=\"low\"",
    );
    prom.wait_for_value(
        &format!("up{{instance=\"{addr}\"}}"),
        Duration::from_secs(20),
        |v| v == 1.0,
    );
    // Other processes on the host may rename too: compare with a baseline.
    let renames_before = prom.wait_for_value(&renames, Duration::from_secs(20), |_| true);
    let alerts_before = prom.wait_for_value(&alerts, Duration::from_secs(20), |_| true);

    let out = renamer::run("loop-prctl", b"promet", &["5", "0"]);
    let pid = out.get("pid");
    rename_of(&mut d, "the last of 5 renames", pid, pid, "promet-4");

    let after = prom.wait_for_value(&renames, Duration::from_secs(20), |v| {
        v >= renames_before + 5.0
    });
    let alerts_after = prom.wait_for_value(&alerts, Duration::from_secs(20), |v| {
        v >= alerts_before + 5.0
    });
    eprintln!("renames {renames_before} -> {after}, alerts {alerts_before} -> {alerts_after}");
    let version = env!("CARGO_PKG_VERSION");
    prom.wait_for_value(
        &on("rename_audit_build_info", &format!("version=\"{version}\"")),
        Duration::from_secs(5),
        |v| v == 1.0,
    );
    for series in [
        "rename_audit_processes_tracked",
        "rename_audit_renames_summarized_total",
    ] {
        let v = prom.wait_for_value(
            &format!("{series}{{instance=\"{addr}\"}}"),
            Duration::from_secs(5),
            |_| true,
        );
        if series == "rename_audit_processes_tracked" {
            assert!(v > 1.0, "the daemon tracks this host's processes: {v}");
        }
    }
    let (status, _) = d.stop();
    assert!(status.success());
}

fn label<'a>(alert: &'a Value, key: &str) -> &'a str {
    alert["labels"][key]
        .as_str()
        .unwrap_or_else(|| panic!("alert has no label {key}: {alert:#}"))
}

/// Alerts at Alertmanager about process `pid`.
fn alerts_of(am: &Alertmanager, pid: u32, timeout: Duration) -> Vec<Value> {
    let until = Instant::now() + timeout;
    loop {
        let mine: Vec<Value> = am
            .alerts()
            .into_iter()
            .filter(|a| a["annotations"]["pid"].as_str() == Some(pid.to_string().as_str()))
            .collect();
        if !mine.is_empty() {
            return mine;
        }
        if Instant::now() > until {
            panic!(
                "no alert about pid {pid} at Alertmanager after {timeout:?}; it holds {:#?}",
                am.alerts()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alertname(rule: &str) -> String {
    rule.split('-')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect()
}

#[test]
fn a_masquerade_of_each_rule_reaches_alertmanager_with_its_labels() {
    let am = Alertmanager::start();
    let (mut d, _dir) = daemon_with(
        &format!("[sinks.alertmanager]\nurl = \"{}\"\n", am.url()),
        metrics_addr(),
    );
    let dropped = Dropped::new();
    let ours = renamer::path().to_str().unwrap().to_owned();
    // (rule, how, name, executable)
    let cases: [(&Rule, &str, &str, &str); 5] = [
        (&KERNEL_THREAD_MIMIC, "prctl", "kworker/0:1", &ours),
        (
            &WRITABLE_PATH_STOMP,
            "prctl",
            "totally_legit",
            dropped.exe_str(),
        ),
        (&SYSTEM_NAME_MIMIC, "prctl", "sshd", &ours),
        (&SIBLING_RENAMED_MAIN, "sibling", "e2e-am-sib", &ours),
        (&PROCESS_RENAMED, "prctl", "e2e-am-plain", &ours),
    ];
    let host = hostname();
    for (rule, how, name, exe) in cases {
        let out = renamer::run_from(&exe.into(), how, name.as_bytes(), &[]);
        let pid = out.get("pid");
        let e = rename_of(&mut d, name, pid, pid, name);
        assert_alert(&e, rule, pid, name);

        let found = alerts_of(&am, pid, Duration::from_secs(15));
        assert_eq!(found.len(), 1, "one alert for pid {pid}: {found:#?}");
        let a = &found[0];
        assert_eq!(label(a, "alertname"), alertname(rule.id), "{a:#}");
        assert_eq!(label(a, "rule"), rule.id, "{a:#}");
        assert_eq!(label(a, "severity"), rule.severity, "{a:#}");
        assert_eq!(label(a, "host"), host, "{a:#}");
        assert_eq!(label(a, "process_name"), name, "{a:#}");
        assert_eq!(label(a, "executable"), exe, "{a:#}");
        let summary = a["annotations"]["summary"].as_str().unwrap_or_default();
        let description = a["annotations"]["description"].as_str().unwrap_or_default();
        assert!(summary.contains(name), "summary names {name}: {a:#}");
        assert_eq!(
            description.split(" (pid ").next(),
            Some(str_at(&e, "message")),
            "the description starts with the alert's message: {a:#}"
        );
        assert_eq!(a["status"]["state"], "active", "{a:#}");
    }
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn a_burst_of_1000_identical_alerts_arrives_at_alertmanager_as_one() {
    let am = Alertmanager::start();
    let metrics = metrics_addr();
    let (mut d, _dir) = daemon_with(
        &format!("[sinks.alertmanager]\nurl = \"{}\"\n", am.url()),
        metrics,
    );
    let dropped = Dropped::new();
    // 1,000 renames at 2,000/s from one /tmp binary: 1,000 alerts with the
    // same (rule, executable).
    let out = renamer::run_from(&dropped.exe, "loop-prctl", b"stomp", &["1000", "2000"]);
    let pid = out.get("pid");
    rename_of(
        &mut d,
        "the last rename of the burst",
        pid,
        pid,
        "stomp-999",
    );
    let alerts: Vec<Value> = d
        .events_of(pid)
        .into_iter()
        .filter(|e| at(e, "rule.id") == "writable-path-stomp")
        .collect();
    assert_eq!(alerts.len(), 1000, "every rename of the burst is an alert");

    let suppressed = "rename_audit_alerts_suppressed_total{rule=\"writable-path-stomp\"}";
    wait_for_sample(metrics, suppressed, Duration::from_secs(10), |v| v == 999.0);
    let at_am = am.wait_for_alerts(
        "executable",
        dropped.exe_str(),
        Duration::from_secs(15),
        |a| !a.is_empty(),
    );
    // Give a straggler time to show up before counting.
    std::thread::sleep(Duration::from_secs(2));
    let at_am = {
        let again = am.alerts_with_label("executable", dropped.exe_str());
        assert_eq!(again.len(), at_am.len(), "{again:#?}");
        again
    };
    assert_eq!(at_am.len(), 1, "the burst is one alert: {at_am:#?}");
    assert_eq!(label(&at_am[0], "rule"), "writable-path-stomp");
    let text = scrape(metrics);
    assert_eq!(sample(&text, suppressed), Some(999.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "rename_audit_sink_queue_dropped_total{sink=\"alertmanager\"}"
        ),
        Some(0.0),
        "nothing was dropped: {text}"
    );
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn alertmanager_posts_are_rate_limited_per_rule_and_executable() {
    let am = Alertmanager::start();
    let metrics = metrics_addr();
    let (mut d, _dir) = daemon_with(
        &format!(
            "[sinks.alertmanager]\nurl = \"{}\"\ndedup_window_secs = 1\n\
             rate_limit_per_minute = 2\n",
            am.url()
        ),
        metrics,
    );
    let dropped = Dropped::new();
    // 50 alerts over 5 s: one-second dedup windows alone would post about
    // six times; the limit allows two a minute.
    let out = renamer::run_from(&dropped.exe, "loop-prctl", b"limit", &["50", "10"]);
    let pid = out.get("pid");
    rename_of(&mut d, "the last rename", pid, pid, "limit-49");
    // Let windows end and repeats come due.
    std::thread::sleep(Duration::from_secs(3));
    let text = scrape(metrics);
    assert_eq!(
        sample(&text, "rename_audit_sink_sent_total{sink=\"alertmanager\"}"),
        Some(2.0),
        "two posts in the minute: {text}"
    );
    let at_am = am.alerts_with_label("executable", dropped.exe_str());
    assert!(
        (1..=2).contains(&at_am.len()),
        "at most two posts reached Alertmanager: {at_am:#?}"
    );
    let suppressed = sample(
        &text,
        "rename_audit_alerts_suppressed_total{rule=\"writable-path-stomp\"}",
    )
    .unwrap_or_default();
    assert!(
        suppressed >= 48.0,
        "the alerts not posted are counted: {suppressed}: {text}"
    );
    let (status, _) = d.stop();
    assert!(status.success());
}

/// Runs `loop-prctl` with `n` renames from each of four fresh copies of the
/// renamer in /tmp (four executables: four alert keys for the Alertmanager
/// sink, 4n alerts in all). Checks that every rename is in the output, in
/// order, and returns how long after the loops ended the last line appeared.
fn loops_written(d: &mut Daemon, tag: &str, n: usize) -> Duration {
    let copies: Vec<Dropped> = (0..4).map(|_| Dropped::new()).collect();
    let mut pids = Vec::new();
    for copy in &copies {
        let out = renamer::run_from(
            &copy.exe,
            "loop-prctl",
            tag.as_bytes(),
            &[&n.to_string(), "0"],
        );
        pids.push(out.get("pid"));
    }
    let ended = Instant::now();
    let last = format!("{tag}-{}", n - 1);
    for &pid in &pids {
        rename_of(d, "the last rename of a loop", pid, pid, &last);
    }
    let lag = ended.elapsed();
    for &pid in &pids {
        let lines: Vec<Value> = d
            .events_of(pid)
            .into_iter()
            .filter(|e| at(e, "rename.method") == "prctl")
            .collect();
        assert_eq!(lines.len(), n, "{tag}: pid {pid}: every rename is written");
        for (i, e) in lines.iter().enumerate() {
            assert_eq!(
                str_at(e, "rename.new_name"),
                format!("{tag}-{i}"),
                "{tag}: pid {pid}: in order, none missing"
            );
            assert_eq!(at(e, "rule.id"), "writable-path-stomp", "{e}");
        }
    }
    lag
}

#[test]
fn stopping_alertmanager_neither_slows_nor_stops_capture() {
    let mut am = Alertmanager::start();
    let metrics = metrics_addr();
    let (mut d, _dir) = daemon_with(
        &format!(
            "[sinks.alertmanager]\nurl = \"{}\"\nqueue = 64\ntimeout_ms = 500\n",
            am.url()
        ),
        metrics,
    );
    let n = 3000;
    // The same workload with Alertmanager up, then down: capture keeps pace.
    let lag_up = loops_written(&mut d, "alive", n);
    am.stop();
    let lag_down = loops_written(&mut d, "outage", n);
    eprintln!("last line {lag_up:?} after the loops with Alertmanager up, {lag_down:?} down");
    assert!(
        lag_down < lag_up * 2 + Duration::from_secs(1),
        "the output lagged behind once Alertmanager was down: {lag_down:?} against {lag_up:?}"
    );

    let text = scrape(metrics);
    let errors = sample(
        &text,
        "rename_audit_sink_errors_total{sink=\"alertmanager\"}",
    );
    assert!(
        errors.is_some_and(|v| v > 0.0),
        "the dead Alertmanager was tried and failed: {text}"
    );
    let lost: f64 = text
        .lines()
        .filter(|l| l.starts_with("rename_audit_events_lost_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(lost, 0.0, "nothing was lost: {text}");
    assert!(d.running(), "the daemon still runs");
    let (status, took) = d.stop();
    assert!(status.success());
    assert!(
        took < Duration::from_secs(3),
        "a dead sink must not hold up the stop: {took:?}"
    );
}

/// `[sinks.syslog]` sending alerts only, over `transport`.
fn syslog_config(transport: &str, address: &str) -> String {
    format!(
        "[sinks.syslog]\ntransport = \"{transport}\"\naddress = \"{address}\"\n\
         alerts = true\nevents = false\nfacility = \"local0\"\n"
    )
}

/// rsyslog's lines about renamer `pid`.
fn syslog_lines_of(rsyslog: &Rsyslog, pid: u32, n: usize) -> Vec<String> {
    rsyslog.wait_for_lines(&format!(" pid=\"{pid}\" "), n, Duration::from_secs(15))
}

#[test]
fn rsyslog_receives_alerts_with_their_priority_over_udp_and_tcp() {
    let rsyslog = Rsyslog::start();
    const LOCAL0: u8 = 16;
    for (transport, address) in [
        ("udp", rsyslog.udp.to_string()),
        ("tcp", rsyslog.tcp.to_string()),
    ] {
        let (mut d, _dir) = daemon_with(&syslog_config(transport, &address), metrics_addr());
        let dropped = Dropped::new();
        let ours = renamer::path().to_str().unwrap().to_owned();
        let cases: [(&Rule, &str, &str, &str); 5] = [
            (&KERNEL_THREAD_MIMIC, "prctl", "kworker/0:1", &ours),
            (
                &WRITABLE_PATH_STOMP,
                "prctl",
                "totally_legit",
                dropped.exe_str(),
            ),
            (&SYSTEM_NAME_MIMIC, "prctl", "sshd", &ours),
            (&SIBLING_RENAMED_MAIN, "sibling", "e2e-sl-sib", &ours),
            (&PROCESS_RENAMED, "prctl", "e2e-sl-plain", &ours),
        ];
        for (rule, how, name, exe) in cases {
            let pid = renamer::run_from(&exe.into(), how, name.as_bytes(), &[]).get("pid");
            let e = rename_of(&mut d, name, pid, pid, name);
            assert_alert(&e, rule, pid, name);
            let lines = syslog_lines_of(&rsyslog, pid, 1);
            assert_eq!(lines.len(), 1, "{transport}: {lines:#?}");
            let pri = LOCAL0 * 8 + rule.syslog_severity;
            let head = format!(
                "pri={pri} sev={} fac={LOCAL0} app=rename-audit procid={} msgid=process-renamed ",
                rule.syslog_severity,
                d.pid()
            );
            assert!(
                lines[0].starts_with(&head),
                "{transport}: {} should start with {head:?}:\n{}",
                rule.id,
                lines[0]
            );
            assert!(
                lines[0].contains(&format!("[alert@32473 rule=\"{}\"", rule.id)),
                "{transport}: {}",
                lines[0]
            );
            assert!(
                lines[0].ends_with(&format!("msg={}", str_at(&e, "message"))),
                "{transport}: MSG is the alert's message: {}",
                lines[0]
            );
        }
        let (status, _) = d.stop();
        assert!(status.success());
    }
}

#[test]
fn a_name_holding_a_newline_arrives_at_rsyslog_as_one_message() {
    let rsyslog = Rsyslog::start();
    for (transport, address) in [
        ("udp", rsyslog.udp.to_string()),
        ("tcp", rsyslog.tcp.to_string()),
    ] {
        let (mut d, _dir) = daemon_with(&syslog_config(transport, &address), metrics_addr());
        let name = b"evil\nname\x1b[1m";
        let pid = renamer::run("prctl", name, &[]).get("pid");
        let e = rename_of(
            &mut d,
            "the newline rename",
            pid,
            pid,
            "evil\nname\u{1b}[1m",
        );
        assert_alert(&e, &PROCESS_RENAMED, pid, "evil\\nname\\u{1b}[1m");
        syslog_lines_of(&rsyslog, pid, 1);
        // A split message would show up as a second line shortly after.
        std::thread::sleep(Duration::from_millis(500));
        let lines: Vec<String> = rsyslog
            .lines()
            .into_iter()
            .filter(|l| l.contains(&format!(" pid=\"{pid}\" ")))
            .collect();
        assert_eq!(lines.len(), 1, "{transport}: one message: {lines:#?}");
        let line = &lines[0];
        assert!(
            line.contains(r#"new_name="evil\\nname\\u{1b}[1m""#),
            "{transport}: the name is escaped in the structured data: {line}"
        );
        // rsyslog writes a received control byte as #ooo: none may arrive.
        assert!(
            !line.contains("#012") && !line.contains("#033"),
            "{transport}: {line}"
        );
        assert!(
            rsyslog.lines().iter().all(|l| l.starts_with("pri=")),
            "{transport}: no line is a fragment of a message: {:#?}",
            rsyslog.lines()
        );
        let (status, _) = d.stop();
        assert!(status.success());
    }
}

/// Lines of `path` (the daemon's stdout) about process `pid`, each split into
/// its `<N>` priority prefix and the JSON after it.
fn journal_lines_of(path: &std::path::Path, pid: u32) -> Vec<(u8, Value)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('<')?;
            let (prio, json) = rest.split_once('>')?;
            let v: Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("not JSON after the prefix ({e}): {l}"));
            (at(&v, "process.pid").as_u64() == Some(pid.into()))
                .then(|| (prio.parse().expect("numeric priority"), v))
        })
        .collect()
}

#[test]
fn on_the_journal_stream_alert_lines_carry_their_severity_as_priority() {
    use std::{io::Read, os::unix::fs::MetadataExt};
    // What systemd does for a service whose stdout is the journal: the
    // stream's device and inode in JOURNAL_STREAM. A file stands in for the
    // journal's socket.
    let dir = tempfile::tempdir().expect("temp dir");
    let stdout_path = dir.path().join("journal-stream");
    let stdout = std::fs::File::create(&stdout_path).expect("create the stream file");
    let meta = stdout.metadata().expect("stat");
    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_rename-audit"))
            .args(["run", "--output", "-"])
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start rename-audit"),
    );
    let mut stderr = child.0.stderr.take().expect("stderr");
    let mut log = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&log).contains("ready") {
        let n = stderr.read(&mut buf).expect("read stderr");
        assert!(n > 0, "exited early: {}", String::from_utf8_lossy(&log));
        log.extend_from_slice(&buf[..n]);
    }

    let cases: [(&[u8], Option<&Rule>, u8); 3] = [
        (b"kworker/0:1", Some(&KERNEL_THREAD_MIMIC), 2),
        (b"sshd", Some(&SYSTEM_NAME_MIMIC), 3),
        (b"e2e-journal", Some(&PROCESS_RENAMED), 5),
    ];
    for (name, rule, prio) in cases {
        let pid = renamer::run("prctl", name, &[]).get("pid");
        let until = Instant::now() + Duration::from_secs(10);
        let lines = loop {
            let lines = journal_lines_of(&stdout_path, pid);
            if !lines.is_empty() || Instant::now() > until {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            !lines.is_empty(),
            "no prefixed line about pid {pid} on the stream"
        );
        let (got, e) = &lines[0];
        assert_eq!(*got, prio, "{e}");
        if let Some(rule) = rule {
            assert_alert(e, rule, pid, std::str::from_utf8(name).unwrap());
        }
    }
    // A plain event is informational.
    let out = renamer::run("thread-prctl", b"e2e-jthread", &[]);
    let pid = out.get("pid");
    let until = Instant::now() + Duration::from_secs(10);
    while journal_lines_of(&stdout_path, pid).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = journal_lines_of(&stdout_path, pid);
    let thread = lines
        .iter()
        .find(|(_, e)| at(e, "rename.new_name") == "e2e-jthread")
        .unwrap_or_else(|| panic!("no thread rename line: {lines:?}"));
    assert_eq!(thread.0, 6, "{}", thread.1);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "{status}");
}
