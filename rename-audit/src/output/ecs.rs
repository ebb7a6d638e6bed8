//! One [`Event`] as one ECS JSON line. The field list is documented in the
//! [module above](super); the structs here mirror it one to one and borrow
//! everything from the event, so a line costs no allocation unless a name
//! is not UTF-8.

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use super::encode::{ArgsHex, ArgsText, LineSafeFormatter, NumStr, Rfc3339Micros, text_and_hex};
use crate::event::{AgentRun, Alert, Body, Event, ParentContext, ProcessContext, run_id};
use crate::identity::Identity;
use crate::names::Name;

/// The ECS version whose field set the lines follow.
pub const ECS_VERSION: &str = "8.11.0";
/// `event.module`. An underscore, not the binary's hyphen, because Elastic
/// data stream names (which `event.dataset` feeds) reject hyphens and ECS
/// recommends the dataset start with the module name.
pub const EVENT_MODULE: &str = "rename_audit";
/// `event.dataset`.
pub const EVENT_DATASET: &str = "rename_audit.renames";
/// `threat.framework` of every technique id.
pub const THREAT_FRAMEWORK: &str = "MITRE ATT&CK";

/// Appends exactly one line for `ev` to `out`: a JSON object and `'\n'`.
///
/// No byte of any name can end the line early or add a field: serde_json
/// escapes quotes, backslashes and control bytes, and the formatter also
/// escapes DEL, C1 controls, U+2028/U+2029 and bidi controls.
pub fn write_json_line(ev: &Event, out: &mut Vec<u8>) {
    write_json_line_as(ev, crate::identity::current(), out);
}

/// [`write_json_line`] with the host and agent named by `identity`
/// (`None`: by `ev.host` alone).
pub fn write_json_line_as(ev: &Event, identity: Option<&Identity>, out: &mut Vec<u8>) {
    let start = out.len();
    let line = Line::new(ev, identity);
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, LineSafeFormatter);
    if let Err(err) = line.serialize(&mut ser) {
        // Unreachable with these types (a Vec never fails a write), but a
        // record must never vanish: keep its identity and say why.
        out.truncate(start);
        let fallback = Fallback {
            event: FallbackMeta {
                kind: "event",
                action: ev.body.action(),
                sequence: ev.sequence,
            },
            error: FallbackError {
                message: &err.to_string(),
            },
        };
        let mut ser = serde_json::Serializer::with_formatter(&mut *out, LineSafeFormatter);
        if fallback.serialize(&mut ser).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"{}");
        }
    }
    out.push(b'\n');
}

/// The journald / RFC 5424 priority for a line: an alert's severity, warning
/// for lost records, info for everything else.
pub fn syslog_priority(ev: &Event) -> u8 {
    match (&ev.alert, &ev.body) {
        (Some(alert), _) => alert.severity.syslog_priority(),
        (None, Body::Lost(_) | Body::Agent(AgentRun::Gap { .. })) => 4,
        (None, _) => 6,
    }
}

#[derive(Serialize)]
struct Fallback<'a> {
    event: FallbackMeta,
    error: FallbackError<'a>,
}

#[derive(Serialize)]
struct FallbackMeta {
    kind: &'static str,
    action: &'static str,
    sequence: u64,
}

#[derive(Serialize)]
struct FallbackError<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Rfc3339Micros,
    ecs: Ecs,
    event: EventMeta,
    agent: Agent<'a>,
    host: Host<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<ProcessOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    systemd: Option<Systemd<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<ContainerOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes: Option<Kubernetes<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rename: Option<RenameOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<SummaryOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost: Option<LostOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<HiddenOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<RunOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gap: Option<GapOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    masquerade: Option<MasqueradeOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat: Option<ThreatOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Serialize)]
struct EventMeta {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    type_: [&'static str; 1],
    action: &'static str,
    id: EventId,
    sequence: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<u8>,
    module: &'static str,
    dataset: &'static str,
}

/// `event.id`: `<agent.ephemeral_id>-<event.sequence>`, unique across
/// restarts and hosts (the run id is a random UUID), so downstream can drop
/// duplicates. Written straight into the line, without an allocation.
struct EventId(u64);

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}-{}", run_id(), self.0))
    }
}

/// ECS `agent`: this daemon, in `id` its install on this host (kept
/// across restarts and upgrades), and in `ephemeral_id` this run of it.
#[derive(Serialize)]
struct Agent<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    version: &'static str,
    ephemeral_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// ECS `host`: `name` (configured, or the kernel's host name, as the event
/// carries it) and `hostname` (the kernel's), then what the identity adds.
#[derive(Serialize)]
struct Host<'a> {
    name: &'a str,
    hostname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<OsOut<'a>>,
}

