//! End-to-end: masquerades that need no rename (issue 21). The name an exec
//! gives, a spoofed argv[0], a disguise taken before the daemon started, the
//! `sshd:` shape, who can write the executable, and renames that keep the
//! name. Real programs run from real files; every assertion is filtered on
//! the test's own pids.
use std::{
    io::Write as _,
    net::SocketAddr,
    os::unix::{
        fs::{MetadataExt as _, PermissionsExt as _},
        process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::support::{
    daemon::{Daemon, at, str_at, u64_at},
    http, renamer,
    servers::free_port,
    skip,
};
use serde_json::{Value, json};

/// A started program, killed when the test ends however it ends.
struct Running(Child);

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        Running(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start the program"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of `from` at `dir/name`, mode 0755.
fn copy(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).expect("copy the program");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    to
}

/// The alert about `pid` whose action is `action`.
fn alert_of(d: &mut Daemon, pid: u32, action: &str) -> Value {
    let action = action.to_owned();
    d.wait_for(&format!("{action} alert on {pid}"), move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "event.action").as_str() == Some(action.as_str())
            && at(e, "event.kind").as_str() == Some("alert")
    })
}

fn rename_of(d: &mut Daemon, pid: u32, new_name: &str) -> Value {
    let new_name = new_name.to_owned();
    d.wait_for(&format!("{new_name:?} from {pid}"), move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some(new_name.as_str())
    })
}

/// `cp /bin/sleep <tmp>/sshd && <tmp>/sshd 30`: no rename at all, and `ps`
/// shows `sshd`. Judged at exec, without `--include-exec`.
#[test]
fn a_dropped_binary_named_like_a_system_program_alerts_at_exec() {
    let mut d = Daemon::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let sshd = copy(Path::new("/bin/sleep"), dir.path(), "sshd");
    let run = Running::spawn(Command::new(&sshd).arg("30"));
    let e = alert_of(&mut d, run.pid(), "process-renamed");
    assert_eq!(str_at(&e, "rename.method"), "exec", "{e}");
    assert_eq!(str_at(&e, "rename.new_name"), "sshd", "{e}");
    assert_eq!(
        str_at(&e, "process.executable"),
        sshd.to_str().unwrap(),
        "{e}"
    );
    assert_eq!(str_at(&e, "rule.id"), "writable-path-stomp", "{e}");
    assert_eq!(
        at(&e, "rename.rules"),
        &json!(["writable-path-stomp", "system-name-mimic"]),
        "{e}"
    );
    assert_eq!(str_at(&e, "masquerade.judged"), "name", "{e}");
    assert_eq!(str_at(&e, "masquerade.name"), "sshd", "{e}");
}

/// `exec -a "[kworker/0:1]" /bin/sleep 30`: `ps aux` shows a kernel thread.
#[test]
fn a_spoofed_argv0_shaped_like_a_kernel_thread_alerts_at_exec() {
    let mut d = Daemon::start(&[]);
    let run = Running::spawn(Command::new("/bin/sleep").arg0("[kworker/0:1]").arg("30"));
    let e = alert_of(&mut d, run.pid(), "process-renamed");
    assert_eq!(str_at(&e, "rename.method"), "exec", "{e}");
    assert_eq!(str_at(&e, "rule.id"), "kernel-thread-mimic", "{e}");
    assert_eq!(str_at(&e, "rule.severity"), "critical", "{e}");
    assert_eq!(
        at(&e, "rename.rules"),
        &json!(["kernel-thread-mimic"]),
        "{e}"
    );
    assert_eq!(str_at(&e, "masquerade.judged"), "argv0", "{e}");
    assert_eq!(str_at(&e, "masquerade.name"), "[kworker/0:1]", "{e}");
    assert_eq!(at(&e, "process.args")[0], json!("[kworker/0:1]"), "{e}");
}

/// sshd's own setproctitle shape, `sshd: root`, from a binary in /tmp.
#[test]
fn a_rename_to_sshd_colon_root_is_a_system_name_mimic() {
    let mut d = Daemon::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let payload = copy(renamer::path(), dir.path(), "payload");
    let pid = renamer::run_from(&payload, "prctl", b"sshd: root", &[]).get("pid");
    let e = rename_of(&mut d, pid, "sshd: root");
    assert_eq!(str_at(&e, "event.kind"), "alert", "{e}");
    assert_eq!(
        at(&e, "rename.rules"),
        &json!([
            "writable-path-stomp",
            "system-name-mimic",
            "process-renamed"
        ]),
        "{e}"
    );
}

