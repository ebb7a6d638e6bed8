//! Allow-lists: renames that are known and benign, per rule.
//!
//! An entry matches when every field it gives matches; it applies to the
//! rules it lists, or to all of them. The defaults name exact (executable,
//! new name) pairs of programs that rename themselves on a stock Debian host,
//! and each is limited to the rules it needs: none of them lets a process
//! choose a kernel-thread name, and none covers an executable a user could
//! write.

use std::collections::BTreeSet;

use super::RuleId;
use crate::event::ProcessContext;
use crate::names::Name;
use crate::util::glob::Pattern;

/// The `[allow]` part of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowConfig {
    /// Keep the built-in entries of [`default_allowlist`] besides `entries`.
    pub default_allowlist: bool,
    pub entries: Vec<AllowEntry>,
}

impl Default for AllowConfig {
    fn default() -> Self {
        AllowConfig {
            default_allowlist: true,
            entries: Vec::new(),
        }
    }
}

/// One allow-list entry. Every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowEntry {
    /// The rules this entry silences; `None` means all of them.
    pub rules: Option<BTreeSet<RuleId>>,
    /// Glob on the executable path ([`Pattern::path`]).
    pub executable: Option<Pattern>,
    /// Glob on the systemd unit ([`Pattern::name`]).
    pub unit: Option<Pattern>,
    /// Glob on the container as `<runtime>:<id>` ([`Pattern::name`]):
    /// `podman:*` is any podman container, `*` any container.
    pub container: Option<Pattern>,
    pub uid: Option<u32>,
    /// Glob on the new name ([`Pattern::name`]).
    pub name: Option<Pattern>,
}

impl AllowEntry {
    pub fn applies_to(&self, rule: RuleId) -> bool {
        self.rules.as_ref().is_none_or(|r| r.contains(&rule))
    }

    /// Whether the rename of `process` to `new_name` is allowed by this
    /// entry. A field the entry sets never matches an unknown value.
    pub fn matches(&self, process: &ProcessContext, new_name: &Name) -> bool {
        fn field(pattern: &Option<Pattern>, value: Option<&[u8]>) -> bool {
            pattern
                .as_ref()
                .is_none_or(|p| value.is_some_and(|v| p.is_match(v)))
        }
        let container = self.container.as_ref().and_then(|_| {
            let c = process.cgroup.as_ref()?.container.as_ref()?;
            Some(format!("{}:{}", c.runtime, c.id))
        });
        field(
            &self.executable,
            process.executable.as_ref().map(Name::as_bytes),
        ) && field(&self.unit, process.unit.as_deref().map(str::as_bytes))
            && field(&self.container, container.as_deref().map(str::as_bytes))
            && self.uid.is_none_or(|uid| process.uid == Some(uid))
            && field(&self.name, Some(new_name.as_bytes()))
    }
}

/// Executables systemd ships, on merged-/usr hosts and older ones. Package
/// upgrades leave running copies as "<path> (deleted)", which `**` and the
/// `{, (deleted)}` alternates cover; only root can write any of these paths.
const SYSTEMD_EXECUTABLES: &str = "{{/usr,}/lib/systemd/**,{/usr,}/bin/systemd-*,\
{/usr,}/bin/{systemctl,journalctl,udevadm}{, (deleted)}}";

