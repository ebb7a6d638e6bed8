//! Mounts seen through the mount tables themselves, where neither fanotify's
//! mount events (6.15+, CAP_SYS_ADMIN) nor fexit on the mount code (BPF
//! trampolines) can be had: what the shipped unit gets on a kernel that
//! refuses trampolines. No program runs for any syscall.
//!
//! The kernel flags a change of a mount namespace's table to every open
//! `/proc/<pid>/mountinfo` of it: poll(2) then reports POLLPRI (systemd and
//! libmount watch mounts this way). One table is held open for each mount
//! namespace, in one epoll set that the drain thread reads at each wake-up
//! (every 25 ms at most), without waiting on it: a table reports a change
//! to one poll only.
//! A change becomes a mount record naming a process of that namespace, so
//! the pipeline reads its table as it does the mounter's: the same
//! `process-hidden` logic and alerts as with the kernel's mount hooks.
//!
//! Namespaces are learned as the fork and exec hooks report them: every
//! running process's at start (`/proc/<pid>/ns/mnt`), a child's from its
//! parent's (its fork record), and a process that enters another namespace
//! from the kernel's `MntNsRecord` (clone with CLONE_NEWNS; unshare or
//! setns, then exec). An open table holds its namespace (and all its
//! mounts) alive, so a namespace's table is closed when the last process
//! known in it exits.
use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io,
    mem::MaybeUninit,
    os::unix::fs::MetadataExt,
};

use rename_audit_common::exit_flags;
use rustix::event::epoll;

use super::records::{Mount, Record};

/// At most this many namespaces are polled, a descriptor each (the unit's
/// LimitNOFILE= is 8192; the rest is for /proc reads and sinks).
const MAX_NAMESPACES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error("epoll_create: {0}")]
    Epoll(#[source] io::Error),
    #[error("no mount namespace could be watched (is /proc readable?)")]
    Nothing,
}

/// One polled namespace: its table, open, and the processes known in it.
struct Namespace {
    table: File,
    members: HashSet<u32>,
    /// The member a change is reported with: the longest known (likely the
    /// namespace's long-lived first process, whose table outlives a
    /// short-lived mounter's).
    eldest: u32,
}

/// The mount tables of every known namespace, polled for changes.
pub struct MountTables {
    epoll: std::os::fd::OwnedFd,
    /// By namespace inode number.
    namespaces: HashMap<u32, Namespace>,
    /// Each known process's namespace.
    processes: HashMap<u32, u32>,
    /// Whether running out of namespace slots was warned about.
    full_warned: bool,
}

