//! End-to-end: the real daemon with its real kernel programs, and real
//! renames done by a small C workload. Every test filters on its own pids:
//! the daemon sees the whole host.
use std::{
    os::unix::ffi::OsStrExt,
    time::{Duration, Instant},
};

use crate::support::{
    daemon::{Daemon, at, empty_config, no_config, str_at, u64_at},
    patience,
    renamer::{self, Output},
};
use serde_json::Value;

/// The comm the kernel gives the renamer binary at exec.
fn renamer_comm() -> String {
    let name = renamer::path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    name[..name.len().min(15)].to_owned()
}

fn rename_of(d: &mut Daemon, what: &str, pid: u32, tid: u32, new_name: &str) -> Value {
    let new_name = new_name.to_owned();
    d.wait_for(what, move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "process.thread.id").as_u64() == Some(tid.into())
            && at(e, "rename.new_name").as_str() == Some(new_name.as_str())
    })
}

/// The fields every rename event carries, checked against what the test knows.
fn assert_common(e: &Value, pid: u32, action: &str) {
    // Rules may turn a rename into an alert; the rename fields stay the same.
    let kind = if e.get("rule").is_some() {
        "alert"
    } else {
        "event"
    };
    assert_eq!(str_at(e, "event.kind"), kind, "{e}");
    assert_eq!(at(e, "event.category"), &serde_json::json!(["process"]));
    assert_eq!(at(e, "event.type"), &serde_json::json!(["change"]));
    assert_eq!(str_at(e, "event.action"), action);
    assert!(u64_at(e, "event.sequence") > 0);
    let ts = str_at(e, "@timestamp");
    let parsed = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|err| panic!("@timestamp {ts} is not RFC 3339: {err}"));
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(
        age < time::Duration::seconds(30) && age > time::Duration::seconds(-1),
        "@timestamp {ts} is not the rename's time"
    );
    assert!(
        ts.ends_with('Z') && ts.split('.').nth(1).is_some_and(|f| f.len() >= 7),
        "µs precision UTC: {ts}"
    );
    let host = hostname::get().unwrap();
    assert_eq!(str_at(e, "host.hostname").as_bytes(), host.as_bytes());
    assert_eq!(u64_at(e, "process.pid"), u64::from(pid));
    assert_eq!(
        str_at(e, "process.executable").as_bytes(),
        renamer::path().as_os_str().as_bytes()
    );
    assert!(!args_of(e).is_empty(), "process.args: {e}");
    assert!(at(e, "process.start").is_string(), "process.start: {e}");
    assert_eq!(
        str_at(e, "process.user.id"),
        // SAFETY: getuid(2) cannot fail and touches no memory of ours.
        unsafe { libc::getuid() }.to_string()
    );
    assert_eq!(
        u64_at(e, "process.parent.pid"),
        u64::from(std::process::id())
    );
    let me = std::env::current_exe().unwrap();
    assert_eq!(
        str_at(e, "process.parent.executable").as_bytes(),
        me.as_os_str().as_bytes()
    );
    assert_eq!(str_at(e, "rename.original_name"), renamer_comm());
}

