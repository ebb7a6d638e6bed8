//! The contract between rename-audit's kernel programs and its daemon.
//!
//! Every type here is `repr(C)`, has no implicit padding, and is copied byte for
//! byte through a BPF ring buffer, a BPF array or a read-only global. Kinds,
//! methods and classes are fixed numbers: changing one is a breaking change of
//! the record format.
//!
//! Times named `*_ns` are `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`)
//! unless the name says `boottime`, which is `CLOCK_BOOTTIME` nanoseconds as the
//! kernel keeps them in `task_struct.start_boottime`.
#![no_std]

/// Bytes in a task's `comm`, including the terminating NUL. A name holds at
/// most 15 bytes.
pub const TASK_COMM_LEN: usize = 16;
/// Bytes of the NUL-separated argument block that an exec record keeps
/// (and that the daemon keeps of a process found at start-up).
pub const ARGS_LEN: usize = 1024;
/// Bytes of executable path components an exec record holds at most (a
/// power of two: the kernel programs mask write offsets with it).
pub const EXE_PATH_LEN: usize = 2048;
/// Bytes one path component takes at most, with its NUL (`NAME_MAX` + 1).
pub const NAME_LEN: usize = 256;
/// Dentries and mount crossings walked at most to build a path.
pub const EXE_PATH_DEPTH: u32 = 48;
/// Bytes of cgroup path components an exec record holds at most (a power
/// of two, as [`EXE_PATH_LEN`]).
pub const CGROUP_PATH_LEN: usize = 512;
/// Cgroup levels walked at most.
pub const CGROUP_PATH_DEPTH: u32 = 16;

/// `RecordHeader::kind` values.
pub mod kind {
    /// A [`RenameRecord`](super::RenameRecord).
    pub const RENAME: u32 = 1;
    /// A [`ForkRecord`](super::ForkRecord): a new process (never a new thread).
    pub const FORK: u32 = 2;
    /// An [`ExecRecord`](super::ExecRecord).
    pub const EXEC: u32 = 3;
    /// An [`ExitRecord`](super::ExitRecord).
    pub const EXIT: u32 = 4;
    /// A [`MountRecord`](super::MountRecord).
    pub const MOUNT: u32 = 5;
    /// A [`MntNsRecord`](super::MntNsRecord).
    pub const MNT_NS: u32 = 6;
}

/// How a rename was done (`RenameRecord::method`, one byte on the wire).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `prctl(PR_SET_NAME)` (also `pthread_setname_np` on the calling thread).
    Prctl = 1,
    /// A write to a procfs `comm` file (`/proc/<pid>/comm`, `.../task/<tid>/comm`):
    /// a user task renaming a task of its own process in a syscall that is
    /// neither prctl nor exec.
    Procfs = 2,
    /// `execve`: the kernel names the task after the new executable.
    Exec = 3,
    /// The kernel renamed the task itself (kthread naming, io_uring workers, ...).
    Kernel = 4,
}

impl Method {
    /// Every method, in the order of their numbers.
    pub const ALL: [Method; 4] = [Method::Prctl, Method::Procfs, Method::Exec, Method::Kernel];

    /// The method with wire number `n`, if there is one.
    pub const fn from_wire(n: u8) -> Option<Method> {
        match n {
            method::PRCTL => Some(Method::Prctl),
            method::PROCFS => Some(Method::Procfs),
            method::EXEC => Some(Method::Exec),
            method::KERNEL => Some(Method::Kernel),
            _ => None,
        }
    }

    /// Its name in the daemon's output (`rename.method`, metric labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Prctl => "prctl",
            Method::Procfs => "procfs",
            Method::Exec => "exec",
            Method::Kernel => "kernel",
        }
    }
}

/// [`Method`]'s numbers, as the kernel programs write them.
pub mod method {
    use super::Method;
    pub const PRCTL: u8 = Method::Prctl as u8;
    pub const PROCFS: u8 = Method::Procfs as u8;
    pub const EXEC: u8 = Method::Exec as u8;
    pub const KERNEL: u8 = Method::Kernel as u8;
}

