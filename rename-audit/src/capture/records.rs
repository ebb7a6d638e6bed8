//! Decoding ring-buffer bytes into typed records.
use rename_audit_common::{
    ExecRecord, ExitRecord, ForkRecord, MountRecord, RecordHeader, RenameRecord, TASK_COMM_LEN,
    kind,
};

use crate::event::{Class, LostReason};

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
    Exec(Box<ExecRecord>),
    Exit(ExitRecord),
    /// A mount was made: look for newly hidden processes.
    Mount(MountRecord),
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
            Record::Mount(r) => r.hdr.ktime_ns,
            Record::Summary(s) => s.last_seen_ns,
            Record::Lost { ktime_ns, .. } => *ktime_ns,
            Record::Kernel(k) => k.ktime_ns,
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

pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.len() < size_of::<RecordHeader>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    let hdr: RecordHeader = read(bytes, 0)?;
    Ok(match hdr.kind {
        kind::RENAME => Record::Rename(read(bytes, hdr.kind)?),
        kind::FORK => Record::Fork(read(bytes, hdr.kind)?),
        kind::EXEC => Record::Exec(Box::new(read(bytes, hdr.kind)?)),
        kind::EXIT => Record::Exit(read(bytes, hdr.kind)?),
        kind::MOUNT => Record::Mount(read(bytes, hdr.kind)?),
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_rename_and_rejects_garbage() {
        let mut rec: RenameRecord = unsafe { std::mem::zeroed() };
        rec.hdr.kind = kind::RENAME;
        rec.hdr.ktime_ns = 42;
        rec.tid = 7;
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
}
