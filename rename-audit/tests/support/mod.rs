//! Shared by the end-to-end tests.
#![allow(dead_code)]
pub mod daemon;
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
