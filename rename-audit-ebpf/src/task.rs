//! Accessors for kernel tasks. Offsets come from the running kernel's BTF
//! through `SETTINGS`; every read can fail and returns `Option`.
use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_get_current_task_btf, bpf_probe_read_kernel,
    bpf_probe_read_kernel_buf, generated::bpf_task_pt_regs,
};
use rename_audit_common::{TASK_COMM_LEN, task_flags::PF_KTHREAD};

use crate::setting;

/// A `struct task_struct *`.
#[derive(Clone, Copy)]
pub struct Task(*const u8);

/// `PF_EXITING` (include/linux/sched.h): the same bit on every kernel since
/// long before 5.15, unlike the worker bits in `task_flags`.
const PF_EXITING: u32 = 0x0000_0004;

#[inline(always)]
unsafe fn field<T>(base: *const u8, offset: u32) -> Option<T> {
    unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const T).ok() }
}

impl Task {
    #[inline(always)]
    pub fn from_ptr(ptr: *const u8) -> Option<Self> {
        (!ptr.is_null()).then_some(Self(ptr))
    }

    #[inline(always)]
    pub fn current() -> Option<Self> {
        Self::from_ptr(unsafe { bpf_get_current_task() } as *const u8)
    }

    #[inline(always)]
    pub fn as_ptr(self) -> *const u8 {
        self.0
    }

    /// `(pid, tgid)`: thread id and process id. Every kernel lays them out
    /// side by side, which the daemon checks in BTF: then one read does.
    #[inline(always)]
    pub fn ids(self) -> Option<(u32, u32)> {
        let pid_at = setting!(offsets.task_pid);
        let tgid_at = setting!(offsets.task_tgid);
        if tgid_at == pid_at + 4 {
            let both = unsafe { field::<u64>(self.0, pid_at)? };
            return Some((both as u32, (both >> 32) as u32));
        }
        let pid = unsafe { field::<u32>(self.0, pid_at)? };
        let tgid = unsafe { field::<u32>(self.0, tgid_at)? };
        Some((pid, tgid))
    }

    /// `(pid, tgid)` of a task the verifier knows by its BTF type (a BTF
    /// tracepoint's task argument, `bpf_get_current_task_btf`): loaded
    /// directly, without the helper call `ids` costs. The verifier checks
    /// each load against the kernel's BTF when the program loads; it can,
    /// because the offsets come from `SETTINGS`, which is read-only and
    /// frozen, so they are constants to it. Only pointers it types this way
    /// are accepted; any other fails the load, never a run.
    #[inline(always)]
    pub fn btf_ids(self) -> (u32, u32) {
        let pid_at = setting!(offsets.task_pid) as usize;
        let tgid_at = setting!(offsets.task_tgid) as usize;
        // SAFETY: a BTF task pointer, so the verifier turns the loads into
        // faulting-safe ones; each reads one whole `pid_t` field (a single
        // 8-byte load of both is refused, as it spans two fields).
        unsafe {
            (
                core::ptr::read_volatile(self.0.add(pid_at).cast::<u32>()),
                core::ptr::read_volatile(self.0.add(tgid_at).cast::<u32>()),
            )
        }
    }

    #[inline(always)]
    pub fn flags(self) -> Option<u32> {
        unsafe { field(self.0, setting!(offsets.task_flags)) }
    }

    /// A kernel thread, or a kernel-run worker inside a user process. Which
    /// flag bits mean "worker" depends on the kernel, so the daemon passes
    /// the mask.
    #[inline(always)]
    pub fn is_kernel_worker(self) -> bool {
        let mask = setting!(kernel_worker_flags);
        self.flags().is_some_and(|f| f & mask != 0)
    }

    /// Past the point of no return in `do_exit` (its exit hook may have run).
    #[inline(always)]
    pub fn is_exiting(self) -> bool {
        self.flags().is_some_and(|f| f & PF_EXITING != 0)
    }

    #[inline(always)]
    pub fn is_kthread(self) -> bool {
        self.flags().is_some_and(|f| f & PF_KTHREAD != 0)
    }

