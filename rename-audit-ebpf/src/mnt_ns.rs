//! Where mounts are watched with fanotify (Linux 6.15+), a mark covers one
//! mount namespace, so the daemon has to learn of each new one. The fork and
//! exec hooks call this: a process in a namespace that no mark watches yet
//! is reported once per hook run, until the daemon has marked it (the mark
//! sets the namespace's `n_fsnotify_mask`, which is checked here). Not a hook
//! of its own: the `mount_watch="fanotify"` row of the daemon's hook table
//! (`rename-audit/src/capture/hooks.rs`) needs that field (Linux 6.15).
use rename_audit_common::{MntNsRecord, kind};

use crate::{PRIORITY_RING, ring, setting, task::Task};

/// Sends a [`MntNsRecord`] when `task`'s mount namespace is unwatched and
/// the daemon watches mounts with fanotify. Lost like any lifecycle record
/// (counted) when the ring is full.
#[inline(always)]
pub fn report_unwatched(task: Task, tgid: u32, now: u64) -> Option<()> {
    if setting!(watch_mnt_ns) == 0 {
        return None;
    }
    let mnt_ns = task.unwatched_mnt_ns()?;
    let mut entry = ring::reserve_lifecycle::<MntNsRecord>()?;
    entry.write(MntNsRecord {
        hdr: ring::header(kind::MNT_NS, now),
        tgid,
        mnt_ns,
    });
    ring::submit(&PRIORITY_RING, entry);
    Some(())
}
