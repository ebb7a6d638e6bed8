//! Sending records: batched wake-ups and counted losses.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    maps::{RingBuf, ring_buf::RingBufEntry},
};
use rename_audit_common::{RecordHeader, class, lost_index, lost_reason};

use crate::{FAULTS, LOST, PRIORITY_RING, setting};

/// Counts one record of `class` that could not be sent for `reason`.
#[inline(always)]
pub fn count_lost(class: u32, reason: u32) {
    if let Some(slot) = LOST.get_ptr_mut(lost_index(class, reason)) {
        // SAFETY: a valid per-CPU slot: only this CPU writes it, and our
        // programs run on tracepoints with preemption disabled and never in
        // interrupt context, so they do not interleave on one CPU.
        unsafe { *slot += 1 };
    }
}

/// Counts one `fault`.
#[inline(always)]
pub fn count_fault(fault: u32) {
    if let Some(slot) = FAULTS.get_ptr_mut(fault) {
        // SAFETY: as in `count_lost`.
        unsafe { *slot += 1 };
    }
}

#[inline(always)]
pub fn header(kind: u32, ktime_ns: u64) -> RecordHeader {
    RecordHeader {
        kind,
        // SAFETY: a helper without arguments; it cannot fail.
        cpu: unsafe { bpf_get_smp_processor_id() },
        ktime_ns,
    }
}

#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: a helper without arguments; it cannot fail.
    unsafe { bpf_ktime_get_ns() }
}

/// The kernel's tick count: a plain load (the verifier inlines the helper
/// on 64-bit JITs), unlike the clock, which costs a call through the
/// clocksource.
#[inline(always)]
pub fn jiffies() -> u64 {
    // SAFETY: a helper without arguments; it cannot fail.
    unsafe { aya_ebpf::helpers::generated::bpf_jiffies64() }
}

/// Zeroes a record in place, eight bytes a store. Records too large for
/// the stack (the exec record, 4 KB) are zeroed this way before they are
/// filled: the compiler's own memset for BPF stores one byte per loop turn,
/// about 20,000 instructions for the exec record.
#[inline(always)]
pub fn zero<T>(record: &mut T) {
    const {
        assert!(size_of::<T>().is_multiple_of(8) && align_of::<T>() >= 8);
    }
    let words = core::ptr::from_mut(record).cast::<u64>();
    for i in 0..size_of::<T>() / 8 {
        // SAFETY: in bounds and aligned (checked above); volatile, so the
        // compiler cannot turn the loop back into a byte-wise memset.
        unsafe { core::ptr::write_volatile(words.add(i), 0) };
    }
}

/// Reserves a `T` in `ring`, counting a loss of `class` when it is full.
#[inline(always)]
pub fn reserve<T: 'static>(ring: &RingBuf, class: u32) -> Option<RingBufEntry<T>> {
    let entry = ring.reserve::<T>(0);
    if entry.is_none() {
        count_lost(class, lost_reason::RING_FULL);
    }
    entry
}

/// Reserves a lifecycle record in the priority ring, but only while the ring
/// keeps the headroom that process renames are promised.
#[inline(always)]
pub fn reserve_lifecycle<T: 'static>() -> Option<RingBufEntry<T>> {
    if PRIORITY_RING.query(BPF_RB_AVAIL_DATA as u64) >= setting!(lifecycle_limit_bytes) {
        count_lost(class::LIFECYCLE, lost_reason::RING_FULL);
        return None;
    }
    reserve(&PRIORITY_RING, class::LIFECYCLE)
}

/// Submits without waking the daemon unless the ring is filling up: the
/// daemon polls on a short timer, so one wake-up serves a whole batch.
#[inline(always)]
pub fn submit<T>(ring: &RingBuf, entry: RingBufEntry<T>) {
    let flags = if ring.query(BPF_RB_AVAIL_DATA as u64) >= setting!(wakeup_bytes) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags as u64);
}
