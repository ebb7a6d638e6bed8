//! The daemon's side of the storm slots: takes counts the kernel parked in
//! the memory-mapped `STORMS` array and turns them into summaries.
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use rename_audit_common::{Class, StormSlot, TASK_COMM_LEN, class};

use super::records::{Record, StormSummary};

/// A storm whose thread has been quiet this long has ended.
const QUIET_NS: u64 = 250_000_000;
/// While a storm lasts, one summary at least this often. The sweep runs
/// every 100 ms, so summaries come at most ~1 s apart.
const PERIOD_NS: u64 = 900_000_000;

pub struct StormSlots {
    map: MmapRaw,
    len: usize,
    /// When the current summary window of each slot began (0: none open).
    window_start: Vec<u64>,
}

impl StormSlots {
    pub fn map(fd: std::os::fd::BorrowedFd<'_>, len: u32) -> std::io::Result<Self> {
        let page = 4096;
        let bytes = (len as usize * size_of::<StormSlot>()).div_ceil(page) * page;
        let map = MmapOptions::new().len(bytes).map_raw(&fd)?;
        Ok(Self {
            map,
            len: len as usize,
            window_start: vec![0; len as usize],
        })
    }

    fn slot(&self, index: usize) -> *mut StormSlot {
        debug_assert!(index < self.len);
        // SAFETY: index < len and the mapping covers len slots.
        unsafe { self.map.as_mut_ptr().cast::<StormSlot>().add(index) }
    }

    /// Takes every count that is due (all of them when `final_sweep`) and
    /// appends one summary per thread to `out`. Returns how many slots are
    /// held by a thread afterwards.
    pub fn sweep(&mut self, now_ns: u64, final_sweep: bool, out: &mut Vec<Record>) -> u64 {
        let mut in_use = 0;
        for index in 0..self.len {
            let slot = self.slot(index);
            // SAFETY: the fields are naturally aligned u64s inside the shared
            // mapping; the kernel updates them with atomic instructions.
            let (owner, exited, pending) = unsafe {
                (
                    AtomicU64::from_ptr(&raw mut (*slot).owner_tid),
                    AtomicU64::from_ptr(&raw mut (*slot).exited),
                    AtomicU64::from_ptr(&raw mut (*slot).pending),
                )
            };
            let tid = owner.load(Ordering::Acquire);
            if tid == 0 {
                continue;
            }
            in_use += 1;
            let thread_exited = exited.load(Ordering::Acquire) == 1;
            let waiting = pending.load(Ordering::Acquire);
            // SAFETY: `slot` points at a whole, aligned slot of the mapping
            // (see `slot`); a volatile read because the kernel writes it.
            let last_seen = unsafe { std::ptr::read_volatile(&raw const (*slot).last_seen_ns) };
            if waiting > 0 && self.window_start[index] == 0 {
                // SAFETY: as for `last_seen` above.
                let first = unsafe { std::ptr::read_volatile(&raw const (*slot).first_seen_ns) };
                self.window_start[index] = first.clamp(1, now_ns);
            }
            let due = final_sweep
                || thread_exited
                || (waiting > 0
                    && (now_ns.saturating_sub(last_seen) >= QUIET_NS
                        || now_ns.saturating_sub(self.window_start[index]) >= PERIOD_NS));
            if !due {
                continue;
            }
            // The name the storm ended on. The kernel has it once the thread
            // exited or sent a rename again; until then the thread still
            // bears it, so it is read from procfs (the kernel does not copy
            // every counted rename's name: that would cost as much as the
            // rest of its path). Read before the swap, and used only if no
            // rename at all came between the two.
            // SAFETY: an aligned u64 inside the shared mapping.
            let tail_sent = unsafe { AtomicU64::from_ptr(&raw mut (*slot).tail_sent) };
            let sent_before = tail_sent.load(Ordering::Acquire);
            let borne = if waiting == 0 || thread_exited || sent_before > 0 {
                None
            } else {
                // SAFETY: an aligned u32 inside the mapping, set at the claim.
                let tgid = unsafe { std::ptr::read_volatile(&raw const (*slot).tgid) };
                thread_name(tgid, tid as u32)
            };
            // The swap is the hand-over: every count the kernel added before
            // it is in this summary, every later one in the next.
            let count = pending.swap(0, Ordering::AcqRel);
            // Before the snapshot: the kernel writes the name, then these.
            let unchanged = count == waiting
                && tail_sent.load(Ordering::Acquire) == sent_before
                && exited.load(Ordering::Acquire) == u64::from(thread_exited);
            // SAFETY: as for `last_seen` above; `StormSlot` is plain data, so
            // a copy torn by a concurrent kernel write is still a valid value
            // (the checks around it tell whether its name can be used).
            let snapshot = unsafe { std::ptr::read_volatile(slot) };
            let last_name = match borne {
                Some(name) if unchanged => name,
                // Exited or sent since: the kernel's copy is exact. Still
                // storming: the kernel's copy of the tick's first name.
                _ => snapshot.last_name,
            };
            if count > 0 {
                out.push(Record::Summary(StormSummary {
                    tid: tid as u32,
                    tgid: snapshot.tgid,
                    start_boottime_ns: snapshot.start_boottime_ns,
                    class: if snapshot.class == class::PROCESS {
                        Class::Process
                    } else {
                        Class::Thread
                    },
                    count,
                    first_seen_ns: snapshot.first_seen_ns.min(snapshot.last_seen_ns),
                    last_seen_ns: snapshot.last_seen_ns,
                    last_name,
                    thread_exited,
                }));
            }
            self.window_start[index] = 0;
            if thread_exited {
                // The owner is gone and its rate state deleted: nothing in
                // the kernel refers to this slot any more.
                exited.store(0, Ordering::Release);
                owner.store(0, Ordering::Release);
                in_use -= 1;
            }
        }
        in_use
    }
}

