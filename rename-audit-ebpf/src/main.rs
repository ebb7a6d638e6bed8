//! rename-audit's kernel programs: one hook per module, shared helpers in
//! `task`, `ring` and `storm`, maps and settings here.
#![no_std]
#![no_main]
// Atomic intrinsics: the BPF target has no `core::sync::atomic` RMW types.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod prepare_exec;
mod process_exec;
mod process_exit;
mod process_fork;
mod ring;
mod storm;
mod task;
mod task_rename;

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use rename_audit_common::{RateState, Settings, StormSlot, class};

/// Set by the daemon at load time (offsets from BTF, rates, ring policy).
#[unsafe(no_mangle)]
static SETTINGS: Settings = unsafe { core::mem::zeroed() };

/// Reads one field of [`SETTINGS`]; volatile so the compiler cannot fold the
/// zero it was compiled with.
macro_rules! setting {
    ($($field:tt).+) => {{
        // SAFETY: SETTINGS is a plain, always-initialized global.
        #[allow(unused_unsafe)]
        let value = unsafe { core::ptr::read_volatile(&$crate::SETTINGS.$($field).+) };
        value
    }};
}
pub(crate) use setting;

/// Process renames and lifecycle records; sized by the daemon at load time.
#[map]
static PRIORITY_RING: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Thread renames; sized by the daemon at load time.
#[map]
static THREAD_RING: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Records that could not be sent, per class.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(class::COUNT, 0);

const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Storm slots, shared with the daemon through mmap.
#[map]
static STORMS: Array<StormSlot> =
    Array::with_max_entries(rename_audit_common::STORM_SLOTS, BPF_F_MMAPABLE);

/// Per-thread rate state, keyed by tid; removed when the thread exits.
#[map]
static RATE: HashMap<u32, RateState> = HashMap::with_max_entries(1 << 16, 0);

/// Tasks inside exec, keyed by `task_struct` address (stable across exec,
/// unlike a non-leader's tid): set by `sched_prepare_exec`, taken by the
/// exec's own rename.
#[map]
static MARKS: HashMap<u64, u32> = HashMap::with_max_entries(1 << 14, 0);

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
