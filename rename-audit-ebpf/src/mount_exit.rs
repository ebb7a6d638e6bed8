//! `tracepoint/syscalls/sys_exit_mount` and `sys_exit_move_mount`: a mount
//! was made. Only that it happened and by whom is sent; the daemon reads
//! the mount table again to see whether a `/proc/<pid>` is now covered
//! (fentry and kprobes on the mount code are not available everywhere;
//! syscall tracepoints are).
//!
//! Needs: syscall tracepoints (CONFIG_FTRACE_SYSCALLS) and tracefs to attach;
//! `move_mount` exists from Linux 5.2. The offset of `ret` comes from the
//! tracepoint's format file.
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use rename_audit_common::{MountRecord, kind};

use crate::{PRIORITY_RING, ring, setting};

#[tracepoint]
pub fn mount_exit(ctx: TracePointContext) -> u32 {
    let _ = try_mount_exit(&ctx);
    0
}

#[inline(always)]
fn try_mount_exit(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: reads the tracepoint record at an offset from its format.
    let ret: i64 = unsafe { ctx.read_at(setting!(offsets.syscall_exit_ret) as usize) }.ok()?;
    if ret != 0 {
        return None;
    }
    let now = ring::now_ns();
    let ids = bpf_get_current_pid_tgid();
    let mut entry = ring::reserve_lifecycle::<MountRecord>()?;
    entry.write(MountRecord {
        hdr: ring::header(kind::MOUNT, now),
        tid: ids as u32,
        tgid: (ids >> 32) as u32,
    });
    ring::submit(&PRIORITY_RING, entry);
    Some(())
}
