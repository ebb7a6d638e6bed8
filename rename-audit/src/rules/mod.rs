//! Alert rules: which renames are a process disguising itself.
//!
//! [`RuleEngine::evaluate`] looks at one rename at a time and checks every
//! rule, most severe first; the most severe match that is not allow-listed
//! becomes the alert's rule, and the alert lists every such match. Only
//! renames a process chose are candidates: exec renames just set the name the
//! program was started with, and kernel renames (workqueue workers, io_uring
//! and vhost threads) carry names the kernel picked, not the process.
//!
//! Each concern has its own file: the kernel-thread name shapes
//! (`kernel_names.rs`), the well-known system program names
//! (`system_names.rs`), the writable executable locations (`paths.rs`), the
//! allow-lists and their defaults (`allow.rs`) and the alert text
//! (`message.rs`).

mod allow;
mod kernel_names;
mod message;
mod paths;
mod system_names;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use crate::event::{
    Alert, Body, Event, Hidden, Judged, Method, NameSource, ProcessContext, Rename, Severity,
};
use crate::names::Name;
use crate::process::ProcessIndex;

pub use allow::{AllowConfig, AllowEntry, default_allowlist};
pub use kernel_names::is_kernel_thread_shaped;

/// A built-in rule. The order of [`RuleId::ALL`] is the evaluation order:
/// most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    KernelThreadMimic,
    WritablePathStomp,
    SystemNameMimic,
    /// Not about a rename: a process hidden from `ps` by a mount over its
    /// /proc entry, which masquerading processes do too.
    ProcessHidden,
    SiblingRenamedMain,
    ProcessRenamed,
}

/// Number of rules.
const RULES: usize = 6;

impl RuleId {
    /// Most severe first, in declaration order ([`RuleId::index`]).
    pub const ALL: [RuleId; RULES] = [
        RuleId::KernelThreadMimic,
        RuleId::WritablePathStomp,
        RuleId::SystemNameMimic,
        RuleId::ProcessHidden,
        RuleId::SiblingRenamedMain,
        RuleId::ProcessRenamed,
    ];

