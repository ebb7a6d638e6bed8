//! Noise control (issue 10 item 5): `--thread-renames all|alerts|none` and
//! `output.thread_renames_allow`, with real threads renaming themselves;
//! and the noise corpus (issue 21 item 6): ordinary execs on Debian raise
//! no alert.
//!
//! A thread rename's absence is only meaningful once the daemon has got
//! past it: each case runs the thread rename first, then a process rename
//! (the marker) from another process. The drain empties the thread ring
//! before the priority ring, so once the marker's line is written every
//! earlier thread rename has been either written or filtered.
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    daemon::{Daemon, at, str_at},
    http, renamer,
    servers::free_port,
};
use serde_json::Value;

/// Runs a thread rename to `name`, then a marker process rename; returns
/// the thread rename's event if the daemon wrote one.
fn thread_rename_then_marker(d: &mut Daemon, name: &[u8], marker: &str) -> Option<Value> {
    let [seen] = thread_rename_then_marker_in([d], name, marker);
    seen
}

/// As [`thread_rename_then_marker`], for daemons running at once: each sees
/// the same renames, and each answer is known once its marker is out.
fn thread_rename_then_marker_in<const N: usize>(
    daemons: [&mut Daemon; N],
    name: &[u8],
    marker: &str,
) -> [Option<Value>; N] {
    let out = renamer::run("thread-prctl", name, &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    let marker_pid = renamer::run("prctl", marker.as_bytes(), &[]).get("pid");
    daemons.map(|d| {
        let m = d.wait_for(&format!("marker {marker}"), |e| {
            at(e, "process.pid").as_u64() == Some(marker_pid.into())
                && at(e, "rename.new_name").as_str() == Some(marker)
        });
        assert_eq!(
            str_at(&m, "event.action"),
            "process-renamed",
            "process renames are always written"
        );
        d.events_of(pid)
            .into_iter()
            .find(|e| at(e, "process.thread.id").as_u64() == Some(tid.into()))
    })
}

/// Thread renames of processes other than `ours`'s that `witness` wrote
/// (one by one, or counted in a summary) since `from`.
fn others_thread_renames(witness: &mut Daemon, ours: &Value, from: time::OffsetDateTime) -> u64 {
    let pid = at(ours, "process.pid").as_u64();
    witness
        .events()
        .iter()
        .filter(|e| at(e, "process.pid").as_u64() != pid)
        .filter(|e| {
            let ts = str_at(e, "@timestamp");
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|err| panic!("@timestamp {ts}: {err}"))
                >= from
        })
        .map(|e| match str_at(e, "event.action") {
            "thread-renamed" => 1,
            "renames-summarized" if str_at(e, "summary.class") == "thread" => {
                at(e, "summary.count").as_u64().expect("summary.count")
            }
            _ => 0,
        })
        .sum()
}

fn filtered(listen: SocketAddr, reason: &str) -> f64 {
    let (status, body) = http::get(listen, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let series = format!("rename_audit_renames_filtered_total{{reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {body}"))
}

#[test]
fn all_writes_every_thread_rename() {
    let mut d = Daemon::start(&["--thread-renames", "all"]);
    let e = thread_rename_then_marker(&mut d, b"e2e-n-worker", "e2e-n-mark1")
        .expect("under `all` a benign thread rename is written");
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
    assert_eq!(str_at(&e, "event.kind"), "event");
}

