//! Alertmanager sink: posts alert events to `<url>/api/v2/alerts` of every
//! replica of an Alertmanager cluster.
//!
//! A cluster gossips silences and the notification log, not alerts, so
//! every alert goes to every replica. One task (the dispatcher) owns the
//! sink queue's receiving end: it batches what is queued, deduplicates per
//! (rule, executable) and hands each batch to every replica's own queue
//! without waiting. Each replica has a task of its own that posts with
//! retries and backoff (`retry.rs`) and posts the watchdog alert every
//! heartbeat: a replica that is down holds its batches (its queue bounded;
//! what does not fit is dropped and counted for that replica) until it is
//! back or the alerts would have ended, and a hung one only ever waits
//! itself. Only the replica tasks ever wait on Alertmanager.

mod auth;
mod dedup;
mod payload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

pub(crate) use self::auth::Credentials;
pub use self::auth::{CredentialError, Staged};
use self::dedup::{Dedup, Release};
use self::payload::PostableAlert;
use super::SinkError;
use super::backoff::Backoff;
use super::queue::{abandon, gather, stopped};
use super::retry::{Deliver, DeliveryError, Retry};
use crate::config;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::names::Name;
use crate::util::throttle::LogThrottle;

pub(crate) const SINK: &str = "alertmanager";
/// Alerts per POST.
const MAX_BATCH: usize = 64;
/// Alerts taken from the sink's queue at a time.
const TAKE: usize = 1024;
/// Distinct (rule, executable) keys remembered for deduplication.
const MAX_KEYS: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    rule: &'static str,
    executable: Option<Name>,
}

/// The sink: the dispatcher's state, and each replica ready to start.
pub(crate) struct AlertmanagerSink {
    cfg: config::AlertmanagerSink,
    host: Arc<str>,
    metrics: Arc<Metrics>,
    dedup: Dedup<Key, Arc<Event>>,
    replicas: Vec<Replica>,
    credentials: Arc<Credentials>,
}

/// One batch waiting in a replica's queue, holding its room there.
struct Queued {
    batch: Body,
    /// Past this, the batch's alerts would have ended: it is given up.
    stale_at: tokio::time::Instant,
    _room: OwnedSemaphorePermit,
}

/// The dispatcher's end of a replica's queue. The queue is bounded in
/// alerts (the semaphore's permits), not in batches.
struct ReplicaQueue {
    name: Arc<str>,
    tx: mpsc::UnboundedSender<Queued>,
    room: Arc<Semaphore>,
    full: LogThrottle,
}

/// One replica's delivery task.
struct Replica {
    name: Arc<str>,
    poster: Poster,
    retry: Retry,
    metrics: Arc<Metrics>,
    host: Arc<str>,
    heartbeat: Duration,
    watchdog_warn: LogThrottle,
}

/// A batch of alerts as the JSON array Alertmanager takes, serialized once
/// for every replica and every retry.
#[derive(Clone)]
struct Body {
    json: bytes::Bytes,
    alerts: usize,
}

impl Body {
    fn of(alerts: &[PostableAlert]) -> Body {
        Body {
            // A Vec of strings and maps cannot fail to serialize.
            json: serde_json::to_vec(alerts).expect("alerts serialize").into(),
            alerts: alerts.len(),
        }
    }

    fn len(&self) -> usize {
        self.alerts
    }
}

/// One POST of a batch to one replica's `/api/v2/alerts`.
struct Poster {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    credentials: Arc<Credentials>,
}

