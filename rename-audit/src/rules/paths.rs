//! Executable paths: who can write an executable, and the name a path gives
//! a process.
//!
//! An executable is judged by its file system: when the file or any directory
//! above it belongs to a user other than root, or is writable by a group
//! other than root's or by anyone, someone other than root could have put it
//! there, so it was dropped rather than installed. Only when that cannot be
//! read (the process is gone and its file is not the one at that path on the
//! host) does the fixed list of [`WRITABLE`] locations decide.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Places any user can write to, or that a user owns: used only when the
/// owners and modes cannot be read. `/run/lock` is world-writable on Debian;
/// `/run/shm` is the old name of `/dev/shm`.
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Writable {
    Memfd,
    Deleted,
    /// Not an absolute path: the kernel's walk stopped short (deeper than it
    /// follows), so where the file lives is not known.
    Incomplete,
    /// Under this directory (a configured one, or one of [`WRITABLE`] when
    /// owners and modes could not be read).
    Under(String),
    /// This file or directory (the executable or one above it) belongs to
    /// this user, not root.
    Owned {
        path: String,
        uid: u32,
    },
    /// This directory (or the file) can be written by a group other than
    /// root's or by anyone: a world-writable directory like /tmp is a drop
    /// zone even with the sticky bit, whoever owns the file in it.
    Open {
        path: String,
    },
}

/// Owner, group and mode of a file, as `stat` tells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub inode: u64,
}

impl Meta {
    fn of(path: &Path) -> Option<Meta> {
        let m = std::fs::metadata(path).ok()?;
        Some(Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
            inode: m.ino(),
        })
    }
}

/// Where to read the executable's file system from: the process's own root
/// (`/proc/<pid>/root`, its mount namespace) and then the host's, each
/// trusted only when the file there is the executable's (same inode).
pub struct Lookup<'a> {
    pub roots: Vec<Root>,
    pub inode: Option<u64>,
    /// The host uid and gid that are root in the process's user namespace
    /// (a rootless container's files belong to its mapped root), besides 0.
    /// Read only when a file or directory belongs to someone else than uid
    /// or gid 0: most executables never need it.
    pub ns_root: &'a dyn Fn() -> Option<(u32, u32)>,
    /// Directories already read, shared between lookups.
    pub dirs: Option<&'a std::cell::RefCell<DirCache>>,
}

/// A root to read an executable's file system under.
pub struct Root {
    /// Prefixed to every path (empty: the daemon's own view).
    pub path: PathBuf,
    /// The mount namespace this root shows (the inode of its
    /// `/proc/<pid>/ns/mnt`; 0 for the daemon's own): directories are
    /// cached per namespace, since another one may mount something else
    /// at the same path. `None`: never cached.
    pub mnt_ns: Option<u64>,
}

/// How long a directory's owner and mode are trusted once read.
pub const DIR_TTL: Duration = Duration::from_secs(1);
/// Directories remembered before the cache is emptied.
const DIR_CACHE: usize = 4096;

/// Owners and modes of the directories above executables, per mount
/// namespace, each kept for [`DIR_TTL`]. Judging a process costs a walk of
/// every directory above its executable, through its `/proc/<pid>/root`:
/// without this, a burst of alerts from programs in one directory reads
/// the same directories once per alert and the pipeline falls behind. The
/// executable itself is always read again (its inode is checked).
#[derive(Clone, Debug, Default)]
pub struct DirCache {
    entries: HashMap<(u64, Vec<u8>), (Meta, Instant)>,
}

impl DirCache {
    fn get_or_read(
        &mut self,
        mnt_ns: u64,
        dir: &[u8],
        now: Instant,
        read: impl FnOnce() -> Option<Meta>,
    ) -> Option<Meta> {
        let key = (mnt_ns, dir.to_vec());
        if let Some(&(meta, at)) = self.entries.get(&key)
            && now.saturating_duration_since(at) < DIR_TTL
        {
            return Some(meta);
        }
        let meta = read()?;
        if self.entries.len() >= DIR_CACHE {
            self.entries
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < DIR_TTL);
            if self.entries.len() >= DIR_CACHE {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (meta, now));
        Some(meta)
    }
}

