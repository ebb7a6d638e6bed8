//! Who wrote an event: the host and this agent, gathered once at start-up
//! and the same on every event and alert (ECS `host.*`, `agent.id`,
//! `agent.name`, `labels`), so a central store can tell a fleet's hosts
//! apart.
//!
//! A low layer: the output and every sink read it ([`current`]), none of
//! them owns it. `main` gathers it ([`Identity::gather`]) and installs it
//! ([`install`]) before the first event; until then (unit tests of one
//! stage) there is none, and a line names its host by `Event::host` alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the machine id is read when nothing says otherwise.
pub const MACHINE_ID: &str = "/etc/machine-id";
/// os-release(5): the first of these that exists.
pub const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Labels every Alertmanager alert already carries (`sinks::alertmanager`):
/// an operator's label of the same name would silently replace or be
/// replaced by it, so the configuration refuses these keys.
pub const ALERT_LABELS_TAKEN: &[&str] = &[
    "alertname",
    "rule",
    "severity",
    "host",
    "process_name",
    "executable",
];

/// `[host]` in the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `host.name`; the kernel's host name when `None`.
    pub name: Option<String>,
    /// `labels`, and labels on Alertmanager alerts. Keys are checked by
    /// [`label_key_problem`].
    pub labels: BTreeMap<String, String>,
}

/// Why a label key cannot be used, or `None` when it can. Alertmanager
/// (like Prometheus) takes label names matching `[a-zA-Z_][a-zA-Z0-9_]*`,
/// reserves those starting with `__`, and the alerts' own labels are taken.
pub fn label_key_problem(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        Some(format!(
            "{key:?} is not a valid label name: Alertmanager takes only [a-zA-Z_][a-zA-Z0-9_]*"
        ))
    } else if key.starts_with("__") {
        Some(format!(
            "{key:?}: label names starting with \"__\" are reserved for Alertmanager's own use"
        ))
    } else if ALERT_LABELS_TAKEN.contains(&key) {
        Some(format!(
            "{key:?} is a label every alert already carries ({})",
            ALERT_LABELS_TAKEN.join(", ")
        ))
    } else {
        None
    }
}

/// `host.os`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Os {
    /// `host.os.kernel`: the kernel's release (`uname -r`).
    pub kernel: String,
    /// `host.os.name`: os-release's `NAME`.
    pub name: Option<String>,
    /// `host.os.version`: os-release's `VERSION_ID`.
    pub version: Option<String>,
}

/// The host and this agent, as every event and alert names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `host.name`: `[host] name`, else the kernel's host name. Any
    /// string: a sink with a stricter syntax (RFC 5424's HOSTNAME) makes
    /// its own copy fit.
    pub name: String,
    /// `host.hostname`: the kernel's host name.
    pub hostname: String,
    /// `host.id`: /etc/machine-id; `None` when missing or not a machine id.
    pub id: Option<String>,
    pub os: Os,
    /// `agent.id`: a random UUID kept in the state directory, or, when it
    /// cannot be kept there, one for this run only.
    pub agent_id: String,
    /// `agent.name`: the host's name, as Elastic's own agents default it.
    pub agent_name: String,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
}

/// Where [`Identity::gather`] reads from: the system's files, or a test's.
#[derive(Clone, Debug)]
pub struct Sources {
    pub machine_id: PathBuf,
    /// Tried in order; the first that can be read is used.
    pub os_release: Vec<PathBuf>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            machine_id: PathBuf::from(MACHINE_ID),
            os_release: OS_RELEASE.iter().map(PathBuf::from).collect(),
        }
    }
}

impl Identity {
    /// Reads the host's identity from `sources` and the kernel; `agent_id`
    /// comes from the state directory (`state::agent_id`).
    pub fn gather(host: &HostConfig, agent_id: String, sources: &Sources) -> Identity {
        let hostname = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the kernel's host name");
                String::new()
            });
        let name = host.name.clone().unwrap_or_else(|| hostname.clone());
        let os_release = sources
            .os_release
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| parse_os_release(&text))
            .unwrap_or_default();
        Identity {
            agent_name: name.clone(),
            name,
            hostname,
            id: read_machine_id(&sources.machine_id),
            os: Os {
                kernel: kernel_release(),
                name: os_release.get("NAME").cloned(),
                version: os_release.get("VERSION_ID").cloned(),
            },
            agent_id,
            labels: host.labels.clone(),
        }
    }

    /// The labels that say where an alert comes from, for every alert the
    /// Alertmanager sink posts (rule alerts and its own): `host`, then the
    /// operator's `[host] labels` (whose keys cannot clash: see
    /// [`label_key_problem`]).
    pub fn alert_labels(&'static self) -> impl Iterator<Item = (&'static str, String)> {
        std::iter::once(("host", self.name.clone()))
            .chain(self.labels.iter().map(|(k, v)| (k.as_str(), v.clone())))
    }
}

