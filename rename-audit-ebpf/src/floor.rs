//! The benchmark's floor: empty programs, the cost of hooking at all. A
//! kernel object of its own (`rename-audit-floor`), so the daemon's object
//! does not ship them: only the benchmark's loader
//! (`rename-audit/examples/floor.rs`) embeds and loads this one.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};

/// `tp_btf/task_rename`, doing nothing: the cost of hooking the rename at
/// all.
#[btf_tracepoint(function = "task_rename")]
pub fn floor(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// The mount watch's syscall exit tracepoints, doing nothing. Any syscall
/// tracepoint puts every task's every syscall on the kernel's slower
/// syscall path, prctl included: the part of a rename storm's cost that
/// comes with watching mounts, whatever the program does.
#[tracepoint]
pub fn floor_syscall(_ctx: TracePointContext) -> u32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
