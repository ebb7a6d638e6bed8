//! `cargo xtask run`: the release daemon in the foreground.
use std::{ffi::OsString, os::unix::process::CommandExt as _, process::Command};

use anyhow::{Context as _, Result};

use crate::{build, cmd::step, setup::Task};

/// Builds the daemon (release, or dev with `dev`) and becomes it. Only the
/// daemon writes to stdout: setup and the build print on stderr.
pub fn run(dev: bool, args: Vec<OsString>) -> Result<std::process::ExitCode> {
    let profile = if dev { build::DEV } else { build::RELEASE };
    let binary = build::build(Task::Build, profile)?;
    let args = daemon_args(args);
    let mut daemon = Command::new(&binary);
    daemon.args(&args);
    step(format!(
        "starting {daemon:?} (stop with Ctrl-C; events on stdout, diagnostics on stderr; \
         --format json for JSON lines)"
    ));
    // exec, not spawn: the daemon gets our pid, so Ctrl-C and SIGTERM reach
    // it directly and its exit status is ours.
    let error = daemon.exec();
    Err(error).with_context(|| format!("cannot start {}", binary.display()))
}

/// No arguments means `run`; leading flags are flags of `run`; anything else
/// is a whole daemon command line (`check-config FILE`, `--version`, ...).
/// A person runs this at a terminal, so `run` prints readable lines unless
/// the arguments choose a `--format`.
fn daemon_args(args: Vec<OsString>) -> Vec<OsString> {
    let is_flag = |arg: &OsString| arg.to_str().is_some_and(|arg| arg.starts_with('-'));
    let chooses_format = args.iter().any(|arg| {
        arg.to_str()
            .is_some_and(|a| a == "--format" || a.starts_with("--format="))
    });
    let readable = || -> Vec<OsString> {
        if chooses_format {
            vec!["run".into()]
        } else {
            vec!["run".into(), "--format".into(), "text".into()]
        }
    };
    match args.first() {
        None => readable(),
        Some(first) if is_flag(first) && !is_top_level_flag(first) => {
            readable().into_iter().chain(args).collect()
        }
        Some(_) => args,
    }
}

fn is_top_level_flag(arg: &OsString) -> bool {
    ["--version", "-V"].iter().any(|flag| arg == flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn default_is_run_with_readable_lines() {
        assert_eq!(daemon_args(vec![]), args(&["run", "--format", "text"]));
    }

    #[test]
    fn flags_go_to_run() {
        assert_eq!(
            daemon_args(args(&["--include-exec", "--output", "-"])),
            args(&["run", "--format", "text", "--include-exec", "--output", "-"])
        );
        assert_eq!(
            daemon_args(args(&["--format", "json"])),
            args(&["run", "--format", "json"])
        );
        assert_eq!(
            daemon_args(args(&["--format=json"])),
            args(&["run", "--format=json"])
        );
    }

    #[test]
    fn subcommands_and_version_pass_through() {
        assert_eq!(
            daemon_args(args(&["check-config", "x.toml"])),
            args(&["check-config", "x.toml"])
        );
        assert_eq!(daemon_args(args(&["--version"])), args(&["--version"]));
    }
}
