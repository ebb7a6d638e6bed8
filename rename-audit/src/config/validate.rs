//! Semantic checks: ranges, paths, addresses, globs. Each problem is recorded
//! at the span of the value at fault and the default is used in its place,
//! so that one run reports every problem.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::collect::Problem;
use super::sinks::endpoint_of;
use super::{
    AlertmanagerSink, CaptureConfig, Config, Facility, HostConfig, OutputConfig, OutputTarget,
    PrometheusSink, SinksConfig, StormConfig, SyslogSink, SyslogTarget, raw,
};
use crate::names::Name;
use crate::rules::{AllowConfig, AllowEntry, RuleId, RulesConfig};
use crate::util::glob::{Pattern, PatternError};

/// Largest ring accepted: far beyond any sensible size, well within what
/// the kernel allows for a BPF ring buffer.
const MAX_RING_BYTES: u64 = 1 << 30;
const MAX_QUEUE: u64 = 1 << 20;
/// A task name holds at most this many bytes.
const COMM_LEN: usize = 15;

/// Storm rates and bursts, per second and per thread.
pub const RATE: RangeInclusive<u64> = 1..=u32::MAX as u64;
/// `output.unwritable_timeout_secs`: at least a second, at most a day.
pub const UNWRITABLE_TIMEOUT_SECS: RangeInclusive<u64> = 1..=86_400;

// The checks below are shared by the file and the command line, so both
// accept exactly the same values; callers prefix the key or the flag.

pub fn in_range(n: u64, range: &RangeInclusive<u64>) -> Result<u64, String> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "must be between {} and {}, not {n}",
            range.start(),
            range.end()
        ))
    }
}

/// `-` is stdout; anything else must be an absolute path.
pub fn output_path(p: &str) -> Result<OutputTarget, String> {
    if p == "-" {
        Ok(OutputTarget::Stdout)
    } else if p.starts_with('/') && !p.contains('\0') {
        Ok(OutputTarget::File(PathBuf::from(p)))
    } else {
        Err(format!(
            "must be \"-\" (stdout) or an absolute path, not {p:?}"
        ))
    }
}

/// `None` for 0 (sized by the daemon), else a power of two of at least a
/// page: what the kernel requires of a BPF ring buffer.
pub fn ring_bytes(n: u64) -> Result<Option<u64>, String> {
    let page = page_size();
    if n == 0 {
        Ok(None)
    } else if !n.is_power_of_two() {
        Err(format!(
            "{n} is not a power of two (0 sizes the ring by the number of CPUs)"
        ))
    } else if n < page {
        Err(format!("{n} is smaller than a page ({page} bytes)"))
    } else if n > MAX_RING_BYTES {
        Err(format!("{n} is larger than 1 GiB ({MAX_RING_BYTES} bytes)"))
    } else {
        Ok(Some(n))
    }
}

/// `text` is the file, to tell where an allow entry ends.
pub(super) fn validate(file: raw::File, text: &str, problems: &mut Vec<Problem>) -> Config {
    let mut c = Checker { text, problems };
    Config {
        output: c.output(file.output),
        capture: c.capture(file.capture),
        storm: c.storm(file.storm),
        rules: c.rules(file.rules),
        allow: c.allow(file.allow),
        sinks: c.sinks(file.sinks),
        host: c.host(file.host),
    }
}

