//! Stage 2, the process table: every live process, keyed so pid reuse
//! cannot mix two of them, kept exact from fork/exec/exit records after one
//! /proc snapshot at start-up.
mod hidden;
mod snapshot;

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;

use rename_audit_common::{ExitRecord, ForkRecord, exe_flags, exit_flags};

use crate::{
    capture::Exec,
    clock::WallClock,
    event::{ParentContext, ProcessContext},
    names::Name,
    process::{Cgroup, ExeFile, ProcessIndex},
};
pub use hidden::Covered;
pub use snapshot::{ProcRoot, SnapshotError, boottime_to_ticks, exec_name, split_args};

/// What a process runs: its executable and arguments, from one exec (or
/// from the start-up snapshot). Shared, not copied, between a parent and
/// the children it forks, so a process with long arguments and many
/// children costs its arguments once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// Absolute path, every symlink resolved; " (deleted)" once the file
    /// has no name. `None` for kernel threads or when it could not be read.
    pub executable: Option<Name>,
    /// Device (`major:minor`) and inode of the executable, from the kernel.
    pub file: Option<ExeFile>,
    /// At most `rename_audit_common::ARGS_LEN` bytes of arguments; shared
    /// with every event about the process, which copies none of them.
    pub args: Arc<[Name]>,
    /// The arguments were longer and are cut short.
    pub args_truncated: bool,
    /// When the exec happened (kernel monotonic ns); 0 for the snapshot.
    pub exec_ns: u64,
}

impl Image {
    /// The new image an exec record describes.
    pub fn from_exec(r: &Exec) -> Self {
        let readable = r.exe_flags & exe_flags::UNREADABLE == 0;
        Image {
            executable: readable.then(|| exe_path(r)),
            file: (readable && r.exe_ino != 0).then_some(ExeFile {
                // The kernel's dev_t: 12 bits of major above 20 of minor.
                major: (r.exe_dev >> 20) as u32,
                minor: (r.exe_dev & 0xf_ffff) as u32,
                inode: r.exe_ino,
            }),
            args: split_args(&r.args).into(),
            args_truncated: r.args_truncated,
            exec_ns: r.hdr.ktime_ns,
        }
    }
}

/// The executable path of an exec record.
pub fn exe_path(r: &Exec) -> Name {
    let mut path = join_leaf_first(&r.exe_path, r.exe_flags & exe_flags::TRUNCATED != 0);
    if r.exe_flags & exe_flags::DELETED != 0 {
        path.extend_from_slice(DELETED);
    }
    Name::new(path)
}

/// The cgroup path of an exec record (`None` when the kernel could not read
/// it); the root is not among its components.
pub fn cgroup_path(r: &Exec) -> Option<Vec<u8>> {
    if r.cgroup_path.is_empty() && !r.cgroup_path_truncated && r.cgroup_id == 0 {
        return None;
    }
    Some(join_leaf_first(&r.cgroup_path, r.cgroup_path_truncated))
}

/// A path from `raw`: NUL-terminated components, leaf first, as the
/// kernel's walks write them. A walk that stopped short gives a path that is
/// not absolute, on purpose: its top is unknown.
fn join_leaf_first(raw: &[u8], truncated: bool) -> Vec<u8> {
    let mut path = Vec::with_capacity(raw.len() + 16);
    if truncated {
        path.extend_from_slice("…".as_bytes());
    }
    for component in raw.rsplit(|&b| b == 0).filter(|c| !c.is_empty()) {
        path.push(b'/');
        path.extend_from_slice(component);
    }
    if path.is_empty() {
        path.push(b'/');
    }
    path
}

/// How the kernel marks a file that has no name any more.
const DELETED: &[u8] = b" (deleted)";

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
    pub image: Arc<Image>,
    /// The image before the last exec, for records made before it that
    /// arrive after it (thread renames come on their own ring).
    pub previous: Option<Arc<Image>>,
    pub uid: Option<u32>,
    /// Its cgroup as of its last exec (or the snapshot), with the unit and
    /// container it names; shared with forked children.
    pub cgroup: Option<Arc<Cgroup>>,
    pub parent: Option<ProcKey>,
    pub parent_pid: u32,
    pub kthread: bool,
    /// Renames so far of each thread that has renamed, by tid.
    pub thread_renames: HashMap<u32, u64>,
}