#[derive(Serialize)]
struct OsOut<'a> {
    kernel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct ProcessOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    executable: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    executable_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<ArgsText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args_hex: Option<ArgsHex<'a>>,
    /// Only when true: `args` holds only the first bytes of the arguments.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    args_truncated: bool,
    /// The executable's file (ECS has no `process.*` field for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    executable_file: Option<ExeFileOut>,
    /// The cgroup (v2) path (ECS has no field for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<CgroupOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<Rfc3339Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<ParentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread: Option<ThreadOut<'a>>,
}

#[derive(Serialize)]
struct CgroupOut<'a> {
    path: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_hex: Option<String>,
}

/// `device` as `major:minor`, `inode` as a number.
#[derive(Serialize)]
struct ExeFileOut {
    device: String,
    inode: u64,
}

#[derive(Serialize)]
struct User {
    id: NumStr,
}

#[derive(Serialize)]
struct ParentOut<'a> {
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    executable: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    executable_hex: Option<String>,
}

#[derive(Serialize)]
struct ThreadOut<'a> {
    id: u32,
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_hex: Option<String>,
}

/// ECS `container`: the container the process runs in, from its cgroup.
#[derive(Serialize)]
struct ContainerOut<'a> {
    id: &'a str,
    runtime: &'static str,
}

/// `kubernetes.pod.uid`, as Elastic's Kubernetes metadata names it.
#[derive(Serialize)]
struct Kubernetes<'a> {
    pod: Pod<'a>,
}

#[derive(Serialize)]
struct Pod<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Systemd<'a> {
    unit: &'a str,
}

#[derive(Serialize)]
struct RenameOut<'a> {
    old_name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_name_hex: Option<String>,
    new_name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_name_hex: Option<String>,
    main_thread: bool,
    method: &'static str,
    writer: WriterOut<'a>,
    original_name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_name_hex: Option<String>,
    count: u64,
    /// Alerts only: every rule that matched, most severe (`rule.id`) first.
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<&'a [&'static str]>,
}

#[derive(Serialize)]
struct WriterOut<'a> {
    pid: u32,
    tid: u32,
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_hex: Option<String>,
}

#[derive(Serialize)]
struct SummaryOut<'a> {
    count: u64,
    first_seen: Rfc3339Micros,
    last_seen: Rfc3339Micros,
    last_name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name_hex: Option<String>,
    class: &'static str,
    thread_exited: bool,
}

/// `masquerade`: the name a name rule judged, and which name it is (`name`
/// or `argv0`).
#[derive(Serialize)]
struct MasqueradeOut<'a> {
    judged: &'static str,
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_hex: Option<String>,
    /// Every rule that matched, where no `rename.rules` lists them (a
    /// process found at start-up).
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<&'a [&'static str]>,
}

/// `hidden`: a /proc/<pid>, or a path in it, with something mounted over it.
#[derive(Serialize)]
struct HiddenOut<'a> {
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    covered_by: Option<CoveredBy>,
    mount_point: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_point_hex: Option<String>,
    /// The covered path inside `/proc/<pid>`; absent when the mount covers
    /// the whole entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_hex: Option<String>,
    found: &'static str,
}

/// `run`: the daemon's own run, on `agent-started` and `agent-stopped`.
#[derive(Serialize)]
struct RunOut<'a> {
    /// The daemon's pid.
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// `gap`: the blind window between the previous run's last record and
/// this start.
#[derive(Serialize)]
struct GapOut<'a> {
    start: Rfc3339Micros,
    end: Rfc3339Micros,
    previous_ephemeral_id: &'a str,
    previous_sequence: u64,
    previous_stopped: bool,
}

#[derive(Serialize)]
struct CoveredBy {
    pid: u32,
}

#[derive(Serialize)]
struct LostOut {
    count: u64,
    class: &'static str,
    reason: &'static str,
}

#[derive(Serialize)]
struct RuleOut {
    id: &'static str,
    name: &'static str,
    /// The severity label; ECS has no field for it, `event.severity` holds
    /// the number.
    severity: &'static str,
}

#[derive(Serialize)]
struct ThreatOut {
    framework: &'static str,
    technique: Technique,
}

