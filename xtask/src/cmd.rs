//! Running external programs with their command lines echoed on stderr, and
//! the paths every task shares.
use std::{
    env,
    ffi::{OsStr, OsString},
    fmt::Display,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use anyhow::{Context as _, Result, bail};

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory has a parent")
}

/// A top-level progress message.
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Starts the clock that [`step`] reports.
pub fn start_clock() {
    START.get_or_init(std::time::Instant::now);
}

/// Each step says how long the task has run (`[m:ss]`), so a CI log shows
/// where the time goes.
pub fn step(message: impl Display) {
    let elapsed = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
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

/// The cargo that runs us (so nested builds use the same toolchain), in the
/// workspace root.
pub fn cargo() -> Result<Command> {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(workspace_root())
        .env("PATH", path_with_cargo_bin()?);
    Ok(command)
}

/// Runs `command` (and everything it starts, such as rustc) at nice 10:
/// builds beside the guest are throughput work, while the guest's tests
/// wait on its clock.
pub fn niced(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: runs in the forked child before exec and only makes the
    // setpriority syscall, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setpriority(libc::PRIO_PROCESS, 0, 10) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Looks a program up the way our child processes will (cargo's bin
/// directory first, then PATH), then in the sbin directories that a non-root
/// PATH often lacks (bpftool, rsyslogd and auditctl live there).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = path_with_cargo_bin()
        .ok()
        .or_else(|| env::var_os("PATH"))
        .unwrap_or_default();
    let extra = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The command line as a shell would read it, for progress messages.
pub fn display(command: &Command) -> String {
    let envs = command.get_envs().filter_map(|(key, value)| {
        // PATH is adjusted on every cargo call; echoing it is noise.
        let value = value?;
        (key != "PATH").then(|| format!("{}={}", key.to_string_lossy(), quote(value)))
    });
    let program = std::iter::once(quote(command.get_program()));
    let args = command.get_args().map(quote);
    envs.chain(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Runs a command with inherited stdio, echoing it first; fails unless it
/// exits 0.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = display(command);
    eprintln!("    $ {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({})", describe(status));
    }
    Ok(())
}

/// Runs a command quietly and returns its stdout; on failure the error holds
/// its stderr.
pub fn output(command: &mut Command) -> Result<String> {
    let shown = display(command);
    let output = command
        .output()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            describe(output.status),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{shown}` printed non-UTF-8"))
}

/// Like [`output`], for checks: `None` when the program is missing or fails.
pub fn probe(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_a_shell_would_split() {
        let mut command = Command::new("cargo");
        command
            .args(["test", "--", "--test-threads=1", "two words", "it's"])
            .env("LLVM_PREFIX", "/x/lib");
        assert_eq!(
            display(&command),
            r"LLVM_PREFIX=/x/lib cargo test -- --test-threads=1 'two words' 'it'\''s'"
        );
    }
}
