//! The alert burst (issue 20): does posting every alert to three
//! Alertmanager replicas over TLS stay off the capture path?
//!
//! `--alerts` runs only this, `--alert-burst` adds it to a whole run. Three
//! real `prometheus-alertmanager` replicas gossip on loopback, each behind
//! TLS with client certificates (`client_auth_type:
//! RequireAndVerifyClientCert`) and bcrypt basic auth, with certificates the
//! `openssl` CLI makes here. The burst is `--alert-procs` processes
//! (`alert_burst.c`), each from a hard link of its own, so each has an
//! executable of its own and the sink, which deduplicates per rule and
//! executable, posts every one; each renames its main thread to a kernel
//! thread's name once a second, spread over the second: `--alert-procs`
//! `kernel-thread-mimic` alerts a second for `--alert-secs` seconds. The
//! sink's limits are raised (`dedup_window_secs = 1`, the least;
//! `rate_limit_per_minute = 60000`, the most; a queue of 100,000 per
//! replica) so that they, not the sink's cost, are out of the way.
//!
//! The same burst runs with the daemon without sinks and with the three
//! replicas: once alone, for the daemon's CPU per alert, the sink's
//! counters and the rename-to-line latency of a probe; once with a rename
//! storm on every core, for the storm's rate (and ratio to the same storm and
//! burst untraced) and the latency again.
use std::{
    fs,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use crate::{
    Bench, cpu_secs,
    report::{Cell, Report, Table},
};

/// The replicas' user.
const USER: &str = "bench";
/// The rule every burst rename raises.
const RULE: &str = "kernel-thread-mimic";
/// The Alertmanager sink's queue per replica in this run.
const QUEUE: u64 = 100_000;

/// How big the burst is.
pub struct Burst {
    /// Processes (distinct executables), each renaming once a second.
    pub procs: usize,
    pub secs: u64,
    /// Interleaved rounds of the storm (untraced, no sinks, three replicas).
    pub rounds: usize,
}

/// Runs the alert burst without sinks and against three TLS replicas.
pub fn run(b: &Bench, report: &mut Report, burst: &Burst) -> Result<()> {
    let dir = b.dir.join("alerts");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    let exes = burst_executables(&dir, burst.procs)?;
    let pki = Pki::make(&dir.join("pki"))?;
    let fleet = Fleet::start(&dir.join("fleet"), &pki)?;
    let plain = dir.join("no-sinks.toml");
    fs::write(&plain, "")?;
    let tls = dir.join("three-replicas.toml");
    fs::write(&tls, fleet.daemon_config(&pki))?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut alone = Table::new(
        "alert-burst",
        format!(
            "Alert burst: {} kernel-thread-mimic alerts a second from {} executables for {} s, \
             alone",
            burst.procs, burst.procs, burst.secs
        ),
        &[
            "sinks",
            "alerts raised",
            "alerts /s",
            "sent per replica",
            "failed",
            "dropped",
            "suppressed by dedup",
            "lost by the kernel",
            "daemon CPU s",
            "daemon CPU µs per alert",
            "Alertmanager replicas CPU s",
            "latency p50 ms",
            "latency p99 ms",
            "latency max ms",
            "samples",
        ],
    );
    let mut storm = Table::new(
        "alert-burst-storm",
        format!(
            "Alert burst with a rename storm on {cpus} threads ({} s), median of {} interleaved \
             rounds; the storm ratio is to the same storm and burst untraced in the same round",
            burst.secs, burst.rounds
        ),
        &[
            "sinks",
            "storm renames /s",
            "storm ratio",
            "lost by the kernel",
            "latency p50 ms",
            "latency p99 ms",
            "latency max ms",
            "samples",
        ],
    );

    let configs = [
        ("none", &plain, &[][..]),
        (
            "3 replicas, TLS + client certificate + basic auth",
            &tls,
            &fleet.pids()[..],
        ),
    ];
    // The storm's rate moves by several percent between two runs of the
    // same thing here: rounds of untraced and of each configuration in turn,
    // each compared with the untraced rate of its own round.
    let mut untraced_rates = Vec::new();
    let mut storm_rounds: Vec<Vec<Round>> = configs.iter().map(|_| Vec::new()).collect();
    for _ in 0..burst.rounds {
        let untraced = Round::run(b, &exes, burst, None, Some(cpus), &[])?;
        let untraced_rate = untraced.storm_rate.unwrap_or(f64::NAN);
        untraced_rates.push(untraced_rate);
        for ((_, config, replicas), rounds) in configs.iter().zip(&mut storm_rounds) {
            let mut s = Round::run(b, &exes, burst, Some(config), Some(cpus), replicas)?;
            s.storm_ratio = s.storm_rate.unwrap_or(f64::NAN) / untraced_rate;
            rounds.push(s);
        }
    }
    storm.row(vec![
        Cell::text("untraced"),
        Cell::num(crate::median(untraced_rates), 0),
        Cell::num(1.0, 2),
        Cell::text("–"),
        Cell::text("–"),
        Cell::text("–"),
        Cell::text("–"),
        Cell::text("–"),
    ]);
    for ((label, _, _), rounds) in configs.iter().zip(&storm_rounds) {
        let med = |f: &dyn Fn(&Round) -> f64| crate::median(rounds.iter().map(f).collect());
        let mut row = vec![
            Cell::text(*label),
            Cell::num(med(&|r| r.storm_rate.unwrap_or(f64::NAN)), 0),
            Cell::num(med(&|r| r.storm_ratio), 2),
            Cell::num(rounds.iter().map(|r| r.lost).sum::<f64>(), 0),
        ];
        let latency = [0, 1, 2, 3].map(|i| med(&|r| r.latency[i]));
        row.extend(latency_cells(&latency));
        storm.row(row);
    }
    for (label, config, replicas) in configs {
        let r = Round::run(b, &exes, burst, Some(config), None, replicas)?;
        let per_alert = r.daemon_cpu / r.alerts.max(1.0) * 1e6;
        let replica_cells = if replicas.is_empty() {
            [Cell::text("–"), Cell::text("–"), Cell::text("–")]
        } else {
            [
                Cell::text(
                    r.sent
                        .iter()
                        .map(|s| format!("{s:.0}"))
                        .collect::<Vec<_>>()
                        .join(" / "),
                ),
                Cell::num(r.failed, 0),
                Cell::num(r.dropped, 0),
            ]
        };
        let [sent, failed, dropped] = replica_cells;
        let mut row = vec![
            Cell::text(label),
            Cell::num(r.alerts, 0),
            Cell::num(r.alerts / burst.secs.max(1) as f64, 0),
            sent,
            failed,
            dropped,
            if replicas.is_empty() {
                Cell::text("–")
            } else {
                Cell::num(r.suppressed, 0)
            },
            Cell::num(r.lost, 0),
            Cell::num(r.daemon_cpu, 2),
            Cell::num(per_alert, 1),
            if replicas.is_empty() {
                Cell::text("–")
            } else {
                Cell::num(r.replicas_cpu, 2)
            },
        ];
        row.extend(latency_cells(&r.latency));
        alone.row(row);
    }
    alone.note(
        "(alerts raised: rename_audit_alerts_total{rule=\"kernel-thread-mimic\"}; sent, failed, \
         dropped: rename_audit_sink_{sent,failed,queue_dropped}_total of the alertmanager sink, \
         sent per replica, failed and dropped summed over the replicas; suppressed: \
         rename_audit_alerts_suppressed_total, repeats of one executable within \
         dedup_window_secs = 1; lost by the kernel: rename_audit_events_lost_total of the \
         process and lifecycle classes (a full ring: the burst's processes all exit within a \
         second); daemon CPU: user+system from the burst's start until every \
         replica's counters stopped moving, so \"none\" is the cost of judging and writing \
         the alerts and the difference is the sink's; latency: a probe renaming every 10 ms while the \
         burst ran, from the rename's @timestamp to its line in the output file)",
    );
    alone.note(format!(
        "(sink: dedup_window_secs = 1, rate_limit_per_minute = 60000, queue = {QUEUE} per \
         replica, heartbeat_secs = 60; replicas: Debian's prometheus-alertmanager, clustered on \
         loopback under SCHED_IDLE (chrt --idle 0: they stand for other hosts), ECDSA P-256 certificates, bcrypt cost 10)"
    ));
    report.table(alone)?;
    report.table(storm)?;
    drop(fleet);
    Ok(())
}

fn latency_cells(l: &[f64; 4]) -> Vec<Cell> {
    vec![
        Cell::num(l[0], 2),
        Cell::num(l[1], 2),
        Cell::num(l[2], 2),
        Cell::int(l[3] as u64),
    ]
}

/// Builds the burst's program and gives it `n` hard links, one per process.
fn burst_executables(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/alert_burst.c");
    let program = dir.join("alert_burst");
    // Static, so that ten thousand of them share their pages and start fast;
    // dynamic where no static libc is installed.
    let built = ["-static", ""].iter().any(|link| {
        Command::new("cc")
            .args(["-O2"])
            .args((!link.is_empty()).then_some(link))
            .arg("-o")
            .arg(&program)
            .arg(&source)
            .status()
            .is_ok_and(|s| s.success())
    });
    ensure!(built, "building {} failed", source.display());
    let links = dir.join("exe");
    fs::create_dir_all(&links)?;
    (0..n)
        .map(|i| {
            let link = links.join(format!("burst-{i:05}"));
            fs::hard_link(&program, &link)
                .with_context(|| format!("linking {}", link.display()))?;
            Ok(link)
        })
        .collect()
}

/// The burst's processes, started and waiting for SIGUSR1; killed if
/// dropped before they finish.
struct BurstProcs {
    children: Vec<Child>,
    pgid: i32,
}

impl BurstProcs {
    fn start(exes: &[PathBuf], secs: u64) -> Result<Self> {
        let (mut reader, writer) = std::io::pipe()?;
        let mut procs = BurstProcs {
            children: Vec::with_capacity(exes.len()),
            pgid: 0,
        };
        let slots = exes.len().to_string();
        for (i, exe) in exes.iter().enumerate() {
            let child = Command::new(exe)
                .args([i.to_string(), slots.clone(), secs.to_string()])
                .process_group(procs.pgid)
                .stdin(Stdio::null())
                .stdout(writer.try_clone()?)
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            if procs.pgid == 0 {
                procs.pgid = i32::try_from(child.id()).context("pid")?;
            }
            procs.children.push(child);
        }
        drop(writer);
        // Each says "r\n" once it waits for the signal.
        let mut left = 2 * exes.len();
        let mut buf = [0u8; 4096];
        while left > 0 {
            let n = reader.read(&mut buf)?;
            ensure!(n > 0, "a burst process ended before it was ready");
            left = left.saturating_sub(n);
        }
        Ok(procs)
    }

    fn go(&self) {
        // SAFETY: kill has no memory preconditions; the group is ours.
        unsafe { libc::kill(-self.pgid, libc::SIGUSR1) };
    }

    fn wait(mut self) -> Result<()> {
        for mut child in std::mem::take(&mut self.children) {
            let status = child.wait()?;
            ensure!(status.success(), "a burst process failed: {status}");
        }
        Ok(())
    }
}

impl Drop for BurstProcs {
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        // SAFETY: as in `go`.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

/// What one round of the burst measured.
#[derive(Default)]
struct Round {
    alerts: f64,
    sent: Vec<f64>,
    failed: f64,
    dropped: f64,
    suppressed: f64,
    /// Records the kernel could not send (ring full), process and
    /// lifecycle classes.
    lost: f64,
    daemon_cpu: f64,
    replicas_cpu: f64,
    storm_rate: Option<f64>,
    /// The storm's rate over the untraced rate of the same round.
    storm_ratio: f64,
    latency: [f64; 4],
}

impl Round {
    /// One burst: with the daemon on `config` (untraced without), a storm
    /// on `storm` threads alongside if given, and the replicas `replicas`
    /// (their pids, for their CPU) as its sink.
    fn run(
        b: &Bench,
        exes: &[PathBuf],
        burst: &Burst,
        config: Option<&Path>,
        storm: Option<usize>,
        replicas: &[u32],
    ) -> Result<Round> {
        let procs = BurstProcs::start(exes, burst.secs)?;
        let output = b.dir.join("alerts/events.json");
        let daemon = config
            .map(|config| Daemon::start(b, config, &output))
            .transpose()?;
        let before = daemon.as_ref().map(Daemon::metrics).transpose()?;
        let cpu_before = daemon.as_ref().map_or(0.0, |d| cpu_secs(d.child.id()));
        let replicas_before: f64 = replicas.iter().map(|&p| cpu_secs(p)).sum();
        procs.go();
        let storm_run = storm.map(|threads| {
            let renamer = b.renamer.clone();
            let secs = burst.secs.to_string();
            std::thread::spawn(move || {
                Command::new(renamer)
                    .args(["rate", "", &threads.to_string(), &secs])
                    .output()
            })
        });
        let latency = match &daemon {
            Some(_) => probe_latency(b, &output, burst.secs)?,
            None => [f64::NAN; 4],
        };
        procs.wait()?;
        let storm_rate = match storm_run {
            Some(t) => {
                let out = t
                    .join()
                    .map_err(|_| anyhow::anyhow!("the storm thread panicked"))??;
                let out = String::from_utf8_lossy(&out.stdout);
                Some(crate::values(&out, "rate").context("the storm printed no rate")? as f64)
            }
            None => None,
        };
        let mut round = Round {
            storm_rate,
            latency,
            ..Default::default()
        };
        let Some(daemon) = daemon else {
            return Ok(round);
        };
        // Until the sink has handed over everything: its counters stop
        // moving for 2 s (bounded).
        let deadline = Instant::now() + Duration::from_secs(120);
        // Only the sink's own series: the host's other renames keep the
        // rest moving.
        let sink_series = |text: &str| -> String {
            text.lines()
                .filter(|l| l.starts_with("rename_audit_sink_") && l.contains("alertmanager"))
                .collect()
        };
        let mut last = daemon.metrics()?;
        let mut still_since = Instant::now();
        while Instant::now() < deadline && still_since.elapsed() < Duration::from_secs(2) {
            sleep(Duration::from_millis(250));
            let now = daemon.metrics()?;
            if sink_series(&now) != sink_series(&last) {
                still_since = Instant::now();
            }
            last = now;
        }
        round.daemon_cpu = cpu_secs(daemon.child.id()) - cpu_before;
        round.replicas_cpu = replicas.iter().map(|&p| cpu_secs(p)).sum::<f64>() - replicas_before;
        let before = before.unwrap_or_default();
        let delta =
            |name: &str, filter: &str| sum(&last, name, filter) - sum(&before, name, filter);
        round.alerts = delta("rename_audit_alerts_total", &format!("rule=\"{RULE}\""));
        round.suppressed = delta(
            "rename_audit_alerts_suppressed_total",
            &format!("rule=\"{RULE}\""),
        );
        round.lost = delta("rename_audit_events_lost_total", "class=\"process\"")
            + delta("rename_audit_events_lost_total", "class=\"lifecycle\"");
        let am = "sink=\"alertmanager\"";
        round.failed = delta("rename_audit_sink_failed_total", am);
        round.dropped = delta("rename_audit_sink_queue_dropped_total", am);
        let mut replicas_seen: Vec<String> = last
            .lines()
            .filter(|l| l.starts_with("rename_audit_sink_sent_total{") && l.contains(am))
            .filter_map(|l| l.split("replica=\"").nth(1)?.split('"').next())
            .map(str::to_owned)
            .collect();
        replicas_seen.sort();
        replicas_seen.dedup();
        round.sent = replicas_seen
            .iter()
            .map(|r| delta("rename_audit_sink_sent_total", &format!("replica=\"{r}\"")))
            .collect();
        daemon.stop();
        Ok(round)
    }
}

/// Sum of the series `name` of a /metrics text whose labels hold `filter`.
fn sum(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            if !labels.starts_with('{') || !labels.contains(filter) {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

/// The daemon with a configuration file and /metrics on loopback.
struct Daemon {
    child: Child,
    metrics: SocketAddr,
}

impl Daemon {
    fn start(b: &Bench, config: &Path, output: &Path) -> Result<Daemon> {
        let _ = fs::remove_file(output);
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut child = Command::new(&b.daemon)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--output")
            .arg(output)
            .args(["--thread-renames", "all", "--metrics-listen"])
            .arg(metrics.to_string())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", b.daemon.display()))?;
        let mut stderr = child.stderr.take().context("stderr")?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let n = stderr.read(&mut buf)?;
            if n == 0 {
                let _ = child.wait();
                bail!(
                    "the daemon exited before it was ready: {}",
                    String::from_utf8_lossy(&seen)
                );
            }
            seen.extend_from_slice(&buf[..n]);
        }
        // Keep its log: a sink's refusals would show there.
        let log = b.dir.join("alerts/daemon.log");
        std::thread::spawn(move || {
            let mut file = fs::OpenOptions::new().create(true).append(true).open(log)?;
            file.write_all(&seen)?;
            std::io::copy(&mut stderr, &mut file)
        });
        let daemon = Daemon { child, metrics };
        // /metrics answers once its listener is up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while daemon.metrics().is_err() {
            ensure!(Instant::now() < deadline, "/metrics did not answer");
            sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }

    /// The /metrics text.
    fn metrics(&self) -> Result<String> {
        let mut tcp = TcpStream::connect(self.metrics)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut text = String::new();
        tcp.read_to_string(&mut text)?;
        let (head, body) = text.split_once("\r\n\r\n").context("an HTTP answer")?;
        ensure!(head.contains(" 200 "), "GET /metrics: {head}");
        Ok(body.to_owned())
    }

    fn stop(mut self) {
        crate::send_signal(self.child.id(), 15);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// p50, p99, max (ms) and samples of a probe renaming every 10 ms for
/// `secs`, from each rename's `@timestamp` to its line in `output`.
fn probe_latency(b: &Bench, output: &Path, secs: u64) -> Result<[f64; 4]> {
    let renames = (secs * 100).saturating_sub(50).max(1);
    let mut probe = Command::new(&b.renamer)
        .args(["probe", "", &renames.to_string(), "10"])
        .stdout(Stdio::null())
        .spawn()?;
    let probe_pid = u64::from(probe.id());
    let opened = Instant::now();
    let mut file = loop {
        match fs::File::open(output) {
            Ok(f) => break f,
            Err(e) if opened.elapsed() > Duration::from_secs(10) => {
                return Err(e).context("the daemon's output");
            }
            Err(_) => sleep(Duration::from_millis(1)),
        }
    };
    // The daemon's own delay, not this reader's: it runs SCHED_FIFO and
    // parses only the probe's lines (as the storm latency's prioritised
    // reader), so neither the storm nor the burst's megabytes delay it.
    crate::set_realtime(Some(50))?;
    let result = read_probe(&mut probe, &mut file, probe_pid, renames, secs);
    crate::set_realtime(None)?;
    let _ = probe.kill();
    let _ = probe.wait();
    Ok(super::latency_summary(result?))
}

/// Milliseconds from each of the probe's renames to the moment its line
/// was read.
fn read_probe(
    probe: &mut Child,
    file: &mut fs::File,
    probe_pid: u64,
    renames: u64,
    secs: u64,
) -> Result<Vec<f64>> {
    let needle = format!("\"pid\":{probe_pid}");
    let needle = memchr::memmem::Finder::new(needle.as_bytes());
    let mut pending = Vec::new();
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs + 60);
    let mut exited = None;
    let mut progress = Instant::now();
    while Instant::now() < deadline {
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        let seen_at = time::OffsetDateTime::now_utc();
        pending.extend_from_slice(&chunk);
        // Lines are taken by offset and the buffer cut once: the burst's
        // lines come by the megabyte, and draining each would be quadratic.
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &pending[start..]) {
            let line = &pending[start..start + nl + 1];
            start += nl + 1;
            // Cheap first: most lines are the burst's.
            if needle.find(line).is_none() {
                continue;
            }
            let Ok(e) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            if e.pointer("/process/pid").and_then(Value::as_u64) != Some(probe_pid) {
                continue;
            }
            let Some(ts) = e.get("@timestamp").and_then(Value::as_str) else {
                continue;
            };
            let at =
                time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)?;
            latencies.push((seen_at - at).as_seconds_f64() * 1000.0);
            progress = Instant::now();
        }
        pending.drain(..start);
        if latencies.len() as u64 >= renames {
            break;
        }
        // Once the probe has ended and no line of it came for 5 s, what is
        // missing was lost (counted by the daemon), not late.
        if exited.is_none() && probe.try_wait()?.is_some() {
            exited = Some(Instant::now());
        }
        if exited.is_some() && progress.elapsed() > Duration::from_secs(5) {
            break;
        }
        sleep(Duration::from_millis(1));
    }
    Ok(latencies)
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// by the `openssl` CLI, and the replicas' password in a 0600 file.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    password: String,
    password_file: PathBuf,
}

impl Pki {
    fn make(dir: &Path) -> Result<Pki> {
        fs::create_dir_all(dir)?;
        let openssl = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .context("running openssl (Debian's openssl package)")?;
            ensure!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=rename-audit bench CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        )?;
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )?;
        for (name, cn) in [("server", "127.0.0.1"), ("client", "bench-host")] {
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            let subj = format!("/CN={cn}");
            openssl(
                &[
                    &["req", "-new"][..],
                    &ec,
                    &["-keyout", &key, "-out", &csr, "-subj", &subj],
                ]
                .concat(),
            )?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ])?;
            fs::set_permissions(dir.join(&key), fs::Permissions::from_mode(0o600))?;
        }
        let password = format!("bench-{}", std::process::id());
        let password_file = dir.join("am-password");
        fs::write(&password_file, format!("{password}\n"))?;
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600))?;
        let pair = |name: &str| {
            (
                dir.join(format!("{name}.pem")),
                dir.join(format!("{name}.key")),
            )
        };
        Ok(Pki {
            ca: dir.join("ca.pem"),
            server: pair("server"),
            client: pair("client"),
            password,
            password_file,
        })
    }
}

