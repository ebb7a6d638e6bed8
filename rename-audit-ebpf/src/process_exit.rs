//! `tp_btf/sched_process_exit`: a task exits. Frees its kernel-side state,
//! and tells the daemon when the process is gone or a renamed thread is.
//!
//! Two variants; the daemon loads the one the running kernel's BTF allows:
//! - `process_exit` (kernels whose tracepoint passes `group_dead`, 2025 on):
//!   the kernel says whether the whole group is gone.
//! - `process_exit_live` (Linux 5.15 on): the same answer from
//!   `signal->live`, which `do_exit` decrements before this tracepoint
//!   fires. When the last two threads exit together both may read 0, so the
//!   process's exit can be reported twice; the daemon treats the second as a
//!   no-op.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use rename_audit_common::{ExitRecord, exec_detect, exit_flags, kind};

use crate::{PRIORITY_RING, ring, setting, storm, task::Task};

/// Variant `process_exit="group_dead-argument"`: needs the tracepoint's
/// third argument, `group_dead` (kernels from 2025) (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "sched_process_exit")]
pub fn process_exit(ctx: BtfTracePointContext) -> i32 {
    if let Some(task) = Task::from_ptr(ctx.arg::<*const u8>(0)) {
        let group_dead = ctx.arg::<u64>(1) & 0xff != 0;
        let _ = exited(task, group_dead);
    }
    0
}

/// Variant `process_exit="signal-live-count"`, the fallback: needs the BTF
/// tracepoint (5.5) (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "sched_process_exit")]
pub fn process_exit_live(ctx: BtfTracePointContext) -> i32 {
    if let Some(task) = Task::from_ptr(ctx.arg::<*const u8>(0)) {
        // Unreadable: say the group lives on. Its exit record is then missed,
        // which the daemon's lifecycle-loss pruning already covers.
        let group_dead = task.live_threads() == Some(0);
        let _ = exited(task, group_dead);
    }
    0
}

#[inline(always)]
fn exited(task: Task, group_dead: bool) -> Option<()> {
    if setting!(exec_detect) == exec_detect::PREPARE_EXEC {
        // A mark whose exec rename was never seen goes with the task.
        let _ = crate::take_exec_mark();
    }
    // A main thread that exited earlier forgot its state then, and as an
    // exiting task it gets none from later renames by a sibling.
    let renamed = storm::forget(task.as_ptr());
    if !group_dead && !renamed {
        return None;
    }
    let (tid, tgid) = task.ids();
    let mut entry = ring::reserve_lifecycle::<ExitRecord>()?;
    entry.write(ExitRecord {
        hdr: ring::header(kind::EXIT, ring::now_ns()),
        tid,
        tgid,
        start_boottime_ns: task.process_start().unwrap_or(0),
        flags: if group_dead {
            exit_flags::GROUP_DEAD
        } else {
            0
        },
        _pad: 0,
    });
    ring::submit(&PRIORITY_RING, entry);
    Some(())
}
