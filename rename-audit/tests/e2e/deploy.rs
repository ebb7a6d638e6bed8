//! The systemd unit in deploy/ is valid for systemd and stays hardened.
//!
//! PID 1 is not systemd on the test machines, so only systemd-analyze's
//! offline modes are used. Debian's `systemd` package provides it
//! (`cargo xtask setup` installs it).
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const UNIT_NAME: &str = "rename-audit.service";
/// Where the Debian package puts the daemon (`cargo xtask install` rewrites
/// the path for its prefix).
const INSTALLED_BINARY: &str = "/usr/bin/rename-audit";
/// systemd-analyze's exposure scale runs from 0.0 (fully locked down) to 10.0.
/// The unit scored 2.7 with systemd 252; what is left is what a host-wide
/// tracer needs (root with CAP_BPF/CAP_PERFMON/CAP_SYS_PTRACE, all of /proc,
/// network for the sinks). A change that loosens the sandbox noticeably fails.
const MAX_EXPOSURE: f64 = 3.0;

fn repository_unit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(UNIT_NAME)
}

fn read_repository_unit() -> String {
    let path = repository_unit();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn systemd_analyze() -> Command {
    let found = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists());
    let Some(program) = found else {
        panic!(
            "systemd-analyze not found: install Debian's `systemd` package \
             (`cargo xtask setup` does)"
        );
    };
    let mut command = Command::new(program);
    // Plain output: no colours, no pager, so the parsing below is stable.
    command
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_PAGER", "")
        .env("LC_ALL", "C.UTF-8");
    command
}

/// A copy of the unit in a fresh directory whose ExecStart names a binary that
/// exists here (the daemon this test run built), because `verify` checks that
/// the executable exists. The directory must outlive the check.
fn unit_copy() -> (tempfile::TempDir, PathBuf) {
    let unit = read_repository_unit();
    assert!(
        unit.lines()
            .any(|line| line.starts_with(&format!("ExecStart={INSTALLED_BINARY} "))),
        "{}: ExecStart must run {INSTALLED_BINARY} (the package's path; cargo xtask install rewrites it)",
        repository_unit().display()
    );
    let unit = unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_rename-audit"));
    let dir = tempfile::tempdir().expect("create a temporary directory for the unit copy");
    let path = dir.path().join(UNIT_NAME);
    std::fs::write(&path, unit).expect("write the unit copy");
    (dir, path)
}

fn run(command: &mut Command) -> (Output, String) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (_dir, path) = unit_copy();
    let (output, text) = run(systemd_analyze().arg("verify").arg(&path));
    // verify exits 0 on unknown keys and unparsable values; it only prints
    // them, as `<path>:<line>: ...` or `rename-audit.service: ...`.
    let path_text = path.to_string_lossy();
    let about_unit: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(path_text.as_ref()) || line.contains(UNIT_NAME))
        .collect();
    assert!(
        output.status.success() && about_unit.is_empty(),
        "systemd-analyze verify rejects deploy/{UNIT_NAME} ({}):\n{}\n\
         full output:\n{text}",
        output.status,
        about_unit.join("\n")
    );
}

#[test]
fn unit_exposure_stays_low() {
    let (_dir, path) = unit_copy();
    let (output, text) = run(systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path));
    assert!(
        output.status.success(),
        "systemd-analyze security --offline=true failed ({}):\n{text}",
        output.status
    );
    let prefix = format!("Overall exposure level for {UNIT_NAME}:");
    let exposure: f64 = text
        .lines()
        .find_map(|line| line.split_once(prefix.as_str()))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix} <number>` line in:\n{text}"));
    let exposed: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with('✗'))
        .collect();
    assert!(
        exposure <= MAX_EXPOSURE,
        "deploy/{UNIT_NAME} exposure is {exposure}, above {MAX_EXPOSURE}; what is exposed:\n{}",
        exposed.join("\n")
    );
    // Settings that must hold whatever the total.
    for setting in [
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
        "ProtectSystem=",
        "NoNewPrivileges=",
        "PrivateTmp=",
        "ProtectKernelModules=",
        "MemoryDenyWriteExecute=",
        "SystemCallArchitectures=",
    ] {
        let line = text
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(setting))
            .unwrap_or_else(|| {
                panic!("systemd-analyze security printed no {setting} line:\n{text}")
            });
        assert!(
            line.trim_start().starts_with('✓'),
            "deploy/{UNIT_NAME}: {setting} is not satisfied:\n{line}"
        );
    }
}

/// What the daemon needs to work at all; systemd-analyze would happily score
/// a unit that cannot trace anything as safer.
#[test]
fn unit_keeps_what_a_host_wide_tracer_needs() {
    let unit = read_repository_unit();
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .collect();
    let values = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    };
    let one = |key: &str| -> &str {
        match values(key).as_slice() {
            [value] => value,
            other => panic!("deploy/{UNIT_NAME}: expected one {key}=, found {other:?}"),
        }
    };
    assert_eq!(one("Type"), "notify", "the daemon sends READY=1 itself");
    assert_eq!(
        one("ExecReload"),
        "/bin/kill -HUP $MAINPID",
        "SIGHUP reloads the config"
    );
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("StandardOutput"), "journal", "events go to the journal");
    let capabilities: Vec<&str> = one("CapabilityBoundingSet").split_whitespace().collect();
    for needed in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"] {
        assert!(
            capabilities.contains(&needed),
            "deploy/{UNIT_NAME}: CapabilityBoundingSet lacks {needed}"
        );
    }
    assert!(
        !capabilities.contains(&"CAP_SYS_ADMIN"),
        "deploy/{UNIT_NAME}: CAP_SYS_ADMIN must not be needed (tracefs is mounted by systemd)"
    );
    // Each of these hides other processes' /proc entries or moves the daemon
    // out of the initial user namespace, where CAP_BPF means something.
    for (key, forbidden) in [
        ("ProtectProc", "invisible"),
        ("ProtectProc", "noaccess"),
        ("ProtectProc", "ptraceable"),
        ("ProcSubset", "pid"),
        ("PrivateUsers", "yes"),
        ("PrivateUsers", "true"),
        ("PrivatePIDs", "yes"),
    ] {
        assert!(
            !values(key).contains(&forbidden),
            "deploy/{UNIT_NAME}: {key}={forbidden} would blind the daemon"
        );
    }
    // The default of 1024 is the limit the /metrics test runs under; the
    // unit leaves room above it for the daemon's own descriptors.
    let nofile: u64 = one("LimitNOFILE")
        .parse()
        .unwrap_or_else(|e| panic!("deploy/{UNIT_NAME}: LimitNOFILE is not a number: {e}"));
    assert!(
        nofile >= 4096,
        "deploy/{UNIT_NAME}: LimitNOFILE={nofile} leaves no room"
    );
    let syscalls = one("SystemCallFilter");
    for needed in ["bpf", "perf_event_open"] {
        assert!(
            syscalls.split_whitespace().any(|word| word == needed),
            "deploy/{UNIT_NAME}: SystemCallFilter must allow {needed}"
        );
    }
}
