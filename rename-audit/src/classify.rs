//! Stage 3, classify: applies lifecycle records to the process table and
//! turns renames, summaries and loss reports into enriched [`Event`]s.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;

use rename_audit_common::{RenameRecord, rename_flags};

use crate::{
    capture::KernelState,
    capture::{Record, StormSummary},
    clock::{self, WallClock},
    event::{
        Body, Class, Event, Found, Hidden, HiddenFound, Lost, LostReason, Method, ProcessContext,
        Rename, Summary, Writer,
    },
    names::Name,
    proctable::{ProcKey, ProcessTable},
};

/// Which renames become events.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Report renames done by exec (otherwise they only set the baseline).
    pub include_exec: bool,
    /// Report renames done by the kernel (kthread naming, io_uring workers).
    pub include_kernel: bool,
}

/// What one record turned into.
#[derive(Debug)]
pub enum Classified {
    Event(Box<Event>),
    /// A rename that the filter keeps out of the output.
    Filtered(Method),
    /// An event written only when a rule matches it (or `keep` is set), not
    /// numbered yet: an exec (judged by the name and argv[0] it gives even
    /// when exec renames are not reported) or a process found at start-up.
    /// Number it with [`Classifier::number`] before writing it.
    Candidate {
        event: Box<Event>,
        /// Written even without an alert (`--include-exec`).
        keep: bool,
        /// Counted as filtered with this reason when not written.
        filtered: Option<Method>,
    },
    /// A lifecycle record: only the table changed.
    Nothing,
    /// The kernel side's counters and storm slots changed.
    Kernel(KernelState),
}

/// An exec rename held until its exec record comes.
struct PendingExec {
    key: ProcKey,
    start_ns: u64,
    ktime_ns: u64,
    body: Body,
    /// Reported (`--include-exec`), not only judged.
    keep: bool,
}

/// An exec rename whose exec record has not come after this long (the
/// record was lost, and counted) is written with what the table knows.
const EXEC_WAIT_NS: u64 = 1_000_000_000;

/// Refresh the wall-clock offsets this often (NTP steps, suspend).
const CLOCK_REFRESH_NS: u64 = 10_000_000_000;

pub struct Classifier {
    table: ProcessTable,
    /// Exec renames waiting for their exec record, which follows in the same
    /// ring and tells the new image the event must describe; by pid.
    pending_exec: HashMap<u32, PendingExec>,
    /// Covered /proc entries reported and still covered.
    hidden: HashSet<(u32, Name)>,
    /// Whether the mount table was read once (at start-up).
    mounts_read: bool,
    /// Whether the processes found at start-up were judged.
    found_judged: bool,
    /// A mount was made since the mount table was last read, and by whom.
    mounts_changed: bool,
    mounters: Vec<u32>,
    clock: WallClock,
    clock_taken_ns: u64,
    host: Arc<str>,
    filter: Filter,
    sequence: u64,
}

impl Classifier {
    pub fn new(table: ProcessTable, host: Arc<str>, filter: Filter) -> Self {
        Self {
            table,
            pending_exec: HashMap::new(),
            hidden: HashSet::new(),
            mounts_read: false,
            found_judged: false,
            mounts_changed: false,
            mounters: Vec::new(),
            clock: WallClock::now(),
            clock_taken_ns: clock::monotonic_ns(),
            host,
            filter,
            sequence: 0,
        }
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
    }

    /// Housekeeping between batches: frees exited processes, refreshes clocks.
    pub fn tick(&mut self) {
        let now = clock::monotonic_ns();
        self.table.reap(now);
        if now.saturating_sub(self.clock_taken_ns) >= CLOCK_REFRESH_NS {
            self.clock.refresh();
            self.clock_taken_ns = now;
        }
    }

