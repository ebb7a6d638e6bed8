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
use rename_audit_common::{Class, LostReason, class, fault, lost_index, lost_reason};

use super::{
    mount_tables::MountTables,
    mounts::MountNotifier,
    records::{KernelState, Mount, Record, decode},
    storms::StormSlots,
};
use crate::clock;

pub type Batch = Vec<Record>;

/// A mount watch without a kernel program, which the drain thread waits on
/// with the rings.
pub enum MountSource {
    /// fanotify's mount events: a group with a mark on each namespace.
    Fanotify(MountNotifier),
    /// Each namespace's mount table, polled.
    Tables(MountTables),
}

impl MountSource {
    /// The descriptor the drain thread's wait also wakes on, or -1 (which
    /// poll(2) skips). Not the mount tables' epoll set: polling it polls
    /// each table, and a table reports a change to one poll only, which
    /// would take it from the epoll_wait that reads it. A table change is
    /// read at the next wake-up instead, within the poll interval.
    fn wake_fd(&self) -> std::os::fd::RawFd {
        match self {
            MountSource::Fanotify(notifier) => notifier.as_raw_fd(),
            MountSource::Tables(_) => -1,
        }
    }
}

/// How long the drain thread sleeps when no ring asked for a wake-up. Each
/// wake-up of the drain thread and then of the pipeline thread costs about
/// 40 µs of CPU on a virtual machine (timer and context switches): at 10 ms
/// that was a third of the daemon's CPU per process under a fork+exec load,
/// and 0.7% of a CPU on an idle host. 25 ms keeps rename-to-line latency
/// well under the 100 ms p99 promised.
const POLL: Duration = Duration::from_millis(25);
/// How often storm slots and loss counters are read.
const SWEEP_NS: u64 = 100_000_000;
/// A repeating warning is logged at most this often.
const WARN_EVERY_NS: u64 = 60_000_000_000;
/// Records per batch at most, so one flood cannot build an unbounded batch.
const MAX_BATCH: usize = 1 << 16;

pub struct Drainer {
    priority: RingBuf<MapData>,
    thread: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    faults: PerCpuArray<MapData, u64>,
    slots: StormSlots,
    /// Keeps the storm array's map alive while it is mapped.
    _storms: MapData,
    /// Losses already reported, by `lost_index`.
    lost_reported: Vec<u64>,
    kernel_reported: KernelState,
    /// When the full rate map was last warned about (0: never).
    rate_warned_ns: u64,
    last_sweep_ns: u64,
    /// Where mounts are watched without a kernel program: the watch.
    mounts: Option<MountSource>,
    /// When a full fanotify queue was last warned about (0: never).
    mounts_warned_ns: u64,
}

