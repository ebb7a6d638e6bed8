//! The Debian package (issue 10 item 1): `cargo xtask package` builds it
//! (lintian must find no error), it holds what a system daemon needs, it
//! installs on this machine with its unit enabled, runs, passes
//! `systemd-analyze verify`, and purging it leaves nothing behind.
//!
//! PID 1 is not systemd here, so the maintainer scripts only enable the
//! unit (deb-systemd-helper works offline) and skip starting it: this is
//! what they must tolerate. The test refuses to run where rename-audit is
//! already installed, so it never purges someone's installation.
use std::{path::Path, process::Command};

use crate::support::package::{build_dev_package, run};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Everything the package must install (dpkg-deb --contents paths).
const EXPECTED: &[&str] = &[
    "./usr/bin/rename-audit",
    "./etc/rename-audit/config.toml",
    "./etc/logrotate.d/rename-audit",
    "./usr/lib/systemd/system/rename-audit.service",
    "./usr/share/man/man8/rename-audit.8.gz",
    "./usr/share/man/man8/rename-audit-run.8.gz",
    "./usr/share/man/man8/rename-audit-search.8.gz",
    "./usr/share/man/man8/rename-audit-report.8.gz",
    "./usr/share/man/man8/rename-audit-check-config.8.gz",
    "./usr/share/man/man5/rename-audit.toml.5.gz",
    "./usr/share/bash-completion/completions/rename-audit",
    "./usr/share/zsh/vendor-completions/_rename-audit",
    "./usr/share/fish/vendor_completions.d/rename-audit.fish",
    "./usr/share/doc/rename-audit/copyright",
    "./usr/share/doc/rename-audit/changelog.gz",
    "./usr/share/doc/rename-audit/examples/prometheus/rename-audit.rules.yml",
    "./usr/share/doc/rename-audit/examples/prometheus/rename-audit.rules.test.yml",
];
/// Where the package puts the example Prometheus rules and their tests.
const EXAMPLES: &str = "/usr/share/doc/rename-audit/examples/prometheus";
/// The central-store recipe (deploy/rsyslog/), shipped as examples only:
/// nothing of it under /etc, so nothing of it is active.
const RSYSLOG_EXAMPLES: &[&str] = &[
    "README.md",
    "host.conf",
    "central.conf",
    "logrotate.conf",
    "rename-audit.toml",
];
const EXAMPLES_DIR: &str = "./usr/share/doc/rename-audit/examples/rsyslog/";
const ENABLED_LINK: &str = "/etc/systemd/system/multi-user.target.wants/rename-audit.service";

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).expect("UTF-8 output")
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "rename-audit"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
}

/// Purges the package if a failed assertion left it installed.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if installed() {
            let _ = Command::new("dpkg")
                .args(["--purge", "rename-audit"])
                .status();
        }
    }
}

#[test]
fn the_package_builds_installs_runs_verifies_and_purges_cleanly() {
    assert!(
        !installed()
            && !Path::new("/etc/rename-audit").exists()
            && !Path::new("/usr/bin/rename-audit").exists(),
        "rename-audit is already installed here; this test installs and purges the package, \
         so it only runs where nothing of it exists"
    );

    let deb = build_dev_package();

    let fields = stdout(Command::new("dpkg-deb").arg("-f").arg(&deb).args([
        "Package",
        "Version",
        "Architecture",
        "Section",
    ]));
    assert_eq!(
        fields,
        format!("Package: rename-audit\nVersion: {VERSION}\nArchitecture: amd64\nSection: admin\n")
    );
    // The unit's ExecReload runs /bin/kill, which minimal systems lack.
    let depends = stdout(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Depends"));
    assert!(
        depends.split(',').any(|d| d.trim() == "procps"),
        "the package depends on procps (/bin/kill for ExecReload): {depends}"
    );
    let contents = stdout(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let paths: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in EXPECTED {
        assert!(
            paths.contains(want),
            "{want} missing from the package:\n{contents}"
        );
    }
    // The rsyslog recipe, byte for byte what the relay tests run, and only
    // as examples.
    let unpacked = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(unpacked.path()));
    for file in RSYSLOG_EXAMPLES {
        let want = format!("{EXAMPLES_DIR}{file}");
        assert!(
            paths.contains(&want.as_str()),
            "{want} missing:\n{contents}"
        );
        let shipped = std::fs::read(unpacked.path().join(&want)).expect("read the example");
        let source = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/rsyslog")
                .join(file),
        )
        .expect("read deploy/rsyslog");
        assert_eq!(shipped, source, "{want} is deploy/rsyslog/{file}");
    }
    assert!(
        !paths.iter().any(|p| p.starts_with("./etc/rsyslog")),
        "the recipe is not active: nothing under /etc/rsyslog*\n{contents}"
    );
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).expect("conffiles");
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/rename-audit/config.toml")
            && conffiles
                .lines()
                .any(|l| l == "/etc/logrotate.d/rename-audit"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(control.path().join("postinst")).expect("postinst");
    assert!(
        postinst.contains("deb-systemd-helper") && postinst.contains("rename-audit.service"),
        "the unit is enabled by the maintainer scripts:\n{postinst}"
    );
    assert!(
        postinst.contains("restart"),
        "and restarted on upgrade:\n{postinst}"
    );

    let _purge = Purge;
    run(Command::new("dpkg")
        .arg("--install")
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(installed());
    assert_eq!(
        stdout(Command::new("/usr/bin/rename-audit").arg("--version")),
        format!("rename-audit {VERSION}\n")
    );
    assert!(
        Path::new(ENABLED_LINK).symlink_metadata().is_ok(),
        "the unit is enabled ({ENABLED_LINK})"
    );
    let unit =
        std::fs::read_to_string("/usr/lib/systemd/system/rename-audit.service").expect("unit");
    assert!(
        unit.lines()
            .any(|l| l.starts_with("ExecStart=/usr/bin/rename-audit run ")),
        "{unit}"
    );
    let verify = run(Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/rename-audit.service"])
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_PAGER", ""));
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        !said.contains("rename-audit.service:"),
        "systemd-analyze verify complains about the unit:\n{said}"
    );
    run(Command::new("/usr/bin/rename-audit")
        .args(["check-config", "/etc/rename-audit/config.toml"]));
    // The shipped alerting rules work as installed: their unit tests find
    // the rules file beside them.
    let tested = stdout(
        Command::new("promtool")
            .args(["test", "rules", "rename-audit.rules.test.yml"])
            .current_dir(EXAMPLES),
    );
    assert!(tested.contains("SUCCESS"), "{tested}");

    run(Command::new("dpkg").args(["--purge", "rename-audit"]));
    assert!(!installed(), "purged");
    let left: Vec<&str> = EXPECTED
        .iter()
        .map(|p| p.trim_start_matches('.'))
        .chain([
            "/etc/rename-audit",
            EXAMPLES,
            ENABLED_LINK,
            "/var/lib/systemd/deb-systemd-helper-enabled/rename-audit.service.dsh-also",
            "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/rename-audit.service",
            "/var/log/rename-audit",
            "/var/lib/rename-audit",
        ])
        .filter(|p| Path::new(p).symlink_metadata().is_ok())
        .collect();
    assert!(left.is_empty(), "purge left files behind: {left:?}");
}
