//! Per-thread rate limiting (GCRA) and storm slots.
//!
//! A thread's rate state lives in the thread itself (`RATE`, task-local
//! storage), created by its first rename other than exec's and deleted when
//! it exits or execs under a new tid; a task that is already exiting gets
//! none, so nothing can outlive it. Exec's rename creates none: it is the
//! first rename of nearly every process, a first rename is sent anyway, and
//! the allocation (freed again at exit) was most of what exec's rename cost.
//!
//! Two renames of one thread can run at once: the thread's own prctl on one
//! CPU and a sibling's write to its procfs `comm` file on another. Recent
//! kernels no longer hold `task_lock` around the rename, so nothing
//! serializes them. The rate state is then updated without a lock, which at
//! worst lets a rename through that the rate would have counted (it is still
//! sent, so accounting stays exact); the storm slot a thread counts in is
//! published with a compare-and-swap, so the thread has exactly one. Slots
//! are shared with the daemon, which swaps `pending` to 0 when it writes a
//! summary: the kernel side only ever adds to it atomically.
use core::intrinsics::{AtomicOrdering::SeqCst, atomic_cxchg, atomic_xadd};

use aya_ebpf::helpers::{bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes};
use rename_audit_common::{RateState, StormSlot, class, fault, lost_reason};

use crate::{
    RATE, STORMS,
    ring::{count_fault, count_lost, jiffies, now_ns},
    setting,
    task::Task,
};

/// Probes before giving up on finding a free slot.
const SLOT_PROBES: u32 = 8;

pub enum Verdict {
    /// Send the rename as its own record, stamped `now`.
    Send { now: u64 },
    /// Counted in the thread's storm slot, or counted as lost.
    Counted,
}

/// The rate state of `task`, if a rename created it.
#[inline(always)]
pub fn existing_state(task: Task) -> Option<&'static mut RateState> {
    // SAFETY: a valid pointer to the task's storage, which stays allocated
    // while the program runs (RCU); fields are read and written whole.
    RATE.get(task.as_ptr(), false)
        .map(|state| unsafe { &mut *state })
}

/// Creates the rate state of `task` (zeroed: the rename that creates it is
/// sent). `None` for an exiting task (its exit hook, which frees the
/// state, may have run already) and when no state can be created (counted
/// as a fault): its renames are then sent.
#[inline(always)]
pub fn new_state(task: Task) -> Option<&'static mut RateState> {
    if task.is_exiting() {
        return None;
    }
    let Some(state) = RATE.get(task.as_ptr(), true) else {
        count_fault(fault::RATE_UNTRACKED);
        return None;
    };
    // SAFETY: as in `existing_state`.
    Some(unsafe { &mut *state })
}

/// Decides whether a rename of `tid` is sent or counted, and counts it.
///
/// In a storm this is the path every rename takes, so it avoids the clock:
/// reading it is a call through the clocksource, which costs more than all
/// the rest. Once a thread is found over its rate, its further renames in
/// the same tick (`jiffies`, a plain load) are counted without a clock read.
/// The rate only lets a thread send again later than that tick's start, so
/// a send comes at most one tick late, never early; the counts are exact
/// either way.
#[inline(always)]
pub fn admit(
    state: Option<&mut RateState>,
    task: Task,
    (tid, tgid): (u32, u32),
    cls: u32,
    new_name: *const u8,
) -> Verdict {
    let Some(state) = state else {
        return Verdict::Send { now: now_ns() };
    };
    // Read before the clock: a tick that began before the clock read cannot
    // outlast the decision by more than a tick.
    let tick = jiffies();
    if tick < state.over_until_jiffies {
        count_in_slot(state, task, tid, tgid, cls, state.clock_ns, None);
        return Verdict::Counted;
    }
    let now = now_ns();
    state.clock_ns = now;
    let (interval, tolerance) = if cls == class::PROCESS {
        (
            setting!(process_interval_ns),
            setting!(process_tolerance_ns),
        )
    } else {
        (setting!(thread_interval_ns), setting!(thread_tolerance_ns))
    };
    let tat = if state.tat_ns > now {
        state.tat_ns
    } else {
        now
    };
    if tat - now <= tolerance {
        state.tat_ns = tat + interval;
        state.over_until_jiffies = 0;
        sent_by_slot_owner(state, task);
        return Verdict::Send { now };
    }
    state.over_until_jiffies = tick + 1;
    count_in_slot(state, task, tid, tgid, cls, now, Some(new_name));
    Verdict::Counted
}

/// A thread that holds a storm slot sends a rename on its own again. If its
/// previous rename was counted, the name it still bears (this rename has
/// not changed it yet) is the one the summary must show: keep it.
#[inline(always)]
fn sent_by_slot_owner(state: &RateState, task: Task) {
    // SAFETY: an aligned u64 of the map value, read once.
    let published = unsafe { core::ptr::read_volatile(&state.slot) };
    if published == 0 {
        return;
    }
    let Some(slot) = STORMS.get_ptr_mut((published - 1) as u32) else {
        return;
    };
    // SAFETY: a valid pointer into the array; see `count_in_slot`.
    let slot = unsafe { &mut *slot };
    keep_borne_name(slot, task);
    // After the name, so the daemon never sees the count without it.
    // SAFETY: an aligned u64 inside the slot.
    unsafe { atomic_xadd::<u64, u64, { SeqCst }>(&mut slot.tail_sent, 1) };
}

