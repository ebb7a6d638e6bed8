//! Running external programs (through duct) with their command lines echoed
//! on stderr, and the paths every task shares.
//!
//! xtask's stdout belongs to what a task produces (the daemon's events under
//! `cargo xtask run`): the output of every tool it runs on the way (apt,
//! rustup, cargo) is sent to stderr, like xtask's own progress messages.
use std::{
    env,
    ffi::OsString,
    fmt::Display,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use duct::Expression;

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory has a parent")
}

static START: OnceLock<Instant> = OnceLock::new();

/// A top-level progress message. Each says how long the task has run
/// (`[m:ss]`), so a CI log shows where the time goes.
pub fn step(message: impl Display) {
    let elapsed = START.get_or_init(Instant::now).elapsed().as_secs();
    eprintln!("==> [{}:{:02}] {message}", elapsed / 60, elapsed % 60);
}

/// A detail under the current step.
pub fn note(message: impl Display) {
    eprintln!("    {message}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Where cargo keeps installed binaries such as bpf-linker.
pub fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// PATH with cargo's bin directory in front: aya-build calls `bpf-linker` and
/// `rustup` by name, and a CI shell may not have ~/.cargo/bin on its PATH.
pub fn path_with_cargo_bin() -> Result<OsString> {
    let bin = cargo_home()?.join("bin");
    let current = env::var_os("PATH").unwrap_or_default();
    if env::split_paths(&current).any(|dir| dir == bin) {
        return Ok(current);
    }
    env::join_paths(std::iter::once(bin).chain(env::split_paths(&current)))
        .context("cannot build PATH with cargo's bin directory")
}

/// The cargo that runs us (so nested builds use the same toolchain).
pub fn cargo_path() -> PathBuf {
    env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

/// Every command runs in the workspace root with cargo's bin directory on
/// PATH: set once for the process, so that no command has to repeat it.
/// Also starts the clock that [`step`] reports.
pub fn prepare() -> Result<()> {
    START.get_or_init(Instant::now);
    let path = path_with_cargo_bin()?;
    // SAFETY: called first thing in main, before xtask starts any thread,
    // so nothing reads the environment concurrently.
    unsafe { env::set_var("PATH", path) };
    env::set_current_dir(workspace_root())
        .with_context(|| format!("cannot enter {}", workspace_root().display()))
}

/// `cargo ARGS`, with the cargo that runs us.
pub fn cargo<I, S>(args: I) -> Expression
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    duct::cmd(cargo_path(), args)
}

/// `program ARGS` at nice 10 (and everything it starts, such as rustc):
/// builds beside the guest are throughput work, while the guest's tests wait
/// on its clock.
pub fn niced<I, S>(program: impl Into<OsString>, args: I) -> Expression
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let words = [OsString::from("-n"), "10".into(), program.into()]
        .into_iter()
        .chain(args.into_iter().map(Into::into));
    duct::cmd("nice", words)
}

/// Looks a program up the way our child processes will (cargo's bin
/// directory first, then PATH), then in the sbin directories that a non-root
/// PATH often lacks (bpftool, rsyslogd and auditctl live there).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = path_with_cargo_bin().ok()?;
    let extra = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];
    let dirs = env::split_paths(&path).chain(extra.iter().map(PathBuf::from));
    let search = env::join_paths(dirs).ok()?;
    which::which_in(name, Some(search), workspace_root()).ok()
}

/// Runs `expression`, echoing it first, with its stdout sent to stderr (see
/// the module's note); fails unless it exits 0.
pub fn run(expression: &Expression) -> Result<()> {
    eprintln!("    $ {expression:?}");
    on_stderr(expression)
        .run()
        .with_context(|| format!("`{expression:?}` failed"))?;
    Ok(())
}

fn on_stderr(expression: &Expression) -> Expression {
    expression.stdout_to_stderr()
}

/// Runs `expression` quietly and returns its stdout; on failure the error
/// holds its stderr.
pub fn output(expression: &Expression) -> Result<String> {
    let output = expression
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("cannot start `{expression:?}`"))?;
    if !output.status.success() {
        bail!(
            "`{expression:?}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{expression:?}` printed non-UTF-8"))
}

/// Like [`output`], for checks: `None` when the program is missing or fails.
pub fn probe(expression: &Expression) -> Option<String> {
    expression.stderr_null().read().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`run`] starts: the program's stdout goes to stderr (apt's
    /// output once filled the stdout of `cargo xtask run`).
    #[test]
    fn run_sends_the_programs_stdout_to_stderr() {
        let shown = format!("{:?}", on_stderr(&duct::cmd!("apt-get", "update")));
        assert_eq!(shown, r#"Io(StdoutToStderr, Cmd(["apt-get", "update"]))"#);
        // And it does run: a failing program is an error.
        assert!(run(&duct::cmd!("false")).is_err());
        run(&duct::cmd!("true")).expect("true succeeds");
    }
}
