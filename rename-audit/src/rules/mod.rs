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

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use crate::event::{Alert, Body, Event, Hidden, Method, ProcessContext, Rename, Severity};
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

/// Why a rule matched; turned into the alert message.
#[derive(Debug, PartialEq, Eq)]
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
}

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
            enabled,
            writable_paths,
            system_names,
            allow,
        }
    }

    /// The alert for this event, if any rule matches it and the match is not
    /// allow-listed. Only renames a process made (`prctl`, `procfs`) are
    /// candidates. Every rule is checked: the alert carries the most severe
    /// match as its rule and lists all of them in [`Alert::matched`].
    pub fn evaluate(&self, ev: &Event, index: &dyn ProcessIndex) -> Option<Alert> {
        let rename = match &ev.body {
            Body::Rename(rename) => rename,
            Body::Hidden(hidden) => return self.hidden(ev, hidden),
            Body::Summary(_) | Body::Lost(_) | Body::Agent(_) => return None,
        };
        if matches!(rename.method, Method::Exec | Method::Kernel) {
            return None;
        }
        let process = ev.process.as_ref()?;
        let mut first: Option<(RuleId, Reason)> = None;
        let mut matched = Vec::new();
        for id in RuleId::ALL {
            if !self.enabled[id.index()] {
                continue;
            }
            let Some(reason) = self.check(id, process, rename, index) else {
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
        })
    }

    fn check(
        &self,
        id: RuleId,
        process: &ProcessContext,
        rename: &Rename,
        index: &dyn ProcessIndex,
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
                paths::writable(exe?, &self.writable_paths).map(Reason::Writable)
            }
            // Process names only: thread names collide with process names
            // all the time ("worker", "java") and nothing lists them by
            // process.
            RuleId::SystemNameMimic => {
                let exe = exe?;
                if !rename.main_thread || to_own_name {
                    return None;
                }
                if self.system_names.contains(new) {
                    return Some(Reason::WellKnownName);
                }
                let own = paths::strip_deleted(exe);
                index
                    .executables_named(new, process.pid)
                    .into_iter()
                    .find(|other| paths::strip_deleted(other.as_bytes()) != own)
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