    pub fn classify(&mut self, record: Record) -> Classified {
        match record {
            Record::Fork(r) => self.table.apply_fork(&r),
            Record::Exec(r) => {
                self.table.apply_exec(&r);
                if let Some(pending) = self.pending_exec.remove(&r.tgid) {
                    return self.exec_event(pending);
                }
            }
            Record::Exit(r) => self.table.apply_exit(&r, r.hdr.ktime_ns),
            Record::Mount(r) => {
                if !self.mounters.contains(&r.tgid) {
                    self.mounters.push(r.tgid);
                }
                self.mounts_changed = true;
            }
            Record::Rename(r) => return self.rename(&r),
            Record::Summary(s) => return self.summary(&s),
            Record::Kernel(k) => return Classified::Kernel(k),
            Record::Lost {
                class,
                reason,
                count,
                ktime_ns,
            } => {
                if class == Class::Lifecycle {
                    let pruned = self.table.prune_dead();
                    tracing::warn!(
                        count,
                        pruned,
                        "lifecycle records lost; pruned processes that are gone"
                    );
                }
                let timestamp = self.clock.from_monotonic(ktime_ns);
                return self.event(
                    timestamp,
                    None,
                    Body::Lost(Lost {
                        class,
                        reason,
                        count,
                        sink: None,
                    }),
                );
            }
        }
        Classified::Nothing
    }

    /// Exec renames whose exec record is overdue (or all of them, with
    /// `now_ns` = `u64::MAX` at shutdown), as events: never dropped.
    pub fn overdue_exec_events(&mut self, now_ns: u64) -> Vec<Classified> {
        let overdue: Vec<u32> = self
            .pending_exec
            .iter()
            .filter(|(_, p)| now_ns.saturating_sub(p.ktime_ns) >= EXEC_WAIT_NS)
            .map(|(pid, _)| *pid)
            .collect();
        let mut events = Vec::with_capacity(overdue.len());
        for pid in overdue {
            if let Some(p) = self.pending_exec.remove(&pid) {
                events.push(self.exec_event(p));
            }
        }
        events
    }

    /// `process-hidden` events for /proc entries newly covered: all of them
    /// the first time (start-up), then after mounts the kernel reported.
    pub fn hidden_events(&mut self) -> Vec<Classified> {
        let found = if !self.mounts_read {
            HiddenFound::StartUp
        } else if self.mounts_changed {
            HiddenFound::Mount
        } else {
            return Vec::new();
        };
        self.mounts_read = true;
        self.mounts_changed = false;
        let mounters = std::mem::take(&mut self.mounters);
        let covered = self.table.covered_procs(&mounters);
        let now: HashSet<(u32, Name)> = covered
            .iter()
            .map(|c| (c.pid, c.mount_point.clone()))
            .collect();
        let mut events = Vec::new();
        for c in covered {
            if self.hidden.contains(&(c.pid, c.mount_point.clone())) {
                continue;
            }
            let process = match self.table.load_pid(c.pid) {
                Some(key) => {
                    let p = self.table.get(&key).expect("just loaded");
                    self.table.context(p, u64::MAX, &self.clock)
                }
                None => ProcessContext {
                    pid: c.pid,
                    ..ProcessContext::default()
                },
            };
            let timestamp = self.clock.from_monotonic(clock::monotonic_ns());
            events.push(self.event(
                timestamp,
                Some(process),
                Body::Hidden(Hidden {
                    pid: c.pid,
                    covered_by: c.covered_by,
                    mount_point: c.mount_point,
                    entry: c.entry,
                    found,
                }),
            ));
        }
        // Forget entries no longer covered, so covering one again is news.
        self.hidden = now;
        events
    }

    fn exec_event(&mut self, p: PendingExec) -> Classified {
        let Body::Rename(rename) = &p.body else {
            unreachable!("only renames wait for their exec");
        };
        let new_name = rename.new_name.clone();
        let process = self.context(p.key, p.start_ns, u64::MAX, || new_name);
        let timestamp = self.clock.from_monotonic(p.ktime_ns);
        Classified::Candidate {
            event: self.unnumbered(timestamp, Some(process), p.body),
            keep: p.keep,
            filtered: Some(Method::Exec),
        }
    }

