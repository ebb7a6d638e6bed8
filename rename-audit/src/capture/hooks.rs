//! The kernel hooks, in one table: each program, where it attaches, what the
//! kernel must have for it, which variant it is and the privilege it needs.
//!
//! Everything else reads its facts from here: the preflight check (the
//! privilege), [`super::kernel`] (the refusal of a kernel that lacks a
//! requirement, the variant picked for each hook), the loader
//! ([`super::Capture::attach`]), and docs/kernels.md, whose hook table is
//! [`markdown`]'s output (a test keeps them equal). The kernel programs
//! (rename-audit-ebpf) say the same next to each hook, in prose; this table is
//! the one enforced.
//!
//! This module is data only: it imports nothing from the rest of the daemon,
//! so everything that reads it sits above it.
use rename_audit_common::task_flags::{PF_IO_WORKER, PF_KTHREAD, PF_USER_WORKER};

/// Capabilities (include/uapi/linux/capability.h).
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// How the rename that exec does is told apart (in the `task_rename` hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecRename {
    /// `sched_prepare_exec` marks the task (Linux 6.10+).
    PrepareExec,
    /// The task renames itself inside execve/execveat (any kernel).
    Syscall,
}

/// How `sched_process_exit` learns that the whole process is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessExit {
    /// The tracepoint's own `group_dead` argument (kernels from 2025 on).
    GroupDeadArg,
    /// `task->signal->live` reaching 0 (any kernel).
    SignalLive,
}

/// How mounts made while the daemon runs are seen, chosen before loading.
/// The first three put nothing on any syscall; the syscall hooks are the
/// last resort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountWatch {
    /// fanotify's mount events (Linux 6.15+, CAP_SYS_ADMIN): no program on
    /// any syscall; each mount namespace is marked (`mounts.rs`).
    Fanotify,
    /// `fexit` on the kernel's mount code (`path_mount`, `do_move_mount`):
    /// runs only when something mounts. Needs BPF trampolines; attaches
    /// without perf_event_open, so at any `perf_event_paranoid`.
    Fexit,
    /// poll(2) on `/proc/<pid>/mountinfo` of one process in each mount
    /// namespace (`mount_tables.rs`): the kernel flags a change of the
    /// namespace's table. No program at all; the fork and exec hooks report
    /// processes that change namespace.
    MountTables,
    /// `syscalls/sys_exit_mount` and `sys_exit_move_mount`: the program runs
    /// for those two syscalls only. They attach through perf_event_open.
    SyscallTracepoints,
    /// `tp_btf/sys_exit`, filtered by syscall number in the kernel: attaches
    /// without perf_event_open, but runs at the exit of every syscall.
    RawSysExit,
}

impl ExecRename {
    /// The variant's name in the start-up log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrepareExec => "sched_prepare_exec",
            Self::Syscall => "execve-syscall",
        }
    }
}

impl ProcessExit {
    /// The variant's name in the start-up log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GroupDeadArg => "group_dead-argument",
            Self::SignalLive => "signal-live-count",
        }
    }
}

impl MountWatch {
    /// The variant's name in the start-up log line.
    pub fn as_str(self) -> &'static str {
        match self {
            MountWatch::Fanotify => "fanotify",
            MountWatch::Fexit => "fexit",
            MountWatch::MountTables => "mount-table-poll",
            MountWatch::SyscallTracepoints => "syscall-tracepoints",
            MountWatch::RawSysExit => "raw-sys-exit",
        }
    }

    /// Whether it puts a program on syscalls: the exit of every syscall
    /// takes the kernel's slower path then, on every task of the host.
    pub fn per_syscall(self) -> bool {
        matches!(
            self,
            MountWatch::SyscallTracepoints | MountWatch::RawSysExit
        )
    }

    /// The mount watches this process may use, best first, in table order:
    /// each whose privilege `caps` grant and that the kernel offers
    /// (`fanotify`: the group opened and marked the daemon's namespace;
    /// `fexit`: the kernel's BTF has the mount functions). The caller
    /// attaches the first that works. Debian's kernels add a
    /// `kernel.perf_event_paranoid` level 3, their default, at which only
    /// CAP_SYS_ADMIN may call perf_event_open, which the syscall
    /// tracepoints attach through; the shipped unit does not grant it, and
    /// needs neither: fexit and the polled mount tables do without. The
    /// last row needs no more than loading does, and always ends the list.
    pub fn candidates(fanotify: bool, fexit: bool, caps: &Caps) -> Vec<Self> {
        let mut watches: Vec<Self> = HOOKS
            .iter()
            .filter_map(|hook| match hook.variant {
                Variant::MountWatch(watch) => Some((watch, hook.privilege)),
                _ => None,
            })
            .filter(|&(watch, privilege)| match watch {
                MountWatch::Fanotify => fanotify,
                MountWatch::Fexit => fexit && privilege.granted(caps),
                _ => privilege.granted(caps),
            })
            .map(|(watch, _)| watch)
            .collect();
        watches.dedup();
        if watches.last() != Some(&MountWatch::RawSysExit) {
            watches.push(MountWatch::RawSysExit);
        }
        watches
    }
}

