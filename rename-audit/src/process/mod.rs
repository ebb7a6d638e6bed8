//! What is known about one process, as plain values: its executable's
//! file and its cgroup (with the unit and container it names), and the one
//! question the rules ask about the other processes. The process table
//! fills these in, events carry them and rules read them; this module
//! imports none of those.
mod cgroup;

pub use cgroup::{Cgroup, Container};

use crate::names::Name;

/// The executable's file, as `stat` would name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExeFile {
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
}

/// What the process table tells the rules about other running processes.
pub trait ProcessIndex {
    /// Executables of running processes whose current main-thread name equals
    /// `name` (excluding the pid given). Processes whose executable is unknown
    /// are left out: an unknown executable never counts as a different one.
    fn executables_named(&self, name: &[u8], except_pid: u32) -> Vec<Name>;
}
