//! The kernel matrix: the end-to-end tests again inside a qemu guest that
//! boots another kernel. virtme-ng shares this machine's root file system
//! into the guest (9p), so the same test binaries, compiler and workloads
//! run there; only the kernel differs.
//!
//! Guests run under TCG: `/dev/kvm` exists on this machine kind, but KVM
//! guests die with "emulation failure" on its nested virtualization.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail, ensure};
use duct::cmd;

use crate::cmd::{self as xcmd, step};

/// The one integration-test target; the tests in it whose outcome depends
/// on the kernel (capture, storms, hook variants, the executable path walk,
/// mount hooks) are in its `kernel` module and run in the guest too. The
/// rest (rules, sinks with real servers, the package) stay on the host,
/// which keeps the suite within its time budget.
pub const E2E_TARGET: &str = "e2e";
/// The name prefix of the tests the guest runs.
pub const KERNEL_PREFIX: &str = "kernel::";

/// A line of Debian 12 kernels the guests boot by default, each its newest
/// package `linux-image-<prefix><n><suffix>` in Debian's archive.
#[derive(Clone, Copy, Debug)]
pub struct KernelLine {
    prefix: &'static str,
    suffix: &'static str,
}

/// Every CI run boots these: Debian 12's own 6.1 (signal-live-count exits,
/// no sched_prepare_exec) and the 6.12 LTS from its backports, which has
/// sched_prepare_exec but no group_dead argument, a pair neither 6.1 nor
/// the host's newest kernel covers.
pub const DEFAULT_LINES: &[KernelLine] = &[
    KernelLine {
        prefix: "linux-image-6.1.0-",
        suffix: "-amd64",
    },
    KernelLine {
        prefix: "linux-image-6.12.",
        suffix: "+deb12-amd64",
    },
];

/// Where downloaded kernel packages are unpacked, one directory each.
const KERNEL_CACHE: &str = "/var/cache/rename-audit/kernels";

/// How much longer than on the host the tests' safety-net deadlines are in
/// the guest: TCG runs the same code many times slower, and the guest
/// shares the machine with the host's tests and builds. Tests read it from
/// `RENAME_AUDIT_TEST_PATIENCE`.
const GUEST_PATIENCE: u32 = 20;

/// A kernel to boot: its image and release (`uname -r` inside).
#[derive(Clone, Debug)]
pub struct GuestKernel {
    pub vmlinuz: PathBuf,
    pub release: String,
}

/// virtme-ng, from PyPI (Debian 12 does not package it).
pub const VIRTME_NG: &str = "virtme-ng==1.42";

impl KernelLine {
    /// What names the line, for messages.
    pub fn describe(self) -> String {
        format!("Debian 12's newest {}*{}", self.prefix, self.suffix)
    }

    /// This line's newest kernel if it is unpacked already (a cheap check).
    pub fn cached(self) -> Option<GuestKernel> {
        let mut found: Vec<(u32, PathBuf)> = fs::read_dir(KERNEL_CACHE)
            .ok()?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let n = self.number(&name)?;
                Some((n, Path::new(KERNEL_CACHE).join(name)))
            })
            .collect();
        found.sort();
        found.iter().rev().find_map(|(_, dir)| unpacked(dir).ok())
    }

    /// The number that orders the line's packages (the ABI of
    /// `linux-image-6.1.0-<abi>-amd64`, the patch level of
    /// `linux-image-6.12.<n>+deb12-amd64`); None for another package.
    fn number(self, name: &str) -> Option<u32> {
        let n = name.strip_prefix(self.prefix)?.strip_suffix(self.suffix)?;
        n.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| n.parse().ok())?
    }

    /// Downloads and unpacks the line's newest kernel.
    pub fn fetch(self) -> Result<GuestKernel> {
        let package = self.newest_package()?;
        fetch_package(&package)
    }

    /// The cached newest kernel, or else the fetched one.
    pub fn kernel(self) -> Result<GuestKernel> {
        self.cached().map(Ok).unwrap_or_else(|| self.fetch())
    }

    fn newest_package(self) -> Result<String> {
        let pattern = format!(
            "^{}[0-9]+{}$",
            regex_escape(self.prefix),
            regex_escape(self.suffix)
        );
        let search = || xcmd::output(&cmd!("apt-cache", "search", "--names-only", &pattern));
        let mut listing = search()?;
        if listing.trim().is_empty() {
            // A fresh machine has no package lists yet.
            xcmd::run(&cmd!("apt-get", "update"))?;
            listing = search()?;
        }
        listing
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter_map(|name| Some((self.number(name)?, name.to_owned())))
            .max()
            .map(|(_, name)| name)
            .with_context(|| {
                format!(
                    "Debian's archive lists no {}: is this Debian 12?",
                    self.describe()
                )
            })
    }
}