/// Accounting class of a record. Every rename belongs to exactly one of the
/// first two; lifecycle records have their own class so their loss is
/// reported apart. The kernel counts losses of the first [`class::COUNT`]
/// (the first index of the `LOST` counters); [`Class::Output`] is the
/// daemon's alone.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// A main thread (tid == tgid) was renamed: the process name changed.
    Process = 0,
    /// Any other thread was renamed.
    Thread = 1,
    /// Fork, exec and exit records.
    Lifecycle = 2,
    /// A rename whose renamed task could not be read, so neither of the
    /// first two can be told: only ever counted as lost.
    Unknown = 3,
    /// Records the daemon could not write to its output (disk full, ...).
    /// Daemon-side only: the kernel never uses this number.
    Output = 4,
    /// Records a sink (syslog, Alertmanager) could not deliver: they are in
    /// the output, but not at the sink. Daemon-side only.
    Sink = 5,
}

impl Class {
    /// The classes the kernel counts losses of (`LOST` map), in its order.
    pub const KERNEL: [Class; class::COUNT as usize] = [
        Class::Process,
        Class::Thread,
        Class::Lifecycle,
        Class::Unknown,
    ];

    /// Every class: the kernel's, then `output` and `sink`.
    pub const ALL: [Class; 6] = [
        Class::Process,
        Class::Thread,
        Class::Lifecycle,
        Class::Unknown,
        Class::Output,
        Class::Sink,
    ];

    /// Its name in the daemon's output and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Process => "process",
            Class::Thread => "thread",
            Class::Lifecycle => "lifecycle",
            Class::Unknown => "unknown",
            Class::Output => "output",
            Class::Sink => "sink",
        }
    }

    /// Its number in the kernel's `LOST` counters; `None` for `Output` and
    /// `Sink`, which only the daemon counts.
    pub const fn index(self) -> Option<u32> {
        match self {
            Class::Output | Class::Sink => None,
            kernel => Some(kernel as u32),
        }
    }
}

/// [`Class`]'s numbers, as the kernel programs use them.
pub mod class {
    use super::Class;
    pub const PROCESS: u32 = Class::Process as u32;
    pub const THREAD: u32 = Class::Thread as u32;
    pub const LIFECYCLE: u32 = Class::Lifecycle as u32;
    pub const UNKNOWN: u32 = Class::Unknown as u32;
    /// Number of classes the kernel counts.
    pub const COUNT: u32 = 4;
}

/// Why a record was lost: the kernel could not send it (the second index of
/// the `LOST` counters, the first [`lost_reason::COUNT`] reasons), or the
/// daemon could not write it ([`LostReason::WriteFailed`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LostReason {
    /// The ring had no room (or, for lifecycle records, no room outside the
    /// share kept for process renames).
    RingFull = 0,
    /// A rename above its thread's rate found no free storm slot to be
    /// counted in.
    NoStormSlot = 1,
    /// The task's ids could not be read.
    TaskUnreadable = 2,
    /// The output could not be written (full disk, broken pipe, backlog
    /// cap, or unwritable at exit). Daemon-side only, always with class
    /// [`Class::Output`]: the kernel never uses this number.
    WriteFailed = 3,
    /// A sink's queue was full. This and the reasons below are daemon-side
    /// only, always with class [`Class::Sink`].
    QueueFull = 4,
    /// A sink gave up after its retries (the server down or refusing).
    SendFailed = 5,
    /// The message is larger than the socket takes (`EMSGSIZE`): sending it
    /// again cannot help, and cutting it would corrupt it.
    TooBig = 6,
    /// Still queued when the daemon stopped and the sink's time was up.
    Shutdown = 7,
}

