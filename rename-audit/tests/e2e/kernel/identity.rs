//! End-to-end: the kernel tells which image made a rename. A binary dropped
//! in /tmp is judged by its real, absolute path however it is started
//! (relative path, symlink, daemonized, exec'd away after renaming), exec
//! events describe the new image, and arguments are capped.
use std::{
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::support::{
    daemon::{Daemon, at, no_config, str_at},
    renamer,
};
use serde_json::Value;

/// A copy of the test renamer in a fresh directory under /tmp, where a
/// dropper would put it.
struct Dropped {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Dropped {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ra-dropped-")
            .tempdir_in("/tmp")
            .expect("temp dir in /tmp");
        let binary = dir.path().join("dropper");
        std::fs::copy(renamer::path(), &binary).expect("copy the renamer to /tmp");
        Self { dir, binary }
    }

    /// Runs `./<file> <args>` from the directory, to completion, and returns
    /// what it printed as `key=value` pairs.
    fn run_relative(&self, file: &str, cmd: &str, name: &[u8], extra: &[&str]) -> renamer::Output {
        let out = Command::new(format!("./{file}"))
            .current_dir(self.dir.path())
            .arg(cmd)
            .arg(renamer::hex(name))
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run the dropped binary");
        assert!(out.status.success(), "{file} {cmd} failed: {out:?}");
        let mut values = std::collections::HashMap::<String, Vec<String>>::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.split_once('=') {
                values.entry(k.to_owned()).or_default().push(v.to_owned());
            }
        }
        renamer::Output { values }
    }
}

fn renamed_to(d: &mut Daemon, pid: u32, new_name: &str) -> Value {
    let new_name = new_name.to_owned();
    d.wait_for(&format!("pid {pid} renamed to {new_name}"), move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some(new_name.as_str())
    })
}

/// The event names `path` as its executable, with the file's device and
/// inode, and raises `writable-path-stomp`.
fn assert_dropped(e: &Value, path: &Path) {
    assert_eq!(
        str_at(e, "process.executable").as_bytes(),
        path.as_os_str().as_bytes(),
        "{e}"
    );
    let meta = std::fs::metadata(path).expect("stat the binary");
    assert_eq!(
        str_at(e, "process.executable_file.device"),
        mount_device_of(path),
        "{e}"
    );
    assert_eq!(
        at(e, "process.executable_file.inode").as_u64(),
        Some(meta.ino()),
        "{e}"
    );
    assert_eq!(str_at(e, "rule.id"), "writable-path-stomp", "{e}");
    assert_eq!(str_at(e, "rule.severity"), "high", "{e}");
}

/// `major:minor` of the file system holding `path`, as the mount table
/// lists it (the superblock's device; `stat` reports another on overlayfs
/// and btrfs).
fn mount_device_of(path: &Path) -> String {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let path = path.as_os_str().as_bytes();
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = fields.get(4)?.as_bytes();
            let inside = path.starts_with(mount_point)
                && (mount_point == b"/"
                    || path.len() == mount_point.len()
                    || path[mount_point.len()] == b'/');
            inside.then(|| (mount_point.len(), fields[2].to_owned()))
        })
        // The last of the deepest mount points is the one on top.
        .fold(None, |best: Option<(usize, String)>, m| match &best {
            Some(b) if b.0 > m.0 => best,
            _ => Some(m),
        })
        .expect("a mount holds the binary")
        .1
}