/// `s` with the characters apt-cache's regular expressions treat specially
/// escaped (`.` and `+` in kernel package names).
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".+*?()[]{}|^$\\".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// `--kernel SPEC`: a Debian kernel package name, or the path of a kernel
/// image whose modules are in `/lib/modules/<release>`.
pub fn from_spec(spec: &str) -> Result<GuestKernel> {
    let path = Path::new(spec);
    if path.is_file() {
        let release = release_of(path).with_context(|| {
            format!("{spec}: a kernel image must be named vmlinuz-<release>, as Debian names them")
        })?;
        let modules = Path::new("/lib/modules").join(&release);
        ensure!(
            modules.is_dir(),
            "{spec}: the guest needs this kernel's modules (9p, virtio) in {}; install its \
             package, or pass the package name instead of the image",
            modules.display()
        );
        return Ok(GuestKernel {
            vmlinuz: path.to_owned(),
            release,
        });
    }
    ensure!(
        spec.starts_with("linux-image-") && !spec.contains('/'),
        "--kernel {spec}: neither a file nor a Debian kernel package name (linux-image-...)"
    );
    fetch_package(spec)
}

/// Downloads a Debian kernel package, unpacks it into the cache and puts
/// its modules where virtme-ng's initramfs looks for them.
fn fetch_package(package: &str) -> Result<GuestKernel> {
    let dir = Path::new(KERNEL_CACHE).join(package);
    if let Ok(kernel) = unpacked(&dir) {
        return Ok(kernel);
    }
    step(format!("fetching the guest kernel {package}"));
    let download = dir.join("download");
    fs::create_dir_all(&download)
        .with_context(|| format!("cannot create {}", download.display()))?;
    xcmd::run(&cmd!("apt-get", "download", package).dir(&download))
        .with_context(|| format!("cannot download {package} from Debian's archive"))?;
    let deb = fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    let root = dir.join("root");
    xcmd::run(&cmd!("dpkg-deb", "-x", &deb, &root))?;
    fs::remove_dir_all(&download).ok();
    let kernel = unpacked(&dir)?;
    let modules = Path::new("/lib/modules").join(&kernel.release);
    if !modules.is_dir() {
        fs::create_dir_all("/lib/modules")?;
        let unpacked_modules = root.join("lib/modules").join(&kernel.release);
        xcmd::run(&cmd!("cp", "-a", unpacked_modules, &modules))?;
        xcmd::run(&cmd!("depmod", &kernel.release))?;
    }
    Ok(kernel)
}

