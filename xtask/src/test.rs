//! `cargo xtask test`: every test, then the lints, with one verdict at the end.
use std::{io::BufRead, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use cargo_metadata::Message;
use duct::Expression;

use crate::{
    build,
    cmd::{self, note, step},
    guest,
    setup::{self, Task},
};

/// Built by the daemon's build.rs for bpfel-unknown-none with the nightly
/// toolchain; it cannot be compiled for the host, so host-side cargo commands
/// leave it out and it gets a clippy run of its own.
const EBPF_PACKAGE: &str = "rename-audit-ebpf";
/// The package that holds the `e2e` test target.
const DAEMON_PACKAGE: &str = "rename-audit";

#[derive(clap::Args)]
pub struct Options {
    /// Run only the tests whose name contains FILTER (passed to the harness).
    filter: Option<String>,
    /// Test only this package (repeatable); default: the whole workspace.
    #[arg(short, long, value_name = "PACKAGE")]
    package: Vec<String>,
    /// Run only this test target, e.g. `e2e` for rename-audit/tests/e2e/
    /// (repeatable).
    #[arg(long, value_name = "NAME")]
    test: Vec<String>,
    /// Skip clippy and rustfmt.
    #[arg(long)]
    no_lint: bool,
    /// Boot only this kernel for the guest run instead of Debian 12's 6.1 and 6.12: a
    /// Debian kernel package name (`linux-image-6.12.48+deb13-amd64`) or the
    /// path of a `vmlinuz-<release>` whose modules are in /lib/modules.
    #[arg(long, value_name = "PACKAGE|VMLINUZ")]
    kernel: Option<String>,
    /// Skip the guest run (the `kernel::` end-to-end tests on a second
    /// kernel).
    #[arg(long, conflicts_with_all = ["kernel", "guest_only"])]
    no_guest: bool,
    /// Run only the end-to-end tests inside the guest.
    #[arg(long)]
    guest_only: bool,
}

impl Options {
    /// Whether the selection holds the `e2e` target, whose `kernel::` tests
    /// the guest runs.
    fn selects_e2e(&self) -> bool {
        (self.package.is_empty() || self.package.iter().any(|p| p == DAEMON_PACKAGE))
            && (self.test.is_empty() || self.test.iter().any(|t| t == guest::E2E_TARGET))
    }
}

pub fn test(options: &Options) -> Result<ExitCode> {
    setup::ensure(Task::Test)?;
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
    } else if !options.selects_e2e() {
        note(format!(
            "no guest run: the selection leaves out the {} target",
            guest::E2E_TARGET
        ));
        None
    } else {
        let prepared = guest_kernels(options).and_then(|kernels| {
            let e2e = build_tests(options)?;
            let tests = guest::guest_tests(&e2e, options.filter.as_deref())?;
            let target = build::target_dir()?;
            // Before any host step can rebuild the daemon.
            guest::snapshot_daemon(&target)?;
            Ok((kernels, e2e, tests, target))
        });
        // One guest after the other: two at once would each get half of a
        // machine the host's tests also need.
        Some(std::thread::spawn(move || {
            let (kernels, e2e, tests, target) = prepared?;
            if tests.is_empty() {
                step("SKIPPED: the guest run: no kernel:: test matches the filter");
                return Ok(Vec::new());
            }
            Ok(kernels
                .into_iter()
                .map(|kernel| {
                    let run = guest::run_tests(&kernel, &e2e, &tests, &target);
                    (kernel.release, run)
                })
                .collect())
        }))
    };
    if !options.guest_only {
        let mut steps: Vec<(&str, Expression)> = vec![("tests", cargo_test(options, false))];
        if !options.no_lint {
            steps.push(("clippy", clippy_host()));
            steps.push(("clippy (kernel programs)", clippy_ebpf()));
            steps.push(("rustfmt", cmd::cargo(["fmt", "--all", "--", "--check"])));
        }
        for (name, command) in steps {
            step(name);
            if let Err(error) = cmd::run(&command) {
                note(format!("FAILED: {error:#}"));
                failed.push(name.to_owned());
            }
        }
    }
    if let Some(guest) = guest {
        if !options.guest_only {
            step("waiting for the guest");
        }
        let outcome: Result<Vec<(String, Result<guest::GuestRun>)>> = guest
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the guest's thread panicked")));
        match outcome {
            Ok(runs) => {
                for (release, run) in runs {
                    let verdict = run.and_then(|run| {
                        eprint!("{}", run.log);
                        run.verdict
                    });
                    match verdict {
                        Ok(()) => step(format!(
                            "guest (Linux {release}): every kernel:: end-to-end test passed"
                        )),
                        Err(error) => {
                            note(format!("FAILED: guest (Linux {release}): {error:#}"));
                            failed.push(format!("end-to-end tests in the guest (Linux {release})"));
                        }
                    }
                }
            }
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

/// The kernels the guests boot, one after the other: `--kernel`, or the
/// newest of each of [`guest::DEFAULT_LINES`] (each downloaded once).
fn guest_kernels(options: &Options) -> Result<Vec<guest::GuestKernel>> {
    match &options.kernel {
        Some(spec) => Ok(vec![guest::from_spec(spec)?]),
        None => guest::DEFAULT_LINES
            .iter()
            .map(|line| line.kernel())
            .collect(),
    }
}

/// Builds every test the host runs, exactly as `cargo test` will (the same
/// packages, so the same features: a build for fewer packages would be
/// rebuilt by the host's, replacing the daemon binary under the running
/// guest), and returns the path of the `e2e` test binary, from cargo's JSON
/// messages.
fn build_tests(options: &Options) -> Result<PathBuf> {
    let cargo = cargo_test(options, true);
    step("building the tests");
    // Diagnostics are rendered on stderr; stdout carries the JSON messages.
    let output = cargo.stdout_capture().run().context("building the tests")?;
    e2e_executable(&output.stdout[..])?.with_context(|| {
        format!(
            "cargo built no `{}` test binary (is rename-audit/tests/{0}/main.rs there?)",
            guest::E2E_TARGET
        )
    })
}

/// The `e2e` test executable among cargo's `--message-format=json`
/// messages.
fn e2e_executable(messages: impl BufRead) -> Result<Option<PathBuf>> {
    for message in Message::parse_stream(messages) {
        if let Message::CompilerArtifact(artifact) = message.context("reading cargo's messages")?
            && artifact.profile.test
            && artifact.target.name == guest::E2E_TARGET
            && let Some(executable) = artifact.executable
        {
            return Ok(Some(executable.into_std_path_buf()));
        }
    }
    Ok(None)
}

/// `cargo test`, or with `no_run` only the build of what it would run (with
/// cargo's JSON messages on stdout).
fn cargo_test(options: &Options, no_run: bool) -> Expression {
    // --no-fail-fast: a failing unit test must not hide the end-to-end results.
    let mut args: Vec<String> = vec!["test".into(), "--no-fail-fast".into()];
    args.extend(package_args(&options.package));
    for test in &options.test {
        args.extend(["--test".into(), test.clone()]);
    }
    if no_run {
        args.extend(["--no-run", "--message-format=json-render-diagnostics"].map(String::from));
        return cmd::cargo(args);
    }
    // Each end-to-end test starts a daemon that sees every rename on the
    // host; run them one at a time so they cannot disturb each other.
    args.extend(["--".into(), "--test-threads=1".into()]);
    args.extend(options.filter.clone());
    cmd::cargo(args)
}

fn package_args(packages: &[String]) -> Vec<String> {
    if packages.is_empty() {
        return ["--workspace", "--exclude", EBPF_PACKAGE]
            .map(String::from)
            .to_vec();
    }
    packages
        .iter()
        .flat_map(|package| ["--package".to_owned(), package.clone()])
        .collect()
}

fn clippy_host() -> Expression {
    let args = ["clippy".to_owned()]
        .into_iter()
        .chain(package_args(&[]))
        .chain(["--all-targets", "--", "-D", "warnings"].map(String::from));
    cmd::niced(cmd::cargo_path(), args)
}

/// Lints the kernel programs for their real target, the way aya-build
/// compiles them (nightly, `-Z build-std=core`).
fn clippy_ebpf() -> Expression {
    let args = [
        "run",
        "nightly",
        "cargo",
        "clippy",
        "--package",
        EBPF_PACKAGE,
    ];
    let target = ["--target", "bpfel-unknown-none", "-Z", "build-std=core"];
    let lints = ["--", "-D", "warnings"];
    cmd::niced("rustup", args.iter().chain(&target).chain(&lints))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(filter: Option<&str>, package: &[&str], test: &[&str]) -> Options {
        Options {
            filter: filter.map(str::to_owned),
            package: package.iter().map(|p| p.to_string()).collect(),
            test: test.iter().map(|t| t.to_string()).collect(),
            no_lint: false,
            kernel: None,
            no_guest: false,
            guest_only: false,
        }
    }

    /// duct's rendering of a command: `Cmd(["cargo", "test", ...])`.
    fn words(expression: &Expression) -> String {
        let debug = format!("{expression:?}");
        let start = debug.find("[\"").expect("a word list") + 1;
        let end = debug.find("])").expect("the list's end");
        debug[start..end].replace('"', "")
    }

    #[test]
    fn whole_workspace_runs_serially_without_the_kernel_crate() {
        let options = options(None, &[], &[]);
        let command = cargo_test(&options, false);
        assert!(
            words(&command).ends_with(
                "test, --no-fail-fast, --workspace, --exclude, rename-audit-ebpf, --, \
                 --test-threads=1"
            ),
            "{command:?}"
        );
        // The build step passes nothing to the harness.
        let build = cargo_test(&options, true);
        assert!(
            words(&build).ends_with(
                "test, --no-fail-fast, --workspace, --exclude, rename-audit-ebpf, --no-run, \
                 --message-format=json-render-diagnostics"
            ),
            "{build:?}"
        );
    }

    #[test]
    fn selection_and_filter_are_passed_on() {
        let options = options(Some("verify"), &["rename-audit"], &["e2e"]);
        let command = cargo_test(&options, false);
        assert!(
            words(&command).ends_with(
                "test, --no-fail-fast, --package, rename-audit, --test, e2e, --, \
                 --test-threads=1, verify"
            ),
            "{command:?}"
        );
    }

    #[test]
    fn the_guest_runs_when_the_selection_holds_e2e() {
        assert!(options(None, &[], &[]).selects_e2e());
        assert!(options(None, &["rename-audit"], &["e2e"]).selects_e2e());
        assert!(!options(None, &["xtask"], &[]).selects_e2e());
        assert!(!options(None, &[], &["deb_package"]).selects_e2e());
    }

    /// What cargo prints for a test build: the `e2e` test binary is found
    /// among other artifacts by its target's name and test profile.
    #[test]
    fn the_e2e_binary_comes_from_cargos_messages() {
        let artifact = |name: &str, kind: &str, test: bool, executable: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","package_id":"path+file:///w/rename-audit#0.1.0","manifest_path":"/w/rename-audit/Cargo.toml","target":{{"kind":["{kind}"],"crate_types":["bin"],"name":"{name}","src_path":"/w/rename-audit/tests/{name}/main.rs","edition":"2024","doc":false,"doctest":false,"test":true}},"profile":{{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":{test}}},"features":[],"filenames":["{executable}"],"executable":"{executable}","fresh":true}}"#
            )
        };
        let messages = [
            artifact("rename-audit", "bin", false, "/t/debug/rename-audit"),
            artifact("deb_package", "test", true, "/t/debug/deps/deb_package-1"),
            r#"{"reason":"build-finished","success":true}"#.to_owned(),
            artifact("e2e", "test", true, "/t/debug/deps/e2e-2"),
        ]
        .join("\n");
        assert_eq!(
            e2e_executable(messages.as_bytes()).expect("valid messages"),
            Some(PathBuf::from("/t/debug/deps/e2e-2"))
        );
        let without = messages.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(e2e_executable(without.as_bytes()).expect("valid"), None);
    }
}
