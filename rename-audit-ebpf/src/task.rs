//! Accessors for kernel tasks. Offsets come from the running kernel's BTF
//! through `SETTINGS`.
//!
//! Every `Task` is a pointer the verifier knows by its BTF type: a BTF
//! tracepoint's task argument, `bpf_get_current_task_btf`, or a task pointer
//! loaded from one of those. So fields are loaded directly, not through
//! `bpf_probe_read_kernel`: a helper call costs 40–100 ns on a virtual
//! machine, a load one instruction. The verifier checks each load against
//! the kernel's BTF when the program loads (it can: the offsets come from
//! `SETTINGS`, which is read-only and frozen, so they are constants to it)
//! and turns it into one that cannot fault: a bad or NULL pointer reads 0.
//! Only whole fields can be loaded this way; a pointer that may be NULL
//! gives `None`.
use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_get_current_task_btf, bpf_probe_read_kernel_buf,
    generated::bpf_task_pt_regs,
};
use rename_audit_common::{TASK_COMM_LEN, task_flags::PF_KTHREAD};

use crate::setting;

/// A `struct task_struct *` the verifier knows by its BTF type.
#[derive(Clone, Copy)]
pub struct Task(*const u8);

/// `PF_EXITING` (include/linux/sched.h): the same bit on every kernel since
/// long before 5.15, unlike the worker bits in `task_flags`.
const PF_EXITING: u32 = 0x0000_0004;

/// The field of type `T` at `offset` in the kernel object `base`, which must
/// be a pointer the verifier knows by its BTF type (else the program fails
/// to load, never a run), and `offset` the start of a whole field of that
/// size (else the same).
#[inline(always)]
pub unsafe fn load<T: Copy>(base: *const u8, offset: u32) -> T {
    // SAFETY: the verifier rewrites this load of a BTF pointer into one
    // that reads 0 instead of faulting.
    unsafe { core::ptr::read_volatile(base.add(offset as usize).cast::<T>()) }
}

/// The pointer field at `offset` of `base` (as [`load`]); `None` if NULL.
#[inline(always)]
pub unsafe fn load_ptr(base: *const u8, offset: u32) -> Option<*const u8> {
    // SAFETY: as in `load`.
    let ptr = unsafe { load::<*const u8>(base, offset) };
    (!ptr.is_null()).then_some(ptr)
}

impl Task {
    /// `ptr` must be a task pointer the verifier knows by its BTF type.
    #[inline(always)]
    pub fn from_ptr(ptr: *const u8) -> Option<Self> {
        (!ptr.is_null()).then_some(Self(ptr))
    }

    #[inline(always)]
    pub fn current() -> Option<Self> {
        Self::from_ptr(current_btf())
    }

    #[inline(always)]
    pub fn as_ptr(self) -> *const u8 {
        self.0
    }

    #[inline(always)]
    fn field<T: Copy>(self, offset: u32) -> T {
        // SAFETY: a BTF task pointer; `offset` is a field's, from BTF.
        unsafe { load(self.0, offset) }
    }

    #[inline(always)]
    fn pointer(self, offset: u32) -> Option<*const u8> {
        // SAFETY: as in `field`.
        unsafe { load_ptr(self.0, offset) }
    }

    /// `(pid, tgid)`: thread id and process id, as they are now (exec by a
    /// non-main thread changes them). Two loads: a single 8-byte load of
    /// both is refused, as it spans two fields.
    #[inline(always)]
    pub fn ids(self) -> (u32, u32) {
        (
            self.field(setting!(offsets.task_pid)),
            self.field(setting!(offsets.task_tgid)),
        )
    }

    #[inline(always)]
    pub fn flags(self) -> u32 {
        self.field(setting!(offsets.task_flags))
    }

    /// A kernel thread, or a kernel-run worker inside a user process. Which
    /// flag bits mean "worker" depends on the kernel, so the daemon passes
    /// the mask.
    #[inline(always)]
    pub fn is_kernel_worker(self) -> bool {
        self.flags() & setting!(kernel_worker_flags) != 0
    }

