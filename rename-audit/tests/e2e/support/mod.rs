//! Shared by the end-to-end tests.
#![allow(dead_code)]
pub mod daemon;
pub mod fleet;
pub mod http;
pub mod package;
pub mod renamer;
pub mod servers;

/// A safety-net deadline, stretched by `RENAME_AUDIT_TEST_PATIENCE` (a
/// whole factor; `cargo xtask test` sets it in its qemu guest, where TCG runs
/// everything many times slower). Deadlines only bound how long a test
/// waits for something that must happen; they are not what it checks.
pub fn patience(deadline: std::time::Duration) -> std::time::Duration {
    let factor = std::env::var("RENAME_AUDIT_TEST_PATIENCE")
        .ok()
        .and_then(|f| f.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    deadline * factor
}

/// Tests that reported a skip so far in this run of the binary.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Reports that the calling test cannot run here, and why; the test then
/// returns. libtest has no skip outcome, so a skipped test shows as passed:
/// this line, written past libtest's output capture, says otherwise. The
/// running count lets a reader (or a script) see how many were skipped.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    let n = SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    // Straight to fd 2: `eprintln!` would be captured and hidden for a test
    // that "passes".
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: {reason} ({n} skipped so far in this run)"
    );
}

/// The running kernel's release as numbers, e.g. [6, 1, 0].
pub fn kernel_version() -> Vec<u32> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("kernel release");
    release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}
