//! The delivery loop every sink shares: try, count, back off, retry, give
//! up after a bound, and stop waiting the moment shutdown says so. A sink
//! only says how one attempt is made ([`Deliver`]); what happens around it
//! is the same for Alertmanager and syslog.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::backoff::Backoff;
use super::queue::stopped;
use crate::event::LostReason;
use crate::metrics::Metrics;
use crate::util::throttle::LogThrottle;

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) struct DeliveryError {
    /// Sending the same thing again may work (a timeout, a 5xx); a refusal
    /// of the content itself (a 4xx) is not retried.
    pub retryable: bool,
    pub message: String,
}

/// One sink's way of delivering a unit of work (a batch of alerts, a
/// syslog message).
pub(crate) trait Deliver {
    type Unit: ?Sized;
    /// One attempt. A sink that keeps a connection drops it on failure, so
    /// the next attempt reconnects.
    async fn attempt(&mut self, unit: &Self::Unit) -> Result<(), DeliveryError>;

    /// Why a unit given up after the failed attempt `err` is lost: it could
    /// not be sent, unless the sink knows better (syslog's `too-big`).
    fn lost_reason(&self, _err: &DeliveryError) -> LostReason {
        LostReason::SendFailed
    }
}

/// The retry policy and its bookkeeping for one sink, or one replica of a
/// sink that delivers to several servers.
pub(crate) struct Retry {
    sink: &'static str,
    /// The replica this loop delivers to, counted and logged as `replica`.
    replica: Option<Arc<str>>,
    /// Retries after the first attempt.
    max_retries: u32,
    backoff: Backoff,
    warn: LogThrottle,
    metrics: Arc<Metrics>,
}

impl Retry {
    pub(crate) fn new(
        sink: &'static str,
        max_retries: u32,
        backoff: Backoff,
        metrics: Arc<Metrics>,
    ) -> Self {
        Retry {
            sink,
            replica: None,
            max_retries,
            backoff,
            warn: LogThrottle::new(Duration::from_secs(60)),
            metrics,
        }
    }

    /// The loop of one replica of the sink: its outcomes are counted under
    /// `{sink, replica}` and its log lines name it.
    pub(crate) fn for_replica(mut self, replica: Arc<str>) -> Self {
        self.replica = Some(replica);
        self
    }

    /// `records` given up because shutdown said stop: a loss for the sink,
    /// or (for one of several replicas) only for that replica.
    fn dropped(&self, replica: Option<&Arc<str>>, records: u64) {
        match replica {
            Some(_) => self.metrics.replica_dropped(self.sink, replica, records),
            None => self.metrics.sink_dropped_n(self.sink, records),
        }
    }

    /// Delivers `unit`, which holds `records` records, with retries and
    /// backoff. Every record ends up counted once: sent, failed (given up)
    /// or dropped (told to stop meanwhile). Returns false in the last case.
    pub(crate) async fn deliver<D: Deliver>(
        &mut self,
        sink: &mut D,
        unit: &D::Unit,
        records: u64,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        self.deliver_until(sink, unit, records, stop, None).await
    }