    /// Past the point of no return in `do_exit` (its exit hook may have run).
    #[inline(always)]
    pub fn is_exiting(self) -> bool {
        self.flags() & PF_EXITING != 0
    }

    #[inline(always)]
    pub fn is_kthread(self) -> bool {
        self.flags() & PF_KTHREAD != 0
    }

    /// Copies `comm` (NUL-padded) into `out`. A helper: `comm` is a byte
    /// array, and a direct load may read only one element of it at a time.
    #[inline(always)]
    pub fn comm_into(self, out: &mut [u8; TASK_COMM_LEN]) -> Option<()> {
        // SAFETY: only an address is computed (the offset of a field of
        // the task, from BTF); nothing is dereferenced.
        let src = unsafe { self.0.add(setting!(offsets.task_comm) as usize) };
        // SAFETY: bpf_probe_read_kernel_buf checks the source address (a
        // bad one fails) and writes exactly `out`'s length into `out`.
        unsafe { bpf_probe_read_kernel_buf(src, out).ok() }
    }

    #[inline(always)]
    pub fn group_leader(self) -> Option<Task> {
        self.pointer(setting!(offsets.task_group_leader)).map(Task)
    }

    #[inline(always)]
    pub fn real_parent(self) -> Option<Task> {
        self.pointer(setting!(offsets.task_real_parent)).map(Task)
    }

    /// `start_boottime` of this task.
    #[inline(always)]
    pub fn start_boottime(self) -> u64 {
        self.field(setting!(offsets.task_start_boottime))
    }

    /// `start_boottime` of the process (its thread-group leader): the part of
    /// the process key that pid reuse cannot repeat.
    #[inline(always)]
    pub fn process_start(self) -> Option<u64> {
        Some(self.group_leader()?.start_boottime())
    }

    /// `signal->live`: threads of this task's group that have not passed the
    /// exit point yet. At `sched_process_exit` the exiting task has already
    /// decremented it, so 0 means the whole group is exiting.
    #[inline(always)]
    pub fn live_threads(self) -> Option<i32> {
        let signal = self.pointer(setting!(offsets.task_signal))?;
        // SAFETY: a BTF pointer loaded from the task; `live`'s counter.
        Some(unsafe { load(signal, setting!(offsets.signal_live)) })
    }

    /// `mm`: `None` for kernel threads.
    #[inline(always)]
    pub fn mm(self) -> Option<*const u8> {
        self.pointer(setting!(offsets.task_mm))
    }

    /// `mm->arg_start`, `mm->arg_end`.
    #[inline(always)]
    pub fn arg_range(self) -> Option<(u64, u64)> {
        let mm = self.mm()?;
        // SAFETY: a BTF pointer loaded from the task.
        unsafe {
            Some((
                load(mm, setting!(offsets.mm_arg_start)),
                load(mm, setting!(offsets.mm_arg_end)),
            ))
        }
    }
}

