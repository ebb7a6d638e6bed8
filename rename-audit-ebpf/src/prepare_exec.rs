//! `tp_btf/sched_prepare_exec`: runs in exec after the point of no return and
//! before the kernel renames the task, so it marks that rename as "exec".
//!
//! Needs: Linux 6.10 (the tracepoint). Not loaded on older kernels, where
//! `task_rename` recognizes exec by its syscall number instead.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use rename_audit_common::method;

use crate::{MARKS, task::current_key};

#[btf_tracepoint(function = "sched_prepare_exec")]
pub fn prepare_exec(_ctx: BtfTracePointContext) -> i32 {
    let _ = MARKS.insert(current_key(), method::EXEC as u32, 0);
    0
}
