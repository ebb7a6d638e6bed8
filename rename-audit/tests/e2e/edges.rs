//! End-to-end: nothing lost at the edges. Log rotation with Debian's real
//! logrotate, a real tmpfs filled up and given space back, a real broken
//! pipe, event identity across restarts, the metrics endpoint under slow
//! connections from an unprivileged user, names escaped in real rsyslog and
//! Alertmanager, and flags checked like the file. Every test filters on its
//! own pids: the daemon sees the whole host.
use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    daemon::{Daemon, at, no_config, str_at, u64_at},
    http, renamer,
    servers::{Alertmanager, Rsyslog, free_port},
};
use serde_json::Value;

const SHIPPED_LOGROTATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/logrotate");

/// Every line of `path`, parsed; panics on a line that is not one whole
/// JSON object (a half-written line included).
fn lines(path: &Path) -> Vec<Value> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{} ends in a partial line: {:?}",
        path.display(),
        String::from_utf8_lossy(&data[data.len().saturating_sub(200)..])
    );
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "a line of {} is not whole JSON ({e}): {}",
                    path.display(),
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

fn renamed_to<'a>(events: &'a [Value], pid: u32, name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            at(e, "process.pid").as_u64() == Some(pid.into())
                && at(e, "rename.new_name").as_str() == Some(name)
        })
        .collect()
}

fn output_losses(events: &[Value]) -> u64 {
    events
        .iter()
        .filter(|e| at(e, "lost.class").as_str() == Some("output"))
        .map(|e| u64_at(e, "lost.count"))
        .sum()
}

fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (status, body) = http::get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{body}"))
}

/// A real tmpfs of `size`, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed (root needed)");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system is full.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).expect("create filler");
        let chunk = vec![b'x'; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `rename-audit` with `args`, expected to refuse and exit at once; one
/// that starts instead is killed after 30 s and the test fails. A `run`
/// without `--config` gets an empty one, so the host's file plays no part.
fn rename_audit(args: &[&str]) -> std::process::Output {
    let own_config: &[&str] = if args.first() == Some(&"run") && !args.contains(&"--config") {
        &["--config", no_config()]
    } else {
        &[]
    };
    let (command, rest) = args.split_first().expect("a subcommand");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .arg(command)
        .args(own_config)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rename-audit");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let until = Instant::now() + crate::support::patience(Duration::from_secs(30));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rename-audit {args:?} did not refuse: it was still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: reader.join().expect("stderr reader"),
    }
}

