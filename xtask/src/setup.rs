//! `cargo xtask setup`: everything a fresh Debian 12 machine of this kind
//! (root, rustup with a `nightly` toolchain that carries LLVM) needs to build
//! the kernel programs, run the daemon, its tests and the benchmark.
//!
//! [`inspect`] only looks (a few milliseconds: no network, no apt); the other
//! commands call [`ensure`] with their [`Task`], which installs only what
//! that task needs and is missing: running the daemon needs the nightly's
//! rust-src and bpf-linker, not the test suite's qemu or podman.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail, ensure as check};

use crate::{
    cmd::{self, note, step},
    guest,
};

/// The bpf-linker release that links the kernel programs; it must be built
/// against the nightly's own LLVM, or it cannot read the bitcode rustc emits.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The cargo-deb release that builds the Debian package (`cargo xtask
/// package`).
const CARGO_DEB_VERSION: &str = "3.8.0";
/// LLVM majors that bpf-linker 0.13.0 has a feature (`llvm-<major>`) for.
const BPF_LINKER_LLVM_MAJORS: std::ops::RangeInclusive<u32> = 21..=23;
/// The toolchain aya-build compiles the kernel programs with.
const NIGHTLY: &str = "nightly";
const TRACEFS: &str = "/sys/kernel/tracing";
const BTF: &str = "/sys/kernel/btf/vmlinux";

/// What a command needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Build, run or install the daemon: the BPF toolchain and tracefs.
    Build,
    /// Build the Debian package: also cargo-deb and lintian.
    Package,
    /// The benchmark: also its comparisons (bpftrace, auditd).
    Bench,
    /// The test suite: also its servers, the package and the guest.
    Test,
    /// `cargo xtask setup`: everything.
    All,
}

impl Task {
    fn needs(self, use_: Use) -> bool {
        matches!(
            (self, use_),
            (Task::All, _)
                | (Task::Package, Use::Package)
                | (Task::Test, Use::Package | Use::Test)
                | (Task::Bench, Use::Bench)
        )
    }
}

/// What an item of the setup is for, beyond the BPF toolchain and tracefs,
/// which every task needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Package,
    Bench,
    Test,
}

/// A Debian package, present when all of its `programs` are (a program
/// given as an absolute path is a file that must exist, such as an rsyslog
/// module): name, programs, purpose, and what needs it.
struct Package(&'static str, &'static [&'static str], &'static str, Use);

impl Package {
    fn name(&self) -> &'static str {
        self.0
    }

    fn is_missing(&self) -> bool {
        self.1.iter().any(|program| {
            if program.starts_with('/') {
                !Path::new(program).exists()
            } else {
                cmd::find_program(program).is_none()
            }
        })
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.0, self.2)
    }
}

/// Package names checked with `apt-cache policy` on Debian 12 (bookworm).
#[rustfmt::skip]
const PACKAGES: &[Package] = &[
    Package("bpftrace", &["bpftrace"], "benchmark comparison", Use::Bench),
    Package("bpftool", &["bpftool"], "inspecting loaded programs and maps", Use::Test),
    Package("prometheus", &["prometheus"], "metrics sink tests", Use::Test),
    Package("prometheus-alertmanager", &["prometheus-alertmanager"], "alert sink tests", Use::Test),
    Package("rsyslog", &["rsyslogd"], "syslog sink tests", Use::Test),
    Package("rsyslog-relp", &["/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so"], "the fleet relay tests (RELP)", Use::Test),
    Package("rsyslog-gnutls", &["/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"], "syslog over TLS tests (gtls driver)", Use::Test),
    Package("rsyslog-openssl", &["/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so"], "syslog over TLS tests (ossl driver)", Use::Test),
    Package("apache2-utils", &["htpasswd"], "bcrypt passwords for the Alertmanager cluster tests", Use::Test),
    Package("openssl", &["openssl"], "certificates for the TLS sink tests", Use::Test),
    Package("curl", &["curl"], "querying the mTLS Alertmanager replicas in the sink tests", Use::Test),
    Package("systemd", &["systemd-analyze"], "systemd unit tests", Use::Test),
    Package("logrotate", &["logrotate"], "log rotation tests with the shipped deploy/logrotate", Use::Test),
    Package("auditd", &["auditd", "auditctl"], "benchmark comparison", Use::Bench),
    Package("qemu-system-x86", &["qemu-system-x86_64"], "the kernel matrix's guest", Use::Test),
    Package("busybox-static", &["busybox"], "the guest's initramfs (virtme-ng); busybox applets in the noise corpus", Use::Test),
    Package("tmux", &["tmux"], "the noise corpus (a tmux session)", Use::Test),
    Package("vim", &["vim.basic"], "the noise corpus (vi through the alternatives system)", Use::Test),
    Package("openjdk-17-jre-headless", &["java"], "the noise corpus (a JVM start)", Use::Test),
    Package("lintian", &["lintian"], "checking the Debian package", Use::Package),
    Package("podman", &["podman"], "the container context test (a real container)", Use::Test),
    Package("runc", &["runc"], "podman's runtime on hosts with hybrid cgroups (crun refuses them)", Use::Test),
    Package("mmdebstrap", &["mmdebstrap"], "the Debian 12 host test's system image", Use::Test),
    Package("e2fsprogs", &["mkfs.ext4"], "the Debian 12 host test's disk image", Use::Test),
];

