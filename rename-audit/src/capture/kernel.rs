//! What the running kernel offers, read from its BTF before anything is
//! loaded: whether rename-audit supports it at all, and which variant of
//! each hook fits it. Nothing here tries a load and looks at the failure.
//!
//! The facts (what each hook needs, its variants in order of preference)
//! are in [`super::hooks`]; this module asks them of a kernel's BTF.
use btf_rs::{Btf, Type};

use super::hooks::{self, Check, ExecRename, HOOKS, ProcessExit, Requirement, Variant};

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
    /// Their names, `|`-separated, for the start-up log.
    worker_flag_names: String,
    /// Whether the kernel has fanotify's mount events.
    pub mount_events: bool,
    /// Whether the kernel's BTF has every function the fexit mount watch
    /// attaches to (whether trampolines work, only attaching tells).
    pub mount_fexit: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "Linux {release} is not supported: its kernel lacks {missing}; rename-audit needs \
         Linux {min} or later, built with BTF (CONFIG_DEBUG_INFO_BTF=y)",
        min = hooks::min_kernel()
    )]
    Unsupported { release: String, missing: String },
}

/// Whether the kernel described by `btf` meets `need`. What BTF cannot
/// tell is assumed present: attaching finds out.
fn met(btf: &dyn KernelTypes, need: &Requirement) -> bool {
    match need.check {
        Check::Tracepoint(name, args) => btf.tracepoint_args(name).is_some_and(|n| n >= args),
        Check::EnumValue(enum_name, value) => btf.has_enum_value(enum_name, value),
        Check::Member(struct_name, member) => btf.has_member(struct_name, member),
        Check::Function(name) => btf.has_function(name),
        Check::AtAttach => true,
    }
}

/// The first variant of `kind`'s rows whose needs `btf` meets.
fn pick(btf: &dyn KernelTypes, kind: Variant) -> Option<Variant> {
    HOOKS
        .iter()
        .filter(|hook| hooks::same_kind(hook.variant, kind))
        .find(|hook| hook.needs.iter().all(|need| met(btf, need)))
        .map(|hook| hook.variant)
}

impl KernelSupport {
    /// Checks the kernel described by `btf` and picks each hook's variant.
    pub fn probe(btf: &dyn KernelTypes, release: &str) -> Result<Self, KernelError> {
        let missing: Vec<String> = hooks::required()
            .iter()
            .filter(|need| !met(btf, need))
            .map(|need| format!("{} {}", need.what, need.when()))
            .collect();
        if !missing.is_empty() {
            return Err(KernelError::Unsupported {
                release: release.to_owned(),
                missing: missing.join(", "),
            });
        }
        // Every required kind ends with a fallback whose needs are among
        // those just checked (a test in `hooks` says so), so each pick finds
        // one.
        let exec_rename = match pick(btf, Variant::ExecRename(ExecRename::Syscall)) {
            Some(Variant::ExecRename(v)) => v,
            _ => ExecRename::Syscall,
        };
        let process_exit = match pick(btf, Variant::ProcessExit(ProcessExit::SignalLive)) {
            Some(Variant::ProcessExit(v)) => v,
            _ => ProcessExit::SignalLive,
        };
        let workers: Vec<_> = hooks::WORKER_FLAGS
            .iter()
            .filter(|flag| flag.needs.is_none_or(|need| met(btf, &need)))
            .collect();
        let offers = |watch| {
            let mut rows = HOOKS
                .iter()
                .filter(|hook| hook.variant == Variant::MountWatch(watch))
                .peekable();
            rows.peek().is_some() && rows.all(|hook| hook.needs.iter().all(|need| met(btf, need)))
        };
        let mount_events = offers(hooks::MountWatch::Fanotify);
        let mount_fexit = offers(hooks::MountWatch::Fexit);
        Ok(Self {
            release: release.to_owned(),
            exec_rename,
            process_exit,
            worker_flags: workers.iter().fold(0, |flags, flag| flags | flag.bit),
            worker_flag_names: workers
                .iter()
                .map(|flag| flag.name)
                .collect::<Vec<_>>()
                .join("|"),
            mount_events,
            mount_fexit,
        })
    }

    /// Names of the worker flags in use, for the start-up log.
    pub fn worker_flag_names(&self) -> &str {
        &self.worker_flag_names
    }