impl AlertmanagerSink {
    pub(crate) fn new(
        cfg: &config::AlertmanagerSink,
        host: Arc<str>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        let endpoints = cfg.endpoints()?;
        let client = http_client(cfg)?;
        let credentials = Credentials::load(cfg.auth.as_ref())?;
        let replicas = cfg
            .urls
            .iter()
            .zip(endpoints)
            .map(|(url, endpoint)| {
                let name = crate::metrics::replica_label(&config::replica_name(url));
                Replica {
                    retry: Retry::new(
                        SINK,
                        cfg.max_retries,
                        Backoff {
                            base: Duration::from_millis(250),
                            max: Duration::from_secs(8),
                        },
                        Arc::clone(&metrics),
                    )
                    .for_replica(Arc::clone(&name)),
                    name,
                    poster: Poster {
                        client: client.clone(),
                        endpoint,
                        credentials: Arc::clone(&credentials),
                    },
                    metrics: Arc::clone(&metrics),
                    host: Arc::clone(&host),
                    heartbeat: cfg.heartbeat.max(Duration::from_secs(1)),
                    watchdog_warn: LogThrottle::new(Duration::from_secs(60)),
                }
            })
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            host,
            metrics,
            dedup: Dedup::new(cfg.dedup_window, cfg.rate_limit_per_minute, MAX_KEYS),
            replicas,
            credentials,
        })
    }

    /// The credentials, for SIGHUP to read again.
    pub(crate) fn credentials(&self) -> Arc<Credentials> {
        Arc::clone(&self.credentials)
    }

    pub(crate) fn spawn(
        mut self,
        rx: mpsc::Receiver<Arc<Event>>,
        stop: watch::Receiver<bool>,
        rt: &Handle,
    ) -> JoinHandle<()> {
        let started = OffsetDateTime::now_utc();
        let capacity = self.cfg.queue.max(1);
        let mut queues = Vec::with_capacity(self.replicas.len());
        let mut tasks = Vec::with_capacity(self.replicas.len());
        for replica in std::mem::take(&mut self.replicas) {
            self.metrics.declare_replica(SINK, &replica.name);
            self.metrics.declare_watchdog(&replica.name);
            let (tx, qrx) = mpsc::unbounded_channel();
            queues.push(ReplicaQueue {
                name: Arc::clone(&replica.name),
                tx,
                room: Arc::new(Semaphore::new(capacity)),
                full: LogThrottle::new(Duration::from_secs(60)),
            });
            tasks.push(rt.spawn(replica.run(qrx, stop.clone(), started)));
        }
        rt.spawn(self.run(rx, stop, queues, tasks))
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Arc<Event>>,
        mut stop: watch::Receiver<bool>,
        mut queues: Vec<ReplicaQueue>,
        tasks: Vec<JoinHandle<()>>,
    ) {
        let mut evs = Vec::with_capacity(TAKE);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let batch = tokio::select! {
                biased;
                _ = stopped(&mut stop) => {
                    // Each replica counts what its own queue still holds.
                    abandon(&mut rx, SINK, &self.metrics);
                    break;
                }
                _ = tick.tick() => {
                    let released = self.dedup.due(Instant::now());
                    self.payloads(released)
                }
                got = rx.recv_many(&mut evs, TAKE) => match got {
                    0 => {
                        // Queue closed by shutdown: hand over the repeat
                        // counts still pending, then let the replicas finish.
                        let pending = self.dedup.drain_pending();
                        let batch = self.payloads(pending);
                        self.fan_out(batch, &mut queues);
                        break;
                    }
                    _ => {
                        let batch = self.admit(evs.drain(..));
                        self.fan_out(batch, &mut queues);
                        // Let the next records gather (see `GATHER`).
                        if !gather(&mut stop).await {
                            abandon(&mut rx, SINK, &self.metrics);
                            break;
                        }
                        continue;
                    }
                },
            };
            self.fan_out(batch, &mut queues);
        }
        // Closing the replica queues lets each task deliver what it holds
        // and return (or, told to stop, count it as dropped).
        drop(queues);
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Hands `batch` to every replica's queue, never waiting: a replica
    /// whose queue is full drops it, counted under its name.
    fn fan_out(&self, batch: Vec<PostableAlert>, queues: &mut [ReplicaQueue]) {
        if batch.is_empty() {
            return;
        }
        let stale_at = tokio::time::Instant::now() + self.cfg.resolve_after();
        for chunk in batch.chunks(MAX_BATCH) {
            let chunk = Body::of(chunk);
            let n = chunk.len();
            for q in queues.iter_mut() {
                let queued = u32::try_from(n)
                    .ok()
                    .and_then(|n| Arc::clone(&q.room).try_acquire_many_owned(n).ok())
                    .map(|room| Queued {
                        batch: chunk.clone(),
                        stale_at,
                        _room: room,
                    });
                let Some(queued) = queued else {
                    self.metrics.replica_dropped(SINK, Some(&q.name), n as u64);
                    if let Some(held) = q.full.allow(Instant::now()) {
                        tracing::warn!(
                            sink = SINK,
                            replica = %q.name,
                            records = n,
                            similar_warnings_held_back = held,
                            "this replica's queue is full (it is down or slow): dropping alerts for it"
                        );
                    }
                    continue;
                };
                if q.tx.send(queued).is_err() {
                    // Its task is gone (told to stop).
                    self.metrics.replica_dropped(SINK, Some(&q.name), n as u64);
                }
            }
        }
    }

    fn admit(&mut self, evs: impl ExactSizeIterator<Item = Arc<Event>>) -> Vec<PostableAlert> {
        let now = Instant::now();
        let mut released = Vec::with_capacity(evs.len());
        for ev in evs {
            let Some(alert) = ev.alert.as_ref() else {
                continue;
            };
            let key = Key {
                rule: alert.rule_id,
                executable: ev.process.as_ref().and_then(|p| p.executable.clone()),
            };
            let rule = alert.rule_id;
            match self.dedup.admit(key, Arc::clone(&ev), now) {
                Some(r) => released.push(r),
                None => self.metrics.alert_suppressed(rule),
            }
        }
        self.payloads(released)
    }

    fn payloads(&self, released: Vec<Release<Arc<Event>>>) -> Vec<PostableAlert> {
        let now = OffsetDateTime::now_utc();
        let resolve_after = self.cfg.resolve_after();
        released
            .into_iter()
            .filter_map(|r| payload::build(&r.item, &self.host, r.suppressed, now, resolve_after))
            .collect()
    }
}

