//! Processes hidden from `ps`: a `/proc/<pid>` with something mounted over
//! it (typically another process's /proc entry, bound there so `ps` shows a
//! kernel thread instead). Found in the mount table, which the daemon reads
//! at start-up and again after every mount the kernel reports.
use crate::names::Name;

/// One covered /proc entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Covered {
    /// The hidden process.
    pub pid: u32,
    /// The process whose /proc entry is mounted over it, for a bind mount
    /// from procfs.
    pub covered_by: Option<u32>,
    /// Where, e.g. `/proc/4242`.
    pub mount_point: Name,
}

/// Every covered /proc entry in a `mountinfo` table (proc(5)): a mount
/// whose mount point is `<a procfs mount point>/<number>`.
pub fn covered(mountinfo: &str) -> Vec<Covered> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
    let proc_points: Vec<&[u8]> = mounts
        .iter()
        .filter(|m| m.fstype == "proc")
        .map(|m| m.mount_point.as_slice())
        .collect();
    mounts
        .iter()
        .filter_map(|m| {
            let slash = m.mount_point.iter().rposition(|&b| b == b'/')?;
            let (parent, pid) = (&m.mount_point[..slash], &m.mount_point[slash + 1..]);
            let parent: &[u8] = if parent.is_empty() { b"/" } else { parent };
            if !proc_points.contains(&parent) {
                return None;
            }
            let pid = number(pid)?;
            let covered_by = (m.fstype == "proc")
                .then(|| m.root.strip_prefix(b"/").and_then(number))
                .flatten();
            Some(Covered {
                pid,
                covered_by,
                mount_point: Name::new(m.mount_point.clone()),
            })
        })
        .collect()
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
";

    #[test]
    fn finds_proc_entries_with_a_mount_over_them() {
        assert_eq!(
            covered(TABLE),
            vec![
                Covered {
                    pid: 4242,
                    covered_by: Some(2),
                    mount_point: Name::from("/proc/4242"),
                },
                Covered {
                    pid: 77,
                    covered_by: None,
                    mount_point: Name::from("/proc/77"),
                },
            ]
        );
        assert_eq!(unescape("/mnt/my\\040dir"), b"/mnt/my dir");
    }
}