#[test]
fn logrotate_with_the_shipped_config_loses_no_rename() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("events.json");
    let mut d = Daemon::start_with(tempfile::tempdir().unwrap(), output.clone(), &[]);

    let before = renamer::run("prctl", b"rot-before", &[]).get("pid");
    d.wait_for("the rename before rotation", |e| {
        at(e, "process.pid").as_u64() == Some(before.into())
    });

    // The shipped file, with two lines changed: the log path, and the
    // postrotate command, which reloads the systemd unit (not running
    // here). Instead it renames once more, between logrotate's rename of
    // the file and the daemon's reopen, then sends SIGHUP as the unit's
    // ExecReload does.
    let shipped = std::fs::read_to_string(SHIPPED_LOGROTATE).expect("read deploy/logrotate");
    let path_line = "/var/log/rename-audit/events.json {";
    let reload = "systemctl reload rename-audit.service >/dev/null 2>&1 || true";
    assert_eq!(shipped.matches(path_line).count(), 1, "{shipped}");
    assert_eq!(shipped.matches(reload).count(), 1, "{shipped}");
    let marker = dir.path().join("between.out");
    let conf = shipped
        .replace(path_line, &format!("{} {{", output.display()))
        .replace(
            reload,
            &format!(
                "{} prctl {} > {} && kill -HUP {}",
                renamer::path().display(),
                renamer::hex(b"rot-between"),
                marker.display(),
                d.pid()
            ),
        );
    let conf_path = dir.path().join("logrotate.conf");
    std::fs::write(&conf_path, conf).expect("write logrotate.conf");
    let rotated = logrotate(&conf_path, &dir.path().join("state"));
    assert!(rotated.status.success(), "logrotate: {rotated:?}");
    d.wait_for_log("output reopened");
    d.follow_new_file();
    let between: u32 = std::fs::read_to_string(&marker)
        .expect("postrotate ran")
        .lines()
        .find_map(|l| l.strip_prefix("pid=")?.parse().ok())
        .expect("pid of the rename between mv and reopen");

    let after = renamer::run("prctl", b"rot-after", &[]).get("pid");
    d.wait_for("the rename after rotation", |e| {
        at(e, "process.pid").as_u64() == Some(after.into())
    });
    let (status, _) = d.stop();
    assert!(status.success(), "{status}");

    let old = lines(&dir.path().join("events.json.1"));
    let new = lines(&output);
    let all: Vec<Value> = old.iter().chain(new.iter()).cloned().collect();
    assert_eq!(renamed_to(&old, before, "rot-before").len(), 1);
    assert_eq!(
        renamed_to(&all, between, "rot-between").len(),
        1,
        "the rename between mv and SIGHUP is in one of the files, once"
    );
    assert_eq!(renamed_to(&new, after, "rot-after").len(), 1);
    assert!(renamed_to(&old, after, "rot-after").is_empty());
    // Nothing missing or doubled: the run's sequence numbers are 1..=n.
    let seqs: Vec<u64> = all.iter().map(|e| u64_at(e, "event.sequence")).collect();
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "no event written twice");
    assert_eq!(*seqs.iter().max().unwrap(), seqs.len() as u64, "no gap");
}

fn logrotate(conf: &Path, state: &Path) -> std::process::Output {
    assert!(
        Path::new("/usr/sbin/logrotate").exists(),
        "install Debian's logrotate (cargo xtask setup does)"
    );
    Command::new("/usr/sbin/logrotate")
        .arg("--force")
        .arg("--state")
        .arg(state)
        .arg(conf)
        .output()
        .expect("run logrotate")
}

#[test]
fn a_full_tmpfs_loses_no_line_uncounted_and_breaks_none() {
    let fs = Tmpfs::mount("256m");
    let output = fs.path().join("events.json");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let addr: SocketAddr = listen.parse().unwrap();
    let mut d = Daemon::start_with(
        tempfile::tempdir().unwrap(),
        output.clone(),
        &[
            "--metrics-listen",
            &listen,
            "--output-unwritable-timeout",
            "600",
        ],
    );
    let first = renamer::run("prctl", b"full-first", &[]).get("pid");
    d.wait_for("a rename before the disk is full", |e| {
        at(e, "process.pid").as_u64() == Some(first.into())
    });

    let filler = fs.fill();
    // More than the daemon's 8 MiB backlog (a line is about 900 bytes):
    // 15,000 process renames.
    renamer::run("loop-prctl", b"fullxx", &["15000"]);
    d.wait_for_log("writing to the output failed");
    let until = Instant::now() + crate::support::patience(Duration::from_secs(60));
    while metric(addr, "rename_audit_events_lost_total{class=\"output\"}") == 0.0 {
        assert!(Instant::now() < until, "no output loss counted within 60 s");
        renamer::run("loop-prctl", b"fullyy", &["5000"]);
    }

    std::fs::remove_file(&filler).expect("give the space back");
    // The host keeps renaming while this test runs (other tests, other
    // daemons): allow the daemon time to catch up.
    let lost = d.wait_for_within(
        Duration::from_secs(120),
        "the events-lost record of class output",
        |e| at(e, "lost.class").as_str() == Some("output"),
    );
    let lost_seq = u64_at(&lost, "event.sequence");
    assert_eq!(
        at(&lost, "lost.reason").as_str(),
        Some("write-failed"),
        "an output loss gives its reason: {lost}"
    );
    let counted = metric(addr, "rename_audit_events_lost_total{class=\"output\"}");
    let counted_by_reason = metric(
        addr,
        "rename_audit_events_lost_by_reason_total{class=\"output\",reason=\"write-failed\"}",
    );
    let errors_logged = d
        .stderr_text()
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("output"))
        .count();
    let (status, _) = d.stop_within(Duration::from_secs(120));
    assert!(status.success(), "all losses were reported: {status}");

    let events = lines(&output);
    let reported = output_losses(&events);
    assert!(reported > 0);
    assert!(
        events
            .iter()
            .any(|e| u64_at(e, "event.sequence") > lost_seq),
        "lines are written after the loss report"
    );
    assert_eq!(reported as f64, counted, "the record and the metric agree");
    assert_eq!(
        counted_by_reason, counted,
        "output losses are all write-failed"
    );
    // Each record of the run has a sequence number: every one of them is
    // either a line in the file or counted in an events-lost record.
    let seqs: HashSet<u64> = events.iter().map(|e| u64_at(e, "event.sequence")).collect();
    assert_eq!(seqs.len(), events.len(), "no line written twice");
    let max = *seqs.iter().max().unwrap();
    assert_eq!(
        events.len() as u64 + reported,
        max,
        "delivered lines + counted losses == records made"
    );
    // Thousands of failed writes, a handful of log lines.
    assert!(
        errors_logged <= 10,
        "errors are rate-limited, got {errors_logged}"
    );
}