static CURRENT: OnceLock<Identity> = OnceLock::new();

/// Makes `identity` the one every event and alert carries from now on.
/// Once per process: a second call is ignored (and returns `false`).
pub fn install(identity: Identity) -> bool {
    CURRENT.set(identity).is_ok()
}

/// The installed identity; `None` before [`install`].
pub fn current() -> Option<&'static Identity> {
    CURRENT.get()
}

/// A random (version 4) UUID, for an `agent.id` made now.
pub fn new_agent_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The machine id, when the file holds one: 32 lowercase hex digits.
/// "uninitialized" (systemd's first boot) or anything else is no id.
fn read_machine_id(path: &Path) -> Option<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            tracing::info!(path = %path.display(), %error, "no machine id: host.id is left out");
            return None;
        }
    };
    let id = text.trim();
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Some(id.to_owned())
    } else {
        tracing::info!(path = %path.display(), "not a machine id: host.id is left out");
        None
    }
}

/// `uname -r`.
fn kernel_release() -> String {
    // SAFETY: `utsname` is plain bytes, for which all zeroes is valid, and
    // uname only writes into the struct it is given.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an owned `utsname`.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// os-release(5): `KEY=value` lines, the value optionally in single or
/// double quotes, with backslash escapes inside double quotes; `#` starts
/// a comment line.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            let mut s = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    s.extend(chars.next());
                } else {
                    s.push(c);
                }
            }
            s
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            value.to_owned()
        };
        out.insert(key.trim().to_owned(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted_and_unescaped() {
        let text = "# comment\nNAME=\"Debian GNU/Linux\"\nVERSION_ID='13'\nID=debian\n\
                    PRETTY_NAME=\"say \\\"hi\\\" \\\\ \"\nbroken line\n";
        let m = parse_os_release(text);
        assert_eq!(m["NAME"], "Debian GNU/Linux");
        assert_eq!(m["VERSION_ID"], "13");
        assert_eq!(m["ID"], "debian");
        assert_eq!(m["PRETTY_NAME"], "say \"hi\" \\ ");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn label_keys_follow_alertmanager() {
        for ok in ["env", "role", "_x", "A_9", "zone2"] {
            assert_eq!(label_key_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "9env", "env-x", "a.b", "é", "a b", "__meta", "host", "severity",
        ] {
            assert!(label_key_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn gathering_reads_the_given_files_and_leaves_out_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mid = dir.path().join("machine-id");
        std::fs::write(&mid, "0123456789abcdef0123456789abcdef\n").unwrap();
        let etc = dir.path().join("os-release");
        let usr = dir.path().join("usr-os-release");
        std::fs::write(&usr, "NAME=\"Fallback\"\nVERSION_ID=\"1\"\n").unwrap();
        let host = HostConfig {
            name: Some("db 1 ü".into()),
            labels: BTreeMap::from([("env".into(), "prod".into())]),
        };
        let sources = Sources {
            machine_id: mid.clone(),
            os_release: vec![etc.clone(), usr],
        };
        let id = Identity::gather(&host, "A".into(), &sources);
        assert_eq!(id.name, "db 1 ü");
        assert_eq!(id.agent_name, "db 1 ü");
        assert_eq!(id.id.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        // /etc/os-release is missing: /usr/lib/os-release's values.
        assert_eq!(id.os.name.as_deref(), Some("Fallback"));
        assert_eq!(id.os.version.as_deref(), Some("1"));
        assert!(!id.os.kernel.is_empty());
        assert_eq!(id.agent_id, "A");
        std::fs::write(&etc, "NAME=Debian\n").unwrap();
        std::fs::write(&mid, "uninitialized\n").unwrap();
        let id = Identity::gather(&HostConfig::default(), "A".into(), &sources);
        assert_eq!(id.id, None);
        assert_eq!(id.os.name.as_deref(), Some("Debian"));
        assert_eq!(id.os.version, None);
        assert_eq!(id.name, id.hostname, "the kernel's host name by default");
        std::fs::remove_file(&mid).unwrap();
        assert_eq!(
            Identity::gather(&HostConfig::default(), "A".into(), &sources).id,
            None
        );
    }
}
