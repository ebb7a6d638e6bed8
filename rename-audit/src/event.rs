//! What flows from the classify stage to rules and sinks: one enriched,
//! classified record. Serialization to ECS JSON lives in `output::ecs`.

use crate::names::Name;
use time::OffsetDateTime;

/// The kernel's vocabulary, defined once with its wire numbers in
/// `rename_audit_common`: how a rename was done, a record's accounting
/// class, and why one was lost.
pub use rename_audit_common::{Class, LostReason, Method};

/// The process a record is about, as the process table knew it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessContext {
    pub pid: u32,
    /// The main thread's name after the event.
    pub name: Name,
    /// Absolute path of the executable, every symlink resolved; `None` for
    /// kernel threads or unknown.
    pub executable: Option<Name>,
    /// Device and inode of the executable, when the kernel told them.
    pub executable_file: Option<crate::process::ExeFile>,
    /// Shared with the process table's image, not copied per event.
    pub args: std::sync::Arc<[Name]>,
    /// `args` holds only the first `rename_audit_common::ARGS_LEN` bytes.
    pub args_truncated: bool,
    pub start: Option<OffsetDateTime>,
    pub uid: Option<u32>,
    /// The systemd unit the process runs in, from its cgroup, if any.
    pub unit: Option<String>,
    /// Its cgroup (v2), with the container and pod it names.
    pub cgroup: Option<std::sync::Arc<crate::process::Cgroup>>,
    pub parent: Option<ParentContext>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParentContext {
    pub pid: u32,
    pub name: Option<Name>,
    pub executable: Option<Name>,
}

/// The task that caused a rename.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writer {
    pub pid: u32,
    pub tid: u32,
    pub name: Name,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    /// The renamed thread.
    pub tid: u32,
    pub old_name: Name,
    pub new_name: Name,
    /// The renamed thread is the main thread: the process name changed.
    pub main_thread: bool,
    pub method: Method,
    pub writer: Writer,
    /// The name the process got from its last exec.
    pub original_name: Name,
    /// Renames of this thread so far in this run, this one included.
    pub count: u64,
}

impl Rename {
    /// A sibling thread (same process, other tid) renamed the main thread.
    pub fn by_sibling(&self, pid: u32) -> bool {
        self.main_thread && self.writer.pid == pid && self.writer.tid != self.tid
    }
}

/// Renames of one thread counted in the kernel instead of sent one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub class: Class,
    pub tid: u32,
    pub count: u64,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    pub last_name: Name,
    /// This is the thread's last summary: it exited.
    pub thread_exited: bool,
}

/// A process hidden from `ps`: something is mounted over its `/proc/<pid>`
/// or over a path inside it (the event's process is the hidden one, read
/// through the daemon's own procfs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden {
    pub pid: u32,
    /// The process whose /proc entry was mounted over it, when the mount is
    /// a bind mount of another /proc/<pid>.
    pub covered_by: Option<u32>,
    /// Where the mount is, e.g. `/proc/4242` or `/proc/4242/comm`.
    pub mount_point: Name,
    /// What inside `/proc/<pid>` is covered (`comm`, `stat`, `task/4242`,
    /// ...); `None` when the mount covers the whole entry.
    pub entry: Option<Name>,
    /// Found at start-up or after a mount made while running.
    pub found: HiddenFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HiddenFound {
    /// In the mount table when the daemon started.
    StartUp,
    /// After a `mount` or `move_mount` the kernel reported.
    Mount,
}

impl HiddenFound {
    pub fn as_str(self) -> &'static str {
        match self {
            HiddenFound::StartUp => "start-up",
            HiddenFound::Mount => "mount",
        }
    }
}

/// A process found at start-up whose name or argv[0] a rule judged: it took
/// it before the daemon ran (or while it was stopped), so no rename or exec
/// was seen. Written only when a rule matched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The main thread's name when it was found.
    pub name: Name,
}

/// Which of a process's names a rule judged (ECS `masquerade.judged`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameSource {
    /// Its name: a rename's new name, the name an exec gave (the
    /// executable's file name), or the name found at start-up.
    Name,
    /// Its argv[0], as `ps aux` and `pgrep -f` show it.
    Argv0,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Name => "name",
            NameSource::Argv0 => "argv0",
        }
    }
}

/// The name an alert is about, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub source: NameSource,
    pub name: Name,
}

/// Records the kernel could not send, or (class `Output`, reason
/// `WriteFailed`) the daemon could not write, or (class `Sink`) a sink
/// could not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    pub class: Class,
    pub reason: LostReason,
    pub count: u64,
    /// With class `Sink`: which sink (`syslog`, `alertmanager`).
    pub sink: Option<&'static str>,
}

