//! Stage 1, capture: loads and attaches the kernel programs, then drains
//! their ring buffers, storm slots and loss counters on a dedicated thread
//! into time-ordered batches of [`Record`]s.
mod drain;
pub mod hooks;
pub mod kernel;
mod mount_tables;
mod mounts;
mod offsets;
mod preflight;
mod records;
mod storms;

pub use drain::{Batch, Drainer};
pub use hooks::{ExecRename, MountWatch, ProcessExit};
pub use kernel::KernelSupport;
pub use records::{DecodeError, Exec, KernelState, Mount, Record, StormSummary, decode};

use aya::{
    Btf, Ebpf, EbpfLoader, Endianness,
    maps::{Map, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, FExit, TracePoint},
};
use rename_audit_common::{KernelOffsets, STORM_SLOTS, Settings, exec_detect, maps, watch_mnt_ns};

use hooks::Variant;

/// The kernel programs, built by build.rs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rename-audit"));

/// Capture settings; every one has a default sized for the machine.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Bytes of the ring for process renames and lifecycle; 0 = automatic.
    pub priority_ring_bytes: u32,
    /// Bytes of the ring for thread renames; 0 = automatic.
    pub thread_ring_bytes: u32,
    pub storm_slots: u32,
    pub thread_rate: u32,
    pub thread_burst: u32,
    pub process_rate: u32,
    pub process_burst: u32,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            priority_ring_bytes: 0,
            thread_ring_bytes: 0,
            storm_slots: STORM_SLOTS,
            thread_rate: 100,
            thread_burst: 1000,
            process_rate: 20_000,
            process_burst: 20_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    #[error(transparent)]
    Offsets(#[from] offsets::OffsetsError),
    #[error(transparent)]
    Kernel(#[from] kernel::KernelError),
    #[error(
        "the kernel programs are missing from this build (built with AYA_BUILD_SKIP?); rebuild with `cargo xtask build`"
    )]
    NoObject,
    #[error("invalid capture setting: {0}")]
    Setting(String),
    #[error("loading the kernel programs failed: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("{what}: {source}")]
    Program {
        what: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("kernel map {0}: {1}")]
    Map(&'static str, String),
}

/// The kernel programs, loaded and attached. Dropping it detaches them.
pub struct Capture {
    ebpf: Ebpf,
    storm_slots: u32,
    ring_bytes: (u32, u32),
    kernel: KernelSupport,
    mount_watch: Option<MountWatch>,
    /// Where mounts are watched without a program (fanotify, polled mount
    /// tables): the watch, until the drain thread takes it.
    mount_source: Option<drain::MountSource>,
}

/// The programs to attach on this kernel, in order: every hook the kernel
/// uses, by [`hooks::Stage`] (the mount watch is attached apart).
fn programs_to_attach(kernel: &KernelSupport) -> Vec<(&'static str, &'static str)> {
    let mut hooks: Vec<&hooks::Hook> = hooks::HOOKS
        .iter()
        .filter(|hook| kernel.uses(hook.variant))
        .collect();
    hooks.sort_by_key(|hook| hook.stage);
    hooks
        .into_iter()
        .filter_map(|hook| match (hook.program, hook.attach) {
            (Some(program), hooks::Attach::BtfTracepoint(tracepoint)) => {
                Some((program, tracepoint))
            }
            _ => None,
        })
        .collect()
}

