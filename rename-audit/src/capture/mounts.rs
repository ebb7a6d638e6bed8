//! Mounts seen through fanotify's mount events (Linux 6.15+), where the
//! kernel has them and the daemon may mark mount namespaces (CAP_SYS_ADMIN).
//!
//! Why not the syscall tracepoints everywhere: attaching any of them puts
//! every syscall of every task on the kernel's slower syscall path, prctl
//! included. The mount hooks alone cost the rename storm 4–9% of its rate
//! here (docs/benchmarks.md). fanotify costs nothing outside the mount code.
//!
//! A mark covers one mount namespace. Every namespace of a running process
//! is marked at start; a later one is reported by the fork and exec hooks
//! (`MntNsRecord`, sent while the namespace has no mount-attach mark) and
//! marked by the drain thread, which then has its mount table read once, so
//! a mount made before the mark is found too. Each event names the process
//! that mounted: the same thing the syscall hooks send.
use std::{
    collections::HashMap,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::fs::MetadataExt,
    },
};

use super::records::{Mount, Record};

// fanotify goes through libc: rustix has no fanotify calls (it lists
// fanotify_init and fanotify_mark as not implemented), and these mount
// event flags are newer than libc's constants too.

/// include/uapi/linux/fanotify.h (Linux 6.15+); not in libc yet.
const FAN_REPORT_MNT: libc::c_uint = 0x0000_4000;
const FAN_MARK_MNTNS: libc::c_uint = 0x0000_0110;
const FAN_MNT_ATTACH: u64 = 0x0100_0000;
/// include/uapi/linux/pidfd.h: `_IO(PIDFS_IOCTL_MAGIC, 3)` (Linux 6.11+).
const PIDFD_GET_MNT_NAMESPACE: rustix::ioctl::Opcode = 0xFF03;
/// How long the time of a namespace's mark is kept: records the kernel sent
/// before the mark took effect arrive within this, and are dropped.
const MARK_MEMORY_NS: u64 = 10_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("fanotify_init(FAN_REPORT_MNT): {0}")]
    Init(#[source] io::Error),
    #[error("marking the daemon's own mount namespace: {0}")]
    MarkOwn(#[source] io::Error),
}

/// A fanotify group that reports mount attach in the namespaces it marked.
pub struct MountNotifier {
    fd: OwnedFd,
    /// Namespaces marked lately, by inode number: the monotonic time of the
    /// mark.
    marked: HashMap<u32, u64>,
}

impl MountNotifier {
    /// A group with the daemon's own mount namespace marked. Fails where
    /// the kernel has no mount events (before 6.15) or the daemon lacks
    /// CAP_SYS_ADMIN, which marking a namespace needs.
    pub fn open() -> Result<Self, NotifierError> {
        let flags = FAN_REPORT_MNT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
        // SAFETY: fanotify_init takes no pointer; the fd it returns is
        // owned below.
        let fd = unsafe { libc::fanotify_init(flags, libc::O_RDONLY as libc::c_uint) };
        if fd < 0 {
            return Err(NotifierError::Init(io::Error::last_os_error()));
        }
        // SAFETY: a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut notifier = Self {
            fd,
            marked: HashMap::new(),
        };
        notifier
            .mark_process(std::process::id(), false)
            .map_err(NotifierError::MarkOwn)?;
        Ok(notifier)
    }

    /// Marks the namespace of each of `pids` (the running processes at
    /// start), each namespace once. Returns how many namespaces are marked
    /// and how many processes could not be looked at (gone, or not ours to
    /// see).
    pub fn mark_running(&mut self, pids: impl IntoIterator<Item = u32>) -> (usize, usize) {
        let mut failed = 0;
        for pid in pids {
            if self.mark_process(pid, false).is_err() {
                failed += 1;
            }
        }
        (self.marked.len(), failed)
    }

    /// Marks the namespace the kernel reported unwatched (`inum`) for
    /// process `pid` at `ktime_ns`. False when nothing is left to do: the
    /// record was sent before an earlier mark of the namespace took effect,
    /// or the process is gone (its children, if any, report the namespace
    /// again).
    pub fn watch(&mut self, pid: u32, inum: u32, ktime_ns: u64) -> bool {
        if self.marked.get(&inum).is_some_and(|&at| ktime_ns < at) {
            return false;
        }
        match self.mark_process(pid, true) {
            Ok(found) => {
                if found != inum {
                    // The pid was reused, or the process moved on: what it
                    // is in now is marked; the reported namespace, if it
                    // lives on, is reported again by its next fork or exec.
                    tracing::debug!(pid, inum, found, "process left the namespace reported");
                }
                true
            }
            Err(error) => {
                tracing::debug!(pid, inum, %error, "cannot mark a new mount namespace");
                false
            }
        }
    }

    /// Marks `pid`'s mount namespace, reached through a pidfd (a mount over
    /// its /proc entry cannot redirect that), and returns its inode number.
    /// A namespace marked already is marked again only if `again`: its
    /// inode number may now be another namespace's.
    fn mark_process(&mut self, pid: u32, again: bool) -> io::Result<u32> {
        let ns = std::fs::File::from(namespace_of(pid)?);
        // nsfs inode numbers are 32-bit (`ns_common.inum`).
        let inum = ns.metadata()?.ino() as u32;
        if self.marked.contains_key(&inum) && !again {
            return Ok(inum);
        }
        // SAFETY: both fds are open for the call (owned by `self` and `ns`);
        // the path is NULL, which FAN_MARK_MNTNS takes with a dirfd.
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | FAN_MARK_MNTNS,
                FAN_MNT_ATTACH,
                ns.as_raw_fd(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.marked.insert(inum, crate::clock::monotonic_ns());
        Ok(inum)
    }

    /// Reads every pending event: each mount attached becomes a
    /// [`Record::Mount`] of the process that mounted. Returns how many times
    /// the kernel's queue overflowed (events lost: the caller reads the
    /// host's table and warns).
    pub fn read_events(&mut self, now_ns: u64, out: &mut Vec<Record>) -> u64 {
        let mut overflows = 0;
        // Events are read unaligned (`events`), so a byte buffer will do.
        let mut buf = [0u8; 4096];
        loop {
            let n = match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n > 0 => n,
                // EAGAIN: nothing more. Other errors cannot be acted on
                // here; the next poll tries again.
                _ => return overflows,
            };
            for event in events(&buf[..n]) {
                if event.fd >= 0 {
                    // SAFETY: the kernel opened this fd for us with the
                    // event and nothing else owns it; owning it closes it.
                    drop(unsafe { OwnedFd::from_raw_fd(event.fd) });
                }
                if event.mask & libc::FAN_Q_OVERFLOW != 0 {
                    overflows += 1;
                }
                if event.mask & FAN_MNT_ATTACH != 0 {
                    out.push(Record::Mount(Mount {
                        tgid: u32::try_from(event.pid).unwrap_or(0),
                        ktime_ns: now_ns,
                        unwatched_ns: None,
                    }));
                }
            }
        }
    }

    /// Forgets mark times too old to matter.
    pub fn forget_old(&mut self, now_ns: u64) {
        self.marked
            .retain(|_, at| now_ns.saturating_sub(*at) < MARK_MEMORY_NS);
    }
}

