//! A throttle for the warnings a long outage would otherwise repeat: the
//! sinks' retries, `/metrics` accept errors and the output's write errors.
use std::time::{Duration, Instant};

/// Lets one warning through per period and counts the ones held back, so a
/// sink that is down for hours logs a line a minute, not one per record.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl LogThrottle {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(held back since the last one)` when this warning may be logged.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
