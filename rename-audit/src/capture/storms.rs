//! The daemon's side of the storm slots: takes counts the kernel parked in
//! the memory-mapped `STORMS` array and turns them into summaries.
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use rename_audit_common::{StormSlot, class};

use super::records::{Record, StormSummary};
use crate::event::Class;

/// A storm whose thread has been quiet this long has ended.
const QUIET_NS: u64 = 250_000_000;
/// While a storm lasts, one summary at least this often. The sweep runs
/// every 100 ms, so summaries come at most ~1 s apart.
const PERIOD_NS: u64 = 900_000_000;

pub struct StormSlots {
    map: MmapRaw,
    len: usize,
    /// When the current summary window of each slot began (0: none open).
    window_start: Vec<u64>,
}

impl StormSlots {
    pub fn map(fd: std::os::fd::BorrowedFd<'_>, len: u32) -> std::io::Result<Self> {
        let page = 4096;
        let bytes = (len as usize * size_of::<StormSlot>()).div_ceil(page) * page;
        let map = MmapOptions::new().len(bytes).map_raw(&fd)?;
        Ok(Self {
            map,
            len: len as usize,
            window_start: vec![0; len as usize],
        })
    }

    fn slot(&self, index: usize) -> *mut StormSlot {
        debug_assert!(index < self.len);
        // SAFETY: index < len and the mapping covers len slots.
        unsafe { self.map.as_mut_ptr().cast::<StormSlot>().add(index) }
    }

    /// Takes every count that is due (all of them when `final_sweep`) and
    /// appends one summary per thread to `out`. Returns how many slots are
    /// held by a thread afterwards.
    pub fn sweep(&mut self, now_ns: u64, final_sweep: bool, out: &mut Vec<Record>) -> u64 {
        let mut in_use = 0;
        for index in 0..self.len {
            let slot = self.slot(index);
            // SAFETY: the fields are naturally aligned u64s inside the shared
            // mapping; the kernel updates them with atomic instructions.
            let (owner, exited, pending) = unsafe {
                (
                    AtomicU64::from_ptr(&raw mut (*slot).owner_tid),
                    AtomicU64::from_ptr(&raw mut (*slot).exited),
                    AtomicU64::from_ptr(&raw mut (*slot).pending),
                )
            };
            let tid = owner.load(Ordering::Acquire);
            if tid == 0 {
                continue;
            }
            in_use += 1;
            let thread_exited = exited.load(Ordering::Acquire) == 1;
            let waiting = pending.load(Ordering::Acquire);
            let last_seen = unsafe { std::ptr::read_volatile(&raw const (*slot).last_seen_ns) };
            if waiting > 0 && self.window_start[index] == 0 {
                let first = unsafe { std::ptr::read_volatile(&raw const (*slot).first_seen_ns) };
                self.window_start[index] = first.clamp(1, now_ns);
            }
            let due = final_sweep
                || thread_exited
                || (waiting > 0
                    && (now_ns.saturating_sub(last_seen) >= QUIET_NS
                        || now_ns.saturating_sub(self.window_start[index]) >= PERIOD_NS));
            if !due {
                continue;
            }
            // The swap is the hand-over: every count the kernel added before
            // it is in this summary, every later one in the next.
            let count = pending.swap(0, Ordering::AcqRel);
            let snapshot = unsafe { std::ptr::read_volatile(slot) };
            if count > 0 {
                out.push(Record::Summary(StormSummary {
                    tid: tid as u32,
                    tgid: snapshot.tgid,
                    start_boottime_ns: snapshot.start_boottime_ns,
                    class: if snapshot.class == class::PROCESS {
                        Class::Process
                    } else {
                        Class::Thread
                    },
                    count,
                    first_seen_ns: snapshot.first_seen_ns.min(snapshot.last_seen_ns),
                    last_seen_ns: snapshot.last_seen_ns,
                    last_name: snapshot.last_name,
                    thread_exited,
                }));
            }
            self.window_start[index] = 0;
            if thread_exited {
                // The owner is gone and its rate state deleted: nothing in
                // the kernel refers to this slot any more.
                exited.store(0, Ordering::Release);
                owner.store(0, Ordering::Release);
                in_use -= 1;
            }
        }
        in_use
    }
}