impl Capture {
    /// Checks privileges and kernel support, loads and attaches every hook.
    /// Renames are recorded from the moment this returns.
    pub fn attach(opts: &CaptureOptions) -> Result<Self, CaptureError> {
        preflight::check()?;
        if EBPF_OBJECT.is_empty() {
            return Err(CaptureError::NoObject);
        }
        // Read once, parsed twice: btf-rs answers the offsets and probes,
        // aya relocates and loads the programs with its own parse, which the
        // loader would otherwise make twice more from the file.
        let raw_btf = offsets::read_running_kernel_btf()?;
        let (kernel, offsets) = {
            let btf = offsets::parse(&raw_btf)?;
            let kernel = KernelSupport::probe(&btf, &kernel::running_release())?;
            (kernel, offsets::from_btf(&btf)?)
        };
        let btf = Btf::parse(&raw_btf, Endianness::default())
            .map_err(|e| offsets::OffsetsError::Unreadable(e.to_string()))?;
        drop(raw_btf);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let prio = ring_size(
            opts.priority_ring_bytes,
            cpus,
            PRIORITY_RING_PER_CPU,
            PRIORITY_RING_MIN,
            "priority_ring_bytes",
        )?;
        let thread = ring_size(
            opts.thread_ring_bytes,
            cpus,
            THREAD_RING_PER_CPU,
            THREAD_RING_MIN,
            "thread_ring_bytes",
        )?;
        if opts.storm_slots == 0 {
            return Err(CaptureError::Setting(
                "storm_slots must be at least 1".into(),
            ));
        }
        // fanotify's mount events need the kernel's mark mask on mount
        // namespaces (what the fork and exec hooks check) and a group that
        // may mark them.
        let mut notifier = kernel
            .mount_events
            .then(|| {
                mounts::MountNotifier::open()
                    .inspect_err(|error| {
                        tracing::info!(
                            %error,
                            "fanotify's mount events cannot be had (marking a mount namespace \
                             needs CAP_SYS_ADMIN): another mount watch is used"
                        );
                    })
                    .ok()
            })
            .flatten();
        let candidates =
            MountWatch::candidates(notifier.is_some(), kernel.mount_fexit, &preflight::caps());
        // The settings are fixed at load, before attaching tells whether
        // fexit works: where it may fall back to the polled mount tables,
        // the fork and exec hooks report namespace changes from the start.
        let namespaces = match candidates.first() {
            Some(MountWatch::Fanotify) => watch_mnt_ns::UNMARKED,
            Some(MountWatch::Fexit | MountWatch::MountTables) => watch_mnt_ns::CHANGED,
            _ => watch_mnt_ns::NONE,
        };
        // The mount hooks' syscall tracepoints have their record layout in
        // their tracefs format file.
        let mount_ret = if candidates.contains(&MountWatch::SyscallTracepoints) {
            syscall_exit_ret_offset()
        } else {
            Ok(0)
        };
        let settings = Settings {
            offsets: KernelOffsets {
                syscall_exit_ret: mount_ret.as_ref().map_or(0, |&o| o),
                ..offsets
            },
            thread_interval_ns: interval(opts.thread_rate, "thread_rate")?,
            thread_tolerance_ns: interval(opts.thread_rate, "thread_rate")?
                * u64::from(opts.thread_burst.max(1) - 1),
            process_interval_ns: interval(opts.process_rate, "process_rate")?,
            process_tolerance_ns: interval(opts.process_rate, "process_rate")?
                * u64::from(opts.process_burst.max(1) - 1),
            wakeup_bytes: u64::from(prio.min(thread) / 4),
            lifecycle_limit_bytes: u64::from(prio) * 3 / 4,
            storm_slots: opts.storm_slots,
            nr_prctl: libc::SYS_prctl as u32,
            exec_detect: match kernel.exec_rename {
                ExecRename::PrepareExec => exec_detect::PREPARE_EXEC,
                ExecRename::Syscall => exec_detect::SYSCALL,
            },
            nr_execve: libc::SYS_execve as u32,
            nr_execveat: libc::SYS_execveat as u32,
            kernel_worker_flags: kernel.worker_flags,
            nr_mount: libc::SYS_mount as u32,
            nr_move_mount: libc::SYS_move_mount as u32,
            watch_mnt_ns: namespaces,
            _pad: 0,
        };
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            // The task-local rate state (RATE): aya has no wrapper for the
            // map type but creates it; only the kernel programs use it.
            .allow_unsupported_maps()
            .override_global(maps::SETTINGS, &settings, true)
            .map_max_entries(maps::PRIORITY_RING, prio)
            .map_max_entries(maps::THREAD_RING, thread)
            .map_max_entries(maps::STORMS, opts.storm_slots)
            .load(EBPF_OBJECT)
            .map_err(CaptureError::Load)?;
        for (program, tracepoint) in programs_to_attach(&kernel) {
            let prog: &mut BtfTracePoint = program_mut(&mut ebpf, program)?;
            prog.load(tracepoint, &btf)
                .and_then(|()| prog.attach().map(drop))
                .map_err(|source| CaptureError::Program {
                    what: format!(
                        "attaching {program} to tracepoint {tracepoint} on Linux {}",
                        kernel.release
                    ),
                    source,
                })?;
        }
        // After the other hooks: a namespace made after this is reported
        // by them, one made before is found here.
        let mut mount_source = None;
        let mut mount_watch = None;
        for watch in candidates {
            let attached = match watch {
                MountWatch::Fanotify => match notifier.take() {
                    Some(mut notifier) => {
                        let (namespaces, failed) = notifier.mark_running(running_pids());
                        tracing::debug!(namespaces, failed, "mount namespaces marked");
                        mount_source = Some(drain::MountSource::Fanotify(notifier));
                        Ok(())
                    }
                    None => Err("no fanotify group".to_owned()),
                },
                MountWatch::MountTables => mount_tables::MountTables::open(running_pids())
                    .map(|tables| {
                        tracing::debug!(
                            namespaces = tables.namespaces(),
                            "mount namespaces polled"
                        );
                        mount_source = Some(drain::MountSource::Tables(tables));
                    })
                    .map_err(|e| format!("polling the mount tables: {e}")),
                MountWatch::SyscallTracepoints => match &mount_ret {
                    Ok(_) => attach_mount_hooks(&mut ebpf, watch, &btf),
                    Err(e) => Err(e.clone()),
                },
                MountWatch::Fexit | MountWatch::RawSysExit => {
                    attach_mount_hooks(&mut ebpf, watch, &btf)
                }
            };
            match attached {
                Ok(()) => {
                    mount_watch = Some(watch);
                    break;
                }
                Err(error) => tracing::info!(
                    %error,
                    mount_watch = watch.as_str(),
                    "this mount watch cannot be had here: trying the next"
                ),
            }
        }
        drop(btf);
        match mount_watch {
            Some(watch) if watch.per_syscall() => tracing::warn!(
                mount_watch = watch.as_str(),
                "mounts are watched through syscall hooks, which slow every syscall on the \
                 host: neither fexit on the mount code nor the mount tables could be used \
                 (docs/kernels.md)"
            ),
            Some(_) => {}
            None => tracing::warn!(
                "mounts made while running are not watched: a process hidden by a mount over \
                 its /proc entry after start-up is not reported (those hidden before start-up are)"
            ),
        }
        // Parsing the kernel's BTF (twice: offsets, then attach) leaves tens of
        // MiB of freed heap behind; hand it back to the OS.
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
        Ok(Self {
            ebpf,
            storm_slots: opts.storm_slots,
            ring_bytes: (prio, thread),
            kernel,
            mount_watch,
            mount_source,
        })
    }

