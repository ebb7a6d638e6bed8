//! What a process's cgroup (v2) path says about it: its systemd unit, the
//! container it runs in and the runtime that made it, and its Kubernetes
//! pod. Read from the kernel at exec (and from /proc at start-up).
use crate::names::Name;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cgroup {
    /// The path under the cgroup2 root, e.g.
    /// `/system.slice/docker-<id>.scope`; `…/` before it when the kernel's
    /// walk stopped short.
    pub path: Name,
    /// The last `.service` or `.scope` component.
    pub unit: Option<String>,
    pub container: Option<Container>,
    /// Kubernetes pod uid (with dashes), when the path carries one.
    pub pod_uid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The runtime's id of the container (hex).
    pub id: String,
    /// `docker`, `containerd`, `cri-o` or `podman`; `cri` for a pod's
    /// container whose runtime the path does not tell.
    pub runtime: &'static str,
}

/// `<prefix><hex id>[.scope]` component names and the runtime they mean.
/// The conmon/shim helper scopes (`libpod-conmon-`, `crio-conmon-`) are not
/// containers and do not match: their rest is not hex.
const SCOPES: [(&str, &str); 4] = [
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("crio-", "cri-o"),
    ("libpod-", "podman"),
];

impl Cgroup {
    pub fn parse(path: &[u8]) -> Cgroup {
        let text = String::from_utf8_lossy(path);
        let components: Vec<&str> = text.split('/').filter(|c| !c.is_empty()).collect();
        let unit = components
            .iter()
            .rev()
            .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
            .map(|c| (*c).to_owned());
        let mut container = None;
        let mut pod_uid = None;
        for (i, c) in components.iter().enumerate() {
            let bare = c.strip_suffix(".scope").unwrap_or(c);
            for (prefix, runtime) in SCOPES {
                if let Some(id) = bare.strip_prefix(prefix).filter(|id| is_id(id)) {
                    container = Some(Container {
                        id: id.to_owned(),
                        runtime,
                    });
                }
            }
            // cgroupfs drivers: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>.
            if is_id(c) && i > 0 {
                let runtime = match components[i - 1] {
                    "docker" => Some("docker"),
                    p if p.starts_with("pod") => Some("cri"),
                    _ => None,
                };
                if let Some(runtime) = runtime {
                    container = Some(Container {
                        id: (*c).to_owned(),
                        runtime,
                    });
                }
            }
            if let Some(uid) = pod_uid_of(c) {
                pod_uid = Some(uid);
            }
        }
        Cgroup {
            path: Name::new(path.to_vec()),
            unit,
            container,
            pod_uid,
        }
    }
}

/// A container id: 64 hex digits (docker, containerd, CRI-O and podman all
/// use sha256-sized ids).
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `kubepods-besteffort-pod<uid with _>.slice` (systemd driver) or
/// `pod<uid>` (cgroupfs driver).
fn pod_uid_of(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        Some(slice) if slice.starts_with("kubepods") => slice
            .rsplit('-')
            .next()?
            .strip_prefix("pod")?
            .replace('_', "-"),
        Some(_) => return None,
        None => component.strip_prefix("pod")?.to_owned(),
    };
    let uuid_shaped = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    uuid_shaped.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a3d8c93b933f1e285ee1602bddc545ead96ca81624e05e94aa25ad377e56e258";
    const UID: &str = "0d2a4c1e-5b6f-4a7d-9e8f-1a2b3c4d5e6f";

    fn container(path: &str) -> Option<(String, &'static str)> {
        Cgroup::parse(path.as_bytes())
            .container
            .map(|c| (c.id, c.runtime))
    }

    #[test]
    fn runtimes_are_told_by_their_cgroup_names() {
        for (path, runtime) in [
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (format!("/docker/{ID}"), "docker"),
            (
                format!("/system.slice/cri-containerd-{ID}.scope"),
                "containerd",
            ),
            (format!("/machine.slice/crio-{ID}.scope"), "cri-o"),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
            ),
            (format!("/libpod_parent/libpod-{ID}"), "podman"),
        ] {
            assert_eq!(container(&path), Some((ID.to_owned(), runtime)), "{path}");
        }
        assert_eq!(
            container(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            container("/user.slice/user-1000.slice/session-2.scope"),
            None
        );
    }

    #[test]
    fn units_and_pods() {
        let systemd = Cgroup::parse(
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope",
                UID.replace('-', "_")
            )
            .as_bytes(),
        );
        assert_eq!(systemd.pod_uid.as_deref(), Some(UID));
        assert_eq!(systemd.container.unwrap().runtime, "containerd");
        assert_eq!(systemd.unit, Some(format!("cri-containerd-{ID}.scope")));
        let cgroupfs = Cgroup::parse(format!("/kubepods/besteffort/pod{UID}/{ID}").as_bytes());
        assert_eq!(cgroupfs.pod_uid.as_deref(), Some(UID));
        assert_eq!(
            cgroupfs.container.map(|c| (c.id, c.runtime)),
            Some((ID.to_owned(), "cri"))
        );
        let sshd = Cgroup::parse(b"/system.slice/ssh.service");
        assert_eq!(sshd.unit.as_deref(), Some("ssh.service"));
        assert_eq!((sshd.container, sshd.pod_uid), (None, None));
    }
}