#[test]
fn alerts_is_the_default_and_writes_only_matched_thread_renames_counting_the_rest() {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    // No --thread-renames and an empty configuration: the default applies.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("empty.toml");
    std::fs::write(&cfg, "").unwrap();
    let mut d = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-listen",
        &listen.to_string(),
    ]);
    // The counter is host-wide. A witness at the same time under `all`
    // writes, with their pids, the thread renames the first one counts:
    // the count rises by our one rename plus the other processes' ones the
    // witness saw meanwhile, which on a quiet host is exactly one.
    let mut witness = Daemon::start(&["--thread-renames", "all"]);
    let from = time::OffsetDateTime::now_utc();
    let before = filtered(listen, "thread-renames");
    let [left_out, ours] =
        thread_rename_then_marker_in([&mut d, &mut witness], b"e2e-n-quiet", "e2e-n-mark2");
    assert!(
        left_out.is_none(),
        "a benign thread rename is not written by default"
    );
    let ours = ours.expect("the witness writes the thread rename");
    let after = filtered(listen, "thread-renames");
    // Renames after this marker were not counted yet.
    let end = renamer::run("prctl", b"e2e-n-end", &[]).get("pid");
    witness.wait_for("the end marker", |e| {
        at(e, "process.pid").as_u64() == Some(end.into())
    });
    let others = others_thread_renames(&mut witness, &ours, from - time::Duration::seconds(1));
    let counted = after - before;
    assert!(
        counted >= 1.0 && counted <= 1.0 + others as f64,
        "the left-out rename is counted once: {before} -> {after}, with {others} thread \
         renames of other processes meanwhile"
    );
    let e = thread_rename_then_marker(&mut d, b"kworker/9:9", "e2e-n-mark3")
        .expect("a thread rename a rule matches is written");
    assert_eq!(str_at(&e, "rule.id"), "kernel-thread-mimic");
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
}

#[test]
fn none_writes_no_thread_rename_not_even_an_alert() {
    // The control: a second daemon, at the same time, under `all`. It sees
    // the same renames, so what it writes the first one saw too.
    let mut none = Daemon::start(&["--thread-renames", "none"]);
    let mut all = Daemon::start(&["--thread-renames", "all"]);
    let [left_out, control] =
        thread_rename_then_marker_in([&mut none, &mut all], b"e2e-n-none", "e2e-n-mark4");
    assert!(left_out.is_none(), "`none` writes no thread rename");
    let control = control.expect("under `all` the same thread rename is written");
    assert_eq!(str_at(&control, "event.action"), "thread-renamed");

    let [left_out, control] =
        thread_rename_then_marker_in([&mut none, &mut all], b"kworker/8:8", "e2e-n-mark5");
    assert!(left_out.is_none(), "`none` means none, not even an alert");
    let control = control.expect("under `all` the same thread rename is written");
    assert_eq!(
        str_at(&control, "rule.id"),
        "kernel-thread-mimic",
        "the rename is one a rule matches: {control}"
    );
}

#[test]
fn allow_listed_executables_are_quiet_under_all_and_sighup_switches_the_setting() {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("noise.toml");
    let exe = renamer::path().to_str().expect("UTF-8 path").to_owned();
    std::fs::write(
        &cfg,
        format!("[output]\nthread_renames = \"all\"\nthread_renames_allow = [\"{exe}\"]\n"),
    )
    .unwrap();
    let mut d = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-listen",
        &listen.to_string(),
    ]);
    // Only this test's renamer (a binary of this run) is on the list, so
    // only the test can move this counter.
    let before = filtered(listen, "thread-renames-allow");
    assert!(
        thread_rename_then_marker(&mut d, b"e2e-n-allowed", "e2e-n-mark6").is_none(),
        "the allow-listed executable's thread rename is left out"
    );
    assert_eq!(
        filtered(listen, "thread-renames-allow"),
        before + 1.0,
        "the one left-out thread rename is counted once"
    );
    let e = thread_rename_then_marker(&mut d, b"kworker/6:6", "e2e-n-mark7")
        .expect("an alert is written even for an allow-listed executable");
    assert_eq!(str_at(&e, "rule.id"), "kernel-thread-mimic");

    // The setting is reloaded on SIGHUP.
    std::fs::write(&cfg, "[output]\nthread_renames = \"all\"\n").unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded");
    assert!(
        thread_rename_then_marker(&mut d, b"e2e-n-after", "e2e-n-mark8").is_some(),
        "without the allow-list the thread rename is written"
    );
}

// The noise corpus (issue 21 item 6): ordinary things a Debian host runs,
// which must raise no alert. Every process of the corpus runs in a cgroup
// of the test's own, so the daemons' lines about it are told from the
// rest of the host's by `process.cgroup.path`.