    /// The running kernel and the hook variants in use.
    pub fn kernel(&self) -> &KernelSupport {
        &self.kernel
    }

    /// How mounts made while running are seen; `None` if they are not.
    pub fn mount_watch(&self) -> Option<MountWatch> {
        self.mount_watch
    }

    /// Ring sizes in use: (priority, thread).
    pub fn ring_bytes(&self) -> (u32, u32) {
        self.ring_bytes
    }

    /// Takes the maps the drain thread reads. The programs stay attached for
    /// as long as `self` lives.
    pub fn drainer(&mut self) -> Result<Drainer, CaptureError> {
        let priority = RingBuf::try_from(take(&mut self.ebpf, maps::PRIORITY_RING)?)
            .map_err(|e| CaptureError::Map(maps::PRIORITY_RING, e.to_string()))?;
        let thread = RingBuf::try_from(take(&mut self.ebpf, maps::THREAD_RING)?)
            .map_err(|e| CaptureError::Map(maps::THREAD_RING, e.to_string()))?;
        let lost: PerCpuArray<MapData, u64> =
            PerCpuArray::try_from(take(&mut self.ebpf, maps::LOST)?)
                .map_err(|e| CaptureError::Map(maps::LOST, e.to_string()))?;
        let faults: PerCpuArray<MapData, u64> =
            PerCpuArray::try_from(take(&mut self.ebpf, maps::FAULTS)?)
                .map_err(|e| CaptureError::Map(maps::FAULTS, e.to_string()))?;
        let storms = match take(&mut self.ebpf, maps::STORMS)? {
            Map::Array(data) => data,
            _ => return Err(CaptureError::Map(maps::STORMS, "is not an array".into())),
        };
        let slots =
            storms::StormSlots::map(std::os::fd::AsFd::as_fd(storms.fd()), self.storm_slots)
                .map_err(|e| CaptureError::Map(maps::STORMS, format!("mmap: {e}")))?;
        Ok(Drainer::new(
            priority,
            thread,
            lost,
            faults,
            slots,
            storms,
            self.mount_source.take(),
        ))
    }
}

