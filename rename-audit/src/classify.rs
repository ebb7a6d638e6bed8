//! Stage 3, classify: applies lifecycle records to the process table and
//! turns renames, summaries and loss reports into enriched [`Event`]s.
use std::sync::Arc;

use rename_audit_common::{RenameRecord, method};

use crate::{
    capture::KernelState,
    capture::{Record, StormSummary},
    clock::{self, WallClock},
    event::{
        Body, Class, Event, Lost, LostReason, Method, ProcessContext, Rename, Summary, Writer,
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
    /// A lifecycle record: only the table changed.
    Nothing,
    /// The kernel side's counters and storm slots changed.
    Kernel(KernelState),
}

/// Refresh the wall-clock offsets this often (NTP steps, suspend).
const CLOCK_REFRESH_NS: u64 = 10_000_000_000;

pub struct Classifier {
    table: ProcessTable,
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
            Record::Exec(r) => self.table.apply_exec(&r),
            Record::Exit(r) => self.table.apply_exit(&r, r.hdr.ktime_ns),
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
                    }),
                );
            }
        }
        Classified::Nothing
    }

    /// An `events-lost` record of class `output` for `count` records the
    /// output could not write, numbered in sequence like every record.
    pub fn output_lost(&mut self, count: u64) -> Box<Event> {
        let timestamp = self.clock.from_monotonic(clock::monotonic_ns());
        self.new_event(
            timestamp,
            None,
            Body::Lost(Lost {
                class: Class::Output,
                reason: LostReason::WriteFailed,
                count,
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

    fn new_event(
        &mut self,
        timestamp: time::OffsetDateTime,
        process: Option<ProcessContext>,
        body: Body,
    ) -> Box<Event> {
        self.sequence += 1;
        Box::new(Event {
            sequence: self.sequence,
            timestamp,
            host: self.host.clone(),
            process,
            body,
            alert: None,
        })
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
        let excluded = match how {
            Method::Exec => !self.filter.include_exec,
            Method::Kernel => !self.filter.include_kernel,
            Method::Prctl | Method::Procfs => false,
        };
        if excluded {
            return Classified::Filtered(how);
        }
        if main_thread && matches!(how, Method::Prctl | Method::Procfs) {
            // A process renaming itself is what the rules judge by its
            // executable: make sure a since-deleted binary shows as such.
            self.table.refresh_executable(key, r.hdr.ktime_ns);
        }
        let process = self.context(key, r.start_boottime_ns, || {
            if main_thread {
                new_name.clone()
            } else {
                Name::default()
            }
        });
        let body = Body::Rename(Rename {
            tid: r.tid,
            old_name: Name::from_c_buf(&r.old_name),
            new_name,
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
        let process = self.context(key, s.start_boottime_ns, Name::default);
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
    fn context(&self, key: ProcKey, start_ns: u64, name: impl FnOnce() -> Name) -> ProcessContext {
        match self.table.get(&key) {
            Some(p) => self.table.context(p, &self.clock),
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
    match r.method {
        method::PRCTL => Method::Prctl,
        method::PROCFS => Method::Procfs,
        method::EXEC => Method::Exec,
        _ => Method::Kernel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rename_audit_common::{ForkRecord, kind};

    fn rename(tid: u32, tgid: u32, start: u64, how: u8, old: &str, new: &str) -> RenameRecord {
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
        let mut f: ForkRecord = unsafe { std::mem::zeroed() };
        f.hdr.kind = kind::FORK;
        f.tgid = tgid;
        f.start_boottime_ns = start;
        f.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        f
    }

    fn classifier() -> Classifier {
        Classifier::new(ProcessTable::new(), Arc::from("host"), Filter::default())
    }

    fn event(c: Classified) -> Event {
        match c {
            Classified::Event(e) => *e,
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
        assert_eq!(e2.sequence, e.sequence + 1);
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
        let r = rename(PID, PID, 1_000_000_000, method::EXEC, "sh", "python3");
        assert!(matches!(
            c.classify(Record::Rename(r)),
            Classified::Filtered(Method::Exec)
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
        let e = event(c.classify(Record::Rename(rename(
            PID,
            PID,
            1_000_000_000,
            method::EXEC,
            "python3",
            "ls",
        ))));
        assert_eq!(e.body.action(), "process-renamed");
        let k = rename(PID, PID, 1_000_000_000, method::KERNEL, "ls", "x");
        assert!(matches!(
            c.classify(Record::Rename(k)),
            Classified::Filtered(Method::Kernel)
        ));
    }
}