    /// Every process running at start-up, once, as a candidate the rules
    /// judge by the name and argv[0] it already had: a disguise taken while
    /// the daemon was not running. Written only when a rule matches.
    pub fn found_events(&mut self) -> Vec<Classified> {
        if self.found_judged {
            return Vec::new();
        }
        self.found_judged = true;
        let now = self.clock.from_monotonic(clock::monotonic_ns());
        let mut found = Vec::new();
        for p in self.table.iter() {
            if p.kthread || p.image.executable.is_none() {
                continue;
            }
            let process = self.table.context(p, u64::MAX, &self.clock);
            let body = Body::Found(Found {
                name: p.name.clone(),
            });
            found.push(Classified::Candidate {
                event: self.unnumbered(now, Some(process), body),
                keep: false,
                filtered: None,
            });
        }
        found
    }

    /// Gives a record the next `event.sequence`, as it is written: every
    /// number is a line of the output or counted in an `events-lost` record.
    pub fn number(&mut self, event: &mut Event) {
        self.sequence += 1;
        event.sequence = self.sequence;
    }

    fn unnumbered(
        &self,
        timestamp: time::OffsetDateTime,
        process: Option<ProcessContext>,
        body: Body,
    ) -> Box<Event> {
        Box::new(Event {
            sequence: 0,
            timestamp,
            host: self.host.clone(),
            process,
            body,
            alert: None,
        })
    }

    /// An `agent-started` or `agent-stopped` record, stamped now and
    /// numbered when written like every record.
    pub fn agent_event(&mut self, run: crate::event::AgentRun) -> Box<Event> {
        let timestamp = self.clock.from_monotonic(clock::monotonic_ns());
        self.new_event(timestamp, None, Body::Agent(run))
    }

    /// An `events-lost` record of class `output` for `count` records the
    /// output could not write, numbered when written like every record.
    pub fn output_lost(&mut self, count: u64) -> Box<Event> {
        let timestamp = self.clock.from_monotonic(clock::monotonic_ns());
        self.new_event(
            timestamp,
            None,
            Body::Lost(Lost {
                class: Class::Output,
                reason: LostReason::WriteFailed,
                count,
                sink: None,
            }),
        )
    }

    /// An `events-lost` record of class `sink` for `count` records `sink`
    /// could not deliver, numbered when written like every record.
    pub fn sink_lost(&mut self, sink: &'static str, reason: LostReason, count: u64) -> Box<Event> {
        let timestamp = self.clock.from_monotonic(clock::monotonic_ns());
        self.new_event(
            timestamp,
            None,
            Body::Lost(Lost {
                class: Class::Sink,
                reason,
                count,
                sink: Some(sink),
            }),
        )
    }

    fn event(
        &mut self,
        timestamp: time::OffsetDateTime,
        process: Option<ProcessContext>,
        body: Body,
    ) -> Classified {
        Classified::Event(self.new_event(timestamp, process, body))
    }

    /// A record, not numbered yet: the pipeline numbers it as it writes it
    /// ([`Self::number`]), so a record that a filter drops after
    /// classification leaves no hole in `event.sequence`.
    fn new_event(
        &mut self,
        timestamp: time::OffsetDateTime,
        process: Option<ProcessContext>,
        body: Body,
    ) -> Box<Event> {
        self.unnumbered(timestamp, process, body)
    }