    /// Whether the hook variant `variant` is the one used on this kernel
    /// (the mount watch is chosen later, by privilege: never here).
    pub fn uses(&self, variant: Variant) -> bool {
        match variant {
            Variant::Always => true,
            Variant::ExecRename(v) => v == self.exec_rename,
            Variant::ProcessExit(v) => v == self.process_exit,
            Variant::MountWatch(_) => false,
        }
    }
}

/// `uname -r` of the running kernel.
pub fn running_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// The questions asked of a kernel's BTF (a trait so that the decisions can
/// be tested against kernels other than the running one).
pub trait KernelTypes {
    /// Number of arguments (the context included) a BTF tracepoint passes,
    /// from its `btf_trace_<name>` typedef; `None` when there is no such hook.
    fn tracepoint_args(&self, name: &str) -> Option<usize>;
    fn has_enum_value(&self, enum_name: &str, value: &str) -> bool;
    fn has_member(&self, struct_name: &str, member: &str) -> bool;
    fn has_function(&self, name: &str) -> bool;
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
        // Also inside anonymous structs and unions, as the offsets are found.
        super::offsets::has_member(self, struct_name, member)
    }

    fn has_function(&self, name: &str) -> bool {
        self.resolve_types_by_name(name)
            .unwrap_or_default()
            .iter()
            .any(|t| matches!(t, Type::Func(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rename_audit_common::task_flags::{PF_IO_WORKER, PF_KTHREAD, PF_USER_WORKER};

    /// A kernel described by hand: its tracepoints (with argument counts),
    /// enum values and struct members.
    #[derive(Default)]
    struct Fake {
        tracepoints: Vec<(&'static str, usize)>,
        enums: Vec<(&'static str, &'static str)>,
        members: Vec<(&'static str, &'static str)>,
        functions: Vec<&'static str>,
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
        fn has_function(&self, name: &str) -> bool {
            self.functions.contains(&name)
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
                ("bpf_func_id", "BPF_FUNC_get_func_ret"),
            ],
            members: vec![("kernel_clone_args", "io_thread")],
            functions: vec!["path_mount", "do_move_mount"],
        }
    }

    #[test]
    fn linux_6_1_gets_every_fallback() {
        let support = KernelSupport::probe(&linux_6_1(), "6.1.0-56-amd64").expect("supported");
        assert_eq!(support.exec_rename, ExecRename::Syscall);
        assert_eq!(support.process_exit, ProcessExit::SignalLive);
        assert_eq!(support.worker_flags, PF_KTHREAD | PF_IO_WORKER);
        assert_eq!(support.worker_flag_names(), "PF_KTHREAD|PF_IO_WORKER");
        assert!(!support.mount_events);
        assert!(support.mount_fexit);
        // Lifecycle first, the rename hook last; no prepare_exec.
        assert_eq!(
            super::super::programs_to_attach(&support),
            [
                ("process_fork", "sched_process_fork"),
                ("process_exec", "sched_process_exec"),
                ("process_exit_live", "sched_process_exit"),
                ("task_rename", "task_rename"),
            ]
        );
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
        assert_eq!(
            support.worker_flag_names(),
            "PF_KTHREAD|PF_IO_WORKER|PF_USER_WORKER"
        );
        assert_eq!(
            super::super::programs_to_attach(&support),
            [
                ("process_fork", "sched_process_fork"),
                ("process_exec", "sched_process_exec"),
                ("process_exit", "sched_process_exit"),
                ("prepare_exec", "sched_prepare_exec"),
                ("task_rename", "task_rename"),
            ]
        );
    }

    #[test]
    fn fanotify_mount_events_are_offered_where_mount_namespaces_have_a_mark_mask() {
        let mut kernel = linux_6_1();
        kernel.members.push(("mnt_namespace", "n_fsnotify_mask"));
        let support = KernelSupport::probe(&kernel, "6.15.0").expect("supported");
        assert!(support.mount_events);
    }

    #[test]
    fn fexit_on_the_mount_code_is_offered_only_where_btf_has_both_functions() {
        // As on this project's 6.18 host: no do_move_mount in its BTF.
        let mut kernel = linux_6_1();
        kernel.functions.retain(|f| *f != "do_move_mount");
        let support = KernelSupport::probe(&kernel, "6.18.0").expect("supported");
        assert!(!support.mount_fexit);
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
        // The kernel programs read the mark mask where the daemon uses
        // fanotify: both must find it.
        let offsets = super::super::offsets::from_btf(&btf).expect("offsets");
        assert_eq!(support.mount_events, offsets.mnt_ns_fsnotify_mask != 0);
    }
}