#[test]
fn sigterm_with_a_full_disk_counts_the_unwritten_and_exits_non_zero() {
    let fs = Tmpfs::mount("1m");
    let output = fs.path().join("events.json");
    let mut d = Daemon::start_with(tempfile::tempdir().unwrap(), output.clone(), &[]);
    let filler = fs.fill();
    renamer::run("loop-prctl", b"termxx", &["2000"]);
    d.wait_for_log("writing to the output failed");
    let (status, _) = d.stop();
    assert!(
        !status.success(),
        "lost events must fail the exit: {status}"
    );
    let text = d.stderr_text();
    let summary = text
        .lines()
        .find(|l| l.contains("events could not be written"))
        .unwrap_or_else(|| panic!("no exit message: {text}"));
    // "rename-audit: N events could not be written to PATH ... (M lost in all)"
    let n: u64 = summary
        .split("rename-audit: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("count in {summary}"));
    std::fs::remove_file(&filler).unwrap();
    // No half line left behind, whatever the last short write did.
    let events = lines(&output);
    // A few lines may still fit in the filled file system's last block:
    // written + counted covers every one of the 2,000 renames.
    assert!(
        events.len() as u64 + n >= 2000,
        "the 2000 renames are written or counted: {} written, {summary}",
        events.len()
    );
    let reported: HashSet<u64> = events.iter().map(|e| u64_at(e, "event.sequence")).collect();
    assert_eq!(reported.len(), events.len());
}

#[test]
fn an_output_unwritable_past_the_timeout_stops_the_daemon() {
    let fs = Tmpfs::mount("1m");
    let output = fs.path().join("events.json");
    let mut d = Daemon::start_with(
        tempfile::tempdir().unwrap(),
        output,
        &["--output-unwritable-timeout", "1"],
    );
    let _filler = fs.fill();
    // Keep events coming until the daemon gives up.
    let until = Instant::now() + crate::support::patience(Duration::from_secs(60));
    while d.running() {
        assert!(
            Instant::now() < until,
            "the daemon did not stop within 60 s"
        );
        renamer::run("loop-prctl", b"stopxx", &["200"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "{status}");
    let text = d.stderr_text();
    assert_eq!(
        text.matches("has been unwritable for").count(),
        1,
        "one clear message: {text}"
    );
}

#[test]
fn a_broken_stdout_stops_the_daemon_with_one_message() {
    let mut d = Daemon::start_configured(tempfile::tempdir().unwrap(), "-".into(), &[], |cmd| {
        cmd.stdout(Stdio::piped());
    });
    let mut stdout = d.child().stdout.take().expect("piped stdout");
    renamer::run("prctl", b"pipe-first", &[]);
    // `| head -c 10`: read ten bytes, then go away.
    let mut ten = [0u8; 10];
    stdout.read_exact(&mut ten).expect("the first bytes");
    drop(stdout);
    let until = Instant::now() + crate::support::patience(Duration::from_secs(60));
    while d.running() {
        assert!(
            Instant::now() < until,
            "the daemon kept running on a broken pipe"
        );
        renamer::run("loop-prctl", b"pipexx", &["100"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "a broken stdout is a failure: {status}");
    let text = d.stderr_text();
    assert_eq!(
        text.matches("broken pipe").count(),
        1,
        "one message, not one per event: {text}"
    );
}

#[test]
fn event_ids_are_unique_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("events.json");
    let mut runs = Vec::new();
    for name in [&b"id-one"[..], b"id-two"] {
        let mut d = Daemon::start_with(tempfile::tempdir().unwrap(), output.clone(), &[]);
        let pid = renamer::run("prctl", name, &[]).get("pid");
        let e = d.wait_for("the rename", |e| {
            at(e, "process.pid").as_u64() == Some(pid.into())
        });
        runs.push(str_at(&e, "agent.ephemeral_id").to_owned());
        d.stop();
    }
    assert_ne!(runs[0], runs[1], "each run has its own id");
    let events = lines(&output);
    let mut ids = HashSet::new();
    let mut seqs = HashSet::new();
    let mut repeated_seq = false;
    for e in &events {
        let run = str_at(e, "agent.ephemeral_id");
        assert!(runs.iter().any(|r| r == run), "{e}");
        let seq = u64_at(e, "event.sequence");
        assert_eq!(str_at(e, "event.id"), format!("{run}-{seq}"));
        assert!(
            ids.insert(str_at(e, "event.id").to_owned()),
            "duplicate id: {e}"
        );
        repeated_seq |= !seqs.insert(seq);
    }
    assert!(repeated_seq, "sequence numbers restart, ids do not");
}

/// A copy of the workload in a fresh directory under /tmp, where it
/// renames itself: writable-path-stomp (high).
struct TmpWorkload {
    dir: PathBuf,
    path: PathBuf,
}

impl TmpWorkload {
    fn new(name: &str) -> TmpWorkload {
        let dir = PathBuf::from(format!("/tmp/rename-audit-edges-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::copy(renamer::path(), &path).expect("copy the workload");
        TmpWorkload { dir, path }
    }
}

impl Drop for TmpWorkload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 1,100 connections to `addr` that each send half a request and then
/// hold, from uid `nobody`: a small Perl client under `setpriv`, with its
/// own descriptor limit raised so it can hold them all.
const SLOW_CLIENT: &str = r#"
use IO::Socket::INET;
my ($addr, $n) = @ARGV;
my @held;
for (1..$n) {
    my $s = IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp') or next;
    $s->autoflush(1);
    print $s "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    push @held, $s;
}
print "uid=$< held=", scalar(@held), "\n";
$| = 1;
<STDIN>;
"#;

#[test]
fn slow_metrics_connections_from_nobody_blind_neither_rules_nor_metrics() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let addr: SocketAddr = listen.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("events.json");
    // The descriptor limit a unit without LimitNOFILE gets.
    let mut d = Daemon::start_configured(dir, output, &["--metrics-listen", &listen], |cmd| {
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| set_nofile(1024));
        }
    });

    let mut client = Command::new("setpriv");
    client
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "perl",
            "-e",
        ])
        .arg(SLOW_CLIENT)
        .arg(&listen)
        .arg("1100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; the raised limit is inherited
    // through setpriv's change of user.
    unsafe {
        client.pre_exec(|| set_nofile(4096));
    }
    let mut client = client.spawn().expect("start the slow client");
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("the client's report");
    assert_eq!(
        line.trim(),
        "uid=65534 held=1100",
        "unprivileged, all connected"
    );

    let stomp = TmpWorkload::new("slow-stomp");
    let pid = renamer::run_from(&stomp.path, "prctl", b"stomped", &[]).get("pid");
    let e = d.wait_for("the /tmp stomp", |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some("stomped")
    });
    assert_eq!(str_at(&e, "rule.id"), "writable-path-stomp", "{e}");
    assert_eq!(str_at(&e, "rule.severity"), "high", "{e}");
    assert_eq!(
        str_at(&e, "process.executable"),
        stomp.path.to_str().unwrap(),
        "{e}"
    );
    let alerts = metric(
        addr,
        "rename_audit_alerts_total{rule=\"writable-path-stomp\",severity=\"high\"}",
    );
    assert!(alerts >= 1.0, "/metrics answers and counts the alert");

    drop(client.stdin.take());
    let _ = client.wait();
    let (status, _) = d.stop();
    assert!(status.success(), "{status}");
}

fn set_nofile(n: libc::rlim_t) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: a valid rlimit struct for setrlimit to read.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A name with a line separator and a right-to-left override: 15 bytes.
const HOSTILE: &str = "kworker/\u{2028}\u{202e}x";

#[test]
fn separators_and_bidi_controls_reach_rsyslog_escaped() {
    let rsyslog = Rsyslog::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sinks.syslog]\ntransport = \"udp\"\naddress = \"{}\"\nalerts = true\nevents = true\n",
            rsyslog.udp
        ),
    )
    .unwrap();
    let mut d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let pid = renamer::run("prctl", HOSTILE.as_bytes(), &[]).get("pid");
    d.wait_for("the hostile rename", |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some(HOSTILE)
    });
    let hits = rsyslog.wait_for_lines(&format!("process {pid} "), 1, Duration::from_secs(20));
    assert_eq!(hits.len(), 1, "one message, one line: {hits:?}");
    let all = rsyslog.lines().join("\n");
    assert!(
        !all.contains('\u{2028}') && !all.contains('\u{202e}'),
        "raw separator or bidi control in rsyslog's file: {all}"
    );
    assert!(
        hits[0].contains(r"kworker/\\u{2028}\\u{202e}x"),
        "visibly escaped in the structured data: {}",
        hits[0]
    );
    d.stop();
}

