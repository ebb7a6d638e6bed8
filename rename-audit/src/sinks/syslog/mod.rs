//! Syslog sink: RFC 5424 messages over the local datagram socket, UDP, TCP
//! with octet-counting framing (RFC 6587), or the same frames in TLS (RFC
//! 5425, rustls with the shared `tls_config`). MSG is a readable line with the
//! fields in structured data (`format = "text"`), or the event's ECS JSON
//! line (`"ecs-json"`).
//!
//! Nothing is cut silently: a datagram the socket refuses as too big
//! (`EMSGSIZE`: over 65,507 bytes for UDP over IPv4, over the socket's send
//! buffer for a unix socket) is counted as lost (`too-big`) and not retried.

mod message;
mod rfc5424;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::message::Origin;
use self::transport::{Conn, TlsClient};
use super::SinkError;
use super::backoff::Backoff;
use super::queue::{abandon, gather, stopped};
use super::retry::{Deliver, DeliveryError, Retry};
use crate::config::{self, SyslogFormat, SyslogTarget};
use crate::event::{Event, LostReason};
use crate::metrics::Metrics;

pub(crate) const SINK: &str = "syslog";
/// Records taken from the queue at a time (see [`super::queue::GATHER`]).
const BATCH: usize = 256;

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
        SyslogTarget::Unix(_) | SyslogTarget::Tcp(_) | SyslogTarget::Tls(_) => 8000,
    }
}

pub(crate) struct SyslogSink {
    cfg: config::SyslogSink,
    origin: Origin,
    metrics: Arc<Metrics>,
    sender: Sender,
    retry: Retry,
    /// The ECS line's buffer, kept between messages.
    line: Vec<u8>,
}

/// One message to the server, over a connection kept between messages.
struct Sender {
    target: SyslogTarget,
    timeout: Duration,
    conn: Option<Conn>,
    /// The last attempt failed because the message is too big to send.
    too_big: bool,
    /// For transport `tls`: the client configuration, built once.
    tls: Option<TlsClient>,
}

