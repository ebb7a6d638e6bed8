//! `cargo xtask test`: every test, then the lints, with one verdict at the end.
use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::{
    build,
    cmd::{self, note, step},
    guest, setup,
};

/// Built by the daemon's build.rs for bpfel-unknown-none with the nightly
/// toolchain; it cannot be compiled for the host, so host-side cargo commands
/// leave it out and it gets a clippy run of its own.
const EBPF_PACKAGE: &str = "rename-audit-ebpf";

#[derive(clap::Args)]
pub struct Options {
    /// Run only the tests whose name contains FILTER (passed to the harness).
    filter: Option<String>,
    /// Test only this package (repeatable); default: the whole workspace.
    #[arg(short, long, value_name = "PACKAGE")]
    package: Vec<String>,
    /// Run only this integration test target, e.g. `deploy_unit` for
    /// rename-audit/tests/deploy_unit.rs (repeatable).
    #[arg(long, value_name = "NAME")]
    test: Vec<String>,
    /// Skip clippy and rustfmt.
    #[arg(long)]
    no_lint: bool,
    /// Boot this kernel for the guest run instead of Debian 12's 6.1: a
    /// Debian kernel package name (`linux-image-6.12.48+deb13-amd64`) or the
    /// path of a `vmlinuz-<release>` whose modules are in /lib/modules.
    #[arg(long, value_name = "PACKAGE|VMLINUZ")]
    kernel: Option<String>,
    /// Skip the guest run (the end-to-end tests on a second kernel).
    #[arg(long, conflicts_with_all = ["kernel", "guest_only"])]
    no_guest: bool,
    /// Run only the end-to-end tests inside the guest.
    #[arg(long)]
    guest_only: bool,
}

pub fn test(options: &Options) -> Result<ExitCode> {
    setup::ensure()?;
    build::warn_if_kernel_programs_skipped();
    if !cmd::is_root() {
        note("warning: not root: the end-to-end tests load BPF programs and will fail");
    }
    // Run every step even after a failure: CI should show all problems at once.
    let mut failed = Vec::new();
    // The guest runs beside the host's steps: it is the longest part of the
    // suite, and under TCG it leaves much of the machine idle while its tests
    // wait on its slow clock. The host's builds and lints run niced, so they
    // take what the guest leaves; the host's tests share the CPU with it
    // evenly. (A niced guest starved behind a cold build until a storm test
    // ran out of time.)
    let guest = if options.no_guest {
        None
    } else {
        let prepared = guest_kernel(options).and_then(|kernel| {
            let binaries = guest_binaries(options)?;
            let target = build::target_dir()?;
            // Before any host step can rebuild the daemon.
            guest::snapshot_daemon(&target)?;
            Ok((kernel, binaries, target))
        });
        let filter = options.filter.clone();
        Some(std::thread::spawn(move || {
            let (kernel, binaries, target) = prepared?;
            let run = guest::run_tests(&kernel, &binaries, filter.as_deref(), &target)?;
            Ok((kernel.release, run))
        }))
    };
    if !options.guest_only {
        let mut steps: Vec<(&str, Command)> = vec![("tests", cargo_test(options, false)?)];
        if !options.no_lint {
            steps.push(("clippy", niced(clippy_host()?)));
            steps.push(("clippy (kernel programs)", niced(clippy_ebpf()?)));
            steps.push(("rustfmt", rustfmt()?));
        }
        for (name, mut command) in steps {
            step(name);
            if let Err(error) = cmd::run(&mut command) {
                note(format!("FAILED: {error:#}"));
                failed.push(name.to_owned());
            }
        }
    }
    if let Some(guest) = guest {
        if !options.guest_only {
            step("waiting for the guest");
        }
        let outcome: Result<(String, guest::GuestRun)> = guest
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the guest's thread panicked")));
        let outcome = outcome.and_then(|(release, run)| {
            eprint!("{}", run.log);
            run.verdict.map(|()| release)
        });
        match outcome {
            Ok(release) => step(format!(
                "guest (Linux {release}): every end-to-end test passed"
            )),
            Err(error) => {
                note(format!("FAILED: {error:#}"));
                failed.push("end-to-end tests in the guest".to_owned());
            }
        }
    }
    if failed.is_empty() {
        step("all tests and lints passed");
        Ok(ExitCode::SUCCESS)
    } else {
        step(format!("FAILED: {}", failed.join(", ")));
        Ok(ExitCode::FAILURE)
    }
}

/// The kernel the guest boots: `--kernel`, or Debian 12's newest 6.1
/// (downloaded once).
fn guest_kernel(options: &Options) -> Result<guest::GuestKernel> {
    match &options.kernel {
        Some(spec) => guest::from_spec(spec),
        None => guest::cached_default()
            .map(Ok)
            .unwrap_or_else(guest::fetch_default),
    }
}