impl AsRawFd for MountNotifier {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The mount namespace of process `pid`, as an fd.
fn namespace_of(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    // SAFETY: `GetMntNamespace` describes PIDFD_GET_MNT_NAMESPACE exactly
    // (no argument; the result is a new fd), and `pidfd` is a pidfd.
    Ok(unsafe { rustix::ioctl::ioctl(&pidfd, GetMntNamespace)? })
}

/// `ioctl(pidfd, PIDFD_GET_MNT_NAMESPACE)`: rustix has no wrapper for it,
/// but types any ioctl described this way.
struct GetMntNamespace;

// SAFETY: the opcode takes no argument (the pointer is NULL and never
// read), the call changes nothing in our memory, and its return value is
// a new fd, which `output_from_ptr` takes ownership of.
unsafe impl rustix::ioctl::Ioctl for GetMntNamespace {
    type Output = OwnedFd;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> rustix::ioctl::Opcode {
        PIDFD_GET_MNT_NAMESPACE
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<OwnedFd> {
        // SAFETY: rustix calls this only after a successful ioctl, whose
        // result is the namespace's new fd, owned by no one else.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// The fixed part of each event in a read buffer, up to a malformed one.
fn events(mut bytes: &[u8]) -> impl Iterator<Item = libc::fanotify_event_metadata> {
    std::iter::from_fn(move || {
        let size = size_of::<libc::fanotify_event_metadata>();
        if bytes.len() < size {
            return None;
        }
        // SAFETY: at least `size` bytes; the struct is plain data.
        let meta: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let len = meta.event_len as usize;
        if len < size || len > bytes.len() {
            return None;
        }
        bytes = &bytes[len..];
        Some(meta)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real group on the running kernel (tests run as root): a tmpfs
    /// mounted by a child process is reported with the child's pid. Skipped
    /// only where the kernel has no mount events.
    /// A group on the running kernel, or `None` (having said SKIPPED) where
    /// the kernel has no mount events (EINVAL from fanotify_init). Any
    /// other failure fails the test: they run as root.
    fn notifier_or_skip() -> Option<MountNotifier> {
        match MountNotifier::open() {
            Ok(n) => Some(n),
            Err(NotifierError::Init(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Written past libtest's capture, so the skip shows.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: this kernel has no fanotify mount events (Linux 6.15+): {e}"
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_mount_in_a_marked_namespace_is_reported_with_who_mounted() {
        let Some(mut notifier) = notifier_or_skip() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let child = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "none", path])
            .spawn()
            .expect("run mount");
        let pid = child.id();
        let status = child.wait_with_output().unwrap().status;
        assert!(status.success(), "mount -t tmpfs none {path}");
        let mut out = Vec::new();
        let overflows = notifier.read_events(1, &mut out);
        let _ = std::process::Command::new("umount").arg(path).status();
        assert_eq!(overflows, 0);
        assert!(
            out.iter().any(|r| matches!(
                r,
                Record::Mount(m) if m.tgid == pid && m.unwatched_ns.is_none()
            )),
            "no mount event from mount(8), pid {pid}: {out:?}"
        );
    }

    #[test]
    fn a_record_sent_before_the_mark_is_dropped_and_a_later_one_marks_again() {
        let Some(mut notifier) = notifier_or_skip() else {
            return;
        };
        let own = std::fs::File::from(namespace_of(std::process::id()).unwrap());
        let inum = own.metadata().unwrap().ino() as u32;
        let marked_at = notifier.marked[&inum];
        assert!(!notifier.watch(std::process::id(), inum, marked_at - 1));
        assert!(notifier.watch(std::process::id(), inum, marked_at + 1));
        assert!(!notifier.watch(u32::MAX, inum + 1, 0), "no such process");
        notifier.forget_old(u64::MAX);
        assert!(notifier.marked.is_empty());
    }
}
