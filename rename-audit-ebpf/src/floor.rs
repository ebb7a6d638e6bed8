//! Empty programs: the floor of what hooking costs. Only the benchmark
//! loads them (`examples/floor.rs`); the daemon never does.
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