/// Builds every test the host runs, exactly as `cargo test` will (the same
/// packages, so the same features: a build for fewer packages would be
/// rebuilt by the host's, replacing the daemon binary under the running
/// guest), and returns the paths of those that also run in the guest (those
/// of `--test` when given).
fn guest_binaries(options: &Options) -> Result<Vec<guest::TestBinary>> {
    let targets: Vec<&str> = guest::GUEST_TARGETS
        .iter()
        .copied()
        .filter(|t| options.test.is_empty() || options.test.iter().any(|o| o == t))
        .collect();
    let mut cargo = cargo_test(options, true)?;
    cargo.arg("--message-format=json-render-diagnostics");
    step("building the tests");
    let json = cmd::output(&mut cargo)?;
    let mut binaries = Vec::new();
    for line in json.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = message["target"]["name"].as_str().unwrap_or_default();
        if message["reason"] == "compiler-artifact"
            && message["profile"]["test"] == true
            && targets.contains(&name)
            && let Some(exe) = message["executable"].as_str()
        {
            binaries.push(guest::TestBinary {
                target: name.to_owned(),
                executable: exe.into(),
            });
        }
    }
    anyhow::ensure!(
        binaries.len() == targets.len(),
        "cargo built {} of the {} guest test binaries ({targets:?})",
        binaries.len(),
        targets.len()
    );
    Ok(binaries)
}

fn niced(mut command: Command) -> Command {
    cmd::niced(&mut command);
    command
}

/// `cargo test`, or with `no_run` only the build of what it would run.
fn cargo_test(options: &Options, no_run: bool) -> Result<Command> {
    let mut cargo = cmd::cargo()?;
    // --no-fail-fast: a failing unit test must not hide the end-to-end results.
    cargo.args(["test", "--no-fail-fast"]);
    select_packages(&mut cargo, &options.package);
    for test in &options.test {
        cargo.args(["--test", test]);
    }
    if no_run {
        cargo.arg("--no-run");
        return Ok(cargo);
    }
    // Each end-to-end test starts a daemon that sees every rename on the
    // host; run them one at a time so they cannot disturb each other.
    cargo.args(["--", "--test-threads=1"]);
    cargo.args(&options.filter);
    Ok(cargo)
}

fn select_packages(cargo: &mut Command, packages: &[String]) {
    if packages.is_empty() {
        cargo.args(["--workspace", "--exclude", EBPF_PACKAGE]);
    } else {
        for package in packages {
            cargo.args(["--package", package]);
        }
    }
}

fn clippy_host() -> Result<Command> {
    let mut cargo = cmd::cargo()?;
    cargo.arg("clippy");
    select_packages(&mut cargo, &[]);
    cargo.args(["--all-targets", "--", "-D", "warnings"]);
    Ok(cargo)
}

/// Lints the kernel programs for their real target, the way aya-build
/// compiles them (nightly, `-Z build-std=core`).
fn clippy_ebpf() -> Result<Command> {
    let mut rustup = Command::new("rustup");
    rustup
        .current_dir(cmd::workspace_root())
        .env("PATH", cmd::path_with_cargo_bin()?)
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--package",
            EBPF_PACKAGE,
        ])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .args(["--", "-D", "warnings"]);
    Ok(rustup)
}

fn rustfmt() -> Result<Command> {
    let mut cargo = cmd::cargo()?;
    cargo.args(["fmt", "--all", "--", "--check"]);
    Ok(cargo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn whole_workspace_runs_serially_without_the_kernel_crate() {
        let options = Options {
            filter: None,
            package: vec![],
            test: vec![],
            no_lint: false,
            kernel: None,
            no_guest: false,
            guest_only: false,
        };
        let command = cargo_test(&options, false).expect("command");
        assert_eq!(
            args(&command),
            [
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                EBPF_PACKAGE,
                "--",
                "--test-threads=1"
            ]
        );
        // The build step passes nothing to the harness.
        let build = cargo_test(&options, true).expect("command");
        assert_eq!(
            args(&build),
            [
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                EBPF_PACKAGE,
                "--no-run"
            ]
        );
    }

    #[test]
    fn selection_and_filter_are_passed_on() {
        let options = Options {
            filter: Some("verify".into()),
            package: vec!["rename-audit".into()],
            test: vec!["deploy_unit".into()],
            no_lint: true,
            kernel: None,
            no_guest: true,
            guest_only: false,
        };
        let command = cargo_test(&options, false).expect("command");
        assert_eq!(
            args(&command),
            [
                "test",
                "--no-fail-fast",
                "--package",
                "rename-audit",
                "--test",
                "deploy_unit",
                "--",
                "--test-threads=1",
                "verify"
            ]
        );
    }
}