impl Replica {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Queued>,
        mut stop: watch::Receiver<bool>,
        started: OffsetDateTime,
    ) {
        let mut beat = tokio::time::interval(self.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => break,
                // Before the queue: a replica that is always busy still
                // gets its watchdog every heartbeat.
                _ = beat.tick() => {
                    if !self.watchdog(started, &mut stop).await {
                        break;
                    }
                }
                got = rx.recv() => match got {
                    Some(q) => {
                        let n = q.batch.len() as u64;
                        let delivered = self
                            .retry
                            .deliver_until(&mut self.poster, &q.batch, n, &mut stop, Some(q.stale_at))
                            .await;
                        if !delivered {
                            break;
                        }
                    }
                    // Closed and drained: shutdown.
                    None => return,
                },
            }
        }
        // Told to stop: what is still queued will not be delivered.
        rx.close();
        let mut left = 0;
        while let Ok(q) = rx.try_recv() {
            left += q.batch.len() as u64;
        }
        if left > 0 {
            self.metrics.replica_dropped(SINK, Some(&self.name), left);
            tracing::warn!(sink = SINK, replica = %self.name, records = left, "stopped with alerts still queued for this replica");
        }
    }

    /// Posts the watchdog once (its next heartbeat is its retry). False
    /// when told to stop meanwhile.
    async fn watchdog(
        &mut self,
        started: OffsetDateTime,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let now = OffsetDateTime::now_utc();
        let alert = payload::watchdog(&self.host, started, now, self.heartbeat);
        let body = Body::of(std::slice::from_ref(&alert));
        let result = tokio::select! {
            biased;
            _ = stopped(stop) => return false,
            r = self.poster.attempt(&body) => r,
        };
        match result {
            Ok(()) => self.metrics.watchdog_post(&self.name, true),
            Err(e) => {
                self.metrics.watchdog_post(&self.name, false);
                self.metrics.replica_error(SINK, Some(&self.name));
                if let Some(held) = self.watchdog_warn.allow(Instant::now()) {
                    tracing::warn!(
                        sink = SINK,
                        replica = %self.name,
                        error = %e.message,
                        similar_warnings_held_back = held,
                        "cannot post the watchdog alert to this replica"
                    );
                }
            }
        }
        true
    }
}