/// A directory that only root can write, made under /root, or under /run
/// where /root is read-only (the kernel matrix's guests share the host's
/// root file system read-only; their /run is a tmpfs of root's, mode 0755,
/// as on the host). `None`, with a skip reported, when neither works.
fn root_only_dir() -> Option<tempfile::TempDir> {
    let mut refused = Vec::new();
    for base in ["/root", "/run"] {
        let meta = match std::fs::metadata(base) {
            Ok(meta) => meta,
            Err(error) => {
                refused.push(format!("{base}: {error}"));
                continue;
            }
        };
        // Only a root-owned base that nobody else can write makes the
        // scenario: otherwise the rule is right to call it writable.
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            refused.push(format!(
                "{base}: owner {} mode {:o}",
                meta.uid(),
                meta.mode() & 0o7777
            ));
            continue;
        }
        match tempfile::Builder::new()
            .prefix("rename-audit-test-")
            .tempdir_in(base)
        {
            Ok(dir) => {
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                    .expect("chmod 0755");
                return Some(dir);
            }
            Err(error) => refused.push(format!("{base}: {error}")),
        }
    }
    skip(&format!(
        "no root-only directory can be made: {}",
        refused.join("; ")
    ));
    None
}

/// pyenv, nvm or conda under /root: a root-owned 0755 interpreter in a
/// root-owned 0755 directory is no more writable than /usr/bin. A file
/// owned by nobody in the same place is.
#[test]
fn writable_path_stomp_judges_owners_and_modes() {
    let Some(dir) = root_only_dir() else {
        return;
    };
    let mut d = Daemon::start(&[]);
    let python = copy(renamer::path(), dir.path(), "python3.11");
    let pid = renamer::run_from(&python, "prctl", b"e2e-pyenv", &[]).get("pid");
    let e = rename_of(&mut d, pid, "e2e-pyenv");
    assert_eq!(at(&e, "rename.rules"), &json!(["process-renamed"]), "{e}");

    let nobody = copy(renamer::path(), dir.path(), "nobodys");
    std::os::unix::fs::chown(&nobody, Some(65534), Some(65534)).expect("chown 65534");
    let pid = renamer::run_from(&nobody, "prctl", b"e2e-nobody", &[]).get("pid");
    let e = rename_of(&mut d, pid, "e2e-nobody");
    assert_eq!(str_at(&e, "rule.id"), "writable-path-stomp", "{e}");
    assert_eq!(
        at(&e, "rename.rules"),
        &json!(["writable-path-stomp", "process-renamed"]),
        "{e}"
    );
    assert!(
        str_at(&e, "message").contains("user 65534"),
        "the message says who can write it: {e}"
    );
}

