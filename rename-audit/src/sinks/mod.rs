//! Fleet sinks: Prometheus `/metrics`, Alertmanager, syslog.
//!
//! Each sink is optional and runs as a task on the daemon's tokio runtime
//! behind its own bounded queue. The producer, a plain OS thread on the
//! capture path, only ever calls [`Sinks::send`], which never waits: a record
//! that does not fit a sink's queue is counted in
//! `rename_audit_sink_queue_dropped_total{sink}`. A slow or dead sink
//! therefore costs capture nothing and holds at most its queue in memory.
//!
//! Per sink, every record offered ends up in exactly one of
//! `rename_audit_sink_sent_total`, `rename_audit_sink_failed_total` (given up
//! after retries) or `rename_audit_sink_queue_dropped_total` (queue full, or
//! still queued at the shutdown deadline); Alertmanager adds
//! `rename_audit_alerts_suppressed_total` for deduplicated repeats, and its
//! `sent` also counts the re-posts that carry a repeat count. Alertmanager
//! delivers to every replica, so it counts each replica's outcomes under
//! `{sink, replica}` (its own queue's drops stay under `{sink}`).
//! `rename_audit_sink_errors_total` counts failed attempts, retries included.
//!
//! Alertmanager and syslog share one delivery loop (`retry.rs`): each says
//! how one attempt is made, and the loop retries with backoff, gives up
//! after a bound and counts every record once.