impl MountTables {
    /// Watches the namespace of each of `pids` (the running processes).
    pub fn open(pids: impl IntoIterator<Item = u32>) -> Result<Self, TablesError> {
        let epoll =
            epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| TablesError::Epoll(e.into()))?;
        let mut tables = Self {
            epoll,
            namespaces: HashMap::new(),
            processes: HashMap::new(),
            full_warned: false,
        };
        for pid in pids {
            if let Ok(ns) = namespace_of(pid) {
                tables.join(pid, ns);
            }
        }
        if tables.namespaces.is_empty() {
            return Err(TablesError::Nothing);
        }
        Ok(tables)
    }

    /// How many namespaces are polled.
    pub fn namespaces(&self) -> usize {
        self.namespaces.len()
    }

    /// Follows the lifecycle records of a batch, in order: forks join their
    /// parent's namespace, namespace reports move a process (the record goes
    /// on: its table is read once, for mounts made before it was polled),
    /// process exits leave.
    pub fn follow(&mut self, batch: &[Record]) {
        for record in batch {
            match record {
                Record::Fork(r) => {
                    let ns = match self.processes.get(&r.parent_tgid) {
                        Some(&ns) => Some(ns),
                        // A parent the start-up scan could not look at.
                        None => namespace_of(r.tgid).ok(),
                    };
                    if let Some(ns) = ns {
                        self.join(r.tgid, ns);
                    }
                }
                Record::Mount(Mount {
                    tgid,
                    unwatched_ns: Some(ns),
                    ..
                }) => self.join(*tgid, *ns),
                Record::Exit(r) if r.flags & exit_flags::GROUP_DEAD != 0 => self.leave(r.tgid),
                _ => {}
            }
        }
    }

    /// A mount record for each namespace whose table changed since the last
    /// call, naming a process known in it, stamped `now_ns`.
    pub fn changed(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        let mut events = [MaybeUninit::<epoll::Event>::uninit(); 64];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            let (ready, _) = match epoll::wait(&self.epoll, &mut events, Some(&zero)) {
                Ok(ready) => ready,
                Err(error) => {
                    // EINTR: the next wake-up looks again.
                    tracing::debug!(%error, "epoll_wait on the mount tables");
                    return;
                }
            };
            let n = ready.len();
            for event in ready.iter() {
                let ns = event.data.u64() as u32;
                if let Some(namespace) = self.namespaces.get(&ns) {
                    out.push(Record::Mount(Mount {
                        tgid: namespace.eldest,
                        ktime_ns: now_ns,
                        unwatched_ns: None,
                    }));
                }
            }
            if n < events.len() {
                return;
            }
        }
    }

    /// Records that `pid` is in namespace `ns`, opening its table if it is
    /// new.
    fn join(&mut self, pid: u32, ns: u32) {
        match self.processes.insert(pid, ns) {
            Some(old) if old == ns => return,
            Some(old) => self.leave_namespace(pid, old),
            None => {}
        }
        if let Some(known) = self.namespaces.get_mut(&ns) {
            known.members.insert(pid);
            return;
        }
        if self.namespaces_full() {
            self.processes.remove(&pid);
            return;
        }
        let polled = open_table(pid, ns).and_then(|table| {
            let data = epoll::EventData::new_u64(u64::from(ns));
            // POLLPRI only: a mount table always reads as readable.
            epoll::add(&self.epoll, &table, data, epoll::EventFlags::PRI)?;
            Ok(table)
        });
        match polled {
            Ok(table) => {
                self.namespaces.insert(
                    ns,
                    Namespace {
                        table,
                        members: HashSet::from([pid]),
                        eldest: pid,
                    },
                );
            }
            Err(error) => {
                // Gone, or in another namespace by now (its next exec
                // reports that one).
                tracing::debug!(pid, ns, %error, "cannot poll a mount table");
                self.processes.remove(&pid);
            }
        }
    }

    /// Whether no more namespaces can be polled (warned about once).
    fn namespaces_full(&mut self) -> bool {
        if self.namespaces.len() < MAX_NAMESPACES {
            return false;
        }
        if !self.full_warned {
            self.full_warned = true;
            tracing::warn!(
                max = MAX_NAMESPACES,
                "too many mount namespaces to poll: mounts in the newest are not watched"
            );
        }
        true
    }

    /// `pid` exited.
    fn leave(&mut self, pid: u32) {
        if let Some(ns) = self.processes.remove(&pid) {
            self.leave_namespace(pid, ns);
        }
    }

    /// `pid` is no longer in `ns`; the table is closed when no known process
    /// is left in it, so the namespace can go.
    fn leave_namespace(&mut self, pid: u32, ns: u32) {
        let Some(namespace) = self.namespaces.get_mut(&ns) else {
            return;
        };
        namespace.members.remove(&pid);
        if namespace.eldest == pid
            && let Some(&next) = namespace.members.iter().next()
        {
            namespace.eldest = next;
        }
        if namespace.members.is_empty()
            && let Some(gone) = self.namespaces.remove(&ns)
        {
            let _ = epoll::delete(&self.epoll, &gone.table);
        }
    }

    /// Whether `ns`'s table is open (tests).
    #[cfg(test)]
    fn polls(&self, ns: u32) -> bool {
        self.namespaces.contains_key(&ns)
    }
}