impl LostReason {
    /// The reasons the kernel counts losses for (`LOST` map), in its order.
    pub const KERNEL: [LostReason; lost_reason::COUNT as usize] = [
        LostReason::RingFull,
        LostReason::NoStormSlot,
        LostReason::TaskUnreadable,
    ];

    /// Its name in the daemon's output and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            LostReason::RingFull => "ring-full",
            LostReason::NoStormSlot => "no-storm-slot",
            LostReason::TaskUnreadable => "task-unreadable",
            LostReason::WriteFailed => "write-failed",
            LostReason::QueueFull => "queue-full",
            LostReason::SendFailed => "send-failed",
            LostReason::TooBig => "too-big",
            LostReason::Shutdown => "shutdown",
        }
    }

    /// The reasons a sink loses records for, with class [`Class::Sink`].
    pub const SINK: [LostReason; 4] = [
        LostReason::QueueFull,
        LostReason::SendFailed,
        LostReason::TooBig,
        LostReason::Shutdown,
    ];

    /// Its number in the kernel's `LOST` counters; `None` for the reasons
    /// only the daemon counts.
    pub const fn index(self) -> Option<u32> {
        match self {
            LostReason::WriteFailed
            | LostReason::QueueFull
            | LostReason::SendFailed
            | LostReason::TooBig
            | LostReason::Shutdown => None,
            kernel => Some(kernel as u32),
        }
    }
}

/// [`LostReason`]'s numbers, as the kernel programs use them.
pub mod lost_reason {
    use super::LostReason;
    pub const RING_FULL: u32 = LostReason::RingFull as u32;
    pub const NO_STORM_SLOT: u32 = LostReason::NoStormSlot as u32;
    pub const TASK_UNREADABLE: u32 = LostReason::TaskUnreadable as u32;
    /// Number of reasons the kernel counts.
    pub const COUNT: u32 = 3;
}

/// Index into the per-CPU `LOST` counters (`class::COUNT * lost_reason::COUNT`
/// entries) of records of `class` lost for `reason`.
pub const fn lost_index(class: u32, reason: u32) -> u32 {
    class * lost_reason::COUNT + reason
}

/// Index of the per-CPU `FAULTS` counters: things that went wrong in the
/// kernel without losing a record.
pub mod fault {
    /// A rename was sent without a rate limit because the thread's rate
    /// state could not be created (no memory; before Linux 6.2 also when
    /// another task-storage operation was in progress on the CPU).
    pub const RATE_UNTRACKED: u32 = 0;
    /// Two renames of one thread raced to claim a storm slot; the loser gave
    /// its slot back (diagnostics: shows the race happens).
    pub const SLOT_RACE_LOST: u32 = 1;
    /// Number of fault counters.
    pub const COUNT: u32 = 2;
}

/// `RenameRecord::flags` bits.
pub mod rename_flags {
    /// The renamed task is a kernel thread (`PF_KTHREAD`).
    pub const RENAMED_KTHREAD: u8 = 1;
    /// The writer (current task) is a kernel thread or a kernel-run worker
    /// of a user process (io_uring, vhost).
    pub const WRITER_KERNEL: u8 = 2;
    /// The renamed task's executable has been deleted since its exec (a
    /// dropper that removes itself): its path now ends in " (deleted)".
    pub const EXE_DELETED: u8 = 4;
}

/// `ExecRecord::exe_flags` bits.
pub mod exe_flags {
    /// The file has no name any more (deleted, or never had one, as a memfd).
    pub const DELETED: u32 = 1;
    /// The walk stopped before the root (too deep, or more than
    /// [`EXE_PATH_LEN`](super::EXE_PATH_LEN) bytes): the path holds only its
    /// last components.
    pub const TRUNCATED: u32 = 2;
    /// The task had no executable to read (no `mm` or no `exe_file`).
    pub const UNREADABLE: u32 = 4;
}

