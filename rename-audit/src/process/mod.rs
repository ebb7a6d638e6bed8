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
    /// The first executable, among running processes whose current
    /// main-thread name equals `name` (excluding the pid given), for which
    /// `wanted` holds. Processes whose executable is unknown are left out: an
    /// unknown executable never counts as a different one. It stops at the
    /// first: thousands of processes can share a name, and a rename is
    /// judged against them every time.
    fn find_executable_named(
        &self,
        name: &[u8],
        except_pid: u32,
        wanted: &mut dyn FnMut(&Name) -> bool,
    ) -> Option<Name>;

    /// The root directory of process `pid` as the daemon can reach it
    /// (`<procfs>/<pid>/root`), to read its executable's owners and modes in
    /// its own mount namespace. `None` when the index has no procfs.
    fn root_of(&self, _pid: u32) -> Option<std::path::PathBuf> {
        None
    }
}