/// The name thread `tid` of process `tgid` bears now, from procfs, as the
/// kernel holds it (NUL-padded). `None` when it cannot be read or is longer
/// than a task name: procfs shows kernel workers with their work appended.
fn thread_name(tgid: u32, tid: u32) -> Option<[u8; TASK_COMM_LEN]> {
    let text = std::fs::read(format!("/proc/{tgid}/task/{tid}/comm")).ok()?;
    // procfs adds one newline; a name may itself end in one.
    let name = text.strip_suffix(b"\n")?;
    if name.len() >= TASK_COMM_LEN {
        return None;
    }
    let mut out = [0; TASK_COMM_LEN];
    out[..name.len()].copy_from_slice(name);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renames the calling thread to `name` (any bytes but NUL, up to 15).
    fn rename_self(name: &[u8]) {
        let mut buf = [0u8; TASK_COMM_LEN];
        buf[..name.len()].copy_from_slice(name);
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        let rc = unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr()) };
        assert_eq!(rc, 0, "prctl(PR_SET_NAME)");
    }

    #[test]
    fn a_thread_name_is_read_as_the_kernel_holds_it_even_ending_in_a_newline() {
        let (tgid, tid, name) = std::thread::spawn(|| {
            rename_self(b"ends in nl\n");
            // SAFETY: no preconditions.
            let (tgid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
            (
                tgid as u32,
                tid as u32,
                thread_name(tgid as u32, tid as u32),
            )
        })
        .join()
        .unwrap();
        assert_eq!(
            name,
            Some(*b"ends in nl\n\0\0\0\0\0"),
            "thread {tid} of {tgid}"
        );
    }

    #[test]
    fn a_thread_that_is_gone_has_no_name() {
        // SAFETY: no preconditions.
        let tgid = unsafe { libc::getpid() } as u32;
        // Above any pid the kernel hands out (pid_max is at most 2^22).
        assert_eq!(thread_name(tgid, 1 << 23), None);
    }
}