impl SyslogSink {
    /// Fails only for transport `tls`, when its files cannot be used.
    pub(crate) fn new(
        cfg: &config::SyslogSink,
        host: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        let tls = match (&cfg.target, &cfg.tls) {
            (SyslogTarget::Tls(address), tls) => {
                let tls = tls.clone().unwrap_or_default();
                let client = super::tls::client_config(&tls, SINK)
                    .map_err(|e| SinkError::SyslogTls(e.to_string()))?;
                Some(
                    TlsClient::new(client, tls.server_name.as_deref(), address)
                        .map_err(SinkError::SyslogTls)?,
                )
            }
            _ => None,
        };
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
            line: Vec::with_capacity(4096),
            sender: Sender {
                target: cfg.target.clone(),
                timeout: cfg.timeout.max(Duration::from_millis(1)),
                conn: None,
                too_big: false,
                tls,
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
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let got = tokio::select! {
                biased;
                _ = stopped(&mut stop) => {
                    abandon(&mut rx, SINK, &self.metrics);
                    return;
                }
                got = rx.recv_many(&mut batch, BATCH) => got,
            };
            if got == 0 {
                // Closed and drained: shutdown.
                return;
            }
            let mut records = batch.drain(..);
            for ev in records.by_ref() {
                let msg = match self.cfg.format {
                    SyslogFormat::Text => {
                        message::format(&ev, &self.origin, max_len(&self.cfg.target))
                    }
                    SyslogFormat::EcsJson => {
                        message::format_ecs_json(&ev, &self.origin, &mut self.line)
                    }
                };
                if !self.deliver(&msg, &mut stop).await {
                    // Taken from the queue but not sent: lost as the queue's.
                    let left = records.len() as u64;
                    if left > 0 {
                        self.metrics.sink_dropped_n(SINK, left);
                    }
                    drop(records);
                    abandon(&mut rx, SINK, &self.metrics);
                    return;
                }
            }
            drop(records);
            if !gather(&mut stop).await {
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
        self.too_big = false;
        self.try_send(msg).await.map_err(|e| {
            // The socket refuses the size: the connection is fine, and no
            // retry can help.
            if e.raw_os_error() == Some(libc::EMSGSIZE) {
                self.too_big = true;
                return DeliveryError {
                    retryable: false,
                    message: format!("{}: a message of {} bytes: {e}", self.target, msg.len()),
                };
            }
            // Reconnect for the next attempt.
            self.conn = None;
            DeliveryError {
                retryable: true,
                message: format!("{}: {e}", self.target),
            }
        })
    }

    fn lost_reason(&self, _err: &DeliveryError) -> LostReason {
        if self.too_big {
            LostReason::TooBig
        } else {
            LostReason::SendFailed
        }
    }
}

impl Sender {
    async fn try_send(&mut self, msg: &str) -> std::io::Result<()> {
        let timeout = self.timeout;
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c =
                    tokio::time::timeout(timeout, Conn::connect(&self.target, self.tls.as_ref()))
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

    fn sender(target: SyslogTarget) -> Sender {
        Sender {
            target,
            timeout: Duration::from_secs(5),
            conn: None,
            too_big: false,
            tls: None,
        }
    }

    /// The real limits, found by the kernel's EMSGSIZE: one byte under is
    /// sent whole, one byte over is refused as too big, without a retry
    /// and without dropping the connection.
    async fn limit_holds(s: &mut Sender, limit: usize, received: impl Fn() -> usize) {
        let fits = "x".repeat(limit);
        s.attempt(&fits)
            .await
            .expect("a message at the limit is sent");
        assert_eq!(received(), limit, "sent whole, not cut");
        assert_eq!(
            s.lost_reason(&DeliveryError {
                retryable: true,
                message: String::new()
            }),
            LostReason::SendFailed
        );
        let over = "x".repeat(limit + 1);
        let err = s
            .attempt(&over)
            .await
            .expect_err("one byte more is refused");
        assert!(!err.retryable, "{}", err.message);
        assert_eq!(s.lost_reason(&err), LostReason::TooBig);
        assert!(
            err.message.contains(&format!("{} bytes", limit + 1)),
            "{}",
            err.message
        );
        assert!(s.conn.is_some(), "the connection is kept");
        s.attempt("small").await.expect("and still works");
        assert_eq!(received(), 5);
    }

    #[tokio::test]
    async fn udp_refuses_a_datagram_over_65507_bytes_as_too_big() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = sender(SyslogTarget::Udp(rx.local_addr().unwrap().to_string()));
        let received = || {
            let mut buf = vec![0u8; 70_000];
            rx.recv(&mut buf).unwrap()
        };
        limit_holds(&mut s, 65_507, received).await;
    }

    #[tokio::test]
    async fn a_unix_socket_refuses_a_datagram_over_its_send_buffer_as_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = sender(SyslogTarget::Unix(path));
        s.attempt("probe").await.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        assert_eq!(rx.recv(&mut buf).unwrap(), 5);
        // The kernel refuses a datagram longer than the sender's send
        // buffer less 32 bytes (unix_dgram_sendmsg); that buffer is
        // net.core.wmem_default unless set.
        let sndbuf = match &s.conn {
            Some(transport::Conn::Unix(sock)) => {
                use std::os::fd::AsRawFd;
                let mut v: libc::c_int = 0;
                let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: getsockopt writes at most `len` bytes into `v`.
                let rc = unsafe {
                    libc::getsockopt(
                        sock.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_SNDBUF,
                        (&raw mut v).cast(),
                        &raw mut len,
                    )
                };
                assert_eq!(rc, 0);
                usize::try_from(v).unwrap()
            }
            _ => unreachable!("a unix target connects a unix socket"),
        };
        let received = move || rx.recv(&mut vec![0u8; 1 << 20]).unwrap();
        limit_holds(&mut s, sndbuf - 32, received).await;
    }
}