/// The daemon's own run began or ended (`agent-started`, `agent-stopped`):
/// the first and last record of every run, so that a store sees when a host
/// was watched, and a run with no `agent-stopped` ended without one (killed,
/// crashed, power lost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentRun {
    Started,
    /// The blind window since the previous run on this host: nothing was
    /// recorded from its last written record to this start. After a clean
    /// stop (a restart, a package upgrade) that record is its
    /// `agent-stopped`; after a kill or crash, the last one it saved.
    Gap {
        /// `@timestamp` of the previous run's last written record.
        since: OffsetDateTime,
        /// That run's `agent.ephemeral_id` and the record's sequence.
        previous_run: String,
        previous_sequence: u64,
        /// The previous run wrote its `agent-stopped` and ended cleanly.
        previous_stopped: bool,
        /// When this run started: the end of the gap.
        until: OffsetDateTime,
    },
    Stopped {
        reason: StopReason,
        /// The failure that stopped it, for `OutputFailed`.
        error: Option<String>,
    },
}

/// Why the daemon stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Sigterm,
    Sigint,
    /// The output failed for good (broken stdout, unwritable too long).
    OutputFailed,
    /// The capture side ended without being told to (its thread failed).
    CaptureEnded,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Sigterm => "sigterm",
            StopReason::Sigint => "sigint",
            StopReason::OutputFailed => "output-failed",
            StopReason::CaptureEnded => "capture-ended",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Rename(Rename),
    Summary(Summary),
    Lost(Lost),
    Hidden(Hidden),
    Agent(AgentRun),
    Found(Found),
}

/// `event.action` of a process found disguised when the daemon started.
pub const FOUND_AT_START_UP: &str = "disguise-found-at-start-up";

impl Body {
    /// ECS `event.action`.
    pub fn action(&self) -> &'static str {
        match self {
            Body::Rename(r) if r.main_thread => "process-renamed",
            Body::Rename(_) => "thread-renamed",
            Body::Summary(_) => "renames-summarized",
            Body::Lost(_) => "events-lost",
            Body::Hidden(_) => "process-hidden",
            Body::Agent(AgentRun::Started) => "agent-started",
            Body::Agent(AgentRun::Gap { .. }) => "monitoring-gap",
            Body::Agent(AgentRun::Stopped { .. }) => "agent-stopped",
            Body::Found(_) => FOUND_AT_START_UP,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// ECS `event.severity`, on the 0-100 scale Elastic's detection rules use.
    pub fn score(self) -> u8 {
        match self {
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// RFC 5424 / journald priority for an alert of this severity.
    pub fn syslog_priority(self) -> u8 {
        match self {
            Severity::Low => 5,      // notice
            Severity::Medium => 4,   // warning
            Severity::High => 3,     // err
            Severity::Critical => 2, // crit
        }
    }
}

/// What a rule adds to an event it matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub rule_id: &'static str,
    pub rule_name: &'static str,
    pub severity: Severity,
    /// MITRE ATT&CK technique id, where one applies.
    pub technique: Option<&'static str>,
    /// One human-readable line; built from escaped names only.
    pub message: String,
    /// Every rule that matched and was not allow-listed, most severe first:
    /// `rule_id` and then the others (ECS `rename.rules`).
    pub matched: Vec<&'static str>,
    /// The name the rule judged, for the name rules (ECS `masquerade.*`).
    pub judged: Option<Judged>,
}

/// This run of the daemon: a random (version 4) UUID drawn from the
/// kernel's random pool at first use, ECS `agent.ephemeral_id`.
/// `event.sequence` starts at 1 in every run; with this it identifies an
/// event across restarts and hosts (see `event.id`).
pub fn run_id() -> &'static str {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// One output record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `event.sequence`: increasing within a run.
    pub sequence: u64,
    /// Wall-clock time of the rename itself (not of its processing).
    pub timestamp: OffsetDateTime,
    pub host: std::sync::Arc<str>,
    /// The process concerned; `None` for lost-record reports.
    pub process: Option<ProcessContext>,
    pub body: Body,
    /// Set when a rule matched: the event becomes `event.kind` = "alert".
    pub alert: Option<Alert>,
}

impl Event {
    /// `event.id`: `<run id>-<sequence>`, unique across restarts and hosts.
    pub fn id(&self) -> String {
        format!("{}-{}", run_id(), self.sequence)
    }
}