    fn rename(&mut self, r: &RenameRecord) -> Classified {
        let how = method_of(r);
        let key = ProcKey::from_kernel(r.tgid, r.start_boottime_ns);
        let main_thread = r.tid == r.tgid;
        let new_name = Name::from_c_buf(&r.new_name);
        let (count, original_name) = match self.table.get_or_load(key) {
            Some(p) => {
                let count = p.thread_renames.entry(r.tid).or_insert(0);
                *count += 1;
                if how == Method::Exec {
                    p.original_name = new_name.clone();
                }
                (*count, p.original_name.clone())
            }
            None => (1, Name::default()),
        };
        if main_thread {
            self.table.set_name(key, new_name.clone());
        }
        // An exec is judged by the rules whether or not it is reported.
        let excluded = match how {
            Method::Kernel => !self.filter.include_kernel,
            Method::Exec | Method::Prctl | Method::Procfs => false,
        };
        if excluded {
            return Classified::Filtered(how);
        }
        if r.flags & rename_flags::EXE_DELETED != 0
            && let Some(p) = self.table.get_mut(&key)
        {
            // The kernel saw the binary deleted since its exec (a dropper
            // that removes itself): the rules must see that.
            p.mark_exe_deleted();
        }
        let body = Body::Rename(Rename {
            tid: r.tid,
            old_name: Name::from_c_buf(&r.old_name),
            new_name: new_name.clone(),
            main_thread,
            method: how,
            writer: Writer {
                pid: r.writer_tgid,
                tid: r.writer_tid,
                name: Name::from_c_buf(&r.writer_name),
            },
            original_name,
            count,
        });
        if how == Method::Exec {
            // Described by the new image, which its exec record brings.
            let pending = PendingExec {
                key,
                start_ns: r.start_boottime_ns,
                ktime_ns: r.hdr.ktime_ns,
                body,
                keep: self.filter.include_exec,
            };
            if let Some(older) = self.pending_exec.insert(r.tgid, pending) {
                // An earlier exec of this pid lost its exec record.
                return self.exec_event(older);
            }
            return Classified::Nothing;
        }
        let process = self.context(key, r.start_boottime_ns, r.hdr.ktime_ns, || {
            if main_thread {
                new_name.clone()
            } else {
                Name::default()
            }
        });
        let timestamp = self.clock.from_monotonic(r.hdr.ktime_ns);
        self.event(timestamp, Some(process), body)
    }

    fn summary(&mut self, s: &StormSummary) -> Classified {
        let key = ProcKey::from_kernel(s.tgid, s.start_boottime_ns);
        let last_name = Name::from_c_buf(&s.last_name);
        let main_thread = s.tid == s.tgid;
        if let Some(p) = self.table.get_or_load(key) {
            // The thread's exit record may already have freed its counter:
            // a last summary must not bring it back.
            if s.thread_exited {
                p.thread_renames.remove(&s.tid);
            } else {
                *p.thread_renames.entry(s.tid).or_insert(0) += s.count;
            }
        }
        if main_thread {
            self.table.set_name(key, last_name.clone());
        }
        let process = self.context(key, s.start_boottime_ns, s.last_seen_ns, Name::default);
        let body = Body::Summary(Summary {
            class: s.class,
            tid: s.tid,
            count: s.count,
            first_seen: self.clock.from_monotonic(s.first_seen_ns),
            last_seen: self.clock.from_monotonic(s.last_seen_ns),
            last_name,
            thread_exited: s.thread_exited,
        });
        let timestamp = self.clock.from_monotonic(s.last_seen_ns);
        self.event(timestamp, Some(process), body)
    }

    /// The process from the table, or what the record itself tells when the
    /// process is gone and was never seen.
    /// The process as it was at kernel time `at_ns`.
    fn context(
        &self,
        key: ProcKey,
        start_ns: u64,
        at_ns: u64,
        name: impl FnOnce() -> Name,
    ) -> ProcessContext {
        match self.table.get(&key) {
            Some(p) => self.table.context(p, at_ns, &self.clock),
            None => ProcessContext {
                pid: key.tgid,
                name: name(),
                start: Some(self.clock.from_boottime(start_ns)),
                ..ProcessContext::default()
            },
        }
    }
}

