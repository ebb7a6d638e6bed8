//! The suite is hermetic: it passes unchanged where the host has a hostile
//! /etc/rename-audit/config.toml (every rule off, no thread renames, 4 KiB
//! rings), the file `cargo xtask install` and the package create.
//!
//! The host's /etc is never touched: a child runs in a mount namespace of
//! its own (`unshare --mount --propagation private`), where an overlay over
//! /etc, its upper layer on a private tmpfs, holds the hostile file. There
//! the child checks the daemon really reads that file by default, then runs
//! a few tests of this same binary that start the daemon (directly and
//! through the harness), each of which a daemon that read the file would
//! fail.
use std::{
    path::Path,
    process::{Command, Stdio},
};

use crate::support::patience;

/// Valid, so a daemon that read it would start, and blind: no rule, no
/// thread rename, and rings too small for a burst. The output goes nowhere
/// a test looks, and `search` without FILE says where it would read.
const HOSTILE: &str = r#"[output]
path = "/nonexistent-hostile/events.json"
thread_renames = "none"

[capture]
priority_ring_bytes = 4096
thread_ring_bytes = 4096

[rules.kernel-thread-mimic]
enabled = false
[rules.writable-path-stomp]
enabled = false
[rules.system-name-mimic]
enabled = false
[rules.process-hidden]
enabled = false
[rules.sibling-renamed-main]
enabled = false
[rules.process-renamed]
enabled = false
"#;

/// Tests that fail if their daemon reads the hostile file: thread renames
/// and alerts on process and thread renames (through the harness), and the
/// daemon started directly.
const SUBSET: &[&str] = &[
    "kernel::capture::main_thread_renames_itself_with_prctl",
    "kernel::capture::non_main_thread_renames_itself_with_prctl",
    "kernel::capture::tells_systemd_it_is_ready_once_attached",
    "kernel::capture::bad_flags_and_unwritable_output_get_clear_errors",
    "alerting::each_rule_fires_on_a_real_masquerading_rename",
    "noise::all_writes_every_thread_rename",
];

/// What the child does inside its namespace. `$1` is the scratch directory,
/// `$2` the hostile file, `$3` the daemon, `$4` this test binary, the rest
/// the tests to run.
const IN_NAMESPACE: &str = r#"set -eu
scratch=$1 hostile=$2 daemon=$3 tests=$4
shift 4
mount -t tmpfs rename-audit-hermetic "$scratch"
mkdir -p "$scratch/upper/rename-audit" "$scratch/work"
cp "$hostile" "$scratch/upper/rename-audit/config.toml"
mount -t overlay rename-audit-hermetic \
    -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
echo "==> /etc/rename-audit/config.toml in the namespace:"
cmp /etc/rename-audit/config.toml "$hostile"
"$daemon" check-config /etc/rename-audit/config.toml
echo "==> search without FILE reads the default file:"
if "$daemon" search 2>&1; then echo "search read no default file"; exit 1; fi
echo "==> the tests:"
exec "$tests" --exact --test-threads=1 "$@"
"#;

#[test]
fn the_suite_passes_with_a_hostile_host_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hostile = dir.path().join("hostile.toml");
    std::fs::write(&hostile, HOSTILE).expect("write the hostile config");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).expect("scratch dir");
    let tests = std::env::current_exe().expect("this test binary");

    let out = in_namespace(&scratch, &hostile, &tests);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(out.status.success(), "the child failed: {all}");

    // The file the daemon would read by default is the hostile one: it is
    // valid, and `search` with no FILE went to read its output path.
    assert!(
        stdout.contains("/etc/rename-audit/config.toml: ok"),
        "check-config: {all}"
    );
    assert!(
        stdout.contains("/nonexistent-hostile/events.json"),
        "search without FILE did not read the hostile file: {all}"
    );
    // Every test of the subset ran and passed: none was filtered away.
    let summary = format!("test result: ok. {} passed; 0 failed", SUBSET.len());
    assert!(stdout.contains(&summary), "expected {summary:?}: {all}");
    for test in SUBSET {
        assert!(
            stdout.contains(&format!("test {test} ... ok")),
            "{test} did not pass: {all}"
        );
    }
    // The host's own /etc is as it was: the overlay went with the namespace.
    assert!(
        std::fs::read_to_string("/etc/rename-audit/config.toml").map_or(true, |t| t != HOSTILE),
        "the hostile file leaked into the host's /etc"
    );
}

/// Runs [`IN_NAMESPACE`] under `unshare` (util-linux), with a deadline.
fn in_namespace(scratch: &Path, hostile: &Path, tests: &Path) -> std::process::Output {
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(IN_NAMESPACE)
        .arg("sh")
        .arg(scratch)
        .arg(hostile)
        .arg(env!("CARGO_BIN_EXE_rename-audit"))
        .arg(tests)
        .args(SUBSET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare (util-linux)");
    let pid = child.id();
    // A safety net only: the subset takes well under a minute.
    let deadline = patience(std::time::Duration::from_secs(300));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.expect("wait for the child"),
        Err(_) => {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("the tests in the namespace did not finish within {deadline:?}");
        }
    }
}
