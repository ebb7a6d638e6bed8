//! Exponential backoff with jitter for sink retries and reconnects, and a
//! throttle for the warnings a long outage would otherwise repeat.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay before retry number `attempt` (0-based): `base * 2^attempt`,
    /// capped at `max`, then scaled into [75%, 100%] by `jitter` in [0, 1) so
    /// that a fleet does not retry in lockstep after a shared outage.
    pub(crate) fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        let raw = self.base.saturating_mul(factor).min(self.max);
        raw.mul_f64(0.75 + 0.25 * jitter.clamp(0.0, 1.0))
    }

    pub(crate) fn delay_now(&self, attempt: u32) -> Duration {
        self.delay(attempt, jitter())
    }
}

/// Lets one warning through per period and counts the ones held back, so a
/// sink that is down for hours logs a line a minute, not one per record.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl LogThrottle {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(held back since the last one)` when this warning may be logged.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

/// A cheap jitter source: the sub-second clock mixed with the pid. Retries need
/// spread, not unpredictability.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1_000_000) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(5, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(75));
        let d = b.delay_now(2);
        assert!(d >= Duration::from_millis(300) && d <= Duration::from_millis(400));
    }

    #[test]
    fn throttle_lets_one_through_per_period_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut t = LogThrottle::new(Duration::from_secs(60));
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(59)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(t.allow(t0 + Duration::from_secs(61)), None);
    }
}