fn method_of(r: &RenameRecord) -> Method {
    // The kernel programs write only the four numbers; any other (a
    // mismatched kernel object) is taken for the kernel's own rename.
    Method::from_wire(r.method).unwrap_or(Method::Kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rename_audit_common::{ForkRecord, kind, method};

    fn rename(tid: u32, tgid: u32, start: u64, how: u8, old: &str, new: &str) -> RenameRecord {
        // SAFETY: a `repr(C)` record of integers and byte arrays, for which
        // all zeroes is a valid value.
        let mut r: RenameRecord = unsafe { std::mem::zeroed() };
        r.hdr.kind = kind::RENAME;
        r.tid = tid;
        r.tgid = tgid;
        r.writer_tid = tid;
        r.writer_tgid = tgid;
        r.start_boottime_ns = start;
        r.method = how;
        r.old_name[..old.len()].copy_from_slice(old.as_bytes());
        r.new_name[..new.len()].copy_from_slice(new.as_bytes());
        r
    }

    fn fork(tgid: u32, start: u64, comm: &str) -> ForkRecord {
        // SAFETY: as for `rename` above.
        let mut f: ForkRecord = unsafe { std::mem::zeroed() };
        f.hdr.kind = kind::FORK;
        f.tgid = tgid;
        f.start_boottime_ns = start;
        f.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        f
    }

    fn classifier() -> Classifier {
        Classifier::new(
            ProcessTable::new(crate::proctable::ProcRoot::host()),
            Arc::from("host"),
            Filter::default(),
        )
    }

    fn event(c: Classified) -> Event {
        match c {
            Classified::Event(e) => *e,
            Classified::Candidate { event, .. } => *event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    // Pids above the kernel's maximum cannot exist, so /proc fallbacks miss.
    const PID: u32 = 0x7fff_0000;

    #[test]
    fn main_thread_rename_is_a_process_rename_and_renames_the_process() {
        let mut c = classifier();
        c.classify(Record::Fork(fork(PID, 5_000_000_000, "worker")));
        let e = event(c.classify(Record::Rename(rename(
            PID,
            PID,
            5_000_000_000,
            method::PRCTL,
            "worker",
            "sshd",
        ))));
        assert_eq!(e.body.action(), "process-renamed");
        assert_eq!(e.process.as_ref().unwrap().name.as_bytes(), b"sshd");
        let Body::Rename(r) = &e.body else {
            panic!("not a rename")
        };
        assert_eq!((r.count, r.method, r.main_thread), (1, Method::Prctl, true));
        let e2 = event(c.classify(Record::Rename(rename(
            PID + 1,
            PID,
            5_000_000_000,
            method::PRCTL,
            "worker",
            "io",
        ))));
        assert_eq!(e2.body.action(), "thread-renamed");
        assert_eq!(
            e2.process.unwrap().name.as_bytes(),
            b"sshd",
            "a thread rename keeps the process name"
        );
        assert_eq!(
            (e.sequence, e2.sequence),
            (0, 0),
            "numbered when written, not when classified"
        );
    }

    #[test]
    fn pid_reuse_does_not_mix_processes() {
        let mut c = classifier();
        c.classify(Record::Fork(fork(PID, 1_000_000_000, "first")));
        c.classify(Record::Fork(fork(PID, 9_000_000_000, "second")));
        let a = ProcKey::from_kernel(PID, 1_000_000_000);
        let b = ProcKey::from_kernel(PID, 9_000_000_000);
        assert_ne!(a, b);
        assert_eq!(c.table().get(&a).unwrap().name.as_bytes(), b"first");
        assert_eq!(c.table().get(&b).unwrap().name.as_bytes(), b"second");
    }

    #[test]
    fn exec_sets_the_baseline_and_is_filtered_by_default() {
        let mut c = classifier();
        c.classify(Record::Fork(fork(PID, 1_000_000_000, "sh")));
        // Judged by the rules when its exec record comes, and counted as
        // filtered unless one matches.
        let r = rename(PID, PID, 1_000_000_000, method::EXEC, "sh", "python3");
        assert!(matches!(c.classify(Record::Rename(r)), Classified::Nothing));
        let judged = c.overdue_exec_events(u64::MAX);
        assert!(matches!(
            judged.as_slice(),
            [Classified::Candidate {
                keep: false,
                filtered: Some(Method::Exec),
                ..
            }]
        ));
        let key = ProcKey::from_kernel(PID, 1_000_000_000);
        assert_eq!(
            c.table().get(&key).unwrap().original_name.as_bytes(),
            b"python3"
        );
        c.set_filter(Filter {
            include_exec: true,
            include_kernel: false,
        });
        // An exec rename waits for its exec record, whose image it reports.
        let mut r = rename(PID, PID, 1_000_000_000, method::EXEC, "python3", "ls");
        r.hdr.ktime_ns = 5_000;
        assert!(matches!(c.classify(Record::Rename(r)), Classified::Nothing));
        // SAFETY: plain integers and byte arrays.
        let mut x: rename_audit_common::ExecRecord = unsafe { std::mem::zeroed() };
        x.hdr.kind = kind::EXEC;
        x.hdr.ktime_ns = 5_100;
        x.tgid = PID;
        x.start_boottime_ns = 1_000_000_000;
        x.comm[..2].copy_from_slice(b"ls");
        for (at, part) in [(0, &b"ls"[..]), (3, b"bin"), (7, b"usr")] {
            x.exe_path[at..at + part.len()].copy_from_slice(part);
        }
        x.exe_path_len = 11;
        x.args[..6].copy_from_slice(b"ls\0-l\0");
        x.args_len = 6;
        let e = event(c.classify(Record::Exec(Box::new((&x).into()))));
        assert_eq!(e.body.action(), "process-renamed");
        let p = e.process.expect("process");
        assert_eq!(p.executable, Some(Name::from("/usr/bin/ls")));
        assert_eq!(*p.args, [Name::from("ls"), Name::from("-l")]);

        // One whose exec record never comes is written once it is overdue.
        let mut r = rename(PID, PID, 1_000_000_000, method::EXEC, "ls", "cat");
        r.hdr.ktime_ns = 10_000;
        assert!(matches!(c.classify(Record::Rename(r)), Classified::Nothing));
        assert!(c.overdue_exec_events(10_000 + EXEC_WAIT_NS - 1).is_empty());
        let overdue = c.overdue_exec_events(10_000 + EXEC_WAIT_NS);
        assert_eq!(overdue.len(), 1);
        assert!(
            matches!(&overdue[0], Classified::Candidate { event, keep: true, .. } if event.body.action() == "process-renamed")
        );
        let k = rename(PID, PID, 1_000_000_000, method::KERNEL, "ls", "x");
        assert!(matches!(
            c.classify(Record::Rename(k)),
            Classified::Filtered(Method::Kernel)
        ));
    }

    #[test]
    fn candidates_are_numbered_only_when_written() {
        let mut c = classifier();
        c.classify(Record::Fork(fork(PID, 1_000_000_000, "sh")));
        // SAFETY: plain integers and byte arrays.
        let mut x: rename_audit_common::ExecRecord = unsafe { std::mem::zeroed() };
        x.hdr.kind = kind::EXEC;
        x.tgid = PID;
        x.start_boottime_ns = 1_000_000_000;
        x.comm[..4].copy_from_slice(b"sshd");
        for (at, part) in [(0, &b"sshd"[..]), (5, b"x"), (7, b"tmp")] {
            x.exe_path[at..at + part.len()].copy_from_slice(part);
        }
        x.exe_path_len = 11;
        c.classify(Record::Exec(Box::new((&x).into())));
        // Every process of the table once, at start-up; never again.
        let found = c.found_events();
        let mut ours: Vec<Box<Event>> = found
            .into_iter()
            .filter_map(|f| match f {
                Classified::Candidate {
                    event,
                    keep: false,
                    filtered: None,
                } if event.process.as_ref().is_some_and(|p| p.pid == PID) => Some(event),
                _ => None,
            })
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].sequence, 0, "not numbered until written");
        assert_eq!(ours[0].body.action(), "disguise-found-at-start-up");
        assert!(c.found_events().is_empty());
        c.number(&mut ours[0]);
        assert_eq!(ours[0].sequence, 1);
        let next = event(c.classify(Record::Rename(rename(
            PID,
            PID,
            1_000_000_000,
            method::PRCTL,
            "sshd",
            "x",
        ))));
        let mut next = next;
        c.number(&mut next);
        assert_eq!(next.sequence, 2, "no gap for the candidates not written");
    }
}