#[test]
fn separators_and_bidi_controls_reach_alertmanager_escaped() {
    let am = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[sinks.alertmanager]\nurl = \"{}\"\n", am.url()),
    )
    .unwrap();
    let mut d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let pid = renamer::run("prctl", HOSTILE.as_bytes(), &[]).get("pid");
    d.wait_for("the hostile rename", |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
    });
    let escaped = r"kworker/\u{2028}\u{202e}x";
    let alerts = am.wait_for_alerts("process_name", escaped, Duration::from_secs(20), |a| {
        !a.is_empty()
    });
    for a in &alerts {
        let text = a.to_string();
        assert!(
            !text.contains('\u{2028}') && !text.contains('\u{202e}'),
            "raw in labels or annotations: {text}"
        );
    }
    d.stop();
}

#[test]
fn flags_are_checked_like_the_file_and_odd_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let o = rename_audit(&["run", "--thread-burst", "0"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--thread-burst: must be between 1 and 4294967295, not 0"),
        "{}",
        stderr(&o)
    );

    let o = rename_audit(&["run", "--output", "relative.json"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--output: must be \"-\" (stdout) or an absolute path"),
        "{}",
        stderr(&o)
    );

    let o = rename_audit(&["run", "--priority-ring-bytes", "12345"]);
    assert!(stderr(&o).contains("--priority-ring-bytes: 12345 is not a power of two"));

    // A configuration file past the size cap is refused unread (a device
    // such as /dev/zero is refused for its type: see hostile::).
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(2 << 20))
        .expect("a 2 MiB sparse file");
    let o = rename_audit(&["run", "--config", big.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("larger than 1024 KiB"),
        "{}",
        stderr(&o)
    );

    let o = rename_audit(&["check-config", "/nonexistent/config.toml"]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "the OS error once: {}",
        stderr(&o)
    );

    // A FIFO nobody reads: refused at once, not a hang.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let o = rename_audit(&["run", "--output", fifo.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("a FIFO that no process reads"), "{err}");

    let o = rename_audit(&["run", "--output", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("it is a directory"), "{}", stderr(&o));
}
