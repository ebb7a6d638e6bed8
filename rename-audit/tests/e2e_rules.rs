//! End-to-end: the alert rules on real renames seen by the real daemon.
//! Every masquerade is done by the compiled test renamer (or a copy of it
//! dropped in /tmp); tests filter on the renamer's pid, since the daemon sees
//! the whole host.
mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use support::{
    alerting::{
        Dropped, KERNEL_THREAD_MIMIC, KillOnDrop, PROCESS_RENAMED, SIBLING_RENAMED_MAIN,
        SYSTEM_NAME_MIMIC, WRITABLE_PATH_STOMP, assert_alert, assert_no_alert, rename_of,
        write_config,
    },
    daemon::{Daemon, at, str_at, u64_at},
    renamer,
};

#[test]
fn a_process_taking_a_kernel_thread_name_is_critical_kernel_thread_mimic() {
    let mut d = Daemon::start(&[]);
    let pid = renamer::run("prctl", b"kworker/0:1", &[]).get("pid");
    let e = rename_of(&mut d, "the rename to kworker/0:1", pid, pid, "kworker/0:1");
    assert_alert(&e, &KERNEL_THREAD_MIMIC, pid, "kworker/0:1");
    assert_eq!(
        at(&e, "threat.technique.reference"),
        &serde_json::json!(["https://attack.mitre.org/techniques/T1036/004/"])
    );

    // A thread of an ordinary program has no business looking like one either.
    let out = renamer::run("thread-prctl", b"ksoftirqd/3", &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    let e = rename_of(
        &mut d,
        "a thread renamed to ksoftirqd/3",
        pid,
        tid,
        "ksoftirqd/3",
    );
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
    assert_alert(&e, &KERNEL_THREAD_MIMIC, pid, "ksoftirqd/3");
}

/// Atomic Red Team T1036.004: a binary dropped in /tmp renames itself to
/// "totally_legit".
#[test]
fn a_binary_in_tmp_renaming_itself_is_writable_path_stomp() {
    let mut d = Daemon::start(&[]);
    let dropped = Dropped::new();
    let pid = renamer::run_from(&dropped.exe, "prctl", b"totally_legit", &[]).get("pid");
    let e = rename_of(
        &mut d,
        "the rename to totally_legit",
        pid,
        pid,
        "totally_legit",
    );
    assert_alert(&e, &WRITABLE_PATH_STOMP, pid, "totally_legit");
    assert_eq!(str_at(&e, "process.executable"), dropped.exe_str());
    assert_eq!(str_at(&e, "rename.old_name"), "payload");
    let message = str_at(&e, "message");
    assert!(
        message.contains("under /tmp") && message.contains(dropped.exe_str()),
        "the message says where the executable is: {message}"
    );
}

/// A dropper that deletes its own binary, from a directory that is not one of
/// the writable ones, then renames itself.
#[test]
fn a_process_whose_executable_was_deleted_renaming_itself_is_writable_path_stomp() {
    let mut d = Daemon::start(&["--include-exec"]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let exe = dir.path().join("self-deleting");
    std::fs::copy(renamer::path(), &exe).expect("copy the renamer");
    let mut waiting = renamer::spawn_waiting_from(&exe, "wait-prctl-hold", b"e2e-gone", &[]);
    let pid = waiting.pid;
    // Delete only once the daemon has handled the exec, so that what it
    // learnt at exec (the path, not yet deleted) is out of date.
    rename_of(&mut d, "the exec", pid, pid, "self-deleting");
    std::fs::remove_file(&exe).expect("delete the running binary");
    // Rename, and stay alive as an implant would: the daemon reads the
    // executable of a live process.
    let stdin = waiting.child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"go\n").expect("tell it to rename");
    stdin.flush().expect("flush");
    let e = rename_of(&mut d, "the rename after the delete", pid, pid, "e2e-gone");
    waiting.go();
    assert_alert(&e, &WRITABLE_PATH_STOMP, pid, "e2e-gone");
    assert_eq!(
        str_at(&e, "process.executable"),
        format!("{} (deleted)", exe.display()),
        "the executable shows as deleted, as /proc/<pid>/exe does"
    );
    assert!(
        str_at(&e, "message").contains("the executable was deleted"),
        "{e}"
    );
}

#[test]
fn a_fileless_process_running_from_a_memfd_renaming_itself_is_writable_path_stomp() {
    let mut d = Daemon::start(&[]);
    let mut waiting = renamer::spawn_waiting("memfd-exec", b"e2e-fileless", &["wait-prctl-hold"]);
    let pid = waiting.pid;
    // The memfd image says it is ready, with the same pid.
    assert_eq!(waiting.read_value("waiting"), 1);
    let stdin = waiting.child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"go\n").expect("tell it to rename");
    stdin.flush().expect("flush");
    let e = rename_of(&mut d, "the fileless rename", pid, pid, "e2e-fileless");
    waiting.go();
    assert_alert(&e, &WRITABLE_PATH_STOMP, pid, "e2e-fileless");
    assert_eq!(
        str_at(&e, "process.executable"),
        "/memfd:payload (deleted)",
        "{e}"
    );
    assert!(
        str_at(&e, "message").contains("the executable is a memfd"),
        "{e}"
    );
}

