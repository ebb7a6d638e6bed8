//! Benchmark helper: attaches the empty `floor` program of the floor's own
//! kernel object (`rename-audit-ebpf/src/floor.rs`, built by build.rs beside
//! the daemon's, which does not carry it) to `tp_btf/task_rename` and, with
//! `--mount-hooks`, the empty `floor_syscall` program to the syscall exit
//! tracepoints the daemon watches mounts on (`sys_exit_mount`,
//! `sys_exit_move_mount`). Says
//! `attached` on stdout and holds them until stdin closes. `cargo xtask
//! bench` compares the renaming workload under it (the cost of hooking at
//! all) with the same workload under the daemon.
use std::io::{Read, Write};

use anyhow::{Context as _, Result, bail, ensure};
use aya::{
    Btf, EbpfLoader,
    programs::{BtfTracePoint, TracePoint},
};

static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rename-audit-floor"));

/// The tracepoints the daemon's default mount watch attaches to.
const MOUNT_HOOKS: [&str; 2] = ["sys_exit_mount", "sys_exit_move_mount"];

fn main() -> Result<()> {
    let mount_hooks = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--mount-hooks") => true,
        Some(other) => bail!("unknown argument {other:?}; usage: floor [--mount-hooks]"),
    };
    ensure!(
        !EBPF_OBJECT.is_empty(),
        "built without the kernel programs (AYA_BUILD_SKIP)"
    );
    // The floor's object has no maps.
    let mut ebpf = EbpfLoader::new()
        .load(EBPF_OBJECT)
        .context("loading the kernel object")?;
    let btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
    let program: &mut BtfTracePoint = ebpf
        .program_mut("floor")
        .context("no floor program in the object")?
        .try_into()?;
    program
        .load("task_rename", &btf)
        .context("loading the floor program")?;
    program
        .attach()
        .context("attaching the floor program to task_rename")?;
    if mount_hooks {
        let program: &mut TracePoint = ebpf
            .program_mut("floor_syscall")
            .context("no floor_syscall program in the object")?
            .try_into()?;
        program
            .load()
            .context("loading the floor_syscall program")?;
        for hook in MOUNT_HOOKS {
            program
                .attach("syscalls", hook)
                .with_context(|| format!("attaching floor_syscall to syscalls/{hook}"))?;
        }
    }
    println!("attached");
    std::io::stdout().flush()?;
    // Held until the benchmark closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