struct Checker<'a> {
    text: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, message: String) {
        self.problems.push(Problem::at(span, message));
    }

    /// A problem was already reported inside `region`: a value removed there
    /// must not cause a second, confusing report about what is left.
    fn reported_within(&self, region: &Range<usize>) -> bool {
        self.problems.iter().any(|p| {
            p.span
                .as_ref()
                .is_some_and(|s| region.start <= s.start && s.end <= region.end)
        })
    }

    /// The text an allow entry covers: an inline table's own span, or for an
    /// `[[allow.entry]]` header, the lines up to the next table header.
    fn entry_region(&self, span: &Range<usize>) -> Range<usize> {
        let text = self.text;
        if !text.get(span.clone()).is_some_and(|t| t.starts_with("[[")) {
            return span.clone();
        }
        let mut end = text.len();
        let mut at = span.end;
        while let Some(nl) = text[at..].find('\n') {
            let line = at + nl + 1;
            if text[line..].trim_start().starts_with('[') {
                end = line;
                break;
            }
            at = line;
        }
        span.start..end
    }

    /// An integer in `range`, or `default` when absent (or wrong).
    fn ranged(
        &mut self,
        value: Option<Spanned<u64>>,
        key: &str,
        range: RangeInclusive<u64>,
        default: u64,
    ) -> u64 {
        let Some(value) = value else {
            return default;
        };
        match in_range(*value.get_ref(), &range) {
            Ok(n) => n,
            Err(problem) => {
                self.error(value.span(), format!("{key}: {problem}"));
                default
            }
        }
    }

    fn output(&mut self, raw: raw::Output) -> OutputConfig {
        let path = match raw.path {
            None => OutputTarget::Stdout,
            Some(p) => output_path(p.get_ref()).unwrap_or_else(|problem| {
                self.error(p.span(), format!("output.path: {problem}"));
                OutputTarget::Stdout
            }),
        };
        let d = OutputConfig::default();
        let thread_renames_allow = raw
            .thread_renames_allow
            .into_iter()
            .filter_map(|glob| self.executable_glob(glob, "output.thread_renames_allow"))
            .collect();
        OutputConfig {
            path,
            format: raw.format.unwrap_or_default(),
            include_exec: raw.include_exec.unwrap_or(false),
            include_kernel: raw.include_kernel.unwrap_or(false),
            unwritable_timeout: Duration::from_secs(self.ranged(
                raw.unwritable_timeout_secs,
                "output.unwritable_timeout_secs",
                UNWRITABLE_TIMEOUT_SECS,
                d.unwritable_timeout.as_secs(),
            )),
            thread_renames: raw.thread_renames.unwrap_or_default(),
            thread_renames_allow,
        }
    }

    /// A glob on executable paths, which are absolute: one that starts
    /// otherwise could never match.
    fn executable_glob(&mut self, glob: Spanned<String>, key: &str) -> Option<Pattern> {
        let span = glob.span();
        let pattern = self.glob(Some(glob), key, Pattern::path)?;
        let g = pattern.as_str();
        if !(g.starts_with('/') || g.starts_with("**") || g.starts_with('{')) {
            self.error(
                span,
                format!(
                    "{key}: {g:?} never matches: executables are absolute paths, \
                     so start the glob with / or **"
                ),
            );
            return None;
        }
        Some(pattern)
    }

    fn capture(&mut self, raw: raw::Capture) -> CaptureConfig {
        let default = CaptureConfig::default();
        CaptureConfig {
            priority_ring_bytes: self.ring(raw.priority_ring_bytes, "capture.priority_ring_bytes"),
            thread_ring_bytes: self.ring(raw.thread_ring_bytes, "capture.thread_ring_bytes"),
            storm_slots: self.ranged(
                raw.storm_slots,
                "capture.storm_slots",
                1..=1 << 20,
                default.storm_slots.into(),
            ) as u32,
        }
    }

    /// `None` for absent or 0 (sized by the daemon), else a power of two of
    /// at least a page: what the kernel requires of a BPF ring buffer.
    fn ring(&mut self, value: Option<Spanned<u64>>, key: &str) -> Option<u64> {
        let value = value?;
        match ring_bytes(*value.get_ref()) {
            Ok(n) => n,
            Err(problem) => {
                self.error(value.span(), format!("{key}: {problem}"));
                None
            }
        }
    }

    fn storm(&mut self, raw: raw::Storm) -> StormConfig {
        let d = StormConfig::default();
        let mut rate = |v, key, default: u32| self.ranged(v, key, RATE, default.into()) as u32;
        StormConfig {
            thread_rate: rate(raw.thread_rate, "storm.thread_rate", d.thread_rate),
            thread_burst: rate(raw.thread_burst, "storm.thread_burst", d.thread_burst),
            process_rate: rate(raw.process_rate, "storm.process_rate", d.process_rate),
            process_burst: rate(raw.process_burst, "storm.process_burst", d.process_burst),
        }
    }

    fn rules(&mut self, raw: raw::Rules) -> RulesConfig {
        let toggles = [
            (RuleId::KernelThreadMimic, raw.kernel_thread_mimic.enabled),
            (RuleId::WritablePathStomp, raw.writable_path_stomp.enabled),
            (RuleId::SystemNameMimic, raw.system_name_mimic.enabled),
            (RuleId::ProcessHidden, raw.process_hidden.enabled),
            (RuleId::SiblingRenamedMain, raw.sibling_renamed_main.enabled),
            (RuleId::ProcessRenamed, raw.process_renamed.enabled),
        ];
        let disabled = toggles
            .into_iter()
            .filter(|(_, enabled)| *enabled == Some(false))
            .map(|(id, _)| id)
            .collect();
        let writable_paths = raw
            .writable_path_stomp
            .paths
            .into_iter()
            .filter_map(|p| self.directory(p))
            .collect();
        let system_names = raw
            .system_name_mimic
            .names
            .into_iter()
            .filter_map(|n| self.task_name(n))
            .collect();
        RulesConfig {
            disabled,
            writable_paths,
            system_names,
        }
    }

    fn directory(&mut self, path: Spanned<String>) -> Option<PathBuf> {
        const KEY: &str = "rules.writable-path-stomp.paths";
        let dir = path.get_ref().trim_end_matches('/');
        let problem = if !path.get_ref().starts_with('/') || path.get_ref().contains('\0') {
            format!("{KEY}: {:?} is not an absolute path", path.get_ref())
        } else if dir.is_empty() {
            format!("{KEY}: \"/\" would cover every executable")
        } else {
            return Some(PathBuf::from(dir));
        };
        self.error(path.span(), problem);
        None
    }

    fn task_name(&mut self, name: Spanned<String>) -> Option<Name> {
        const KEY: &str = "rules.system-name-mimic.names";
        let n = name.get_ref();
        let problem = if n.is_empty() || n.contains('\0') {
            format!("{KEY}: {n:?} cannot be a task name")
        } else if n.len() > COMM_LEN {
            format!(
                "{KEY}: {n:?} is {} bytes long; a task name holds at most {COMM_LEN}, \
                 so write the name cut to {COMM_LEN} bytes as ps shows it",
                n.len()
            )
        } else {
            return Some(Name::from(n.as_str()));
        };
        self.error(name.span(), problem);
        None
    }

    fn allow(&mut self, raw: raw::Allow) -> AllowConfig {
        let entries = raw
            .entry
            .into_iter()
            .filter_map(|e| self.allow_entry(e))
            .collect();
        AllowConfig {
            default_allowlist: raw.default_allowlist.unwrap_or(true),
            entries,
        }
    }

    fn allow_entry(&mut self, entry: Spanned<raw::AllowEntry>) -> Option<AllowEntry> {
        let span = entry.span();
        let raw = entry.into_inner();
        let before = self.problems.len();
        let matches_all = raw.executable.is_none()
            && raw.unit.is_none()
            && raw.container.is_none()
            && raw.uid.is_none()
            && raw.name.is_none();
        if matches_all && !self.reported_within(&self.entry_region(&span)) {
            self.error(
                span.clone(),
                "allow.entry: give at least one of executable, unit, container, uid, name \
                 (to switch a rule off, set rules.<id>.enabled = false)"
                    .to_owned(),
            );
        }
        let rules = raw.rules.map(|r| {
            if r.get_ref().is_empty() && !self.reported_within(&r.span()) {
                self.error(
                    r.span(),
                    "allow.entry.rules: an empty list applies to no rule; \
                     leave `rules` out to apply the entry to every rule"
                        .to_owned(),
                );
            }
            r.into_inner().into_iter().collect::<BTreeSet<RuleId>>()
        });
        let exe_span = raw.executable.as_ref().map(Spanned::span);
        let executable = self.glob(raw.executable, "allow.entry.executable", Pattern::path);
        if let (Some(exe), Some(span)) = (&executable, exe_span) {
            let g = exe.as_str();
            if !(g.starts_with('/') || g.starts_with("**") || g.starts_with('{')) {
                self.error(
                    span,
                    format!(
                        "allow.entry.executable: {g:?} never matches: executables are \
                         absolute paths, so start the glob with / or **"
                    ),
                );
            }
        }
        let unit = self.glob(raw.unit, "allow.entry.unit", Pattern::name);
        let container = self.glob(raw.container, "allow.entry.container", Pattern::name);
        let name = self.glob(raw.name, "allow.entry.name", Pattern::name);
        (self.problems.len() == before).then_some(AllowEntry {
            rules,
            executable,
            unit,
            container,
            uid: raw.uid,
            name,
        })
    }

    fn glob(
        &mut self,
        glob: Option<Spanned<String>>,
        key: &str,
        compile: fn(&str) -> Result<Pattern, PatternError>,
    ) -> Option<Pattern> {
        let glob = glob?;
        match compile(glob.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(glob.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    /// `[host]`: a name that is one line, and labels Alertmanager takes.
    fn host(&mut self, raw: raw::Host) -> HostConfig {
        let name = raw.name.and_then(|n| {
            let text = n.get_ref();
            let problem = if text.trim().is_empty() {
                "is empty; leave it out for the kernel's host name"
            } else if text.chars().any(char::is_control) {
                "holds a control character"
            } else {
                return Some(n.into_inner());
            };
            self.error(n.span(), format!("host.name: {text:?} {problem}"));
            None
        });
        let mut labels = std::collections::BTreeMap::new();
        for (key, value) in raw.labels {
            if let Some(problem) = crate::identity::label_key_problem(key.get_ref()) {
                self.error(key.span(), format!("host.labels: {problem}"));
            } else if value.get_ref().is_empty() {
                // Alertmanager drops a label with an empty value.
                self.error(
                    value.span(),
                    format!("host.labels.{}: the value is empty", key.get_ref()),
                );
            } else {
                labels.insert(key.into_inner(), value.into_inner());
            }
        }
        HostConfig { name, labels }
    }

    fn sinks(&mut self, raw: raw::Sinks) -> SinksConfig {
        SinksConfig {
            prometheus: raw.prometheus.and_then(|p| self.prometheus(p)),
            alertmanager: raw.alertmanager.and_then(|a| self.alertmanager(a)),
            syslog: raw.syslog.and_then(|s| self.syslog(s)),
        }
    }

    fn prometheus(&mut self, raw: raw::Prometheus) -> Option<PrometheusSink> {
        let listen = raw.listen?;
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(listen) => Some(PrometheusSink { listen }),
            Err(_) => {
                self.error(
                    listen.span(),
                    format!(
                        "sinks.prometheus.listen: {:?} is not an IP socket address \
                         such as \"127.0.0.1:9464\"",
                        listen.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn alertmanager(&mut self, raw: raw::Alertmanager) -> Option<AlertmanagerSink> {
        let queue = self.ranged(
            raw.queue,
            "sinks.alertmanager.queue",
            1..=MAX_QUEUE,
            AlertmanagerSink::DEFAULT_QUEUE as u64,
        );
        let dedup = self.ranged(
            raw.dedup_window_secs,
            "sinks.alertmanager.dedup_window_secs",
            1..=86_400,
            AlertmanagerSink::DEFAULT_DEDUP_WINDOW.as_secs(),
        );
        let rate = self.ranged(
            raw.rate_limit_per_minute,
            "sinks.alertmanager.rate_limit_per_minute",
            1..=60_000,
            AlertmanagerSink::DEFAULT_RATE_LIMIT_PER_MINUTE.into(),
        );
        let timeout = self.ranged(
            raw.timeout_ms,
            "sinks.alertmanager.timeout_ms",
            1..=600_000,
            AlertmanagerSink::DEFAULT_TIMEOUT.as_millis() as u64,
        );
        let url = raw.url?;
        // The daemon's own check: check-config accepts exactly the URLs the
        // sink can post to (plain http; https is refused in both).
        if let Err(e) = endpoint_of(url.get_ref()) {
            self.error(
                url.span(),
                format!(
                    "sinks.alertmanager.url: {:?} cannot be used: {}",
                    url.get_ref(),
                    e.reason
                ),
            );
            return None;
        }
        Some(AlertmanagerSink {
            queue: queue as usize,
            dedup_window: Duration::from_secs(dedup),
            rate_limit_per_minute: rate as u32,
            timeout: Duration::from_millis(timeout),
            ..AlertmanagerSink::new(reqwest::Url::parse(url.get_ref()).ok()?)
        })
    }

    fn syslog(&mut self, raw: Spanned<raw::Syslog>) -> Option<SyslogSink> {
        let span = raw.span();
        let raw = raw.into_inner();
        let transport = raw.transport.unwrap_or_default();
        // With a misspelt transport the address cannot be judged: it was
        // written for the transport meant, not for the default.
        let transport_reported = self
            .problems
            .iter()
            .any(|p| p.message.starts_with("sinks.syslog.transport:"));
        let address = raw.address.filter(|_| !transport_reported);
        let target = match (transport, address) {
            (raw::Transport::Unix, None) => {
                Some(SyslogTarget::Unix(SyslogSink::DEFAULT_UNIX_PATH.into()))
            }
            (raw::Transport::Unix, Some(a)) => {
                if a.get_ref().starts_with('/') && !a.get_ref().contains('\0') {
                    Some(SyslogTarget::Unix(a.into_inner().into()))
                } else {
                    self.error(
                        a.span(),
                        format!(
                            "sinks.syslog.address: {:?} is not an absolute socket path, \
                             as transport \"unix\" needs",
                            a.get_ref()
                        ),
                    );
                    None
                }
            }
            (net, address) => {
                let address = address.map_or_else(
                    || Ok(SyslogSink::DEFAULT_NET_ADDRESS.to_owned()),
                    |a| {
                        if is_host_port(a.get_ref()) {
                            Ok(a.into_inner())
                        } else {
                            Err(a)
                        }
                    },
                );
                match address {
                    Ok(a) if net == raw::Transport::Udp => Some(SyslogTarget::Udp(a)),
                    Ok(a) => Some(SyslogTarget::Tcp(a)),
                    Err(a) => {
                        self.error(
                            a.span(),
                            format!(
                                "sinks.syslog.address: {:?} is not host:port, \
                                 such as \"127.0.0.1:514\"",
                                a.get_ref()
                            ),
                        );
                        None
                    }
                }
            }
        };
        // The sink's own table of facilities, so the two cannot disagree.
        let facility = match raw.facility {
            None => Some(SyslogSink::DEFAULT_FACILITY),
            Some(f) => match f.get_ref().parse::<Facility>() {
                Ok(facility) => Some(facility),
                Err(problem) => {
                    self.error(f.span(), format!("sinks.syslog.facility: {problem}"));
                    None
                }
            },
        };
        let queue = self.ranged(
            raw.queue,
            "sinks.syslog.queue",
            1..=MAX_QUEUE,
            SyslogSink::DEFAULT_QUEUE as u64,
        );
        let alerts = raw.alerts.unwrap_or(true);
        let events = raw.events.unwrap_or(false);
        if !alerts && !events {
            self.error(
                span,
                "sinks.syslog: sends nothing: set alerts or events to true, \
                 or remove the section"
                    .to_owned(),
            );
            return None;
        }
        Some(SyslogSink {
            alerts,
            events,
            facility: facility?,
            queue: queue as usize,
            ..SyslogSink::new(target?)
        })
    }
}

/// An IP socket address, or a DNS host name and a port.
fn is_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_accepts_ips_and_names_only_with_a_port() {
        for ok in [
            "127.0.0.1:514",
            "[::1]:514",
            "logs.example.com:6514",
            "syslog:514",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "logs:0",
            "logs:x",
            ":514",
            "a b:514",
            "::1:514",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
