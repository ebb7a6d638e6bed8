//! Alertmanager sink: posts alert events to `<url>/api/v2/alerts`.
//!
//! One task owns the queue's receiving end. It batches what is queued,
//! deduplicates per (rule, executable), and posts with bounded retries and
//! backoff. Only this task ever waits on Alertmanager.

mod dedup;
mod payload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::dedup::{Dedup, Release};
use self::payload::PostableAlert;
use super::SinkError;
use super::backoff::Backoff;
use super::queue::{abandon, stopped};
use super::retry::{Deliver, DeliveryError, Retry};
use crate::config;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::names::Name;

pub(crate) const SINK: &str = "alertmanager";
/// Alerts per POST.
const MAX_BATCH: usize = 64;
/// Distinct (rule, executable) keys remembered for deduplication.
const MAX_KEYS: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    rule: &'static str,
    executable: Option<Name>,
}

pub(crate) struct AlertmanagerSink {
    poster: Poster,
    cfg: config::AlertmanagerSink,
    host: Arc<str>,
    metrics: Arc<Metrics>,
    dedup: Dedup<Key, Arc<Event>>,
    retry: Retry,
}

/// One POST of a batch to `/api/v2/alerts`.
struct Poster {
    client: reqwest::Client,
    endpoint: reqwest::Url,
}

impl AlertmanagerSink {
    pub(crate) fn new(
        cfg: &config::AlertmanagerSink,
        host: Arc<str>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        let endpoint = cfg.endpoint()?;
        let timeout = cfg.timeout.max(Duration::from_millis(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("rename-audit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SinkError::HttpClient)?;
        let retry = Retry::new(
            SINK,
            cfg.max_retries,
            Backoff {
                base: Duration::from_millis(250),
                max: Duration::from_secs(8),
            },
            Arc::clone(&metrics),
        );
        Ok(Self {
            poster: Poster { client, endpoint },
            cfg: cfg.clone(),
            host,
            metrics,
            dedup: Dedup::new(cfg.dedup_window, cfg.rate_limit_per_minute, MAX_KEYS),
            retry,
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
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let batch = tokio::select! {
                biased;
                _ = stopped(&mut stop) => {
                    abandon(&mut rx, SINK, &self.metrics);
                    return;
                }
                _ = tick.tick() => {
                    let released = self.dedup.due(Instant::now());
                    self.payloads(released)
                }
                got = rx.recv() => match got {
                    Some(ev) => {
                        let mut evs = vec![ev];
                        while evs.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(ev) => evs.push(ev),
                                Err(_) => break,
                            }
                        }
                        self.admit(evs)
                    }
                    None => {
                        // Queue closed by shutdown: post the repeat counts
                        // still pending, then finish.
                        let pending = self.dedup.drain_pending();
                        let batch = self.payloads(pending);
                        self.deliver(batch, &mut stop).await;
                        return;
                    }
                },
            };
            let mut rest = batch.as_slice();
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rest.len().min(MAX_BATCH));
                rest = tail;
                if !self.deliver(chunk.to_vec(), &mut stop).await {
                    // `deliver` counted its own chunk; count what followed it.
                    self.metrics.sink_dropped_n(SINK, rest.len() as u64);
                    abandon(&mut rx, SINK, &self.metrics);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, evs: Vec<Arc<Event>>) -> Vec<PostableAlert> {
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

    /// Post one batch with retries. Returns false when told to stop meanwhile
    /// (the batch is then counted as dropped).
    async fn deliver(
        &mut self,
        batch: Vec<PostableAlert>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        if batch.is_empty() {
            return true;
        }
        let n = batch.len() as u64;
        self.retry
            .deliver(&mut self.poster, batch.as_slice(), n, stop)
            .await
    }
}

impl Deliver for Poster {
    type Unit = [PostableAlert];

    async fn attempt(&mut self, batch: &[PostableAlert]) -> Result<(), DeliveryError> {
        let resp = self
            .client
            .post(self.endpoint.clone())
            .json(batch)
            .send()
            .await
            .map_err(|e| DeliveryError {
                retryable: true,
                message: format!("{}: {e}", self.endpoint),
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err(DeliveryError {
            // 4xx means Alertmanager rejected the alerts themselves; sending
            // them again cannot help. 408/429 are the exceptions.
            retryable: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT,
            message: format!("{}: HTTP {status}: {}", self.endpoint, body.trim()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