/// The kernel in an unpacked package directory.
fn unpacked(dir: &Path) -> Result<GuestKernel> {
    let boot = dir.join("root/boot");
    fs::read_dir(&boot)
        .with_context(|| format!("{} is not unpacked", boot.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find_map(|vmlinuz| {
            let release = release_of(&vmlinuz)?;
            Some(GuestKernel { vmlinuz, release })
        })
        .with_context(|| format!("no vmlinuz-* in {}", boot.display()))
}

/// The release of a kernel image named `vmlinuz-<release>`.
fn release_of(vmlinuz: &Path) -> Option<String> {
    let name = vmlinuz.file_name()?.to_str()?;
    name.strip_prefix("vmlinuz-").map(str::to_owned)
}

/// The tests of `e2e --list`'s output (`<name>: test` lines) that the guest
/// runs: those in the `kernel` module, and with a `filter` only those whose
/// name contains it, as libtest would choose.
pub fn select_tests(listing: &str, filter: Option<&str>) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .filter(|name| name.starts_with(KERNEL_PREFIX))
        .filter(|name| filter.is_none_or(|filter| name.contains(filter)))
        .map(str::to_owned)
        .collect()
}

/// Lists the `e2e` binary's tests (no root needed) and selects the guest's.
pub fn guest_tests(e2e: &Path, filter: Option<&str>) -> Result<Vec<String>> {
    let listing = xcmd::output(&cmd!(e2e, "--list", KERNEL_PREFIX))?;
    Ok(select_tests(&listing, filter))
}

/// What a guest run printed, and its verdict.
pub struct GuestRun {
    /// The guest's output (`target/guest/<release>/output.log`), for the
    /// caller to print when it will not be interleaved with other output.
    pub log: String,
    pub verdict: Result<()>,
}

/// Where [`snapshot_daemon`] keeps the guest's copy of the daemon.
fn daemon_snapshot(target_dir: &Path) -> PathBuf {
    target_dir.join("guest").join("rename-audit")
}

/// Copies the daemon binary the tests were built against, before the host's
/// steps start. The guest runs this copy (bind-mounted over the original
/// path): while it runs, a host step can rebuild `target/debug/rename-audit`
/// (the package test's `cargo build --package rename-audit` resolves
/// features differently from the workspace's test build: without
/// rename-audit-common's default features and the dev-dependencies' ones,
/// so it relinks the daemon), and a daemon the guest starts from a file
/// replaced under 9p dies with SIGILL.
pub fn snapshot_daemon(target_dir: &Path) -> Result<()> {
    let copy = daemon_snapshot(target_dir);
    fs::create_dir_all(copy.parent().context("a parent")?)?;
    let daemon = target_dir.join("debug").join("rename-audit");
    fs::copy(&daemon, &copy).with_context(|| {
        format!(
            "cannot copy the daemon {} for the guest to {}",
            daemon.display(),
            copy.display()
        )
    })?;
    Ok(())
}

/// Boots `kernel` and runs the `tests` of the `e2e` binary in it, serially.
pub fn run_tests(
    kernel: &GuestKernel,
    e2e: &Path,
    tests: &[String],
    target_dir: &Path,
) -> Result<GuestRun> {
    let results = target_dir.join("guest").join(&kernel.release);
    if results.exists() {
        fs::remove_dir_all(&results)?;
    }
    fs::create_dir_all(&results)?;
    // The tests build their workload into CARGO_TARGET_TMPDIR.
    let tmp = target_dir.join("tmp");
    fs::create_dir_all(&tmp)?;
    let script = guest_script(
        kernel,
        e2e,
        tests,
        &results,
        &daemon_snapshot(target_dir),
        &target_dir.join("debug").join("rename-audit"),
    );
    fs::write(results.join("run.sh"), &script)?;
    step(format!(
        "end-to-end tests in a qemu guest booting Linux {} (TCG, 2 CPUs)",
        kernel.release
    ));
    let vng =
        xcmd::find_program("vng").context("virtme-ng's vng is missing; run cargo xtask setup")?;
    // qemu opens its console outputs (virtme-ng passes /proc/self/fd/1 and
    // 2) with O_TRUNC: inherited, they would wipe a log file that holds
    // everything printed before. The guest's own output goes to output.log.
    let console = fs::File::create(results.join("console.log"))?;
    let exec = format!("sh {}", results.join("run.sh").display());
    let guest = cmd!(
        vng,
        "--run",
        &kernel.vmlinuz,
        "--disable-kvm",
        "--cpus",
        "2",
        "--memory",
        "4G",
        "--rwdir",
        &results,
        "--rwdir",
        &tmp,
        "--exec",
        exec
    )
    .before_spawn(|command| {
        // Its own process group, so that a guest past its deadline is
        // killed with qemu and everything else virtme-ng started.
        std::os::unix::process::CommandExt::process_group(command, 0);
        Ok(())
    })
    .stdin_null()
    .stdout_file(console.try_clone()?)
    .stderr_file(console)
    // The verdict comes from the status file, not from vng's exit code.
    .unchecked();
    let ran = wait_or_kill(&guest, GUEST_DEADLINE);
    let log = fs::read_to_string(results.join("output.log")).unwrap_or_default();
    let status = fs::read_to_string(results.join("status")).ok();
    let verdict = ran.and_then(|()| verdict(kernel, status.as_deref(), &results));
    Ok(GuestRun { log, verdict })
}

/// The whole guest run at most: a hung guest (a test that blocks, a
/// wedged kernel) fails the run instead of blocking it. Its suite takes
/// 10-15 minutes under TCG here.
const GUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25 * 60);

