//! `cargo xtask build`: the daemon with its kernel programs.
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::{
    cmd::{self, note, step},
    setup::{self, Task},
};

/// A Cargo profile and the directory under target/ that holds its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub dir: &'static str,
}

pub const RELEASE: Profile = Profile {
    name: "release",
    dir: "release",
};
pub const DEV: Profile = Profile {
    name: "dev",
    dir: "debug",
};

/// Builds `rename-audit` with `profile` (after the setup `task` needs, if
/// something is missing) and returns the path of the binary.
pub fn build(task: Task, profile: Profile) -> Result<PathBuf> {
    setup::ensure(task)?;
    warn_if_kernel_programs_skipped();
    step(format!("building rename-audit ({})", profile.name));
    cmd::run(&cmd::cargo([
        "build",
        "--package",
        "rename-audit",
        "--profile",
        profile.name,
    ]))?;
    Ok(target_dir()?.join(profile.dir).join("rename-audit"))
}

/// Builds an example of `rename-audit` in release mode (the benchmark's
/// floor loader) and returns its path.
pub fn build_release_example(name: &str) -> Result<PathBuf> {
    step(format!("building example {name} (release)"));
    let args = ["build", "--package", "rename-audit", "--release"];
    cmd::run(&cmd::cargo(args.into_iter().chain(["--example", name])))?;
    Ok(target_dir()?.join("release/examples").join(name))
}

/// AYA_BUILD_SKIP=1 builds a daemon without kernel programs, which refuses to
/// start: fine for unit tests and clippy, surprising anywhere else.
pub fn warn_if_kernel_programs_skipped() {
    if std::env::var_os("AYA_BUILD_SKIP").is_some_and(|v| v == "1" || v == "true") {
        note(
            "warning: AYA_BUILD_SKIP is set: the kernel programs are not built and the daemon \
             will refuse to start",
        );
    }
}

/// Cargo's target directory as cargo itself resolves it (CARGO_TARGET_DIR,
/// config files, or `<workspace>/target`).
pub fn target_dir() -> Result<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(cmd::cargo_path())
        .current_dir(cmd::workspace_root())
        .no_deps()
        .exec()
        .context("`cargo metadata` failed")?;
    Ok(metadata.target_directory.into_std_path_buf())
}
