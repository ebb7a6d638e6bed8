//! Kernel clocks and their conversion to wall-clock time.
use time::OffsetDateTime;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC`, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_BOOTTIME`, the clock of `task_struct.start_boottime`.
pub fn boottime_ns() -> u64 {
    read(libc::CLOCK_BOOTTIME)
}

/// Converts kernel timestamps to wall-clock time. The offsets are taken
/// again by [`WallClock::refresh`] so NTP steps and suspend are followed.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    realtime_minus_monotonic: i128,
    realtime_minus_boottime: i128,
}

impl WallClock {
    pub fn now() -> Self {
        let mono = monotonic_ns() as i128;
        let boot = boottime_ns() as i128;
        let real = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self {
            realtime_minus_monotonic: real - mono,
            realtime_minus_boottime: real - boot,
        }
    }

    pub fn refresh(&mut self) {
        *self = Self::now();
    }

    pub fn from_monotonic(&self, ns: u64) -> OffsetDateTime {
        to_datetime(ns as i128 + self.realtime_minus_monotonic)
    }

    pub fn from_boottime(&self, ns: u64) -> OffsetDateTime {
        to_datetime(ns as i128 + self.realtime_minus_boottime)
    }
}

fn to_datetime(unix_ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(unix_ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_now_maps_to_wall_now() {
        let clock = WallClock::now();
        let wall = clock.from_monotonic(monotonic_ns());
        let delta = (OffsetDateTime::now_utc() - wall)
            .whole_milliseconds()
            .abs();
        assert!(delta < 1000, "monotonic -> wall is off by {delta} ms");
    }
}
