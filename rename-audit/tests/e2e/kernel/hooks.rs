//! End-to-end: the daemon on the running kernel, whatever it is. `cargo xtask
//! test` runs these on the host and again inside a Debian 12 (Linux 6.1)
//! guest, where every hook uses its fallback variant.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use crate::support::{
    daemon::{Daemon, at, str_at},
    renamer,
};

/// `uname -r`.
fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .expect("read the kernel release")
        .trim()
        .to_owned()
}

/// tracefs, mounted by the daemon's preflight when missing: an oracle for
/// which tracepoints and arguments this kernel has that does not share the
/// daemon's BTF code.
const SCHED_EVENTS: &str = "/sys/kernel/tracing/events/sched";

#[test]
fn start_up_names_the_kernel_and_the_variant_of_each_hook() {
    let mut d = Daemon::start(&[]);
    let line = d.wait_for_log("kernel hooks attached");
    assert!(
        line.contains(&format!("kernel={}", release())),
        "the line names the running kernel: {line}"
    );
    let events = Path::new(SCHED_EVENTS);
    assert!(
        events.is_dir(),
        "tracefs is mounted at /sys/kernel/tracing (the daemon mounts it)"
    );
    let expected_exec = if events.join("sched_prepare_exec").is_dir() {
        "sched_prepare_exec"
    } else {
        "execve-syscall"
    };
    let exit_format = std::fs::read_to_string(events.join("sched_process_exit/format"))
        .expect("sched_process_exit has a format file");
    let expected_exit = if exit_format.contains("group_dead") {
        "group_dead-argument"
    } else {
        "signal-live-count"
    };
    assert!(
        line.contains(&format!("exec_rename=\"{expected_exec}\"")),
        "exec renames are told apart by {expected_exec} on this kernel: {line}"
    );
    assert!(
        line.contains(&format!("process_exit=\"{expected_exit}\"")),
        "process exits use {expected_exit} on this kernel: {line}"
    );
    // As root (CAP_SYS_ADMIN): fanotify's mount events where the kernel has
    // them (6.15+); else fexit on the mount code where trampolines work,
    // else the polled mount tables. None costs any syscall anything.
    let expected_watch = if kernel_has_fanotify_mount_events() {
        "fanotify"
    } else if crate::support::mount_code_patchable() {
        "fexit"
    } else {
        "mount-table-poll"
    };
    assert!(
        line.contains(&format!("mount_watch=\"{expected_watch}\"")),
        "mounts are watched through {expected_watch} on this kernel: {line}"
    );
    let (status, _) = d.stop();
    assert!(status.success());
}

/// A fork+exec storm is running while the daemon starts. Every rename it
/// records must come with the process's executable, arguments and parent:
/// the lifecycle hooks are attached before the rename hook, so no process
/// can rename between them unseen. (With the rename hook attached first, a
/// process forked in that gap and gone before the /proc snapshot was
/// reported with no context.)
#[test]
fn renames_during_start_up_all_have_their_process_context() {
    let marker = "e2e-startctx";
    // A shell that runs the renamer over and over; each run forks, execs,
    // renames itself with prctl and exits at once, printing its pid.
    let mut storm = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while :; do '{}' prctl {} || exit 1; done",
            renamer::path().display(),
            renamer::hex(marker.as_bytes())
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fork/exec storm");
    let shell = storm.id();
    let mut pids = BufReader::new(storm.stdout.take().expect("stdout")).lines();
    // The storm is under way before the daemon starts.
    let first = pids.next().expect("a first run").expect("read");
    assert!(first.starts_with("pid="), "renamer printed {first}");
    // Keep reading, so a full pipe never pauses the storm.
    let reader = std::thread::spawn(move || pids.count());

    let mut d = Daemon::start(&[]);
    // A rename made after "ready" is in the output only once everything the
    // rings held before it is: the whole start-up window is then there.
    let after = renamer::run("prctl", b"e2e-afterready", &[]).get("pid");
    d.wait_for("the rename after ready", |e| {
        at(e, "process.pid").as_u64() == Some(u64::from(after))
    });
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(shell as i32, libc::SIGKILL) };
    storm.wait().expect("wait for the storm");
    let runs = reader.join().expect("reader thread");
    assert!(runs > 0, "the storm ran during start-up");
    let (status, _) = d.stop();
    assert!(status.success());

    let renames: Vec<_> = d
        .events()
        .iter()
        .filter(|e| at(e, "rename.new_name").as_str() == Some(marker))
        .cloned()
        .collect();
    assert!(!renames.is_empty(), "the storm's renames were recorded");
    let without_context: Vec<_> = renames
        .iter()
        .filter(|e| {
            at(e, "process.executable").as_str() != Some(renamer::path().to_str().unwrap())
                || at(e, "process.parent.pid").as_u64() != Some(u64::from(shell))
                || at(e, "process.args")
                    .as_array()
                    .is_none_or(|a| a.is_empty())
        })
        .collect();
    assert!(
        without_context.is_empty(),
        "{} of {} start-up renames lack their executable, parent or args, e.g. {}",
        without_context.len(),
        renames.len(),
        without_context[0]
    );
    for e in &renames {
        assert_eq!(str_at(e, "rename.method"), "prctl");
    }
}