/// What the nightly toolchain is made of.
struct Nightly {
    sysroot: PathBuf,
    llvm_major: u32,
    /// The toolchain's `lib/libLLVM.so.<ver>-rust-<ver>-nightly`.
    libllvm: PathBuf,
}

impl Nightly {
    fn probe() -> Result<Self> {
        let toolchain = format!("+{NIGHTLY}");
        let verbose = cmd::output(&duct::cmd!("rustc", &toolchain, "-vV")).with_context(|| {
            format!(
                "the `{NIGHTLY}` toolchain is not usable; this machine kind should carry \
                 it (else: rustup toolchain install {NIGHTLY} --component rust-src)"
            )
        })?;
        let llvm_major = parse_llvm_major(&verbose)?;
        let sysroot = cmd::output(&duct::cmd!("rustc", &toolchain, "--print", "sysroot"))?;
        let sysroot = PathBuf::from(sysroot.trim());
        let libllvm = find_libllvm(&sysroot.join("lib"))?;
        Ok(Self {
            sysroot,
            llvm_major,
            libllvm,
        })
    }

    fn has_rust_src(&self) -> bool {
        self.sysroot
            .join("lib/rustlib/src/rust/library/core/src/lib.rs")
            .is_file()
    }

    /// The file name of the toolchain's libLLVM, which Rust's packaging also
    /// uses as its soname (what bpf-linker records as NEEDED).
    fn soname(&self) -> &std::ffi::OsStr {
        self.libllvm
            .file_name()
            .expect("find_libllvm returns file paths")
    }
}

/// The LLVM major from the `LLVM version: 22.1.4` line of `rustc -vV`.
fn parse_llvm_major(verbose: &str) -> Result<u32> {
    let version = verbose
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version:"))
        .context("`rustc +nightly -vV` printed no `LLVM version:` line")?;
    let major = version.trim().split('.').next().unwrap_or_default();
    major
        .parse()
        .with_context(|| format!("cannot read the LLVM major from `{}`", version.trim()))
}

/// The real shared library, not the `libLLVM-<major>-rust-*.so` linker script
/// beside it.
fn find_libllvm(lib: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(lib).with_context(|| format!("cannot list {}", lib.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_libllvm = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with("libLLVM.so."));
        if is_libllvm && entry.file_type()?.is_file() {
            found.push(entry.path());
        }
    }
    match <[PathBuf; 1]>::try_from(found) {
        Ok([path]) => Ok(path),
        Err(found) if found.is_empty() => bail!(
            "no libLLVM.so.* in {}: the nightly toolchain has no shared LLVM to build \
             bpf-linker against",
            lib.display()
        ),
        Err(found) => bail!("several libLLVM.so.* in {}: {found:?}", lib.display()),
    }
}

