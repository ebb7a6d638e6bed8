//! The bounded hand-off between capture and a sink task.
//!
//! The producer is a plain OS thread on the capture path: it must never wait
//! for a sink. `try_send` on a tokio channel needs no runtime context and never
//! blocks; a record that does not fit is counted, never queued without bound.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::event::Event;
use crate::metrics::Metrics;

pub(crate) struct SinkQueue {
    name: &'static str,
    tx: mpsc::Sender<Arc<Event>>,
    metrics: Arc<Metrics>,
}

impl SinkQueue {
    /// `capacity` must be at least 1 (checked when the configuration is read).
    pub(crate) fn new(
        name: &'static str,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::Receiver<Arc<Event>>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { name, tx, metrics }, rx)
    }

    /// Queue a record without waiting; a full or closed queue counts a drop.
    pub(crate) fn offer(&self, ev: &Arc<Event>) -> bool {
        match self.tx.try_send(Arc::clone(ev)) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.sink_dropped(self.name);
                false
            }
        }
    }
}

/// How long a sink task lets records gather after it has handled some,
/// before it takes the next. `try_send` wakes a sink's task only when that
/// task waits on an empty queue: handled at once, an alert burst would wake
/// it once per record, and each wake-up is a futex call on the capture
/// thread and a context switch on a CPU the capture path needs. Gathered, a
/// burst costs one wake-up per `GATHER`, and a lone record is still taken
/// the moment it comes.
pub(crate) const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// Waits [`GATHER`] after a batch; false when told to stop meanwhile.
pub(crate) async fn gather(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        biased;
        _ = stopped(stop) => false,
        _ = tokio::time::sleep(GATHER) => true,
    }
}

/// Resolves once shutdown asks a sink to stop waiting (or its owner is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Count what is still queued when a sink is told to stop: those records will
/// not be delivered and must not vanish silently.
pub(crate) fn abandon(
    rx: &mut mpsc::Receiver<Arc<Event>>,
    sink: &'static str,
    metrics: &Metrics,
) -> u64 {
    rx.close();
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    if n > 0 {
        metrics.sink_dropped_n(sink, n);
        tracing::warn!(sink, records = n, "sink stopped with records still queued");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Class, Lost, LostReason};
    use time::OffsetDateTime;

    fn ev() -> Arc<Event> {
        Arc::new(Event {
            sequence: 0,
            timestamp: OffsetDateTime::UNIX_EPOCH,
            host: Arc::from("h"),
            process: None,
            body: Body::Lost(Lost {
                class: Class::Thread,
                reason: LostReason::RingFull,
                count: 1,
                sink: None,
            }),
            alert: None,
        })
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_a_runtime() {
        let metrics = Metrics::new();
        let (q, mut rx) = SinkQueue::new("syslog", 2, Arc::clone(&metrics));
        let e = ev();
        assert!(q.offer(&e) && q.offer(&e));
        assert!(!q.offer(&e), "third record must not fit in a queue of 2");
        assert!(
            metrics
                .encode()
                .contains("rename_audit_sink_queue_dropped_total{sink=\"syslog\"} 1\n")
        );
        assert_eq!(abandon(&mut rx, "syslog", &metrics), 2);
        assert!(
            metrics
                .encode()
                .contains("rename_audit_sink_queue_dropped_total{sink=\"syslog\"} 3\n")
        );
        assert!(!q.offer(&e), "a closed queue refuses and counts");
    }
}
