//! What the alerting end-to-end tests share: renamer copies dropped in /tmp,
//! configuration files, alert assertions, and the daemon's own `/metrics`.
use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    daemon::{Daemon, at, str_at, u64_at},
    http, renamer,
};

/// A built-in rule as an alert shows it.
pub struct Rule {
    pub id: &'static str,
    pub severity: &'static str,
    /// `event.severity`, on Elastic's 0-100 scale.
    pub score: u64,
    /// RFC 5424 severity of its syslog messages.
    pub syslog_severity: u8,
    pub technique: Option<&'static str>,
}

pub const KERNEL_THREAD_MIMIC: Rule = Rule {
    id: "kernel-thread-mimic",
    severity: "critical",
    score: 99,
    syslog_severity: 2,
    technique: Some("T1036.004"),
};
pub const WRITABLE_PATH_STOMP: Rule = Rule {
    id: "writable-path-stomp",
    severity: "high",
    score: 73,
    syslog_severity: 3,
    technique: Some("T1036.005"),
};
pub const SYSTEM_NAME_MIMIC: Rule = Rule {
    id: "system-name-mimic",
    severity: "high",
    score: 73,
    syslog_severity: 3,
    technique: Some("T1036.004"),
};
pub const SIBLING_RENAMED_MAIN: Rule = Rule {
    id: "sibling-renamed-main",
    severity: "medium",
    score: 47,
    syslog_severity: 4,
    technique: None,
};
pub const PROCESS_RENAMED: Rule = Rule {
    id: "process-renamed",
    severity: "low",
    score: 21,
    syslog_severity: 5,
    technique: None,
};

/// A copy of the test renamer in a fresh directory under /tmp, where a
/// dropped payload would sit. Removed on drop.
pub struct Dropped {
    pub exe: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dropped {
    pub fn new() -> Dropped {
        let dir = tempfile::Builder::new()
            .prefix("rename-audit-e2e-")
            .tempdir_in("/tmp")
            .expect("a temp dir under /tmp");
        let exe = dir.path().join("payload");
        fs::copy(renamer::path(), &exe).expect("copy the renamer into /tmp");
        Dropped { exe, _dir: dir }
    }

    pub fn exe_str(&self) -> &str {
        self.exe.to_str().expect("UTF-8 temp path")
    }
}

/// Writes `text` to `dir/name` and returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Waits for the output line of the rename of thread `tid` of `pid` to
/// `new_name`, alert or not.
pub fn rename_of(d: &mut Daemon, what: &str, pid: u32, tid: u32, new_name: &str) -> Value {
    let new_name = new_name.to_owned();
    d.wait_for(what, move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "process.thread.id").as_u64() == Some(tid.into())
            && at(e, "rename.new_name").as_str() == Some(new_name.as_str())
    })
}

/// The line is an alert of `rule` about process `pid` taking `new_name`.
pub fn assert_alert(e: &Value, rule: &Rule, pid: u32, new_name: &str) {
    assert_eq!(
        at(e, "event.kind"),
        "alert",
        "expected a {} alert, got: {e}",
        rule.id
    );
    assert_eq!(str_at(e, "rule.id"), rule.id, "wrong rule: {e}");
    assert!(!str_at(e, "rule.name").is_empty(), "rule.name: {e}");
    assert_eq!(str_at(e, "rule.severity"), rule.severity, "{e}");
    assert_eq!(u64_at(e, "event.severity"), rule.score, "{e}");
    match rule.technique {
        Some(t) => {
            assert_eq!(at(e, "threat.technique.id"), &json!([t]), "{e}");
            assert_eq!(str_at(e, "threat.framework"), "MITRE ATT&CK", "{e}");
        }
        None => assert!(at(e, "threat").is_null(), "no technique applies: {e}"),
    }
    let message = str_at(e, "message");
    assert!(
        !message.contains('\n') && message.contains(&pid.to_string()),
        "message should be one line naming pid {pid}: {message:?}"
    );
    assert!(
        message.contains(new_name),
        "message should name {new_name:?}: {message:?}"
    );
}

/// The line is a plain event: no rule matched it.
pub fn assert_no_alert(e: &Value, why: &str) {
    assert_eq!(
        at(e, "event.kind"),
        "event",
        "{why} must raise no alert: {e}"
    );
    for field in ["rule", "threat", "message"] {
        assert!(at(e, field).is_null(), "{why}: unexpected {field} in {e}");
    }
}

/// `GET /metrics` from the daemon.
pub fn scrape(addr: SocketAddr) -> String {
    match http::get(addr, "/metrics") {
        Ok((200, body)) => body,
        other => panic!("GET http://{addr}/metrics: {other:?}"),
    }
}

/// The value of one series, by its exact text (`name{labels}`).
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().expect("a numeric sample"))
    })
}

/// Polls the daemon's `/metrics` until `series` satisfies `pred`.
pub fn wait_for_sample(
    addr: SocketAddr,
    series: &str,
    timeout: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let until = Instant::now() + timeout;
    loop {
        let text = scrape(addr);
        let value = sample(&text, series);
        if let Some(v) = value
            && pred(v)
        {
            return v;
        }
        if Instant::now() > until {
            panic!("{series} is {value:?} after {timeout:?}; /metrics:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process a test started by hand (a daemon, a look-alike), killed when the
/// test ends, even by a panic, unless it has exited.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