/// `ExitRecord::flags` bits.
pub mod exit_flags {
    /// The last thread of the process exited: the process is gone.
    pub const GROUP_DEAD: u32 = 1;
}

/// First bytes of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`kind`].
    pub kind: u32,
    /// The CPU the record was written on (diagnostics only).
    pub cpu: u32,
    /// When the kernel saw the event, monotonic ns.
    pub ktime_ns: u64,
}

/// One rename of one task, taken from the renamed task itself.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RenameRecord {
    pub hdr: RecordHeader,
    /// Thread id of the renamed task.
    pub tid: u32,
    /// Thread-group id (process id) of the renamed task.
    pub tgid: u32,
    /// Thread id of the task that caused the rename (the current task).
    pub writer_tid: u32,
    /// Process id of the writer.
    pub writer_tgid: u32,
    /// `start_boottime` of the renamed task's thread-group leader: with `tgid`
    /// it names the process in a way pid reuse cannot confuse.
    pub start_boottime_ns: u64,
    /// A [`Method`]'s number.
    pub method: u8,
    /// Bits of [`rename_flags`].
    pub flags: u8,
    pub _pad: [u8; 6],
    /// The renamed task's name before the rename, NUL-padded.
    pub old_name: [u8; TASK_COMM_LEN],
    /// The name after the rename, truncated to 15 bytes as the kernel does.
    pub new_name: [u8; TASK_COMM_LEN],
    /// The writer's name at the time of the rename.
    pub writer_name: [u8; TASK_COMM_LEN],
    /// Id of the renamed task's cgroup (v2): the inode number of its
    /// directory under the cgroup2 mount; 0 if unreadable.
    pub cgroup_id: u64,
}

/// A new process was created by fork/clone without `CLONE_THREAD`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkRecord {
    pub hdr: RecordHeader,
    /// Process id of the child.
    pub tgid: u32,
    /// Process id of the child's parent (`real_parent`).
    pub parent_tgid: u32,
    /// `start_boottime` of the child.
    pub start_boottime_ns: u64,
    /// `start_boottime` of the parent's thread-group leader.
    pub parent_start_boottime_ns: u64,
    /// Real uid of the child.
    pub uid: u32,
    pub _pad: u32,
    /// The child's name, inherited from the thread that forked.
    pub comm: [u8; TASK_COMM_LEN],
}

/// A successful exec, describing the new image. The rename that exec does is
/// a separate [`RenameRecord`] with method [`method::EXEC`] that precedes
/// this one in the same ring.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecRecord {
    pub hdr: RecordHeader,
    /// Process id (unchanged by exec).
    pub tgid: u32,
    /// Real uid after exec.
    pub uid: u32,
    /// `start_boottime` of the process (unchanged by exec).
    pub start_boottime_ns: u64,
    /// Valid bytes in `args`; 0 if the arguments could not be read.
    pub args_len: u32,
    /// The whole argument block was longer than `args` holds.
    pub args_truncated: u32,
    /// Device of the executable's file system (`super_block.s_dev`, in the
    /// kernel's encoding: major << 20 | minor).
    pub exe_dev: u64,
    /// Inode number of the executable.
    pub exe_ino: u64,
    /// Bits of [`exe_flags`].
    pub exe_flags: u32,
    /// Valid bytes in `exe_path`.
    pub exe_path_len: u32,
    /// Cgroup (v2) id of the process after exec, as in [`RenameRecord`].
    pub cgroup_id: u64,
    /// Valid bytes in `cgroup_path`.
    pub cgroup_path_len: u32,
    /// The cgroup walk stopped before the root: `cgroup_path` holds only
    /// the last components.
    pub cgroup_path_truncated: u32,
    /// The name after exec.
    pub comm: [u8; TASK_COMM_LEN],
    /// The new argument block: NUL-separated arguments, possibly cut short.
    pub args: [u8; ARGS_LEN],
    /// The executable the new image runs (`mm->exe_file`), as its path
    /// components from the file up to the root of the task's mount tree,
    /// each NUL-terminated: `sleep\0bin\0usr\0` is `/usr/bin/sleep`. Every
    /// symlink is resolved (these are the names of the file itself). The
    /// last [`NAME_LEN`] bytes are scratch space for the kernel's writes.
    pub exe_path: [u8; EXE_PATH_LEN + NAME_LEN],
    /// The process's cgroup (v2) after exec, as components from its own up
    /// to (not including) the root, each NUL-terminated, like `exe_path`.
    pub cgroup_path: [u8; CGROUP_PATH_LEN + NAME_LEN],
}