/// Three `prometheus-alertmanager` replicas gossiping on loopback, killed
/// when dropped.
struct Fleet {
    replicas: Vec<(Child, SocketAddr)>,
}

impl Fleet {
    fn start(dir: &Path, pki: &Pki) -> Result<Fleet> {
        fs::create_dir_all(dir)?;
        let config = dir.join("alertmanager.yml");
        fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )?;
        let hash = Command::new("htpasswd")
            .args(["-nbBC", "10", USER, &pki.password])
            .output()
            .context("running htpasswd (Debian's apache2-utils)")?;
        ensure!(hash.status.success(), "htpasswd failed");
        let hash = String::from_utf8_lossy(&hash.stdout);
        let hash = hash
            .trim()
            .split_once(':')
            .context("user:hash")?
            .1
            .to_owned();
        // Distinct ports: two free_port() calls may return the same one.
        let mut ports = std::collections::BTreeSet::new();
        while ports.len() < 6 {
            ports.insert(free_port()?);
        }
        let ports: Vec<u16> = ports.into_iter().collect();
        let web: Vec<SocketAddr> = ports[..3]
            .iter()
            .map(|&p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let cluster: Vec<SocketAddr> = ports[3..]
            .iter()
            .map(|&p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let mut fleet = Fleet {
            replicas: Vec::new(),
        };
        for i in 0..3 {
            let rdir = dir.join(format!("replica{i}"));
            fs::create_dir_all(&rdir)?;
            let web_yml = rdir.join("web.yml");
            fs::write(
                &web_yml,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  \
                     client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n\
                     basic_auth_users:\n  {USER}: '{hash}'\n",
                    pki.server.0.display(),
                    pki.server.1.display(),
                    pki.ca.display()
                ),
            )?;
            let log = fs::File::create(rdir.join("alertmanager.log"))?;
            // SCHED_IDLE: in a fleet the replicas run on other hosts; here
            // they share two cores with the daemon and the workload, so they
            // only get what is left over, and the daemon's figures stay its
            // own. A replica that falls behind makes the sink queue, which is
            // what the burst is to show stays off the capture path.
            let mut cmd = Command::new("chrt");
            cmd.args(["--idle", "0", "prometheus-alertmanager"])
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", rdir.join("data").display()))
                .arg(format!("--web.listen-address={}", web[i]))
                .arg(format!("--web.config.file={}", web_yml.display()))
                .arg(format!("--cluster.listen-address={}", cluster[i]))
                .arg(format!("--cluster.advertise-address={}", cluster[i]));
            for (j, peer) in cluster.iter().enumerate() {
                if j != i {
                    cmd.arg(format!("--cluster.peer={peer}"));
                }
            }
            let child = cmd
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting prometheus-alertmanager (Debian's package)")?;
            fleet.replicas.push((child, web[i]));
        }
        for (_, addr) in &fleet.replicas {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !ready(*addr, pki) {
                ensure!(
                    Instant::now() < deadline,
                    "the replica on {addr} was not ready within 60 s"
                );
                sleep(Duration::from_millis(200));
            }
        }
        Ok(fleet)
    }

    fn pids(&self) -> Vec<u32> {
        self.replicas.iter().map(|(c, _)| c.id()).collect()
    }

    /// The daemon's configuration: every replica, mTLS, basic auth, and the
    /// sink's limits raised.
    fn daemon_config(&self, pki: &Pki) -> String {
        let urls: Vec<String> = self
            .replicas
            .iter()
            .map(|(_, a)| format!("\"https://{a}\""))
            .collect();
        format!(
            "[sinks.alertmanager]\nurls = [{}]\nqueue = {QUEUE}\ndedup_window_secs = 1\n\
             rate_limit_per_minute = 60000\n\n\
             [sinks.alertmanager.tls_config]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n\
             [sinks.alertmanager.basic_auth]\nusername = \"{USER}\"\npassword_file = \"{}\"\n",
            urls.join(", "),
            pki.ca.display(),
            pki.client.0.display(),
            pki.client.1.display(),
            pki.password_file.display()
        )
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (child, _) in &mut self.replicas {
            crate::send_signal(child.id(), 15);
            let _ = child.wait();
        }
    }
}

/// Whether a replica answers `/-/ready` over mTLS with basic auth.
fn ready(addr: SocketAddr, pki: &Pki) -> bool {
    Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--cacert",
        ])
        .arg(&pki.ca)
        .arg("--cert")
        .arg(&pki.client.0)
        .arg("--key")
        .arg(&pki.client.1)
        .arg("-u")
        .arg(format!("{USER}:{}", pki.password))
        .arg(format!("https://{addr}/-/ready"))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_only_the_named_series_with_the_label() {
        let text = "# HELP rename_audit_sink_sent_total x\n\
             rename_audit_sink_sent_total{sink=\"alertmanager\",replica=\"https://a\"} 3\n\
             rename_audit_sink_sent_total{sink=\"alertmanager\",replica=\"https://b\"} 4\n\
             rename_audit_sink_sent_total{sink=\"syslog\"} 100\n\
             rename_audit_sink_sent_total_other{sink=\"alertmanager\"} 1000\n";
        assert_eq!(
            sum(
                text,
                "rename_audit_sink_sent_total",
                "sink=\"alertmanager\""
            ),
            7.0
        );
        assert_eq!(
            sum(
                text,
                "rename_audit_sink_sent_total",
                "replica=\"https://b\""
            ),
            4.0
        );
        assert_eq!(sum(text, "rename_audit_absent_total", ""), 0.0);
    }
}