/// A question asked of the running kernel's BTF before anything is loaded
/// (answered by [`super::kernel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The BTF tracepoint `btf_trace_<name>` exists and passes at least
    /// this many arguments, the context included.
    Tracepoint(&'static str, usize),
    /// `enum <0>` has the value `<1>`.
    EnumValue(&'static str, &'static str),
    /// `struct <0>` has the member `<1>`.
    Member(&'static str, &'static str),
    /// The kernel function `<0>` is in BTF (not inlined away).
    Function(&'static str),
    /// Not in BTF: found out when attaching (tracefs, perf_event_open).
    AtAttach,
}

/// Something a hook needs from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// What it is, as a refusal names it ("its kernel lacks {what}").
    pub what: &'static str,
    /// The first Linux release with it (a year where the release is not
    /// pinned down).
    pub since: &'static str,
    pub check: Check,
}

impl Requirement {
    /// "(Linux 5.15)", as the refusal and the docs put it.
    pub fn when(&self) -> String {
        if self.since.contains('.') {
            format!("(Linux {})", self.since)
        } else {
            format!("(kernels from {})", self.since)
        }
    }
}

const fn tracepoint(what: &'static str, name: &'static str) -> Requirement {
    Requirement {
        what,
        since: "5.5",
        check: Check::Tracepoint(name, 1),
    }
}

const RINGBUF: Requirement = Requirement {
    what: "BPF ring buffers (BPF_MAP_TYPE_RINGBUF)",
    since: "5.8",
    check: Check::EnumValue("bpf_map_type", "BPF_MAP_TYPE_RINGBUF"),
};

/// The current task's syscall number (prctl and exec are told apart by it).
const TASK_PT_REGS: Requirement = Requirement {
    what: "the bpf_task_pt_regs helper",
    since: "5.15",
    check: Check::EnumValue("bpf_func_id", "BPF_FUNC_task_pt_regs"),
};

/// fexit programs run from a trampoline the kernel patches into the
/// function, which some kernels do not allow (a locked-down or
/// ftrace-restricted host refuses it): only attaching tells.
const TRAMPOLINES: Requirement = Requirement {
    what: "BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS)",
    since: "5.5",
    check: Check::AtAttach,
};

/// An fexit program reads the function's return value (failed mounts are
/// not reported).
const FUNC_RET: Requirement = Requirement {
    what: "the bpf_get_func_ret helper",
    since: "5.17",
    check: Check::EnumValue("bpf_func_id", "BPF_FUNC_get_func_ret"),
};

/// Where a hook's program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// `tp_btf/<name>`, through BPF_RAW_TRACEPOINT_OPEN.
    BtfTracepoint(&'static str),
    /// `tracepoint/<category>/<name>` for each name, through
    /// perf_event_open; the record layout is in tracefs.
    Tracepoints {
        category: &'static str,
        names: &'static [&'static str],
    },
    /// No program: a test inside another hook.
    Inside(&'static str),
    /// No program: fanotify marks on every mount namespace.
    FanotifyMarks,
    /// `fexit/<function>`: a BPF trampoline at the function's return,
    /// attached with BPF_RAW_TRACEPOINT_OPEN.
    Fexit(&'static str),
    /// No program: poll(2) on each mount namespace's mount table.
    MountTables,
}

/// Which hook variant a row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Loaded on every kernel.
    Always,
    ExecRename(ExecRename),
    ProcessExit(ProcessExit),
    MountWatch(MountWatch),
}