/// What `task` needs that is missing; empty when the machine is ready.
struct Plan {
    task: Task,
    nightly: Nightly,
    rust_src: bool,
    bpf_linker: Option<&'static str>,
    cargo_deb: Option<&'static str>,
    tracefs: bool,
    packages: Vec<&'static Package>,
    /// virtme-ng (PyPI), which boots the guest kernels.
    virtme: bool,
    /// The default guest kernels (Debian 12's newest 6.1 and 6.12) that are
    /// not unpacked.
    guest_kernels: Vec<guest::KernelLine>,
}

/// The Debian packages `task` needs.
fn packages_for(task: Task) -> impl Iterator<Item = &'static Package> {
    PACKAGES.iter().filter(move |package| task.needs(package.3))
}

fn inspect(task: Task) -> Result<Plan> {
    let nightly = Nightly::probe()?;
    let guest = task.needs(Use::Test);
    Ok(Plan {
        task,
        rust_src: !nightly.has_rust_src(),
        bpf_linker: bpf_linker_problem(&nightly),
        cargo_deb: task.needs(Use::Package).then(cargo_deb_problem).flatten(),
        tracefs: !tracefs_mounted()?,
        packages: packages_for(task).filter(|p| p.is_missing()).collect(),
        virtme: guest && cmd::find_program("vng").is_none(),
        guest_kernels: guest::DEFAULT_LINES
            .iter()
            .copied()
            .filter(|line| guest && line.cached().is_none())
            .collect(),
        nightly,
    })
}

impl Plan {
    /// Every item the task needs, and whether it is missing.
    fn items(&self) -> Vec<(String, bool)> {
        let mut items = vec![
            (format!("rust-src for {NIGHTLY}"), self.rust_src),
            (
                format!(
                    "bpf-linker {BPF_LINKER_VERSION} on the nightly's LLVM{}",
                    problem(self.bpf_linker)
                ),
                self.bpf_linker.is_some(),
            ),
        ];
        if self.task.needs(Use::Package) {
            let what = format!("cargo-deb {CARGO_DEB_VERSION}{}", problem(self.cargo_deb));
            items.push((what, self.cargo_deb.is_some()));
        }
        items.push((format!("tracefs mounted at {TRACEFS}"), self.tracefs));
        items.extend(packages_for(self.task).map(|package| {
            let missing = self.packages.iter().any(|p| p.name() == package.name());
            (package.describe(), missing)
        }));
        if self.task.needs(Use::Test) {
            let virtme = format!("{} (boots the guest kernels)", guest::VIRTME_NG);
            items.push((virtme, self.virtme));
            for line in guest::DEFAULT_LINES {
                let missing = self
                    .guest_kernels
                    .iter()
                    .any(|l| l.describe() == line.describe());
                items.push((format!("{} (a guest kernel)", line.describe()), missing));
            }
        }
        items
    }

    fn missing(&self) -> Vec<String> {
        let items = self.items().into_iter();
        items
            .filter_map(|(item, missing)| missing.then_some(item))
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.missing().is_empty()
    }

    fn needs_root(&self) -> bool {
        self.tracefs || !self.packages.is_empty() || !self.guest_kernels.is_empty()
    }
}

fn problem(problem: Option<&str>) -> String {
    problem.map(|p| format!(" ({p})")).unwrap_or_default()
}

/// `None` when a bpf-linker of the right version, linked against this
/// nightly's libLLVM, is on hand.
fn bpf_linker_problem(nightly: &Nightly) -> Option<&'static str> {
    let Some(linker) = cmd::find_program("bpf-linker") else {
        return Some("not installed");
    };
    let Some(version) = cmd::probe(&duct::cmd!(&linker, "--version")) else {
        // Typically its libLLVM went away (toolchain update, prefix removed).
        return Some("installed but does not run");
    };
    if !version
        .split_whitespace()
        .any(|word| word == BPF_LINKER_VERSION)
    {
        return Some("another version is installed");
    }
    // ldd is part of libc-bin, so always there on Debian; without it the
    // version check has to do.
    if let Some(libs) = cmd::probe(&duct::cmd!("ldd", &linker)) {
        let ours = fs::canonicalize(&nightly.libllvm).ok();
        let linked = libs
            .lines()
            .filter(|line| line.contains("libLLVM"))
            .filter_map(|line| line.split("=>").nth(1)?.split_whitespace().next())
            .any(|path| fs::canonicalize(path).ok() == ours);
        if !linked {
            return Some("built against another LLVM than the nightly's");
        }
    }
    None
}

