//! The file as written: every key optional, unknown keys refused, values
//! that need checking kept with their spans. `validate` turns this into
//! [`super::Config`].

use serde::Deserialize;
use toml::Spanned;

use crate::rules::RuleId;

type S<T> = Option<Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct File {
    pub output: Output,
    pub capture: Capture,
    pub storm: Storm,
    pub rules: Rules,
    pub allow: Allow,
    pub sinks: Sinks,
    pub host: Host,
}

/// `[host]`: how events and alerts name this host.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Host {
    pub name: S<String>,
    pub labels: std::collections::BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Output {
    pub path: S<String>,
    pub format: Option<crate::output::Format>,
    pub include_exec: Option<bool>,
    pub include_kernel: Option<bool>,
    pub unwritable_timeout_secs: S<u64>,
    pub thread_renames: Option<crate::noise::ThreadRenames>,
    pub thread_renames_allow: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Capture {
    pub priority_ring_bytes: S<u64>,
    pub thread_ring_bytes: S<u64>,
    pub storm_slots: S<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Storm {
    pub thread_rate: S<u64>,
    pub thread_burst: S<u64>,
    pub process_rate: S<u64>,
    pub process_burst: S<u64>,
}

/// One table per built-in rule; any other key is an unknown rule id.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Rules {
    pub kernel_thread_mimic: Toggle,
    pub writable_path_stomp: WritablePathStomp,
    pub system_name_mimic: SystemNameMimic,
    pub process_hidden: Toggle,
    pub sibling_renamed_main: Toggle,
    pub process_renamed: Toggle,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Toggle {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct WritablePathStomp {
    pub enabled: Option<bool>,
    pub paths: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct SystemNameMimic {
    pub enabled: Option<bool>,
    pub names: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Allow {
    pub default_allowlist: Option<bool>,
    pub entry: Vec<Spanned<AllowEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AllowEntry {
    pub rules: S<Vec<RuleId>>,
    pub executable: S<String>,
    pub unit: S<String>,
    pub container: S<String>,
    pub uid: Option<u32>,
    pub name: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Sinks {
    pub prometheus: Option<Prometheus>,
    pub alertmanager: Option<Alertmanager>,
    pub syslog: Option<Spanned<Syslog>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Prometheus {
    pub listen: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Alertmanager {
    pub url: S<String>,
    pub queue: S<u64>,
    pub dedup_window_secs: S<u64>,
    pub rate_limit_per_minute: S<u64>,
    pub timeout_ms: S<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Syslog {
    pub transport: Option<Transport>,
    pub address: S<String>,
    pub alerts: Option<bool>,
    pub events: Option<bool>,
    pub facility: S<String>,
    pub queue: S<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Transport {
    #[default]
    Unix,
    Udp,
    Tcp,
}