impl Variant {
    /// The start-up log line's field for this kind of variant, and the
    /// variant's value there.
    pub fn field(self) -> Option<(&'static str, &'static str)> {
        match self {
            Variant::Always => None,
            Variant::ExecRename(v) => Some(("exec_rename", v.as_str())),
            Variant::ProcessExit(v) => Some(("process_exit", v.as_str())),
            Variant::MountWatch(v) => Some(("mount_watch", v.as_str())),
        }
    }

    /// Whether a kernel must offer one of this kind of variant to be
    /// supported. The mount watch is not needed: without it the daemon runs
    /// and warns.
    fn required(self) -> bool {
        !matches!(self, Variant::MountWatch(_))
    }
}

/// What a hook needs of the daemon's privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Loading a program and attaching it with BPF_RAW_TRACEPOINT_OPEN:
    /// CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN.
    Bpf,
    /// As [`Privilege::Bpf`], and perf_event_open: which needs CAP_SYS_ADMIN
    /// where `kernel.perf_event_paranoid` is above 2 (Debian's default 3).
    BpfPerfEvent,
    /// Marking mount namespaces with fanotify: CAP_SYS_ADMIN.
    SysAdmin,
    /// Reading every process's `/proc/<pid>/ns/mnt` (a ptrace access
    /// check): CAP_SYS_PTRACE, which the daemon needs anyway.
    Ptrace,
}

/// The process's privileges, as far as the hooks care.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// The effective capability set, a bit per capability.
    pub effective: u64,
    pub perf_event_paranoid: Option<i32>,
}

impl Caps {
    pub fn has(&self, cap: u32) -> bool {
        self.effective & (1 << cap) != 0
    }
}

impl Privilege {
    pub fn granted(self, caps: &Caps) -> bool {
        let bpf = (caps.has(CAP_BPF) && caps.has(CAP_PERFMON)) || caps.has(CAP_SYS_ADMIN);
        match self {
            Privilege::Bpf => bpf,
            Privilege::BpfPerfEvent => {
                bpf && (caps.perf_event_paranoid.is_none_or(|level| level <= 2)
                    || caps.has(CAP_SYS_ADMIN))
            }
            Privilege::SysAdmin => caps.has(CAP_SYS_ADMIN),
            Privilege::Ptrace => caps.has(CAP_SYS_PTRACE),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Privilege::Bpf => "CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN)",
            Privilege::BpfPerfEvent => {
                "CAP_BPF + CAP_PERFMON, and CAP_SYS_ADMIN where `kernel.perf_event_paranoid` > 2"
            }
            Privilege::SysAdmin => "CAP_SYS_ADMIN",
            Privilege::Ptrace => "CAP_SYS_PTRACE",
        }
    }
}

/// When a hook is attached relative to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Process lifecycle, and exec's mark.
    Lifecycle,
    /// The rename hook, attached last: a rename recorded at start-up then
    /// always has the fork and exec that give it its process context.
    Rename,
    /// The mount watch, attached after every other hook: a namespace made
    /// after it is reported by them, one made before is marked then.
    Mounts,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    /// The program's name in the kernel object (`None`: the variant is done
    /// without a program of its own).
    pub program: Option<&'static str>,
    pub attach: Attach,
    /// Everything the kernel must have for it.
    pub needs: &'static [Requirement],
    pub variant: Variant,
    pub privilege: Privilege,
    pub stage: Stage,
}

