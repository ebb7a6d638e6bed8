//! Benchmark helper: attaches only the empty `floor` program that the
//! kernel object carries to `tp_btf/task_rename`, says `attached` on stdout
//! and holds it until stdin closes. `cargo xtask bench` compares the
//! renaming workload under it (the cost of hooking at all) with the same
//! workload under the daemon.
use std::io::{Read, Write};

use anyhow::{Context as _, Result, ensure};
use aya::{Btf, EbpfLoader, programs::BtfTracePoint};

static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rename-audit"));

fn main() -> Result<()> {
    ensure!(
        !EBPF_OBJECT.is_empty(),
        "built without the kernel programs (AYA_BUILD_SKIP)"
    );
    // The object's maps are created (unused) along with it; the task-local
    // one has no aya wrapper.
    let mut ebpf = EbpfLoader::new()
        .allow_unsupported_maps()
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
    println!("attached");
    std::io::stdout().flush()?;
    // Held until the benchmark closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