#[derive(Serialize)]
struct Technique {
    id: [&'static str; 1],
    reference: [String; 1],
}

/// `(text, hex)` of an optional name, each `None` when the name is.
fn opt_name(name: Option<&Name>) -> (Option<Cow<'_, str>>, Option<String>) {
    match name {
        Some(n) => {
            let (text, hex) = text_and_hex(n);
            (Some(text), hex)
        }
        None => (None, None),
    }
}

impl<'a> Line<'a> {
    fn new(ev: &'a Event, identity: Option<&'a Identity>) -> Self {
        let alert = ev.alert.as_ref();
        let thread = match &ev.body {
            Body::Rename(r) => Some(ThreadOut::new(r.tid, &r.new_name)),
            Body::Summary(s) => Some(ThreadOut::new(s.tid, &s.last_name)),
            Body::Lost(_) | Body::Hidden(_) | Body::Agent(_) | Body::Found(_) => None,
        };
        let process = match (&ev.process, thread) {
            (Some(ctx), thread) => Some(ProcessOut::new(ctx, thread)),
            (None, Some(thread)) => Some(ProcessOut::thread_only(thread)),
            (None, None) => None,
        };
        let cgroup = ev.process.as_ref().and_then(|p| p.cgroup.as_deref());
        Line {
            timestamp: Rfc3339Micros(ev.timestamp),
            ecs: Ecs {
                version: ECS_VERSION,
            },
            event: EventMeta {
                kind: if alert.is_some() { "alert" } else { "event" },
                category: ["process"],
                type_: match ev.body {
                    Body::Rename(_) => ["change"],
                    Body::Summary(_)
                    | Body::Lost(_)
                    | Body::Hidden(_)
                    | Body::Found(_)
                    | Body::Agent(AgentRun::Gap { .. }) => ["info"],
                    Body::Agent(AgentRun::Started) => ["start"],
                    Body::Agent(AgentRun::Stopped { .. }) => ["end"],
                },
                action: ev.body.action(),
                id: EventId(ev.sequence),
                sequence: ev.sequence,
                severity: alert.map(|a| a.severity.score()),
                module: EVENT_MODULE,
                dataset: EVENT_DATASET,
            },
            agent: Agent {
                type_: "rename-audit",
                version: env!("CARGO_PKG_VERSION"),
                ephemeral_id: run_id(),
                id: identity.map(|i| i.agent_id.as_str()),
                name: identity.map(|i| i.agent_name.as_str()),
            },
            host: Host {
                name: &ev.host,
                hostname: identity.map_or(&*ev.host, |i| i.hostname.as_str()),
                id: identity.and_then(|i| i.id.as_deref()),
                os: identity.map(|i| OsOut {
                    kernel: &i.os.kernel,
                    name: i.os.name.as_deref(),
                    version: i.os.version.as_deref(),
                }),
            },
            labels: identity.map(|i| &i.labels).filter(|l| !l.is_empty()),
            process,
            systemd: ev
                .process
                .as_ref()
                .and_then(|p| p.unit.as_deref())
                .map(|unit| Systemd { unit }),
            container: cgroup
                .and_then(|c| c.container.as_ref())
                .map(|c| ContainerOut {
                    id: &c.id,
                    runtime: c.runtime,
                }),
            kubernetes: cgroup
                .and_then(|c| c.pod_uid.as_deref())
                .map(|uid| Kubernetes { pod: Pod { uid } }),
            rename: match &ev.body {
                Body::Rename(r) => {
                    let (old_name, old_name_hex) = text_and_hex(&r.old_name);
                    let (new_name, new_name_hex) = text_and_hex(&r.new_name);
                    let (original_name, original_name_hex) = text_and_hex(&r.original_name);
                    let (writer_name, writer_name_hex) = text_and_hex(&r.writer.name);
                    Some(RenameOut {
                        old_name,
                        old_name_hex,
                        new_name,
                        new_name_hex,
                        main_thread: r.main_thread,
                        method: r.method.as_str(),
                        writer: WriterOut {
                            pid: r.writer.pid,
                            tid: r.writer.tid,
                            name: writer_name,
                            name_hex: writer_name_hex,
                        },
                        original_name,
                        original_name_hex,
                        count: r.count,
                        rules: alert.map(|a| a.matched.as_slice()),
                    })
                }
                _ => None,
            },
            summary: match &ev.body {
                Body::Summary(s) => {
                    let (last_name, last_name_hex) = text_and_hex(&s.last_name);
                    Some(SummaryOut {
                        count: s.count,
                        first_seen: Rfc3339Micros(s.first_seen),
                        last_seen: Rfc3339Micros(s.last_seen),
                        last_name,
                        last_name_hex,
                        class: s.class.as_str(),
                        thread_exited: s.thread_exited,
                    })
                }
                _ => None,
            },
            lost: match &ev.body {
                Body::Lost(l) => Some(LostOut {
                    count: l.count,
                    class: l.class.as_str(),
                    reason: l.reason.as_str(),
                }),
                _ => None,
            },
            hidden: match &ev.body {
                Body::Hidden(h) => {
                    let (mount_point, mount_point_hex) = text_and_hex(&h.mount_point);
                    let (entry, entry_hex) = opt_name(h.entry.as_ref());
                    Some(HiddenOut {
                        pid: h.pid,
                        covered_by: h.covered_by.map(|pid| CoveredBy { pid }),
                        mount_point,
                        mount_point_hex,
                        entry,
                        entry_hex,
                        found: h.found.as_str(),
                    })
                }
                _ => None,
            },
            run: match &ev.body {
                Body::Agent(run) => Some(match run {
                    AgentRun::Started | AgentRun::Gap { .. } => RunOut {
                        pid: std::process::id(),
                        stop_reason: None,
                        error: None,
                    },
                    AgentRun::Stopped { reason, error } => RunOut {
                        pid: std::process::id(),
                        stop_reason: Some(reason.as_str()),
                        error: error.as_deref(),
                    },
                }),
                _ => None,
            },
            gap: match &ev.body {
                Body::Agent(AgentRun::Gap {
                    since,
                    previous_run,
                    previous_sequence,
                    previous_stopped,
                    until,
                }) => Some(GapOut {
                    start: Rfc3339Micros(*since),
                    end: Rfc3339Micros(*until),
                    previous_ephemeral_id: previous_run,
                    previous_sequence: *previous_sequence,
                    previous_stopped: *previous_stopped,
                }),
                _ => None,
            },
            masquerade: alert
                .and_then(|a| Some((a, a.judged.as_ref()?)))
                .map(|(a, j)| {
                    let (name, name_hex) = text_and_hex(&j.name);
                    MasqueradeOut {
                        judged: j.source.as_str(),
                        name,
                        name_hex,
                        rules: matches!(ev.body, Body::Found(_)).then_some(a.matched.as_slice()),
                    }
                }),
            rule: alert.map(|a| RuleOut {
                id: a.rule_id,
                name: a.rule_name,
                severity: a.severity.as_str(),
            }),
            threat: alert.and_then(ThreatOut::of),
            message: alert.map(|a| a.message.as_str()),
        }
    }
}

impl<'a> ProcessOut<'a> {
    fn new(ctx: &'a ProcessContext, thread: Option<ThreadOut<'a>>) -> Self {
        let (name, name_hex) = text_and_hex(&ctx.name);
        let (executable, executable_hex) = opt_name(ctx.executable.as_ref());
        ProcessOut {
            pid: Some(ctx.pid),
            name: Some(name),
            name_hex,
            executable,
            executable_hex,
            args: Some(ArgsText(&ctx.args)),
            args_hex: ArgsHex::of(&ctx.args),
            args_truncated: ctx.args_truncated,
            cgroup: ctx.cgroup.as_ref().map(|c| {
                let (path, path_hex) = text_and_hex(&c.path);
                CgroupOut { path, path_hex }
            }),
            executable_file: ctx.executable_file.map(|f| ExeFileOut {
                device: format!("{}:{}", f.major, f.minor),
                inode: f.inode,
            }),
            start: ctx.start.map(Rfc3339Micros),
            user: ctx.uid.map(|uid| User { id: NumStr(uid) }),
            parent: ctx.parent.as_ref().map(ParentOut::new),
            thread,
        }
    }