/// Every hook. The variants of one kind are listed best first: the first
/// whose requirements are met (and privilege granted) is used, and the last
/// is the fallback every supported kernel has.
pub const HOOKS: &[Hook] = &[
    Hook {
        program: Some("task_rename"),
        attach: Attach::BtfTracepoint("task_rename"),
        needs: &[
            tracepoint("the task_rename BTF tracepoint", "task_rename"),
            RINGBUF,
            TASK_PT_REGS,
        ],
        variant: Variant::Always,
        privilege: Privilege::Bpf,
        stage: Stage::Rename,
    },
    Hook {
        program: Some("process_fork"),
        attach: Attach::BtfTracepoint("sched_process_fork"),
        needs: &[
            tracepoint(
                "the sched_process_fork BTF tracepoint",
                "sched_process_fork",
            ),
            RINGBUF,
        ],
        variant: Variant::Always,
        privilege: Privilege::Bpf,
        stage: Stage::Lifecycle,
    },
    Hook {
        program: Some("process_exec"),
        attach: Attach::BtfTracepoint("sched_process_exec"),
        needs: &[
            tracepoint(
                "the sched_process_exec BTF tracepoint",
                "sched_process_exec",
            ),
            RINGBUF,
        ],
        variant: Variant::Always,
        privilege: Privilege::Bpf,
        stage: Stage::Lifecycle,
    },
    Hook {
        program: Some("process_exit"),
        attach: Attach::BtfTracepoint("sched_process_exit"),
        needs: &[
            Requirement {
                what: "the group_dead argument of sched_process_exit",
                since: "2025",
                // (void *ctx, struct task_struct *p, bool group_dead)
                check: Check::Tracepoint("sched_process_exit", 3),
            },
            RINGBUF,
        ],
        variant: Variant::ProcessExit(ProcessExit::GroupDeadArg),
        privilege: Privilege::Bpf,
        stage: Stage::Lifecycle,
    },
    Hook {
        program: Some("process_exit_live"),
        attach: Attach::BtfTracepoint("sched_process_exit"),
        needs: &[
            tracepoint(
                "the sched_process_exit BTF tracepoint",
                "sched_process_exit",
            ),
            RINGBUF,
        ],
        variant: Variant::ProcessExit(ProcessExit::SignalLive),
        privilege: Privilege::Bpf,
        stage: Stage::Lifecycle,
    },
    Hook {
        program: Some("prepare_exec"),
        attach: Attach::BtfTracepoint("sched_prepare_exec"),
        needs: &[
            Requirement {
                what: "the sched_prepare_exec BTF tracepoint",
                since: "6.10",
                check: Check::Tracepoint("sched_prepare_exec", 1),
            },
            TASK_PT_REGS,
        ],
        variant: Variant::ExecRename(ExecRename::PrepareExec),
        privilege: Privilege::Bpf,
        stage: Stage::Lifecycle,
    },
    Hook {
        program: None,
        attach: Attach::Inside("task_rename"),
        needs: &[TASK_PT_REGS],
        variant: Variant::ExecRename(ExecRename::Syscall),
        privilege: Privilege::Bpf,
        stage: Stage::Rename,
    },
    Hook {
        program: None,
        attach: Attach::FanotifyMarks,
        needs: &[Requirement {
            what: "fanotify's mount events (FAN_MNT_ATTACH)",
            since: "6.15",
            // Added with them; the fork and exec hooks read it.
            check: Check::Member("mnt_namespace", "n_fsnotify_mask"),
        }],
        variant: Variant::MountWatch(MountWatch::Fanotify),
        privilege: Privilege::SysAdmin,
        stage: Stage::Mounts,
    },
    Hook {
        program: Some("path_mount_exit"),
        attach: Attach::Fexit("path_mount"),
        needs: &[
            Requirement {
                what: "the kernel function path_mount in BTF",
                since: "5.9",
                check: Check::Function("path_mount"),
            },
            TRAMPOLINES,
            FUNC_RET,
            RINGBUF,
        ],
        variant: Variant::MountWatch(MountWatch::Fexit),
        privilege: Privilege::Bpf,
        stage: Stage::Mounts,
    },
    Hook {
        program: Some("move_mount_exit"),
        attach: Attach::Fexit("do_move_mount"),
        needs: &[
            Requirement {
                what: "the kernel function do_move_mount in BTF",
                since: "5.2",
                check: Check::Function("do_move_mount"),
            },
            TRAMPOLINES,
            FUNC_RET,
            RINGBUF,
        ],
        variant: Variant::MountWatch(MountWatch::Fexit),
        privilege: Privilege::Bpf,
        stage: Stage::Mounts,
    },
    Hook {
        program: None,
        attach: Attach::MountTables,
        needs: &[Requirement {
            what: "mount-table change notification (poll on /proc/<pid>/mountinfo)",
            since: "2.6.15",
            check: Check::AtAttach,
        }],
        variant: Variant::MountWatch(MountWatch::MountTables),
        privilege: Privilege::Ptrace,
        stage: Stage::Mounts,
    },
    Hook {
        program: Some("mount_exit"),
        attach: Attach::Tracepoints {
            category: "syscalls",
            names: &["sys_exit_mount", "sys_exit_move_mount"],
        },
        needs: &[
            Requirement {
                what: "syscall tracepoints (CONFIG_FTRACE_SYSCALLS) and tracefs",
                // move_mount.
                since: "5.2",
                check: Check::AtAttach,
            },
            RINGBUF,
        ],
        variant: Variant::MountWatch(MountWatch::SyscallTracepoints),
        privilege: Privilege::BpfPerfEvent,
        stage: Stage::Mounts,
    },
    Hook {
        program: Some("mount_exit_raw"),
        attach: Attach::BtfTracepoint("sys_exit"),
        needs: &[
            tracepoint("the sys_exit BTF tracepoint", "sys_exit"),
            RINGBUF,
        ],
        variant: Variant::MountWatch(MountWatch::RawSysExit),
        privilege: Privilege::Bpf,
        stage: Stage::Mounts,
    },
];