/// Runs `guest`; past `deadline` kills its process group.
fn wait_or_kill(guest: &duct::Expression, deadline: std::time::Duration) -> Result<()> {
    let handle = guest
        .start()
        .with_context(|| format!("cannot start `{guest:?}`"))?;
    if handle.wait_timeout(deadline)?.is_some() {
        return Ok(());
    }
    for pid in handle.pids() {
        // SAFETY: kill(2) on the process group this run created (its
        // leader's pid, negated); no memory is involved.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    }
    let _ = handle.wait();
    bail!(
        "the guest did not finish within {} minutes and was killed (see output.log for the \
         test it was in)",
        deadline.as_secs() / 60
    )
}

/// Judges the `status` file the guest's script wrote: the `e2e` binary must
/// have said `ok`. No line at all means it was cut off (the guest died or
/// was killed while it ran): that is a failure too, not a pass.
fn verdict(kernel: &GuestKernel, status: Option<&str>, results: &Path) -> Result<()> {
    let status = status.with_context(|| {
        format!(
            "the guest ended without a verdict (it did not boot, or crashed); see {}",
            results.display()
        )
    })?;
    let said = |what: &str| status.lines().any(|l| l == format!("{E2E_TARGET} {what}"));
    if said("FAILED") {
        bail!(
            "end-to-end tests failed inside the Linux {} guest",
            kernel.release
        );
    }
    if !said("ok") {
        bail!(
            "the Linux {} guest stopped before the end-to-end tests finished (see {})",
            kernel.release,
            results.join("output.log").display()
        );
    }
    Ok(())
}

/// The guest's script: checks it booted the right kernel, runs the `e2e`
/// binary's selected tests (by exact name) one at a time and writes
/// `e2e ok|FAILED` to `status`. Each test's time is printed (libtest's
/// `--report-time`, unstable, hence RUSTC_BOOTSTRAP for the harness alone):
/// the guest is most of the suite's time budget.
fn guest_script(
    kernel: &GuestKernel,
    e2e: &Path,
    tests: &[String],
    results: &Path,
    daemon_copy: &Path,
    daemon: &Path,
) -> String {
    let log = results.join("output.log");
    let status = results.join("status");
    // Test names are Rust paths: nothing a shell would split or expand.
    let names = tests.join(" ");
    format!(
        "# written by cargo xtask test\n\
         exec >>'{log}' 2>&1\n\
         echo \"==> guest kernel: $(uname -r)\"\n\
         if [ \"$(uname -r)\" != '{release}' ]; then echo 'kernel: FAILED' >'{status}'; exit 1; fi\n\
         export RENAME_AUDIT_TEST_PATIENCE={GUEST_PATIENCE}\n\
         if ! mount --bind '{copy}' '{daemon}'; then echo 'daemon copy: FAILED' >'{status}'; exit 1; fi\n\
         : >'{status}'\n\
         echo '==> guest: {E2E_TARGET} ({count} tests)'\n\
         if RUSTC_BOOTSTRAP=1 '{exe}' --test-threads=1 -Zunstable-options --report-time --exact {names}; \
         then echo '{E2E_TARGET} ok' >>'{status}'; else echo '{E2E_TARGET} FAILED' >>'{status}'; fi\n",
        log = log.display(),
        status = status.display(),
        release = kernel.release,
        copy = daemon_copy.display(),
        daemon = daemon.display(),
        count = tests.len(),
        exe = e2e.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_default_line_orders_only_its_own_packages() {
        let [v61, v612] = [DEFAULT_LINES[0], DEFAULT_LINES[1]];
        assert_eq!(v61.number("linux-image-6.1.0-56-amd64"), Some(56));
        assert_eq!(v61.number("linux-image-6.1.0-56-cloud-amd64"), None);
        assert_eq!(v61.number("linux-image-6.1.0-56-amd64-dbg"), None);
        assert!(v61.number("linux-image-6.1.0-9-amd64") < v61.number("linux-image-6.1.0-56-amd64"));
        assert_eq!(v612.number("linux-image-6.12.118+deb12-amd64"), Some(118));
        assert_eq!(v612.number("linux-image-6.12.118+deb12-rt-amd64"), None);
        assert_eq!(v612.number("linux-image-6.12.118+deb12-cloud-amd64"), None);
        assert_eq!(v612.number("linux-image-6.12.118+deb12-amd64-dbg"), None);
        assert_eq!(v612.number("linux-image-6.1.0-56-amd64"), None);
        assert_eq!(v61.number("linux-image-6.12.118+deb12-amd64"), None);
    }

    #[test]
    fn apt_cache_patterns_escape_the_package_names_dots_and_pluses() {
        assert_eq!(regex_escape("linux-image-6.12."), "linux-image-6\\.12\\.");
        assert_eq!(regex_escape("+deb12-amd64"), "\\+deb12-amd64");
    }

    fn kernel() -> GuestKernel {
        GuestKernel {
            vmlinuz: "/k/vmlinuz-6.1.0-56-amd64".into(),
            release: "6.1.0-56-amd64".into(),
        }
    }

    /// What `e2e --list kernel::` prints: libtest's filter matches anywhere
    /// in a name, the guest takes only the `kernel` module.
    const LISTING: &str = "kernel::capture::renames_are_seen: test\n\
                           kernel::storm::storms_are_summarized: test\n\
                           kernel::capture::doc_example: benchmark\n\
                           sinks::kernel::not_in_the_guest: test\n\
                           \n3 tests, 1 benchmark\n";

    #[test]
    fn the_guest_runs_the_kernel_module_only() {
        assert_eq!(
            select_tests(LISTING, None),
            [
                "kernel::capture::renames_are_seen",
                "kernel::storm::storms_are_summarized"
            ]
        );
        assert_eq!(
            select_tests(LISTING, Some("storm")),
            ["kernel::storm::storms_are_summarized"]
        );
        assert!(select_tests(LISTING, Some("not_in_the_guest")).is_empty());
    }

    #[test]
    fn the_guest_script_runs_the_selected_tests_serially_and_records_the_verdict() {
        let tests = ["kernel::a::one".to_owned(), "kernel::b::two".to_owned()];
        let script = guest_script(
            &kernel(),
            Path::new("/t/e2e-1"),
            &tests,
            Path::new("/r"),
            Path::new("/t/guest/rename-audit"),
            Path::new("/t/debug/rename-audit"),
        );
        assert!(
            script.contains(
                "if RUSTC_BOOTSTRAP=1 '/t/e2e-1' --test-threads=1 -Zunstable-options \
                 --report-time --exact kernel::a::one kernel::b::two; then echo 'e2e ok' \
                 >>'/r/status'; else echo 'e2e FAILED' >>'/r/status'; fi"
            ),
            "{script}"
        );
        assert!(script.contains("!= '6.1.0-56-amd64'"));
        assert!(script.contains("RENAME_AUDIT_TEST_PATIENCE=20"));
        assert!(script.contains("mount --bind '/t/guest/rename-audit' '/t/debug/rename-audit'"));
    }

    /// A guest killed in the middle of the tests wrote no verdict line:
    /// that run failed (it used to pass).
    #[test]
    fn a_run_without_a_verdict_fails() {
        let kernel = kernel();
        let judge = |status| verdict(&kernel, status, Path::new("/r"));
        let cut_off = judge(Some("")).unwrap_err().to_string();
        assert!(
            cut_off.contains("stopped before the end-to-end tests finished"),
            "{cut_off}"
        );
        let failed = judge(Some("e2e FAILED\n")).unwrap_err().to_string();
        assert!(
            failed.contains("failed inside the Linux 6.1.0-56-amd64 guest"),
            "{failed}"
        );
        assert!(judge(None).is_err());
        assert!(judge(Some("kernel: FAILED\n")).is_err());
        assert!(judge(Some("e2e ok\n")).is_ok());
    }
}
