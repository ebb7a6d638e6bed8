//! End-to-end: a rename inside a real container, started by podman from a
//! root file system built here (no registry is reachable), carries the
//! container's id and runtime and its cgroup. Host only: the kernel matrix's
//! guest has no container runtime.
use std::process::{Command, Stdio};

use crate::support::daemon::{Daemon, at, str_at};

/// A minimal root file system: a static busybox and its shell (also the
/// noise corpus's container).
pub(crate) fn rootfs() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copy /bin/busybox (busybox-static, installed by cargo xtask setup)");
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for dir in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    root
}

/// `podman run` as the tests here start a container (also the noise
/// corpus's): its options follow.
pub(crate) const PODMAN_RUN: &[&str] = &[
    // No systemd here, and the host's cgroups are hybrid, which podman's
    // default runtime (crun) refuses.
    "--cgroup-manager=cgroupfs",
    "--runtime=runc",
    "--events-backend=file",
    "run",
    "--rm",
    "--network=none",
    // The test host's limits are below podman's defaults.
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
];

#[test]
fn a_rename_inside_a_podman_container_names_the_container() {
    let root = rootfs();
    let cidfile = root
        .path()
        .join("..")
        .join(format!("ra-cid-{}", std::process::id()));
    let _ = std::fs::remove_file(&cidfile);
    let mut d = Daemon::start(&[]);
    // The shell renames itself through /proc/self/comm, inside the container.
    let marker = format!("ctr-{}", std::process::id() % 100_000);
    let out = Command::new("podman")
        .args(PODMAN_RUN)
        .arg("--cidfile")
        .arg(&cidfile)
        .arg("--rootfs")
        .arg(root.path())
        .args([
            "/bin/sh",
            "-c",
            &format!("echo -n {marker} > /proc/self/comm && sleep 0.2"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run podman (installed by cargo xtask setup)");
    assert!(
        out.status.success(),
        "podman run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = std::fs::read_to_string(&cidfile).expect("podman's cidfile");
    let id = id.trim().to_owned();
    let _ = std::fs::remove_file(&cidfile);
    assert_eq!(id.len(), 64, "container id {id:?}");

    let e = d.wait_for("the rename inside the container", |e| {
        at(e, "rename.new_name").as_str() == Some(marker.as_str())
    });
    assert_eq!(str_at(&e, "rename.method"), "procfs", "{e}");
    assert_eq!(str_at(&e, "container.id"), id, "{e}");
    assert_eq!(str_at(&e, "container.runtime"), "podman", "{e}");
    assert!(
        str_at(&e, "process.cgroup.path").contains(&format!("libpod-{id}")),
        "{e}"
    );
    // Named inside the container's own mount tree, as its image has it.
    assert_eq!(str_at(&e, "process.executable"), "/bin/busybox", "{e}");
    d.stop();
}