/// Every process id in the host's /proc (its directory lists a process
/// even when a mount covers the entry).
fn running_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

/// Where `ret` is in a syscall exit tracepoint's record, from the format
/// file of the syscall-tracepoint mount watch's first tracepoint
/// (`syscalls/sys_exit_mount`).
fn syscall_exit_ret_offset() -> Result<u32, String> {
    let Some(hooks::Attach::Tracepoints { category, names }) =
        hooks::of(Variant::MountWatch(MountWatch::SyscallTracepoints)).map(|hook| hook.attach)
    else {
        return Err("the syscall mount watch has no tracepoint".into());
    };
    let name = names
        .first()
        .ok_or("the syscall mount watch has no tracepoint")?;
    let path = format!("/sys/kernel/tracing/events/{category}/{name}/format");
    let format = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    format
        .lines()
        .find(|l| l.contains("field:long ret;"))
        .and_then(|l| l.split("offset:").nth(1))
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{path}: no \"ret\" field"))
}

/// Loads and attaches the programs of the mount watch `watch`, as its rows
/// in [`hooks::HOOKS`] say (fanotify and the mount tables have none). All
/// or nothing: where one of them fails, those attached are unloaded again,
/// so the next watch tried does not run beside a half of this one.
fn attach_mount_hooks(ebpf: &mut Ebpf, watch: MountWatch, btf: &Btf) -> Result<(), String> {
    let mut attached: Vec<&'static str> = Vec::new();
    let result = hooks::HOOKS
        .iter()
        .filter(|hook| hook.variant == Variant::MountWatch(watch))
        .try_for_each(|hook| {
            let Some(program) = hook.program else {
                return Ok(());
            };
            attached.push(program);
            attach_one(ebpf, program, hook.attach, btf)
        });
    if result.is_err() {
        for program in attached {
            if let Some(prog) = ebpf.program_mut(program) {
                let unloaded = match prog {
                    aya::programs::Program::FExit(p) => p.unload(),
                    aya::programs::Program::TracePoint(p) => p.unload(),
                    aya::programs::Program::BtfTracePoint(p) => p.unload(),
                    _ => Ok(()),
                };
                if let Err(error) = unloaded {
                    tracing::debug!(program, %error, "unloading a mount hook");
                }
            }
        }
    }
    result
}