/// A task exited. Sent when the whole process exits and when a thread that
/// renamed itself at least once exits (so per-thread state can be freed).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitRecord {
    pub hdr: RecordHeader,
    pub tid: u32,
    pub tgid: u32,
    /// `start_boottime` of the process's thread-group leader.
    pub start_boottime_ns: u64,
    /// Bits of [`exit_flags`].
    pub flags: u32,
    pub _pad: u32,
}

/// A mount syscall (`mount`, `move_mount`) succeeded. The daemon then reads
/// the mount table again, to find a `/proc/<pid>` with something mounted
/// over it: a process hidden from `ps`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MountRecord {
    pub hdr: RecordHeader,
    /// Thread and process id of the task that mounted.
    pub tid: u32,
    pub tgid: u32,
}

/// A new process, or an exec, in a mount namespace the daemon may not know.
/// Sent as [`Settings::watch_mnt_ns`] says: with [`watch_mnt_ns::UNMARKED`]
/// when no fanotify mark watches the namespace for mount attach
/// (`mnt_namespace.n_fsnotify_mask` lacks [`FS_MNT_ATTACH`]; the daemon then
/// marks it), with [`watch_mnt_ns::CHANGED`] when the process is in another
/// namespace than its parent (the daemon then polls the namespace's mount
/// table). Either way the daemon reads the namespace's mount table once.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MntNsRecord {
    pub hdr: RecordHeader,
    /// Process id of the process in the namespace.
    pub tgid: u32,
    /// The namespace's inode number (`ns_common.inum`), as
    /// `/proc/<pid>/ns/mnt` shows it.
    pub mnt_ns: u32,
}

/// fsnotify's event bit for a mount attached to a namespace
/// (include/linux/fsnotify_backend.h, Linux 6.15+; the same value as
/// fanotify's `FAN_MNT_ATTACH`).
pub const FS_MNT_ATTACH: u32 = 0x0100_0000;

/// Per-thread storm state, a slot of the memory-mapped `STORMS` array.
///
/// The kernel claims a free slot (`owner_tid` 0 -> tid, compare-and-swap)
/// the first time a thread exceeds its rate and from then on only adds to
/// `pending`. The daemon takes the count with an atomic swap to 0 and writes it
/// out as one summary, so a count is in exactly one summary. When the thread
/// exits the kernel sets `exited`; the daemon then takes the last count and
/// frees the slot by storing 0 in `owner_tid`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StormSlot {
    /// Thread that owns the slot; 0 when free. 64 bits wide because BPF has
    /// 64-bit compare-and-swap on every ISA version.
    pub owner_tid: u64,
    /// Set to 1 by the kernel when the owner exits.
    pub exited: u64,
    /// Renames counted but not yet summarized.
    pub pending: u64,
    /// Renames of the owner sent on their own since its last counted rename
    /// (every counted rename sets it back to 0). While it is 0 the owner
    /// still bears the name its last counted rename set, so the daemon reads
    /// that from procfs instead of the kernel copying every name.
    pub tail_sent: u64,
    /// First counted rename since `pending` was last 0 (approximate).
    pub first_seen_ns: u64,
    /// Most recent counted rename, to within one clock tick (the kernel
    /// reads the clock at most once a tick for a thread over its rate).
    pub last_seen_ns: u64,
    /// `start_boottime` of the owner's process (with `tgid`, its key).
    pub start_boottime_ns: u64,
    /// Its process id.
    pub tgid: u32,
    /// [`Class::Process`] or [`Class::Thread`], as its number.
    pub class: u32,
    /// Name set by the most recent counted rename, once the owner has
    /// exited or sent a rename again (`tail_sent` above 0): the kernel copies
    /// the owner's name at that point. Before that, the name set by the
    /// first counted rename of the latest clock tick, which the daemon uses
    /// only when it cannot read the name from procfs unchanged.
    pub last_name: [u8; TASK_COMM_LEN],
}

