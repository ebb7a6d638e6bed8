//! `[sinks.*]`: where alerts and events go besides the event stream. A sink
//! is on when its section gives its address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
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

/// `[sinks.alertmanager]`: alerts posted to `<url>/api/v2/alerts` of every
/// replica of an Alertmanager cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerSink {
    /// Base URL of each replica (`urls`, or `url` for one), e.g.
    /// `https://am1:9093`. Every alert goes to every one: a cluster gossips
    /// silences and notifications, not alerts.
    pub urls: Vec<reqwest::Url>,
    /// TLS client settings for https URLs.
    pub tls: Option<super::TlsConfig>,
    /// How requests authenticate, if at all.
    pub auth: Option<HttpAuth>,
    /// Alerts waiting to be sent, per replica; more are dropped and counted.
    pub queue: usize,
    /// Identical alerts within this window are sent once.
    pub dedup_window: Duration,
    /// Alerts sent per (rule, executable) and minute; the rest are counted.
    pub rate_limit_per_minute: u32,
    /// Per request.
    pub timeout: Duration,
    /// Retries after the first attempt before a batch is given up: a
    /// replica that cannot be reached keeps a batch (and its queue holds
    /// what comes meanwhile) until then, or until the batch's alerts would
    /// have ended anyway.
    pub max_retries: u32,
    /// How long Alertmanager keeps an alert firing after its last post
    /// (never shorter than the dedup window plus a minute: see
    /// [`Self::resolve_after`]).
    pub resolve_timeout: Duration,
    /// How often the always-firing `RenameAuditWatchdog` alert is posted;
    /// it ends three intervals after each post.
    pub heartbeat: Duration,
}

/// How the Alertmanager sink authenticates: the secret is in a file, read
/// at start-up and on every SIGHUP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpAuth {
    /// `[basic_auth] username, password_file`.
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// `[authorization] type, credentials_file`: `Authorization: <type>
    /// <credentials>`.
    Authorization {
        scheme: String,
        credentials_file: PathBuf,
    },
}

impl HttpAuth {
    /// The file holding the secret.
    pub fn secret_file(&self) -> &std::path::Path {
        match self {
            HttpAuth::Basic { password_file, .. } => password_file,
            HttpAuth::Authorization {
                credentials_file, ..
            } => credentials_file,
        }
    }
}

impl AlertmanagerSink {
    pub const DEFAULT_QUEUE: usize = 1024;
    pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(300);
    pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 10;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
    /// With the backoff capped at 8 s, about an hour of retries: in practice
    /// a batch is held until its alerts would have ended.
    pub const DEFAULT_MAX_RETRIES: u32 = 500;
    pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(600);
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(60);
    pub const DEFAULT_AUTHORIZATION_TYPE: &str = "Bearer";

    /// The sink with its defaults, posting to the one replica at `url`.
    pub fn new(url: reqwest::Url) -> Self {
        Self {
            urls: vec![url],
            tls: None,
            auth: None,
            queue: Self::DEFAULT_QUEUE,
            dedup_window: Self::DEFAULT_DEDUP_WINDOW,
            rate_limit_per_minute: Self::DEFAULT_RATE_LIMIT_PER_MINUTE,
            timeout: Self::DEFAULT_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            resolve_timeout: Self::DEFAULT_RESOLVE_TIMEOUT,
            heartbeat: Self::DEFAULT_HEARTBEAT,
        }
    }

    /// Where alerts are posted, one `<url>/api/v2/alerts` per replica, or
    /// why a URL cannot be used.
    pub fn endpoints(&self) -> Result<Vec<reqwest::Url>, EndpointError> {
        self.urls.iter().map(endpoint).collect()
    }

    /// The `endsAt` distance of a posted alert: an alert that keeps
    /// repeating inside the dedup window must not flap between posts.
    pub fn resolve_after(&self) -> Duration {
        self.resolve_timeout
            .max(self.dedup_window.saturating_add(Duration::from_secs(60)))
    }
}