#[test]
fn a_dropped_binary_is_named_by_its_real_path_however_it_is_started() {
    let dropped = Dropped::new();
    std::os::unix::fs::symlink(&dropped.binary, dropped.dir.path().join("innocent"))
        .expect("symlink");
    let mut d = Daemon::start(&[]);

    // Started by a relative path, renaming itself and exiting at once.
    let out = dropped.run_relative("dropper", "prctl", b"backupd", &[]);
    let e = renamed_to(&mut d, out.get("pid"), "backupd");
    assert_dropped(&e, &dropped.binary);
    assert_eq!(
        at(&e, "process.args"),
        &serde_json::json!(["./dropper", "prctl", renamer::hex(b"backupd")])
    );

    // Through a symlink: the file it points to.
    let out = dropped.run_relative("innocent", "prctl", b"cron", &[]);
    let e = renamed_to(&mut d, out.get("pid"), "cron");
    assert_dropped(&e, &dropped.binary);

    // Daemonized: renames, forks, the parent exits; the child renames on.
    let out = dropped.run_relative("dropper", "daemonize", b"sshd", &[]);
    let e = renamed_to(&mut d, out.get("pid"), "sshd");
    assert_dropped(&e, &dropped.binary);
    let child = out.get("child-renamed");
    assert_eq!(child, out.get("child"));
    let e = renamed_to(&mut d, child, "daemon-child");
    assert_dropped(&e, &dropped.binary);
    assert_eq!(
        at(&e, "process.parent.pid").as_u64(),
        Some(out.get("pid").into())
    );

    // Renames, then execs a system binary: the rename is the dropper's.
    let out = dropped.run_relative("dropper", "prctl-exec", b"updater", &["/usr/bin/true"]);
    let e = renamed_to(&mut d, out.get("pid"), "updater");
    assert_dropped(&e, &dropped.binary);
    d.stop();
}

#[test]
fn exec_events_describe_the_new_image() {
    let mut d = Daemon::start(&["--include-exec"]);
    let exec_of = |d: &mut Daemon, pid: u32, comm: &str| {
        let comm = comm.to_owned();
        d.wait_for(&format!("exec of {pid} into {comm}"), move |e| {
            at(e, "process.pid").as_u64() == Some(pid.into())
                && at(e, "rename.method").as_str() == Some("exec")
                && at(e, "rename.new_name").as_str() == Some(comm.as_str())
        })
    };

    // bash runs a command, then replaces itself with sleep.
    let mut bash = Command::new("/usr/bin/bash")
        .args(["-c", "/usr/bin/true; exec /usr/bin/sleep 0"])
        .spawn()
        .expect("run bash");
    let pid = bash.id();
    assert!(bash.wait().expect("wait").success());
    let e = exec_of(&mut d, pid, "bash");
    assert_eq!(str_at(&e, "process.executable"), "/usr/bin/bash", "{e}");
    let e = exec_of(&mut d, pid, "sleep");
    assert_eq!(str_at(&e, "process.executable"), "/usr/bin/sleep", "{e}");
    assert_eq!(
        at(&e, "process.args"),
        &serde_json::json!(["/usr/bin/sleep", "0"])
    );
    assert_eq!(str_at(&e, "rename.old_name"), "bash", "{e}");

    // env execs sleep: each exec carries its own image and arguments.
    let mut env = Command::new("/usr/bin/env")
        .args(["sleep", "0"])
        .spawn()
        .expect("run env");
    let pid = env.id();
    assert!(env.wait().expect("wait").success());
    let e = exec_of(&mut d, pid, "env");
    assert_eq!(str_at(&e, "process.executable"), "/usr/bin/env", "{e}");
    assert_eq!(
        at(&e, "process.args"),
        &serde_json::json!(["/usr/bin/env", "sleep", "0"])
    );
    let e = exec_of(&mut d, pid, "sleep");
    assert_eq!(str_at(&e, "process.executable"), "/usr/bin/sleep", "{e}");
    assert_eq!(at(&e, "process.args"), &serde_json::json!(["sleep", "0"]));
    d.stop();
}

