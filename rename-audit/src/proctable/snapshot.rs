//! Reading one process from /proc: used once at start-up for processes that
//! already exist, and as a fallback for a process whose fork was not seen.
//!
//! The daemon reads its own, private instance of procfs when it can: a
//! process hidden by a bind mount over its /proc/<pid> (the mount covers
//! only the host's /proc) keeps its real executable, arguments and parent.
use std::{
    fs,
    io::Read as _,
    os::fd::{AsRawFd, OwnedFd},
    os::unix::ffi::OsStrExt,
    path::PathBuf,
    sync::Arc,
};

use rename_audit_common::ARGS_LEN;

use super::{Image, ProcKey, Process};
use crate::names::Name;
use crate::process::Cgroup;

/// Why a private procfs could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot mount a private instance of procfs ({step}): {source}")]
pub struct SnapshotError {
    step: &'static str,
    #[source]
    source: std::io::Error,
}

/// A procfs to read processes from: the host's `/proc`, or a private,
/// detached instance that no bind mount in /proc can cover.
#[derive(Clone, Debug)]
pub struct ProcRoot {
    path: PathBuf,
    /// Keeps the detached mount alive while its path is used.
    mount: Option<Arc<OwnedFd>>,
}

impl ProcRoot {
    /// The host's `/proc` as it is mounted.
    pub fn host() -> Self {
        Self {
            path: PathBuf::from("/proc"),
            mount: None,
        }
    }

    /// A new procfs instance, mounted nowhere (fsopen/fsmount, Linux 5.2+;
    /// needs CAP_SYS_ADMIN). Its root is reached through our own fd.
    pub fn private() -> Result<Self, SnapshotError> {
        use rustix::mount::{
            FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsmount, fsopen,
        };
        let fail = |step| {
            move |source: rustix::io::Errno| SnapshotError {
                step,
                source: source.into(),
            }
        };
        let fs = fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(fail("fsopen"))?;
        fsconfig_create(&fs).map_err(fail("fsconfig"))?;
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
            .map_err(fail("fsmount"))?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", mnt.as_raw_fd()));
        fs::metadata(path.join("self")).map_err(|source| SnapshotError {
            step: "reading the new instance",
            source,
        })?;
        Ok(Self {
            path,
            mount: Some(Arc::new(mnt)),
        })
    }

    /// `<this procfs>/<pid>`.
    pub fn pid_dir(&self, pid: u32) -> PathBuf {
        self.path.join(pid.to_string())
    }

    /// Whether this is a private instance.
    pub fn is_private(&self) -> bool {
        self.mount.is_some()
    }

    fn file(&self, pid: u32, name: &str) -> PathBuf {
        self.path.join(pid.to_string()).join(name)
    }

    /// The mount table of `pid`'s mount namespace (`None`: the daemon's).
    pub fn mountinfo(&self, pid: Option<u32>) -> Option<String> {
        let path = match pid {
            Some(pid) => self.file(pid, "mountinfo"),
            None => self.path.join("self").join("mountinfo"),
        };
        fs::read_to_string(path).ok()
    }

    /// Every process id.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(dir) = fs::read_dir(&self.path) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Start time of `pid` in clock ticks, to tell it from a reused pid.
    pub fn start_ticks(&self, pid: u32) -> Option<u64> {
        stat(&self.file(pid, "stat")).map(|s| s.start_ticks)
    }

    pub fn executable(&self, pid: u32) -> Option<Name> {
        let link: PathBuf = fs::read_link(self.file(pid, "exe")).ok()?;
        Some(Name::new(link.as_os_str().as_bytes().to_vec()))
    }

    /// The argument block, at most [`ARGS_LEN`] bytes of it, and whether it
    /// was longer: the same cap as exec records have.
    pub fn args(&self, pid: u32) -> (Vec<Name>, bool) {
        let Ok(file) = fs::File::open(self.file(pid, "cmdline")) else {
            return (Vec::new(), false);
        };
        let mut raw = Vec::with_capacity(ARGS_LEN + 1);
        if file
            .take(ARGS_LEN as u64 + 1)
            .read_to_end(&mut raw)
            .is_err()
        {
            return (Vec::new(), false);
        }
        let truncated = raw.len() > ARGS_LEN;
        raw.truncate(ARGS_LEN);
        (split_args(&raw), truncated)
    }

    /// Reads a process. `expect_start_ticks` guards against reading a
    /// different process that reused the pid.
    pub fn read(&self, pid: u32, expect_start_ticks: Option<u64>) -> Option<Process> {
        self.read_with(pid, expect_start_ticks, &|ppid| self.start_ticks(ppid))
    }