fn args_of(e: &Value) -> Vec<String> {
    at(e, "process.args")
        .as_array()
        .expect("args array")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn main_thread_renames_itself_with_prctl() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("prctl", b"e2e-main", &[]);
    let pid = out.get("pid");
    let e = rename_of(
        &mut d,
        "a prctl rename of the main thread",
        pid,
        pid,
        "e2e-main",
    );
    assert_common(&e, pid, "process-renamed");
    assert_eq!(str_at(&e, "process.name"), "e2e-main");
    assert_eq!(str_at(&e, "process.thread.name"), "e2e-main");
    assert_eq!(str_at(&e, "rename.old_name"), renamer_comm());
    assert_eq!(at(&e, "rename.main_thread"), &Value::Bool(true));
    assert_eq!(str_at(&e, "rename.method"), "prctl");
    assert_eq!(u64_at(&e, "rename.writer.pid"), u64::from(pid));
    assert_eq!(u64_at(&e, "rename.writer.tid"), u64::from(pid));
    assert_eq!(str_at(&e, "rename.writer.name"), renamer_comm());
    assert_eq!(u64_at(&e, "rename.count"), 1);
    assert_eq!(
        args_of(&e),
        vec![
            renamer::path().to_string_lossy().into_owned(),
            "prctl".into(),
            renamer::hex(b"e2e-main")
        ]
    );
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn non_main_thread_renames_itself_with_prctl() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("thread-prctl", b"e2e-worker", &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    assert_ne!(pid, tid);
    let e = rename_of(
        &mut d,
        "a prctl rename of a non-main thread",
        pid,
        tid,
        "e2e-worker",
    );
    assert_common(&e, pid, "thread-renamed");
    assert_eq!(
        str_at(&e, "process.name"),
        renamer_comm(),
        "a thread rename leaves the process name"
    );
    assert_eq!(at(&e, "rename.main_thread"), &Value::Bool(false));
    assert_eq!(str_at(&e, "rename.method"), "prctl");
    assert_eq!(u64_at(&e, "rename.writer.tid"), u64::from(tid));
    assert_eq!(u64_at(&e, "rename.count"), 1);
}

#[test]
fn sibling_thread_renames_the_main_thread_through_procfs() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("sibling", b"e2e-sib", &[]);
    assert_eq!(
        out.int("write"),
        0,
        "the write to /proc/self/task/<pid>/comm succeeds"
    );
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    let e = rename_of(
        &mut d,
        "the main thread renamed by its sibling",
        pid,
        pid,
        "e2e-sib",
    );
    assert_common(&e, pid, "process-renamed");
    assert_eq!(str_at(&e, "process.name"), "e2e-sib");
    assert_eq!(str_at(&e, "rename.method"), "procfs");
    assert_eq!(u64_at(&e, "rename.writer.pid"), u64::from(pid));
    assert_eq!(
        u64_at(&e, "rename.writer.tid"),
        u64::from(tid),
        "the writer is the sibling, not the renamed task"
    );
}

#[test]
fn writes_to_own_comm_files_are_procfs_renames() {
    let mut d = Daemon::start(&[]);
    for (cmd, name) in [
        ("self-comm", "e2e-self"),
        ("pid-comm", "e2e-pid"),
        ("thread-self-comm", "e2e-tself"),
    ] {
        let out = renamer::run(cmd, name.as_bytes(), &[]);
        assert_eq!(out.int("write"), 0, "{cmd} write succeeds");
        let pid = out.get("pid");
        let e = rename_of(&mut d, cmd, pid, pid, name);
        assert_common(&e, pid, "process-renamed");
        assert_eq!(str_at(&e, "rename.method"), "procfs", "{cmd}");
        assert_eq!(u64_at(&e, "rename.writer.tid"), u64::from(pid));
    }
}

#[test]
fn writing_another_process_comm_fails_and_reports_nothing() {
    let mut d = Daemon::start(&[]);
    let victim = renamer::spawn_waiting("wait-prctl", b"e2e-victim", &[]);
    // The hijacker writes the name to the victim's comm (refused), then the
    // same name to its own (allowed): the control that shows the daemon
    // sees this process's procfs writes, so what it leaves out means
    // something.
    let out = renamer::run("other-comm", b"e2e-hijack", &[&victim.pid.to_string()]);
    assert_eq!(
        out.int("write"),
        -libc::EINVAL as i64,
        "the kernel refuses cross-process comm writes"
    );
    assert_eq!(
        out.int("own_write"),
        0,
        "the write to its own comm succeeds"
    );
    let hijacker = out.get("pid");
    let own = rename_of(
        &mut d,
        "the hijacker's own write",
        hijacker,
        hijacker,
        "e2e-hijack",
    );
    assert_common(&own, hijacker, "process-renamed");
    assert_eq!(str_at(&own, "rename.method"), "procfs");
    assert_eq!(str_at(&own, "rename.old_name"), renamer_comm(), "{own}");
    // The victim renames itself: the daemon still knows it by the name it
    // had, not by the refused one.
    let victim_pid = victim.pid;
    victim.go();
    let e = rename_of(
        &mut d,
        "the victim's own rename",
        victim_pid,
        victim_pid,
        "e2e-victim",
    );
    assert_eq!(str_at(&e, "rename.old_name"), renamer_comm(), "{e}");
    // Both lines are out, and the refused write came before them: it would
    // be too. The hijacker's own write is the only line with the name.
    let hijacks: Vec<&Value> = d
        .events()
        .iter()
        .filter(|e| at(e, "rename.new_name").as_str() == Some("e2e-hijack"))
        .collect();
    assert_eq!(hijacks, [&own], "a refused write produced an event");
    assert!(
        d.events_of(victim_pid)
            .iter()
            .all(|e| str_at(e, "rename.new_name") == "e2e-victim"),
        "the victim has one rename: {:?}",
        d.events_of(victim_pid)
    );
}

