//! Executable paths: writable locations and the name a path gives a process.

/// Places any user can write to, or that a user owns: a binary there was
/// dropped, not installed. `/run/lock` is world-writable on Debian; `/run/shm`
/// is the old name of `/dev/shm`.
pub const WRITABLE: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run/shm",
    "/run/lock",
    "/run/user",
    "/home",
    "/root",
];

/// How the kernel marks an executable whose file was unlinked.
const DELETED: &[u8] = b" (deleted)";
/// How the kernel shows an executable that lives in a memfd.
const MEMFD: &[u8] = b"/memfd:";

#[derive(Debug, PartialEq, Eq)]
pub enum Writable {
    Memfd,
    Deleted,
    /// Not an absolute path: the kernel's walk stopped short (deeper than it
    /// follows), so where the file lives is not known.
    Incomplete,
    /// Under this directory.
    Under(String),
}

/// Why `exe` counts as a dropped binary, if it does. `extra` are configured
/// directories (absolute, no trailing slash).
pub fn writable(exe: &[u8], extra: &[Vec<u8>]) -> Option<Writable> {
    if exe.starts_with(MEMFD) {
        return Some(Writable::Memfd);
    }
    if exe.ends_with(DELETED) {
        return Some(Writable::Deleted);
    }
    if !exe.starts_with(b"/") {
        return Some(Writable::Incomplete);
    }
    WRITABLE
        .iter()
        .map(|d| d.as_bytes())
        .chain(extra.iter().map(Vec::as_slice))
        .find(|dir| is_under(exe, dir))
        .map(|dir| Writable::Under(String::from_utf8_lossy(dir).into_owned()))
}

/// `path` is `dir` or inside it, component-wise: `/tmpfs/x` is not in `/tmp`.
fn is_under(path: &[u8], dir: &[u8]) -> bool {
    match path.strip_prefix(dir) {
        Some(rest) => rest.is_empty() || rest.starts_with(b"/"),
        None => false,
    }
}

/// The path without the kernel's " (deleted)" mark: a program replaced by a
/// package upgrade is the same program.
pub fn strip_deleted(exe: &[u8]) -> &[u8] {
    exe.strip_suffix(DELETED).unwrap_or(exe)
}

/// The name exec gives a process started from `exe`: the file name, cut to
/// the 15 bytes a comm holds.
pub fn comm_of(exe: &[u8]) -> &[u8] {
    let exe = strip_deleted(exe);
    let base = match exe.iter().rposition(|&b| b == b'/') {
        Some(slash) => &exe[slash + 1..],
        None => exe,
    };
    &base[..base.len().min(15)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_binaries_are_writable() {
        let none: &[Vec<u8>] = &[];
        for (exe, want) in [
            ("/tmp/x", Writable::Under("/tmp".into())),
            ("/var/tmp/a/b", Writable::Under("/var/tmp".into())),
            ("/dev/shm/x", Writable::Under("/dev/shm".into())),
            ("/run/user/1000/x", Writable::Under("/run/user".into())),
            ("/home/alice/bin/x", Writable::Under("/home".into())),
            ("/root/.pyenv/bin/python", Writable::Under("/root".into())),
            ("/usr/bin/x (deleted)", Writable::Deleted),
            ("/memfd:payload (deleted)", Writable::Memfd),
        ] {
            assert_eq!(writable(exe.as_bytes(), none), Some(want), "{exe}");
        }
    }

    #[test]
    fn installed_binaries_and_lookalike_prefixes_are_not_writable() {
        let none: &[Vec<u8>] = &[];
        for exe in [
            "/usr/bin/python3",
            "/tmpfs/x",
            "/homes/x",
            "/opt/app/x",
            "/rooted",
        ] {
            assert_eq!(writable(exe.as_bytes(), none), None, "{exe}");
        }
    }

    #[test]
    fn configured_directories_are_writable_too() {
        let extra = vec![b"/srv/upload".to_vec()];
        assert_eq!(
            writable(b"/srv/upload/x", &extra),
            Some(Writable::Under("/srv/upload".into()))
        );
        assert_eq!(writable(b"/srv/uploads/x", &extra), None);
    }

    #[test]
    fn comm_of_is_the_cut_file_name() {
        assert_eq!(comm_of(b"/usr/sbin/sshd"), b"sshd");
        assert_eq!(comm_of(b"/usr/sbin/sshd (deleted)"), b"sshd");
        assert_eq!(
            comm_of(b"/usr/lib/systemd/systemd-journald"),
            b"systemd-journal"
        );
        assert_eq!(comm_of(b"x"), b"x");
    }
}