/// The HTTP client every replica's requests go through: rustls with the
/// `tls_config` (or the system's roots) when a URL is https.
fn http_client(cfg: &config::AlertmanagerSink) -> Result<reqwest::Client, SinkError> {
    let timeout = cfg.timeout.max(Duration::from_millis(1));
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("rename-audit/", env!("CARGO_PKG_VERSION")));
    if cfg.urls.iter().any(|u| u.scheme() == "https") {
        let tls = cfg.tls.clone().unwrap_or_default();
        builder = builder.use_preconfigured_tls(super::tls::client_config(&tls, SINK)?);
    }
    builder.build().map_err(SinkError::HttpClient)
}

impl Deliver for Poster {
    type Unit = Body;

    async fn attempt(&mut self, batch: &Body) -> Result<(), DeliveryError> {
        let post = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(batch.json.clone());
        let request = self.credentials.apply(post);
        let resp = request.send().await.map_err(|e| {
            let (retryable, reason) = explain(&e);
            DeliveryError {
                retryable,
                message: format!("{}: {reason}", self.endpoint),
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        let hint = match status {
            reqwest::StatusCode::UNAUTHORIZED if self.credentials.configured() => {
                " (the replica refused the credentials: check basic_auth or authorization)"
            }
            reqwest::StatusCode::UNAUTHORIZED => {
                " (the replica wants credentials: set basic_auth or authorization)"
            }
            reqwest::StatusCode::FORBIDDEN => " (the replica refused these credentials)",
            _ => "",
        };
        Err(DeliveryError {
            // 4xx means Alertmanager rejected the alerts or the credentials;
            // sending them again cannot help. 408/429 are the exceptions.
            retryable: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT,
            message: format!(
                "{}: HTTP {status}{hint}: {}",
                self.endpoint,
                one_line(body.trim())
            ),
        })
    }
}

/// Whether a failed request is worth retrying, and why it failed in words
/// an operator can act on, followed by the whole error chain. A TLS
/// refusal (an untrusted or expired certificate, a client certificate the
/// server refused) is the configuration's, not the network's: retrying it
/// cannot help.
fn explain(e: &reqwest::Error) -> (bool, String) {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        chain.push(err.to_string());
        source = err.source();
    }
    let tls = find_rustls(e);
    chain.dedup();
    let detail = one_line(&chain.join(": "));
    let Some(tls) = tls else {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        return (true, format!("{what}: {detail}"));
    };
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let reason = match &tls {
        E::InvalidCertificate(
            C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension,
        ) => "the server's certificate is not signed by a trusted CA (tls_config.ca_file)",
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired"
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet (is the clock right?)"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate is not for this host (tls_config.server_name)"
        }
        E::InvalidCertificate(C::Revoked) => "the server's certificate is revoked",
        E::InvalidCertificate(_) => "the server's certificate is refused",
        E::AlertReceived(
            A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied,
        ) => {
            "the server refused the client certificate, or none was sent              (tls_config.cert_file and key_file)"
        }
        E::AlertReceived(_) | E::PeerIncompatible(_) | E::NoCertificatesPresented => {
            "the TLS handshake failed"
        }
        // Anything else (a connection cut mid-handshake) may pass.
        _ => return (true, format!("TLS failed: {detail}")),
    };
    (false, format!("{reason}: {detail}"))
}

/// The rustls error somewhere in `err`'s chain. An `io::Error` wrapping one
/// (as tokio-rustls makes) hides it from `source()`, which skips to the
/// wrapped error's own source: look inside those too.
fn find_rustls(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls.clone());
    }
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        let inner: &(dyn std::error::Error + 'static) = inner;
        if let Some(tls) = find_rustls(inner) {
            return Some(tls);
        }
    }
    err.source().and_then(find_rustls)
}

