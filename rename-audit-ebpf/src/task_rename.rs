//! `tp_btf/task_rename`: every rename of every task passes here, with the
//! renamed task itself as the first argument (which need not be current).
//!
//! Needs: BTF tracepoints (5.5), ring buffers (5.8), `bpf_task_pt_regs`
//! (5.15). Exec renames are told apart by the execve/execveat syscall
//! number, and on 6.10+ also by `sched_prepare_exec`'s mark for execs outside
//! those syscalls (`Settings::exec_detect`).
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel_str_bytes},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use rename_audit_common::{
    RenameRecord, class, exec_detect, kind, lost_reason, method, rename_flags,
};

use crate::{
    PRIORITY_RING, THREAD_RING, path, ring, setting,
    storm::{self, Verdict},
    task::{Task, current_syscall},
};

/// Needs Linux 5.15: the BTF tracepoint (5.5), ring buffers (5.8),
/// `bpf_task_pt_regs` (5.15); on every kernel (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "task_rename")]
pub fn task_rename(ctx: BtfTracePointContext) -> i32 {
    let _ = try_task_rename(&ctx);
    0
}

#[inline(always)]
fn try_task_rename(ctx: &BtfTracePointContext) -> Option<()> {
    let new_name: *const u8 = ctx.arg(1);
    let Some(task) = Task::from_ptr(ctx.arg::<*const u8>(0)) else {
        ring::count_lost(class::UNKNOWN, lost_reason::TASK_UNREADABLE);
        return None;
    };
    let (tid, tgid) = task.ids();
    // How the task is renamed is needed only for a rename that is sent, and
    // before a thread's first rename, which creates its rate state unless
    // it is exec's (see `storm`). It is worked out once: exec's mark can be
    // taken only once.
    let mut how = None;
    let state = match storm::existing_state(task) {
        Some(state) => Some(state),
        None => {
            let first = method_of(task, tgid);
            how = Some(first);
            if first.0 == method::EXEC {
                None
            } else {
                storm::new_state(task)
            }
        }
    };
    let cls = if tid == tgid {
        class::PROCESS
    } else {
        class::THREAD
    };
    let now = match storm::admit(state, task, (tid, tgid), cls, new_name) {
        Verdict::Send { now } => now,
        Verdict::Counted => return Some(()),
    };
    let ring = if cls == class::PROCESS {
        &PRIORITY_RING
    } else {
        &THREAD_RING
    };
    let mut entry = ring::reserve::<RenameRecord>(ring, cls)?;
    let writer = bpf_get_current_pid_tgid();
    let (how, writer_kernel) = how.unwrap_or_else(|| method_of(task, tgid));
    let mut old_name = [0; 16];
    let _ = task.comm_into(&mut old_name);
    let mut new = [0; 16];
    // A 16-byte destination keeps 15 bytes and the NUL: the kernel's own
    // truncation of an over-long name (exec of a long file name).
    // SAFETY: the helper checks the source address (the tracepoint's name
    // argument) and writes at most `new`'s 16 bytes.
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(new_name, &mut new) };
    // Written whole: no byte of the ring's previous contents survives.
    entry.write(RenameRecord {
        hdr: ring::header(kind::RENAME, now),
        tid,
        tgid,
        writer_tid: writer as u32,
        writer_tgid: (writer >> 32) as u32,
        start_boottime_ns: task.process_start().unwrap_or(0),
        method: how,
        flags: (if task.is_kthread() {
            rename_flags::RENAMED_KTHREAD
        } else {
            0
        }) | (if writer_kernel {
            rename_flags::WRITER_KERNEL
        } else {
            0
        }) | (if path::exe_deleted(task) {
            rename_flags::EXE_DELETED
        } else {
            0
        }),
        _pad: [0; 6],
        old_name,
        new_name: new,
        writer_name: bpf_get_current_comm().unwrap_or([0; 16]),
        cgroup_id: task.cgroup_id().unwrap_or(0),
    });
    ring::submit(ring, entry);
    Some(())
}

/// How the writer is renaming `task`. A user task renames only through
/// prctl (itself), exec (itself) or a write to a procfs comm file (a task of
/// its own process); everything else is the kernel's doing. prctl is tested
/// first and costs no map lookup.
#[inline(always)]
fn method_of(task: Task, tgid: u32) -> (u8, bool) {
    let Some(writer) = Task::current() else {
        return (method::KERNEL, true);
    };
    if writer.is_kernel_worker() {
        return (method::KERNEL, true);
    }
    let is_self = writer.as_ptr() == task.as_ptr();
    let syscall = if is_self { current_syscall() } else { None };
    if syscall == Some(u64::from(setting!(nr_prctl))) {
        return (method::PRCTL, false);
    }
    if is_exec(syscall) {
        return (method::EXEC, false);
    }
    let same_process = writer.ids().1 == tgid;
    if same_process {
        (method::PROCFS, false)
    } else {
        (method::KERNEL, false)
    }
}

/// Whether this rename is exec naming the task after its new image.
/// `syscall` is the writer's syscall when it renames itself, else `None`.
///
/// A task renaming itself inside `execve`/`execveat` is always exec: exec
/// renames only the task running it, and nothing else renames a task from
/// inside those syscalls. On 6.10+ `sched_prepare_exec` marks the execs this
/// cannot see (the kernel's own, 32-bit syscalls), by the same test, so no
/// exec is missed and the common one costs no map operation.
#[inline(always)]
fn is_exec(syscall: Option<u64>) -> bool {
    if crate::task::is_exec_syscall(syscall) {
        return true;
    }
    setting!(exec_detect) == exec_detect::PREPARE_EXEC && crate::take_exec_mark()
}