/// `None` when `cargo deb` is the pinned version.
fn cargo_deb_problem() -> Option<&'static str> {
    let Some(program) = cmd::find_program("cargo-deb") else {
        return Some("not installed");
    };
    // Run as `cargo deb` would: the subcommand gets "deb" as its first argument.
    let Some(version) = cmd::probe(&duct::cmd!(program, "deb", "--version")) else {
        return Some("installed but does not run");
    };
    if version
        .split_whitespace()
        .any(|word| word == CARGO_DEB_VERSION)
    {
        None
    } else {
        Some("another version is installed")
    }
}

fn install_cargo_deb() -> Result<()> {
    let version = format!("={CARGO_DEB_VERSION}");
    // --force replaces another version.
    let args = ["install", "--locked", "cargo-deb", "--version", &version];
    cmd::run(&cmd::cargo(args.into_iter().chain(["--force"])))?;
    if let Some(problem) = cargo_deb_problem() {
        bail!("cargo-deb was installed but is still not usable ({problem})");
    }
    Ok(())
}

fn tracefs_mounted() -> Result<bool> {
    let mounts =
        fs::read_to_string("/proc/self/mounts").context("cannot read /proc/self/mounts")?;
    Ok(mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_source, target, fstype) = (fields.next(), fields.next(), fields.next());
        target == Some(TRACEFS) && fstype == Some("tracefs")
    }))
}

/// `cargo xtask setup`: report every item, then install what is missing.
pub fn setup() -> Result<()> {
    step("checking the machine");
    let plan = inspect(Task::All)?;
    let nightly = &plan.nightly;
    note(format!(
        "{NIGHTLY} toolchain: {} (LLVM {})",
        nightly.sysroot.display(),
        nightly.llvm_major
    ));
    for (item, missing) in plan.items() {
        note(format!(
            "[{}] {item}",
            if missing { "MISSING" } else { " ok  " }
        ));
    }
    if !Path::new(BTF).exists() {
        note(format!(
            "warning: {BTF} is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF), \
             so the daemon will refuse to start"
        ));
    }
    if plan.is_empty() {
        step("setup: nothing to do, everything is in place");
        return Ok(());
    }
    apply(plan)
}

/// Installs what `task` needs when the cheap checks find it missing. Every
/// build, run, package, bench and test command starts with this.
pub fn ensure(task: Task) -> Result<()> {
    let plan = inspect(task)?;
    if plan.is_empty() {
        return Ok(());
    }
    step(format!(
        "setup needed, missing: {}",
        plan.missing().join(", ")
    ));
    apply(plan)
}

fn apply(plan: Plan) -> Result<()> {
    // Refuse before changing anything, rather than half-way through.
    if plan.needs_root() && !cmd::is_root() {
        bail!(
            "setup must run as root to mount tracefs and install Debian packages; missing: {}. \
             Run `sudo -E cargo xtask setup` (or the same command as root)",
            plan.missing().join(", ")
        );
    }
    // The Rust tools compile while the system's pieces download and unpack:
    // on a fresh machine these are the two long parts of setup, and they
    // need different things (the CPU; the network and dpkg).
    std::thread::scope(|scope| {
        let system = scope.spawn(|| install_system_pieces(&plan));
        let rust = install_rust_tools(&plan);
        let system = system
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the Debian packages' thread panicked")));
        rust.and(system)
    })?;
    let left = inspect(plan.task)?;
    check!(
        left.is_empty(),
        "setup finished but still missing: {}",
        left.missing().join(", ")
    );
    step("setup complete");
    Ok(())
}