/// Per-thread rate state (`RATE`, task-local storage of the thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RateState {
    /// GCRA theoretical arrival time, monotonic ns.
    pub tat_ns: u64,
    /// Index + 1 of the thread's [`StormSlot`]; 0 when it has none. Set
    /// once with a compare-and-swap, which BPF has for 64 bits on every ISA
    /// version, hence the width.
    pub slot: u64,
    /// `jiffies` + 1 of the tick in which the thread was last found over its
    /// rate; 0 when it was not. Further renames in that tick are counted
    /// without reading the clock, which costs more than the rest of the
    /// decision (a send can come up to one tick late, never early).
    pub over_until_jiffies: u64,
    /// Monotonic ns of the thread's last clock read: the time of the renames
    /// counted without one.
    pub clock_ns: u64,
}

/// Field offsets inside kernel structures, read from the running kernel's BTF
/// by the daemon and handed to the kernel programs as a read-only global.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOffsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_comm: u32,
    pub task_flags: u32,
    pub task_group_leader: u32,
    pub task_real_parent: u32,
    pub task_start_boottime: u32,
    pub task_mm: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    /// `pt_regs` field holding the number of the syscall in progress
    /// (`orig_ax` on x86_64).
    pub regs_syscall_nr: u32,
    /// `task_struct.signal` (the thread group's shared `signal_struct`).
    pub task_signal: u32,
    /// `signal_struct.live`: threads of the group that have not yet passed
    /// the exit point (an `atomic_t`, whose counter is its first field).
    pub signal_live: u32,
    /// `mm_struct.exe_file`.
    pub mm_exe_file: u32,
    /// `file.f_path.mnt` and `file.f_path.dentry`.
    pub file_path_mnt: u32,
    pub file_path_dentry: u32,
    /// `file.f_inode`.
    pub file_inode: u32,
    /// `inode.i_ino`, `inode.i_sb`.
    pub inode_ino: u32,
    pub inode_sb: u32,
    /// `super_block.s_dev`.
    pub sb_dev: u32,
    /// `dentry.d_parent`.
    pub dentry_parent: u32,
    /// `dentry.d_name.name`.
    pub dentry_name: u32,
    /// `dentry.d_hash.pprev`: NULL when the dentry is unhashed (deleted).
    pub dentry_hash_pprev: u32,
    /// `mount.mnt`: the `vfsmount` embedded in a `struct mount`.
    pub mount_mnt: u32,
    /// `mount.mnt_parent`, `mount.mnt_mountpoint`.
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    /// `vfsmount.mnt_root`.
    pub vfsmount_root: u32,
    /// `task_struct.cgroups`, `css_set.dfl_cgrp`, `cgroup.kn`, `kernfs_node.id`.
    pub task_cgroups: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    /// `kernfs_node.name`, `kernfs_node.parent` (`__parent` from 6.15).
    pub kernfs_node_name: u32,
    pub kernfs_node_parent: u32,
    /// Offset of `ret` in the syscall exit tracepoints' records (from the
    /// tracefs format file of `syscalls/sys_exit_mount`).
    pub syscall_exit_ret: u32,
    /// `task_struct.nsproxy`, `nsproxy.mnt_ns`.
    pub task_nsproxy: u32,
    pub nsproxy_mnt_ns: u32,
    /// `mnt_namespace.ns.inum`.
    pub mnt_ns_inum: u32,
    /// `mnt_namespace.n_fsnotify_mask` (Linux 6.15+, with fanotify's mount
    /// events); 0 where the kernel has no such field.
    pub mnt_ns_fsnotify_mask: u32,
}