    /// A summary whose process the table no longer knew: only the thread.
    fn thread_only(thread: ThreadOut<'a>) -> Self {
        ProcessOut {
            pid: None,
            name: None,
            name_hex: None,
            executable: None,
            executable_hex: None,
            args: None,
            args_hex: None,
            args_truncated: false,
            executable_file: None,
            cgroup: None,
            start: None,
            user: None,
            parent: None,
            thread: Some(thread),
        }
    }
}

impl<'a> ParentOut<'a> {
    fn new(p: &'a ParentContext) -> Self {
        let (name, name_hex) = opt_name(p.name.as_ref());
        let (executable, executable_hex) = opt_name(p.executable.as_ref());
        ParentOut {
            pid: p.pid,
            name,
            name_hex,
            executable,
            executable_hex,
        }
    }
}

impl<'a> ThreadOut<'a> {
    fn new(id: u32, name: &'a Name) -> Self {
        let (name, name_hex) = text_and_hex(name);
        ThreadOut { id, name, name_hex }
    }
}

impl ThreatOut {
    fn of(alert: &Alert) -> Option<Self> {
        let id = alert.technique?;
        Some(ThreatOut {
            framework: THREAT_FRAMEWORK,
            technique: Technique {
                id: [id],
                reference: [technique_reference(id)],
            },
        })
    }
}

/// `T1036.004` -> `https://attack.mitre.org/techniques/T1036/004/`.
fn technique_reference(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        id.replace('.', "/")
    )
}
