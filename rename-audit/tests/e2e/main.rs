//! The end-to-end suite: one test binary (`cargo test --test e2e`), one
//! module per subject.
//!
//! Tests are selected by module path, not by name lists:
//! - `kernel::` holds every test whose outcome depends on the running
//!   kernel. Only these run again inside the qemu guests
//!   (`<e2e binary> kernel:: --test-threads=1`), so nothing in them may need
//!   a real Prometheus, Alertmanager or rsyslog: such tests live in the
//!   host-only modules.
//! - Every other module runs on the host only.
//!
//! Each daemon a test starts reads a configuration file the test wrote
//! (empty unless the test gives one), never /etc/rename-audit/config.toml:
//! `hermetic::` proves it with a hostile file there.
mod support;

mod alerting;
mod console;
mod container;
mod debian_host;
mod deploy;
mod edges;
mod fleet;
mod hermetic;
mod hostile;
mod kernel;
mod noise;
mod package;
mod query;
mod sinks;