#[test]
fn long_arguments_are_capped_and_marked() {
    // 200 KB of arguments, before the daemon starts (read from /proc) and
    // after (read by the kernel at exec).
    let long: Vec<String> = (0..2000).map(|i| format!("{i:0>99}")).collect();
    let early = renamer::spawn_waiting(
        "wait-prctl",
        b"early-long",
        &long.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut d = Daemon::start(&[]);
    let pid = early.pid;
    let out = early.go();
    assert_eq!(out.get("pid"), pid);
    let e = renamed_to(&mut d, pid, "early-long");
    assert_capped(&e);

    let late = renamer::run(
        "prctl",
        b"late-long",
        &long.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let e = renamed_to(&mut d, late.get("pid"), "late-long");
    assert_capped(&e);
    d.stop();
}

/// At most `ARGS_LEN` (1,024) bytes of arguments, NULs included, and the
/// event says they were cut.
fn assert_capped(e: &Value) {
    let args = at(e, "process.args").as_array().expect("process.args");
    // NUL-separated: one NUL between arguments.
    let bytes: usize = args
        .iter()
        .map(|a| a.as_str().unwrap().len() + 1)
        .sum::<usize>()
        - 1;
    assert!(bytes <= 1024, "{bytes} bytes of arguments: {e}");
    assert!(bytes > 900, "only {bytes} bytes of arguments kept: {e}");
    assert_eq!(at(e, "process.args_truncated"), &Value::Bool(true), "{e}");
}

#[test]
fn without_cap_sys_ptrace_the_daemon_refuses_to_start_and_says_why() {
    // Root, but with CAP_SYS_PTRACE gone from every set, as a unit that
    // dropped it from CapabilityBoundingSet= would run the daemon.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("setpriv")
        .args(["--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--"])
        .arg(env!("CARGO_BIN_EXE_rename-audit"))
        .args(["run", "--config", no_config()])
        .arg("--output")
        .arg(dir.path().join("events.json"))
        .stdin(Stdio::null())
        .output()
        .expect("run the daemon under setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs CAP_SYS_PTRACE") && stderr.contains("AmbientCapabilities="),
        "the error names the capability and where to grant it: {stderr}"
    );
    assert!(!stderr.contains("attached; ready"), "{stderr}");
}

/// A bind mount of kthreadd's /proc entry over a process's own, the way a
/// process hides from `ps` (Atomic Red Team T1036.004, test 4); undone on drop.
struct Hidden {
    mount_point: String,
}

impl Hidden {
    fn hide(pid: u32) -> Self {
        let mount_point = format!("/proc/{pid}");
        let status = Command::new("mount")
            .args(["--bind", "/proc/2", &mount_point])
            .status()
            .expect("run mount");
        assert!(status.success(), "mount --bind /proc/2 {mount_point}");
        let shown = std::fs::read_to_string(format!("{mount_point}/comm")).unwrap();
        assert_eq!(shown, "kthreadd\n", "ps now shows kthreadd for {pid}");
        Self { mount_point }
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        // The kernel drops the mount itself when the hidden process exits.
        let _ = Command::new("umount")
            .arg(&self.mount_point)
            .stderr(Stdio::null())
            .status();
    }
}

fn hidden_alert(d: &mut Daemon, pid: u32) -> Value {
    d.wait_for(&format!("process-hidden for {pid}"), move |e| {
        at(e, "event.action").as_str() == Some("process-hidden")
            && at(e, "hidden.pid").as_u64() == Some(pid.into())
    })
}

#[test]
fn hidden_processes_are_reported_and_keep_their_identity() {
    let exe = renamer::path().as_os_str().as_bytes();
    // Hidden before the daemon starts.
    let early = renamer::spawn_waiting("wait-prctl", b"early-hidden", &[]);
    let _early_mount = Hidden::hide(early.pid);
    let mut d = Daemon::start(&[]);
    let e = hidden_alert(&mut d, early.pid);
    assert_eq!(str_at(&e, "hidden.found"), "start-up", "{e}");
    assert_eq!(at(&e, "hidden.covered_by.pid").as_u64(), Some(2), "{e}");
    assert_eq!(
        str_at(&e, "hidden.mount_point"),
        format!("/proc/{}", early.pid)
    );
    assert_eq!(str_at(&e, "rule.id"), "process-hidden", "{e}");
    assert_eq!(str_at(&e, "rule.severity"), "high", "{e}");
    assert_eq!(at(&e, "threat.technique.id"), &serde_json::json!(["T1564"]));
    // Read through the daemon's own procfs: the real process, not kthreadd.
    assert_eq!(str_at(&e, "process.executable").as_bytes(), exe, "{e}");
    assert_eq!(
        at(&e, "process.parent.pid").as_u64(),
        Some(std::process::id().into())
    );

    // Its later rename is judged with its real executable and parent.
    let pid = early.pid;
    early.go();
    let e = d.wait_for("the hidden process's rename", move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some("early-hidden")
    });
    assert_eq!(str_at(&e, "process.executable").as_bytes(), exe, "{e}");
    assert_eq!(
        at(&e, "process.parent.pid").as_u64(),
        Some(std::process::id().into()),
        "{e}"
    );
    assert!(!args_empty(&e), "{e}");

    // Hidden while the daemon runs: the mount syscall is seen.
    let late = renamer::spawn_waiting("wait-prctl", b"late-hidden", &[]);
    let _late_mount = Hidden::hide(late.pid);
    let e = hidden_alert(&mut d, late.pid);
    assert_eq!(str_at(&e, "hidden.found"), "mount", "{e}");
    assert_eq!(at(&e, "hidden.covered_by.pid").as_u64(), Some(2), "{e}");
    assert_eq!(str_at(&e, "process.executable").as_bytes(), exe, "{e}");
    late.go();
    d.stop();
}

