//! What the running kernel offers, read from its BTF before anything is
//! loaded: whether rename-audit supports it at all, and which variant of
//! each hook fits it. Nothing here tries a load and looks at the failure.
use btf_rs::{Btf, Type};
use rename_audit_common::task_flags::{PF_IO_WORKER, PF_KTHREAD, PF_USER_WORKER};

/// The oldest kernel line every requirement below is met by.
pub const MIN_KERNEL: &str = "5.15";

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

/// The running kernel and the hook variants chosen for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSupport {
    /// `uname -r`.
    pub release: String,
    pub exec_rename: ExecRename,
    pub process_exit: ProcessExit,
    /// `task_struct.flags` bits that mark kernel threads and kernel-run
    /// workers on this kernel.
    pub worker_flags: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "Linux {release} is not supported: its kernel lacks {missing}; rename-audit needs \
         Linux {MIN_KERNEL} or later, built with BTF (CONFIG_DEBUG_INFO_BTF=y)"
    )]
    Unsupported { release: String, missing: String },
}

/// Something every supported kernel has: (what, since which release, check).
type Requirement = (&'static str, &'static str, fn(&dyn KernelTypes) -> bool);

const REQUIREMENTS: [Requirement; 6] = [
    ("the task_rename BTF tracepoint", "5.5", |btf| {
        btf.tracepoint_args("task_rename").is_some()
    }),
    ("the sched_process_fork BTF tracepoint", "5.5", |btf| {
        btf.tracepoint_args("sched_process_fork").is_some()
    }),
    ("the sched_process_exec BTF tracepoint", "5.5", |btf| {
        btf.tracepoint_args("sched_process_exec").is_some()
    }),
    ("the sched_process_exit BTF tracepoint", "5.5", |btf| {
        btf.tracepoint_args("sched_process_exit").is_some()
    }),
    ("BPF ring buffers (BPF_MAP_TYPE_RINGBUF)", "5.8", |btf| {
        btf.has_enum_value("bpf_map_type", "BPF_MAP_TYPE_RINGBUF")
    }),
    ("the bpf_task_pt_regs helper", "5.15", |btf| {
        btf.has_enum_value("bpf_func_id", "BPF_FUNC_task_pt_regs")
    }),
];

impl KernelSupport {
    /// Checks the kernel described by `btf` and picks each hook's variant.
    pub fn probe(btf: &dyn KernelTypes, release: &str) -> Result<Self, KernelError> {
        let missing: Vec<String> = REQUIREMENTS
            .iter()
            .filter(|(_, _, present)| !present(btf))
            .map(|(what, since, _)| format!("{what} (Linux {since})"))
            .collect();
        if !missing.is_empty() {
            return Err(KernelError::Unsupported {
                release: release.to_owned(),
                missing: missing.join(", "),
            });
        }
        let exec_rename = if btf.tracepoint_args("sched_prepare_exec").is_some() {
            ExecRename::PrepareExec
        } else {
            ExecRename::Syscall
        };
        // (void *ctx, struct task_struct *p[, bool group_dead])
        let process_exit = if btf.tracepoint_args("sched_process_exit").unwrap_or(0) >= 3 {
            ProcessExit::GroupDeadArg
        } else {
            ProcessExit::SignalLive
        };
        // The worker bits were other (or no) flags before these kernels; the
        // fields below arrived in the same releases as the bits.
        let mut worker_flags = PF_KTHREAD;
        if btf.has_member("kernel_clone_args", "io_thread") {
            worker_flags |= PF_IO_WORKER;
        }
        if btf.has_member("kernel_clone_args", "user_worker") {
            worker_flags |= PF_USER_WORKER;
        }
        Ok(Self {
            release: release.to_owned(),
            exec_rename,
            process_exit,
            worker_flags,
        })
    }

    /// Names of the worker flags in use, for the start-up log.
    pub fn worker_flag_names(&self) -> &'static str {
        match self.worker_flags {
            f if f & PF_USER_WORKER != 0 => "PF_KTHREAD|PF_IO_WORKER|PF_USER_WORKER",
            f if f & PF_IO_WORKER != 0 => "PF_KTHREAD|PF_IO_WORKER",
            _ => "PF_KTHREAD",
        }
    }
}

impl ExecRename {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrepareExec => "sched_prepare_exec",
            Self::Syscall => "execve-syscall",
        }
    }
}

impl ProcessExit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GroupDeadArg => "group_dead-argument",
            Self::SignalLive => "signal-live-count",
        }
    }
}