/// A `task_struct.flags` bit that marks a kernel-run task, and what tells
/// that the kernel defines it (the bits meant something else, or nothing,
/// before).
#[derive(Clone, Copy, Debug)]
pub struct WorkerFlag {
    pub name: &'static str,
    pub bit: u32,
    /// `None`: every kernel has it.
    pub needs: Option<Requirement>,
}

/// The kernel-worker bits (`kernel_workers` in the start-up line), each used
/// where the kernel has it.
pub const WORKER_FLAGS: &[WorkerFlag] = &[
    WorkerFlag {
        name: "PF_KTHREAD",
        bit: PF_KTHREAD,
        needs: None,
    },
    WorkerFlag {
        name: "PF_IO_WORKER",
        bit: PF_IO_WORKER,
        // The field arrived in the same release as the bit.
        needs: Some(Requirement {
            what: "kernel_clone_args.io_thread",
            since: "5.12",
            check: Check::Member("kernel_clone_args", "io_thread"),
        }),
    },
    WorkerFlag {
        name: "PF_USER_WORKER",
        bit: PF_USER_WORKER,
        needs: Some(Requirement {
            what: "kernel_clone_args.user_worker",
            since: "6.4",
            check: Check::Member("kernel_clone_args", "user_worker"),
        }),
    },
];

/// What every supported kernel must have: the needs of the hooks loaded on
/// every kernel and of the fallback of each required kind of variant, each
/// once, oldest release first (in table order within a release).
pub fn required() -> Vec<Requirement> {
    let mut needs: Vec<Requirement> = Vec::new();
    for (i, hook) in HOOKS.iter().enumerate() {
        if is_required(i, hook) {
            for need in hook.needs {
                if !needs.contains(need) {
                    needs.push(*need);
                }
            }
        }
    }
    needs.sort_by_key(|need| release(need.since));
    needs
}

/// The privileges every supported kernel's hooks need (those loaded on
/// every kernel, and the fallback of each required kind of variant).
pub fn required_privileges() -> impl Iterator<Item = Privilege> {
    HOOKS
        .iter()
        .enumerate()
        .filter_map(|(i, hook)| is_required(i, hook).then_some(hook.privilege))
}

/// Whether the hook at `i` of [`HOOKS`] is one every supported kernel needs.
fn is_required(i: usize, hook: &Hook) -> bool {
    match hook.variant {
        Variant::Always => true,
        variant if variant.required() => !HOOKS[i + 1..]
            .iter()
            .any(|later| same_kind(later.variant, variant)),
        _ => false,
    }
}

/// The oldest Linux release that meets every requirement.
pub fn min_kernel() -> &'static str {
    required()
        .into_iter()
        .map(|need| need.since)
        .max_by_key(|since| release(since))
        .unwrap_or("5.15")
}

/// Whether two variants are of the same kind (exec_rename, ...).
pub fn same_kind(a: Variant, b: Variant) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