impl Drainer {
    pub(super) fn new(
        priority: RingBuf<MapData>,
        thread: RingBuf<MapData>,
        lost: PerCpuArray<MapData, u64>,
        faults: PerCpuArray<MapData, u64>,
        slots: StormSlots,
        storms: MapData,
        mounts: Option<MountSource>,
    ) -> Self {
        Self {
            priority,
            thread,
            lost,
            faults,
            slots,
            _storms: storms,
            lost_reported: vec![0; (class::COUNT * lost_reason::COUNT) as usize],
            kernel_reported: KernelState::default(),
            rate_warned_ns: 0,
            last_sweep_ns: 0,
            mounts,
            mounts_warned_ns: 0,
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
            self.watch_mounts(now, &mut batch);
            if stopping || now.saturating_sub(self.last_sweep_ns) >= SWEEP_NS {
                self.last_sweep_ns = now;
                let in_use = self.slots.sweep(now, stopping, &mut batch);
                self.sweep_lost(now, &mut batch);
                self.sweep_kernel_state(now, in_use, &mut batch);
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
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [
            pollfd(self.priority.as_raw_fd()),
            pollfd(self.thread.as_raw_fd()),
            pollfd(self.mounts.as_ref().map_or(-1, MountSource::wake_fd)),
        ];
        let n = if self.mounts.is_some() { 3 } else { 2 };
        // SAFETY: `n` valid pollfds. A failure (EINTR) just ends the wait early.
        unsafe { libc::poll(fds.as_mut_ptr(), n, POLL.as_millis() as i32) };
    }

    /// Where mounts are watched without a kernel program: follows the
    /// namespaces, and adds a mount record for each mount seen.
    fn watch_mounts(&mut self, now: u64, batch: &mut Vec<Record>) {
        let mounts = match self.mounts.as_mut() {
            Some(MountSource::Fanotify(notifier)) => notifier,
            Some(MountSource::Tables(tables)) => {
                tables.follow(batch);
                tables.changed(now, batch);
                return;
            }
            None => return,
        };
        batch.retain(|record| match record {
            Record::Mount(Mount {
                tgid,
                ktime_ns,
                unwatched_ns: Some(ns),
            }) => mounts.watch(*tgid, *ns, *ktime_ns),
            _ => true,
        });
        let overflows = mounts.read_events(now, batch);
        if overflows > 0 {
            // Who mounted is lost: the host's table is read (PID 1's).
            batch.push(Record::Mount(Mount {
                tgid: 1,
                ktime_ns: now,
                unwatched_ns: None,
            }));
            if self.mounts_warned_ns == 0
                || now.saturating_sub(self.mounts_warned_ns) >= WARN_EVERY_NS
            {
                self.mounts_warned_ns = now;
                tracing::warn!(
                    overflows,
                    "the kernel's queue of mount events overflowed: only the host's mount \
                     table is read for hidden processes this time"
                );
            }
        }
        if now.saturating_sub(self.last_sweep_ns) >= SWEEP_NS {
            mounts.forget_old(now);
        }
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
        for class in Class::KERNEL {
            for reason in LostReason::KERNEL {
                // Only kernel classes and reasons have a number in `LOST`.
                let (Some(c), Some(r)) = (class.index(), reason.index()) else {
                    continue;
                };
                let index = lost_index(c, r);
                let Some(total) = self.total(&self.lost, index, "loss") else {
                    continue;
                };
                let reported = &mut self.lost_reported[index as usize];
                if total > *reported {
                    batch.push(Record::Lost {
                        class,
                        reason,
                        count: total - *reported,
                        ktime_ns: now,
                    });
                    *reported = total;
                }
            }
        }
    }

    /// Storm-slot occupancy and the fault counters, when they changed.
    fn sweep_kernel_state(&mut self, now: u64, in_use: u64, batch: &mut Vec<Record>) {
        let mut state = KernelState {
            storm_slots_in_use: in_use,
            rate_untracked: self.kernel_reported.rate_untracked,
            slot_races: self.kernel_reported.slot_races,
            ktime_ns: now,
        };
        if let Some(n) = self.total(&self.faults, fault::RATE_UNTRACKED, "fault") {
            state.rate_untracked = n;
        }
        if let Some(n) = self.total(&self.faults, fault::SLOT_RACE_LOST, "fault") {
            state.slot_races = n;
        }
        let changed = KernelState {
            ktime_ns: self.kernel_reported.ktime_ns,
            ..state
        } != self.kernel_reported;
        if changed {
            if state.rate_untracked > self.kernel_reported.rate_untracked
                && (self.rate_warned_ns == 0
                    || now.saturating_sub(self.rate_warned_ns) >= WARN_EVERY_NS)
            {
                self.rate_warned_ns = now;
                tracing::warn!(
                    total = state.rate_untracked,
                    "the kernel's rate map is full: some threads' renames are sent without a rate limit"
                );
            }
            self.kernel_reported = state;
            batch.push(Record::Kernel(state));
        }
    }

    /// The sum over CPUs of one per-CPU counter.
    fn total(&self, map: &PerCpuArray<MapData, u64>, index: u32, what: &str) -> Option<u64> {
        match map.get(&index, 0) {
            Ok(per_cpu) => Some(per_cpu.iter().sum()),
            Err(error) => {
                tracing::error!(%error, what, "reading a kernel counter failed");
                None
            }
        }
    }
}