/// `prctl(PR_SET_NAME)` to the name the process already has changes nothing
/// `ps` shows: it is not written (and is counted as filtered).
#[test]
fn a_rename_to_the_same_name_is_not_written() {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut d = Daemon::start(&["--metrics-listen", &listen.to_string()]);
    let name = renamer::path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let comm = &name[..name.len().min(15)];
    let same = renamer::run("prctl", comm.as_bytes(), &[]).get("pid");
    // A later rename on the same ring: once it is written, the first one
    // was handled.
    let marker = renamer::run("prctl", b"e2e-after-same", &[]).get("pid");
    rename_of(&mut d, marker, "e2e-after-same");
    let written: Vec<Value> = d
        .events_of(same)
        .into_iter()
        .filter(|e| e.get("rename").is_some())
        .collect();
    assert_eq!(written, Vec::<Value>::new(), "nothing about {same}");
    // Counted, host-wide: ours at least.
    let (status, body) = http::get(listen, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let unchanged: f64 = body
        .lines()
        .find_map(|l| {
            l.strip_prefix("rename_audit_renames_filtered_total{reason=\"unchanged\"} ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    assert!(unchanged >= 1.0, "counted as unchanged: {body}");
    // Every number is a line: the rename left out took none (it used to,
    // leaving a hole that no events-lost record explains).
    let (status, _) = d.stop();
    assert!(status.success(), "{status}");
    let mut sequences: Vec<u64> = d
        .events()
        .iter()
        .map(|e| u64_at(e, "event.sequence"))
        .collect();
    sequences.sort_unstable();
    let every: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, every, "event.sequence has no holes");
}

/// Disguises taken while the daemon was not running are reported when it
/// starts, as found, not as seen happening.
#[test]
fn a_process_disguised_before_start_up_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let payload = copy(renamer::path(), dir.path(), "payload");
    let mut kworker = renamer::spawn_waiting_from(&payload, "wait-prctl-hold", b"kworker/1:7", &[]);
    let mut cron = renamer::spawn_waiting_from(&payload, "wait-prctl-hold", b"cron", &[]);
    for w in [&mut kworker, &mut cron] {
        w.child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("tell it to rename");
        assert_eq!(w.read_value("renamed"), 1);
    }
    let mut d = Daemon::start(&[]);
    let e = alert_of(&mut d, kworker.pid, "disguise-found-at-start-up");
    assert_eq!(str_at(&e, "rule.id"), "kernel-thread-mimic", "{e}");
    assert_eq!(str_at(&e, "process.name"), "kworker/1:7", "{e}");
    assert_eq!(str_at(&e, "masquerade.judged"), "name", "{e}");
    assert_eq!(str_at(&e, "masquerade.name"), "kworker/1:7", "{e}");
    assert!(at(&e, "rename").is_null(), "not a rename: {e}");
    assert_eq!(
        at(&e, "masquerade.rules"),
        &json!(["kernel-thread-mimic", "writable-path-stomp"]),
        "{e}"
    );
    let e = alert_of(&mut d, cron.pid, "disguise-found-at-start-up");
    assert_eq!(str_at(&e, "rule.id"), "writable-path-stomp", "{e}");
    assert_eq!(str_at(&e, "masquerade.name"), "cron", "{e}");
    assert_eq!(
        at(&e, "masquerade.rules"),
        &json!(["writable-path-stomp", "system-name-mimic"]),
        "{e}"
    );
    assert!(
        str_at(&e, "message").contains("when the daemon started"),
        "{e}"
    );
    for w in [kworker, cron] {
        w.go();
    }
}

/// Ordinary execs judged at exec raise nothing: interpreters through
/// symlinks, `sh` (dash or bash through a symlink), a login shell's
/// `-bash`, busybox applets, a path argv[0] to the program itself, and a
/// program of no system name run from /tmp.
#[test]
fn ordinary_execs_raise_no_alert() {
    let mut d = Daemon::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let build = copy(Path::new("/bin/true"), dir.path(), "build-step");
    let mut pids = Vec::new();
    let mut run = |cmd: &mut Command| {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start an ordinary program");
        pids.push(child.id());
        child.wait().expect("wait");
    };
    run(Command::new("/bin/sh").args(["-c", "true"]));
    run(Command::new("/bin/bash").arg0("-bash").args(["-c", "true"]));
    run(Command::new("/bin/bash")
        .arg0("/bin/bash")
        .args(["-c", "true"]));
    run(Command::new("/bin/true").arg0("/usr/bin/true"));
    run(&mut Command::new(&build));
    for (interpreter, flag) in [("/usr/bin/python3", "-c"), ("/usr/bin/perl", "-e")] {
        if Path::new(interpreter).exists() {
            run(Command::new(interpreter).args([flag, "1"]));
        }
    }
    // A busybox applet through its symlink, as busybox installs them.
    if let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|b| Path::new(b).exists())
    {
        let sh = dir.path().join("sh");
        std::os::unix::fs::symlink(busybox, &sh).expect("symlink an applet");
        run(Command::new(&sh).args(["-c", "true"]));
    }
    let marker = renamer::run("prctl", b"e2e-ordinary", &[]).get("pid");
    rename_of(&mut d, marker, "e2e-ordinary");
    for pid in pids {
        let alerts: Vec<Value> = d
            .events_of(pid)
            .into_iter()
            .filter(|e| at(e, "event.kind").as_str() == Some("alert"))
            .collect();
        assert_eq!(alerts, Vec::<Value>::new(), "no alert for {pid}");
    }
}