    /// Copies `comm` (NUL-padded) into `out`.
    #[inline(always)]
    pub fn comm_into(self, out: &mut [u8; TASK_COMM_LEN]) -> Option<()> {
        let src = unsafe { self.0.add(setting!(offsets.task_comm) as usize) };
        unsafe { bpf_probe_read_kernel_buf(src, out).ok() }
    }

    #[inline(always)]
    fn pointer(self, offset: u32) -> Option<Task> {
        Task::from_ptr(unsafe { field::<*const u8>(self.0, offset)? })
    }

    #[inline(always)]
    pub fn group_leader(self) -> Option<Task> {
        self.pointer(setting!(offsets.task_group_leader))
    }

    #[inline(always)]
    pub fn real_parent(self) -> Option<Task> {
        self.pointer(setting!(offsets.task_real_parent))
    }

    /// `start_boottime` of this task.
    #[inline(always)]
    pub fn start_boottime(self) -> Option<u64> {
        unsafe { field(self.0, setting!(offsets.task_start_boottime)) }
    }

    /// `start_boottime` of the process (its thread-group leader): the part of
    /// the process key that pid reuse cannot repeat.
    #[inline(always)]
    pub fn process_start(self) -> Option<u64> {
        self.group_leader()?.start_boottime()
    }

    /// `signal->live`: threads of this task's group that have not passed the
    /// exit point yet. At `sched_process_exit` the exiting task has already
    /// decremented it, so 0 means the whole group is exiting.
    #[inline(always)]
    pub fn live_threads(self) -> Option<i32> {
        let signal = unsafe { field::<*const u8>(self.0, setting!(offsets.task_signal))? };
        if signal.is_null() {
            return None;
        }
        unsafe { field(signal, setting!(offsets.signal_live)) }
    }

    /// `mm->arg_start`, `mm->arg_end`.
    #[inline(always)]
    pub fn arg_range(self) -> Option<(u64, u64)> {
        let mm = unsafe { field::<*const u8>(self.0, setting!(offsets.task_mm))? };
        if mm.is_null() {
            return None;
        }
        let start = unsafe { field::<u64>(mm, setting!(offsets.mm_arg_start))? };
        let end = unsafe { field::<u64>(mm, setting!(offsets.mm_arg_end))? };
        Some((start, end))
    }
}

/// The current task as a BTF pointer, which task-storage helpers accept.
#[inline(always)]
pub fn current_btf() -> *const u8 {
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

/// Key of the current task in `MARKS`.
#[inline(always)]
pub fn current_key() -> u64 {
    unsafe { bpf_get_current_task() }
}

/// Number of the syscall the current task is in, from its saved user
/// registers. Meaningless for kernel threads.
#[inline(always)]
pub fn current_syscall() -> Option<u64> {
    syscall_nr(unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8)
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

/// Number of the syscall whose user registers `regs` (a `struct pt_regs`)
/// holds.
#[inline(always)]
pub fn syscall_nr(regs: *const u8) -> Option<u64> {
    if regs.is_null() {
        return None;
    }
    unsafe { field(regs, setting!(offsets.regs_syscall_nr)) }
}

impl Task {
    /// Id of the task's cgroup v2 (`cgroups->dfl_cgrp->kn->id`), which is the
    /// inode number of the cgroup's directory.
    #[inline(always)]
    pub fn cgroup_id(self) -> Option<u64> {
        let kn = self.cgroup_node()?;
        unsafe { field(kn, setting!(offsets.kernfs_node_id)) }
    }

    /// The kernfs node of the task's cgroup v2 (`cgroups->dfl_cgrp->kn`).
    #[inline(always)]
    pub fn cgroup_node(self) -> Option<*const u8> {
        let css = unsafe { field::<*const u8>(self.0, setting!(offsets.task_cgroups))? };
        if css.is_null() {
            return None;
        }
        let cgrp = unsafe { field::<*const u8>(css, setting!(offsets.css_set_dfl_cgrp))? };
        if cgrp.is_null() {
            return None;
        }
        let kn = unsafe { field::<*const u8>(cgrp, setting!(offsets.cgroup_kn))? };
        (!kn.is_null()).then_some(kn)
    }
}
