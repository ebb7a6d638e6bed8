//! `fentry`/`fexit` on `comm_write`, the write handler of every procfs
//! `comm` file: marks the writer so `task_rename` reports method "procfs".
use aya_ebpf::{
    macros::{fentry, fexit},
    programs::{FEntryContext, FExitContext},
};
use rename_audit_common::method;

use crate::{MARKS, task::current_key};

#[fentry(function = "comm_write")]
pub fn comm_write_entry(_ctx: FEntryContext) -> i32 {
    let _ = MARKS.insert(&current_key(), &(method::PROCFS as u32), 0);
    0
}

#[fexit(function = "comm_write")]
pub fn comm_write_exit(_ctx: FExitContext) -> i32 {
    let _ = MARKS.remove(&current_key());
    0
}
