//! `tp_btf/sched_prepare_exec`: runs in exec after the point of no return and
//! before the kernel renames the task. Marks the execs whose rename
//! `task_rename` cannot tell by the syscall number: those that do not come
//! from `execve`/`execveat` (the kernel's own: init, usermode helpers) or
//! come from their 32-bit versions. The rest, nearly every exec, need no
//! mark, which spares a hash insert and delete per exec.
//!
//! Needs: Linux 6.10 (the tracepoint). Not loaded on older kernels, where
//! `task_rename` recognizes exec by its syscall number alone.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use rename_audit_common::method;

use crate::{
    MARKS,
    task::{current_key, current_syscall, is_exec_syscall},
};

/// Variant `exec_rename="sched_prepare_exec"`: needs the tracepoint (Linux
/// 6.10) (the daemon's hook table, `rename-audit/src/capture/hooks.rs`, is the
/// one enforced).
#[btf_tracepoint(function = "sched_prepare_exec")]
pub fn prepare_exec(_ctx: BtfTracePointContext) -> i32 {
    if !is_exec_syscall(current_syscall()) {
        let _ = MARKS.insert(current_key(), method::EXEC as u32, 0);
    }
    0
}