/// Error texts may quote a server's words: keep them on one line.
fn one_line(s: &str) -> String {
    if s.chars().any(char::is_control) {
        Name::new(s.as_bytes().to_vec()).escaped()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(n: usize) -> PostableAlert {
        PostableAlert {
            labels: [("alertname", format!("A{n}"))].into_iter().collect(),
            annotations: Default::default(),
            starts_at: "2026-01-01T00:00:00Z".into(),
            ends_at: "2026-01-01T00:10:00Z".into(),
        }
    }

    /// Each replica's queue is bounded in alerts: what does not fit is
    /// dropped for that replica alone, and counted under its name.
    #[tokio::test]
    async fn a_full_replica_queue_drops_for_that_replica_only() {
        let metrics = Metrics::new();
        let cfg = config::AlertmanagerSink {
            urls: vec![
                reqwest::Url::parse("http://127.0.0.1:1").unwrap(),
                reqwest::Url::parse("http://127.0.0.1:2").unwrap(),
            ],
            queue: 4,
            ..config::AlertmanagerSink::new(reqwest::Url::parse("http://x").unwrap())
        };
        let sink = AlertmanagerSink::new(&cfg, Arc::from("h"), Arc::clone(&metrics)).unwrap();
        let mut receivers = Vec::new();
        let mut queues: Vec<ReplicaQueue> = sink
            .replicas
            .iter()
            .map(|r| {
                metrics.declare_replica(SINK, &r.name);
                let (tx, rx) = mpsc::unbounded_channel();
                receivers.push(rx);
                ReplicaQueue {
                    name: Arc::clone(&r.name),
                    tx,
                    room: Arc::new(Semaphore::new(cfg.queue)),
                    full: LogThrottle::new(Duration::from_secs(60)),
                }
            })
            .collect();
        sink.fan_out((0..3).map(alert).collect(), &mut queues);
        // The second replica takes its first batch: room for 3 more there.
        let taken = receivers[1].try_recv().expect("queued");
        assert_eq!(taken.batch.len(), 3);
        drop(taken);
        sink.fan_out((0..2).map(alert).collect(), &mut queues);
        let dropped = |port: u16| {
            metrics
                .encode()
                .lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "rename_audit_sink_queue_dropped_total{{sink=\"alertmanager\",replica=\"http://127.0.0.1:{port}\"}}"
                    ))
                })
                .map(|l| l.rsplit_once(' ').unwrap().1.to_owned())
        };
        assert_eq!(dropped(1).as_deref(), Some("2"), "3 + 2 > 4 for the first");
        assert_eq!(dropped(2).as_deref(), Some("0"), "the second had room");
        assert_eq!(receivers[0].try_recv().unwrap().batch.len(), 3);
        assert_eq!(receivers[1].try_recv().unwrap().batch.len(), 2);
    }

    #[test]
    fn resolve_after_outlasts_the_dedup_window() {
        let url = reqwest::Url::parse("http://127.0.0.1:9093").unwrap();
        let cfg = config::AlertmanagerSink {
            dedup_window: Duration::from_secs(900),
            resolve_timeout: Duration::from_secs(60),
            ..config::AlertmanagerSink::new(url.clone())
        };
        assert_eq!(cfg.resolve_after(), Duration::from_secs(960));
        assert_eq!(
            config::AlertmanagerSink::new(url).resolve_after(),
            Duration::from_secs(600)
        );
    }
}