/// The mount namespace a `/proc/<pid>/root` shows, for [`Root::mnt_ns`].
pub fn mnt_ns_of(proc_root: &Path) -> Option<u64> {
    let ns = proc_root.parent()?.join("ns/mnt");
    std::fs::metadata(ns).ok().map(|m| m.ino())
}

/// The host id that id 0 maps to, from a `/proc/<pid>/uid_map` or
/// `gid_map` ("<inside> <outside> <count>" lines).
pub fn mapped_root(map: &str) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(str::parse::<u32>);
        match (f.next(), f.next()) {
            (Some(Ok(0)), Some(Ok(outside))) => Some(outside),
            _ => None,
        }
    })
}

impl Lookup<'_> {
    /// Who besides root can write `exe`: `Some(None)` when nobody,
    /// `Some(Some(why))` when someone, `None` when it could not be read.
    fn read(&self, exe: &[u8], stat: &dyn Fn(&Path) -> Option<Meta>) -> Option<Option<Writable>> {
        use std::os::unix::ffi::OsStrExt as _;
        let ns_root = std::cell::OnceCell::new();
        let now = Instant::now();
        for root in &self.roots {
            let at = |p: &[u8]| {
                let mut full = root.path.as_os_str().as_bytes().to_vec();
                full.extend_from_slice(p);
                PathBuf::from(std::ffi::OsStr::from_bytes(&full))
            };
            let dir = |p: &[u8]| {
                let p = if p.is_empty() { b"/" } else { p };
                match (root.mnt_ns, self.dirs) {
                    (Some(ns), Some(cache)) => {
                        cache.borrow_mut().get_or_read(ns, p, now, || stat(&at(p)))
                    }
                    _ => stat(&at(p)),
                }
            };
            let Some(file) = stat(&at(exe)) else {
                continue;
            };
            if self.inode.is_some_and(|ino| ino != file.inode) {
                continue;
            }
            let mut path: &[u8] = exe;
            let mut meta = file;
            loop {
                let shown = || {
                    String::from_utf8_lossy(if path.is_empty() { b"/" } else { path }).into_owned()
                };
                let mapped = || ns_root.get_or_init(|| (self.ns_root)()).unwrap_or((0, 0));
                if meta.uid != 0 && meta.uid != mapped().0 {
                    return Some(Some(Writable::Owned {
                        path: shown(),
                        uid: meta.uid,
                    }));
                }
                if meta.mode & 0o002 != 0
                    || (meta.mode & 0o020 != 0 && meta.gid != 0 && meta.gid != mapped().1)
                {
                    return Some(Some(Writable::Open { path: shown() }));
                }
                if path.is_empty() {
                    return Some(None);
                }
                let parent = &path[..path.iter().rposition(|&b| b == b'/').unwrap_or(0)];
                path = parent;
                // A directory above a readable file that cannot be read:
                // judge by the list instead.
                meta = dir(path)?;
            }
        }
        None
    }
}

/// Why `exe` counts as a dropped binary, if it does, reading owners and
/// modes through `lookup` (see the module's notes). `extra` are configured
/// directories (absolute, no trailing slash), which always count.
pub fn writable(exe: &[u8], extra: &[Vec<u8>], lookup: Option<&Lookup>) -> Option<Writable> {
    writable_with(exe, extra, lookup, &Meta::of)
}