#[test]
fn a_process_taking_a_system_program_name_is_system_name_mimic() {
    let mut d = Daemon::start(&[]);
    let pid = renamer::run("prctl", b"sshd", &[]).get("pid");
    let e = rename_of(&mut d, "the rename to sshd", pid, pid, "sshd");
    assert_alert(&e, &SYSTEM_NAME_MIMIC, pid, "sshd");
    assert!(
        str_at(&e, "message").contains("well-known system program"),
        "{e}"
    );
}

#[test]
fn a_process_taking_the_name_of_another_running_program_is_system_name_mimic() {
    let mut d = Daemon::start(&[]);
    // A running program with an unusual name and a different executable.
    let dir = tempfile::tempdir().expect("temp dir");
    let other = dir.path().join("e2e-lookalike");
    std::fs::copy("/bin/sleep", &other).expect("copy /bin/sleep");
    let sleeper = KillOnDrop(
        Command::new(&other)
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("start the look-alike"),
    );
    // spawn returns once the exec is done, so the daemon's ring holds the
    // look-alike's exec before anything the renamer does.
    let pid = renamer::run("prctl", b"e2e-lookalike", &[]).get("pid");
    let e = rename_of(
        &mut d,
        "the rename to e2e-lookalike",
        pid,
        pid,
        "e2e-lookalike",
    );
    drop(sleeper);
    assert_alert(&e, &SYSTEM_NAME_MIMIC, pid, "e2e-lookalike");
    assert!(
        str_at(&e, "message").contains(other.to_str().unwrap()),
        "the message names the other program: {e}"
    );
}

#[test]
fn a_sibling_thread_renaming_the_main_thread_is_sibling_renamed_main() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("sibling", b"e2e-sibling", &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    assert_eq!(out.int("write"), 0, "the sibling's write failed");
    let e = rename_of(&mut d, "the sibling's rename", pid, pid, "e2e-sibling");
    assert_alert(&e, &SIBLING_RENAMED_MAIN, pid, "e2e-sibling");
    assert_eq!(u64_at(&e, "rename.writer.tid"), u64::from(tid));
    assert_eq!(str_at(&e, "rename.method"), "procfs");
}

#[test]
fn a_plain_main_thread_rename_is_process_renamed() {
    let mut d = Daemon::start(&[]);
    let pid = renamer::run("prctl", b"e2e-plain", &[]).get("pid");
    let e = rename_of(&mut d, "the plain rename", pid, pid, "e2e-plain");
    assert_alert(&e, &PROCESS_RENAMED, pid, "e2e-plain");
    assert_eq!(str_at(&e, "event.action"), "process-renamed");
}

#[test]
fn a_thread_taking_a_benign_name_raises_nothing() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("thread-prctl", b"e2e-worker", &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    let e = rename_of(&mut d, "the thread rename", pid, tid, "e2e-worker");
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
    assert_no_alert(&e, "a benign thread rename");
}