/// A process hidden inside a mount namespace made after start-up, by
/// mount(8), which has exited by the time the daemon looks at its mount:
/// the daemon reads the table of mount(8)'s shell, still in that namespace.
/// Where mounts are watched with fanotify, the daemon has to mark the new
/// namespace first (the shell's exec reports it); the test mounts only once
/// the mark is there, so the mount is found by the watch, not by the read
/// that follows marking.
#[test]
fn a_process_hidden_in_a_new_mount_namespace_is_reported() {
    let mut d = Daemon::start(&[]);
    let line = d.wait_for_log("kernel hooks attached");
    hide_in_a_new_namespace(&mut d, &line);
    d.stop();
}

/// The test above, on a running daemon whose start-up line is `line`
/// (whichever way it watches mounts).
fn hide_in_a_new_namespace(d: &mut Daemon, line: &str) {
    let marker = renamer::run("probe", b"", &["1", "0"]).get("pid");
    d.wait_for("a marker rename", move |e| {
        at(e, "process.pid").as_u64() == Some(marker.into())
            && at(e, "rename.new_name").as_str() == Some("probe-0")
    });
    let hidden = renamer::spawn_waiting("wait-prctl", b"ns-hidden", &[]);
    let mut shell = KillOnDrop(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "read go; mount --bind /proc/2 /proc/{} && echo mounted; exec sleep 600",
                hidden.pid
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run unshare"),
    );
    let own_ns = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino();
    let shell_ns = wait_until("the shell's own mount namespace", || {
        let ino = std::fs::metadata(format!("/proc/{}/ns/mnt", shell.0.id()))
            .ok()?
            .ino();
        (ino != own_ns).then_some(ino)
    });
    if line.contains("mount_watch=\"fanotify\"") {
        let needle = format!("fanotify mnt_ns:{shell_ns} ");
        wait_until("the daemon's mark on the new namespace", || {
            fanotify_fdinfo(d.pid()).contains(&needle).then_some(())
        });
    }
    // Everything before the mount is handled (the shell's own records:
    // `unshare --propagation` mounts too) once a marker rename's line is out.
    let marker = renamer::run("probe", b"", &["1", "0"]).get("pid");
    d.wait_for("a marker rename after the unshare", move |e| {
        at(e, "process.pid").as_u64() == Some(marker.into())
            && at(e, "rename.new_name").as_str() == Some("probe-0")
    });
    // The daemon is stopped while mount(8) runs, so that it looks only once
    // mount(8) is gone (the shell has reaped it before it says "mounted"):
    // it has to find the mount through the shell.
    use std::io::{BufRead, Write};
    d.signal(libc::SIGSTOP);
    writeln!(shell.0.stdin.as_mut().unwrap(), "go").unwrap();
    let mut said = String::new();
    std::io::BufReader::new(shell.0.stdout.as_mut().unwrap())
        .read_line(&mut said)
        .unwrap();
    d.signal(libc::SIGCONT);
    assert_eq!(said, "mounted\n", "mount --bind in the new namespace");
    let e = hidden_alert(d, hidden.pid);
    assert_eq!(str_at(&e, "hidden.found"), "mount", "{e}");
    assert_eq!(at(&e, "hidden.covered_by.pid").as_u64(), Some(2), "{e}");
    assert_eq!(
        str_at(&e, "hidden.mount_point"),
        format!("/proc/{}", hidden.pid),
        "{e}"
    );
    hidden.go();
}

