//! `cargo xtask build`: the daemon with its kernel programs.
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::{
    cmd::{self, note, step},
    setup,
};

/// Builds `rename-audit` (setup first if something is missing) and returns
/// the path of the binary.
pub fn build(release: bool) -> Result<PathBuf> {
    setup::ensure()?;
    warn_if_kernel_programs_skipped();
    let profile = if release { "release" } else { "debug" };
    step(format!("building rename-audit ({profile})"));
    let mut cargo = cmd::cargo()?;
    cargo.args(["build", "--package", "rename-audit"]);
    if release {
        cargo.arg("--release");
    }
    cmd::run(&mut cargo)?;
    Ok(target_dir()?.join(profile).join("rename-audit"))
}

/// Builds an example of `rename-audit` in release mode (the benchmark's
/// floor loader) and returns its path.
pub fn build_release_example(name: &str) -> Result<PathBuf> {
    step(format!("building example {name} (release)"));
    let mut cargo = cmd::cargo()?;
    cargo.args([
        "build",
        "--package",
        "rename-audit",
        "--release",
        "--example",
        name,
    ]);
    cmd::run(&mut cargo)?;
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
    let mut metadata = cmd::cargo()?;
    metadata.args(["metadata", "--format-version", "1", "--no-deps"]);
    let json = cmd::output(&mut metadata)?;
    let metadata: serde_json::Value =
        serde_json::from_str(&json).context("`cargo metadata` printed invalid JSON")?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("`cargo metadata` printed no target_directory")?;
    Ok(PathBuf::from(dir))
}