/// How the rename that exec does is recognized (`Settings::exec_detect`).
/// The daemon picks one from the running kernel's BTF before loading.
pub mod exec_detect {
    /// As [`SYSCALL`], and `sched_prepare_exec` (Linux 6.10+) marks the
    /// execs outside `execve`/`execveat` (the kernel's own, 32-bit
    /// syscalls); their rename takes the mark.
    pub const PREPARE_EXEC: u32 = 0;
    /// No `sched_prepare_exec`: exec renames only the task that runs it, from
    /// inside `execve`/`execveat`, so the writer renaming itself inside one
    /// of those syscalls is an exec.
    pub const SYSCALL: u32 = 1;
}

/// Run-time settings of the kernel programs (the `SETTINGS` global).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub offsets: KernelOffsets,
    /// GCRA emission interval for non-main threads: 1e9 / rate.
    pub thread_interval_ns: u64,
    /// GCRA tolerance for non-main threads: interval * (burst - 1).
    pub thread_tolerance_ns: u64,
    /// Same, for main threads (process renames).
    pub process_interval_ns: u64,
    pub process_tolerance_ns: u64,
    /// Wake the daemon when a ring holds at least this many bytes; smaller
    /// fills are picked up by its periodic poll.
    pub wakeup_bytes: u64,
    /// Lifecycle records are only reserved in the priority ring while it holds
    /// less than this many bytes: the rest is kept for process renames.
    pub lifecycle_limit_bytes: u64,
    /// Entries in the `STORMS` array.
    pub storm_slots: u32,
    /// This architecture's syscall number of `prctl`.
    pub nr_prctl: u32,
    /// One of [`exec_detect`].
    pub exec_detect: u32,
    /// This architecture's syscall numbers of `execve` and `execveat`
    /// (used when `exec_detect` is [`exec_detect::SYSCALL`]).
    pub nr_execve: u32,
    pub nr_execveat: u32,
    /// `task_struct.flags` bits that mark a kernel thread or a kernel-run
    /// worker of a user process on this kernel (`PF_KTHREAD`, and
    /// `PF_IO_WORKER` / `PF_USER_WORKER` where the kernel has them: the same
    /// bit meant something else before).
    pub kernel_worker_flags: u32,
    /// This architecture's syscall numbers of `mount` and `move_mount`
    /// (used by `mount_exit_raw`, which sees every syscall's exit).
    pub nr_mount: u32,
    pub nr_move_mount: u32,
    /// One of [`watch_mnt_ns`]: when the fork and exec hooks send a
    /// [`MntNsRecord`].
    pub watch_mnt_ns: u32,
    pub _pad: u32,
}

/// When the fork and exec hooks report a process's mount namespace
/// (`Settings::watch_mnt_ns`), as the daemon's mount watch needs.
pub mod watch_mnt_ns {
    /// Never: the mount watch needs no namespace (kernel hooks see every
    /// mount).
    pub const NONE: u32 = 0;
    /// fanotify: while no mark watches the namespace for mount attach.
    pub const UNMARKED: u32 = 1;
    /// Polled mount tables: when the process is in another namespace than
    /// its parent (clone with CLONE_NEWNS; unshare or setns, then exec).
    pub const CHANGED: u32 = 2;
}

/// `task_struct.flags` bits (include/linux/sched.h). Not in BTF, so the
/// daemon decides from BTF which of them the running kernel defines.
pub mod task_flags {
    /// io_uring worker (Linux 5.12+).
    pub const PF_IO_WORKER: u32 = 0x0000_0010;
    /// vhost and other user workers (Linux 6.4+); unused before.
    pub const PF_USER_WORKER: u32 = 0x0000_4000;
    /// A kernel thread.
    pub const PF_KTHREAD: u32 = 0x0020_0000;
}