    /// `rule.id`, also the key under `[rules]` in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::KernelThreadMimic => "kernel-thread-mimic",
            RuleId::WritablePathStomp => "writable-path-stomp",
            RuleId::SystemNameMimic => "system-name-mimic",
            RuleId::SiblingRenamedMain => "sibling-renamed-main",
            RuleId::ProcessRenamed => "process-renamed",
            RuleId::ProcessHidden => "process-hidden",
        }
    }

    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == id)
    }

    /// `rule.name`: what a human reads in an alert list.
    pub fn name(self) -> &'static str {
        match self {
            RuleId::KernelThreadMimic => "Executable masquerading as a kernel thread",
            RuleId::WritablePathStomp => "Process name stomping from a writable location",
            RuleId::SystemNameMimic => "Process masquerading as a system program",
            RuleId::SiblingRenamedMain => "Main thread renamed by a sibling thread",
            RuleId::ProcessRenamed => "Process renamed itself",
            RuleId::ProcessHidden => "Process hidden by a mount over its /proc entry",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            RuleId::KernelThreadMimic => Severity::Critical,
            RuleId::WritablePathStomp | RuleId::SystemNameMimic | RuleId::ProcessHidden => {
                Severity::High
            }
            RuleId::SiblingRenamedMain => Severity::Medium,
            RuleId::ProcessRenamed => Severity::Low,
        }
    }

    /// MITRE ATT&CK technique, where one applies.
    pub fn technique(self) -> Option<&'static str> {
        match self {
            RuleId::KernelThreadMimic | RuleId::SystemNameMimic => Some("T1036.004"),
            RuleId::WritablePathStomp => Some("T1036.005"),
            // Hide Artifacts: Atomic Red Team files its test of this trick
            // (a kernel thread's /proc entry bound over one's own) under
            // T1036.004, but what it does is hide the process.
            RuleId::ProcessHidden => Some("T1564"),
            RuleId::SiblingRenamedMain | RuleId::ProcessRenamed => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[rules]` part of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulesConfig {
    /// Rules switched off (`[rules.<id>] enabled = false`).
    pub disabled: BTreeSet<RuleId>,
    /// Extra writable locations for `writable-path-stomp`, as absolute
    /// directory paths without a trailing slash.
    pub writable_paths: Vec<PathBuf>,
    /// Extra well-known names for `system-name-mimic`, at most 15 bytes each.
    pub system_names: Vec<Name>,
}

impl RulesConfig {
    pub fn enabled(&self, rule: RuleId) -> bool {
        !self.disabled.contains(&rule)
    }
}

/// When a name is judged without a rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// The exec that gave the process its name and argv[0].
    Exec,
    /// Found running when the daemon started.
    StartUp,
}

/// Why a rule matched; turned into the alert message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reason {
    KernelShape,
    Writable(paths::Writable),
    WellKnownName,
    NameOfRunning(Name),
    SiblingRename,
    Renamed,
}

/// The built-in rules with their configuration and allow-lists, ready to run.
#[derive(Clone, Debug)]
pub struct RuleEngine {
    enabled: [bool; RULES],
    writable_paths: Vec<Vec<u8>>,
    system_names: HashSet<Vec<u8>>,
    /// Allow entries that apply to each rule, indexed by [`RuleId::index`].
    allow: [Vec<AllowEntry>; RULES],
    /// Who can write each process's executable, read once per (pid,
    /// executable, inode): a process renaming its main thread thousands of
    /// times a second must not cost a walk of its directories each time.
    /// Emptied when it holds [`WRITABLE_CACHE`] entries.
    writable_cache: std::cell::RefCell<HashMap<WritableKey, Option<paths::Writable>>>,
    /// The directories above executables, read at most once a second per
    /// mount namespace ([`paths::DirCache`]).
    dir_cache: std::cell::RefCell<paths::DirCache>,
}

type WritableKey = (u32, Vec<u8>, Option<u64>);

/// Entries of [`RuleEngine::writable_cache`] before it is emptied.
const WRITABLE_CACHE: usize = 4096;

impl RuleEngine {
    /// Builds the engine. The configuration was validated when it was read,
    /// so this cannot fail.
    pub fn new(rules: &RulesConfig, allow: &AllowConfig) -> RuleEngine {
        let enabled = RuleId::ALL.map(|id| rules.enabled(id));
        let writable_paths = rules
            .writable_paths
            .iter()
            .map(|p| {
                use std::os::unix::ffi::OsStrExt as _;
                p.as_os_str().as_bytes().to_vec()
            })
            .collect();
        let system_names = system_names::WELL_KNOWN
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .chain(rules.system_names.iter().map(|n| n.as_bytes().to_vec()))
            .collect();
        let defaults = if allow.default_allowlist {
            default_allowlist()
        } else {
            Vec::new()
        };
        let allow = RuleId::ALL.map(|id| {
            allow
                .entries
                .iter()
                .chain(defaults.iter())
                .filter(|e| e.applies_to(id))
                .cloned()
                .collect()
        });
        RuleEngine {
            writable_cache: Default::default(),
            dir_cache: Default::default(),
            enabled,
            writable_paths,
            system_names,
            allow,
        }
    }

    /// The alert for this event, if any rule matches it and the match is not
    /// allow-listed. Every rule is checked: the alert carries the most severe
    /// match as its rule and lists all of them in [`Alert::matched`].
    ///
    /// A rename a process made (`prctl`, `procfs`) is judged by every rule;
    /// one that keeps the name it had matches none (the name was judged
    /// when it was taken). An exec is judged by the name it gives (the
    /// executable's file name) and by its argv[0]; a process found at
    /// start-up by its name and argv[0] ([`Body::Found`]). Kernel renames
    /// carry names the kernel picked and are never judged.
    pub fn evaluate(&self, ev: &Event, index: &dyn ProcessIndex) -> Option<Alert> {
        let rename = match &ev.body {
            Body::Rename(rename) => rename,
            Body::Hidden(hidden) => return self.hidden(ev, hidden),
            Body::Found(found) => {
                return self.judge_names(ev.process.as_ref()?, Moment::StartUp, &found.name, index);
            }
            Body::Summary(_) | Body::Lost(_) | Body::Agent(_) => return None,
        };
        let process = ev.process.as_ref()?;
        match rename.method {
            Method::Kernel => return None,
            Method::Exec => {
                return self.judge_names(process, Moment::Exec, &rename.new_name, index);
            }
            Method::Prctl | Method::Procfs => {}
        }
        if rename.old_name == rename.new_name {
            return None;
        }
        let writable = std::cell::OnceCell::new();
        let mut first: Option<(RuleId, Reason)> = None;
        let mut matched = Vec::new();
        for id in RuleId::ALL {
            if !self.enabled[id.index()] {
                continue;
            }
            let Some(reason) = self.check(id, process, rename, index, &writable) else {
                continue;
            };
            if self.allow[id.index()]
                .iter()
                .any(|e| e.matches(process, &rename.new_name))
            {
                continue;
            }
            matched.push(id.as_str());
            if first.is_none() {
                first = Some((id, reason));
            }
        }
        let (id, reason) = first?;
        Some(Alert {
            rule_id: id.as_str(),
            rule_name: id.name(),
            severity: id.severity(),
            technique: id.technique(),
            message: message::build(process, rename, &reason),
            matched,
            judged: Some(Judged {
                source: NameSource::Name,
                name: rename.new_name.clone(),
            }),
        })
    }

    /// Judges the names a process shows without a rename: the name an exec
    /// gave it or it had at start-up (`name`), and its argv[0] when that
    /// names another program. Only the name rules apply, and
    /// `writable-path-stomp` only together with one of them: running a
    /// binary from /tmp is no disguise, naming it `sshd` is.
    fn judge_names(
        &self,
        process: &ProcessContext,
        moment: Moment,
        name: &Name,
        index: &dyn ProcessIndex,
    ) -> Option<Alert> {
        let exe = process.executable.as_ref()?.as_bytes();
        let writable = std::cell::OnceCell::new();
        let mut candidates = vec![(NameSource::Name, name.clone())];
        if let Some(argv0) = self.argv0_name(process, name, index) {
            candidates.push((NameSource::Argv0, argv0));
        }
        // Per rule: the first candidate that matched it, with its reason.
        let mut found: [Option<(NameSource, Name, Reason)>; RULES] = Default::default();
        for (source, judged) in candidates {
            let n = judged.as_bytes();
            let kernel = is_kernel_thread_shaped(n);
            let claimed = system_names::claimed(n);
            let well_known = self.system_names.contains(&n[..n.len().min(15)])
                || self.system_names.contains(claimed);
            if !kernel && !well_known {
                continue;
            }
            let drop_zone = self.writable_of(process, index, &writable);
            // At exec and start-up the name may be a symlink's (`sh` for
            // dash, busybox applets): only a dropped binary is judged by it.
            // An argv[0] naming another program is chosen by the caller.
            let system = well_known
                && !self.own_program(claimed, exe, drop_zone.is_some())
                && (source == NameSource::Argv0 || drop_zone.is_some());
            let mut hits = Vec::new();
            if kernel {
                hits.push((RuleId::KernelThreadMimic, Reason::KernelShape));
            }
            if system {
                hits.push((RuleId::SystemNameMimic, Reason::WellKnownName));
            }
            if (kernel || system)
                && let Some(w) = drop_zone
            {
                hits.push((RuleId::WritablePathStomp, Reason::Writable(w.clone())));
            }
            for (id, reason) in hits {
                if !self.enabled[id.index()] || found[id.index()].is_some() {
                    continue;
                }
                if self.allow[id.index()]
                    .iter()
                    .any(|e| e.matches(process, &judged))
                {
                    continue;
                }
                found[id.index()] = Some((source, judged.clone(), reason));
            }
        }
        let matched: Vec<&'static str> = RuleId::ALL
            .into_iter()
            .filter(|id| found[id.index()].is_some())
            .map(RuleId::as_str)
            .collect();
        let id = RuleId::ALL
            .into_iter()
            .find(|id| found[id.index()].is_some())?;
        let (source, judged, reason) = found[id.index()].take()?;
        Some(Alert {
            rule_id: id.as_str(),
            rule_name: id.name(),
            severity: id.severity(),
            technique: id.technique(),
            message: message::judged(process, moment, source, &judged, &reason),
            matched,
            judged: Some(Judged {
                source,
                name: judged,
            }),
        })
    }

    /// argv[0] as `ps` shows it, when it names something other than the
    /// process's own program: a path to the executable itself (the same file)
    /// or to a program of the process's own name is not, nor is argv[0]
    /// equal to that name. A login shell's `-bash` is judged and matches
    /// nothing. A path is judged by its file name; any other argv[0] whole,
    /// since `[kworker/0:1]` and `sshd: root@pts/0` hold slashes too.
    fn argv0_name(
        &self,
        process: &ProcessContext,
        name: &Name,
        index: &dyn ProcessIndex,
    ) -> Option<Name> {
        let argv0 = process.args.first()?.as_bytes();
        let exe = process.executable.as_ref()?.as_bytes();
        let is_path =
            argv0.starts_with(b"/") || argv0.starts_with(b"./") || argv0.starts_with(b"../");
        let judged = if is_path {
            paths::comm_of(argv0)
        } else {
            argv0
        };
        let cut = |n: &[u8]| n[..n.len().min(15)].to_vec();
        if judged.is_empty()
            || cut(judged) == cut(name.as_bytes())
            || cut(judged) == paths::comm_of(exe)
        {
            return None;
        }
        // Only a name a rule could match is worth a look at the file
        // system: most absolute argv[0]s name ordinary programs.
        let suspect = is_kernel_thread_shaped(judged)
            || self.system_names.contains(&cut(judged))
            || self.system_names.contains(system_names::claimed(judged));
        if suspect && argv0.starts_with(b"/") && self.same_file(process, argv0, index) {
            return None;
        }
        Some(Name::new(judged))
    }

    /// Whether the absolute `path`, in the process's root, is its executable.
    /// A process that has already exited (a maintainer script run as
    /// `/bin/sh <script>`, where /bin/sh links to dash) has no root left:
    /// then the host's file at `path` decides, trusted only when it is the
    /// executable's very file (same device and inode).
    fn same_file(&self, process: &ProcessContext, path: &[u8], index: &dyn ProcessIndex) -> bool {
        use std::os::unix::ffi::OsStrExt as _;
        use std::os::unix::fs::MetadataExt as _;
        let Some(file) = process.executable_file else {
            return false;
        };
        let at = |root: &std::path::Path| {
            let mut full = root.as_os_str().as_bytes().to_vec();
            full.extend_from_slice(path);
            std::fs::metadata(std::ffi::OsStr::from_bytes(&full)).ok()
        };
        if let Some(root) = index.root_of(process.pid)
            && root.exists()
        {
            return at(&root).is_some_and(|m| m.ino() == file.inode);
        }
        at(std::path::Path::new("")).is_some_and(|m| {
            m.ino() == file.inode
                && libc::major(m.dev()) == file.major
                && libc::minor(m.dev()) == file.minor
        })
    }

    /// Whether a name claimed by `claimed` belongs to the program `exe`: an
    /// installed binary whose file name is that name or starts with it
    /// (`sshd-session` shows as `sshd: user@pts/0`, `php-fpm8.2` as
    /// `php-fpm: pool www`). A dropped binary is nobody's system program,
    /// whatever its file is called.
    fn own_program(&self, claimed: &[u8], exe: &[u8], dropped: bool) -> bool {
        let own = paths::comm_of(exe);
        let claimed = &claimed[..claimed.len().min(15)];
        !dropped && !claimed.is_empty() && own.starts_with(claimed)
    }

    /// Who besides root could have written the process's executable, read
    /// once per judgment.
    fn writable_of<'a>(
        &self,
        process: &ProcessContext,
        index: &dyn ProcessIndex,
        cell: &'a std::cell::OnceCell<Option<paths::Writable>>,
    ) -> &'a Option<paths::Writable> {
        cell.get_or_init(|| {
            let exe = process.executable.as_ref()?.as_bytes();
            let key = (
                process.pid,
                exe.to_vec(),
                process.executable_file.map(|f| f.inode),
            );
            if let Some(known) = self.writable_cache.borrow().get(&key) {
                return known.clone();
            }
            let own_root = index.root_of(process.pid);
            // The maps are read only when an owner is not root (see
            // `Lookup::ns_root`).
            let ns_root = || {
                let dir = own_root.as_ref()?.parent()?;
                let id = |map| paths::mapped_root(&std::fs::read_to_string(dir.join(map)).ok()?);
                Some((id("uid_map")?, id("gid_map")?))
            };
            let lookup = paths::Lookup {
                roots: own_root
                    .iter()
                    .map(|root| paths::Root {
                        path: root.clone(),
                        mnt_ns: paths::mnt_ns_of(root),
                    })
                    .chain([paths::Root {
                        path: PathBuf::new(),
                        mnt_ns: Some(0),
                    }])
                    .collect(),
                inode: process.executable_file.map(|f| f.inode),
                ns_root: &ns_root,
                dirs: Some(&self.dir_cache),
            };
            let found = paths::writable(exe, &self.writable_paths, Some(&lookup));
            let mut cache = self.writable_cache.borrow_mut();
            if cache.len() >= WRITABLE_CACHE {
                cache.clear();
            }
            cache.insert(key, found.clone());
            found
        })
    }

    /// A hidden process is always alerted on, unless the rule is off.
    fn hidden(&self, ev: &Event, hidden: &Hidden) -> Option<Alert> {
        let id = RuleId::ProcessHidden;
        if !self.enabled[id.index()] {
            return None;
        }
        Some(Alert {
            rule_id: id.as_str(),
            rule_name: id.name(),
            severity: id.severity(),
            technique: id.technique(),
            message: message::hidden(ev.process.as_ref(), hidden),
            matched: vec![id.as_str()],
            judged: None,
        })
    }

    fn check(
        &self,
        id: RuleId,
        process: &ProcessContext,
        rename: &Rename,
        index: &dyn ProcessIndex,
        writable: &std::cell::OnceCell<Option<paths::Writable>>,
    ) -> Option<Reason> {
        let new = rename.new_name.as_bytes();
        let exe = process.executable.as_ref().map(Name::as_bytes);
        // Renaming to the name of one's own executable restores the usual
        // name (daemons do it after a re-exec, avahi-daemon at start): not a
        // disguise, and not a change worth a low alert either.
        let to_own_name = exe.is_some_and(|exe| new == paths::comm_of(exe));
        let changed = rename.old_name != rename.new_name;
        match id {
            // Thread renames count too: `ps -L`, `top -H` and most EDR
            // process trees show thread names, and no user-space program has
            // a reason to name any of its threads like a kernel thread.
            RuleId::KernelThreadMimic => {
                (exe.is_some() && is_kernel_thread_shaped(new)).then_some(Reason::KernelShape)
            }
            RuleId::WritablePathStomp => {
                if !rename.main_thread {
                    return None;
                }
                exe?;
                self.writable_of(process, index, writable)
                    .clone()
                    .map(Reason::Writable)
            }
            // Process names only: thread names collide with process names
            // all the time ("worker", "java") and nothing lists them by
            // process.
            RuleId::SystemNameMimic => {
                let exe = exe?;
                if !rename.main_thread || to_own_name {
                    return None;
                }
                // `sshd: root` claims sshd as much as `sshd` does.
                let claimed = system_names::claimed(new);
                if self.system_names.contains(new)
                    || (self.system_names.contains(claimed)
                        && !self.own_program(
                            claimed,
                            exe,
                            self.writable_of(process, index, writable).is_some(),
                        ))
                {
                    return Some(Reason::WellKnownName);
                }
                let own = paths::strip_deleted(exe);
                index
                    .find_executable_named(new, process.pid, &mut |other| {
                        paths::strip_deleted(other.as_bytes()) != own
                    })
                    .map(Reason::NameOfRunning)
            }
            RuleId::SiblingRenamedMain => {
                (changed && rename.by_sibling(process.pid)).then_some(Reason::SiblingRename)
            }
            RuleId::ProcessRenamed => {
                (changed && rename.main_thread && !to_own_name).then_some(Reason::Renamed)
            }
            RuleId::ProcessHidden => None,
        }
    }
}
