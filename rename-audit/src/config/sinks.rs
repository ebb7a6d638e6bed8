//! `[sinks.*]`: where alerts and events go besides the event stream. A sink
//! is on when its section gives its address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::sinks::Facility;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinksConfig {
    pub prometheus: Option<PrometheusSink>,
    pub alertmanager: Option<AlertmanagerSink>,
    pub syslog: Option<SyslogSink>,
}

/// `[sinks.prometheus]`: a `/metrics` endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusSink {
    pub listen: SocketAddr,
}

/// `[sinks.alertmanager]`: alerts posted to `<url>/api/v2/alerts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerSink {
    /// Base URL (plain http), e.g. `http://127.0.0.1:9093`.
    pub url: reqwest::Url,
    /// Alerts waiting to be sent; more are dropped and counted.
    pub queue: usize,
    /// Identical alerts within this window are sent once.
    pub dedup_window: Duration,
    /// Alerts sent per (rule, executable) and minute; the rest are counted.
    pub rate_limit_per_minute: u32,
    /// Per request.
    pub timeout: Duration,
    /// Retries after the first attempt before a batch is given up.
    pub max_retries: u32,
    /// How long Alertmanager keeps an alert firing after its last post
    /// (never shorter than the dedup window plus a minute: see
    /// [`Self::resolve_after`]).
    pub resolve_timeout: Duration,
}

impl AlertmanagerSink {
    pub const DEFAULT_QUEUE: usize = 1024;
    pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(300);
    pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 10;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
    pub const DEFAULT_MAX_RETRIES: u32 = 4;
    pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(600);

    /// The sink with its defaults, posting to `url`.
    pub fn new(url: reqwest::Url) -> Self {
        Self {
            url,
            queue: Self::DEFAULT_QUEUE,
            dedup_window: Self::DEFAULT_DEDUP_WINDOW,
            rate_limit_per_minute: Self::DEFAULT_RATE_LIMIT_PER_MINUTE,
            timeout: Self::DEFAULT_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            resolve_timeout: Self::DEFAULT_RESOLVE_TIMEOUT,
        }
    }

    /// The `endsAt` distance of a posted alert: an alert that keeps
    /// repeating inside the dedup window must not flap between posts.
    pub fn resolve_after(&self) -> Duration {
        self.resolve_timeout
            .max(self.dedup_window.saturating_add(Duration::from_secs(60)))
    }
}

/// `[sinks.syslog]`: RFC 5424 messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSink {
    pub target: SyslogTarget,
    /// Send alerts.
    pub alerts: bool,
    /// Send every event.
    pub events: bool,
    pub facility: Facility,
    /// Messages waiting to be sent; more are dropped and counted.
    pub queue: usize,
    /// Per connect or send.
    pub timeout: Duration,
    /// Retries (each after a reconnect) before a message is given up.
    pub max_retries: u32,
}

impl SyslogSink {
    pub const DEFAULT_QUEUE: usize = 1024;
    pub const DEFAULT_FACILITY: Facility = Facility::DAEMON;
    pub const DEFAULT_UNIX_PATH: &str = "/dev/log";
    pub const DEFAULT_NET_ADDRESS: &str = "127.0.0.1:514";
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);
    pub const DEFAULT_MAX_RETRIES: u32 = 3;

    /// The sink with its defaults (alerts only), sending to `target`.
    pub fn new(target: SyslogTarget) -> Self {
        Self {
            target,
            alerts: true,
            events: false,
            facility: Self::DEFAULT_FACILITY,
            queue: Self::DEFAULT_QUEUE,
            timeout: Self::DEFAULT_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
        }
    }
}

/// Transport and address of a syslog server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local datagram socket such as `/dev/log`.
    Unix(PathBuf),
    /// `host:port`, resolved when connecting.
    Udp(String),
    /// `host:port`, resolved when connecting; octet-counting framing.
    Tcp(String),
}

impl std::fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogTarget::Unix(path) => write!(f, "unix:{}", path.display()),
            SyslogTarget::Udp(a) => write!(f, "udp:{a}"),
            SyslogTarget::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}
