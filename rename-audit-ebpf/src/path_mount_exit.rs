//! `fexit/path_mount`: `path_mount` is where mount(2) does its work (every kind of mount: new,
//! bind, move, remount; Linux 5.9+). Sends a mount record naming the task that
//! mounted; the daemon then reads the mount tables again.
//!
//! Variant `mount_watch="fexit"`: needs BPF trampolines
//! (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) and the function in BTF. Runs
//! only when the kernel runs that function, never for another syscall, and
//! attaches through BPF_RAW_TRACEPOINT_OPEN, not perf_event_open, so
//! `kernel.perf_event_paranoid` does not stop it (the daemon's hook table,
//! `rename-audit/src/capture/hooks.rs`, is the one enforced).
use aya_ebpf::{macros::fexit, programs::FExitContext};

use crate::mount_exit::mounted;

#[fexit(function = "path_mount")]
pub fn path_mount_exit(ctx: FExitContext) -> i32 {
    // Failed calls are skipped (bpf_get_func_ret, Linux 5.17: the hook
    // table requires it). Should the helper fail, the call is reported:
    // the daemon's read of the mount tables then finds nothing new.
    if !matches!(ctx.ret::<i64>(), Ok(ret) if ret != 0) {
        let _ = mounted();
    }
    0
}
