//! `tp_btf/sched_process_exit`: a task exits. Frees its kernel-side state,
//! and tells the daemon when the process is gone or a renamed thread is.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use rename_audit_common::{ExitRecord, exit_flags, kind};

use crate::{
    MARKS, PRIORITY_RING, ring, storm,
    task::{Task, current_key},
};

#[btf_tracepoint(function = "sched_process_exit")]
pub fn process_exit(ctx: BtfTracePointContext) -> i32 {
    let _ = MARKS.remove(current_key());
    let _ = try_process_exit(&ctx);
    0
}

#[inline(always)]
fn try_process_exit(ctx: &BtfTracePointContext) -> Option<()> {
    let task = Task::from_ptr(ctx.arg::<*const u8>(0))?;
    let group_dead = ctx.arg::<u64>(1) & 0xff != 0;
    let (tid, tgid) = task.ids()?;
    // A main thread that exited earlier forgot its state then, and as an
    // exiting task it gets none from later renames by a sibling.
    let renamed = storm::forget(task.as_ptr());
    if !group_dead && !renamed {
        return None;
    }
    let mut entry = ring::reserve_lifecycle::<ExitRecord>()?;
    let rec = unsafe { &mut *entry.as_mut_ptr() };
    rec.hdr = ring::header(kind::EXIT, ring::now_ns());
    rec.tid = tid;
    rec.tgid = tgid;
    rec.start_boottime_ns = task.process_start().unwrap_or(0);
    rec.flags = if group_dead {
        exit_flags::GROUP_DEAD
    } else {
        0
    };
    rec._pad = 0;
    ring::submit(&PRIORITY_RING, entry);
    Some(())
}
