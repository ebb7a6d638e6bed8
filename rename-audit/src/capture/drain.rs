//! The drain thread: empties both rings in batches, adds summaries and loss
//! reports, orders each batch by kernel time and hands it on. It only copies
//! and decodes; formatting and writing happen on the pipeline thread.
use std::{
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use crossbeam_channel::Sender;
use rename_audit_common::class;

use super::{
    records::{Record, decode},
    storms::StormSlots,
};
use crate::{clock, event::Class};

pub type Batch = Vec<Record>;

/// How long the drain thread sleeps when no ring asked for a wake-up.
const POLL: Duration = Duration::from_millis(10);
/// How often storm slots and loss counters are read.
const SWEEP_NS: u64 = 100_000_000;
/// Records per batch at most, so one flood cannot build an unbounded batch.
const MAX_BATCH: usize = 1 << 16;

pub struct Drainer {
    priority: RingBuf<MapData>,
    thread: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    slots: StormSlots,
    /// Keeps the storm array's map alive while it is mapped.
    _storms: MapData,
    lost_reported: [u64; class::COUNT as usize],
    last_sweep_ns: u64,
}

impl Drainer {
    pub(super) fn new(
        priority: RingBuf<MapData>,
        thread: RingBuf<MapData>,
        lost: PerCpuArray<MapData, u64>,
        slots: StormSlots,
        storms: MapData,
    ) -> Self {
        Self {
            priority,
            thread,
            lost,
            slots,
            _storms: storms,
            lost_reported: [0; class::COUNT as usize],
            last_sweep_ns: 0,
        }
    }

    /// Runs until `stop` is set, then drains everything once more, takes
    /// every pending storm count, and returns. Blocks when the pipeline is
    /// behind: the rings then fill and the kernel counts what it cannot send.
    pub fn run(mut self, tx: Sender<Batch>, stop: Arc<AtomicBool>) {
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if !stopping {
                self.wait();
            }
            let mut batch = Vec::new();
            let full = self.drain_rings(&mut batch);
            let now = clock::monotonic_ns();
            if stopping || now.saturating_sub(self.last_sweep_ns) >= SWEEP_NS {
                self.last_sweep_ns = now;
                self.slots.sweep(now, stopping, &mut batch);
                self.sweep_lost(now, &mut batch);
            }
            if !batch.is_empty() {
                // Records from two rings and many CPUs: kernel time is the
                // order in which things happened.
                batch.sort_by_key(Record::ktime_ns);
                if tx.send(batch).is_err() {
                    return;
                }
            }
            if stopping && !full {
                return;
            }
        }
    }

    fn wait(&self) {
        let mut fds = [
            libc::pollfd {
                fd: self.priority.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.thread.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds. A failure (EINTR) just ends the wait early.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, POLL.as_millis() as i32) };
    }

    /// Returns true when the batch filled up before the rings were empty.
    fn drain_rings(&mut self, batch: &mut Vec<Record>) -> bool {
        // Thread ring first: a fork or exec that precedes a thread rename is
        // then always in this batch or an earlier one, never a later one.
        for ring in [&mut self.thread, &mut self.priority] {
            while batch.len() < MAX_BATCH {
                let Some(item) = ring.next() else { break };
                match decode(&item) {
                    Ok(record) => batch.push(record),
                    // Only a daemon/kernel-program version mismatch can do this.
                    Err(error) => tracing::error!(%error, "undecodable kernel record"),
                }
            }
        }
        batch.len() >= MAX_BATCH
    }

    fn sweep_lost(&mut self, now: u64, batch: &mut Vec<Record>) {
        for (index, cls) in [
            (class::PROCESS, Class::Process),
            (class::THREAD, Class::Thread),
            (class::LIFECYCLE, Class::Lifecycle),
        ] {
            let total: u64 = match self.lost.get(&index, 0) {
                Ok(per_cpu) => per_cpu.iter().sum(),
                Err(error) => {
                    tracing::error!(%error, "reading the loss counters failed");
                    continue;
                }
            };
            let reported = &mut self.lost_reported[index as usize];
            if total > *reported {
                batch.push(Record::Lost {
                    class: cls,
                    count: total - *reported,
                    ktime_ns: now,
                });
                *reported = total;
            }
        }
    }
}