fn writable_with(
    exe: &[u8],
    extra: &[Vec<u8>],
    lookup: Option<&Lookup>,
    stat: &dyn Fn(&Path) -> Option<Meta>,
) -> Option<Writable> {
    if exe.starts_with(MEMFD) {
        return Some(Writable::Memfd);
    }
    if exe.ends_with(DELETED) {
        return Some(Writable::Deleted);
    }
    if !exe.starts_with(b"/") {
        return Some(Writable::Incomplete);
    }
    let under = |dir: &[u8]| {
        is_under(exe, dir).then(|| Writable::Under(String::from_utf8_lossy(dir).into_owned()))
    };
    if let Some(w) = extra.iter().find_map(|d| under(d)) {
        return Some(w);
    }
    if let Some(found) = lookup.and_then(|l| l.read(exe, stat)) {
        return found;
    }
    WRITABLE.iter().find_map(|d| under(d.as_bytes()))
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
            assert_eq!(writable(exe.as_bytes(), none, None), Some(want), "{exe}");
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
            assert_eq!(writable(exe.as_bytes(), none, None), None, "{exe}");
        }
    }

    #[test]
    fn configured_directories_are_writable_too() {
        let extra = vec![b"/srv/upload".to_vec()];
        assert_eq!(
            writable(b"/srv/upload/x", &extra, None),
            Some(Writable::Under("/srv/upload".into()))
        );
        assert_eq!(writable(b"/srv/uploads/x", &extra, None), None);
    }

    fn host() -> Root {
        Root {
            path: PathBuf::new(),
            mnt_ns: Some(0),
        }
    }

    /// A file system of (path, uid, gid, mode, inode) for `writable_with`.
    fn fs(
        entries: &'static [(&'static str, u32, u32, u32, u64)],
    ) -> impl Fn(&Path) -> Option<Meta> {
        move |p: &Path| {
            entries
                .iter()
                .find(|e| Path::new(e.0) == p)
                .map(|&(_, uid, gid, mode, inode)| Meta {
                    uid,
                    gid,
                    mode,
                    inode,
                })
        }
    }

    const HOST: &[(&str, u32, u32, u32, u64)] = &[
        ("/", 0, 0, 0o40755, 2),
        ("/root", 0, 0, 0o40700, 3),
        ("/root/.pyenv", 0, 0, 0o40755, 4),
        ("/root/.pyenv/python", 0, 0, 0o100755, 5),
        ("/opt", 0, 0, 0o40755, 6),
        ("/opt/app", 0, 0, 0o40755, 7),
        ("/opt/app/x", 65534, 65534, 0o100755, 8),
        ("/tmp", 0, 0, 0o41777, 9),
        ("/tmp/d", 0, 0, 0o40700, 10),
        ("/tmp/d/sshd", 0, 0, 0o100755, 11),
        ("/srv", 0, 0, 0o40755, 12),
        ("/srv/g", 0, 50, 0o40775, 13),
        ("/srv/g/x", 0, 0, 0o100755, 14),
    ];

    fn judged(exe: &str, inode: Option<u64>) -> Option<Writable> {
        let lookup = Lookup {
            roots: vec![host()],
            inode,
            ns_root: &|| None,
            dirs: None,
        };
        writable_with(exe.as_bytes(), &[], Some(&lookup), &fs(HOST))
    }

    #[test]
    fn owners_and_modes_decide_when_they_can_be_read() {
        // Root's own interpreter under /root: only root can write it.
        assert_eq!(judged("/root/.pyenv/python", Some(5)), None);
        // A file nobody owns under /opt, which the list does not name.
        assert_eq!(
            judged("/opt/app/x", Some(8)),
            Some(Writable::Owned {
                path: "/opt/app/x".into(),
                uid: 65534
            })
        );
        // Root's file in root's directory in sticky /tmp: /tmp is open.
        assert_eq!(
            judged("/tmp/d/sshd", None),
            Some(Writable::Open {
                path: "/tmp".into()
            })
        );
        // A directory writable by a group other than root's.
        assert_eq!(
            judged("/srv/g/x", Some(14)),
            Some(Writable::Open {
                path: "/srv/g".into()
            })
        );
    }

    #[test]
    fn a_rootless_containers_root_counts_as_root() {
        const ROOTLESS: &[(&str, u32, u32, u32, u64)] = &[
            ("/", 100000, 100000, 0o40755, 2),
            ("/bin", 100000, 100000, 0o40755, 3),
            ("/bin/busybox", 100000, 100000, 0o100755, 4),
        ];
        let rootless = || Some((100000, 100000));
        let lookup = |ns_root| Lookup {
            roots: vec![host()],
            inode: Some(4),
            ns_root,
            dirs: None,
        };
        assert_eq!(
            writable_with(
                b"/bin/busybox",
                &[],
                Some(&lookup(&rootless)),
                &fs(ROOTLESS)
            ),
            None
        );
        assert_eq!(
            writable_with(b"/bin/busybox", &[], Some(&lookup(&|| None)), &fs(ROOTLESS)),
            Some(Writable::Owned {
                path: "/bin/busybox".into(),
                uid: 100000
            })
        );
        assert_eq!(
            mapped_root("         0     100000      65536\n"),
            Some(100000)
        );
        assert_eq!(mapped_root("         0          0 4294967295\n"), Some(0));
        assert_eq!(mapped_root("      1000       1000          1\n"), None);
    }

    /// The directories above an executable are read once per mount
    /// namespace and [`DIR_TTL`]; the executable itself every time; and the
    /// user namespace's maps only when an owner is not root.
    #[test]
    fn directories_are_read_once_per_namespace_and_interval_and_the_maps_only_when_needed() {
        let reads = std::cell::RefCell::new(Vec::<PathBuf>::new());
        let host = fs(HOST);
        let stat = |p: &Path| {
            reads.borrow_mut().push(p.to_owned());
            host(p)
        };
        let maps_read = std::cell::Cell::new(0);
        let ns_root = || {
            maps_read.set(maps_read.get() + 1);
            None
        };
        let cache = std::cell::RefCell::new(DirCache::default());
        let judge = |exe: &str, ns: u64| {
            let lookup = Lookup {
                roots: vec![Root {
                    path: PathBuf::new(),
                    mnt_ns: Some(ns),
                }],
                inode: None,
                ns_root: &ns_root,
                dirs: Some(&cache),
            };
            let found = lookup.read(exe.as_bytes(), &stat);
            (found, std::mem::take(&mut *reads.borrow_mut()))
        };
        let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            judge("/root/.pyenv/python", 1),
            (
                Some(None),
                paths(&["/root/.pyenv/python", "/root/.pyenv", "/root", "/"])
            )
        );
        assert_eq!(maps_read.get(), 0, "everything belongs to root");
        assert_eq!(
            judge("/root/.pyenv/python", 1),
            (Some(None), paths(&["/root/.pyenv/python"])),
            "the directories come from the cache"
        );
        assert_eq!(
            judge("/root/.pyenv/python", 2).1.len(),
            4,
            "another mount namespace reads its own"
        );
        assert_eq!(
            judge("/opt/app/x", 1),
            (
                Some(Some(Writable::Owned {
                    path: "/opt/app/x".into(),
                    uid: 65534
                })),
                paths(&["/opt/app/x"])
            )
        );
        assert_eq!(maps_read.get(), 1, "read for the owner that is not root");
        // Past the interval, the directories are read again.
        let stale = Instant::now() - DIR_TTL;
        for (_, at) in cache.borrow_mut().entries.values_mut() {
            *at = stale;
        }
        assert_eq!(judge("/root/.pyenv/python", 1).1.len(), 4);
    }

    #[test]
    fn the_list_decides_when_the_file_is_not_the_executable_or_unreadable() {
        // Another file at that path (another mount namespace, replaced).
        assert_eq!(
            judged("/root/.pyenv/python", Some(99)),
            Some(Writable::Under("/root".into()))
        );
        assert_eq!(
            judged("/home/u/x", None),
            Some(Writable::Under("/home".into()))
        );
        assert_eq!(judged("/usr/bin/x", None), None);
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
