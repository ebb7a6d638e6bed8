//! Deduplication and rate limiting of alerts per (rule, executable).
//!
//! The first alert for a key is posted at once and opens a window. Repeats
//! inside the window are not posted: they are counted, and the latest one is
//! kept. When the window ends with repeats pending, the latest repeat is
//! posted carrying the count, which opens a new window; a key with nothing
//! pending is forgotten. A storm of identical alerts therefore reaches
//! Alertmanager at most once per window, and the key table stays bounded.
//!
//! On top of that each key may post at most `per_minute` times a minute
//! (counted in fixed one-minute periods from its first post): a short window
//! cannot turn a steady stream of repeats into a post a second. A post the
//! limit holds back stays pending, with its count, until the period ends.
//!
//! Pure: time is passed in, so tests drive it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The period of the per-key post limit.
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry<T> {
    window_start: Instant,
    suppressed: u64,
    latest: Option<T>,
    /// Start of the current rate-limit period and the posts made in it.
    period_start: Instant,
    posts: u32,
}

impl<T> Entry<T> {
    fn new(now: Instant) -> Self {
        Entry {
            window_start: now,
            suppressed: 0,
            latest: None,
            period_start: now,
            posts: 1,
        }
    }

    /// Takes one post from the key's allowance, if any is left.
    fn take_post(&mut self, now: Instant, per_minute: u32) -> bool {
        if now.saturating_duration_since(self.period_start) >= MINUTE {
            self.period_start = now;
            self.posts = 0;
        }
        if self.posts >= per_minute {
            return false;
        }
        self.posts += 1;
        true
    }

    /// Still counting posts against the limit: forgetting the key now would
    /// give it a fresh allowance.
    fn limiting(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.period_start) < MINUTE
    }
}

/// An alert to post now, with the number of repeats it stands for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Release<T> {
    pub item: T,
    pub suppressed: u64,
}

#[derive(Debug)]
pub(crate) struct Dedup<K, T> {
    window: Duration,
    /// Posts per key and minute, at least 1.
    per_minute: u32,
    max_keys: usize,
    entries: HashMap<K, Entry<T>>,
    /// Pending repeats of keys evicted to stay under `max_keys`, released by
    /// the next [`Dedup::due`].
    evicted: Vec<Release<T>>,
}

impl<K: Hash + Eq + Clone, T> Dedup<K, T> {
    pub(crate) fn new(window: Duration, per_minute: u32, max_keys: usize) -> Self {
        Self {
            window,
            per_minute: per_minute.max(1),
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
            evicted: Vec::new(),
        }
    }

    /// Offer an alert: `Some` to post it now, `None` when it is a suppressed
    /// repeat (the caller counts it).
    pub(crate) fn admit(&mut self, key: K, item: T, now: Instant) -> Option<Release<T>> {
        if let Some(e) = self.entries.get_mut(&key) {
            if now.saturating_duration_since(e.window_start) < self.window
                || !e.take_post(now, self.per_minute)
            {
                e.suppressed += 1;
                e.latest = Some(item);
                return None;
            }
            // The window is over but `due` has not run yet: this post carries
            // whatever was pending.
            let suppressed = std::mem::take(&mut e.suppressed);
            e.latest = None;
            e.window_start = now;
            return Some(Release { item, suppressed });
        }
        if self.entries.len() >= self.max_keys {
            self.make_room(now);
        }
        self.entries.insert(key, Entry::new(now));
        Some(Release {
            item,
            suppressed: 0,
        })
    }

