//! Developer and CI tasks for rename-audit: `cargo xtask <command>`.
//!
//! Every command first runs the cheap checks of [`setup::ensure`] for what it
//! needs (running the daemon needs the BPF toolchain; the tests also need
//! their servers and the guest), so a fresh machine needs nothing but
//! `cargo xtask run` or `cargo xtask test`.
mod build;
mod cmd;
mod guest;
mod install;
mod package;
mod run;
mod setup;
mod test;

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer and CI tasks for rename-audit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the BPF toolchain and the Debian packages the tests and the
    /// benchmark use, and mount tracefs; does only what is missing.
    Setup,
    /// Build the daemon (and its kernel programs).
    Build {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Build the daemon in release mode and run it in the foreground; events
    /// go to stdout, everything else (setup, the build) to stderr.
    ///
    /// Arguments are passed to the daemon. With none it runs `rename-audit
    /// run --format text` (readable lines; add `--format json` for JSON); arguments that start with a flag are given to `run`
    /// (`cargo xtask run -- --include-exec`); anything else is a full daemon
    /// command line (`cargo xtask run -- check-config FILE`).
    Run {
        /// Build with the dev profile (unoptimized, quicker to build).
        #[arg(long)]
        dev: bool,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "DAEMON ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Run every test (unit and end-to-end, serially), then clippy and rustfmt.
    Test(test::Options),
    /// Build in release mode and install the binary, the systemd unit and the
    /// example configuration.
    Install {
        /// Where the binary goes: PREFIX/bin/rename-audit.
        #[arg(long, default_value = install::DEFAULT_PREFIX)]
        prefix: PathBuf,
        /// Stage everything under this directory instead of / (packaging).
        #[arg(long)]
        destdir: Option<PathBuf>,
    },
    /// Build the Debian package target/debian/rename-audit_<version>_amd64.deb
    /// (cargo-deb) with man pages and completions, and check it with lintian.
    Package {
        /// The build in the package: `release` ships; `deb-test` (alias
        /// `dev`) is unoptimized, for the tests.
        #[arg(long, value_enum, default_value_t)]
        profile: package::Profile,
    },
    /// Benchmark rename-audit against an untraced workload, the floor (an
    /// empty program on the same hook), bpftrace and auditd, then search and
    /// report over a 1 GB log; writes bench/runs/<date>-<host>/. The daemon
    /// runs with the shipped unit's capability bounding set and
    /// kernel.perf_event_paranoid=3 (restored afterwards), as root in a
    /// second row where both are shown. Arguments go to the benchmark
    /// (`cargo xtask bench -- --help`).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = cmd::prepare() {
        eprintln!("xtask: error: {error:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Setup => setup::setup().map(|()| ExitCode::SUCCESS),
        Command::Build { release } => {
            let profile = if release { build::RELEASE } else { build::DEV };
            build::build(setup::Task::Build, profile).map(|_| ExitCode::SUCCESS)
        }
        Command::Run { dev, args } => run::run(dev, args),
        Command::Test(options) => test::test(&options),
        Command::Install { prefix, destdir } => {
            install::install(&prefix, destdir.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Package { profile } => package::package(profile).map(|_| ExitCode::SUCCESS),
        Command::Bench { args } => bench(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The benchmark's tools, the release daemon and the floor's loader, then
/// the benchmark itself (the `rename-audit-bench` crate).
fn bench(args: Vec<OsString>) -> anyhow::Result<()> {
    build::build(setup::Task::Bench, build::RELEASE)?;
    build::build_release_example("floor")?;
    cmd::step("benchmarking (takes a few minutes)");
    let target = build::target_dir()?;
    let run = ["run", "--release", "--package", "rename-audit-bench", "--"].map(OsString::from);
    let target = [OsString::from("--target-dir"), target.into_os_string()];
    // The benchmark's own results go to its files; its stdout, if any, is
    // the caller's.
    cmd::cargo(run.into_iter().chain(target).chain(args))
        .run()
        .map(drop)
        .map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_passes_flags_through_to_the_daemon() {
        let cli = Cli::try_parse_from(["cargo xtask", "run", "--include-exec", "--output", "-"])
            .expect("`run` with daemon flags must parse");
        match cli.command {
            Command::Run { dev: false, args } => {
                assert_eq!(args, ["--include-exec", "--output", "-"])
            }
            _ => panic!("expected the run command"),
        }
    }
}