/// Kills and reaps a child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` until it gives a value; panics after the deadline.
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline =
        std::time::Instant::now() + crate::support::patience(std::time::Duration::from_secs(10));
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not there within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The fdinfo of the daemon's fanotify group: one line per mark.
fn fanotify_fdinfo(pid: u32) -> String {
    let mut text = String::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        if target.to_string_lossy().contains("fanotify") {
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            text.push_str(&std::fs::read_to_string(info).unwrap_or_default());
        }
    }
    text
}

fn args_empty(e: &Value) -> bool {
    at(e, "process.args").as_array().is_none_or(Vec::is_empty)
}

/// Sets `kernel.perf_event_paranoid` for a test; the old level comes back on
/// drop.
struct Paranoia {
    old: String,
}

impl Paranoia {
    const PATH: &'static str = "/proc/sys/kernel/perf_event_paranoid";

    fn set(level: &str) -> Self {
        let old = std::fs::read_to_string(Self::PATH).expect("read perf_event_paranoid");
        std::fs::write(Self::PATH, level).expect("write perf_event_paranoid");
        Self { old }
    }
}

impl Drop for Paranoia {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, self.old.trim());
    }
}

/// The shipped unit's capabilities: the names in `CapabilityBoundingSet=`
/// of deploy/rename-audit.service, as capability numbers (linux/capability.h).
fn unit_capabilities() -> Vec<u32> {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rename-audit.service"
    ))
    .expect("read deploy/rename-audit.service");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit has a CapabilityBoundingSet= line");
    line.split_whitespace()
        .map(|name| match name {
            "CAP_DAC_READ_SEARCH" => 2,
            "CAP_SYS_PTRACE" => 19,
            "CAP_SYS_ADMIN" => 21,
            "CAP_SYS_RESOURCE" => 24,
            "CAP_PERFMON" => 38,
            "CAP_BPF" => 39,
            other => panic!("a capability this test does not know: {other}"),
        })
        .collect()
}

