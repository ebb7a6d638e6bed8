//! Shared helpers for integration tests: `mod support;` in a test file.
//!
//! - [`servers`]: Debian's real Prometheus, Alertmanager and rsyslog started
//!   on loopback with test-owned configs and data directories.
//! - [`http`]: a tiny blocking HTTP/1.0 client for their APIs.
#![allow(dead_code)] // each test binary uses its own part

pub mod http;
pub mod servers;
