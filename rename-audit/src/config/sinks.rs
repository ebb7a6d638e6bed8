//! `[sinks.*]`: where alerts and events go besides the event stream. A sink
//! is on when its section gives its address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
}

impl AlertmanagerSink {
    pub const DEFAULT_QUEUE: usize = 1024;
    pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(300);
    pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 10;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
}

/// `[sinks.syslog]`: RFC 5424 messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSink {
    pub target: SyslogTarget,
    /// Send alerts.
    pub alerts: bool,
    /// Send every event.
    pub events: bool,
    /// RFC 5424 facility code (`daemon` = 3).
    pub facility: u8,
    /// Messages waiting to be sent; more are dropped and counted.
    pub queue: usize,
}

impl SyslogSink {
    pub const DEFAULT_QUEUE: usize = 1024;
    pub const DEFAULT_FACILITY: crate::sinks::Facility = crate::sinks::Facility::DAEMON;
    pub const DEFAULT_UNIX_PATH: &str = "/dev/log";
    pub const DEFAULT_NET_ADDRESS: &str = "127.0.0.1:514";
}

/// Transport and address of a syslog server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local datagram socket such as `/dev/log`.
    Unix(PathBuf),
    /// `host:port`, resolved when connecting.
    Udp(String),
    /// `host:port`, resolved when connecting.
    Tcp(String),
}