    /// As [`ProcRoot::read`], with the parent's start time from
    /// `parent_start` (a snapshot knows it from the parent's own entry and
    /// need not read its `stat` a second time).
    pub fn read_with(
        &self,
        pid: u32,
        expect_start_ticks: Option<u64>,
        parent_start: &dyn Fn(u32) -> Option<u64>,
    ) -> Option<Process> {
        let st = stat(&self.file(pid, "stat"))?;
        if expect_start_ticks.is_some_and(|t| t != st.start_ticks) {
            return None;
        }
        let (executable, (args, args_truncated)) = if st.kthread {
            (None, (Vec::new(), false))
        } else {
            (self.executable(pid), self.args(pid))
        };
        // Which name the last exec gave is not kept by the kernel: argv[0] is
        // what exec was usually called with, the executable's name otherwise.
        let original_name = args
            .first()
            .filter(|a| !a.is_empty())
            .map(|a| exec_name(a.as_bytes()))
            .or_else(|| executable.as_ref().map(|e| exec_name(e.as_bytes())))
            .unwrap_or_else(|| st.comm.clone());
        let parent = (st.ppid != 0)
            .then(|| {
                parent_start(st.ppid).map(|start_ticks| ProcKey {
                    tgid: st.ppid,
                    start_ticks,
                })
            })
            .flatten();
        Some(Process {
            key: ProcKey {
                tgid: pid,
                start_ticks: st.start_ticks,
            },
            start_boottime_ns: ticks_to_boottime(st.start_ticks),
            name: st.comm,
            original_name,
            image: Arc::new(Image {
                executable,
                file: None,
                args: args.into(),
                args_truncated,
                exec_ns: 0,
            }),
            previous: None,
            uid: self.uid(pid),
            cgroup: self.cgroup(pid).map(Arc::new),
            parent,
            parent_pid: st.ppid,
            kthread: st.kthread,
            thread_renames: Default::default(),
        })
    }

    fn uid(&self, pid: u32) -> Option<u32> {
        let status = read_small(&self.file(pid, "status"))?;
        let status = std::str::from_utf8(&status).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The process's cgroup v2 path (the `0::` line), with what it names.
    fn cgroup(&self, pid: u32) -> Option<Cgroup> {
        let cgroup = read_small(&self.file(pid, "cgroup"))?;
        let path = cgroup
            .split(|&b| b == b'\n')
            .find_map(|l| l.strip_prefix(b"0::"))?;
        Some(Cgroup::parse(path))
    }
}

/// Clock ticks per second of /proc/<pid>/stat's start time.
fn ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        hz => hz,
    }
}

/// Converts `start_boottime` nanoseconds to /proc's clock ticks, as the
/// kernel does for /proc/<pid>/stat, so both sources give the same key.
pub fn boottime_to_ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / ticks_per_second())
}

pub fn ticks_to_boottime(ticks: u64) -> u64 {
    ticks * (1_000_000_000 / ticks_per_second())
}

/// Fields of /proc/<pid>/stat after the parenthesized name: the name may
/// hold ')' and spaces, so split at the last ')'.
struct Stat {
    comm: Name,
    ppid: u32,
    start_ticks: u64,
    kthread: bool,
}

fn stat(path: &std::path::Path) -> Option<Stat> {
    let raw = read_small(path)?;
    let open = raw.iter().position(|&b| b == b'(')?;
    let close = raw.iter().rposition(|&b| b == b')')?;
    let comm = Name::new(raw.get(open + 1..close)?.to_vec());
    let rest = std::str::from_utf8(raw.get(close + 2..)?).ok()?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); ppid is field 4, flags 9, starttime 22.
    let ppid = fields.get(1)?.parse().ok()?;
    let flags: u64 = fields.get(6)?.parse().ok()?;
    let start_ticks = fields.get(19)?.parse().ok()?;
    const PF_KTHREAD: u64 = 0x0020_0000;
    Some(Stat {
        comm,
        ppid,
        start_ticks,
        kthread: flags & PF_KTHREAD != 0,
    })
}

/// A small /proc file, whole. `fs::read` asks for the size first (0 for
/// /proc) and then reads 32 bytes to probe: two system calls more per file,
/// and the start-up snapshot reads five files for each of 20,000 processes.
fn read_small(path: &std::path::Path) -> Option<Vec<u8>> {
    let mut raw = Vec::with_capacity(4096);
    fs::File::open(path).ok()?.read_to_end(&mut raw).ok()?;
    Some(raw)
}

/// Splits a NUL-separated argument block.
pub fn split_args(raw: &[u8]) -> Vec<Name> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| Name::new(a.to_vec()))
        .collect()
}

/// The name exec gives: the last path component, cut to 15 bytes.
pub fn exec_name(path: &[u8]) -> Name {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    Name::new(base[..base.len().min(15)].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let root = ProcRoot::host();
        let me = root
            .read(std::process::id(), None)
            .expect("own /proc entry");
        assert_eq!(me.key.tgid, std::process::id());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            me.image.executable.clone().unwrap().as_bytes(),
            exe.as_os_str().as_bytes()
        );
        assert!(!me.image.args.is_empty());
        assert_eq!(me.parent_pid, std::os::unix::process::parent_id());
        assert!(
            root.read(std::process::id(), Some(me.key.start_ticks + 1))
                .is_none(),
            "pid reuse guard"
        );
    }

    #[test]
    fn a_private_procfs_reads_the_same_process() {
        // Tests run as root (they load BPF programs), which fsmount needs.
        let private = ProcRoot::private().expect("private procfs");
        let me = private.read(std::process::id(), None).expect("own entry");
        let host = ProcRoot::host().read(std::process::id(), None).unwrap();
        assert_eq!((me.key, me.image.clone()), (host.key, host.image.clone()));
    }

    #[test]
    fn exec_names_and_args() {
        assert_eq!(exec_name(b"/usr/bin/python3").as_bytes(), b"python3");
        assert_eq!(
            exec_name(b"a-very-long-program-name").as_bytes(),
            b"a-very-long-pro"
        );
        assert_eq!(split_args(b"a\0b c\0\0d\0").len(), 4);
        assert!(split_args(b"").is_empty());
    }
}
