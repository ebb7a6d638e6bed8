//! Exponential backoff with jitter for sink retries and reconnects.

use std::time::Duration;

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
}