/// The inode number of `pid`'s mount namespace (reading the link takes a
/// ptrace access check: CAP_SYS_PTRACE for other users' processes).
fn namespace_of(pid: u32) -> io::Result<u32> {
    // nsfs inode numbers are 32-bit (`ns_common.inum`).
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino() as u32)
}

/// `pid`'s mount table, checked to be namespace `ns`'s (the process may
/// have moved on, or its pid been reused, since it was reported).
fn open_table(pid: u32, ns: u32) -> io::Result<File> {
    let table = File::open(format!("/proc/{pid}/mountinfo"))?;
    if namespace_of(pid)? != ns {
        return Err(io::Error::other("the process is in another namespace now"));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rename_audit_common::{ExitRecord, ForkRecord, RecordHeader};
    use std::process::{Command, Stdio};

    fn fork(tgid: u32, parent_tgid: u32) -> Record {
        Record::Fork(ForkRecord {
            hdr: RecordHeader::default(),
            tgid,
            parent_tgid,
            start_boottime_ns: 0,
            parent_start_boottime_ns: 0,
            uid: 0,
            _pad: 0,
            comm: [0; 16],
        })
    }

    fn exit(tgid: u32) -> Record {
        Record::Exit(ExitRecord {
            hdr: RecordHeader::default(),
            tid: tgid,
            tgid,
            start_boottime_ns: 0,
            flags: exit_flags::GROUP_DEAD,
            _pad: 0,
        })
    }

    /// Kills and reaps a child however the test ends.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A real namespace of its own (tests run as root): a mount in it is
    /// reported naming its process, a mount elsewhere is not, and its table
    /// is closed when its last known process exits.
    #[test]
    fn a_mount_in_a_polled_namespace_is_reported_and_the_table_closed_with_its_last_process() {
        let own = std::process::id();
        let mut tables = MountTables::open([own]).expect("our own namespace");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        // A shell in a private namespace of its own, which mounts when told.
        let mut shell = Child(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "read go; mount -t tmpfs none {path}; echo done; read end"
                ))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run unshare"),
        );
        let pid = shell.0.id();
        let own_ns = namespace_of(own).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let ns = loop {
            // unshare(1) execs sh once its namespace is made.
            let ns = namespace_of(pid).unwrap();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
            if ns != own_ns && comm == "sh\n" {
                break ns;
            }
            assert!(std::time::Instant::now() < deadline, "no new namespace");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        // As the kernel reports it: a fork in ours, then the move.
        tables.follow(&[
            fork(pid, own),
            Record::Mount(Mount {
                tgid: pid,
                ktime_ns: 0,
                unwatched_ns: Some(ns),
            }),
        ]);
        assert!(tables.polls(ns) && tables.polls(own_ns));
        let mut out = Vec::new();
        tables.changed(1, &mut out);
        assert!(out.is_empty(), "nothing changed yet: {out:?}");
        use std::io::{BufRead, Write};
        let stdin = shell.0.stdin.as_mut().unwrap();
        writeln!(stdin, "go").unwrap();
        let mut said = String::new();
        std::io::BufReader::new(shell.0.stdout.as_mut().unwrap())
            .read_line(&mut said)
            .unwrap();
        assert_eq!(said, "done\n");
        tables.changed(7, &mut out);
        assert_eq!(
            out.iter()
                .map(|r| match r {
                    Record::Mount(m) => (m.tgid, m.ktime_ns, m.unwatched_ns),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            [(pid, 7, None)],
            "one change, in the shell's namespace only"
        );
        out.clear();
        tables.changed(8, &mut out);
        assert!(out.is_empty(), "reported once: {out:?}");
        tables.follow(&[exit(pid)]);
        assert!(!tables.polls(ns), "closed with its last process");
        assert!(tables.polls(own_ns));
    }
}
