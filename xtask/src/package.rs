//! `cargo xtask package`: the Debian package,
//! `target/debian/rename-audit_<version>_amd64.deb`, built by cargo-deb
//! (version pinned in [`crate::setup`]) from `[package.metadata.deb]` in
//! rename-audit/Cargo.toml, then checked with lintian.
//!
//! Before cargo-deb runs, the release daemon writes its man pages and shell
//! completions (generated from its clap definition by the hidden
//! `rename-audit generate` command) under `target/release/package/`, where
//! the metadata's assets pick them up; man pages are gzip-compressed as
//! Debian policy wants.
use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context as _, Result, ensure};

use crate::{
    build,
    cmd::{self, note, step},
};

/// The Debian changelog; its first entry must name the crate's version.
const CHANGELOG: &str = "deploy/debian/changelog";

/// Builds, checks and returns the package's path.
pub fn package() -> Result<PathBuf> {
    let binary = build::build(true)?;
    let target = build::target_dir()?;
    let stage = target.join("release/package");
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
    deb.args(["deb", "--package", "rename-audit", "--no-build"]);
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