/// Puts `/proc/sys/kernel/core_pattern` back as it was, however the test ends.
struct CorePattern(String);

impl CorePattern {
    const PATH: &str = "/proc/sys/kernel/core_pattern";

    fn set(pattern: &str) -> Self {
        let old = std::fs::read_to_string(Self::PATH).expect("read core_pattern");
        std::fs::write(Self::PATH, pattern).expect("write core_pattern (needs root)");
        Self(old.trim_end_matches('\n').to_owned())
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

/// An exec the kernel starts itself (a core-dump helper: a usermode helper,
/// not an `execve` syscall) is still exec's rename on kernels whose
/// `sched_prepare_exec` marks it. The common exec, from `execve`, is told
/// by its syscall number alone (kernel::capture).
#[test]
fn an_exec_the_kernel_starts_itself_is_an_exec_rename_where_prepare_exec_marks_it() {
    let mut d = Daemon::start(&["--include-exec", "--include-kernel"]);
    // A unique script name, at most 15 bytes: the helper's name after exec.
    let name = format!("ra-core-{}", std::process::id() % 100_000);
    let helper = d.dir.path().join(&name);
    std::fs::write(&helper, "#!/bin/sh\ncat >/dev/null\n").expect("write the helper");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make the helper executable");
    let pattern = CorePattern::set(&format!("|{}", helper.display()));
    let crashed = Command::new("sh")
        .args(["-c", "ulimit -c unlimited; kill -SEGV $$"])
        .status()
        .expect("run a shell that crashes");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&crashed),
        Some(libc::SIGSEGV),
        "the shell died of SIGSEGV: {crashed:?}"
    );
    let e = d.wait_for("the core-dump helper's exec rename", |e| {
        at(e, "rename.new_name").as_str() == Some(name.as_str())
    });
    drop(pattern);
    let expected = if Path::new(SCHED_EVENTS).join("sched_prepare_exec").is_dir() {
        "exec"
    } else {
        // Before 6.10 exec is told by the syscall number alone, which a
        // usermode helper does not have: a known gap (docs/kernels.md).
        "procfs"
    };
    assert_eq!(
        str_at(&e, "rename.method"),
        expected,
        "the kernel's own exec: {e}"
    );
}

/// Whether this kernel reports mounts through fanotify (`FAN_REPORT_MNT`,
/// Linux 6.15+; older kernels refuse the flag with EINVAL).
fn kernel_has_fanotify_mount_events() -> bool {
    const FAN_REPORT_MNT: libc::c_uint = 0x0000_4000;
    // SAFETY: plain syscall; the fd is closed at once.
    let fd = unsafe { libc::fanotify_init(FAN_REPORT_MNT | libc::FAN_CLOEXEC, 0) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.raw_os_error(),
            Some(libc::EINVAL),
            "fanotify_init: {error}"
        );
        return false;
    }
    // SAFETY: the fd just opened.
    unsafe { libc::close(fd) };
    true
}
