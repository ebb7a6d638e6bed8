//! Processes hidden from `ps`: a `/proc/<pid>`, or anything under it, with
//! something mounted over it. Typically another process's /proc entry bound
//! over the whole entry, a fake file bound over `comm`, `stat` or `cmdline`,
//! or kthreadd's task directory bound over the process's own
//! `task/<tid>`: `ps` then shows a kernel thread, and `pgrep` misses the
//! process. Found in the mount table, which the daemon reads at start-up and
//! again after every mount the kernel reports.
use crate::names::Name;

/// One covered /proc entry, or one covered path inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Covered {
    /// The hidden process.
    pub pid: u32,
    /// The process whose /proc entry (or a file of it) is mounted over it,
    /// for a bind mount from procfs.
    pub covered_by: Option<u32>,
    /// Where, e.g. `/proc/4242` or `/proc/4242/comm`.
    pub mount_point: Name,
    /// What inside `/proc/<pid>` is covered, e.g. `comm` or `task/4242`;
    /// `None` when it is the whole entry.
    pub entry: Option<Name>,
}

/// Every covered /proc entry in a `mountinfo` table (proc(5)): a mount
/// whose mount point is `<a procfs mount point>/<number>`, or any path
/// below it.
pub fn covered(mountinfo: &str) -> Vec<Covered> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
    // Only the roots of procfs instances: a bind of one /proc entry over
    // another is itself a procfs mount, and what is mounted below it is
    // still named from the procfs root.
    let proc_points: Vec<&[u8]> = mounts
        .iter()
        .filter(|m| m.fstype == "proc" && m.root == b"/")
        .map(|m| m.mount_point.as_slice())
        .collect();
    mounts
        .iter()
        .filter_map(|m| {
            // The deepest procfs root the mount point is under, with the
            // path below it, e.g. `4242/task/4242`.
            let below = proc_points
                .iter()
                .filter_map(|p| below(p, &m.mount_point))
                .min_by_key(|rest| rest.len())?;
            let (pid, entry) = match below.iter().position(|&b| b == b'/') {
                Some(slash) => (&below[..slash], Some(&below[slash + 1..])),
                None => (below, None),
            };
            let pid = number(pid)?;
            let covered_by = (m.fstype == "proc")
                .then(|| {
                    let source = m.root.strip_prefix(b"/")?;
                    let end = source.iter().position(|&b| b == b'/');
                    number(&source[..end.unwrap_or(source.len())])
                })
                .flatten();
            Some(Covered {
                pid,
                covered_by,
                mount_point: Name::new(m.mount_point.clone()),
                entry: entry.filter(|e| !e.is_empty()).map(Name::new),
            })
        })
        .collect()
}

/// The path of `mount_point` below `root` (without the slash), when it is
/// strictly below it.
fn below<'a>(root: &[u8], mount_point: &'a [u8]) -> Option<&'a [u8]> {
    let rest = mount_point.strip_prefix(root)?;
    let rest = if root == b"/" {
        rest
    } else {
        rest.strip_prefix(b"/")?
    };
    (!rest.is_empty()).then_some(rest)
}

fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

struct Mount<'a> {
    root: Vec<u8>,
    mount_point: Vec<u8>,
    fstype: &'a str,
}

impl<'a> Mount<'a> {
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`
    fn parse(line: &'a str) -> Option<Self> {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-")?;
        Some(Mount {
            root: unescape(fields.get(3)?),
            mount_point: unescape(fields.get(4)?),
            fstype: fields.get(dash + 1)?,
        })
    }
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 1 0:22 / /sys rw shared:2 - sysfs sysfs rw
90 22 0:21 /2 /proc/4242 rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
91 22 0:40 / /proc/77 rw - tmpfs tmpfs rw
92 1 0:41 / /srv/proc/5 rw - tmpfs tmpfs rw
93 22 0:21 /sys /proc/sys rw - proc proc rw
94 1 0:42 / /mnt/my\\040dir rw - tmpfs tmpfs rw
95 22 0:40 /fake-comm /proc/88/comm rw - tmpfs tmpfs rw
96 22 0:21 /2/task/2 /proc/88/task/88 rw - proc proc rw
97 90 0:21 /2/stat /proc/4242/stat rw - proc proc rw
98 22 0:42 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
99 22 0:43 /meminfo /proc/meminfo rw - fuse.lxcfs lxcfs rw
";

    fn entry(pid: u32, covered_by: Option<u32>, mount_point: &str, entry: Option<&str>) -> Covered {
        Covered {
            pid,
            covered_by,
            mount_point: Name::from(mount_point),
            entry: entry.map(Name::from),
        }
    }

    #[test]
    fn finds_proc_entries_and_paths_in_them_with_a_mount_over_them() {
        assert_eq!(
            covered(TABLE),
            vec![
                entry(4242, Some(2), "/proc/4242", None),
                entry(77, None, "/proc/77", None),
                entry(88, None, "/proc/88/comm", Some("comm")),
                entry(88, Some(2), "/proc/88/task/88", Some("task/88")),
                // Below a bind of another entry, still named from /proc.
                entry(4242, Some(2), "/proc/4242/stat", Some("stat")),
            ]
        );
        assert_eq!(unescape("/mnt/my\\040dir"), b"/mnt/my dir");
    }

    #[test]
    fn a_procfs_mounted_at_the_root_names_its_entries_too() {
        let table = "1 0 0:5 / / rw - proc proc rw\n2 1 0:6 / /9/cmdline rw - tmpfs t rw\n";
        assert_eq!(
            covered(table),
            vec![entry(9, None, "/9/cmdline", Some("cmdline"))]
        );
    }
}