    /// Releases for windows that ended by `now`; forgets idle keys.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Release<T>> {
        let mut out = std::mem::take(&mut self.evicted);
        let (window, per_minute) = (self.window, self.per_minute);
        self.entries.retain(|_, e| {
            if now.saturating_duration_since(e.window_start) < window {
                return true;
            }
            if e.latest.is_none() {
                return e.limiting(now);
            }
            if !e.take_post(now, per_minute) {
                // Held back by the limit: stays pending.
                return true;
            }
            if let Some(item) = e.latest.take() {
                out.push(Release {
                    item,
                    suppressed: std::mem::take(&mut e.suppressed),
                });
            }
            e.window_start = now;
            true
        });
        out
    }

    /// Everything still pending, for a final post at shutdown.
    pub(crate) fn drain_pending(&mut self) -> Vec<Release<T>> {
        let mut out = std::mem::take(&mut self.evicted);
        for (_, e) in self.entries.drain() {
            if let Some(item) = e.latest {
                out.push(Release {
                    item,
                    suppressed: e.suppressed,
                });
            }
        }
        out
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn make_room(&mut self, now: Instant) {
        let released = self.due(now);
        self.evicted.extend(released);
        if self.entries.len() < self.max_keys {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.window_start)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest
            && let Some(e) = self.entries.remove(&k)
            && let Some(item) = e.latest
        {
            self.evicted.push(Release {
                item,
                suppressed: e.suppressed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(300);

    #[test]
    fn a_burst_of_identical_alerts_posts_once_then_reports_the_count() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W, u32::MAX, 100);
        let first = d.admit("k", 0, t0).expect("first alert is posted");
        assert_eq!(first.suppressed, 0);
        for i in 1..1000 {
            assert!(d.admit("k", i, t0 + Duration::from_millis(i)).is_none());
        }
        assert!(d.due(t0 + W - Duration::from_secs(1)).is_empty());
        let flushed = d.due(t0 + W);
        assert_eq!(
            flushed,
            vec![Release {
                item: 999,
                suppressed: 999
            }]
        );
        // The flush opened a new window; with nothing more the key is forgotten.
        assert!(d.due(t0 + W + W).is_empty());
        assert_eq!(d.len(), 0);
        assert_eq!(d.admit("k", 5, t0 + W * 3).map(|r| r.suppressed), Some(0));
    }

    #[test]
    fn keys_are_independent() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W, u32::MAX, 100);
        assert!(d.admit(("rule-a", "/tmp/x"), 1, t0).is_some());
        assert!(d.admit(("rule-a", "/tmp/y"), 2, t0).is_some());
        assert!(d.admit(("rule-b", "/tmp/x"), 3, t0).is_some());
        assert!(d.admit(("rule-a", "/tmp/x"), 4, t0).is_none());
    }

    #[test]
    fn a_repeat_after_the_window_carries_the_pending_count_if_due_was_late() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W, u32::MAX, 100);
        d.admit("k", 1, t0);
        d.admit("k", 2, t0 + Duration::from_secs(1));
        d.admit("k", 3, t0 + Duration::from_secs(2));
        let r = d
            .admit("k", 4, t0 + W + Duration::from_secs(1))
            .expect("posted");
        assert_eq!(
            r,
            Release {
                item: 4,
                suppressed: 2
            }
        );
        assert!(d.due(t0 + W * 3).is_empty(), "nothing left pending");
    }

    #[test]
    fn the_table_is_bounded_and_eviction_keeps_pending_counts() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W, u32::MAX, 3);
        d.admit(0u32, 0, t0);
        d.admit(0u32, 100, t0 + Duration::from_millis(1));
        for k in 1..50u32 {
            assert!(
                d.admit(k, k, t0 + Duration::from_millis(10 + u64::from(k)))
                    .is_some()
            );
            assert!(d.len() <= 3);
        }
        let released = d.due(t0 + Duration::from_secs(1));
        assert_eq!(
            released,
            vec![Release {
                item: 100,
                suppressed: 1
            }],
            "the evicted key's pending repeat is still released"
        );
    }

    #[test]
    fn a_key_posts_at_most_per_minute_times_a_minute() {
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let mut d = Dedup::new(sec, 2, 100);
        let mut posts = vec![d.admit("k", 0, t0).expect("first").suppressed];
        // One repeat every 100 ms for 10 s: one-second windows alone would
        // post ten times.
        for i in 1..100u32 {
            let now = t0 + Duration::from_millis(100) * i;
            if let Some(r) = d.admit("k", i, now) {
                posts.push(r.suppressed);
            }
            posts.extend(d.due(now).into_iter().map(|r| r.suppressed));
        }
        assert_eq!(posts.len(), 2, "{posts:?}");
        // Past the idle window the key is kept, limited: no fresh allowance.
        assert!(d.due(t0 + 20 * sec).is_empty());
        assert!(d.admit("k", 100, t0 + 21 * sec).is_none());
        // The next minute posts what was held back, with its count.
        let next = d.due(t0 + 60 * sec);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].item, 100);
        // 101 alerts, two posted as they came: the other 99 are counted once
        // (the last one is re-posted carrying the count, as at a window end).
        assert_eq!(
            posts.iter().sum::<u64>() + next[0].suppressed,
            101 - 2,
            "every alert not posted is counted once"
        );
        // Idle past the window and the minute: forgotten.
        assert!(d.due(t0 + 200 * sec).is_empty());
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn drain_pending_returns_every_unposted_repeat() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W, u32::MAX, 10);
        d.admit("a", 1, t0);
        d.admit("a", 2, t0);
        d.admit("b", 3, t0);
        let mut left = d.drain_pending();
        left.sort_by_key(|r| r.item);
        assert_eq!(
            left,
            vec![Release {
                item: 2,
                suppressed: 1
            }]
        );
    }
}