/// A cgroup (v2) of this test's own; killed with everything in it, and
/// removed, when dropped (with the cgroup v1 groups of that name podman
/// makes for a container below it on a hybrid host).
struct Group {
    dir: PathBuf,
    /// Every cgroup hierarchy's mount point.
    hierarchies: Vec<PathBuf>,
    /// As the daemon reports it in `process.cgroup.path`.
    path: String,
    procs: CString,
}

impl Group {
    /// A new group under the cgroup2 root, or why there cannot be one.
    fn new(name: &str) -> Result<Group, String> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|e| e.to_string())?;
        let of_type = |ty: &str| -> Vec<PathBuf> {
            mounts
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.get(2) == Some(&ty)).then(|| PathBuf::from(f[1]))
                })
                .collect()
        };
        let root = of_type("cgroup2")
            .into_iter()
            .next()
            .ok_or("no cgroup2 hierarchy is mounted")?;
        let hierarchies = of_type("cgroup");
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        if !own.lines().any(|l| l == "0::/") {
            return Err(format!(
                "this test runs in a cgroup of its own ({own:?}), not at the cgroup2 root"
            ));
        }
        let dir = root.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
        Ok(Group {
            dir,
            hierarchies,
            path: format!("/{name}"),
            procs,
        })
    }

    /// `program`, to be started inside the group.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let procs = self.procs.clone();
        // SAFETY: open, write and close are async-signal-safe, and the
        // path was allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
        cmd.env_remove("TMUX").stdin(Stdio::null());
        cmd
    }

    /// Whether the event is about a process in the group (or a cgroup
    /// below it: a container's).
    fn holds(&self, e: &Value) -> bool {
        at(e, "process.cgroup.path").as_str().is_some_and(|p| {
            p == self.path
                || p.strip_prefix(&self.path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(self.dir.join("cgroup.events"))
            .is_ok_and(|e| e.lines().any(|l| l == "populated 1"))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Children first (a container's, podman's conmon's).
        fn remove(dir: &Path) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        remove(&self.dir);
        for hierarchy in &self.hierarchies {
            remove(&hierarchy.join(self.path.trim_start_matches('/')));
        }
    }
}

/// Runs `cmd` to its end; its stdout. It must succeed.
fn succeed(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process of the corpus that runs until its stdin closes, with its
/// stdout kept open (nothing more is read from it).
struct Held {
    child: Child,
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

/// Starts `cmd`, which prints a line starting with "ready" once it is what
/// it should be and runs until its stdin closes; waits for that line.
fn holding(what: &str, mut cmd: Command, readies: usize) -> Held {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < readies {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("ready") => seen += 1,
            Some(Ok(_)) => {}
            _ => panic!("{what}: {cmd:?} ended before it was ready"),
        }
    }
    Held {
        child,
        _stdout: lines,
    }
}

fn require(program: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(program);
    assert!(
        path.exists(),
        "{program} is missing: install Debian's {package} (cargo xtask setup does)"
    );
    path
}

fn compile(out: &Path, source: &str, extra: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/support")
        .join(source);
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(out)
        .args(extra)
        .arg(&src)
        .status()
        .expect("run cc (is gcc installed?)");
    assert!(status.success(), "compiling {} failed", src.display());
}

/// A package with maintainer scripts that do what such scripts do: make and
/// remove a state directory, run a few programs.
fn tiny_deb(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let root = dir.join("pkg");
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).unwrap();
    std::fs::create_dir_all(root.join("usr/share").join(name)).unwrap();
    std::fs::write(
        root.join("usr/share").join(name).join("README"),
        "rename-audit's noise corpus\n",
    )
    .unwrap();
    std::fs::write(
        debian.join("control"),
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\nSection: misc\n\
             Priority: optional\nMaintainer: rename-audit tests <tests@example.org>\n\
             Description: noise corpus package\n A package the noise corpus installs.\n"
        ),
    )
    .unwrap();
    let state = format!("/var/lib/{name}");
    for (script, body) in [
        ("preinst", "test -d /var/lib || exit 1".to_owned()),
        (
            "postinst",
            format!(
                "mkdir -p {state}\ndate -u > {state}/installed\nsed -n 1p /etc/os-release > /dev/null"
            ),
        ),
        ("prerm", format!("test -f {state}/installed")),
        (
            "postrm",
            format!("if [ \"$1\" = purge ]; then rm -rf {state}; fi"),
        ),
    ] {
        let path = debian.join(script);
        std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\nexit 0\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let deb = dir.join(format!("{name}_1.0_all.deb"));
    succeed(
        "dpkg-deb --build",
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&root)
            .arg(&deb),
    );
    std::fs::set_permissions(&deb, std::fs::Permissions::from_mode(0o644)).unwrap();
    deb
}

/// Purges the corpus's package if a failed assertion left it installed.
struct PurgePackage(String);

impl Drop for PurgePackage {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_noise_corpus_of_ordinary_debian_execs_raises_no_alert() {
    let id = std::process::id();
    let group = match Group::new(&format!("rename-audit-noise-{id}")) {
        Ok(g) => g,
        Err(why) => {
            crate::support::skip(&why);
            return;
        }
    };
    // Root-owned and closed to others, outside every writable place: what
    // is built here is as trusted as an installed program.
    let trusted = Path::new("/var/lib/rename-audit-tests");
    std::fs::create_dir_all(trusted).unwrap();
    let work = tempfile::Builder::new()
        .prefix("noise-")
        .tempdir_in(trusted)
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        // apt's methods read the package as the _apt user.
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sshd = work.path().join("sbin/sshd");
    std::fs::create_dir_all(sshd.parent().unwrap()).unwrap();
    compile(&sshd, "noise_sshd.c", &[]);
    let preload = work.path().join("noise-preload.so");
    compile(&preload, "noise_preload.c", &["-shared", "-fPIC"]);
    // Busybox applets as Debian's busybox package links them: names that
    // are links to the one binary.
    let busybox = require("/usr/bin/busybox", "busybox-static");
    let applets = work.path().join("busybox");
    std::fs::create_dir_all(&applets).unwrap();
    for applet in ["sh", "cat", "ls", "true", "sleep"] {
        std::os::unix::fs::symlink(&busybox, applets.join(applet)).unwrap();
    }
    let systemd = require("/usr/lib/systemd/systemd", "systemd");
    let tmux = require("/usr/bin/tmux", "tmux");
    require("/usr/bin/vim.basic", "vim");
    require("/usr/bin/java", "openjdk-17-jre-headless");
    require("/usr/bin/podman", "podman");
    require("/usr/sbin/runc", "runc");
    let sd_helpers = |names: &str, hold: bool| {
        let mut cmd = group.command(&systemd);
        cmd.arg("--version")
            .env("LD_PRELOAD", &preload)
            .env("RA_NOISE_NAMES", names);
        if hold {
            cmd.env("RA_NOISE_HOLD", "1");
        }
        cmd
    };
    let tmux_a = format!("rename-audit-noise-{id}-a");
    let tmux_b = format!("rename-audit-noise-{id}-b");

    // Running before the daemons start, so judged at their start-up.
    let mut held: Vec<Held> = Vec::new();
    succeed(
        "a tmux session",
        group
            .command(&tmux)
            .args(["-L", &tmux_a, "-f", "/dev/null", "new-session", "-d"])
            .arg("sleep 600"),
    );
    let mut bash_login = group.command("bash");
    bash_login.args(["-l", "-c", "echo ready; read -r x; true"]);
    held.push(holding("bash -l", bash_login, 1));
    let mut minus_bash = group.command("bash");
    minus_bash
        .arg0("-bash")
        .args(["-c", "echo ready; read -r x; true"]);
    held.push(holding("-bash", minus_bash, 1));
    let mut session = group.command(&sshd);
    session.args(["sshd: root@pts/0", &" ".repeat(64)]);
    held.push(holding("sshd's session title", session, 1));
    held.push(holding("(sd-pam)", sd_helpers("(sd-pam)", true), 1));
    let mut bb = group.command(applets.join("sh"));
    bb.args(["-c", "echo ready; cat > /dev/null; true"])
        .env("PATH", &applets);
    held.push(holding("busybox sh", bb, 1));
    let mut python = group.command("python3");
    python.args([
        "-c",
        "import sys; print('ready', flush=True); sys.stdin.read()",
    ]);
    held.push(holding("python3", python, 1));

    let dir = tempfile::tempdir().unwrap();
    let config = empty_config_in(dir.path());
    // As shipped (empty configuration: default rules and allow-list,
    // thread renames written only when a rule matches them) ...
    let mut d = Daemon::start(&["--config", config.to_str().unwrap()]);
    // ... and a witness that writes every exec and thread rename, to show
    // the corpus ran what it says.
    let mut witness = Daemon::start(&["--include-exec", "--thread-renames", "all"]);

    // Interpreters through symlinks (python3 -> python3.11), scripts
    // through their #! line.
    let script = work.path().join("hello.py");
    std::fs::write(&script, "#!/usr/bin/python3\nprint('hello')\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    succeed("python3", group.command("python3").args(["-c", "print(1)"]));
    succeed("a python script", &mut group.command(&script));
    succeed("perl", group.command("perl").args(["-e", "print 1"]));
    // The alternatives system: vi -> /etc/alternatives/vi -> vim.basic,
    // awk -> mawk, java -> the JVM's launcher.
    succeed("vi", group.command("vi").arg("--version"));
    succeed("awk", group.command("awk").arg("BEGIN { print 1 }"));
    // Busybox applets, by link and by name.
    succeed(
        "busybox applets",
        group
            .command(applets.join("sh"))
            .args(["-c", "ls / > /dev/null && true && sleep 0"])
            .env("PATH", &applets),
    );
    succeed(
        "busybox by name",
        group.command(&busybox).args(["sh", "-c", "busybox true"]),
    );
    // Login shells: bash -l, a "-bash" argv[0], su's login shell.
    succeed("bash -l", group.command("bash").args(["-l", "-c", "true"]));
    succeed(
        "-bash",
        group.command("bash").arg0("-bash").args(["-c", "true"]),
    );
    succeed(
        "-sh",
        group.command("dash").arg0("-sh").args(["-c", "true"]),
    );
    succeed(
        "su -l",
        group.command("su").args(["-l", "root", "-c", "true"]),
    );
    // systemd's helpers: "(sd-pam)" and "(sd-rmrf)" forks, and PID 1's
    // "(<program>)" child that then execs the program.
    succeed(
        "systemd helpers",
        &mut sd_helpers("(sd-pam),(sd-rmrf),(true)=/usr/bin/true", false),
    );
    // sshd's session process: exec'd as sshd, then its argv rewritten.
    let mut session = group.command(&sshd);
    session.args(["sshd: user@pts/0", &" ".repeat(64)]);
    held.push(holding("sshd's session title", session, 1));
    // A full apt-get install of a package with maintainer scripts, then
    // its purge.
    let package = format!("rename-audit-noise-{id}");
    let deb = tiny_deb(work.path(), &package);
    let _purge = PurgePackage(package.clone());
    let apt = |args: &[&str]| {
        let mut cmd = group.command("apt-get");
        cmd.args(["-y", "-o", "DPkg::Lock::Timeout=300"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    succeed(
        "apt-get install",
        &mut apt(&["install", deb.to_str().unwrap()]),
    );
    assert!(
        Path::new(&format!("/var/lib/{package}/installed")).exists(),
        "the postinst ran"
    );
    succeed("apt-get purge", &mut apt(&["purge", &package]));
    assert!(
        !Path::new(&format!("/var/lib/{package}")).exists(),
        "the postrm ran"
    );
    // A tmux session: its server and clients name themselves "tmux: ...".
    let tmux_cmd = |socket: &str, args: &[&str]| {
        let mut cmd = group.command(&tmux);
        cmd.args(["-L", socket, "-f", "/dev/null"]).args(args);
        cmd
    };
    succeed(
        "tmux new-session",
        &mut tmux_cmd(&tmux_b, &["new-session", "-d", "-s", "corpus", "sleep 600"]),
    );
    succeed(
        "tmux list-sessions",
        &mut tmux_cmd(&tmux_b, &["list-sessions"]),
    );
    succeed("tmux kill-server", &mut tmux_cmd(&tmux_b, &["kill-server"]));
    succeed("tmux kill-server", &mut tmux_cmd(&tmux_a, &["kill-server"]));
    // A JVM start: its threads name themselves ("GC Thread#0", ...).
    succeed("java -version", group.command("java").arg("-version"));
    // podman starting a container with runc, in a cgroup below ours.
    let rootfs = crate::container::rootfs();
    succeed(
        "podman run",
        group
            .command("podman")
            .args(crate::container::PODMAN_RUN)
            .arg(format!("--cgroup-parent={}", group.path))
            .arg("--rootfs")
            .arg(rootfs.path())
            .args(["/bin/sh", "-c", "true"]),
    );

    // The processes held since the start end (their stdin closes).
    for Held { mut child, .. } in held {
        drop(child.stdin.take());
        let status = child.wait().expect("wait");
        assert!(status.success(), "{status}");
    }

    // Every line before the marker's is written (see the other tests).
    let marker = format!("e2e-n-end-{}", id % 10_000);
    let marker_pid = renamer::run("prctl", marker.as_bytes(), &[]).get("pid");
    for daemon in [&mut d, &mut witness] {
        daemon.wait_for("the corpus's end marker", |e| {
            at(e, "process.pid").as_u64() == Some(marker_pid.into())
                && at(e, "rename.new_name").as_str() == Some(marker.as_str())
        });
    }

    let ours = |daemon: &mut Daemon| -> Vec<Value> {
        daemon
            .events()
            .iter()
            .filter(|e| group.holds(e))
            .cloned()
            .collect()
    };
    let alerts = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|e| at(e, "event.kind").as_str() == Some("alert"))
            .cloned()
            .collect()
    };
    let shipped = ours(&mut d);
    let seen = ours(&mut witness);

    // The witness saw the corpus: an exec of each program it names.
    let executables: BTreeSet<&str> = seen
        .iter()
        .filter(|e| at(e, "rename.method").as_str() == Some("exec"))
        .filter_map(|e| at(e, "process.executable").as_str())
        .collect();
    for want in [
        "/usr/bin/python3.11",
        "/usr/bin/vim.basic",
        "/usr/bin/mawk",
        "/usr/bin/busybox",
        "/usr/bin/bash",
        "/usr/bin/su",
        "/usr/lib/systemd/systemd",
        "/usr/bin/true",
        sshd.to_str().unwrap(),
        "/usr/bin/apt-get",
        "/usr/bin/dpkg",
        "/usr/bin/tmux",
        "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        "/usr/bin/podman",
        "/usr/sbin/runc",
        // Inside the container, named in its own root.
        "/bin/busybox",
    ] {
        assert!(
            executables.contains(want),
            "the witness saw no exec of {want}; it saw {executables:?}"
        );
    }
    let names: BTreeSet<&str> = seen
        .iter()
        .filter_map(|e| at(e, "rename.new_name").as_str())
        .collect();
    for want in ["(sd-pam)", "(sd-rmrf)", "(true)", "tmux: server"] {
        assert!(
            names.contains(want),
            "the witness saw no rename to {want}: {names:?}"
        );
    }

    let summary = |lines: &[Value]| -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for e in lines {
            *by.entry(str_at(e, "event.action").to_owned()).or_default() += 1;
        }
        by
    };
    let shipped_alerts = alerts(&shipped);
    let seen_alerts = alerts(&seen);
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "noise corpus: {} alerts in {} lines as shipped {:?}; {} alerts in {} lines with \
         --include-exec --thread-renames all",
        shipped_alerts.len(),
        shipped.len(),
        summary(&shipped),
        seen_alerts.len(),
        seen.len(),
    );
    assert!(
        shipped_alerts.is_empty(),
        "the corpus raised alerts:\n{}",
        shipped_alerts
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        seen_alerts.is_empty(),
        "the corpus raised alerts under --include-exec:\n{}",
        seen_alerts
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    d.stop();
    witness.stop();
}

fn empty_config_in(dir: &Path) -> PathBuf {
    let path = dir.join("shipped.toml");
    std::fs::write(&path, "").unwrap();
    path
}
