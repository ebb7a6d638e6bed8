//! `fexit/do_move_mount`: `do_move_mount` attaches a mount made with open_tree(2) or fsmount(2),
//! and moves one, for move_mount(2) (and mount(2)'s `MS_MOVE`). Sends a mount record naming the task that
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

#[fexit(function = "do_move_mount")]
pub fn move_mount_exit(ctx: FExitContext) -> i32 {
    // Failed calls are skipped (bpf_get_func_ret, Linux 5.17: the hook
    // table requires it). Should the helper fail, the call is reported:
    // the daemon's read of the mount tables then finds nothing new.
    if !matches!(ctx.ret::<i64>(), Ok(ret) if ret != 0) {
        let _ = mounted();
    }
    0
}