impl Process {
    /// The image that was running at kernel time `at_ns`.
    pub fn image_at(&self, at_ns: u64) -> &Arc<Image> {
        match &self.previous {
            Some(previous) if at_ns < self.image.exec_ns => previous,
            _ => &self.image,
        }
    }

    /// The kernel saw the executable's file deleted: say so, as
    /// /proc/<pid>/exe does.
    pub fn mark_exe_deleted(&mut self) {
        if let Some(exe) = &self.image.executable
            && !exe.as_bytes().ends_with(DELETED)
        {
            let mut path = exe.as_bytes().to_vec();
            path.extend_from_slice(DELETED);
            Arc::make_mut(&mut self.image).executable = Some(Name::new(path));
        }
    }
}

/// Exited processes stay this long, for records about them that were
/// still in flight on another ring or CPU.
const GRACE_NS: u64 = 2_000_000_000;

pub struct ProcessTable {
    procs: HashMap<ProcKey, Process>,
    by_name: HashMap<Name, HashSet<ProcKey>>,
    exited: VecDeque<(u64, ProcKey)>,
    /// Where processes that existed before the daemon are read.
    proc_root: ProcRoot,
}

impl ProcessTable {
    pub fn new(proc_root: ProcRoot) -> Self {
        Self {
            procs: HashMap::new(),
            by_name: HashMap::new(),
            exited: VecDeque::new(),
            proc_root,
        }
    }

