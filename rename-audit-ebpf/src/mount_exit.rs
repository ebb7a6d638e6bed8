//! A mount was made. Only that it happened and by whom is sent; the daemon
//! reads the mount table again to see whether a `/proc/<pid>` is now
//! covered.
//!
//! Two variants here, the last resorts of the daemon's mount watch: it
//! prefers fanotify, `fexit` on the mount code (`path_mount_exit.rs`,
//! `move_mount_exit.rs`) and polling the mount tables, none of which puts
//! a program on any syscall. The daemon loads one, chosen before loading:
//! - `mount_exit` on `tracepoint/syscalls/sys_exit_mount` and
//!   `sys_exit_move_mount`: runs only for those two syscalls. Needs syscall
//!   tracepoints (CONFIG_FTRACE_SYSCALLS) and tracefs, and attaches through
//!   perf_event_open, which Debian's kernels refuse without CAP_SYS_ADMIN at
//!   their default `kernel.perf_event_paranoid` of 3. `move_mount` exists
//!   from Linux 5.2. The offset of `ret` comes from the tracepoint's format
//!   file.
//! - `mount_exit_raw` on `tp_btf/sys_exit`: attaches through
//!   BPF_RAW_TRACEPOINT_OPEN, which CAP_BPF and CAP_PERFMON allow at any
//!   paranoia level, but runs at the exit of every syscall on the host and
//!   filters on the syscall number itself. Needs BTF tracepoints (5.5).
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use rename_audit_common::{MountRecord, kind};

use crate::{PRIORITY_RING, ring, setting, task};

/// Variant `mount_watch="syscall-tracepoints"`: needs syscall tracepoints
/// and tracefs, and perf_event_open (CAP_SYS_ADMIN where
/// `perf_event_paranoid` > 2) (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[tracepoint]
pub fn mount_exit(ctx: TracePointContext) -> u32 {
    // SAFETY: reads the tracepoint record at an offset from its format.
    let ret: Option<i64> = unsafe { ctx.read_at(setting!(offsets.syscall_exit_ret) as usize) }.ok();
    if ret == Some(0) {
        let _ = mounted();
    }
    0
}

/// Variant `mount_watch="raw-sys-exit"`: needs the BTF tracepoint (5.5)
/// (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "sys_exit")]
pub fn mount_exit_raw(ctx: BtfTracePointContext) -> i32 {
    // (struct pt_regs *regs, long ret). `ret` first: it needs no helper
    // call, and most syscalls end here.
    if ctx.arg::<i64>(1) == 0
        && let Some(nr) = task::syscall_nr(ctx.arg::<*const u8>(0))
        && (nr == u64::from(setting!(nr_mount)) || nr == u64::from(setting!(nr_move_mount)))
    {
        let _ = mounted();
    }
    0
}

/// Sends a [`MountRecord`] naming the current task: it mounted.
#[inline(always)]
pub fn mounted() -> Option<()> {
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
