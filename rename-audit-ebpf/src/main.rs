//! rename-audit's kernel programs: one hook per module, shared helpers in
//! `task`, `ring` and `storm`, maps and settings here.
#![no_std]
#![no_main]
// Atomic intrinsics: the BPF target has no `core::sync::atomic` RMW types.
#![allow(internal_features)]
#![feature(core_intrinsics)]
// Every unsafe block says why it is sound.

mod mnt_ns;
mod mount_exit;
mod move_mount_exit;
mod path;
mod path_mount_exit;
mod prepare_exec;
mod process_exec;
mod process_exit;
mod process_fork;
mod ring;
mod storm;
mod task;
mod task_rename;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type},
    helpers::generated::{bpf_task_storage_delete, bpf_task_storage_get},
    macros::{btf_map, map},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use rename_audit_common::{RateState, Settings, StormSlot, class, fault, lost_reason};

/// Set by the daemon at load time (offsets from BTF, rates, ring policy).
#[unsafe(no_mangle)]
// SAFETY: `Settings` is plain integers, for which all-zero bytes are a
// valid value.
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

/// Records that could not be sent, per class and reason
/// (`rename_audit_common::lost_index`).
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(class::COUNT * lost_reason::COUNT, 0);

/// Things that went wrong without losing a record, per `fault`.
#[map]
static FAULTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(fault::COUNT, 0);

const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Storm slots, shared with the daemon through mmap.
#[map]
static STORMS: Array<StormSlot> =
    Array::with_max_entries(rename_audit_common::STORM_SLOTS, BPF_F_MMAPABLE);

/// Per-thread rate state, stored in the task itself (task-local storage:
/// no hash lookup on the hot path, freed with the task, never full); removed
/// when the thread exits.
#[btf_map]
static RATE: TaskStorage<RateState> = TaskStorage::new();

/// A `BPF_MAP_TYPE_TASK_STORAGE` map definition, which aya-ebpf 0.2.1 does
/// not provide: the BTF layout (`.maps` section) that loaders read. Local
/// storage maps need BTF for their key and value, `BPF_F_NO_PREALLOC` and
/// no `max_entries`.
#[repr(C)]
pub struct TaskStorage<T> {
    r#type: *const [i32; bpf_map_type::BPF_MAP_TYPE_TASK_STORAGE as usize],
    key: *const i32,
    value: *const T,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
}

// SAFETY: the fields are placeholders the loader reads from BTF and are never
// dereferenced; the map itself is reached only through helpers.
unsafe impl<T> Sync for TaskStorage<T> {}

impl<T> Default for TaskStorage<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TaskStorage<T> {
    pub const fn new() -> Self {
        Self {
            r#type: core::ptr::null(),
            key: core::ptr::null(),
            value: core::ptr::null(),
            max_entries: core::ptr::null(),
            map_flags: core::ptr::null(),
        }
    }

    fn as_ptr(&self) -> *mut core::ffi::c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The value stored in `task`, created zeroed if `create`. `task` must
    /// be a BTF task pointer (a tracepoint argument or
    /// `bpf_get_current_task_btf`); the verifier checks it. `None` when the
    /// value is absent or cannot be created (no memory; on kernels before
    /// 6.2, also when another task-storage operation is in progress on this
    /// CPU).
    #[inline(always)]
    pub fn get(&self, task: *const u8, create: bool) -> Option<*mut T> {
        let flags = if create {
            u64::from(BPF_LOCAL_STORAGE_GET_F_CREATE)
        } else {
            0
        };
        // SAFETY: a helper call on our map; the verifier checks `task`.
        let value = unsafe {
            bpf_task_storage_get(
                self.as_ptr(),
                task.cast_mut().cast(),
                core::ptr::null_mut(),
                flags,
            )
        };
        (!value.is_null()).then_some(value.cast())
    }

    /// Removes the value stored in `task`, if any.
    #[inline(always)]
    pub fn delete(&self, task: *const u8) {
        // SAFETY: as in `get`.
        let _ = unsafe { bpf_task_storage_delete(self.as_ptr(), task.cast_mut().cast()) };
    }
}

/// Tasks inside exec, keyed by `task_struct` address (stable across exec,
/// unlike a non-leader's tid): set by `sched_prepare_exec`, taken by the
/// exec's own rename.
#[map]
static MARKS: HashMap<u64, u32> = HashMap::with_max_entries(1 << 14, 0);

/// Takes the current task's exec mark; whether it had one. Most tasks have
/// none (every exit asks), and a lookup, unlike a delete, takes no lock.
#[inline(always)]
fn take_exec_mark() -> bool {
    let key = task::current_key();
    // SAFETY: only whether the entry exists is used, not the reference.
    if unsafe { MARKS.get(key) }.is_none() {
        return false;
    }
    let _ = MARKS.remove(key);
    true
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
