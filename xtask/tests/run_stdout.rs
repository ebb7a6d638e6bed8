//! `cargo xtask run` keeps stdout for the daemon: the setup check and the
//! build it does first (cargo's output included) print on stderr only.
use std::process::Command;

/// Runs the real xtask binary's `run` path (the dev build, which the tests
/// have mostly built already) with `--version`, so the daemon prints one
/// known line and exits without needing root or BPF.
#[test]
fn run_prints_only_the_daemons_output_on_stdout() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "--dev", "--", "--version"])
        .output()
        .expect("start xtask");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "xtask run failed: {stderr}");
    assert_eq!(
        stdout,
        format!("rename-audit {}\n", env!("CARGO_PKG_VERSION")),
        "stdout must hold the daemon's output and nothing else; stderr was: {stderr}"
    );
    // The build did run, and said so where it belongs.
    assert!(
        stderr.contains("building rename-audit (dev)"),
        "stderr: {stderr}"
    );
}
