//! The daemon has to learn of mount namespaces where it watches mounts per
//! namespace, with no program in the mount code. The fork and exec hooks
//! call this; `Settings::watch_mnt_ns` says when a process's namespace is
//! reported:
//! - fanotify (Linux 6.15+): a process in a namespace that no mark watches
//!   yet is reported once per hook run, until the daemon has marked it (the
//!   mark sets the namespace's `n_fsnotify_mask`, which is checked here; the
//!   `mount_watch="fanotify"` row of the daemon's hook table needs that
//!   field);
//! - polled mount tables (any kernel): a process in another namespace than
//!   its parent (clone with CLONE_NEWNS at fork; unshare or setns, then
//!   exec). A child in its parent's namespace is not reported: the daemon
//!   counts it from its fork record.
//!
//! Not a hook of its own (the daemon's hook table,
//! `rename-audit/src/capture/hooks.rs`, is the one enforced).
use rename_audit_common::{MntNsRecord, kind, watch_mnt_ns};

use crate::{PRIORITY_RING, ring, setting, task::Task};

/// Sends a [`MntNsRecord`] for `task` (process `tgid`, whose parent is
/// `parent`) when the daemon's mount watch needs to know its namespace.
/// Lost like any lifecycle record (counted) when the ring is full.
#[inline(always)]
pub fn report(task: Task, parent: Option<Task>, tgid: u32, now: u64) -> Option<()> {
    let mnt_ns = match setting!(watch_mnt_ns) {
        watch_mnt_ns::UNMARKED => task.unwatched_mnt_ns()?,
        watch_mnt_ns::CHANGED => {
            let ns = task.mnt_ns()?;
            if parent.and_then(Task::mnt_ns) == Some(ns) {
                return None;
            }
            ns
        }
        _ => return None,
    };
    let mut entry = ring::reserve_lifecycle::<MntNsRecord>()?;
    entry.write(MntNsRecord {
        hdr: ring::header(kind::MNT_NS, now),
        tgid,
        mnt_ns,
    });
    ring::submit(&PRIORITY_RING, entry);
    Some(())
}