#[test]
fn an_exec_raises_nothing_even_when_reported() {
    let mut d = Daemon::start(&["--include-exec"]);
    let pid = renamer::run("exec", b"", &[]).get("pid");
    let e = rename_of(&mut d, "the exec of /bin/true", pid, pid, "true");
    assert_eq!(str_at(&e, "rename.method"), "exec");
    assert_no_alert(&e, "an exec");
    // The renamer's own exec (from the test's thread name) is reported too.
    let events = d.events_of(pid);
    assert!(events.len() >= 2, "both execs are reported: {events:#?}");
    for e in &events {
        assert_no_alert(e, "an exec");
    }
}

#[test]
fn an_allow_listed_rename_raises_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = renamer::path().to_str().expect("UTF-8 path");
    let config = write_config(
        dir.path(),
        "config.toml",
        &format!("[[allow.entry]]\nexecutable = \"{exe}\"\nname = \"e2e-ok-*\"\n"),
    );
    let mut d = Daemon::start(&["--config", config.to_str().unwrap()]);

    let pid = renamer::run("prctl", b"e2e-ok-1", &[]).get("pid");
    let e = rename_of(&mut d, "the allow-listed rename", pid, pid, "e2e-ok-1");
    assert_no_alert(&e, "a rename the allow-list matches");

    // The entry is exactly as wide as written: another name still alerts.
    let pid = renamer::run("prctl", b"e2e-other", &[]).get("pid");
    let e = rename_of(&mut d, "a rename outside the entry", pid, pid, "e2e-other");
    assert_alert(&e, &PROCESS_RENAMED, pid, "e2e-other");
}

#[test]
fn a_rule_switched_off_raises_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "config.toml",
        "[rules.process-renamed]\nenabled = false\n",
    );
    let mut d = Daemon::start(&["--config", config.to_str().unwrap()]);

    let pid = renamer::run("prctl", b"e2e-quiet", &[]).get("pid");
    let e = rename_of(&mut d, "the plain rename", pid, pid, "e2e-quiet");
    assert_eq!(str_at(&e, "event.action"), "process-renamed");
    assert_no_alert(&e, "process-renamed switched off");

    // The other rules stay on.
    let pid = renamer::run("prctl", b"kworker/1:2", &[]).get("pid");
    let e = rename_of(&mut d, "the rename to kworker/1:2", pid, pid, "kworker/1:2");
    assert_alert(&e, &KERNEL_THREAD_MIMIC, pid, "kworker/1:2");
}

/// Runs `program args` to completion; its pid.
fn run_program(program: &str, args: &[&str]) -> u32 {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let pid = child.id();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{program} {args:?}: {status}");
    pid
}

#[test]
fn real_interpreters_masquerading_are_caught() {
    let mut d = Daemon::start(&[]);
    // Perl's `$0 = ...` renames the process.
    let pid = run_program("/usr/bin/perl", &["-e", "$0 = 'kworker/0:2'"]);
    let e = rename_of(&mut d, "perl's $0", pid, pid, "kworker/0:2");
    assert_alert(&e, &KERNEL_THREAD_MIMIC, pid, "kworker/0:2");
    assert_eq!(str_at(&e, "process.executable"), "/usr/bin/perl");

    // The example: python renamed to "sshd".
    let pid = run_program(
        "/usr/bin/python3",
        &[
            "-c",
            "import ctypes; ctypes.CDLL(None).prctl(15, b'sshd', 0, 0, 0)",
        ],
    );
    let e = rename_of(&mut d, "python's prctl", pid, pid, "sshd");
    assert_alert(&e, &SYSTEM_NAME_MIMIC, pid, "sshd");
    assert!(
        str_at(&e, "process.executable").starts_with("/usr/bin/python3"),
        "{e}"
    );
}

#[test]
fn tmux_naming_its_server_is_allowed_by_default() {
    let mut d = Daemon::start(&[]);
    let socket = format!("rename-audit-e2e-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("/usr/bin/tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux (Debian's tmux package)");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    tmux(&["new-session", "-d", "sleep 30"]);
    let server: u32 = tmux(&["display", "-p", "#{pid}"])
        .parse()
        .expect("the server's pid");
    let e = rename_of(&mut d, "tmux's server name", server, server, "tmux: server");
    tmux(&["kill-server"]);
    assert_eq!(str_at(&e, "process.executable"), "/usr/bin/tmux");
    assert_no_alert(&e, "tmux naming its server (default allow-list)");
}