#[test]
fn forked_child_without_exec_is_attributed_to_the_child() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("fork", b"e2e-child", &[]);
    let (pid, child) = (out.get("pid"), out.get("child"));
    let e = rename_of(
        &mut d,
        "the forked child's rename",
        child,
        child,
        "e2e-child",
    );
    assert_eq!(str_at(&e, "event.action"), "process-renamed");
    assert_eq!(u64_at(&e, "process.parent.pid"), u64::from(pid));
    assert_eq!(str_at(&e, "process.parent.name"), renamer_comm());
    assert_eq!(
        str_at(&e, "process.executable").as_bytes(),
        renamer::path().as_os_str().as_bytes()
    );
    assert_eq!(
        str_at(&e, "rename.original_name"),
        renamer_comm(),
        "inherited from the parent's exec"
    );
    assert_eq!(u64_at(&e, "rename.writer.pid"), u64::from(child));
}

#[test]
fn process_started_before_the_daemon_is_fully_described() {
    let before = renamer::spawn_waiting("wait-prctl", b"e2e-early", &[]);
    let pid = before.pid;
    let mut d = Daemon::start(&[]);
    before.go();
    let e = rename_of(
        &mut d,
        "a rename by a process older than the daemon",
        pid,
        pid,
        "e2e-early",
    );
    assert_common(&e, pid, "process-renamed");
    assert_eq!(args_of(&e)[1], "wait-prctl");
}

fn decode(e: &Value, field: &str) -> Vec<u8> {
    match at(e, &format!("{field}_hex")).as_str() {
        Some(hex) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
        None => str_at(e, field).as_bytes().to_vec(),
    }
}

#[test]
fn hostile_names_round_trip_exactly_and_long_names_are_truncated() {
    let mut d = Daemon::start(&[]);
    let names: [&[u8]; 6] = [
        b"line\nbreak",
        b"\x1b[31mred\x1b[0m",
        b"q\"}{\"x\":1",
        b"bad\xff\xfeutf8",
        b"tab\tback\\sl",
        "é✓\u{2028}".as_bytes(),
    ];
    for name in names {
        let out = renamer::run("prctl", name, &[]);
        let pid = out.get("pid");
        let e = d.wait_for("a hostile name", |e| {
            at(e, "process.pid").as_u64() == Some(pid.into())
        });
        assert_eq!(decode(&e, "rename.new_name"), name, "new name bytes");
        assert_eq!(decode(&e, "process.name"), name, "process name bytes");
        assert_eq!(decode(&e, "process.thread.name"), name, "thread name bytes");
    }
    let raw = std::fs::read(&d.output).unwrap();
    let lines = raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(
        lines,
        d.events().len(),
        "every line is one event: no name broke a line"
    );

    let out = renamer::run("prctl", b"0123456789abcdefghij", &[]);
    let pid = out.get("pid");
    let e = rename_of(&mut d, "a 20-byte name", pid, pid, "0123456789abcde");
    assert_eq!(str_at(&e, "process.name"), "0123456789abcde");
}