pub mod alertmanager;
mod backoff;
pub mod prometheus;
mod queue;
mod retry;
pub mod syslog;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::prometheus::MetricsServer;
use self::queue::SinkQueue;
/// Re-exported where it was first public (the syslog sink's facility); the
/// configuration owns it.
pub use crate::config::Facility;
use crate::config::{EndpointError, SinksConfig, SyslogSink};
use crate::event::Event;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("prometheus: cannot listen on {addr}: {source} ({hint})")]
    Bind {
        addr: SocketAddr,
        hint: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    AlertmanagerUrl(#[from] EndpointError),
    #[error("alertmanager: cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("alertmanager: {0}")]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Credentials(#[from] alertmanager::CredentialError),
    #[error("{sink}: the queue size must be at least 1")]
    EmptyQueue { sink: &'static str },
    #[error("syslog: {0}")]
    SyslogTls(String),
}

struct Worker {
    name: &'static str,
    queue: SinkQueue,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    fn new(
        name: &'static str,
        capacity: usize,
        metrics: &Arc<Metrics>,
        spawn: impl FnOnce(
            tokio::sync::mpsc::Receiver<Arc<Event>>,
            watch::Receiver<bool>,
        ) -> JoinHandle<()>,
    ) -> Result<Self, SinkError> {
        if capacity == 0 {
            return Err(SinkError::EmptyQueue { sink: name });
        }
        metrics.declare_sink(name);
        let (queue, rx) = SinkQueue::new(name, capacity, Arc::clone(metrics));
        let (stop, stop_rx) = watch::channel(false);
        let task = spawn(rx, stop_rx);
        Ok(Self {
            name,
            queue,
            stop,
            task,
        })
    }
}

/// Sink losses are reported at most this often (see
/// [`Sinks::losses_to_report`]).
pub const LOSS_REPORT_EVERY: Duration = Duration::from_secs(10);

/// The sinks' secret files (Alertmanager's `password_file` or
/// `credentials_file`), read again on SIGHUP.
#[derive(Clone, Debug)]
pub struct SecretFiles(Option<Arc<alertmanager::Credentials>>);

/// Secrets read again and checked, not yet in use.
pub struct StagedSecrets(Option<alertmanager::Staged>);

impl SecretFiles {
    /// Reads every secret file again; nothing changes until
    /// [`SecretFiles::install`], so a reload that fails elsewhere keeps the
    /// secrets in use. The error names the file, never the secret.
    pub fn read(&self) -> Result<StagedSecrets, SinkError> {
        Ok(StagedSecrets(
            self.0.as_ref().map(|c| c.read()).transpose()?,
        ))
    }

    pub fn install(&self, staged: StagedSecrets) {
        if let (Some(creds), Some(staged)) = (&self.0, staged.0) {
            creds.install(staged);
        }
    }
}

/// The running sinks.
pub struct Sinks {
    alertmanager: Option<Worker>,
    credentials: Option<Arc<alertmanager::Credentials>>,
    syslog: Option<(Worker, SyslogSink)>,
    prometheus: Option<MetricsServer>,
    metrics: Arc<Metrics>,
    last_loss_report: Option<std::time::Instant>,
}

impl Sinks {
    /// Check the configuration, bind `/metrics`, and start the sink tasks on
    /// `rt`. Callable from any thread, inside or outside the runtime.
    pub fn start(
        cfg: &SinksConfig,
        metrics: Arc<Metrics>,
        host: Arc<str>,
        rt: &Handle,
    ) -> Result<Sinks, SinkError> {
        // Build everything fallible before spawning anything, so an error
        // leaves no task behind.
        let am = cfg
            .alertmanager
            .as_ref()
            .map(|c| {
                alertmanager::AlertmanagerSink::new(c, Arc::clone(&host), Arc::clone(&metrics))
                    .map(|s| (c.queue, s))
            })
            .transpose()?;
        let sl = cfg
            .syslog
            .as_ref()
            .map(|c| syslog::SyslogSink::new(c, &host, Arc::clone(&metrics)).map(|s| (c, s)))
            .transpose()?;
        for (sink, q) in [
            (
                alertmanager::SINK,
                cfg.alertmanager.as_ref().map(|c| c.queue),
            ),
            (syslog::SINK, cfg.syslog.as_ref().map(|c| c.queue)),
        ] {
            if q == Some(0) {
                return Err(SinkError::EmptyQueue { sink });
            }
        }
        let prometheus = cfg
            .prometheus
            .as_ref()
            .map(|p| prometheus::serve(p.listen, Arc::clone(&metrics), rt))
            .transpose()?;

        let credentials = am.as_ref().map(|(_, s)| s.credentials());
        let alertmanager = am
            .map(|(q, s)| {
                Worker::new(alertmanager::SINK, q, &metrics, |rx, stop| {
                    s.spawn(rx, stop, rt)
                })
            })
            .transpose()?;
        let syslog = sl
            .map(|(c, s)| {
                Worker::new(syslog::SINK, c.queue, &metrics, |rx, stop| {
                    s.spawn(rx, stop, rt)
                })
                .map(|w| (w, c.clone()))
            })
            .transpose()?;
        Ok(Sinks {
            alertmanager,
            credentials,
            syslog,
            prometheus,
            metrics,
            last_loss_report: None,
        })
    }

    /// Hand one output record to every sink that takes it. Never blocks and
    /// needs no runtime context: call it from the capture thread.
    pub fn send(&self, ev: &Arc<Event>) {
        for worker in self.takers(ev).into_iter().flatten() {
            worker.queue.offer(ev);
        }
    }

    /// As [`Sinks::send`], for a record nobody shares yet: it is put in an
    /// `Arc` only when a sink takes it, so a daemon without sinks (or with
    /// sinks that want alerts only) allocates nothing more per event.
    pub fn offer(&self, ev: Box<Event>) {
        let takers = self.takers(&ev);
        if takers.iter().any(Option::is_some) {
            let ev = Arc::new(*ev);
            for worker in takers.into_iter().flatten() {
                worker.queue.offer(&ev);
            }
        }
    }

    /// The sinks that take `ev`: Alertmanager takes alerts, syslog what its
    /// configuration asks for.
    fn takers(&self, ev: &Event) -> [Option<&Worker>; 2] {
        [
            self.alertmanager.as_ref().filter(|_| ev.alert.is_some()),
            self.syslog
                .as_ref()
                .filter(|(_, cfg)| syslog::wants(cfg, ev))
                .map(|(worker, _)| worker),
        ]
    }

    /// Records the sinks lost since the last report, by sink and reason:
    /// the first loss at once, later ones at most every
    /// [`LOSS_REPORT_EVERY`] (summed), or now when `force`d.
    pub fn losses_to_report(
        &mut self,
        now: std::time::Instant,
        force: bool,
    ) -> Vec<(&'static str, crate::event::LostReason, u64)> {
        let due = force
            || self
                .last_loss_report
                .is_none_or(|at| now.saturating_duration_since(at) >= LOSS_REPORT_EVERY);
        if !due {
            return Vec::new();
        }
        let losses = self.metrics.take_sink_losses();
        if !losses.is_empty() {
            self.last_loss_report = Some(now);
        }
        losses
    }

    /// The sinks' secret files, for SIGHUP to read again. Take it before
    /// handing the sinks to the pipeline thread.
    pub fn secrets(&self) -> SecretFiles {
        SecretFiles(self.credentials.clone())
    }

    /// Where `/metrics` listens, when it does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.prometheus.as_ref().map(MetricsServer::local_addr)
    }

    /// Close the queues and let each sink deliver what is queued, for at most
    /// `deadline`; whatever is left then is counted as dropped.
    pub async fn shutdown(self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        let workers: Vec<Worker> = self
            .alertmanager
            .into_iter()
            .chain(self.syslog.map(|(w, _)| w))
            .collect();
        let mut running = Vec::with_capacity(workers.len());
        for w in workers {
            // Dropping the only sender closes the queue: the task drains it
            // and returns.
            drop(w.queue);
            running.push((w.name, w.stop, w.task));
        }
        for (name, stop, mut task) in running {
            if tokio::time::timeout_at(until, &mut task).await.is_ok() {
                continue;
            }
            // Out of time: the task stops waiting, counts what it could not
            // deliver, and returns.
            let _ = stop.send(true);
            if tokio::time::timeout(Duration::from_millis(500), &mut task)
                .await
                .is_err()
            {
                tracing::warn!(sink = name, "sink did not stop; aborting it");
                task.abort();
            }
        }
        if let Some(p) = self.prometheus {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            p.stop(left.max(Duration::from_millis(100))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LostReason;
    use std::time::Instant;

    #[test]
    fn losses_are_reported_at_once_then_at_most_every_interval_summed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let metrics = Metrics::new();
        let mut sinks = Sinks::start(
            &SinksConfig::default(),
            Arc::clone(&metrics),
            Arc::from("h"),
            rt.handle(),
        )
        .unwrap();
        let t0 = Instant::now();
        assert!(sinks.losses_to_report(t0, false).is_empty(), "nothing lost");
        metrics.sink_dropped("syslog");
        metrics.sink_failed("syslog", 2, LostReason::SendFailed);
        assert_eq!(
            sinks.losses_to_report(t0, false),
            vec![
                ("syslog", LostReason::QueueFull, 1),
                ("syslog", LostReason::SendFailed, 2)
            ],
            "the first loss at once"
        );
        metrics.sink_failed("syslog", 3, LostReason::SendFailed);
        metrics.sink_failed("syslog", 1, LostReason::TooBig);
        metrics.sink_failed("syslog", 4, LostReason::SendFailed);
        let later = t0 + LOSS_REPORT_EVERY - Duration::from_millis(1);
        assert!(sinks.losses_to_report(later, false).is_empty(), "held back");
        assert_eq!(
            sinks.losses_to_report(t0 + LOSS_REPORT_EVERY, false),
            vec![
                ("syslog", LostReason::SendFailed, 7),
                ("syslog", LostReason::TooBig, 1)
            ],
            "summed, per sink and reason"
        );
        metrics.sink_dropped_n("alertmanager", 5);
        assert_eq!(
            sinks.losses_to_report(t0 + LOSS_REPORT_EVERY, true),
            vec![("alertmanager", LostReason::Shutdown, 5)],
            "forced at the end"
        );
        let text = metrics.encode();
        for line in [
            "rename_audit_sink_lost_total{sink=\"syslog\",reason=\"send-failed\"} 9\n",
            "rename_audit_sink_lost_total{sink=\"syslog\",reason=\"queue-full\"} 1\n",
            "rename_audit_events_lost_total{class=\"sink\"} 16\n",
            "rename_audit_events_lost_by_reason_total{class=\"sink\",reason=\"too-big\"} 1\n",
            "rename_audit_sink_failed_total{sink=\"syslog\"} 10\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