/// A replica's name in metrics and logs: its URL as configured, without a
/// trailing slash (credentials are refused in URLs, so none can show).
pub fn replica_name(url: &reqwest::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// Why an Alertmanager URL cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("alertmanager: cannot use url {url:?}: {reason}")]
pub struct EndpointError {
    pub url: String,
    pub reason: String,
}

/// `<url>/api/v2/alerts` for the text of a URL, or why it cannot be used.
pub(super) fn endpoint_of(url: &str) -> Result<reqwest::Url, EndpointError> {
    let base = reqwest::Url::parse(url).map_err(|e| EndpointError {
        // The text may hold a password: never repeat it.
        url: redact(url),
        reason: e.to_string(),
    })?;
    endpoint(&base)
}

/// A URL's text without what could be a password in it.
pub(super) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
            Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `<base>/api/v2/alerts`, or why the URL cannot be used. The daemon and
/// `check-config` both judge a URL with this.
fn endpoint(base: &reqwest::Url) -> Result<reqwest::Url, EndpointError> {
    let bad = |reason: &str| {
        let mut shown = base.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        EndpointError {
            url: shown.to_string(),
            reason: reason.to_owned(),
        }
    };
    match base.scheme() {
        "http" | "https" => {}
        other => return Err(bad(&format!("scheme {other:?} is neither http nor https"))),
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(bad(
            "credentials in a URL are refused (they would show in logs and metrics): \
             remove them and use [sinks.alertmanager.basic_auth] with username and password_file",
        ));
    }
    if base.host().is_none() {
        return Err(bad("no host"));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(bad("a query or fragment is not allowed"));
    }
    let joined = format!("{}/api/v2/alerts", base.as_str().trim_end_matches('/'));
    reqwest::Url::parse(&joined).map_err(|e| bad(&e.to_string()))
}

/// `[sinks.syslog]`: RFC 5424 messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSink {
    pub target: SyslogTarget,
    /// What MSG holds.
    pub format: SyslogFormat,
    /// `[sinks.syslog.tls_config]`, for transport `tls` (the defaults when
    /// absent: the system's roots, the address's host).
    pub tls: Option<super::TlsConfig>,
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
    /// RFC 5425's port for syslog over TLS.
    pub const DEFAULT_TLS_ADDRESS: &str = "127.0.0.1:6514";
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);
    /// With the backoff (0.1 s doubling to 5 s), about 26 s of trying: a
    /// local relay restarting loses nothing.
    pub const DEFAULT_MAX_RETRIES: u32 = 10;

    /// The sink with its defaults (alerts only), sending to `target`.
    pub fn new(target: SyslogTarget) -> Self {
        Self {
            target,
            format: SyslogFormat::Text,
            tls: None,
            alerts: true,
            events: false,
            facility: Self::DEFAULT_FACILITY,
            queue: Self::DEFAULT_QUEUE,
            timeout: Self::DEFAULT_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
        }
    }
}

/// `[sinks.syslog] format`: what a message's MSG holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum SyslogFormat {
    /// A readable line in printable ASCII; the event's fields are in the
    /// structured data.
    #[default]
    #[serde(rename = "text")]
    Text,
    /// The event's ECS JSON line, exactly as the output writes it; no
    /// structured data.
    #[serde(rename = "ecs-json")]
    EcsJson,
}

impl SyslogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogFormat::Text => "text",
            SyslogFormat::EcsJson => "ecs-json",
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
    /// As `Tcp`, inside TLS (RFC 5425).
    Tls(String),
}

impl std::fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogTarget::Unix(path) => write!(f, "unix:{}", path.display()),
            SyslogTarget::Udp(a) => write!(f, "udp:{a}"),
            SyslogTarget::Tcp(a) => write!(f, "tcp:{a}"),
            SyslogTarget::Tls(a) => write!(f, "tls:{a}"),
        }
    }
}

/// A syslog facility (RFC 5424 table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    pub const KERN: Facility = Facility(0);
    pub const USER: Facility = Facility(1);
    pub const DAEMON: Facility = Facility(3);
    pub const AUTH: Facility = Facility(4);
    pub const AUTHPRIV: Facility = Facility(10);
    pub const LOCAL0: Facility = Facility(16);

    const NAMES: [&'static str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];

    /// The facility with RFC 5424 code `code` (0-23).
    pub fn from_code(code: u8) -> Option<Facility> {
        (usize::from(code) < Self::NAMES.len()).then_some(Facility(code))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[usize::from(self.0)]
    }
}

impl FromStr for Facility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Facility(i as u8))
            .ok_or_else(|| {
                format!(
                    "unknown syslog facility {s:?}: use one of {}",
                    Self::NAMES.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_facilities() {
        assert_eq!("local0".parse::<Facility>(), Ok(Facility::LOCAL0));
        assert_eq!("authpriv".parse::<Facility>().map(Facility::code), Ok(10));
        assert_eq!(Facility::DAEMON.name(), "daemon");
        assert!("local8".parse::<Facility>().is_err());
    }

    #[test]
    fn endpoint_joins_the_api_path() {
        assert_eq!(
            endpoint_of("http://127.0.0.1:9093").unwrap().as_str(),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert_eq!(
            endpoint_of("http://am.example:80/prefix/")
                .unwrap()
                .as_str(),
            "http://am.example/prefix/api/v2/alerts"
        );
        assert_eq!(
            endpoint_of("https://am1:9093").unwrap().as_str(),
            "https://am1:9093/api/v2/alerts"
        );
        for bad in ["ftp://am", "127.0.0.1:9093", "http://am:9093/?x=1"] {
            let e = endpoint_of(bad).expect_err(bad).to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn credentials_in_a_url_are_refused_and_never_repeated() {
        for url in [
            "https://alice:hunter2@am:9093",
            "http://alice@am:9093",
            "https://:hunter2@am",
        ] {
            let e = endpoint_of(url).expect_err(url);
            assert!(e.reason.contains("basic_auth"), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!e.to_string().contains("alice"), "{e}");
        }
        let e = endpoint_of("https://alice:hunter2@am:99999").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
