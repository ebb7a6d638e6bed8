//! `tp_btf/sched_process_exec`: the process has its new image; records its
//! executable (path from dentries and mounts, device, inode) and its
//! argument block, both of the new image.
//!
//! Needs: BTF tracepoints (5.5), ring buffers (5.8); same on every kernel
//! (the mount-namespace report only where mounts are watched with fanotify).
use aya_ebpf::{
    helpers::{bpf_get_current_uid_gid, generated::bpf_probe_read_user},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use rename_audit_common::{ARGS_LEN, ExecRecord, exec_detect, kind};

use crate::{PRIORITY_RING, mnt_ns, path, ring, setting, task::Task};

/// Needs the BTF tracepoint (5.5) and ring buffers (5.8); on every kernel
/// (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "sched_process_exec")]
pub fn process_exec(ctx: BtfTracePointContext) -> i32 {
    if setting!(exec_detect) == exec_detect::PREPARE_EXEC {
        // The exec rename consumed the mark already; this covers an exec whose
        // rename was not seen.
        let _ = crate::take_exec_mark();
    }
    // A non-main thread that execs takes over the process id: its storm
    // slot, kept under its old tid, is handed over and its state starts anew.
    let old_pid = ctx.arg::<u64>(1) as u32;
    if let Some(current) = Task::current()
        && old_pid != current.ids().0
    {
        let _ = crate::storm::forget(crate::task::current_btf());
    }
    let _ = try_process_exec(&ctx);
    0
}

#[inline(always)]
fn try_process_exec(ctx: &BtfTracePointContext) -> Option<()> {
    let now = ring::now_ns();
    let task = Task::from_ptr(ctx.arg::<*const u8>(0))?;
    let (_, tgid) = task.ids();
    let mut entry = ring::reserve_lifecycle::<ExecRecord>()?;
    // SAFETY: the reserved record, zeroed first, so no stale ring bytes
    // reach the daemon; the fields are then written below.
    let rec = unsafe { &mut *entry.as_mut_ptr() };
    ring::zero(rec);
    rec.hdr = ring::header(kind::EXEC, now);
    rec.tgid = tgid;
    rec.uid = bpf_get_current_uid_gid() as u32;
    rec.start_boottime_ns = task.process_start().unwrap_or(0);
    rec.cgroup_id = task.cgroup_id().unwrap_or(0);
    let _ = task.comm_into(&mut rec.comm);
    // The new image's own file and arguments: both are in place by now.
    path::fill_exe(task, rec);
    path::fill_cgroup(task, rec);
    rec.args_len = 0;
    rec.args_truncated = 0;
    if let Some((start, end)) = task.arg_range()
        && end > start
    {
        let len = end - start;
        let len = if len > ARGS_LEN as u64 {
            rec.args_truncated = 1;
            ARGS_LEN as u64
        } else {
            len
        };
        // SAFETY: writes at most ARGS_LEN bytes into `rec.args`.
        let rc = unsafe {
            bpf_probe_read_user(
                rec.args.as_mut_ptr().cast(),
                len as u32,
                start as *const core::ffi::c_void,
            )
        };
        if rc == 0 {
            rec.args_len = len as u32;
        }
    }
    ring::submit(&PRIORITY_RING, entry);
    // A process that unshared its mount namespace shows it at its next exec
    // (`unshare -m cmd`, `nsenter -m cmd`).
    let _ = mnt_ns::report(task, task.real_parent(), tgid, now);
    Some(())
}