/// Starts the daemon as the shipped unit runs it: root, with exactly the
/// unit's capabilities in its bounding set (so in its effective set), and
/// checks that it has those and no others.
fn start_as_the_unit(args: &[&str]) -> Daemon {
    let keep = unit_capabilities();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .expect("read cap_last_cap")
        .trim()
        .parse()
        .expect("cap_last_cap");
    let others: Vec<libc::c_ulong> = (0..=last)
        .filter(|cap| !keep.contains(cap))
        .map(libc::c_ulong::from)
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("events.json");
    let d = Daemon::start_configured(dir, output, args, move |cmd| {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: runs in the forked child before exec and only calls
        // prctl, which is async-signal-safe; `others` was built before.
        unsafe {
            cmd.pre_exec(move || {
                for &cap in &others {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("CapEff");
    let expected = unit_capabilities().iter().fold(0u64, |m, cap| m | 1 << cap);
    assert_eq!(
        effective, expected,
        "the daemon runs with exactly the unit's capabilities"
    );
    d
}

/// The mount watch the daemon must choose here under the unit's
/// privileges: fexit on the mount code where ftrace may patch both
/// functions (Debian's 6.1 and 6.12), else polling the mount tables (this
/// project's 6.18 host refuses trampolines: reading
/// `available_filter_functions` is EPERM). Never a syscall hook.
fn expected_unit_mount_watch() -> &'static str {
    if crate::support::mount_code_patchable() {
        "fexit"
    } else {
        "mount-table-poll"
    }
}

/// What the daemon's BPF links attach to, each as bpftool shows it, found
/// through the daemon's own descriptors (this bpftool cannot tell which
/// process holds a link); and how many perf events it holds (a syscall
/// tracepoint attaches through perf_event_open).
fn daemon_links(pid: u32) -> (Vec<Value>, usize) {
    let mut ids = Vec::new();
    let mut perf_events = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if target.contains("perf_event") {
            perf_events += 1;
        }
        if target.contains("bpf_link") || target.contains("bpf-link") {
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            let info = std::fs::read_to_string(info).unwrap_or_default();
            if let Some(id) = info
                .lines()
                .find_map(|l| l.strip_prefix("link_id:"))
                .and_then(|id| id.trim().parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
    }
    let out = Command::new("bpftool")
        .args(["link", "list", "-j"])
        .output()
        .expect("run bpftool");
    assert!(out.status.success(), "bpftool link list");
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("bpftool's JSON");
    let links = all
        .into_iter()
        .filter(|link| link["id"].as_u64().is_some_and(|id| ids.contains(&id)))
        .collect();
    (links, perf_events)
}

/// Under the shipped unit's privileges (CAP_BPF, CAP_PERFMON,
/// CAP_SYS_PTRACE) and Debian's `kernel.perf_event_paranoid = 3`, at which
/// only CAP_SYS_ADMIN may call perf_event_open, the daemon watches mounts
/// without a program on any syscall: fexit on the mount code where
/// trampolines work, else the polled mount tables. Nothing of it is
/// attached to `sys_exit`, `sys_enter` or a syscall tracepoint (before,
/// it fell back to `tp_btf/sys_exit`, at every syscall's exit). Processes
/// hidden before start-up, while it runs, and inside a mount namespace made
/// while it runs are all reported. (On kernels without Debian's patch level
/// 3 acts as 2; the choice is the same.)
#[test]
fn under_the_units_privileges_mounts_are_watched_with_nothing_on_any_syscall() {
    let _paranoia = Paranoia::set("3");
    let early = renamer::spawn_waiting("wait-prctl", b"unit-early", &[]);
    let early_mount = Hidden::hide(early.pid);
    let mut d = start_as_the_unit(&[]);
    let line = d.wait_for_log("kernel hooks attached");
    let expected = expected_unit_mount_watch();
    assert!(
        line.contains(&format!("mount_watch=\"{expected}\"")),
        "under the unit's privileges at paranoia level 3, mounts are watched through \
         {expected} here: {line}"
    );
    {
        // Past libtest's capture, so a run's log shows which watch this
        // kernel got.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: under the unit's privileges at paranoia 3 on Linux {}: mount_watch=\"{expected}\"",
            crate::support::kernel_version()
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".")
        );
    }
    let (links, perf_events) = daemon_links(d.pid());
    // The lifecycle and rename hooks at least: the check sees the links.
    assert!(links.len() >= 4, "the daemon's links: {links:#?}");
    assert_eq!(
        perf_events, 0,
        "no perf event (syscall tracepoint): {links:#?}"
    );
    for link in &links {
        let tp = link["tp_name"].as_str().unwrap_or("");
        assert!(
            !matches!(tp, "sys_exit" | "sys_enter") && !tp.starts_with("sys_"),
            "a program on every syscall: {link}"
        );
        assert_ne!(link["type"].as_str(), Some("perf_event"), "{link}");
    }
    let fexits = links
        .iter()
        .filter(|l| l["attach_type"].as_str() == Some("trace_fexit"))
        .count();
    assert_eq!(
        fexits,
        if expected == "fexit" { 2 } else { 0 },
        "fexit on path_mount and do_move_mount only where chosen: {links:#?}"
    );
    assert!(
        !d.stderr_text().contains("slow every syscall"),
        "no warning about syscall hooks"
    );

    // Hidden before start-up: found by the start-up scan.
    let e = hidden_alert(&mut d, early.pid);
    assert_eq!(str_at(&e, "hidden.found"), "start-up", "{e}");
    drop(early_mount);
    early.go();

    // Hidden while it runs, once the start-up scan is surely done (a
    // marker rename's line is out): only the watch can find it.
    let marker = renamer::run("probe", b"", &["1", "0"]).get("pid");
    d.wait_for("a marker rename", move |e| {
        at(e, "process.pid").as_u64() == Some(marker.into())
            && at(e, "rename.new_name").as_str() == Some("probe-0")
    });
    let late = renamer::spawn_waiting("wait-prctl", b"unit-late", &[]);
    let late_mount = Hidden::hide(late.pid);
    let e = hidden_alert(&mut d, late.pid);
    assert_eq!(str_at(&e, "hidden.found"), "mount", "{e}");
    assert_eq!(at(&e, "hidden.covered_by.pid").as_u64(), Some(2), "{e}");
    assert_eq!(str_at(&e, "rule.id"), "process-hidden", "{e}");
    assert_eq!(str_at(&e, "rule.severity"), "high", "{e}");
    drop(late_mount);
    late.go();

    // Hidden inside a mount namespace made while it runs.
    hide_in_a_new_namespace(&mut d, &line);
    d.stop();
}
