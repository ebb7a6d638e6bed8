//! Builds the kernel programs (`rename-audit-ebpf`) with the nightly toolchain and
//! bpf-linker, and leaves the objects in OUT_DIR for `include_bytes_aligned!`:
//! `rename-audit`, the daemon's, and `rename-audit-floor`, the benchmark's
//! empty programs (embedded only by `examples/floor.rs`).
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest_dir)
        .parent()
        .ok_or_else(|| anyhow!("rename-audit has no parent directory"))?
        .join("rename-audit-ebpf");
    let root = root
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", root.display()))?;
    println!("cargo:rerun-if-changed={root}/src");
    // The kernel programs are compiled against the common crate's records
    // too: a change there must rebuild them.
    let common = std::path::Path::new(&manifest_dir)
        .parent()
        .ok_or_else(|| anyhow!("rename-audit has no parent directory"))?
        .join("rename-audit-common/src");
    println!("cargo:rerun-if-changed={}", common.display());
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").context("OUT_DIR")?);
    if std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        // Lets userspace-only work (unit tests, clippy) proceed without the BPF
        // toolchain; the daemon then refuses to start with a clear error.
        for name in ["rename-audit", "rename-audit-floor"] {
            let object = out_dir.join(name);
            if !object.exists() {
                std::fs::write(&object, b"").context("write placeholder eBPF object")?;
            }
        }
        return Ok(());
    }
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "rename-audit-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
