//! Syslog sink: RFC 5424 messages over the local datagram socket, UDP, or TCP
//! with octet-counting framing (RFC 6587).

mod message;
mod rfc5424;
mod transport;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::message::Origin;
use self::transport::Conn;
use super::SinkError;
use super::backoff::Backoff;
use super::queue::{abandon, stopped};
use super::retry::{Deliver, DeliveryError, Retry};
use crate::event::Event;
use crate::metrics::Metrics;

pub(crate) const SINK: &str = "syslog";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A local `SOCK_DGRAM` unix socket such as `/dev/log`.
    Unix,
    Udp,
    /// TCP with octet-counting framing.
    Tcp,
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unix" => Ok(Transport::Unix),
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            _ => Err(format!(
                "unknown syslog transport {s:?}: use unix, udp or tcp"
            )),
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    pub transport: Transport,
    /// A socket path for `unix`, `host:port` for `udp` and `tcp`.
    pub address: String,
    /// Send alert records.
    pub alerts: bool,
    /// Send every record that is not an alert (renames, summaries, losses).
    pub events: bool,
    pub facility: Facility,
    /// Messages waiting to be sent; beyond this they are dropped and counted.
    pub queue: usize,
    /// Per connect or send.
    pub timeout_ms: u64,
    /// Retries (each after a reconnect) before a message is given up.
    pub max_retries: u32,
}

impl Default for SyslogConfig {
    /// The defaults of `[sinks.syslog]`, defined there once.
    fn default() -> Self {
        use crate::config::SyslogSink as D;
        Self {
            transport: Transport::Unix,
            address: D::DEFAULT_UNIX_PATH.to_owned(),
            alerts: true,
            events: false,
            facility: D::DEFAULT_FACILITY,
            queue: D::DEFAULT_QUEUE,
            timeout_ms: 2000,
            max_retries: 3,
        }
    }
}

impl SyslogConfig {
    /// Whether this sink takes the record.
    pub(crate) fn wants(&self, ev: &Event) -> bool {
        if ev.alert.is_some() {
            self.alerts
        } else {
            self.events
        }
    }

    fn max_len(&self) -> usize {
        match self.transport {
            // RFC 5426 asks senders to keep datagrams at or under 2048 bytes.
            Transport::Udp => 2048,
            // rsyslog's default maxMessageSize is 8k.
            Transport::Unix | Transport::Tcp => 8000,
        }
    }

    fn validate(&self) -> Result<(), SinkError> {
        let bad = |reason: &str| SinkError::SyslogAddress {
            address: self.address.clone(),
            reason: reason.to_owned(),
        };
        match self.transport {
            Transport::Unix if self.address.is_empty() => Err(bad("empty socket path")),
            Transport::Unix => Ok(()),
            Transport::Udp | Transport::Tcp => {
                let (host, port) = self
                    .address
                    .rsplit_once(':')
                    .ok_or_else(|| bad("expected host:port"))?;
                if host.is_empty() {
                    return Err(bad("no host before the port"));
                }
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .map(|_| ())
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))
            }
        }
    }
}

pub(crate) struct SyslogSink {
    cfg: SyslogConfig,
    origin: Origin,
    metrics: Arc<Metrics>,
    sender: Sender,
    retry: Retry,
}

/// One message to the server, over a connection kept between messages.
struct Sender {
    transport: Transport,
    address: String,
    timeout: Duration,
    conn: Option<Conn>,
}

impl SyslogSink {
    pub(crate) fn new(
        cfg: &SyslogConfig,
        host: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        cfg.validate()?;
        Ok(Self {
            cfg: cfg.clone(),
            origin: Origin {
                hostname: host.to_owned(),
                procid: std::process::id().to_string(),
                facility: cfg.facility.code(),
            },
            retry: Retry::new(
                SINK,
                cfg.max_retries,
                Backoff {
                    base: Duration::from_millis(100),
                    max: Duration::from_secs(5),
                },
                Arc::clone(&metrics),
            ),
            metrics,
            sender: Sender {
                transport: cfg.transport,
                address: cfg.address.clone(),
                timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
                conn: None,
            },
        })
    }

    pub(crate) fn spawn(
        self,
        rx: mpsc::Receiver<Arc<Event>>,
        stop: watch::Receiver<bool>,
        rt: &Handle,
    ) -> JoinHandle<()> {
        rt.spawn(self.run(rx, stop))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Arc<Event>>, mut stop: watch::Receiver<bool>) {
        loop {
            let ev = tokio::select! {
                biased;
                _ = stopped(&mut stop) => {
                    abandon(&mut rx, SINK, &self.metrics);
                    return;
                }
                got = rx.recv() => match got {
                    Some(ev) => ev,
                    None => return,
                },
            };
            let msg = message::format(&ev, &self.origin, self.cfg.max_len());
            if !self.deliver(&msg, &mut stop).await {
                abandon(&mut rx, SINK, &self.metrics);
                return;
            }
        }
    }

    /// Send one message, reconnecting with backoff on failure. Returns false
    /// when told to stop meanwhile (the message is then counted as dropped).
    async fn deliver(&mut self, msg: &str, stop: &mut watch::Receiver<bool>) -> bool {
        self.retry.deliver(&mut self.sender, msg, 1, stop).await
    }
}

impl Deliver for Sender {
    type Unit = str;

    async fn attempt(&mut self, msg: &str) -> Result<(), DeliveryError> {
        self.try_send(msg).await.map_err(|e| {
            // Reconnect for the next attempt.
            self.conn = None;
            DeliveryError {
                retryable: true,
                message: format!("{}: {e}", self.address),
            }
        })
    }
}

impl Sender {
    async fn try_send(&mut self, msg: &str) -> std::io::Result<()> {
        let timeout = self.timeout;
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c = tokio::time::timeout(timeout, Conn::connect(self.transport, &self.address))
                    .await
                    .map_err(|_| timed_out("connect"))??;
                self.conn.insert(c)
            }
        };
        tokio::time::timeout(timeout, conn.send(msg))
            .await
            .map_err(|_| timed_out("send"))?
    }
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports_and_facilities() {
        assert_eq!("tcp".parse::<Transport>(), Ok(Transport::Tcp));
        assert!(
            "tls"
                .parse::<Transport>()
                .unwrap_err()
                .contains("unix, udp or tcp")
        );
        assert_eq!("local0".parse::<Facility>(), Ok(Facility::LOCAL0));
        assert_eq!("authpriv".parse::<Facility>().map(Facility::code), Ok(10));
        assert_eq!(Facility::DAEMON.name(), "daemon");
        assert!("local8".parse::<Facility>().is_err());
    }

    #[test]
    fn validates_addresses() {
        let cfg = |transport, address: &str| SyslogConfig {
            transport,
            address: address.to_owned(),
            ..Default::default()
        };
        assert!(cfg(Transport::Udp, "127.0.0.1:514").validate().is_ok());
        assert!(cfg(Transport::Tcp, "[::1]:6514").validate().is_ok());
        assert!(cfg(Transport::Tcp, "logs.example:601").validate().is_ok());
        assert!(cfg(Transport::Unix, "/dev/log").validate().is_ok());
        for (t, a) in [
            (Transport::Udp, "127.0.0.1"),
            (Transport::Tcp, ":514"),
            (Transport::Tcp, "h:0"),
            (Transport::Udp, "h:99999"),
            (Transport::Unix, ""),
        ] {
            let e = cfg(t, a).validate().expect_err(a).to_string();
            assert!(e.contains(&format!("{a:?}")), "{e}");
        }
    }
}
