//! Syslog sink: RFC 5424 messages over the local datagram socket, UDP, or TCP
//! with octet-counting framing (RFC 6587).

mod message;
mod rfc5424;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::message::Origin;
use self::transport::Conn;
use super::backoff::Backoff;
use super::queue::{abandon, stopped};
use super::retry::{Deliver, DeliveryError, Retry};
use crate::config::{self, SyslogTarget};
use crate::event::Event;
use crate::metrics::Metrics;

pub(crate) const SINK: &str = "syslog";

/// Whether the sink takes the record.
pub(crate) fn wants(cfg: &config::SyslogSink, ev: &Event) -> bool {
    if ev.alert.is_some() {
        cfg.alerts
    } else {
        cfg.events
    }
}

fn max_len(target: &SyslogTarget) -> usize {
    match target {
        // RFC 5426 asks senders to keep datagrams at or under 2048 bytes.
        SyslogTarget::Udp(_) => 2048,
        // rsyslog's default maxMessageSize is 8k.
        SyslogTarget::Unix(_) | SyslogTarget::Tcp(_) => 8000,
    }
}

pub(crate) struct SyslogSink {
    cfg: config::SyslogSink,
    origin: Origin,
    metrics: Arc<Metrics>,
    sender: Sender,
    retry: Retry,
}

/// One message to the server, over a connection kept between messages.
struct Sender {
    target: SyslogTarget,
    timeout: Duration,
    conn: Option<Conn>,
}

impl SyslogSink {
    pub(crate) fn new(cfg: &config::SyslogSink, host: &str, metrics: Arc<Metrics>) -> Self {
        Self {
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
                target: cfg.target.clone(),
                timeout: cfg.timeout.max(Duration::from_millis(1)),
                conn: None,
            },
        }
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
            let msg = message::format(&ev, &self.origin, max_len(&self.cfg.target));
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
                message: format!("{}: {e}", self.target),
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
                let c = tokio::time::timeout(timeout, Conn::connect(&self.target))
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