    /// As [`Retry::deliver`], giving up also when the next retry would come
    /// after `give_up_at` (when what the unit says would be stale).
    pub(crate) async fn deliver_until<D: Deliver>(
        &mut self,
        sink: &mut D,
        unit: &D::Unit,
        records: u64,
        stop: &mut watch::Receiver<bool>,
        give_up_at: Option<tokio::time::Instant>,
    ) -> bool {
        let replica = self.replica.clone();
        let replica = replica.as_ref();
        let mut attempt = 0;
        loop {
            let result = tokio::select! {
                biased;
                _ = stopped(stop) => {
                    self.dropped(replica, records);
                    return false;
                }
                r = sink.attempt(unit) => r,
            };
            let err = match result {
                Ok(()) => {
                    self.metrics.replica_sent(self.sink, replica, records);
                    return true;
                }
                Err(e) => e,
            };
            self.metrics.replica_error(self.sink, replica);
            let delay = self.backoff.delay_now(attempt);
            let stale = give_up_at.is_some_and(|t| tokio::time::Instant::now() + delay > t);
            if !err.retryable || attempt >= self.max_retries || stale {
                match replica {
                    // One replica failing loses nothing while another
                    // delivers: counted per replica, not as a loss.
                    Some(_) => self.metrics.replica_failed(self.sink, replica, records),
                    None => self
                        .metrics
                        .sink_failed(self.sink, records, sink.lost_reason(&err)),
                }
                if let Some(held) = self.warn.allow(Instant::now()) {
                    match replica {
                        Some(replica) => tracing::warn!(
                            sink = self.sink,
                            %replica,
                            records,
                            attempts = attempt + 1,
                            error = %err.message,
                            similar_warnings_held_back = held,
                            "giving up on delivering records to this replica"
                        ),
                        None => tracing::warn!(
                            sink = self.sink,
                            records,
                            attempts = attempt + 1,
                            error = %err.message,
                            similar_warnings_held_back = held,
                            "giving up on delivering records"
                        ),
                    }
                }
                return true;
            }
            match replica {
                // A replica may stay down for long while the others carry
                // on: say so once (then at most once a minute), not only
                // when its alerts are finally given up.
                Some(replica) if attempt == 0 => {
                    if let Some(held) = self.warn.allow(Instant::now()) {
                        tracing::warn!(
                            sink = self.sink,
                            %replica,
                            records,
                            error = %err.message,
                            similar_warnings_held_back = held,
                            "cannot deliver to this replica; holding its records and retrying"
                        );
                    }
                }
                _ => {
                    tracing::debug!(sink = self.sink, error = %err.message, ?delay, "delivery failed; retrying");
                }
            }
            attempt += 1;
            tokio::select! {
                biased;
                _ = stopped(stop) => {
                    self.dropped(replica, records);
                    return false;
                }
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails `fail` times (retryably or not), then succeeds.
    struct Flaky {
        fail: u32,
        retryable: bool,
        attempts: u32,
    }

    impl Deliver for Flaky {
        type Unit = str;
        async fn attempt(&mut self, _unit: &str) -> Result<(), DeliveryError> {
            self.attempts += 1;
            if self.attempts <= self.fail {
                return Err(DeliveryError {
                    retryable: self.retryable,
                    message: "nope".into(),
                });
            }
            Ok(())
        }
    }

    fn counter(metrics: &Metrics, name: &str) -> String {
        metrics
            .encode()
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    }

    /// Paused time: tokio's clock moves only when every task waits, straight
    /// to the next timer, so the backoff is waited out at once and the wait
    /// it chose can be read off the clock exactly.
    #[tokio::test(start_paused = true)]
    async fn retries_then_sends_gives_up_after_the_bound_and_never_retries_a_refusal() {
        let metrics = Metrics::new();
        metrics.declare_sink("syslog");
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(4),
        };
        let mut retry = Retry::new("syslog", 2, backoff, Arc::clone(&metrics));
        let (_tx, mut stop) = watch::channel(false);
        // Two waits, 1 s then 2 s before jitter, which takes off up to a
        // quarter.
        let waited = |from: tokio::time::Instant| {
            let waited = from.elapsed();
            assert!(
                waited >= Duration::from_millis(2250) && waited <= Duration::from_secs(3),
                "two backoffs of 1 s and 2 s, less jitter: {waited:?}"
            );
        };

        let start = tokio::time::Instant::now();
        let mut sink = Flaky {
            fail: 2,
            retryable: true,
            attempts: 0,
        };
        assert!(retry.deliver(&mut sink, "m", 3, &mut stop).await);
        assert_eq!(sink.attempts, 3, "two retries, then sent");
        waited(start);

        let start = tokio::time::Instant::now();
        let mut sink = Flaky {
            fail: 10,
            retryable: true,
            attempts: 0,
        };
        assert!(retry.deliver(&mut sink, "m", 1, &mut stop).await);
        assert_eq!(sink.attempts, 3, "the first attempt and two retries");
        waited(start);

        let start = tokio::time::Instant::now();
        let mut sink = Flaky {
            fail: 10,
            retryable: false,
            attempts: 0,
        };
        assert!(retry.deliver(&mut sink, "m", 1, &mut stop).await);
        assert_eq!(sink.attempts, 1, "a refusal is not retried");
        assert_eq!(start.elapsed(), Duration::ZERO, "nor waited for");

        let at = |name: &str| counter(&metrics, name);
        assert!(at("rename_audit_sink_sent_total{sink=\"syslog\"}").ends_with(" 3"));
        assert!(at("rename_audit_sink_failed_total{sink=\"syslog\"}").ends_with(" 2"));
        assert!(at("rename_audit_sink_errors_total{sink=\"syslog\"}").ends_with(" 6"));
    }

    /// A replica's loop retries a retryable failure past nothing but the
    /// moment its unit goes stale, and counts under `{sink, replica}`.
    #[tokio::test(start_paused = true)]
    async fn a_replica_gives_up_when_the_next_retry_would_be_stale() {
        let metrics = Metrics::new();
        let replica: Arc<str> = Arc::from("https://am1:9093");
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(4),
        };
        let mut retry = Retry::new("alertmanager", u32::MAX, backoff, Arc::clone(&metrics))
            .for_replica(Arc::clone(&replica));
        let (_tx, mut stop) = watch::channel(false);
        let mut sink = Flaky {
            fail: u32::MAX,
            retryable: true,
            attempts: 0,
        };
        let start = tokio::time::Instant::now();
        let stale_at = start + Duration::from_secs(20);
        assert!(
            retry
                .deliver_until(&mut sink, "m", 2, &mut stop, Some(stale_at))
                .await
        );
        assert!(start.elapsed() <= Duration::from_secs(20), "never past it");
        // 1 + 2 + 4 + 4 + 4 s at most (less jitter) fit before 20 s; at
        // least five retries, and never an unbounded loop.
        assert!((5..=9).contains(&sink.attempts), "{}", sink.attempts);
        let at = |name: &str| {
            counter(
                &metrics,
                &format!("{name}{{sink=\"alertmanager\",replica=\"https://am1:9093\"}}"),
            )
        };
        assert!(at("rename_audit_sink_failed_total").ends_with(" 2"));
        assert!(at("rename_audit_sink_errors_total").ends_with(&format!(" {}", sink.attempts)));
        assert!(
            counter(
                &metrics,
                "rename_audit_sink_sent_total{sink=\"alertmanager\"}"
            )
            .is_empty(),
            "nothing counted without the replica"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_during_backoff_counts_the_unit_as_dropped() {
        let metrics = Metrics::new();
        metrics.declare_sink("alertmanager");
        let backoff = Backoff {
            base: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        };
        let mut retry = Retry::new("alertmanager", 5, backoff, Arc::clone(&metrics));
        let (tx, mut stop) = watch::channel(false);
        let mut sink = Flaky {
            fail: 10,
            retryable: true,
            attempts: 0,
        };
        let start = tokio::time::Instant::now();
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let _ = tx.send(true);
        };
        let (delivered, ()) = tokio::join!(retry.deliver(&mut sink, "m", 4, &mut stop), stopper);
        assert!(!delivered);
        assert_eq!(sink.attempts, 1, "stopped in the first backoff");
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(10),
            "the stop ends the backoff at once, not after its hour"
        );
        assert!(
            counter(
                &metrics,
                "rename_audit_sink_queue_dropped_total{sink=\"alertmanager\"}"
            )
            .ends_with(" 4")
        );
    }
}
