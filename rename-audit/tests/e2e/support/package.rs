//! The Debian package tests' shared steps.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

/// Runs `command` and panics with its output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `cargo xtask package --profile dev` and the path of the package. The
/// tests' own (dev) build goes into it: an optimized build would compile
/// every crate a second time for the same packaging checks. Built once per
/// test run: every test that installs or inspects it gets the same file.
pub fn build_dev_package() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(workspace)
        .args(["xtask", "package", "--profile", "dev"]));
    // <target>/<profile>/rename-audit
    let deb = Path::new(env!("CARGO_BIN_EXE_rename-audit"))
        .ancestors()
        .nth(2)
        .expect("target directory")
        .join("debian")
        .join(format!(
            "rename-audit_{}_amd64.deb",
            env!("CARGO_PKG_VERSION")
        ));
    assert!(deb.is_file(), "{} was not built", deb.display());
    deb
}