/// Loads `program` and attaches it as `attach` says.
fn attach_one(
    ebpf: &mut Ebpf,
    program: &'static str,
    attach: hooks::Attach,
    btf: &Btf,
) -> Result<(), String> {
    let chain = |what: String, e: &dyn std::error::Error| {
        let mut text = what;
        let mut source = Some(e);
        while let Some(error) = source {
            text.push_str(&format!(": {error}"));
            source = error.source();
        }
        text
    };
    match attach {
        hooks::Attach::Tracepoints { category, names } => {
            let prog: &mut TracePoint = program_mut(ebpf, program).map_err(|e| e.to_string())?;
            prog.load()
                .map_err(|e| chain(format!("loading {program}"), &e))?;
            for name in names {
                prog.attach(category, name)
                    .map_err(|e| chain(format!("attaching {program} to {category}/{name}"), &e))?;
            }
        }
        hooks::Attach::BtfTracepoint(tracepoint) => {
            let prog: &mut BtfTracePoint = program_mut(ebpf, program).map_err(|e| e.to_string())?;
            prog.load(tracepoint, btf)
                .and_then(|()| prog.attach().map(drop))
                .map_err(|e| chain(format!("attaching {program} to {tracepoint}"), &e))?;
        }
        hooks::Attach::Fexit(function) => {
            let prog: &mut FExit = program_mut(ebpf, program).map_err(|e| e.to_string())?;
            prog.load(function, btf)
                .and_then(|()| prog.attach().map(drop))
                .map_err(|e| chain(format!("attaching {program} to fexit/{function}"), &e))?;
        }
        hooks::Attach::Inside(_) | hooks::Attach::FanotifyMarks | hooks::Attach::MountTables => {}
    }
    Ok(())
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, CaptureError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| CaptureError::Setting(format!("program {name} missing from the object")))?;
    program.try_into().map_err(|source| CaptureError::Program {
        what: format!("program {name}"),
        source,
    })
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, CaptureError> {
    ebpf.take_map(name)
        .ok_or_else(|| CaptureError::Map(name, "missing from the object".into()))
}

fn interval(rate: u32, name: &str) -> Result<u64, CaptureError> {
    if rate == 0 {
        return Err(CaptureError::Setting(format!(
            "{name} must be at least 1 per second"
        )));
    }
    Ok(1_000_000_000 / u64::from(rate))
}

/// Default ring sizes: this much a CPU, at least the minimum, rounded up to
/// a power of two. Shown by `run --help`, docs/configuration.md and deploy/config.toml
/// (a test checks they agree).
pub const PRIORITY_RING_PER_CPU: u32 = 1 << 20;
pub const PRIORITY_RING_MIN: u32 = 4 << 20;
pub const THREAD_RING_PER_CPU: u32 = 2 << 20;
pub const THREAD_RING_MIN: u32 = 8 << 20;