/// rust-src, bpf-linker and cargo-deb: compiled, one after the other.
fn install_rust_tools(plan: &Plan) -> Result<()> {
    if plan.rust_src {
        step(format!("adding rust-src to the {NIGHTLY} toolchain"));
        cmd::run(&duct::cmd!(
            "rustup",
            "component",
            "add",
            "rust-src",
            "--toolchain",
            NIGHTLY
        ))?;
    }
    if let Some(problem) = plan.bpf_linker {
        step(format!(
            "building bpf-linker {BPF_LINKER_VERSION} against the nightly's LLVM {} ({problem}; \
             takes about a minute)",
            plan.nightly.llvm_major
        ));
        install_bpf_linker(&plan.nightly)?;
    }
    if let Some(problem) = plan.cargo_deb {
        step(format!(
            "installing cargo-deb {CARGO_DEB_VERSION} ({problem}; takes a few minutes)"
        ));
        install_cargo_deb()?;
    }
    Ok(())
}

/// tracefs, the Debian packages, virtme-ng and the guest kernel, in this
/// order (apt holds its locks one command at a time).
fn install_system_pieces(plan: &Plan) -> Result<()> {
    if plan.tracefs {
        step(format!("mounting tracefs at {TRACEFS}"));
        mount_tracefs()?;
    }
    if !plan.packages.is_empty() {
        step("installing Debian packages");
        install_packages(&plan.packages)?;
    }
    if plan.virtme {
        step(format!("installing {} from PyPI", guest::VIRTME_NG));
        cmd::run(&duct::cmd!(
            "python3",
            "-m",
            "pip",
            "install",
            "--quiet",
            guest::VIRTME_NG
        ))?;
    }
    for line in &plan.guest_kernels {
        let kernel = line.fetch()?;
        note(format!("guest kernel: {}", kernel.vmlinuz.display()));
    }
    Ok(())
}