    pub fn proc_root(&self) -> &ProcRoot {
        &self.proc_root
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

    pub fn get_mut(&mut self, key: &ProcKey) -> Option<&mut Process> {
        self.procs.get_mut(key)
    }

    /// Adds every process in /proc that the table does not hold yet. Run
    /// after the kernel programs are attached: a process that starts during
    /// the snapshot is in the rings as a fork and merged by key.
    pub fn snapshot(&mut self) {
        // Each process's parent key needs the parent's start time: taken
        // from the parent's own entry once every process is read, and read
        // from its `stat` only for a parent the scan did not find.
        let mut orphans = Vec::new();
        let mut started = HashMap::new();
        for pid in self.proc_root.pids() {
            let Some(p) = self.proc_root.read_with(pid, None, &|_| None) else {
                continue;
            };
            started.insert(p.key.tgid, p.key.start_ticks);
            if !self.procs.contains_key(&p.key) {
                if p.parent_pid != 0 {
                    orphans.push((p.key, p.parent_pid));
                }
                self.insert(p);
            }
        }
        for (key, parent_pid) in orphans {
            let start_ticks = started
                .get(&parent_pid)
                .copied()
                .or_else(|| self.proc_root.start_ticks(parent_pid));
            if let Some(p) = self.procs.get_mut(&key) {
                p.parent = start_ticks.map(|start_ticks| ProcKey {
                    tgid: parent_pid,
                    start_ticks,
                });
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

    /// The process, read from /proc when the table missed its fork (its
    /// fork record was lost, or it started while the snapshot ran).
    pub fn get_or_load(&mut self, key: ProcKey) -> Option<&mut Process> {
        if !self.procs.contains_key(&key) {
            let p = self.proc_root.read(key.tgid, Some(key.start_ticks))?;
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
            image: from.map_or_else(Default::default, |p| Arc::clone(&p.image)),
            previous: None,
            uid: Some(r.uid),
            cgroup: from.and_then(|p| p.cgroup.clone()),
            parent: Some(parent),
            parent_pid: r.parent_tgid,
            kthread: from.is_some_and(|p| p.kthread),
            thread_renames: HashMap::new(),
        };
        self.insert(child);
    }

    /// The process now runs the image the record describes, which the
    /// kernel read from the new image itself: /proc is not read, so a
    /// process that is already gone, or that was started by a relative
    /// path or through a symlink, gets its real executable.
    pub fn apply_exec(&mut self, r: &Exec) {
        let key = ProcKey::from_kernel(r.tgid, r.start_boottime_ns);
        let image = Arc::new(Image::from_exec(r));
        let cgroup = cgroup_path(r);
        let name = Name::from_c_buf(&r.comm);
        let Some(p) = self.get_or_load(key) else {
            return;
        };
        p.previous = Some(std::mem::replace(&mut p.image, image));
        // Nearly every exec stays in the cgroup its parent shared with it:
        // that one is kept rather than parsed again.
        if let Some(path) = cgroup
            && p.cgroup.as_ref().is_none_or(|c| c.path.as_bytes() != path)
        {
            p.cgroup = Some(Arc::new(Cgroup::parse(&path)));
        }
        p.uid = Some(r.uid);
        p.kthread = false;
        p.original_name = name.clone();
        p.thread_renames.clear();
        self.set_name(key, name);
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
        self.shrink();
    }

    /// Gives memory back after a storm of short-lived processes: maps keep
    /// their largest size otherwise.
    fn shrink(&mut self) {
        if self.procs.capacity() > 1024 && self.procs.len() < self.procs.capacity() / 4 {
            self.procs.shrink_to(self.procs.len() * 2);
            self.by_name.shrink_to(self.by_name.len() * 2);
        }
        if self.exited.capacity() > 1024 && self.exited.len() < self.exited.capacity() / 4 {
            self.exited.shrink_to(self.exited.len() * 2);
        }
    }

    /// Drops processes that no longer exist. Only needed after lifecycle
    /// records were lost (an exit record among them would leave an entry
    /// behind forever); otherwise exit records keep the table exact.
    pub fn prune_dead(&mut self) -> usize {
        let dead: Vec<ProcKey> = self
            .procs
            .keys()
            .filter(|k| self.proc_root.start_ticks(k.tgid) != Some(k.start_ticks))
            .copied()
            .collect();
        for key in &dead {
            if let Some(p) = self.procs.remove(key) {
                self.unindex(&p.name, *key);
            }
        }
        dead.len()
    }

    /// Covered /proc entries (and covered paths inside them) in the
    /// daemon's mount table, in PID 1's and in those of `mounters`
    /// (processes that just mounted, maybe in another mount namespace), each
    /// once: the same hide seen in several tables is one. PID 1's is the host's, where `ps` runs:
    /// the daemon's own may be another (systemd's PrivateMounts=). A mounter
    /// such as mount(8) has often exited by the time its record is read:
    /// then its nearest living ancestor's table is read, which is in the
    /// same namespace unless that ancestor made it (`unshare -m sh`, whose
    /// shell runs mount).
    pub fn covered_procs(&self, mounters: &[u32]) -> Vec<Covered> {
        let mut found: Vec<Covered> = Vec::new();
        let tables = [
            self.proc_root.mountinfo(None),
            self.proc_root.mountinfo(Some(1)),
        ]
        .into_iter()
        .chain(mounters.iter().map(|&pid| self.mountinfo_near(pid)));
        for table in tables.flatten() {
            for c in hidden::covered(&table) {
                if !found.iter().any(|f| f.pid == c.pid && f.entry == c.entry) {
                    found.push(c);
                }
            }
        }
        found
    }

    /// The mount table of `pid`, or of its nearest living ancestor the
    /// table knows (up to a few generations) when `pid` is gone.
    fn mountinfo_near(&self, pid: u32) -> Option<String> {
        const GENERATIONS: usize = 4;
        let mut pid = pid;
        for _ in 0..GENERATIONS {
            if let Some(table) = self.proc_root.mountinfo(Some(pid)) {
                return Some(table);
            }
            // The latest process with this pid (an exited one stays in the
            // table for a grace period).
            pid = self
                .procs
                .values()
                .filter(|p| p.key.tgid == pid)
                .max_by_key(|p| p.key.start_ticks)?
                .parent_pid;
        }
        None
    }

    /// The table's entry for a live process by pid, read from /proc when
    /// missing. Only through a private procfs: the host's /proc/<pid> of a
    /// hidden process shows the process that covers it.
    pub fn load_pid(&mut self, pid: u32) -> Option<ProcKey> {
        if !self.proc_root.is_private() {
            return None;
        }
        let key = ProcKey {
            tgid: pid,
            start_ticks: self.proc_root.start_ticks(pid)?,
        };
        self.get_or_load(key).map(|p| p.key)
    }

    /// Every process the table holds.
    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.procs.values()
    }

    /// Keys of live processes whose main thread is called `name`.
    pub fn named(&self, name: &[u8]) -> impl Iterator<Item = &Process> {
        self.by_name
            .get(&Name::new(name.to_vec()))
            .into_iter()
            .flatten()
            .filter_map(|k| self.procs.get(k))
    }

    /// The process as events describe it, running the image it ran at
    /// kernel time `at_ns`.
    pub fn context(&self, p: &Process, at_ns: u64, clock: &WallClock) -> ProcessContext {
        let parent = p.parent.and_then(|k| self.procs.get(&k));
        let image = p.image_at(at_ns);
        ProcessContext {
            pid: p.key.tgid,
            name: p.name.clone(),
            executable: image.executable.clone(),
            executable_file: image.file,
            args: Arc::clone(&image.args),
            args_truncated: image.args_truncated,
            start: Some(clock.from_boottime(p.start_boottime_ns)),
            uid: p.uid,
            unit: p.cgroup.as_ref().and_then(|c| c.unit.clone()),
            cgroup: p.cgroup.clone(),
            parent: (p.parent_pid != 0).then(|| ParentContext {
                pid: p.parent_pid,
                name: parent.map(|q| q.name.clone()),
                executable: parent.and_then(|q| q.image.executable.clone()),
            }),
        }
    }
}

impl ProcessIndex for ProcessTable {
    fn find_executable_named(
        &self,
        name: &[u8],
        except_pid: u32,
        wanted: &mut dyn FnMut(&Name) -> bool,
    ) -> Option<Name> {
        self.named(name)
            .filter(|p| p.key.tgid != except_pid)
            .filter_map(|p| p.image.executable.as_ref())
            .find(|exe| wanted(exe))
            .cloned()
    }

    fn root_of(&self, pid: u32) -> Option<std::path::PathBuf> {
        Some(self.proc_root.pid_dir(pid).join("root"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_record(components: &[&str], flags: u32) -> Exec {
        // SAFETY: ExecRecord is plain integers and byte arrays.
        let mut r: rename_audit_common::ExecRecord = unsafe { std::mem::zeroed() };
        let mut at = 0;
        for c in components {
            r.exe_path[at..at + c.len()].copy_from_slice(c.as_bytes());
            at += c.len() + 1;
        }
        r.exe_path_len = at as u32;
        r.exe_flags = flags;
        r.exe_dev = (8 << 20) | 3;
        r.exe_ino = 42;
        Exec::from(&r)
    }

    #[test]
    fn exec_paths_are_built_from_the_leaf_up() {
        let r = exec_record(&["sleep", "bin", "usr"], 0);
        assert_eq!(exe_path(&r).as_bytes(), b"/usr/bin/sleep");
        let image = Image::from_exec(&r);
        assert_eq!(
            image.file,
            Some(ExeFile {
                major: 8,
                minor: 3,
                inode: 42
            })
        );
        let deleted = exec_record(&["x", "tmp"], exe_flags::DELETED);
        assert_eq!(exe_path(&deleted).as_bytes(), b"/tmp/x (deleted)");
        let memfd = exec_record(&["memfd:payload"], exe_flags::DELETED);
        assert_eq!(exe_path(&memfd).as_bytes(), b"/memfd:payload (deleted)");
        let deep = exec_record(&["x", "d"], exe_flags::TRUNCATED);
        assert_eq!(exe_path(&deep).as_bytes(), "…/d/x".as_bytes());
        let none = exec_record(&[], exe_flags::UNREADABLE);
        assert_eq!(Image::from_exec(&none).executable, None);
    }

    #[test]
    fn forked_children_share_the_image_and_exec_keeps_the_previous_one() {
        let mut table = ProcessTable::new(ProcRoot::host());
        let me = table
            .proc_root
            .read(std::process::id(), None)
            .expect("own /proc entry");
        let parent = me.key;
        table.insert(me);
        // SAFETY: plain integers and byte arrays.
        let mut fork: ForkRecord = unsafe { std::mem::zeroed() };
        fork.tgid = 1_000_000;
        fork.start_boottime_ns = 5_000_000_000;
        fork.parent_tgid = parent.tgid;
        fork.parent_start_boottime_ns = snapshot::ticks_to_boottime(parent.start_ticks);
        table.apply_fork(&fork);
        let child = ProcKey::from_kernel(fork.tgid, fork.start_boottime_ns);
        assert!(Arc::ptr_eq(
            &table.get(&child).unwrap().image,
            &table.get(&parent).unwrap().image
        ));

        let mut exec = exec_record(&["sleep", "bin", "usr"], 0);
        exec.tgid = fork.tgid;
        exec.start_boottime_ns = fork.start_boottime_ns;
        exec.hdr.ktime_ns = 7_000;
        table.apply_exec(&exec);
        let p = table.get(&child).unwrap();
        let exe = |i: &Image| i.executable.clone().unwrap();
        assert_eq!(exe(p.image_at(7_001)).as_bytes(), b"/usr/bin/sleep");
        assert_eq!(
            exe(p.image_at(6_999)),
            exe(&table.get(&parent).unwrap().image),
            "a record from before the exec describes the image before it"
        );
    }

    #[test]
    fn events_share_the_arguments_of_the_image() {
        let mut table = ProcessTable::new(ProcRoot::host());
        let me = table
            .proc_root
            .read(std::process::id(), None)
            .expect("own /proc entry");
        let key = me.key;
        table.insert(me);
        let mut exec = exec_record(&["sleep", "bin", "usr"], 0);
        exec.tgid = key.tgid;
        exec.start_boottime_ns = snapshot::ticks_to_boottime(key.start_ticks);
        exec.args = b"sleep\x001\x00".to_vec();
        table.apply_exec(&exec);
        let p = table.get(&key).unwrap();
        let clock = WallClock::now();
        let (a, b) = (table.context(p, 1, &clock), table.context(p, 2, &clock));
        assert_eq!(*a.args, [Name::from("sleep"), Name::from("1")]);
        assert!(Arc::ptr_eq(&a.args, &b.args));
        assert!(Arc::ptr_eq(&a.args, &p.image.args));
    }

    #[test]
    fn an_exec_keeps_the_cgroup_it_shares_with_its_parent_and_parses_a_new_one() {
        let mut table = ProcessTable::new(ProcRoot::host());
        // SAFETY: plain integers and byte arrays.
        let mut fork: ForkRecord = unsafe { std::mem::zeroed() };
        fork.tgid = 1_000_001;
        fork.start_boottime_ns = 6_000_000_000;
        table.apply_fork(&fork);
        let key = ProcKey::from_kernel(fork.tgid, fork.start_boottime_ns);
        let shared = Arc::new(Cgroup::parse(b"/system.slice/cron.service"));
        table.get_mut(&key).unwrap().cgroup = Some(Arc::clone(&shared));
        let exec_in = |table: &mut ProcessTable, components: &[&str]| {
            let mut exec = exec_record(&["sleep", "bin"], 0);
            exec.tgid = fork.tgid;
            exec.start_boottime_ns = fork.start_boottime_ns;
            exec.cgroup_id = 77;
            exec.cgroup_path = components
                .iter()
                .flat_map(|c| c.bytes().chain([0]))
                .collect();
            table.apply_exec(&exec);
            Arc::clone(table.get(&key).unwrap().cgroup.as_ref().unwrap())
        };
        let same = exec_in(&mut table, &["cron.service", "system.slice"]);
        assert!(
            Arc::ptr_eq(&same, &shared),
            "the same cgroup is kept, not parsed again"
        );
        let moved = exec_in(&mut table, &["x.scope", "user.slice"]);
        assert_eq!(moved.path.as_bytes(), b"/user.slice/x.scope");
        assert_eq!(moved.unit.as_deref(), Some("x.scope"));
    }
}
