//! `tp_btf/task_rename`, doing nothing: the floor of what hooking the rename
//! at all costs. Only the benchmark loads it (`examples/floor.rs`); the
//! daemon never does.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

#[btf_tracepoint(function = "task_rename")]
pub fn floor(_ctx: BtfTracePointContext) -> i32 {
    0
}