/// Builds bpf-linker against the nightly's own libLLVM through an LLVM
/// "prefix" that holds only `lib/libLLVM.so` and `lib/<soname>`.
///
/// The prefix is kept under CARGO_HOME, not under target/: bpf-linker's
/// RUNPATH points into it, so it must outlive `cargo clean`. It is named after
/// the libLLVM file, so a toolchain update gets a new prefix instead of
/// rewriting the links an older build may still use.
fn install_bpf_linker(nightly: &Nightly) -> Result<()> {
    check!(
        BPF_LINKER_LLVM_MAJORS.contains(&nightly.llvm_major),
        "bpf-linker {BPF_LINKER_VERSION} supports LLVM {}..={}, but the {NIGHTLY} toolchain \
         carries LLVM {}",
        BPF_LINKER_LLVM_MAJORS.start(),
        BPF_LINKER_LLVM_MAJORS.end(),
        nightly.llvm_major
    );
    let prefix = cmd::cargo_home()?
        .join("bpf-linker-llvm")
        .join(nightly.soname());
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    for name in [std::ffi::OsStr::new("libLLVM.so"), nightly.soname()] {
        let link = lib.join(name);
        if link.symlink_metadata().is_ok() {
            fs::remove_file(&link).with_context(|| format!("cannot replace {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&nightly.libllvm, &link)
            .with_context(|| format!("cannot link {}", link.display()))?;
    }
    note(format!(
        "LLVM prefix {} -> {}",
        lib.display(),
        nightly.libllvm.display()
    ));
    let feature = format!("llvm-{}", nightly.llvm_major);
    let install = cmd::cargo([
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
        "--no-default-features",
        "--features",
        &feature,
        // Replaces a broken or other-LLVM build of the same version too.
        "--force",
    ]);
    cmd::run(&install.env("LLVM_PREFIX", &prefix))?;
    if let Some(problem) = bpf_linker_problem(nightly) {
        bail!(
            "bpf-linker was installed but is still not usable ({problem}); is {} on PATH?",
            cmd::cargo_home()?.join("bin").display()
        );
    }
    Ok(())
}

fn mount_tracefs() -> Result<()> {
    check!(
        Path::new(TRACEFS).is_dir(),
        "{TRACEFS} does not exist: this kernel has no tracefs (CONFIG_TRACING)"
    );
    cmd::run(&duct::cmd!("mount", "-t", "tracefs", "tracefs", TRACEFS)).with_context(|| {
        format!(
            "cannot mount tracefs; in a container, mount it on the host or grant \
             CAP_SYS_ADMIN (`mount -t tracefs tracefs {TRACEFS}`)"
        )
    })
}

fn install_packages(packages: &[&Package]) -> Result<()> {
    let names: Vec<&str> = packages.iter().map(|package| package.name()).collect();
    check!(
        cmd::find_program("apt-get").is_some(),
        "apt-get not found: this is not a Debian system; install these packages by hand: {}",
        names.join(" ")
    );
    let _no_service_starts = PolicyRcD::install()?;
    let apt = |args: &[&str]| {
        let options = [
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ];
        duct::cmd("apt-get", options.iter().chain(args)).env("DEBIAN_FRONTEND", "noninteractive")
    };
    cmd::run(&apt(&["update"]))?;
    cmd::run(&apt(&[&["install", "-y"][..], &names].concat()))
}

/// Keeps apt from starting the packages' services (prometheus,
/// alertmanager, rsyslog, auditd): the tests start their own, on loopback,
/// with their own configuration, and a stray system instance would hold
/// their ports. Removed again on drop; an existing policy is left alone.
struct PolicyRcD(Option<PathBuf>);

impl PolicyRcD {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn install() -> Result<Self> {
        let path = Path::new(Self::PATH);
        if path.symlink_metadata().is_ok() {
            return Ok(Self(None));
        }
        use std::os::unix::fs::PermissionsExt as _;
        fs::write(
            path,
            "#!/bin/sh\n# written by cargo xtask setup\nexit 101\n",
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        Ok(Self(Some(path.to_owned())))
    }
}

impl Drop for PolicyRcD {
    fn drop(&mut self) {
        if let Some(path) = &self.0
            && let Err(error) = fs::remove_file(path)
        {
            note(format!(
                "warning: cannot remove {}: {error}",
                path.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(task: Task) -> Vec<&'static str> {
        packages_for(task).map(Package::name).collect()
    }

    /// `cargo xtask run` (and build, install) installs no Debian package:
    /// a new user's first run once pulled in 389 of them (qemu, podman...).
    #[test]
    fn running_needs_no_debian_package_and_no_test_tool() {
        assert_eq!(names(Task::Build), Vec::<&str>::new());
        for test_only in [Use::Package, Use::Bench, Use::Test] {
            assert!(!Task::Build.needs(test_only), "{test_only:?}");
        }
    }

    #[test]
    fn each_task_gets_its_own_tools() {
        assert_eq!(names(Task::Package), ["lintian"]);
        assert_eq!(names(Task::Bench), ["bpftrace", "auditd"]);
        let test = names(Task::Test);
        for needed in [
            "qemu-system-x86",
            "podman",
            "prometheus",
            "prometheus-alertmanager",
            "rsyslog",
            "rsyslog-relp",
            "rsyslog-gnutls",
            "rsyslog-openssl",
            "lintian",
            "mmdebstrap",
        ] {
            assert!(test.contains(&needed), "{needed} missing from {test:?}");
        }
        assert!(!test.contains(&"bpftrace"), "the bench's tools: {test:?}");
        assert_eq!(names(Task::All).len(), PACKAGES.len());
    }

    #[test]
    fn llvm_major_comes_from_rustc_verbose_version() {
        let verbose = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\n\
                       host: x86_64-unknown-linux-gnu\nLLVM version: 22.1.4\n";
        assert_eq!(parse_llvm_major(verbose).expect("valid output"), 22);
        assert!(parse_llvm_major("rustc 1.0\n").is_err(), "no LLVM line");
    }

    #[test]
    fn libllvm_is_the_shared_object_not_the_linker_script() {
        let dir = std::env::temp_dir().join(format!("xtask-libllvm-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create temp dir");
        fs::write(dir.join("libLLVM-22-rust-1.97.0-nightly.so"), "INPUT(x)").expect("write");
        fs::write(dir.join("libLLVM.so.22.1-rust-1.97.0-nightly"), "").expect("write");
        let found = find_libllvm(&dir);
        fs::remove_dir_all(&dir).expect("remove temp dir");
        assert_eq!(
            found.expect("one libLLVM").file_name().expect("file name"),
            "libLLVM.so.22.1-rust-1.97.0-nightly"
        );
    }
}
