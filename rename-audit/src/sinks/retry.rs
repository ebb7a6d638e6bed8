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

/// The retry policy and its bookkeeping for one sink.
pub(crate) struct Retry {
    sink: &'static str,
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
            max_retries,
            backoff,
            warn: LogThrottle::new(Duration::from_secs(60)),
            metrics,
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
        let mut attempt = 0;
        loop {
            let result = tokio::select! {
                biased;
                _ = stopped(stop) => {
                    self.metrics.sink_dropped_n(self.sink, records);
                    return false;
                }
                r = sink.attempt(unit) => r,
            };
            let err = match result {
                Ok(()) => {
                    self.metrics.sink_sent(self.sink, records);
                    return true;
                }
                Err(e) => e,
            };
            self.metrics.sink_error(self.sink);
            if !err.retryable || attempt >= self.max_retries {
                self.metrics
                    .sink_failed(self.sink, records, sink.lost_reason(&err));
                if let Some(held) = self.warn.allow(Instant::now()) {
                    tracing::warn!(
                        sink = self.sink,
                        records,
                        attempts = attempt + 1,
                        error = %err.message,
                        similar_warnings_held_back = held,
                        "giving up on delivering records"
                    );
                }
                return true;
            }
            let delay = self.backoff.delay_now(attempt);
            tracing::debug!(sink = self.sink, error = %err.message, ?delay, "delivery failed; retrying");
            attempt += 1;
            tokio::select! {
                biased;
                _ = stopped(stop) => {
                    self.metrics.sink_dropped_n(self.sink, records);
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