#[test]
fn exec_renames_are_reported_only_with_include_exec() {
    let mut quiet = Daemon::start(&[]);
    let mut loud = Daemon::start(&["--include-exec"]);
    let out = renamer::run("exec", b"", &[]);
    let pid = out.get("pid");
    let e = rename_of(
        &mut loud,
        "an exec rename with --include-exec",
        pid,
        pid,
        "true",
    );
    assert_eq!(str_at(&e, "rename.method"), "exec");
    assert_eq!(str_at(&e, "rename.old_name"), renamer_comm());
    // The loud daemon saw it; give the quiet one the same time, then check.
    let marker = renamer::run("prctl", b"e2e-marker", &[]).get("pid");
    rename_of(&mut quiet, "a marker rename", marker, marker, "e2e-marker");
    assert!(
        quiet.events_of(pid).is_empty(),
        "exec is not reported by default: {:?}",
        quiet.events_of(pid)
    );
}

#[test]
fn sigterm_during_renames_loses_nothing_that_happened_before_it() {
    let mut d = Daemon::start(&[]);
    // 2,000 renames/s (under the per-process rate) for up to 10 s.
    let mut storm = std::process::Command::new(renamer::path())
        .args(["loop-prctl", &renamer::hex(b"term"), "20000", "2000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = storm.id();
    std::thread::sleep(Duration::from_millis(1500));
    // The name at this instant: every rename up to it happened before SIGTERM.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    let before: u64 = comm.trim().rsplit('-').next().unwrap().parse().unwrap();
    let (status, took) = d.stop();
    storm.kill().unwrap();
    storm.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < patience(Duration::from_secs(2)),
        "SIGTERM to exit took {took:?}"
    );
    let mut seen: Vec<u64> = d
        .events_of(pid)
        .iter()
        .filter_map(|e| {
            at(e, "rename.new_name")
                .as_str()?
                .rsplit('-')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert!(before > 100, "the workload ran ({before} renames)");
    for i in 0..=before {
        assert!(
            seen.binary_search(&i).is_ok(),
            "rename {i} of {before} (before SIGTERM) is missing"
        );
    }
}

#[test]
fn file_output_reaches_the_disk_within_a_second() {
    let mut d = Daemon::start(&[]);
    let out: Output = renamer::run("prctl", b"e2e-fast", &[]);
    let pid = out.get("pid");
    let start = Instant::now();
    let e = rename_of(&mut d, "the rename line", pid, pid, "e2e-fast");
    assert!(
        start.elapsed() < patience(Duration::from_secs(1)),
        "the line took {:?}",
        start.elapsed()
    );
    assert_eq!(str_at(&e, "rename.method"), "prctl");
}

#[test]
fn bad_flags_and_unwritable_output_get_clear_errors() {
    let bin = env!("CARGO_BIN_EXE_rename-audit");
    let out = std::process::Command::new(bin)
        .args(["run", "--config", no_config(), "--no-such-flag"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    let out = std::process::Command::new(bin)
        .args([
            "run",
            "--config",
            no_config(),
            "--output",
            "/nonexistent-dir/x.json",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent-dir/x.json"),
        "the error names the path: {err}"
    );
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn without_privileges_it_says_which_capabilities_it_needs() {
    // The configuration must be readable by the unprivileged user.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = empty_config(dir.path());
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_rename-audit"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--output", "-"])
        .output()
        .expect("setpriv (util-linux) runs the daemon unprivileged");
    assert!(
        !out.status.success(),
        "an unprivileged daemon must not start"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "the error names the capabilities: {err}"
    );
}

#[test]
fn tells_systemd_it_is_ready_once_attached() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(patience(Duration::from_secs(60))))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .arg("run")
        .arg("--config")
        .arg(empty_config(dir.path()))
        .arg("--output")
        .arg(dir.path().join("events.json"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket
        .recv(&mut buf)
        .expect("a notification from the daemon");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Ready means attached: a rename right now is captured.
    let out = renamer::run("prctl", b"e2e-ready", &[]);
    // SAFETY: kill(2) of our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(message.lines().any(|l| l == "READY=1"), "got {message:?}");
    let text = std::fs::read_to_string(dir.path().join("events.json")).unwrap();
    let pid = out.get("pid");
    assert!(
        text.lines()
            .any(|l| l.contains("\"e2e-ready\"") && l.contains(&format!("\"pid\":{pid}"))),
        "the rename right after READY=1 is in the output"
    );
}
