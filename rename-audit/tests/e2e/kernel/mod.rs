//! Everything whose outcome depends on the running kernel: `cargo xtask
//! test` runs this module on the host and again inside each qemu guest
//! (`<e2e binary> kernel::`). Tests here need only the kernel, the daemon
//! and the renamer workload: nothing that the guests lack (Prometheus,
//! Alertmanager, rsyslog, podman).
mod capture;
mod hiding;
mod hooks;
mod identity;
mod masquerade;
mod storm;
