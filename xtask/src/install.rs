//! `cargo xtask install`: binary, systemd unit and example configuration.
use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{
    build,
    cmd::{self, note, step},
    setup::Task,
};

pub const DEFAULT_PREFIX: &str = "/usr/local";
/// The path the unit in deploy/ runs (where the Debian package puts the
/// binary); rewritten for the prefix installed to.
const UNIT_BINARY: &str = "/usr/bin/rename-audit";
const UNIT_SOURCE: &str = "deploy/rename-audit.service";
const UNIT_TARGET: &str = "/etc/systemd/system/rename-audit.service";
const CONFIG_SOURCE: &str = "deploy/config.toml";
const CONFIG_TARGET: &str = "/etc/rename-audit/config.toml";

pub fn install(prefix: &Path, destdir: Option<&Path>) -> Result<()> {
    check_prefix(prefix)?;
    if destdir.is_none() && !cmd::is_root() {
        bail!(
            "installing into {} and /etc needs root: run `sudo -E cargo xtask install`, \
             or stage with --destdir DIR",
            prefix.display()
        );
    }
    let root = cmd::workspace_root();
    // Read the sources before the (long) build, so a broken checkout fails fast.
    let unit = fs::read_to_string(root.join(UNIT_SOURCE))
        .with_context(|| format!("cannot read {UNIT_SOURCE}"))?;
    let binary_target = prefix.join("bin/rename-audit");
    let unit = rewrite_exec_paths(&unit, &binary_target)?;

    let binary = build::build(Task::Build, build::RELEASE)?;
    step("installing");
    let staged = |path: &Path| staged(destdir, path);

    let binary_bytes =
        fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
    replace_file(&staged(&binary_target), &binary_bytes, 0o755)?;
    replace_file(&staged(Path::new(UNIT_TARGET)), unit.as_bytes(), 0o644)?;

    let config_target = staged(Path::new(CONFIG_TARGET));
    match fs::read(root.join(CONFIG_SOURCE)) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            note(format!(
                "{CONFIG_SOURCE} does not exist yet: no example configuration installed"
            ));
        }
        Err(error) => return Err(error).context(format!("cannot read {CONFIG_SOURCE}")),
        Ok(_) if config_target.exists() => {
            note(format!("{} exists: kept as it is", config_target.display()));
        }
        Ok(config) => replace_file(&config_target, &config, 0o644)?,
    }

    step("installed; to start it under systemd:");
    note("systemctl daemon-reload && systemctl enable --now rename-audit");
    Ok(())
}

/// systemd would read spaces, quotes, `%` specifiers and `$` variables in
/// ExecStart; a prefix holding them is refused rather than escaped.
fn check_prefix(prefix: &Path) -> Result<()> {
    ensure!(
        prefix.is_absolute(),
        "--prefix must be an absolute path, got {}",
        prefix.display()
    );
    let plain = prefix.to_str().is_some_and(|text| {
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.+".contains(c))
    });
    ensure!(
        plain,
        "--prefix {} holds characters that systemd would interpret in ExecStart; use a plain path",
        prefix.display()
    );
    Ok(())
}

/// `path` under `destdir` when staging, else `path` itself.
fn staged(destdir: Option<&Path>, path: &Path) -> PathBuf {
    match destdir {
        Some(destdir) => destdir.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_owned(),
    }
}

/// Points the unit's Exec*= lines at the installed binary.
fn rewrite_exec_paths(unit: &str, binary: &Path) -> Result<String> {
    let binary = binary.to_str().context("the binary path is not UTF-8")?;
    let mut exec_start_found = false;
    let mut out = String::with_capacity(unit.len());
    for line in unit.split_inclusive('\n') {
        if line.starts_with("Exec") && line.contains(UNIT_BINARY) {
            exec_start_found |= line.starts_with("ExecStart=");
            out.push_str(&line.replace(UNIT_BINARY, binary));
        } else {
            out.push_str(line);
        }
    }
    ensure!(
        exec_start_found,
        "{UNIT_SOURCE} has no `ExecStart={UNIT_BINARY} ...` line to point at {binary}"
    );
    Ok(out)
}

/// Writes beside the target and renames over it: a running daemon keeps its
/// old binary (no "text file busy"), and nobody sees a half-written file.
fn replace_file(target: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = target
        .parent()
        .with_context(|| format!("{} has no parent directory", target.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = target
        .file_name()
        .with_context(|| format!("{} has no file name", target.display()))?;
    let temporary = dir.join(format!(".{}.xtask-new", name.to_string_lossy()));
    let unchanged = fs::read(target).is_ok_and(|old| old == contents);
    fs::write(&temporary, contents)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", temporary.display()))?;
    fs::rename(&temporary, target)
        .with_context(|| format!("cannot replace {}", target.display()))?;
    let what = if unchanged { "unchanged" } else { "written" };
    note(format!("{what}: {}", target.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = "[Service]\nExecStart=/usr/bin/rename-audit run --config /etc/x\n\
                        ExecReload=/bin/kill -HUP $MAINPID\n";

    #[test]
    fn the_package_path_keeps_the_unit_as_is() {
        let unit = rewrite_exec_paths(UNIT, Path::new(UNIT_BINARY)).expect("rewrite");
        assert_eq!(unit, UNIT);
    }

    #[test]
    fn other_prefix_rewrites_exec_start_only() {
        let unit =
            rewrite_exec_paths(UNIT, Path::new("/opt/ra/bin/rename-audit")).expect("rewrite");
        assert_eq!(
            unit,
            "[Service]\nExecStart=/opt/ra/bin/rename-audit run --config /etc/x\n\
             ExecReload=/bin/kill -HUP $MAINPID\n"
        );
    }

    #[test]
    fn unit_without_the_expected_exec_start_is_refused() {
        let error = rewrite_exec_paths("[Service]\nExecStart=/bin/true\n", Path::new("/x"))
            .expect_err("must refuse");
        assert!(error.to_string().contains("ExecStart"), "{error}");
    }

    #[test]
    fn the_repository_unit_has_the_expected_exec_start() {
        let unit = fs::read_to_string(cmd::workspace_root().join(UNIT_SOURCE)).expect("read unit");
        rewrite_exec_paths(&unit, Path::new("/opt/bin/rename-audit")).expect("rewrite");
    }

    #[test]
    fn prefixes_systemd_would_interpret_are_refused() {
        check_prefix(Path::new("/usr/local")).expect("plain prefix");
        check_prefix(Path::new("/opt/rename-audit-1.0")).expect("plain prefix");
        for bad in ["relative", "/opt/my dir", "/opt/%h", "/opt/$X", "/opt/a'b"] {
            assert!(
                check_prefix(Path::new(bad)).is_err(),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn destdir_stages_absolute_paths() {
        assert_eq!(
            staged(Some(Path::new("/tmp/stage")), Path::new(UNIT_TARGET)),
            Path::new("/tmp/stage/etc/systemd/system/rename-audit.service")
        );
        assert_eq!(staged(None, Path::new(UNIT_TARGET)), Path::new(UNIT_TARGET));
    }
}
