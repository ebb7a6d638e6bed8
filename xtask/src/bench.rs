//! `cargo xtask bench`: the rename storm benchmark of issue 4.
//!
//! One run measures, side by side, the renaming workload's rate untraced,
//! with rename-audit attached (writing to a file), under bpftrace `printf`
//! and under a counting bpftrace program (the floor of what attaching to the
//! tracepoint costs), then the daemon's accounting, CPU, peak RSS and
//! rename-to-line latency idle and during a storm, and last ([`search`]) how
//! fast `rename-audit search` and `report` read a 1 GB log. It is a
//! benchmark, not a test: it prints numbers and asserts nothing about speed.
use std::{
    fs,
    io::{Read, Seek},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

mod search;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Seconds each rate measurement runs.
    #[arg(long, default_value_t = 3.0)]
    pub secs: f64,
    /// Seconds of the long storm that measures the daemon's peak memory.
    #[arg(long, default_value_t = 60)]
    pub storm_secs: u64,
    /// Only measure `rename-audit search` and `report` over a generated log
    /// (about a minute), not the capture benchmark.
    #[arg(long)]
    pub search_only: bool,
    /// Size of the log the search step generates, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub search_log_mib: u64,
}

const BPFTRACE_PRINTF: &str = r#"tracepoint:task:task_rename { printf("%d %s %s\n", args->pid, args->oldcomm, args->newcomm); }"#;
const BPFTRACE_COUNT: &str = "tracepoint:task:task_rename { @renames = count(); }";

struct Bench {
    dir: PathBuf,
    renamer: PathBuf,
    daemon: PathBuf,
    secs: f64,
}

/// One run of the renaming workload.
#[derive(Clone, Copy, Debug)]
struct Rate {
    renamed: u64,
    per_sec: f64,
}

/// What the daemon reported and used during one run.
#[derive(Debug, Default)]
struct DaemonRun {
    delivered: u64,
    summarized: u64,
    lost: u64,
    cpu_secs: f64,
    /// Highest RSS sampled every 50 ms while the workload ran.
    run_rss_kib: u64,
    /// The kernel's high-water mark, start-up included.
    peak_rss_kib: u64,
}

