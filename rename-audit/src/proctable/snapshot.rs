//! Reading one process from /proc: used once at start-up for processes that
//! already exist, and as a fallback for a process whose fork was not seen.
use std::{fs, os::unix::ffi::OsStrExt, path::PathBuf};

use super::{ProcKey, Process};
use crate::names::Name;

/// Clock ticks per second of /proc/<pid>/stat's start time.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// Converts `start_boottime` nanoseconds to /proc's clock ticks, as the
/// kernel does for /proc/<pid>/stat, so both sources give the same key.
pub fn boottime_to_ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / ticks_per_second())
}

pub fn ticks_to_boottime(ticks: u64) -> u64 {
    ticks * (1_000_000_000 / ticks_per_second())
}

/// Every process id in /proc.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Fields of /proc/<pid>/stat after the parenthesized name: the name may
/// hold ')' and spaces, so split at the last ')'.
struct Stat {
    comm: Name,
    ppid: u32,
    start_ticks: u64,
    kthread: bool,
}

fn stat(pid: u32) -> Option<Stat> {
    let raw = fs::read(format!("/proc/{pid}/stat")).ok()?;
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

/// Start time of `pid` in clock ticks, to tell it from a reused pid.
pub fn read_start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_ticks)
}

fn uid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The systemd unit a process runs in, from the last `.service` or `.scope`
/// component of its cgroup v2 path.
pub fn unit(pid: u32) -> Option<String> {
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    path.rsplit('/')
        .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
        .map(str::to_owned)
}

pub fn executable(pid: u32) -> Option<Name> {
    let link: PathBuf = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(Name::new(link.as_os_str().as_bytes().to_vec()))
}

pub fn args(pid: u32) -> Vec<Name> {
    fs::read(format!("/proc/{pid}/cmdline")).map_or_else(|_| Vec::new(), |raw| split_args(&raw))
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

/// Reads a process from /proc. `expect_start_ticks` guards against reading
/// a different process that reused the pid.
pub fn read(pid: u32, expect_start_ticks: Option<u64>) -> Option<Process> {
    let st = stat(pid)?;
    if expect_start_ticks.is_some_and(|t| t != st.start_ticks) {
        return None;
    }
    let (executable, args) = if st.kthread {
        (None, Vec::new())
    } else {
        (executable(pid), args(pid))
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
            stat(st.ppid).map(|p| ProcKey {
                tgid: st.ppid,
                start_ticks: p.start_ticks,
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
        executable,
        args,
        uid: uid(pid),
        unit: unit(pid),
        parent,
        parent_pid: st.ppid,
        kthread: st.kthread,
        thread_renames: Default::default(),
        exe_checked_ns: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id(), None).expect("own /proc entry");
        assert_eq!(me.key.tgid, std::process::id());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            me.executable.unwrap().as_bytes(),
            exe.as_os_str().as_bytes()
        );
        assert!(!me.args.is_empty());
        assert_eq!(me.parent_pid, std::os::unix::process::parent_id());
        assert!(
            read(std::process::id(), Some(me.key.start_ticks + 1)).is_none(),
            "pid reuse guard"
        );
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