/// `major.minor` as numbers, for ordering ("2025" sorts after any 6.x).
fn release(since: &str) -> (u32, u32) {
    let mut parts = since.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The row of a hook variant.
pub fn of(variant: Variant) -> Option<&'static Hook> {
    HOOKS.iter().find(|hook| hook.variant == variant)
}

/// docs/kernels.md's hook table (between its `hook-table` markers):
/// `rename-audit generate hook-table DIR` writes it to DIR/hook-table.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "| program | attaches to | the kernel must have | variant | privilege |\n\
         |---|---|---|---|---|\n",
    );
    for hook in HOOKS {
        let program = hook
            .program
            .map_or("(none)".to_owned(), |p| format!("`{p}`"));
        let attach = match hook.attach {
            Attach::BtfTracepoint(tp) => format!("`tp_btf/{tp}`"),
            Attach::Tracepoints { category, names } => names
                .iter()
                .map(|name| format!("`tracepoint/{category}/{name}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Attach::Inside(program) => format!("a test in `{program}`"),
            Attach::FanotifyMarks => "fanotify marks on each mount namespace".to_owned(),
            Attach::Fexit(function) => format!("`fexit/{function}`"),
            Attach::MountTables => {
                "poll(2) on `/proc/<pid>/mountinfo` of each mount namespace".to_owned()
            }
        };
        let needs = hook
            .needs
            .iter()
            .map(|need| format!("{} {}", need.what, need.when()))
            .collect::<Vec<_>>()
            .join(", ");
        let variant = hook.variant.field().map_or_else(
            || "every kernel".to_owned(),
            |(field, value)| format!("`{field}=\"{value}\"`"),
        );
        out.push_str(&format!(
            "| {program} | {attach} | {needs} | {variant} | {} |\n",
            hook.privilege.describe()
        ));
    }
    out.push_str(
        "\n| `kernel_workers` bit | used where the kernel has |\n\
         |---|---|\n",
    );
    for flag in WORKER_FLAGS {
        let needs = flag.needs.map_or("every kernel".to_owned(), |need| {
            format!("{} {}", need.what, need.when())
        });
        out.push_str(&format!("| `{}` | {needs} |\n", flag.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_kernel_needs_linux_5_15_for_six_things() {
        let whats: Vec<&str> = required().iter().map(|need| need.what).collect();
        assert_eq!(
            whats,
            [
                "the task_rename BTF tracepoint",
                "the sched_process_fork BTF tracepoint",
                "the sched_process_exec BTF tracepoint",
                "the sched_process_exit BTF tracepoint",
                "BPF ring buffers (BPF_MAP_TYPE_RINGBUF)",
                "the bpf_task_pt_regs helper",
            ]
        );
        assert_eq!(min_kernel(), "5.15");
    }

    #[test]
    fn each_kind_of_variant_ends_with_a_fallback_that_needs_only_what_is_required() {
        let required = required();
        for kind in [
            Variant::ExecRename(ExecRename::Syscall),
            Variant::ProcessExit(ProcessExit::SignalLive),
        ] {
            let last = HOOKS
                .iter()
                .rfind(|hook| same_kind(hook.variant, kind))
                .expect("a row of the kind");
            assert_eq!(last.variant, kind, "the fallback is listed last");
            assert!(last.needs.iter().all(|need| required.contains(need)));
        }
    }

    #[test]
    fn program_names_are_unique() {
        let mut names: Vec<&str> = HOOKS.iter().filter_map(|hook| hook.program).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn the_docs_show_the_table_the_code_enforces() {
        let docs = [
            ("docs/kernels.md", include_str!("../../../docs/kernels.md")),
            ("ARCHITECTURE.md", include_str!("../../../ARCHITECTURE.md")),
        ];
        let start = "<!-- hook-table:start -->\n";
        let end = "<!-- hook-table:end -->";
        for (name, doc) in docs {
            let from = doc
                .find(start)
                .unwrap_or_else(|| panic!("{name} has the start marker"))
                + start.len();
            let to = doc
                .find(end)
                .unwrap_or_else(|| panic!("{name} has the end marker"));
            assert_eq!(
                &doc[from..to],
                markdown(),
                "{name}'s hook table differs from the code's: paste the DIR/hook-table.md \
                 that `rename-audit generate hook-table DIR` writes between its markers"
            );
        }
    }
}
