//! Decoding ring-buffer bytes into typed records.
use rename_audit_common::{
    ARGS_LEN, CGROUP_PATH_LEN, Class, EXE_PATH_LEN, ExecRecord, ExitRecord, ForkRecord, LostReason,
    MntNsRecord, MountRecord, NAME_LEN, RecordHeader, RenameRecord, TASK_COMM_LEN, kind,
};

/// What the kernel's counters and the storm slots show besides losses,
/// sent whenever it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelState {
    /// Storm slots owned by a thread.
    pub storm_slots_in_use: u64,
    /// Renames sent unlimited because the rate map was full (total).
    pub rate_untracked: u64,
    /// Storm-slot claims given back after losing a race (total).
    pub slot_races: u64,
    pub ktime_ns: u64,
}

/// Renames of one thread that the kernel counted instead of sending,
/// taken from its storm slot.
#[derive(Clone, Debug)]
pub struct StormSummary {
    pub tid: u32,
    pub tgid: u32,
    pub start_boottime_ns: u64,
    pub class: Class,
    pub count: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub last_name: [u8; TASK_COMM_LEN],
    pub thread_exited: bool,
}

/// One thing the capture stage hands to the rest of the pipeline.
#[derive(Clone, Debug)]
pub enum Record {
    Rename(RenameRecord),
    Fork(ForkRecord),
    Exec(Box<Exec>),
    Exit(ExitRecord),
    /// A mount was made, or a mount namespace has just been found: look
    /// for newly hidden processes.
    Mount(Mount),
    Summary(StormSummary),
    Lost {
        class: Class,
        reason: LostReason,
        count: u64,
        ktime_ns: u64,
    },
    Kernel(KernelState),
}

impl Record {
    /// Kernel monotonic time of the event, the pipeline's ordering key.
    pub fn ktime_ns(&self) -> u64 {
        match self {
            Record::Rename(r) => r.hdr.ktime_ns,
            Record::Fork(r) => r.hdr.ktime_ns,
            Record::Exec(r) => r.hdr.ktime_ns,
            Record::Exit(r) => r.hdr.ktime_ns,
            Record::Mount(m) => m.ktime_ns,
            Record::Summary(s) => s.last_seen_ns,
            Record::Lost { ktime_ns, .. } => *ktime_ns,
            Record::Kernel(k) => k.ktime_ns,
        }
    }
}

/// A reason to read mount tables again: a mount, seen by the kernel
/// programs (syscall exits) or by fanotify, or a process in a mount
/// namespace that nothing watches yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The process that mounted, or that is in the new namespace: its mount
    /// table is read.
    pub tgid: u32,
    /// When (kernel monotonic time).
    pub ktime_ns: u64,
    /// For a namespace found unwatched by the kernel: its inode number. The
    /// drain thread marks it before the record goes on.
    pub unwatched_ns: Option<u32>,
}

impl From<&MountRecord> for Mount {
    fn from(r: &MountRecord) -> Self {
        Self {
            tgid: r.tgid,
            ktime_ns: r.hdr.ktime_ns,
            unwatched_ns: None,
        }
    }
}

impl From<&MntNsRecord> for Mount {
    fn from(r: &MntNsRecord) -> Self {
        Self {
            tgid: r.tgid,
            ktime_ns: r.hdr.ktime_ns,
            unwatched_ns: Some(r.mnt_ns),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record kind {kind} needs {need} bytes, got {got}")]
    Truncated { kind: u32, need: usize, got: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

fn read<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Truncated {
            kind,
            need,
            got: bytes.len(),
        });
    }
    // SAFETY: length checked; T is a repr(C) Pod record valid for any bytes;
    // ring-buffer data is 8-byte aligned but read_unaligned does not rely on it.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// An exec record with only the bytes the kernel filled in of its three
/// buffers. The kernel's record is 4 KB, nearly all of it unused; keeping
/// it whole cost a large allocation and two copies per exec.
#[derive(Clone, Debug)]
pub struct Exec {
    pub hdr: RecordHeader,
    pub tgid: u32,
    pub uid: u32,
    pub start_boottime_ns: u64,
    /// The argument block (NUL-separated); empty if it could not be read.
    pub args: Vec<u8>,
    pub args_truncated: bool,
    pub exe_dev: u64,
    pub exe_ino: u64,
    /// Bits of `exe_flags`.
    pub exe_flags: u32,
    /// Path components, leaf first, each NUL-terminated.
    pub exe_path: Vec<u8>,
    pub cgroup_id: u64,
    /// Cgroup path components, leaf first, each NUL-terminated.
    pub cgroup_path: Vec<u8>,
    pub cgroup_path_truncated: bool,
    pub comm: [u8; TASK_COMM_LEN],
}

impl Exec {
    /// Decodes an exec record from the ring's bytes, copying only the used
    /// part of each buffer (a length the kernel got wrong is cut to the
    /// buffer).
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let need = size_of::<ExecRecord>();
        if bytes.len() < need {
            return Err(DecodeError::Truncated {
                kind: kind::EXEC,
                need,
                got: bytes.len(),
            });
        }
        let at = bytes.as_ptr().cast::<ExecRecord>();
        macro_rules! field {
            ($name:ident) => {
                // SAFETY: length checked above; only the field's bytes are
                // read, unaligned, and every field is a plain integer or
                // byte array, valid for any bytes.
                unsafe { std::ptr::addr_of!((*at).$name).read_unaligned() }
            };
        }
        let used = |offset: usize, len: u32, cap: usize| {
            bytes[offset..offset + (len as usize).min(cap)].to_vec()
        };
        Ok(Self {
            hdr: field!(hdr),
            tgid: field!(tgid),
            uid: field!(uid),
            start_boottime_ns: field!(start_boottime_ns),
            args: used(
                std::mem::offset_of!(ExecRecord, args),
                field!(args_len),
                ARGS_LEN,
            ),
            args_truncated: field!(args_truncated) != 0,
            exe_dev: field!(exe_dev),
            exe_ino: field!(exe_ino),
            exe_flags: field!(exe_flags),
            exe_path: used(
                std::mem::offset_of!(ExecRecord, exe_path),
                field!(exe_path_len),
                EXE_PATH_LEN + NAME_LEN,
            ),
            cgroup_id: field!(cgroup_id),
            cgroup_path: used(
                std::mem::offset_of!(ExecRecord, cgroup_path),
                field!(cgroup_path_len),
                CGROUP_PATH_LEN + NAME_LEN,
            ),
            cgroup_path_truncated: field!(cgroup_path_truncated) != 0,
            comm: field!(comm),
        })
    }
}

impl From<&ExecRecord> for Exec {
    fn from(r: &ExecRecord) -> Self {
        // SAFETY: a whole record viewed as its bytes (plain data).
        let bytes = unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(r).cast::<u8>(), size_of_val(r))
        };
        Self::decode(bytes).expect("a whole record decodes")
    }
}

pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.len() < size_of::<RecordHeader>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    let hdr: RecordHeader = read(bytes, 0)?;
    Ok(match hdr.kind {
        kind::RENAME => Record::Rename(read(bytes, hdr.kind)?),
        kind::FORK => Record::Fork(read(bytes, hdr.kind)?),
        kind::EXEC => Record::Exec(Box::new(Exec::decode(bytes)?)),
        kind::EXIT => Record::Exit(read(bytes, hdr.kind)?),
        kind::MOUNT => Record::Mount(Mount::from(&read::<MountRecord>(bytes, hdr.kind)?)),
        kind::MNT_NS => Record::Mount(Mount::from(&read::<MntNsRecord>(bytes, hdr.kind)?)),
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_rename_and_rejects_garbage() {
        // SAFETY: a `repr(C)` record of integers and byte arrays, for which
        // all zeroes is a valid value.
        let mut rec: RenameRecord = unsafe { std::mem::zeroed() };
        rec.hdr.kind = kind::RENAME;
        rec.hdr.ktime_ns = 42;
        rec.tid = 7;
        // SAFETY: the whole record viewed as its bytes (plain data).
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&rec as *const RenameRecord).cast::<u8>(),
                size_of_val(&rec),
            )
        };
        match decode(bytes) {
            Ok(Record::Rename(r)) => assert_eq!((r.tid, r.hdr.ktime_ns), (7, 42)),
            other => panic!("expected a rename, got {other:?}"),
        }
        assert_eq!(
            decode(&bytes[..20]).unwrap_err(),
            DecodeError::Truncated {
                kind: kind::RENAME,
                need: bytes.len(),
                got: 20
            }
        );
        assert_eq!(decode(&[0; 4]).unwrap_err(), DecodeError::Short(4));
        let mut odd = bytes.to_vec();
        odd[0] = 99;
        assert_eq!(decode(&odd).unwrap_err(), DecodeError::UnknownKind(99));
    }

    #[test]
    fn an_exec_record_keeps_only_the_bytes_the_kernel_filled_in() {
        // SAFETY: plain integers and byte arrays.
        let mut rec: ExecRecord = unsafe { std::mem::zeroed() };
        rec.hdr.kind = kind::EXEC;
        rec.tgid = 9;
        rec.args[..6].copy_from_slice(b"ls\0-l\0");
        rec.args_len = 6;
        rec.exe_path[..7].copy_from_slice(b"ls\0bin\0");
        rec.exe_path_len = 7;
        // A length past the buffer (a kernel-side bug) is cut to it.
        rec.cgroup_path_len = u32::MAX;
        rec.cgroup_path_truncated = 1;
        rec.comm[..2].copy_from_slice(b"ls");
        let exec = Exec::from(&rec);
        assert_eq!(exec.tgid, 9);
        assert_eq!(exec.args, b"ls\0-l\0");
        assert_eq!(exec.exe_path, b"ls\0bin\0");
        assert_eq!(exec.cgroup_path.len(), CGROUP_PATH_LEN + NAME_LEN);
        assert!(exec.cgroup_path_truncated);
        assert_eq!(&exec.comm[..3], b"ls\0");
        // SAFETY: the whole record viewed as its bytes (plain data).
        let bytes = unsafe {
            std::slice::from_raw_parts((&rec as *const ExecRecord).cast::<u8>(), size_of_val(&rec))
        };
        assert_eq!(
            decode(&bytes[..100]).unwrap_err(),
            DecodeError::Truncated {
                kind: kind::EXEC,
                need: bytes.len(),
                got: 100
            }
        );
    }
}