/// The built-in allow-list, kept unless `default_allowlist = false`.
pub fn default_allowlist() -> Vec<AllowEntry> {
    use RuleId::*;
    let entry = |rules: &[RuleId], executable: &str, name: &str| AllowEntry {
        rules: Some(rules.iter().copied().collect()),
        executable: Some(Pattern::path(executable).expect("built-in executable glob")),
        unit: None,
        container: None,
        uid: None,
        name: Some(Pattern::name(name).expect("built-in name glob")),
    };
    vec![
        // systemd names every process it forks "(...)" until it execs or
        // exits: PID 1 and systemd-executor call a service's process
        // "(<binary>)" before exec'ing it, the user manager forks "(sd-pam)",
        // udevd's workers are "(udev-worker)", and helpers fork "(sd-rmrf)",
        // "(sd-close)", "(sd-parse-elf)", "(fsck)", "(remount)"... Two of these
        // names are in the well-known list, and after an upgrade the running
        // binary shows as deleted, hence the three rules.
        entry(
            &[WritablePathStomp, SystemNameMimic, ProcessRenamed],
            SYSTEMD_EXECUTABLES,
            "(*)",
        ),
        // runc's nsexec names its stages "runc:[0:PARENT]", "runc:[1:CHILD]"
        // and "runc:[2:INIT]" at every container start (docker, containerd,
        // podman). Against CVE-2019-5736 it may run from a memfd copy of
        // itself, which shows as that memfd, deleted, or (runc 1.1, Debian
        // 12's) from a read-only bind mount of itself that it detached,
        // whose path the kernel gives as "/".
        entry(
            &[WritablePathStomp, ProcessRenamed],
            "{{/usr,/usr/local,}/{bin,sbin}/runc{, (deleted)},\
             /memfd:runc_cloned:/proc/self/exe (deleted),/}",
            r"runc:\[[0-2]:*\]",
        ),
        // Busybox runs applets without an exec (a shell's pipeline stage,
        // its last command re-executed as /proc/self/exe) and names the
        // process after the applet with prctl: "sh" becomes "ls", "exe"
        // becomes "sleep". It takes no name but its own applets', some of
        // which are system programs' (sh, su, crond, syslogd).
        entry(
            &[SystemNameMimic, ProcessRenamed],
            "{/usr,}/bin/busybox{, (deleted)}",
            "*",
        ),
        // tmux names its server and client processes "tmux: server" and
        // "tmux: client" through prctl.
        entry(
            &[ProcessRenamed],
            "{/usr,}/bin/tmux{, (deleted)}",
            "tmux: {server,client}",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(exe: Option<&str>, unit: Option<&str>, uid: Option<u32>) -> ProcessContext {
        ProcessContext {
            pid: 100,
            executable: exe.map(Name::from),
            unit: unit.map(str::to_owned),
            uid,
            ..Default::default()
        }
    }

    #[test]
    fn path_globs_stop_at_slash_and_name_globs_do_not() {
        let p = Pattern::path("/opt/app/*").unwrap();
        assert!(p.is_match(b"/opt/app/x"));
        assert!(!p.is_match(b"/opt/app/sub/x"));
        assert!(
            Pattern::path("/opt/app/**")
                .unwrap()
                .is_match(b"/opt/app/sub/x")
        );
        assert!(Pattern::name("kworker/*").unwrap().is_match(b"kworker/0:1"));
    }

    #[test]
    fn patterns_match_raw_bytes() {
        let p = Pattern::name("a*").unwrap();
        assert!(p.is_match(b"a\xff\n"));
        assert!(!p.is_match(b"b\xff"));
    }

    #[test]
    fn bad_globs_are_errors() {
        assert!(Pattern::name("[abc").is_err());
        assert!(Pattern::path("{a,b").is_err());
    }

    #[test]
    fn container_entries_match_runtime_and_id() {
        let id = "a3d8c93b933f1e285ee1602bddc545ead96ca81624e05e94aa25ad377e56e258";
        let e = AllowEntry {
            container: Some(Pattern::name("podman:*").unwrap()),
            ..AllowEntry::default()
        };
        let mut p = process(Some("/bin/sh"), None, Some(0));
        assert!(!e.matches(&p, &Name::from("x")), "not in a container");
        let path = format!("/libpod_parent/libpod-{id}");
        p.cgroup = Some(std::sync::Arc::new(crate::process::Cgroup::parse(
            path.as_bytes(),
        )));
        assert!(e.matches(&p, &Name::from("x")));
        let docker = AllowEntry {
            container: Some(Pattern::name("docker:*").unwrap()),
            ..AllowEntry::default()
        };
        assert!(!docker.matches(&p, &Name::from("x")));
    }

    #[test]
    fn every_given_field_must_match() {
        let e = AllowEntry {
            rules: None,
            executable: Some(Pattern::path("/usr/bin/app").unwrap()),
            unit: Some(Pattern::name("app@*.service").unwrap()),
            container: None,
            uid: Some(0),
            name: Some(Pattern::name("app-*").unwrap()),
        };
        let ok = process(Some("/usr/bin/app"), Some("app@1.service"), Some(0));
        assert!(e.matches(&ok, &Name::from("app-worker")));
        assert!(!e.matches(&ok, &Name::from("sshd")), "name differs");
        let mut p = ok.clone();
        p.uid = Some(1000);
        assert!(!e.matches(&p, &Name::from("app-worker")), "uid differs");
        p = ok.clone();
        p.unit = Some("other.service".into());
        assert!(!e.matches(&p, &Name::from("app-worker")), "unit differs");
        p = ok.clone();
        p.executable = Some(Name::from("/tmp/app"));
        assert!(!e.matches(&p, &Name::from("app-worker")), "exe differs");
    }

    #[test]
    fn a_field_never_matches_an_unknown_value() {
        let e = AllowEntry {
            unit: Some(Pattern::name("*").unwrap()),
            ..Default::default()
        };
        assert!(!e.matches(&process(Some("/x"), None, None), &Name::from("n")));
        let e = AllowEntry {
            uid: Some(0),
            ..Default::default()
        };
        assert!(!e.matches(&process(Some("/x"), None, None), &Name::from("n")));
        let e = AllowEntry {
            executable: Some(Pattern::path("**").unwrap()),
            ..Default::default()
        };
        assert!(!e.matches(&process(None, None, None), &Name::from("n")));
    }

    #[test]
    fn rules_limit_where_an_entry_applies() {
        let e = AllowEntry {
            rules: Some([RuleId::ProcessRenamed].into()),
            ..Default::default()
        };
        assert!(e.applies_to(RuleId::ProcessRenamed));
        assert!(!e.applies_to(RuleId::KernelThreadMimic));
        assert!(AllowEntry::default().applies_to(RuleId::KernelThreadMimic));
    }

    #[test]
    fn defaults_cover_systemd_runc_busybox_and_tmux_pairs_only() {
        let defaults = default_allowlist();
        let allowed = |exe: &str, name: &str, rule: RuleId| {
            defaults
                .iter()
                .filter(|e| e.applies_to(rule))
                .any(|e| e.matches(&process(Some(exe), None, Some(0)), &Name::from(name)))
        };
        use RuleId::*;
        for exe in [
            "/usr/lib/systemd/systemd",
            "/lib/systemd/systemd",
            "/usr/lib/systemd/systemd (deleted)",
            "/usr/lib/systemd/systemd-executor",
            "/usr/lib/systemd/systemd-coredump",
            "/usr/bin/udevadm",
            "/bin/udevadm",
            "/usr/bin/systemd-tmpfiles",
            "/usr/bin/systemctl (deleted)",
        ] {
            for name in ["(sd-pam)", "(udev-worker)", "(cron)", "(sd-rmrf)"] {
                assert!(allowed(exe, name, ProcessRenamed), "{exe} -> {name}");
                assert!(allowed(exe, name, SystemNameMimic), "{exe} -> {name}");
                assert!(allowed(exe, name, WritablePathStomp), "{exe} -> {name}");
                assert!(!allowed(exe, name, KernelThreadMimic), "{exe} -> {name}");
            }
            assert!(!allowed(exe, "sshd", ProcessRenamed), "{exe} -> sshd");
        }
        for exe in [
            "/usr/sbin/runc",
            "/usr/bin/runc",
            "/usr/local/sbin/runc",
            "/memfd:runc_cloned:/proc/self/exe (deleted)",
            "/",
        ] {
            for name in ["runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]"] {
                assert!(allowed(exe, name, WritablePathStomp), "{exe} -> {name}");
                assert!(allowed(exe, name, ProcessRenamed), "{exe} -> {name}");
            }
            assert!(!allowed(exe, "runc:[3:EVIL]", ProcessRenamed));
            assert!(!allowed(exe, "sshd", WritablePathStomp));
        }
        // Busybox's applets, never a kernel thread's name nor from a
        // writable copy.
        for exe in ["/usr/bin/busybox", "/bin/busybox"] {
            for name in ["ls", "sleep", "sh", "crond"] {
                assert!(allowed(exe, name, ProcessRenamed), "{exe} -> {name}");
                assert!(allowed(exe, name, SystemNameMimic), "{exe} -> {name}");
                assert!(!allowed(exe, name, WritablePathStomp), "{exe} -> {name}");
            }
            assert!(!allowed(exe, "kworker/0:1", KernelThreadMimic));
        }
        assert!(
            !allowed("/", "sleep", ProcessRenamed),
            "only runc's stages from /"
        );
        assert!(!allowed("/tmp/busybox", "sshd", SystemNameMimic));
        assert!(allowed("/usr/bin/tmux", "tmux: server", ProcessRenamed));
        assert!(!allowed("/usr/bin/tmux", "tmux: server", SystemNameMimic));
        // A user-writable copy of a system binary is not covered.
        for exe in [
            "/tmp/systemd",
            "/home/u/lib/systemd/systemd",
            "/memfd:payload (deleted)",
            "/tmp/runc",
            "/usr/lib/systemdx/x",
        ] {
            assert!(!allowed(exe, "(sd-pam)", WritablePathStomp), "{exe}");
            assert!(!allowed(exe, "runc:[2:INIT]", WritablePathStomp), "{exe}");
        }
    }
}
