//! Per-thread rate limiting (GCRA) and storm slots.
//!
//! Renames of one task are serialized by `task_lock` around the tracepoint,
//! so a thread's `RateState` needs no atomics. Slots are shared with the
//! daemon, which swaps `pending` to 0 when it writes a summary: the kernel
//! side only ever adds to it atomically.
use core::intrinsics::{AtomicOrdering::SeqCst, atomic_cxchg, atomic_xadd};

use aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes;
use rename_audit_common::{RateState, StormSlot, class};

use crate::{RATE, STORMS, ring::count_lost, setting, task::Task};

/// Probes before giving up on finding a free slot.
const SLOT_PROBES: u32 = 8;

pub enum Verdict {
    /// Send the rename as its own record.
    Send,
    /// Counted in the thread's storm slot.
    Counted,
}

/// Decides whether a rename of `tid` is sent or counted, and counts it.
#[inline(always)]
pub fn admit(task: Task, tid: u32, tgid: u32, cls: u32, now: u64, new_name: *const u8) -> Verdict {
    let (interval, tolerance) = if cls == class::PROCESS {
        (
            setting!(process_interval_ns),
            setting!(process_tolerance_ns),
        )
    } else {
        (setting!(thread_interval_ns), setting!(thread_tolerance_ns))
    };
    let Some(state) = RATE.get_ptr_mut(tid) else {
        // First rename of this thread: always sent. A full map only means the
        // thread is not rate limited; its records are still accounted.
        let fresh = RateState {
            tat_ns: now + interval,
            slot: 0,
            _pad: 0,
        };
        let _ = RATE.insert(tid, fresh, 0);
        return Verdict::Send;
    };
    let state = unsafe { &mut *state };
    let tat = if state.tat_ns > now {
        state.tat_ns
    } else {
        now
    };
    if tat - now <= tolerance {
        state.tat_ns = tat + interval;
        return Verdict::Send;
    }
    count_in_slot(state, task, tid, tgid, cls, now, new_name);
    Verdict::Counted
}

#[inline(always)]
fn count_in_slot(
    state: &mut RateState,
    task: Task,
    tid: u32,
    tgid: u32,
    cls: u32,
    now: u64,
    name: *const u8,
) {
    if state.slot == 0 {
        match claim_slot(task, tid, tgid, cls) {
            Some(index) => state.slot = index + 1,
            None => {
                count_lost(cls);
                return;
            }
        }
    }
    let Some(slot) = STORMS.get_ptr_mut(state.slot - 1) else {
        count_lost(cls);
        return;
    };
    let slot = unsafe { &mut *slot };
    if slot.pending == 0 {
        slot.first_seen_ns = now;
    }
    slot.last_seen_ns = now;
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(name, &mut slot.last_name) };
    // Last, so a summary that takes this count also sees the name and time.
    unsafe { atomic_xadd::<u64, u64, { SeqCst }>(&mut slot.pending, 1) };
}

#[inline(always)]
fn claim_slot(task: Task, tid: u32, tgid: u32, cls: u32) -> Option<u32> {
    let slots = setting!(storm_slots);
    if slots == 0 {
        return None;
    }
    let start = tid.wrapping_mul(2_654_435_761) % slots;
    for probe in 0..SLOT_PROBES {
        let index = (start + probe) % slots;
        let slot: *mut StormSlot = STORMS.get_ptr_mut(index)?;
        let (_, claimed) = unsafe {
            atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(&mut (*slot).owner_tid, 0, tid as u64)
        };
        if claimed {
            unsafe {
                (*slot).start_boottime_ns = task.process_start().unwrap_or(0);
                (*slot).tgid = tgid;
                (*slot).class = cls;
                (*slot).exited = 0;
            }
            return Some(index);
        }
    }
    None
}

/// The thread is exiting: hand its slot over for a last summary and forget
/// its rate state. Returns whether the thread had any rename state.
#[inline(always)]
pub fn forget(tid: u32) -> bool {
    let Some(state) = RATE.get_ptr(tid) else {
        return false;
    };
    let slot = unsafe { (*state).slot };
    let _ = RATE.remove(tid);
    if slot != 0
        && let Some(slot) = STORMS.get_ptr_mut(slot - 1)
    {
        // Aligned 64-bit stores are single-copy atomic; the daemon reads it atomically.
        unsafe { core::ptr::write_volatile(&mut (*slot).exited, 1) };
    }
    true
}
