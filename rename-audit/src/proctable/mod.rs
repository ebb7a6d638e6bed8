//! Stage 2, the process table: every live process, keyed so pid reuse
//! cannot mix two of them, kept exact from fork/exec/exit records after one
//! /proc snapshot at start-up.
mod snapshot;

use std::collections::{HashMap, HashSet, VecDeque};

use rename_audit_common::{ExecRecord, ExitRecord, ForkRecord, exit_flags};

use crate::{
    clock::WallClock,
    event::{ParentContext, ProcessContext},
    names::Name,
};
pub use snapshot::{boottime_to_ticks, exec_name, split_args};

/// A process: its id and its start time in clock ticks since boot, the
/// precision /proc gives, so kernel records and the snapshot agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcKey {
    pub tgid: u32,
    pub start_ticks: u64,
}

impl ProcKey {
    pub fn from_kernel(tgid: u32, start_boottime_ns: u64) -> Self {
        Self {
            tgid,
            start_ticks: boottime_to_ticks(start_boottime_ns),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Process {
    pub key: ProcKey,
    pub start_boottime_ns: u64,
    /// The main thread's current name.
    pub name: Name,
    /// The name the last exec gave.
    pub original_name: Name,
    pub executable: Option<Name>,
    pub args: Vec<Name>,
    pub uid: Option<u32>,
    pub unit: Option<String>,
    pub parent: Option<ProcKey>,
    pub parent_pid: u32,
    pub kthread: bool,
    /// Renames so far of each thread that has renamed, by tid.
    pub thread_renames: HashMap<u32, u64>,
    /// When [`ProcessTable::refresh_executable`] last read the executable
    /// link (kernel monotonic ns); `None` since the last exec.
    pub exe_checked_ns: Option<u64>,
}

/// Exited processes stay this long, for records about them that were
/// still in flight on another ring or CPU.
const GRACE_NS: u64 = 2_000_000_000;

#[derive(Default)]
pub struct ProcessTable {
    procs: HashMap<ProcKey, Process>,
    by_name: HashMap<Name, HashSet<ProcKey>>,
    exited: VecDeque<(u64, ProcKey)>,
}

impl ProcessTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn get(&self, key: &ProcKey) -> Option<&Process> {
        self.procs.get(key)
    }

    /// Adds every process in /proc that the table does not hold yet. Run
    /// after the kernel programs are attached: a process that starts during
    /// the snapshot is in the rings as a fork and merged by key.
    pub fn snapshot(&mut self) {
        for pid in snapshot::pids() {
            if let Some(p) = snapshot::read(pid, None)
                && !self.procs.contains_key(&p.key)
            {
                self.insert(p);
            }
        }
    }

    fn insert(&mut self, p: Process) {
        self.by_name
            .entry(p.name.clone())
            .or_default()
            .insert(p.key);
        if let Some(old) = self.procs.insert(p.key, p) {
            self.unindex(&old.name, old.key);
        }
    }

    fn unindex(&mut self, name: &Name, key: ProcKey) {
        if let Some(keys) = self.by_name.get_mut(name) {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// The process, read from /proc when the table missed its fork.
    pub fn get_or_load(&mut self, key: ProcKey) -> Option<&mut Process> {
        if !self.procs.contains_key(&key) {
            let p = snapshot::read(key.tgid, Some(key.start_ticks))?;
            self.insert(p);
        }
        self.procs.get_mut(&key)
    }

    pub fn set_name(&mut self, key: ProcKey, name: Name) {
        let Some(p) = self.procs.get_mut(&key) else {
            return;
        };
        if p.name == name {
            return;
        }
        let old = std::mem::replace(&mut p.name, name.clone());
        self.unindex(&old, key);
        self.by_name.entry(name).or_default().insert(key);
    }

    pub fn apply_fork(&mut self, r: &ForkRecord) {
        let key = ProcKey::from_kernel(r.tgid, r.start_boottime_ns);
        if self.procs.contains_key(&key) {
            return;
        }
        let parent = ProcKey::from_kernel(r.parent_tgid, r.parent_start_boottime_ns);
        let from = self.procs.get(&parent);
        let child = Process {
            key,
            start_boottime_ns: r.start_boottime_ns,
            name: Name::from_c_buf(&r.comm),
            original_name: from
                .map_or_else(|| Name::from_c_buf(&r.comm), |p| p.original_name.clone()),
            executable: from.and_then(|p| p.executable.clone()),
            args: from.map(|p| p.args.clone()).unwrap_or_default(),
            uid: Some(r.uid),
            unit: from.and_then(|p| p.unit.clone()),
            parent: Some(parent),
            parent_pid: r.parent_tgid,
            kthread: from.is_some_and(|p| p.kthread),
            thread_renames: HashMap::new(),
            exe_checked_ns: None,
        };
        self.insert(child);
    }

    pub fn apply_exec(&mut self, r: &ExecRecord) {
        let key = ProcKey::from_kernel(r.tgid, r.start_boottime_ns);
        let filename = &r.filename[..(r.filename_len as usize).min(r.filename.len())];
        let args = &r.args[..(r.args_len as usize).min(r.args.len())];
        // The path given to exec may be relative or a symlink; the kernel's
        // own link is exact, and shows memfd and deleted files as such.
        let executable = snapshot::executable(r.tgid)
            .filter(|_| snapshot::read_start_ticks(r.tgid) == Some(key.start_ticks))
            .unwrap_or_else(|| Name::new(filename.to_vec()));
        let mut args = split_args(args);
        if args.is_empty() {
            args = snapshot::args(r.tgid);
        }
        let name = Name::from_c_buf(&r.comm);
        let Some(p) = self.get_or_load(key) else {
            return;
        };
        p.executable = Some(executable);
        p.args = args;
        p.uid = Some(r.uid);
        p.kthread = false;
        p.original_name = name.clone();
        p.thread_renames.clear();
        p.exe_checked_ns = None;
        self.set_name(key, name);
    }

    /// Re-reads the executable link of a live process before its rename is
    /// judged. Exec only tells the path the program started from; a binary
    /// deleted since (a dropper that removes itself) shows in /proc as
    /// "<path> (deleted)", which is what the rules must see. At most once a
    /// second per process, so a storm of renames costs one readlink a second;
    /// a deleted or memfd executable cannot change back and is not re-read.
    pub fn refresh_executable(&mut self, key: ProcKey, now_ns: u64) {
        const EVERY_NS: u64 = 1_000_000_000;
        let Some(p) = self.procs.get_mut(&key) else {
            return;
        };
        let settled = p
            .executable
            .as_ref()
            .is_some_and(|e| e.as_bytes().ends_with(b" (deleted)"));
        let recent = p
            .exe_checked_ns
            .is_some_and(|t| now_ns.saturating_sub(t) < EVERY_NS);
        if p.kthread || settled || recent {
            return;
        }
        p.exe_checked_ns = Some(now_ns);
        // Read the link first, then check the process is still the same one:
        // if it is alive now, it was alive when the link was read.
        if let Some(exe) = snapshot::executable(key.tgid)
            && snapshot::read_start_ticks(key.tgid) == Some(key.start_ticks)
        {
            p.executable = Some(exe);
        }
    }

    /// Marks a process exited, or forgets one thread's rename count.
    pub fn apply_exit(&mut self, r: &ExitRecord, now_ns: u64) {
        let key = ProcKey::from_kernel(r.tgid, r.start_boottime_ns);
        if r.flags & exit_flags::GROUP_DEAD != 0 {
            if self.procs.contains_key(&key) {
                self.exited.push_back((now_ns + GRACE_NS, key));
            }
        } else if let Some(p) = self.procs.get_mut(&key) {
            p.thread_renames.remove(&r.tid);
        }
    }

    /// Frees processes whose grace period is over.
    pub fn reap(&mut self, now_ns: u64) {
        while let Some(&(due, key)) = self.exited.front() {
            if due > now_ns {
                break;
            }
            self.exited.pop_front();
            if let Some(p) = self.procs.remove(&key) {
                self.unindex(&p.name, key);
            }
        }
    }

    /// Drops processes that no longer exist. Only needed after lifecycle
    /// records were lost (an exit record among them would leave an entry
    /// behind forever); otherwise exit records keep the table exact.
    pub fn prune_dead(&mut self) -> usize {
        let dead: Vec<ProcKey> = self
            .procs
            .keys()
            .filter(|k| snapshot::read_start_ticks(k.tgid) != Some(k.start_ticks))
            .copied()
            .collect();
        for key in &dead {
            if let Some(p) = self.procs.remove(key) {
                self.unindex(&p.name, *key);
            }
        }
        dead.len()
    }

    /// Keys of live processes whose main thread is called `name`.
    pub fn named(&self, name: &[u8]) -> impl Iterator<Item = &Process> {
        self.by_name
            .get(&Name::new(name.to_vec()))
            .into_iter()
            .flatten()
            .filter_map(|k| self.procs.get(k))
    }

    /// The process as events describe it.
    pub fn context(&self, p: &Process, clock: &WallClock) -> ProcessContext {
        let parent = p.parent.and_then(|k| self.procs.get(&k));
        ProcessContext {
            pid: p.key.tgid,
            name: p.name.clone(),
            executable: p.executable.clone(),
            args: p.args.clone(),
            start: Some(clock.from_boottime(p.start_boottime_ns)),
            uid: p.uid,
            unit: p.unit.clone(),
            parent: (p.parent_pid != 0).then(|| ParentContext {
                pid: p.parent_pid,
                name: parent.map(|q| q.name.clone()),
                executable: parent.and_then(|q| q.executable.clone()),
            }),
        }
    }
}

impl crate::rules::ProcessIndex for ProcessTable {
    fn executables_named(&self, name: &[u8], except_pid: u32) -> Vec<Name> {
        self.named(name)
            .filter(|p| p.key.tgid != except_pid)
            .filter_map(|p| p.executable.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test process, in a table, with a stale executable path.
    fn me_with_stale_exe() -> (ProcessTable, ProcKey) {
        let mut table = ProcessTable::new();
        let mut me = snapshot::read(std::process::id(), None).expect("own /proc entry");
        me.executable = Some(Name::from("/stale/path"));
        let key = me.key;
        table.insert(me);
        (table, key)
    }

    fn exe(table: &ProcessTable, key: ProcKey) -> Vec<u8> {
        table
            .get(&key)
            .unwrap()
            .executable
            .clone()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn refresh_reads_the_live_executable_at_most_once_a_second() {
        use std::os::unix::ffi::OsStrExt as _;
        let real = std::env::current_exe().unwrap();
        let (mut table, key) = me_with_stale_exe();
        table.refresh_executable(key, 10_000_000_000);
        assert_eq!(exe(&table, key), real.as_os_str().as_bytes());

        table.get_or_load(key).unwrap().executable = Some(Name::from("/stale/again"));
        table.refresh_executable(key, 10_500_000_000);
        assert_eq!(
            exe(&table, key),
            b"/stale/again",
            "read again within a second"
        );
        table.refresh_executable(key, 11_000_000_000);
        assert_eq!(exe(&table, key), real.as_os_str().as_bytes());
    }

    #[test]
    fn a_deleted_executable_is_settled_and_another_process_is_not_read() {
        let (mut table, key) = me_with_stale_exe();
        table.get_or_load(key).unwrap().executable = Some(Name::from("/x (deleted)"));
        table.refresh_executable(key, 1);
        assert_eq!(exe(&table, key), b"/x (deleted)");

        // Same pid, other start time: a different (older) process.
        let (mut table, key) = me_with_stale_exe();
        let mut other = table.get(&key).unwrap().clone();
        other.key.start_ticks += 1;
        let other_key = other.key;
        table.insert(other);
        table.refresh_executable(other_key, 1);
        assert_eq!(exe(&table, other_key), b"/stale/path");
    }
}
