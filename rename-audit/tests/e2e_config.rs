//! End-to-end: the configuration file as the real daemon reads it:
//! `check-config`, start-up with a bad file, and SIGHUP reloads.
mod support;

use std::{
    io::Read,
    path::Path,
    process::{Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use support::{
    alerting::{
        KillOnDrop, PROCESS_RENAMED, assert_alert, assert_no_alert, rename_of, sample, scrape,
        write_config,
    },
    daemon::{Daemon, str_at},
    renamer,
    servers::free_port,
};

const BIN: &str = env!("CARGO_BIN_EXE_rename-audit");

/// Three problems, one per kind: a wrong type, an unknown rule, a bad value.
const BAD: &str = r#"[output]
include_exec = "yes"
[rules.process-renamd]
enabled = false
[sinks.syslog]
transport = "carrier-pigeon"
"#;

/// `path:line:column: key` of each problem in [`BAD`].
fn bad_diagnostics(path: &Path) -> [String; 3] {
    let p = path.display();
    [
        format!("{p}:2:16: output.include_exec: "),
        format!("{p}:3:8: rules.process-renamd: "),
        format!("{p}:6:13: sinks.syslog.transport: "),
    ]
}

fn rename_audit(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rename-audit")
}

#[test]
fn check_config_reports_every_problem_with_its_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write_config(dir.path(), "bad.toml", BAD);
    let out = rename_audit(&["check-config", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file must fail: {out:?}");
    for want in bad_diagnostics(&bad) {
        assert!(
            stderr.lines().any(|l| l.contains(&want)),
            "check-config should print {want:?}; it printed:\n{stderr}"
        );
    }

    let good = write_config(
        dir.path(),
        "good.toml",
        "[rules.process-renamed]\nenabled = false\n",
    );
    let out = rename_audit(&["check-config", good.to_str().unwrap()]);
    assert!(out.status.success(), "a good file passes: {out:?}");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config.toml");
    let out = rename_audit(&["check-config", example]);
    assert!(out.status.success(), "deploy/config.toml passes: {out:?}");
}

#[test]
fn run_refuses_to_start_with_a_bad_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write_config(dir.path(), "bad.toml", BAD);
    let output = dir.path().join("events.json");
    let started = Instant::now();
    let out = rename_audit(&[
        "run",
        "--config",
        bad.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not run: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it refuses at once"
    );
    assert!(!stderr.contains("ready"), "it never got ready: {stderr}");
    for want in bad_diagnostics(&bad) {
        assert!(
            stderr.lines().any(|l| l.contains(&want)),
            "run should print {want:?}; it printed:\n{stderr}"
        );
    }
    assert!(!output.exists(), "nothing was captured");
}

#[test]
fn sighup_with_a_bad_file_keeps_the_old_config_and_a_good_one_applies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "config.toml",
        "[rules.process-renamed]\nenabled = false\n",
    );
    let metrics: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut d = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    let quiet = |d: &mut Daemon, name: &str| {
        let pid = renamer::run("prctl", name.as_bytes(), &[]).get("pid");
        let e = rename_of(d, name, pid, pid, name);
        assert_eq!(str_at(&e, "event.action"), "process-renamed");
        assert_no_alert(&e, "process-renamed switched off");
    };
    quiet(&mut d, "e2e-hup-1");

    // A broken file: a syntax error on line 2.
    write_config(
        dir.path(),
        "config.toml",
        "[rules.process-renamed]\nenabled = maybe\n",
    );
    d.signal(libc::SIGHUP);
    let log = d.wait_for_log("configuration not reloaded");
    assert!(
        log.contains(&format!("{}:2:11:", config.display())),
        "the log says where the file is wrong: {log}"
    );
    assert!(d.running(), "a bad reload must not stop the daemon");
    quiet(&mut d, "e2e-hup-2");
    let text = scrape(metrics);
    assert_eq!(
        sample(
            &text,
            "rename_audit_config_reloads_total{result=\"failure\"}"
        ),
        Some(1.0),
        "{text}"
    );

    // A good file switching the rule back on.
    write_config(
        dir.path(),
        "config.toml",
        "[rules.process-renamed]\nenabled = true\n",
    );
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded");
    let pid = renamer::run("prctl", b"e2e-hup-3", &[]).get("pid");
    let e = rename_of(&mut d, "e2e-hup-3", pid, pid, "e2e-hup-3");
    assert_alert(&e, &PROCESS_RENAMED, pid, "e2e-hup-3");
    let text = scrape(metrics);
    assert_eq!(
        sample(
            &text,
            "rename_audit_config_reloads_total{result=\"success\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn sighup_applies_the_rules_and_says_which_settings_need_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "config.toml", "");
    let mut d = Daemon::start(&["--config", config.to_str().unwrap()]);
    write_config(
        dir.path(),
        "config.toml",
        "[rules.process-renamed]\nenabled = false\n[storm]\nthread_rate = 50\n\
         [sinks.syslog]\ntransport = \"udp\"\n",
    );
    d.signal(libc::SIGHUP);
    let warning = d.wait_for_log("only take effect at the next start");
    assert!(
        warning.contains("storm, sinks"),
        "the warning names the sections: {warning}"
    );
    d.wait_for_log("configuration reloaded");
    let pid = renamer::run("prctl", b"e2e-hup-4", &[]).get("pid");
    let e = rename_of(&mut d, "e2e-hup-4", pid, pid, "e2e-hup-4");
    assert_no_alert(&e, "the reloaded rules switched process-renamed off");
    let (status, _) = d.stop();
    assert!(status.success());
}

/// Starts `rename-audit run` and returns the moment its stderr says
/// "ready", reading the pipe directly so that a signal can follow within
/// microseconds, as systemd's reload or stop can.
fn start_raw(output: &Path) -> (KillOnDrop, std::process::ChildStderr) {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["run", "--output", output.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rename-audit"),
    );
    let mut stderr = child.0.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let n = stderr.read(&mut buf).expect("read the daemon's stderr");
        assert!(
            n > 0,
            "the daemon exited before it was ready: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    (child, stderr)
}

fn kill(child: &KillOnDrop, signal: i32) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.0.id() as i32, signal) };
}

fn wait_exit(child: &mut KillOnDrop, within: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(status) = child.0.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The rest of the daemon's stderr once it has exited.
fn rest(mut stderr: std::process::ChildStderr) -> String {
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text);
    text
}

#[test]
fn sighup_right_after_ready_never_kills_the_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("events.json");
    for round in 0..10 {
        let (mut child, stderr) = start_raw(&output);
        kill(&child, libc::SIGHUP);
        if let Some(status) = wait_exit(&mut child, Duration::from_millis(300)) {
            panic!(
                "round {round}: SIGHUP right after ready ended the daemon ({status}): {}",
                rest(stderr)
            );
        }
        kill(&child, libc::SIGTERM);
        let status = wait_exit(&mut child, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("round {round}: no exit within 5 s of SIGTERM"));
        let log = rest(stderr);
        assert!(status.success(), "round {round}: {status}: {log}");
        assert!(
            log.contains("configuration reloaded"),
            "round {round}: the early SIGHUP was a reload: {log}"
        );
    }
}

#[test]
fn sigterm_right_after_ready_is_a_clean_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("events.json");
    for round in 0..10 {
        let (mut child, stderr) = start_raw(&output);
        kill(&child, libc::SIGTERM);
        let status = wait_exit(&mut child, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("round {round}: no exit within 5 s of SIGTERM"));
        let log = rest(stderr);
        assert!(
            status.success() && log.contains("stopped"),
            "round {round}: SIGTERM right after ready must be a clean stop, got {status}: {log}"
        );
    }
}

#[test]
fn the_daemon_log_holds_no_terminal_escapes_off_a_terminal() {
    // Under systemd stderr is the journal: colour codes would be stored as-is.
    let mut d = Daemon::start(&[]);
    let (status, _) = d.stop();
    assert!(status.success());
    let with_escapes: Vec<&String> = d
        .stderr_lines
        .iter()
        .filter(|l| l.contains('\u{1b}'))
        .collect();
    assert!(
        with_escapes.is_empty(),
        "log lines with escape codes: {with_escapes:#?}"
    );
    assert!(d.stderr_lines.iter().any(|l| l.contains("stopped")));
}
