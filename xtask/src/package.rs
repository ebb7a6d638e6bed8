//! `cargo xtask package`: the Debian package,
//! `target/debian/rename-audit_<version>_amd64.deb`, built by cargo-deb
//! (version pinned in [`crate::setup`]) from `[package.metadata.deb]` in
//! rename-audit/Cargo.toml, then checked with lintian.
//!
//! Before cargo-deb runs, the daemon writes its man pages and shell
//! completions (generated from its clap definition by the hidden
//! `rename-audit generate` command) under `target/<profile>/package/`,
//! where the metadata's assets pick them up (cargo-deb maps their
//! `target/release/` to the profile's directory); man pages are
//! gzip-compressed as Debian policy wants.
//!
//! `--profile dev` packages the unoptimized build instead: the tests use it
//! because they have built it already, which spares CI a second, optimized
//! compile of every crate. Everything but the compiler's optimization is the
//! same package.
use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context as _, Result, ensure};

use crate::{
    build,
    cmd::{self, note, step},
};

/// The Debian changelog; its first entry must name the crate's version.
const CHANGELOG: &str = "deploy/debian/changelog";

/// The Cargo profile whose binary goes into the package.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Optimized: what ships.
    #[default]
    Release,
    /// Unoptimized, as the tests build it.
    Dev,
}

impl Profile {
    fn cargo_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "dev",
        }
    }
}

/// Builds, checks and returns the package's path.
pub fn package(profile: Profile) -> Result<PathBuf> {
    let binary = build::build(profile == Profile::Release)?;
    let profile_dir = binary
        .parent()
        .context("the binary has a directory")?
        .to_owned();
    let target = build::target_dir()?;
    let stage = profile_dir.join("package");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("cannot clear {}", stage.display()))?;
    }
    step("generating man pages and shell completions from the CLI definition");
    let man = stage.join("man");
    cmd::run(Command::new(&binary).arg("generate").arg("man").arg(&man))?;
    // -n: no name or time stamp in the header, so the package is
    // reproducible; -9 as lintian expects.
    let mut pages: Vec<PathBuf> = fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    cmd::run(Command::new("gzip").arg("-9nf").args(&pages))?;
    cmd::run(
        Command::new(&binary)
            .arg("generate")
            .arg("completions")
            .arg(stage.join("completions")),
    )?;

    // A native package's changelog is changelog.gz (cargo-deb's own
    // `changelog` key would name it changelog.Debian.gz).
    let changelog = stage.join("changelog");
    fs::copy(cmd::workspace_root().join(CHANGELOG), &changelog)
        .with_context(|| format!("cannot copy {CHANGELOG}"))?;
    cmd::run(Command::new("gzip").arg("-9nf").arg(&changelog))?;

    step("building the Debian package (cargo-deb)");
    let mut deb = cmd::cargo()?;
    deb.args(["deb", "--package", "rename-audit", "--no-build"])
        .args(["--profile", profile.cargo_name()]);
    cmd::run(&mut deb)?;
    let version = env!("CARGO_PKG_VERSION");
    let path = target
        .join("debian")
        .join(format!("rename-audit_{version}_amd64.deb"));
    ensure!(path.is_file(), "cargo-deb did not write {}", path.display());

    step("lintian");
    // Errors fail the build; warnings are shown for a maintainer to judge.
    cmd::run(
        Command::new("lintian")
            .args(["--fail-on", "error", "--tag-display-limit", "0"])
            .arg(&path),
    )?;
    note(format!("package: {}", path.display()));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changelog_names_the_crate_version() {
        let text = fs::read_to_string(cmd::workspace_root().join(CHANGELOG)).expect("read");
        let first = text.lines().next().expect("a first line");
        assert!(
            first.starts_with(&format!("rename-audit ({}) ", env!("CARGO_PKG_VERSION"))),
            "{CHANGELOG} must start with an entry for this version: {first}"
        );
    }
}