/// If no rename of `task` was sent since its last counted one, the name it
/// bears now is the one that counted rename set: copy it into the slot
/// before the thread sends or exits, after which procfs no longer has it.
#[inline(always)]
fn keep_borne_name(slot: &mut StormSlot, task: Task) {
    // SAFETY: an aligned u64 inside the slot.
    if unsafe { core::ptr::read_volatile(&slot.tail_sent) } == 0 {
        let _ = task.comm_into(&mut slot.last_name);
    }
}

/// Counts a rename in the thread's slot. `name`, the new name, is copied
/// only for the first counted rename of a clock tick: the name a storm ends
/// on is taken when the thread sends or exits again, or read by the daemon
/// from procfs, so the copy per rename (a helper call, as costly as the
/// rest of the path) is not needed for it.
#[inline(always)]
fn count_in_slot(
    state: &mut RateState,
    task: Task,
    tid: u32,
    tgid: u32,
    cls: u32,
    now: u64,
    name: Option<*const u8>,
) {
    let Some(index) = slot_of(state, task, tid, tgid, cls) else {
        count_lost(cls, lost_reason::NO_STORM_SLOT);
        return;
    };
    let Some(slot) = STORMS.get_ptr_mut(index) else {
        count_lost(cls, lost_reason::NO_STORM_SLOT);
        return;
    };
    // SAFETY: a valid pointer into the array; concurrent writers of the
    // same slot (a racing rename of the same thread) only store whole
    // fields, and the count is added atomically.
    let slot = unsafe { &mut *slot };
    if slot.pending == 0 {
        slot.first_seen_ns = now;
    }
    slot.last_seen_ns = now;
    // SAFETY: an aligned u64 inside the slot.
    unsafe { core::ptr::write_volatile(&mut slot.tail_sent, 0) };
    if let Some(name) = name {
        // 16 bytes at once, which is cheaper than a string copy: a name is
        // at most 15 bytes and its NUL, and the daemon reads up to the NUL.
        // Only if that would cross into unreadable memory is the string
        // copied.
        // SAFETY: helpers that fault safely; the destination is the slot's.
        if unsafe { bpf_probe_read_kernel_buf(name, &mut slot.last_name) }.is_err() {
            // SAFETY: as above; the copy stops at the slot's name's end.
            let _ = unsafe { bpf_probe_read_kernel_str_bytes(name, &mut slot.last_name) };
        }
    }
    // Last, so a summary that takes this count also sees the rest.
    // SAFETY: an aligned u64 inside the slot.
    unsafe { atomic_xadd::<u64, u64, { SeqCst }>(&mut slot.pending, 1) };
}

/// The index of the thread's storm slot, claiming one the first time.
#[inline(always)]
fn slot_of(state: &mut RateState, task: Task, tid: u32, tgid: u32, cls: u32) -> Option<u32> {
    // SAFETY: an aligned u64 of the map value; a racing rename of the same
    // thread may publish it at any time, so it is read once.
    let published = unsafe { core::ptr::read_volatile(&state.slot) };
    if published != 0 {
        return Some((published - 1) as u32);
    }
    let claimed = claim_slot(task, tid, tgid, cls)?;
    // Publish the claim. A racing rename of the same thread may have
    // published its own claim first: then this one is given back and the
    // winner's is used, so the thread never holds two slots.
    // SAFETY: an aligned u64 of the map value.
    let (previous, won) = unsafe {
        atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(&mut state.slot, 0, u64::from(claimed) + 1)
    };
    if won {
        return Some(claimed);
    }
    count_fault(fault::SLOT_RACE_LOST);
    if let Some(slot) = STORMS.get_ptr_mut(claimed) {
        // Nothing was counted in it yet, so the daemon has nothing to take.
        // SAFETY: an aligned u64 inside the slot; released atomically.
        unsafe {
            atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(&mut (*slot).owner_tid, tid as u64, 0)
        };
    }
    Some((previous - 1) as u32)
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
        // SAFETY: an aligned u64 inside a valid slot.
        let (_, claimed) = unsafe {
            atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(&mut (*slot).owner_tid, 0, tid as u64)
        };
        if claimed {
            // SAFETY: the slot is now ours; the daemon reads these fields
            // only once `pending` is above 0, which is set after them.
            unsafe {
                (*slot).start_boottime_ns = task.process_start().unwrap_or(0);
                (*slot).tgid = tgid;
                (*slot).class = cls;
                (*slot).exited = 0;
                (*slot).tail_sent = 0;
            }
            return Some(index);
        }
    }
    None
}

/// `task` (a BTF task pointer) is exiting or exec'ing under a new tid: hand
/// its slot over for a last summary and delete its rate state. Returns
/// whether it had any rename state.
#[inline(always)]
pub fn forget(task: *const u8) -> bool {
    let Some(state) = RATE.get(task, false) else {
        return false;
    };
    // SAFETY: a valid pointer to the task's storage.
    let slot = unsafe { core::ptr::read_volatile(&(*state).slot) };
    RATE.delete(task);
    if slot != 0
        && let Some(slot) = STORMS.get_ptr_mut((slot - 1) as u32)
    {
        // SAFETY: a valid pointer into the array; see `count_in_slot`.
        let slot = unsafe { &mut *slot };
        if let Some(task) = Task::from_ptr(task) {
            keep_borne_name(slot, task);
        }
        // After the name. Aligned 64-bit stores are single-copy atomic; the
        // daemon reads it atomically.
        // SAFETY: an aligned u64 inside a valid slot.
        unsafe { core::ptr::write_volatile(&mut slot.exited, 1) };
    }
    true
}
