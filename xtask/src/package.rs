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
//! `--profile deb-test` (or its alias `dev`) packages an unoptimized build
//! instead, under the root manifest's `[profile.deb-test]`, which only
//! inherits `dev`: the tests use it, because an optimized compile of every
//! crate takes far longer, and it packages the dev binary the tests already
//! built. Everything but the compiler's optimization is the same package.
//! (cargo-deb refuses the `dev` profile itself in the future.)
use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result, ensure};

use crate::{
    build,
    cmd::{self, note, step},
    setup::Task,
};

/// The Debian changelog; its first entry must name the crate's version.
const CHANGELOG: &str = "deploy/debian/changelog";

/// The Cargo profile whose binary goes into the package.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Optimized: what ships.
    #[default]
    Release,
    /// Unoptimized (`[profile.deb-test]`, which inherits dev), for the
    /// tests; `dev` is accepted for it.
    #[value(alias = "dev")]
    DebTest,
}

impl Profile {
    fn cargo(self) -> build::Profile {
        match self {
            Profile::Release => build::RELEASE,
            Profile::DebTest => build::Profile {
                name: "deb-test",
                dir: "deb-test",
            },
        }
    }
}

/// Builds, checks and returns the package's path.
pub fn package(profile: Profile) -> Result<PathBuf> {
    let binary = match profile {
        Profile::Release => build::build(Task::Package, profile.cargo())?,
        // `deb-test` only renames `dev` (it inherits it and sets nothing, as
        // a unit test checks), so the dev binary the tests have already built
        // goes where cargo-deb looks for deb-test's, instead of every crate
        // being compiled again under another profile's directory (11m46s
        // cold on this project's 2-vCPU machine).
        Profile::DebTest => {
            let dev = build::build(Task::Package, build::DEV)?;
            let dir = build::target_dir()?.join(profile.cargo().dir);
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let binary = dir.join("rename-audit");
            fs::copy(&dev, &binary).with_context(|| {
                format!("cannot copy {} to {}", dev.display(), binary.display())
            })?;
            binary
        }
    };
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
    cmd::run(&duct::cmd!(&binary, "generate", "man", &man))?;
    // -n: no name or time stamp in the header, so the package is
    // reproducible; -9 as lintian expects.
    let mut pages: Vec<PathBuf> = fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    cmd::run(&duct::cmd(
        "gzip",
        std::iter::once(PathBuf::from("-9nf")).chain(pages),
    ))?;
    let completions = stage.join("completions");
    cmd::run(&duct::cmd!(&binary, "generate", "completions", completions))?;

    // A native package's changelog is changelog.gz (cargo-deb's own
    // `changelog` key would name it changelog.Debian.gz).
    let changelog = stage.join("changelog");
    fs::copy(cmd::workspace_root().join(CHANGELOG), &changelog)
        .with_context(|| format!("cannot copy {CHANGELOG}"))?;
    cmd::run(&duct::cmd!("gzip", "-9nf", &changelog))?;

    step("building the Debian package (cargo-deb)");
    let args = ["deb", "--package", "rename-audit", "--no-build"];
    let profile = ["--profile", profile.cargo().name];
    cmd::run(&cmd::cargo(args.into_iter().chain(profile)))?;
    let version = env!("CARGO_PKG_VERSION");
    let path = target
        .join("debian")
        .join(format!("rename-audit_{version}_amd64.deb"));
    ensure!(path.is_file(), "cargo-deb did not write {}", path.display());

    step("lintian");
    // Errors fail the build; warnings are shown for a maintainer to judge.
    cmd::run(&duct::cmd!(
        "lintian",
        "--fail-on",
        "error",
        "--tag-display-limit",
        "0",
        &path
    ))?;
    note(format!("package: {}", path.display()));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum as _;

    /// `package` puts the dev binary in deb-test's place: that is only the
    /// same build while deb-test changes nothing of dev.
    #[test]
    fn the_deb_test_profile_only_inherits_dev() {
        let manifest = fs::read_to_string(cmd::workspace_root().join("Cargo.toml")).unwrap();
        let section: Vec<&str> = manifest
            .lines()
            .skip_while(|l| l.trim() != "[profile.deb-test]")
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with('['))
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(section, ["inherits = \"dev\""]);
    }

    /// The tests call `cargo xtask package --profile dev`: it must keep
    /// meaning the named profile, never cargo's `dev` itself.
    #[test]
    fn dev_is_an_alias_of_the_named_test_profile() {
        for name in ["dev", "deb-test"] {
            let profile = Profile::from_str(name, false).expect("a profile");
            assert_eq!(profile.cargo().name, "deb-test");
        }
        assert_eq!(Profile::default().cargo(), build::RELEASE);
    }

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