/// A ring size: the configured one (a power of two of at least a page), or
/// `per_cpu` bytes a CPU but at least `min`.
fn ring_size(
    configured: u32,
    cpus: u32,
    per_cpu: u32,
    min: u32,
    name: &str,
) -> Result<u32, CaptureError> {
    if configured == 0 {
        return Ok(per_cpu.saturating_mul(cpus).max(min).next_power_of_two());
    }
    if !configured.is_power_of_two() || configured < 4096 {
        return Err(CaptureError::Setting(format!(
            "{name} = {configured}: a ring size must be a power of two of at least 4096 bytes"
        )));
    }
    Ok(configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The programs in the shipped kernel object: each global function in
    /// a program section (helpers such as memcpy are in `.text`).
    fn programs_in(object: &[u8]) -> Vec<String> {
        use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolKind};
        let file = object::File::parse(object).expect("the kernel object is ELF");
        let mut programs: Vec<String> = file
            .symbols()
            .filter(|symbol| symbol.kind() == SymbolKind::Text && symbol.is_global())
            .filter(|symbol| {
                symbol
                    .section_index()
                    .and_then(|index| file.section_by_index(index).ok())
                    .and_then(|section| section.name().ok().map(|name| name != ".text"))
                    .unwrap_or(false)
            })
            .filter_map(|symbol| symbol.name().ok().map(str::to_owned))
            .collect();
        programs.sort();
        programs
    }

    #[test]
    fn the_shipped_object_holds_the_hook_tables_programs_and_nothing_else() {
        if EBPF_OBJECT.is_empty() {
            println!("SKIPPED: built without the kernel programs (AYA_BUILD_SKIP)");
            return;
        }
        let mut expected: Vec<String> = hooks::HOOKS
            .iter()
            .filter_map(|hook| hook.program.map(str::to_owned))
            .collect();
        expected.sort();
        // No benchmark floor program among them: it has its own object.
        assert_eq!(programs_in(EBPF_OBJECT), expected);
    }

    #[test]
    fn syscall_hooks_are_only_the_last_resort_of_the_mount_watch() {
        use MountWatch::*;
        use hooks::{CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE, Caps};
        // The shipped unit: CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE.
        let unit = 1 << CAP_BPF | 1 << CAP_PERFMON | 1 << CAP_SYS_PTRACE;
        let caps = |effective, level| Caps {
            effective,
            perf_event_paranoid: level,
        };
        // Debian's level 3 under the unit: fexit where BTF offers it, else
        // the mount tables; perf_event_open is refused, so no syscall
        // tracepoints.
        assert_eq!(
            MountWatch::candidates(false, true, &caps(unit, Some(3))),
            [Fexit, MountTables, RawSysExit]
        );
        assert_eq!(
            MountWatch::candidates(false, false, &caps(unit, Some(3))),
            [MountTables, RawSysExit]
        );
        assert_eq!(
            MountWatch::candidates(false, false, &caps(unit, Some(2))),
            [MountTables, SyscallTracepoints, RawSysExit]
        );
        // Root: everything, fanotify first wherever it can be had.
        let root = unit | 1 << CAP_SYS_ADMIN;
        assert_eq!(
            MountWatch::candidates(true, true, &caps(root, Some(3))),
            [Fanotify, Fexit, MountTables, SyscallTracepoints, RawSysExit]
        );
        assert_eq!(
            MountWatch::candidates(false, false, &caps(root, None)),
            [MountTables, SyscallTracepoints, RawSysExit]
        );
        // Without CAP_SYS_PTRACE (the daemon refuses to start so, but the
        // table does not rely on it) only the syscall hooks are left.
        let bpf_only = 1 << CAP_BPF | 1 << CAP_PERFMON;
        assert_eq!(
            MountWatch::candidates(false, false, &caps(bpf_only, Some(3))),
            [RawSysExit]
        );
        for watch in [Fanotify, Fexit, MountTables] {
            assert!(!watch.per_syscall(), "{watch:?}");
        }
        assert!(SyscallTracepoints.per_syscall() && RawSysExit.per_syscall());
    }

    #[test]
    fn ring_sizes_scale_with_cpus_and_reject_odd_sizes() {
        assert_eq!(ring_size(0, 2, 1 << 20, 4 << 20, "r").unwrap(), 4 << 20);
        assert_eq!(
            ring_size(0, 3, 1 << 20, 1 << 20, "r").unwrap(),
            4 << 20,
            "rounded up to a power of two"
        );
        assert_eq!(ring_size(0, 64, 1 << 20, 4 << 20, "r").unwrap(), 64 << 20);
        assert_eq!(ring_size(1 << 16, 2, 1, 1, "r").unwrap(), 1 << 16);
        assert!(ring_size(5000, 2, 1, 1, "r").is_err());
        assert!(ring_size(2048, 2, 1, 1, "r").is_err());
    }
}