/// `uname -r` of the running kernel.
pub fn running_release() -> String {
    // SAFETY: uname fills the zeroed struct it is given; its fields are
    // NUL-terminated.
    unsafe {
        let mut name: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut name) != 0 {
            return "(unknown release)".into();
        }
        std::ffi::CStr::from_ptr(name.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The questions asked of a kernel's BTF (a trait so that the decisions can
/// be tested against kernels other than the running one).
pub trait KernelTypes {
    /// Number of arguments (the context included) a BTF tracepoint passes,
    /// from its `btf_trace_<name>` typedef; `None` when there is no such hook.
    fn tracepoint_args(&self, name: &str) -> Option<usize>;
    fn has_enum_value(&self, enum_name: &str, value: &str) -> bool;
    fn has_member(&self, struct_name: &str, member: &str) -> bool;
}

impl KernelTypes for Btf {
    fn tracepoint_args(&self, name: &str) -> Option<usize> {
        let types = self
            .resolve_types_by_name(&format!("btf_trace_{name}"))
            .ok()?;
        let Type::Typedef(typedef) = types.into_iter().next()? else {
            return None;
        };
        let Type::Ptr(ptr) = self.resolve_chained_type(&typedef).ok()? else {
            return None;
        };
        match self.resolve_chained_type(&ptr).ok()? {
            Type::FuncProto(proto) => Some(proto.parameters.len()),
            _ => None,
        }
    }

    fn has_enum_value(&self, enum_name: &str, value: &str) -> bool {
        self.resolve_types_by_name(enum_name)
            .unwrap_or_default()
            .iter()
            .any(|t| match t {
                Type::Enum(e) => e
                    .members
                    .iter()
                    .any(|m| self.resolve_name(m).is_ok_and(|n| n == value)),
                _ => false,
            })
    }

    fn has_member(&self, struct_name: &str, member: &str) -> bool {
        self.resolve_types_by_name(struct_name)
            .unwrap_or_default()
            .iter()
            .any(|t| match t {
                Type::Struct(s) => s
                    .members
                    .iter()
                    .any(|m| self.resolve_name(m).is_ok_and(|n| n == member)),
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel described by hand: its tracepoints (with argument counts),
    /// enum values and struct members.
    #[derive(Default)]
    struct Fake {
        tracepoints: Vec<(&'static str, usize)>,
        enums: Vec<(&'static str, &'static str)>,
        members: Vec<(&'static str, &'static str)>,
    }

    impl KernelTypes for Fake {
        fn tracepoint_args(&self, name: &str) -> Option<usize> {
            self.tracepoints
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, args)| *args)
        }
        fn has_enum_value(&self, enum_name: &str, value: &str) -> bool {
            self.enums.contains(&(enum_name, value))
        }
        fn has_member(&self, struct_name: &str, member: &str) -> bool {
            self.members.contains(&(struct_name, member))
        }
    }

    /// What Debian 12's Linux 6.1 has (read from its BTF).
    fn linux_6_1() -> Fake {
        Fake {
            tracepoints: vec![
                ("task_rename", 3),
                ("sched_process_fork", 3),
                ("sched_process_exec", 4),
                ("sched_process_exit", 2),
            ],
            enums: vec![
                ("bpf_map_type", "BPF_MAP_TYPE_RINGBUF"),
                ("bpf_func_id", "BPF_FUNC_task_pt_regs"),
            ],
            members: vec![("kernel_clone_args", "io_thread")],
        }
    }

    #[test]
    fn linux_6_1_gets_every_fallback() {
        let support = KernelSupport::probe(&linux_6_1(), "6.1.0-56-amd64").expect("supported");
        assert_eq!(support.exec_rename, ExecRename::Syscall);
        assert_eq!(support.process_exit, ProcessExit::SignalLive);
        assert_eq!(support.worker_flags, PF_KTHREAD | PF_IO_WORKER);
    }

    #[test]
    fn a_newer_kernel_gets_the_native_variants() {
        let mut kernel = linux_6_1();
        kernel
            .tracepoints
            .retain(|(n, _)| *n != "sched_process_exit");
        kernel.tracepoints.push(("sched_process_exit", 3));
        kernel.tracepoints.push(("sched_prepare_exec", 3));
        kernel.members.push(("kernel_clone_args", "user_worker"));
        let support = KernelSupport::probe(&kernel, "6.18.0").expect("supported");
        assert_eq!(support.exec_rename, ExecRename::PrepareExec);
        assert_eq!(support.process_exit, ProcessExit::GroupDeadArg);
        assert_eq!(
            support.worker_flags,
            PF_KTHREAD | PF_IO_WORKER | PF_USER_WORKER
        );
    }

    #[test]
    fn a_kernel_below_the_minimum_is_refused_naming_what_it_lacks() {
        // Linux 5.10: ring buffers, but no bpf_task_pt_regs.
        let mut kernel = linux_6_1();
        kernel.enums.retain(|(_, v)| *v != "BPF_FUNC_task_pt_regs");
        let error = KernelSupport::probe(&kernel, "5.10.0-30-amd64").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Linux 5.10.0-30-amd64 is not supported: its kernel lacks the bpf_task_pt_regs \
             helper (Linux 5.15); rename-audit needs Linux 5.15 or later, built with BTF \
             (CONFIG_DEBUG_INFO_BTF=y)"
        );
    }

    #[test]
    fn the_running_kernel_is_read_from_its_btf() {
        let btf = super::super::offsets::running_kernel_btf().expect("this machine has BTF");
        let support = KernelSupport::probe(&btf, &running_release()).expect("supported");
        // Whatever the kernel, the task_rename hook has (ctx, task, comm).
        assert_eq!(btf.tracepoint_args("task_rename"), Some(3));
        assert_eq!(btf.tracepoint_args("no_such_tracepoint"), None);
        let exit_args = btf
            .tracepoint_args("sched_process_exit")
            .expect("exit hook");
        assert_eq!(
            support.process_exit == ProcessExit::GroupDeadArg,
            exit_args == 3
        );
        assert_eq!(
            support.exec_rename == ExecRename::PrepareExec,
            btf.tracepoint_args("sched_prepare_exec").is_some()
        );
    }
}