/// The current task as a BTF pointer, which task-storage helpers accept.
#[inline(always)]
pub fn current_btf() -> *const u8 {
    // SAFETY: a helper without arguments; it returns the running task.
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

/// Key of the current task in `MARKS`.
#[inline(always)]
pub fn current_key() -> u64 {
    // SAFETY: a helper without arguments; only the address is used, as a
    // key.
    unsafe { bpf_get_current_task() }
}

/// Number of the syscall the current task is in, from its saved user
/// registers. Meaningless for kernel threads.
#[inline(always)]
pub fn current_syscall() -> Option<u64> {
    // SAFETY: bpf_task_pt_regs takes the BTF task pointer that
    // bpf_get_current_task_btf returns (the verifier checks its type) and
    // returns a BTF pointer that `syscall_nr` only loads from.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) };
    syscall_nr(regs as *const u8)
}

/// Whether `syscall`, the current task's, is `execve` or `execveat`: a
/// task renaming itself inside one is exec's rename. The test
/// `prepare_exec` and `task_rename` share.
#[inline(always)]
pub fn is_exec_syscall(syscall: Option<u64>) -> bool {
    syscall.is_some_and(|nr| {
        nr == u64::from(setting!(nr_execve)) || nr == u64::from(setting!(nr_execveat))
    })
}

/// Number of the syscall whose user registers `regs` hold: a `struct
/// pt_regs` pointer the verifier knows by its BTF type (`bpf_task_pt_regs`
/// returns one, `sys_exit` passes one), so the field is loaded directly.
#[inline(always)]
pub fn syscall_nr(regs: *const u8) -> Option<u64> {
    if regs.is_null() {
        return None;
    }
    // SAFETY: a BTF `struct pt_regs` pointer; the field's offset from BTF.
    Some(unsafe { load(regs, setting!(offsets.regs_syscall_nr)) })
}

impl Task {
    /// Id of the task's cgroup v2 (`cgroups->dfl_cgrp->kn->id`), which is the
    /// inode number of the cgroup's directory.
    #[inline(always)]
    pub fn cgroup_id(self) -> Option<u64> {
        let kn = self.cgroup_node()?;
        // SAFETY: a BTF pointer walked from the task.
        Some(unsafe { load(kn, setting!(offsets.kernfs_node_id)) })
    }

    /// The kernfs node of the task's cgroup v2 (`cgroups->dfl_cgrp->kn`).
    #[inline(always)]
    pub fn cgroup_node(self) -> Option<*const u8> {
        let css = self.pointer(setting!(offsets.task_cgroups))?;
        // SAFETY: BTF pointers walked from the task, each checked for NULL.
        unsafe {
            let cgrp = load_ptr(css, setting!(offsets.css_set_dfl_cgrp))?;
            load_ptr(cgrp, setting!(offsets.cgroup_kn))
        }
    }
}

impl Task {
    /// The task's mount namespace (`nsproxy->mnt_ns`); `None` when the
    /// task has no namespaces any more (exiting).
    #[inline(always)]
    fn mnt_ns_ptr(self) -> Option<*const u8> {
        let nsproxy = self.pointer(setting!(offsets.task_nsproxy))?;
        // SAFETY: a BTF pointer walked from the task, checked for NULL; the
        // offset from BTF.
        unsafe { load_ptr(nsproxy, setting!(offsets.nsproxy_mnt_ns)) }
    }

    /// The inode number of the task's mount namespace, as
    /// `/proc/<pid>/ns/mnt` shows it.
    #[inline(always)]
    pub fn mnt_ns(self) -> Option<u32> {
        let ns = self.mnt_ns_ptr()?;
        // SAFETY: a BTF pointer checked for NULL; the offset from BTF.
        Some(unsafe { load(ns, setting!(offsets.mnt_ns_inum)) })
    }

    /// The inode number of the task's mount namespace, when no fanotify mark
    /// watches that namespace for mount attach (its `n_fsnotify_mask` lacks
    /// `FS_MNT_ATTACH`); `None` when one does, or the task has no
    /// namespaces any more (exiting). Only valid where the kernel has
    /// `mnt_namespace.n_fsnotify_mask` (Linux 6.15+): callers check
    /// `watch_mnt_ns` first.
    #[inline(always)]
    pub fn unwatched_mnt_ns(self) -> Option<u32> {
        let ns = self.mnt_ns_ptr()?;
        // SAFETY: a BTF pointer checked for NULL; the offsets from BTF.
        unsafe {
            let mask: u32 = load(ns, setting!(offsets.mnt_ns_fsnotify_mask));
            if mask & rename_audit_common::FS_MNT_ATTACH != 0 {
                return None;
            }
            Some(load(ns, setting!(offsets.mnt_ns_inum)))
        }
    }
}
