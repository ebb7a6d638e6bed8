//! `tp_btf/sched_process_fork`: a new process (threads are skipped: the
//! daemon's table holds processes, and thread renames carry their own ids).
//!
//! Needs: BTF tracepoints (5.5), ring buffers (5.8); same on every kernel
//! (the mount-namespace report only where mounts are watched per namespace).
use aya_ebpf::{
    helpers::bpf_get_current_uid_gid, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use rename_audit_common::{ForkRecord, kind};

use crate::{PRIORITY_RING, mnt_ns, ring, task::Task};

/// Needs the BTF tracepoint (5.5) and ring buffers (5.8); on every kernel
/// (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "sched_process_fork")]
pub fn process_fork(ctx: BtfTracePointContext) -> i32 {
    let _ = try_process_fork(&ctx);
    0
}

#[inline(always)]
fn try_process_fork(ctx: &BtfTracePointContext) -> Option<()> {
    let child = Task::from_ptr(ctx.arg::<*const u8>(1))?;
    let (pid, tgid) = child.ids();
    if pid != tgid {
        return None;
    }
    let now = ring::now_ns();
    // real_parent, not current: CLONE_PARENT makes a sibling, not a child.
    // An unreadable parent still gives a record (parent 0), never none.
    let parent = child.real_parent();
    let mut entry = ring::reserve_lifecycle::<ForkRecord>()?;
    // SAFETY: the reserved record; every field is written below.
    let rec = unsafe { &mut *entry.as_mut_ptr() };
    rec.hdr = ring::header(kind::FORK, now);
    rec.tgid = tgid;
    rec.parent_tgid = parent.map_or(0, |p| p.ids().1);
    rec.start_boottime_ns = child.start_boottime();
    rec.parent_start_boottime_ns = parent.and_then(Task::process_start).unwrap_or(0);
    rec.uid = bpf_get_current_uid_gid() as u32;
    rec._pad = 0;
    rec.comm = [0; 16];
    let _ = child.comm_into(&mut rec.comm);
    ring::submit(&PRIORITY_RING, entry);
    // After the fork record, so the daemon knows the process when it reads
    // the new namespace's mount table (clone with CLONE_NEWNS).
    let _ = mnt_ns::report(child, parent, tgid, now);
    Some(())
}