/// Map names, shared so the two sides cannot disagree.
pub mod maps {
    /// Ring for process renames and lifecycle records.
    pub const PRIORITY_RING: &str = "PRIORITY_RING";
    /// Ring for thread renames.
    pub const THREAD_RING: &str = "THREAD_RING";
    /// Per-CPU `u64[class::COUNT * lost_reason::COUNT]` of records that could
    /// not be sent, indexed by [`lost_index`](super::lost_index).
    pub const LOST: &str = "LOST";
    /// Per-CPU `u64[fault::COUNT]`.
    pub const FAULTS: &str = "FAULTS";
    /// Memory-mapped array of [`StormSlot`](super::StormSlot).
    pub const STORMS: &str = "STORMS";
    /// Task-local storage of [`RateState`](super::RateState).
    pub const RATE: &str = "RATE";
    /// The global holding [`Settings`](super::Settings).
    pub const SETTINGS: &str = "SETTINGS";
}

/// Default number of storm slots (threads summarized at the same time).
pub const STORM_SLOTS: u32 = 4096;

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are repr(C), made only of integers and byte arrays,
    // with explicit padding, so every bit pattern is valid.
    unsafe impl aya::Pod for RecordHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RenameRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ForkRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ExecRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ExitRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for MountRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for StormSlot {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RateState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for KernelOffsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Settings {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::mem::size_of;

    #[test]
    fn wire_numbers_are_fixed() {
        assert_eq!(
            [method::PRCTL, method::PROCFS, method::EXEC, method::KERNEL],
            [1, 2, 3, 4]
        );
        assert_eq!(
            [
                class::PROCESS,
                class::THREAD,
                class::LIFECYCLE,
                class::UNKNOWN
            ],
            [0, 1, 2, 3]
        );
        assert_eq!(
            [
                lost_reason::RING_FULL,
                lost_reason::NO_STORM_SLOT,
                lost_reason::TASK_UNREADABLE
            ],
            [0, 1, 2]
        );
        for m in Method::ALL {
            assert_eq!(Method::from_wire(m as u8), Some(m));
        }
        assert_eq!(Method::from_wire(0), None);
        assert_eq!(Class::KERNEL.map(|c| c.index()), [0, 1, 2, 3].map(Some));
        assert_eq!(Class::Output.index(), None);
        assert_eq!(LostReason::KERNEL.map(|r| r.index()), [0, 1, 2].map(Some));
        assert_eq!(LostReason::WriteFailed.index(), None);
    }

    #[test]
    fn records_have_no_hidden_padding() {
        assert_eq!(size_of::<RecordHeader>(), 16);
        assert_eq!(size_of::<RenameRecord>(), 16 + 24 + 8 + 48 + 8);
        assert_eq!(size_of::<ForkRecord>(), 16 + 32 + 16);
        assert_eq!(size_of::<ExitRecord>(), 16 + 24);
        assert_eq!(size_of::<MountRecord>(), 16 + 8);
        assert_eq!(size_of::<MntNsRecord>(), 16 + 8);
        assert_eq!(size_of::<StormSlot>(), 80);
        assert_eq!(size_of::<RateState>(), 32);
        assert_eq!(size_of::<KernelOffsets>(), 38 * 4);
        assert_eq!(size_of::<Settings>(), 38 * 4 + 6 * 8 + 10 * 4);
        assert_eq!(
            size_of::<ExecRecord>(),
            16 + 16
                + 8
                + 16
                + 8
                + 8
                + 8
                + TASK_COMM_LEN
                + ARGS_LEN
                + EXE_PATH_LEN
                + NAME_LEN
                + CGROUP_PATH_LEN
                + NAME_LEN
        );
    }
}
