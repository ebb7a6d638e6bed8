//! Checks made before loading anything, so a missing privilege or kernel
//! feature gets a message that says what to do.
use std::path::Path;

use super::hooks::{self, CAP_SYS_PTRACE, Caps};

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "rename-audit needs CAP_BPF and CAP_PERFMON (or root) to load its kernel programs; \
         run it as root, or grant them: `setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep <binary>` \
         or AmbientCapabilities= in the systemd unit"
    )]
    MissingCapabilities,
    #[error(
        "rename-audit needs CAP_SYS_PTRACE to read the executable, arguments and parent of \
         processes that already run when it starts (/proc/<pid>/exe of other users' processes); \
         without it their renames would be judged without an executable and alerts would \
         silently drop to low. Grant it (the shipped unit has CAP_SYS_PTRACE in \
         CapabilityBoundingSet= and AmbientCapabilities=), or run as root"
    )]
    MissingPtrace,
    #[error(
        "Linux {release} is not supported: it has no kernel BTF ({path} does not exist); \
         rename-audit needs Linux {min} or later, built with BTF (CONFIG_DEBUG_INFO_BTF=y)",
        min = hooks::min_kernel()
    )]
    NoBtf { release: String, path: &'static str },
}

/// This process's privileges, as the hooks need them.
pub fn caps() -> Caps {
    Caps {
        effective: effective_capabilities(),
        perf_event_paranoid: std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
            .ok()
            .and_then(|l| l.trim().parse().ok()),
    }
}

pub fn check() -> Result<(), PreflightError> {
    let caps = caps();
    if !hooks::required_privileges().all(|privilege| privilege.granted(&caps)) {
        return Err(PreflightError::MissingCapabilities);
    }
    if !caps.has(CAP_SYS_PTRACE) {
        return Err(PreflightError::MissingPtrace);
    }
    if !Path::new(super::offsets::VMLINUX_BTF).exists() {
        return Err(PreflightError::NoBtf {
            release: super::kernel::running_release(),
            path: super::offsets::VMLINUX_BTF,
        });
    }
    raise_memlock();
    ensure_tracefs();
    Ok(())
}

/// The effective capability set, as a bit mask (0 if unreadable).
fn effective_capabilities() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; newer ones ignore
/// it. Raising it is harmless and may fail without CAP_SYS_RESOURCE.
fn raise_memlock() {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    if setrlimit(Resource::Memlock, unlimited).is_err() {
        tracing::debug!("could not raise RLIMIT_MEMLOCK; fine on Linux 5.11 and later");
    }
}

/// The hooks are BTF tracepoints and fentry, which do not need tracefs; but
/// operators checking the tracepoint with bpftool or bpftrace do, so mount it
/// when it is missing and say so when that fails.
fn ensure_tracefs() {
    const TRACEFS: &str = "/sys/kernel/tracing";
    if Path::new(TRACEFS).join("events").exists() {
        return;
    }
    let mounted = rustix::mount::mount(
        "tracefs",
        TRACEFS,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    );
    match mounted {
        Ok(()) => tracing::info!(path = TRACEFS, "mounted tracefs"),
        Err(error) => tracing::warn!(
            path = TRACEFS,
            error = %std::io::Error::from(error),
            "tracefs is not mounted and could not be mounted; rename-audit does not need it \
             (it uses BTF tracepoints), but `mount -t tracefs nodev {TRACEFS}` lets bpftool and bpftrace inspect task:task_rename"
        ),
    }
}