/// `target` is cargo's target directory, which holds the release daemon.
pub fn run(root: &Path, target: &Path, args: &BenchArgs) -> Result<()> {
    let dir = target.join("bench");
    fs::create_dir_all(&dir)?;
    let renamer = dir.join("renamer");
    let status = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&renamer)
        .arg(root.join("rename-audit/tests/support/renamer.c"))
        .status()
        .context("running cc to build the workload")?;
    ensure!(status.success(), "building the workload failed");
    let b = Bench {
        dir,
        renamer,
        daemon: target.join("release/rename-audit"),
        secs: args.secs,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.search_only {
        println!("# rename-audit search benchmark");
        println!("machine: {}", machine());
        return b.search(args.search_log_mib);
    }

    println!("# rename-audit benchmark");
    println!("machine: {}", machine());
    println!();
    println!(
        "| threads | untraced /s | rename-audit /s (ratio) | bpftrace count /s (ratio) | bpftrace printf /s (ratio) | auditd prctl rule /s (ratio) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut audited = Vec::new();
    for threads in [1, cpus] {
        let untraced = b.rate(threads)?;
        let (with_audit, daemon) = b.with_daemon(|| b.rate(threads))?;
        let counted = b.with_bpftrace(BPFTRACE_COUNT, || b.rate(threads))?;
        let printed = b.with_bpftrace(BPFTRACE_PRINTF, || b.rate(threads))?;
        let ratio = |r: Rate| r.per_sec / untraced.per_sec;
        let audited_by_auditd = match b.with_auditd(|| b.rate(threads)) {
            Ok(r) => format!("{:.0} ({:.3})", r.per_sec, ratio(r)),
            Err(error) => format!("n/a ({error:#})"),
        };
        println!(
            "| {threads} | {:.0} | {:.0} ({:.2}) | {:.0} ({:.2}) | {:.0} ({:.2}) | {audited_by_auditd} |",
            untraced.per_sec,
            with_audit.per_sec,
            ratio(with_audit),
            counted.per_sec,
            ratio(counted),
            printed.per_sec,
            ratio(printed),
        );
        audited.push((threads, with_audit, daemon));
    }
    println!();
    println!(
        "| threads | renames | delivered | summarized | lost | unaccounted | daemon CPU s | RSS during run MiB | peak RSS incl. start-up MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (threads, rate, d) in &audited {
        print_accounting(&threads.to_string(), *rate, d);
    }

    let idle = b.with_daemon_latency(false)?;
    let storm = b.with_daemon_latency(true)?;
    println!();
    println!("| rename-to-line latency | p50 ms | p99 ms | max ms | samples |");
    println!("|---|---|---|---|---|");
    for (label, l) in [("idle host", idle), ("during a storm on every core", storm)] {
        println!(
            "| {label} | {:.2} | {:.2} | {:.2} | {} |",
            l[0], l[1], l[2], l[3] as u64
        );
    }

    let (rate, daemon) = b.with_daemon(|| b.timed_storm(cpus, args.storm_secs))?;
    println!();
    println!("{}-second storm on {cpus} threads:", args.storm_secs);
    println!(
        "| threads | renames | delivered | summarized | lost | unaccounted | daemon CPU s | RSS during run MiB | peak RSS incl. start-up MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    print_accounting(&cpus.to_string(), rate, &daemon);
    b.search(args.search_log_mib)
}

fn print_accounting(label: &str, rate: Rate, d: &DaemonRun) {
    let accounted = d.delivered + d.summarized + d.lost;
    println!(
        "| {label} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} |",
        rate.renamed,
        d.delivered,
        d.summarized,
        d.lost,
        rate.renamed as i64 - accounted as i64,
        d.cpu_secs,
        d.run_rss_kib as f64 / 1024.0,
        d.peak_rss_kib as f64 / 1024.0,
    );
}

fn machine() -> String {
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} CPUs ({model}), {:.0} GiB, Linux {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn values(out: &str, key: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}="))?.parse::<f64>().ok())
        .map(|v| v as u64)
}

impl Bench {
    fn rate(&self, threads: usize) -> Result<Rate> {
        let out = Command::new(&self.renamer)
            .args(["rate", "", &threads.to_string(), &self.secs.to_string()])
            .output()
            .context("running the workload")?;
        let out = String::from_utf8_lossy(&out.stdout);
        Ok(Rate {
            renamed: values(&out, "renamed").context("workload printed no count")?,
            per_sec: values(&out, "rate").context("workload printed no rate")? as f64,
        })
    }

    fn timed_storm(&self, threads: usize, secs: u64) -> Result<Rate> {
        let out = Command::new(&self.renamer)
            .args(["rate", "", &threads.to_string(), &secs.to_string()])
            .output()?;
        let out = String::from_utf8_lossy(&out.stdout);
        Ok(Rate {
            renamed: values(&out, "renamed").unwrap_or(0),
            per_sec: values(&out, "rate").unwrap_or(0) as f64,
        })
    }

    fn start_daemon(&self, output: &Path) -> Result<Child> {
        let _ = fs::remove_file(output);
        let mut child = Command::new(&self.daemon)
            .arg("run")
            .arg("--output")
            .arg(output)
            // The benchmark counts (and pays for) every line, thread renames
            // included, whatever the default noise setting.
            .args(["--thread-renames", "all"])
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.daemon.display()))?;
        let mut stderr = child.stderr.take().context("stderr")?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let n = stderr.read(&mut buf)?;
            if n == 0 {
                bail!(
                    "the daemon exited before it was ready: {}",
                    String::from_utf8_lossy(&seen)
                );
            }
            seen.extend_from_slice(&buf[..n]);
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Ok(child)
    }

    fn stop_daemon(mut child: Child) -> Result<DaemonRun> {
        let pid = child.id();
        let peak_rss_kib = status_kib(pid, "VmHWM:");
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15; after "pid (comm)" they are 11 and 12.
        let ticks: f64 = fields
            .get(11)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        send_signal(pid, 15);
        child.wait()?;
        Ok(DaemonRun {
            cpu_secs: ticks / 100.0,
            peak_rss_kib,
            ..Default::default()
        })
    }

    /// Runs `work` with the daemon attached and tallies the output for the
    /// workload's process.
    fn with_daemon(&self, work: impl FnOnce() -> Result<Rate>) -> Result<(Rate, DaemonRun)> {
        let output = self.dir.join("events.json");
        let child = self.start_daemon(&output)?;
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let (pid, sampling) = (child.id(), sampling.clone());
            std::thread::spawn(move || {
                let mut max = 0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    max = max.max(status_kib(pid, "VmRSS:"));
                    sleep(Duration::from_millis(50));
                }
                max
            })
        };
        let rate = work()?;
        // Let the last storm summaries (thread exit) reach the output.
        sleep(Duration::from_millis(1500));
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let run_rss_kib = sampler.join().unwrap_or(0);
        let mut run = Self::stop_daemon(child)?;
        run.run_rss_kib = run_rss_kib;
        let text = fs::read_to_string(&output)?;
        for line in text.lines() {
            let e: Value = serde_json::from_str(line)?;
            let name = e
                .pointer("/rename/new_name")
                .or_else(|| e.pointer("/summary/last_name"));
            let ours = name
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("r-"));
            match e.pointer("/event/action").and_then(Value::as_str) {
                Some("thread-renamed" | "process-renamed") if ours => run.delivered += 1,
                Some("renames-summarized") if ours => {
                    run.summarized += e
                        .pointer("/summary/count")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                }
                Some("events-lost") => {
                    run.lost += e
                        .pointer("/lost/count")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                }
                _ => {}
            }
        }
        Ok((rate, run))
    }

    /// Runs `work` under a private auditd with the rule people use to
    /// watch renames (`-S prctl`). Refuses when an auditd already runs: the
    /// benchmark must not touch a host's real audit setup.
    fn with_auditd(&self, work: impl FnOnce() -> Result<Rate>) -> Result<Rate> {
        let status = Command::new("auditctl")
            .arg("-s")
            .output()
            .context("auditctl (cargo xtask setup installs auditd)")?;
        let status = String::from_utf8_lossy(&status.stdout);
        ensure!(
            status.lines().any(|l| l.trim() == "pid 0"),
            "an auditd is already running"
        );
        let dir = self.dir.join("auditd");
        fs::create_dir_all(&dir)?;
        let log = dir.join("audit.log");
        let _ = fs::remove_file(&log);
        let conf = dir.join("auditd.conf");
        fs::write(
            &conf,
            format!(
                "log_file = {}\nlog_format = RAW\nflush = INCREMENTAL_ASYNC\nfreq = 50\nnum_logs = 2\n\
                 max_log_file = 4000\nmax_log_file_action = ROTATE\nspace_left = 10\nspace_left_action = IGNORE\n\
                 admin_space_left = 5\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n\
                 disk_error_action = IGNORE\n",
                log.display()
            ),
        )?;
        let mut perms = fs::metadata(&conf)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o640);
        fs::set_permissions(&conf, perms)?;
        let ok = Command::new("auditd")
            .arg("-c")
            .arg(&dir)
            .status()?
            .success();
        ensure!(ok, "auditd did not start");
        sleep(Duration::from_millis(500));
        let run = || -> Result<Rate> {
            for args in [
                &["-b", "8192"][..],
                &["-a", "always,exit", "-F", "arch=b64", "-S", "prctl"],
            ] {
                ensure!(
                    Command::new("auditctl")
                        .args(args)
                        .stdout(Stdio::null())
                        .status()?
                        .success(),
                    "auditctl {args:?}"
                );
            }
            work()
        };
        let rate = run();
        let _ = Command::new("auditctl")
            .arg("-D")
            .stdout(Stdio::null())
            .status();
        let _ = Command::new("pkill").args(["-x", "auditd"]).status();
        let _ = Command::new("auditctl")
            .args(["-e", "0"])
            .stdout(Stdio::null())
            .status();
        let _ = fs::remove_file(&log);
        rate
    }

    fn with_bpftrace(&self, program: &str, work: impl FnOnce() -> Result<Rate>) -> Result<Rate> {
        let out = fs::File::create(self.dir.join("bpftrace.out"))?;
        let mut child = Command::new("bpftrace")
            .args(["-e", program])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .context("starting bpftrace (cargo xtask setup installs it)")?;
        // bpftrace has no readiness signal: wait until it has attached.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !attached(child.id()) {
            ensure!(
                Instant::now() < deadline,
                "bpftrace did not attach within 30 s"
            );
            sleep(Duration::from_millis(100));
        }
        let rate = work();
        send_signal(child.id(), 2);
        child.wait()?;
        rate
    }

    /// p50, p99, max (ms) and samples of the time from a rename to its line.
    fn with_daemon_latency(&self, storm: bool) -> Result<[f64; 4]> {
        let output = self.dir.join("latency.json");
        let child = self.start_daemon(&output)?;
        let mut storm_child = storm
            .then(|| {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                Command::new(&self.renamer)
                    .args(["rate", "", &cpus.to_string(), "30"])
                    .stdout(Stdio::null())
                    .spawn()
            })
            .transpose()?;
        let mut probe = Command::new(&self.renamer)
            .args(["probe", "", "300", "10"])
            .stdout(Stdio::null())
            .spawn()?;
        let probe_pid = u64::from(probe.id());
        let mut file = loop {
            if let Ok(f) = fs::File::open(&output) {
                break f;
            }
            sleep(Duration::from_millis(1));
        };
        let mut pending = Vec::new();
        let mut latencies = Vec::new();
        let start = Instant::now();
        while latencies.len() < 300 && start.elapsed() < Duration::from_secs(20) {
            let mut chunk = Vec::new();
            file.read_to_end(&mut chunk)?;
            let seen_at = time::OffsetDateTime::now_utc();
            pending.extend_from_slice(&chunk);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let Ok(e) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if e.pointer("/process/pid").and_then(Value::as_u64) != Some(probe_pid) {
                    continue;
                }
                let Some(ts) = e.get("@timestamp").and_then(Value::as_str) else {
                    continue;
                };
                let at = time::OffsetDateTime::parse(
                    ts,
                    &time::format_description::well_known::Rfc3339,
                )?;
                latencies.push((seen_at - at).as_seconds_f64() * 1000.0);
            }
            file.stream_position()?;
            sleep(Duration::from_millis(1));
        }
        probe.wait()?;
        if let Some(s) = storm_child.as_mut() {
            let _ = s.kill();
            let _ = s.wait();
        }
        Self::stop_daemon(child)?;
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Ok([
            pct(0.5),
            pct(0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
            latencies.len() as f64,
        ])
    }
}

/// Whether bpftrace has attached its program (it then holds a BPF link).
fn attached(pid: u32) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.filter_map(|f| fs::read_link(f.ok()?.path()).ok())
            .any(|l| {
                l.to_string_lossy().contains("bpf-link")
                    || l.to_string_lossy().contains("perf_event")
            })
    })
}

fn send_signal(pid: u32, signal: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// A `kB` field of /proc/<pid>/status.
fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
