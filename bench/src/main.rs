//! The rename storm benchmark (issues 4 and 11), run by `cargo xtask bench`,
//! which first builds the release daemon and the floor's loader.
//!
//! One run measures the renaming workload's rate untraced, under the floor
//! (an empty program of ours on the same `tp_btf/task_rename` hook: what
//! hooking at all costs) and with rename-audit attached (writing to a file),
//! interleaved round by round, then once under bpftrace `printf`, a counting
//! bpftrace program and auditd. Then the everyday cost (fork+exec+exit and
//! thread create/exit untraced, with rename-audit and under auditd's execve
//! rule), start-up time and RSS at ready, the daemon's accounting, CPU, peak
//! RSS and rename-to-line latency idle and during a storm, and last
//! ([`search`]) how fast `rename-audit search` and `report` read a 1 GB log.
//! It is a benchmark, not a test: it writes its numbers to
//! `bench/runs/<date>-<host>/` ([`report`]) and asserts nothing about speed.
use std::{
    fs,
    io::{Read, Seek, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

mod alerts;
mod report;
mod search;
use report::{Cell, Report, Table};
use serde_json::Value;

#[derive(Debug, clap::Parser)]
#[command(name = "rename-audit-bench", about = "The rename storm benchmark")]
pub struct BenchArgs {
    /// Cargo's target directory, which holds the release daemon and the
    /// floor's loader (`cargo xtask bench` passes it).
    #[arg(long)]
    pub target_dir: PathBuf,
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
    /// Size of the log the search step generates, in MiB (0: none).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub search_log_mib: u64,
    /// Events in the central store the search step generates (0: none).
    #[arg(long, value_name = "N", default_value_t = 10_000_000)]
    pub fleet_events: u64,
    /// Hosts those events come from.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub fleet_hosts: u64,
    /// Interleaved rounds of untraced / floor / rename-audit (and of the
    /// everyday workloads); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Daemon start-ups timed for the start-up figures.
    #[arg(long, default_value_t = 5)]
    pub startups: usize,
    /// Short-lived processes forked for the fork-storm memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub forks: u64,
    /// Only measure the daemon's memory under fork storms.
    #[arg(long)]
    pub memory_only: bool,
    /// How the daemon is started for every measurement but those that show
    /// both: with the shipped unit's capability bounding set
    /// (`CapabilityBoundingSet=` of deploy/rename-audit.service, applied with
    /// setpriv), or as root with every capability.
    #[arg(long, value_enum, default_value_t = Privileges::Unit)]
    pub privileges: Privileges,
    /// `kernel.perf_event_paranoid` while the benchmark runs (Debian's
    /// setting by default); the previous value is put back at the end.
    #[arg(long, default_value_t = 3)]
    pub perf_event_paranoid: i32,
    /// Sleeping processes kept alive for the start-up figure with many live
    /// processes (0: skip it).
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub live_processes: u64,
    /// A sentence written at the top of the run's summary (for example
    /// what else ran on the machine).
    #[arg(long)]
    pub note: Option<String>,
    /// Only run the alert burst against three TLS Alertmanager replicas
    /// (`alerts.rs`).
    #[arg(long)]
    pub alerts_only: bool,
    /// Processes (distinct executables) of the alert burst, each raising
    /// one alert a second. Just under the 10,000 (rule, executable) keys the
    /// Alertmanager sink's deduplication remembers, with room for the
    /// probe's and the host's own.
    #[arg(long, value_name = "N", default_value_t = 9_900)]
    pub alert_procs: usize,
    /// Seconds the alert burst lasts.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub alert_secs: u64,
}

/// The daemon's privileges in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Privileges {
    /// The shipped unit's capability bounding set.
    Unit,
    /// Root with every capability.
    Root,
}

/// The execve rule most fleets run.
const AUDIT_EXECVE: [&str; 6] = ["-a", "always,exit", "-F", "arch=b64", "-S", "execve"];
/// The rule people use to watch renames.
const AUDIT_PRCTL: [&str; 6] = ["-a", "always,exit", "-F", "arch=b64", "-S", "prctl"];

const BPFTRACE_PRINTF: &str = r#"tracepoint:task:task_rename { printf("%d %s %s\n", args->pid, args->oldcomm, args->newcomm); }"#;
const BPFTRACE_COUNT: &str = "tracepoint:task:task_rename { @renames = count(); }";

struct Bench {
    dir: PathBuf,
    renamer: PathBuf,
    daemon: PathBuf,
    /// The loader of the empty `floor` program (`examples/floor.rs`).
    floor: PathBuf,
    secs: f64,
    /// How the daemon watched mounts (`mount_watch` in its start-up line):
    /// whether its storm pays for the mount hooks depends on it.
    mount_watch: std::cell::RefCell<String>,
    /// The daemon's last `kernel hooks attached` line, as it wrote it.
    startup_line: std::cell::RefCell<String>,
    /// The getppid loop and the sleeping processes (`workloads.c`).
    workloads: PathBuf,
    /// setpriv's capability list for the shipped unit: `-all,+bpf,...`.
    unit_caps: String,
    privileges: std::cell::Cell<Privileges>,
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// p50, p99, max and count of latencies in ms (NaN for an empty set).
fn latency_summary(mut latencies: Vec<f64>) -> [f64; 4] {
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    [
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len() as f64,
    ]
}

fn main() -> Result<()> {
    let args = <BenchArgs as clap::Parser>::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the bench crate's directory has a parent")?;
    run(root, &args.target_dir.clone(), &args)
}

/// `target` is cargo's target directory, which holds the release daemon.
/// `target` is cargo's target directory, which holds the release daemon.
pub fn run(root: &Path, target: &Path, args: &BenchArgs) -> Result<()> {
    let dir = target.join("bench");
    fs::create_dir_all(&dir)?;
    let renamer = dir.join("renamer");
    let status = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&renamer)
        .arg(root.join("rename-audit/tests/e2e/support/renamer.c"))
        .status()
        .context("running cc to build the workload")?;
    ensure!(status.success(), "building the workload failed");
    let workloads = dir.join("workloads");
    let status = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&workloads)
        .arg(root.join("bench/src/workloads.c"))
        .status()
        .context("running cc to build the workloads")?;
    ensure!(status.success(), "building the workloads failed");
    let unit = root.join("deploy/rename-audit.service");
    let unit_caps = setpriv_caps(
        &fs::read_to_string(&unit).with_context(|| format!("reading {}", unit.display()))?,
    )?;
    let b = Bench {
        dir,
        renamer,
        daemon: target.join("release/rename-audit"),
        floor: target.join("release/examples/floor"),
        secs: args.secs,
        mount_watch: Default::default(),
        startup_line: Default::default(),
        workloads,
        unit_caps,
        privileges: std::cell::Cell::new(args.privileges),
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.search_only {
        let mut report = Report::new(
            root,
            Some("search"),
            "rename-audit search benchmark",
            &machine(),
        )?;
        return b.search(
            &mut report,
            args.search_log_mib,
            (args.fleet_events, args.fleet_hosts),
        );
    }
    let burst = alerts::Burst {
        procs: args.alert_procs.max(1),
        secs: args.alert_secs.max(1),
        rounds: args.rounds.max(1),
    };
    if args.alerts_only {
        let mut report = Report::new(
            root,
            Some("alerts"),
            "rename-audit alert burst benchmark",
            &machine(),
        )?;
        return alerts::run(&b, &mut report, &burst);
    }
    let rounds = args.rounds.max(1);
    if args.memory_only {
        let mut report = Report::new(
            root,
            Some("memory"),
            "rename-audit memory benchmark",
            &machine(),
        )?;
        return memory(&b, &mut report, args.forks);
    }
    let mut report = Report::new(root, None, "rename-audit benchmark", &machine())?;
    let _paranoid = Sysctl::set(PERF_EVENT_PARANOID, &args.perf_event_paranoid.to_string())?;
    report.text(format!(
        "The daemon runs with {} and kernel.perf_event_paranoid={} unless a row says otherwise{}.",
        privileges_label(args.privileges, &b.unit_caps),
        args.perf_event_paranoid,
        args.note
            .as_deref()
            .map(|n| format!(". {n}"))
            .unwrap_or_default()
    ))?;
    syscalls(&b, &mut report, cpus, rounds)?;
    startup(&b, &mut report, args.startups, args.live_processes)?;

    let mut storm = Table::new(
        "rename-storm",
        format!(
            "Rename storm (prctl in a loop on non-main threads), median of {rounds} interleaved \
             rounds; ratios are to the untraced rate of the same round"
        ),
        &[
            "threads",
            "untraced /s",
            "floor /s",
            "floor ratio",
            "rename-audit /s",
            "rename-audit ratio",
            "rename-audit / floor",
            "floor + mount hooks /s",
            "floor + mount hooks ratio",
            "rename-audit / floor + mount hooks",
            "bpftrace count /s",
            "bpftrace count ratio",
            "bpftrace printf /s",
            "bpftrace printf ratio",
            "auditd prctl rule /s",
            "auditd prctl rule ratio",
        ],
    );
    let mut audited = Vec::new();
    for threads in [1, cpus] {
        let (mut untraced, mut floor, mut audit) = (Vec::new(), Vec::new(), Vec::new());
        let (mut floor_ratio, mut audit_ratio, mut to_floor) = (Vec::new(), Vec::new(), Vec::new());
        let (mut mounted, mut mounted_ratio, mut to_mounted) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..rounds {
            let u = b.rate(threads)?;
            let f = b.with_floor(false, || b.rate(threads))?;
            let m = b.with_floor(true, || b.rate(threads))?;
            let (a, daemon) = b.with_daemon(|| b.rate(threads))?;
            floor_ratio.push(f.per_sec / u.per_sec);
            audit_ratio.push(a.per_sec / u.per_sec);
            to_floor.push(a.per_sec / f.per_sec);
            mounted_ratio.push(m.per_sec / u.per_sec);
            to_mounted.push(a.per_sec / m.per_sec);
            untraced.push(u.per_sec);
            floor.push(f.per_sec);
            mounted.push(m.per_sec);
            audit.push(a.per_sec);
            last = Some((a, daemon));
        }
        let untraced_rate = median(untraced);
        let counted = b.with_bpftrace(BPFTRACE_COUNT, || b.rate(threads))?;
        let printed = b.with_bpftrace(BPFTRACE_PRINTF, || b.rate(threads))?;
        let ratio = |r: Rate| r.per_sec / untraced_rate;
        let auditd = match b.with_auditd(&AUDIT_PRCTL, || b.rate(threads)) {
            Ok(r) => [Cell::num(r.per_sec, 0), Cell::num(ratio(r), 3)],
            Err(error) => {
                storm.note(format!("auditd on {threads} threads: n/a ({error:#})"));
                [Cell::text("n/a"), Cell::text("n/a")]
            }
        };
        let mut row = vec![
            Cell::int(threads),
            Cell::num(untraced_rate, 0),
            Cell::num(median(floor), 0),
            Cell::num(median(floor_ratio), 2),
            Cell::num(median(audit), 0),
            Cell::num(median(audit_ratio), 2),
            Cell::num(median(to_floor), 2),
            Cell::num(median(mounted), 0),
            Cell::num(median(mounted_ratio), 2),
            Cell::num(median(to_mounted), 2),
            Cell::num(counted.per_sec, 0),
            Cell::num(ratio(counted), 2),
            Cell::num(printed.per_sec, 0),
            Cell::num(ratio(printed), 2),
        ];
        row.extend(auditd);
        storm.row(row);
        if let Some((rate, daemon)) = last {
            audited.push((threads, rate, daemon));
        }
    }
    storm.note(format!(
        "(peers are one run each, compared with the median untraced rate; \"floor + mount hooks\" adds empty \
         programs on the syscall exit tracepoints, the daemon's last-resort mount watch, used only where \
         neither fanotify's mount events, fexit on the kernel's mount code nor polling the mount tables \
         can be had; they put every syscall on the kernel's slower path. Here the daemon watched mounts \
         with: {})",
        b.mount_watch.borrow()
    ));
    report.table(storm)?;

    let mut kernel = Table::new(
        "kernel-time",
        "Time in the kernel programs per rename (kernel.bpf_stats_enabled on, one run each; \
         includes the statistics' own two clock reads per run)",
        &[
            "threads",
            "floor ns per rename",
            "rename-audit ns per rename",
        ],
    );
    for threads in [1, cpus] {
        let floor = b.with_floor_pid(|pid| Bench::kernel_ns_per_op(pid, || b.rate(threads)))?;
        let audit = b.daemon_kernel_ns_per_op(|| b.rate(threads))?;
        kernel.row(vec![
            Cell::int(threads),
            Cell::num(floor, 0),
            Cell::num(audit, 0),
        ]);
    }
    report.table(kernel)?;

    everyday(&b, &mut report, cpus, rounds)?;
    memory(&b, &mut report, args.forks)?;
    let mut accounting = accounting_table("accounting", "The daemon's accounting of the storms");
    for (threads, rate, d) in &audited {
        accounting_row(
            &mut accounting,
            &format!("{threads} (last round)"),
            *rate,
            d,
        );
    }
    report.table(accounting)?;

    let mut latency = Table::new(
        "latency",
        "Rename-to-line latency: from the rename (the event's @timestamp, taken in the kernel) to \
         the bench reading the line from the daemon's output file",
        &[
            "rename-to-line latency",
            "bench's reader",
            "p50 ms",
            "p99 ms",
            "max ms",
            "samples",
        ],
    );
    for (label, storm) in [("idle host", false), ("during a storm on every core", true)] {
        for reader in [Reader::Plain, Reader::Prioritised] {
            let l = b.with_daemon_latency(storm, reader)?;
            latency.row(vec![
                Cell::text(label),
                Cell::text(reader.label()),
                Cell::num(l[0], 2),
                Cell::num(l[1], 2),
                Cell::num(l[2], 2),
                Cell::int(l[3] as u64),
            ]);
        }
    }
    latency.note(
        "(the daemon's own delay is the prioritised reader's row: that reader runs SCHED_FIFO, wakes every \
         millisecond and parses only the probe's lines, so the storm cannot delay it; the plain reader is the \
         earlier method, a normal-priority reader that parses every line, which the storm's threads compete with)",
    );
    report.table(latency)?;

    let (rate, daemon) = b.with_daemon(|| b.timed_storm(cpus, args.storm_secs))?;
    let mut long = accounting_table(
        "long-storm",
        format!("{}-second storm on {cpus} threads", args.storm_secs),
    );
    accounting_row(&mut long, &cpus.to_string(), rate, &daemon);
    report.table(long)?;
    alerts::run(&b, &mut report, &burst)?;
    b.search(
        &mut report,
        args.search_log_mib,
        (args.fleet_events, args.fleet_hosts),
    )
}

/// The everyday cost: fork+exec+exit and thread create/exit, untraced,
/// with rename-audit and under auditd's execve rule.
fn everyday(b: &Bench, report: &mut Report, cpus: usize, rounds: usize) -> Result<()> {
    let mut table = Table::new(
        "everyday",
        format!(
            "Everyday work on {cpus} workers, median of {rounds} interleaved rounds; ratios are \
             to the untraced rate of the same round"
        ),
        &[
            "workload",
            "untraced /s",
            "rename-audit /s",
            "rename-audit ratio",
            "auditd execve rule /s",
            "auditd execve rule ratio",
            "daemon CPU s per million",
            "kernel programs µs per op",
            "rename-audit CPU per op / untraced CPU per op",
        ],
    );
    for (label, mode) in [
        ("fork+exec+exit of /bin/true", "spawn"),
        ("thread create/exit", "threads"),
    ] {
        let (mut untraced, mut audit, mut auditd) = (Vec::new(), Vec::new(), Vec::new());
        let (mut audit_ratio, mut auditd_ratio, mut cpu_per_million) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut auditd_error = None;
        for _ in 0..rounds {
            let u = b.workload(mode, cpus)?;
            let (a, cpu_secs) = b.with_daemon_cpu(|| b.workload(mode, cpus))?;
            untraced.push(u.per_sec);
            audit.push(a.per_sec);
            audit_ratio.push(a.per_sec / u.per_sec);
            cpu_per_million.push(cpu_secs / a.renamed.max(1) as f64 * 1e6);
            match b.with_auditd(&AUDIT_EXECVE, || b.workload(mode, cpus)) {
                Ok(r) => {
                    auditd.push(r.per_sec);
                    auditd_ratio.push(r.per_sec / u.per_sec);
                }
                Err(error) => auditd_error = Some(format!("{error:#}")),
            }
        }
        let auditd_cells = match auditd_error {
            Some(error) => {
                table.note(format!("auditd, {label}: n/a ({error})"));
                [Cell::text("n/a"), Cell::text("n/a")]
            }
            None => [
                Cell::num(median(auditd), 0),
                Cell::num(median(auditd_ratio), 3),
            ],
        };
        let kernel_ns = b.daemon_kernel_ns_per_op(|| b.workload(mode, cpus))?;
        let untraced_rate = median(untraced);
        let daemon_s = median(cpu_per_million) / 1e6;
        // What one operation costs the machine untraced: every CPU's time
        // divided by the operations done in it.
        let untraced_s = cpus as f64 / untraced_rate;
        let [auditd_rate, auditd_ratio] = auditd_cells;
        table.row(vec![
            Cell::text(label),
            Cell::num(untraced_rate, 0),
            Cell::num(median(audit), 0),
            Cell::num(median(audit_ratio), 3),
            auditd_rate,
            auditd_ratio,
            Cell::num(daemon_s * 1e6, 2),
            Cell::num(kernel_ns / 1e3, 2),
            Cell::num((daemon_s + kernel_ns / 1e9) / untraced_s, 3),
        ]);
    }
    table.note(
        "(daemon CPU: user+system seconds the daemon used while the workload ran, per million processes or threads; \
         kernel programs: their run time per operation with kernel.bpf_stats_enabled on, one run, which includes the \
         statistics' own clock reads; the last column is the daemon's and the programs' time per operation over the time \
         of all CPUs per operation untraced)",
    );
    report.table(table)
}

/// The daemon's RSS under fork storms: at ready, at its highest while the
/// storm ran, and once exited processes were freed (a few seconds after).
fn memory(b: &Bench, report: &mut Report, forks: u64) -> Result<()> {
    let mut table = Table::new(
        "memory",
        "Daemon memory under fork storms (RSS, MiB)",
        &["workload", "at ready", "highest during", "after"],
    );
    let padding: Vec<String> = (0..2000).map(|i| format!("{i:0>99}")).collect();
    for (label, count, long) in [
        (format!("{forks} forks"), forks, false),
        (
            "5000 forks of a parent with 200 KB of arguments, started before the daemon".to_owned(),
            5000,
            true,
        ),
    ] {
        // The long-argument parent exists before the daemon, so its
        // arguments come from the start-up snapshot, as in the issue.
        let mut parent = Command::new(&b.renamer);
        parent.args(["forks", "", &count.to_string(), "wait"]);
        if long {
            parent.args(&padding);
        }
        let mut parent = parent
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the fork workload")?;
        let mut out = std::io::BufReader::new(parent.stdout.take().context("stdout")?);
        let mut line = String::new();
        while !line.starts_with("waiting=") {
            line.clear();
            ensure!(
                std::io::BufRead::read_line(&mut out, &mut line)? > 0,
                "the fork workload ended early"
            );
        }
        let child = b.start_daemon(&b.dir.join("memory.json"))?;
        let pid = child.id();
        let at_ready = status_kib(pid, "VmRSS:");
        let (done, sampler) = sample_rss(pid);
        parent.stdin.take().context("stdin")?.write_all(b"go\n")?;
        let status = parent.wait()?;
        ensure!(status.success(), "the fork workload failed: {status}");
        // Exited processes are kept 2 s for late records, then freed.
        std::thread::sleep(Duration::from_secs(4));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let highest = sampler.join().unwrap_or(0);
        let after = status_kib(pid, "VmRSS:");
        Bench::stop_daemon(child)?;
        let mib = |kib: u64| Cell::num(kib as f64 / 1024.0, 1);
        table.row(vec![
            Cell::text(label),
            mib(at_ready),
            mib(highest.max(after)),
            mib(after),
        ]);
    }
    report.table(table)
}

fn sample_rss(
    pid: u32,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<u64>,
) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::clone(&done);
    let sampler = std::thread::spawn(move || {
        let mut max = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            max = max.max(status_kib(pid, "VmRSS:"));
            std::thread::sleep(Duration::from_millis(50));
        }
        max
    });
    (done, sampler)
}

/// Time from the daemon's exec to its READY=1 (on `NOTIFY_SOCKET`, as
/// systemd sees it) and RSS at ready, over `n` start-ups each with the
/// shipped unit's privileges and as root, first with the host as it is and
/// then with `live` more sleeping processes.
fn startup(b: &Bench, report: &mut Report, n: usize, live: u64) -> Result<()> {
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let mut table = Table::new(
        "startup",
        format!(
            "Start-up: exec of the daemon to READY=1 on NOTIFY_SOCKET, and RSS then ({} runs each)",
            n.max(1)
        ),
        &[
            "live processes",
            "daemon started as",
            "start to ready s (median)",
            "start to ready s (max)",
            "RSS at ready MiB (median)",
            "RSS at ready MiB (max)",
        ],
    );
    for extra in [0, live] {
        if extra == 0 && live == 0 {
            continue;
        }
        let _sleepers = (extra > 0).then(|| b.sleepers(extra)).transpose()?;
        let processes = live_processes();
        for privileges in [Privileges::Unit, Privileges::Root] {
            let (mut secs, mut rss) = (Vec::new(), Vec::new());
            for _ in 0..n.max(1) {
                let (s, kib) = b.as_(privileges, || b.time_to_ready())?;
                secs.push(s);
                rss.push(kib as f64 / 1024.0);
            }
            table.row(vec![
                Cell::int(processes),
                Cell::text(privileges_label(privileges, &b.unit_caps)),
                Cell::num(median(secs.clone()), 2),
                Cell::num(max(&secs), 2),
                Cell::num(median(rss.clone()), 1),
                Cell::num(max(&rss), 1),
            ]);
        }
    }
    report.table(table)
}

/// The syscall-heavy workload: getppid(2) in a loop on every CPU, untraced
/// and with the daemon, in interleaved 2 s rounds, with the shipped unit's
/// privileges and as root (the mount watch it chose differs).
fn syscalls(b: &Bench, report: &mut Report, cpus: usize, rounds: usize) -> Result<()> {
    let mut table = Table::new(
        "getppid",
        format!(
            "getppid(2) in a loop on {cpus} threads, median of {rounds} interleaved 2 s rounds; \
             ratios are to the untraced rate of the same round"
        ),
        &[
            "daemon started as",
            "mount watch",
            "untraced /s",
            "rename-audit /s",
            "rename-audit ratio",
        ],
    );
    let mut lines = Vec::new();
    for privileges in [Privileges::Unit, Privileges::Root] {
        let (mut untraced, mut audit, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let u = b.getppid(cpus)?;
            let (a, _) = b.as_(privileges, || b.with_daemon_cpu(|| b.getppid(cpus)))?;
            untraced.push(u.per_sec);
            audit.push(a.per_sec);
            ratio.push(a.per_sec / u.per_sec);
        }
        table.row(vec![
            Cell::text(privileges_label(privileges, &b.unit_caps)),
            Cell::text(b.mount_watch.borrow().clone()),
            Cell::num(median(untraced), 0),
            Cell::num(median(audit), 0),
            Cell::num(median(ratio), 3),
        ]);
        lines.push(format!(
            "{}: `{}`",
            privileges_label(privileges, &b.unit_caps),
            b.startup_line.borrow()
        ));
    }
    table.note(format!(
        "(the daemon's start-up lines: {})",
        lines.join("; ")
    ));
    report.table(table)
}

/// How the benchmark's reader of the daemon's output runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    /// Normal priority, parses every line.
    Plain,
    /// SCHED_FIFO, parses only the lines that name the probe's pid.
    Prioritised,
}

impl Reader {
    fn label(self) -> &'static str {
        match self {
            Reader::Plain => "normal priority, parses every line",
            Reader::Prioritised => "SCHED_FIFO, parses only the probe's lines",
        }
    }
}

/// Sets the calling thread's scheduling policy (`SCHED_FIFO` at `priority`,
/// or back to `SCHED_OTHER` with `None`).
pub(crate) fn set_realtime(priority: Option<i32>) -> Result<()> {
    let (policy, priority) = match priority {
        Some(p) => (libc::SCHED_FIFO, p),
        None => (libc::SCHED_OTHER, 0),
    };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread and `param` is a valid
    // sched_param that outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    ensure!(
        rc == 0,
        "sched_setscheduler: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Processes on the host now (numeric entries of /proc).
fn live_processes() -> usize {
    fs::read_dir("/proc").map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|c| c.is_ascii_digit())
            })
            .count()
    })
}

/// How a row's daemon was started, for the tables.
fn privileges_label(privileges: Privileges, caps: &str) -> String {
    match privileges {
        Privileges::Unit => format!("the shipped unit's capability bounding set ({caps})"),
        Privileges::Root => "root".to_owned(),
    }
}

/// setpriv's capability list for a unit's `CapabilityBoundingSet=`:
/// `-all,+bpf,+perfmon,+sys_ptrace`.
fn setpriv_caps(unit: &str) -> Result<String> {
    let caps = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
        .context("the unit has no CapabilityBoundingSet=")?;
    let mut list = String::from("-all");
    for cap in caps.split_whitespace() {
        list.push_str(",+");
        list.push_str(&cap.trim_start_matches("CAP_").to_ascii_lowercase());
    }
    Ok(list)
}

/// A sysctl set while this lives and put back when dropped.
struct Sysctl {
    path: &'static str,
    previous: String,
}

const PERF_EVENT_PARANOID: &str = "/proc/sys/kernel/perf_event_paranoid";

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Result<Self> {
        let previous = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        fs::write(path, value).with_context(|| format!("writing {value} to {path}"))?;
        Ok(Self { path, previous })
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(error) = fs::write(self.path, self.previous.trim()) {
            eprintln!("could not restore {}: {error}", self.path);
        }
    }
}

/// Sleeping processes (`workloads sleepers`), killed when dropped.
struct Sleepers(Child);

impl Drop for Sleepers {
    fn drop(&mut self) {
        // A line (or EOF) on its stdin makes the parent kill and reap them;
        // they also die with it (PR_SET_PDEATHSIG).
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let _ = self.0.wait();
    }
}

fn accounting_table(name: &'static str, title: impl Into<String>) -> Table {
    Table::new(
        name,
        title,
        &[
            "threads",
            "renames",
            "delivered",
            "summarized",
            "lost",
            "unaccounted",
            "daemon CPU s",
            "RSS during run MiB",
            "peak RSS incl. start-up MiB",
        ],
    )
}

fn accounting_row(table: &mut Table, label: &str, rate: Rate, d: &DaemonRun) {
    let accounted = d.delivered + d.summarized + d.lost;
    table.row(vec![
        Cell::text(label),
        Cell::int(rate.renamed),
        Cell::int(d.delivered),
        Cell::int(d.summarized),
        Cell::int(d.lost),
        Cell::int(rate.renamed as i64 - accounted as i64),
        Cell::num(d.cpu_secs, 2),
        Cell::num(d.run_rss_kib as f64 / 1024.0, 1),
        Cell::num(d.peak_rss_kib as f64 / 1024.0, 1),
    ]);
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
    /// `renamer spawn|threads <workers> <secs>`: processes or threads a second.
    fn workload(&self, mode: &str, workers: usize) -> Result<Rate> {
        let out = Command::new(&self.renamer)
            .args([mode, "", &workers.to_string(), &self.secs.to_string()])
            .output()
            .context("running the workload")?;
        let out = String::from_utf8_lossy(&out.stdout);
        Ok(Rate {
            renamed: values(&out, "done").context("workload printed no count")?,
            per_sec: values(&out, "rate").context("workload printed no rate")? as f64,
        })
    }

    /// Runs `work` under the empty program on the rename hook, and with
    /// `mount_hooks` also on the mount watch's syscall tracepoints.
    fn with_floor(&self, mount_hooks: bool, work: impl FnOnce() -> Result<Rate>) -> Result<Rate> {
        self.floor_run(mount_hooks, |_| work())
    }

    /// Runs `work` under the empty program, passing it the loader's pid.
    fn with_floor_pid<T>(&self, work: impl FnOnce(u32) -> Result<T>) -> Result<T> {
        self.floor_run(false, work)
    }

    fn floor_run<T>(&self, mount_hooks: bool, work: impl FnOnce(u32) -> Result<T>) -> Result<T> {
        let mut child = Command::new(&self.floor)
            .args(mount_hooks.then_some("--mount-hooks"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.floor.display()))?;
        let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line)?;
        if line.trim() != "attached" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the floor program did not attach: {line:?}");
        }
        let rate = work(child.id());
        // Closing its stdin detaches it.
        drop(child.stdin.take());
        child.wait()?;
        rate
    }

    /// Runs `work` with the daemon attached; returns the daemon's CPU
    /// seconds (user + system) while it ran.
    fn with_daemon_cpu(&self, work: impl FnOnce() -> Result<Rate>) -> Result<(Rate, f64)> {
        let child = self.start_daemon(&self.dir.join("everyday.json"))?;
        let before = cpu_secs(child.id());
        let rate = work();
        let after = cpu_secs(child.id());
        Self::stop_daemon(child)?;
        Ok((rate?, after - before))
    }

    /// Time the kernel spends in the programs of process `pid` per
    /// operation of `work`, which runs with the kernel's BPF statistics on.
    /// Includes the statistics' own cost (two clock reads per program run).
    fn kernel_ns_per_op(pid: u32, work: impl FnOnce() -> Result<Rate>) -> Result<f64> {
        let _stats = BpfStats::on()?;
        let before = bpf_run_time_ns(pid);
        let rate = work()?;
        let after = bpf_run_time_ns(pid);
        Ok(after.saturating_sub(before) as f64 / rate.renamed.max(1) as f64)
    }

    /// [`Self::kernel_ns_per_op`] of the daemon's programs.
    fn daemon_kernel_ns_per_op(&self, work: impl FnOnce() -> Result<Rate>) -> Result<f64> {
        let child = self.start_daemon(&self.dir.join("kernel-time.json"))?;
        let ns = Self::kernel_ns_per_op(child.id(), work);
        Self::stop_daemon(child)?;
        ns
    }

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

    /// The daemon's command line with the run's privileges: under the
    /// shipped unit's, setpriv drops every other capability from the
    /// bounding set (and sets the unit's inheritable and ambient ones) before
    /// it execs the daemon, as systemd does.
    fn daemon_command(&self) -> Command {
        match self.privileges.get() {
            Privileges::Root => Command::new(&self.daemon),
            Privileges::Unit => {
                let mut command = Command::new("setpriv");
                for flag in ["--bounding-set", "--inh-caps", "--ambient-caps"] {
                    command.arg(flag).arg(&self.unit_caps);
                }
                command.arg("--").arg(&self.daemon);
                command
            }
        }
    }

    /// Runs `work` with the daemon started with `privileges`.
    fn as_<T>(&self, privileges: Privileges, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let previous = self.privileges.replace(privileges);
        let result = work();
        self.privileges.set(previous);
        result
    }

    /// `workloads getppid <workers> 2`.
    fn getppid(&self, workers: usize) -> Result<Rate> {
        let out = Command::new(&self.workloads)
            .args(["getppid", &workers.to_string(), "2"])
            .output()
            .context("running the getppid loop")?;
        let out = String::from_utf8_lossy(&out.stdout);
        Ok(Rate {
            renamed: values(&out, "done").context("getppid printed no count")?,
            per_sec: values(&out, "rate").context("getppid printed no rate")? as f64,
        })
    }

    /// `count` sleeping processes, alive until the result is dropped.
    fn sleepers(&self, count: u64) -> Result<Sleepers> {
        let mut child = Command::new(&self.workloads)
            .args(["sleepers", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the sleeping processes")?;
        let stdout = child.stdout.take().context("stdout")?;
        let sleepers = Sleepers(child);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        ensure!(
            line.starts_with("ready="),
            "the sleeping processes did not start: {line:?}"
        );
        Ok(sleepers)
    }

    /// Seconds from the daemon's exec to READY=1 on its NOTIFY_SOCKET, and
    /// its RSS (KiB) then.
    fn time_to_ready(&self) -> Result<(f64, u64)> {
        let socket_path = self.dir.join("notify.sock");
        let _ = fs::remove_file(&socket_path);
        let socket = std::os::unix::net::UnixDatagram::bind(&socket_path)
            .with_context(|| format!("binding {}", socket_path.display()))?;
        socket.set_read_timeout(Some(Duration::from_secs(120)))?;
        let output = self.dir.join("startup.json");
        let _ = fs::remove_file(&output);
        let config = self.dir.join("defaults.toml");
        fs::write(&config, "")?;
        let mut command = self.daemon_command();
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--output")
            .arg(&output)
            .env("NOTIFY_SOCKET", &socket_path)
            .stderr(Stdio::null());
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.daemon.display()))?;
        let mut buf = [0u8; 4096];
        let ready = loop {
            match socket.recv(&mut buf) {
                Ok(n) if buf[..n].split(|&c| c == b'\n').any(|l| l == b"READY=1") => {
                    break Ok(started.elapsed().as_secs_f64());
                }
                Ok(_) => {}
                Err(error) => break Err(error).context("waiting for READY=1"),
            }
        };
        // setpriv execs the daemon: the pid is the daemon's.
        let rss = status_kib(child.id(), "VmRSS:");
        Self::stop_daemon(child)?;
        let _ = fs::remove_file(&socket_path);
        Ok((ready?, rss))
    }

    fn start_daemon(&self, output: &Path) -> Result<Child> {
        let _ = fs::remove_file(output);
        // Defaults only: never the host's /etc/rename-audit/config.toml.
        let config = self.dir.join("defaults.toml");
        fs::write(&config, "")?;
        let mut child = self
            .daemon_command()
            .arg("run")
            .arg("--config")
            .arg(&config)
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
        if let Some(line) = String::from_utf8_lossy(&seen)
            .lines()
            .find(|l| l.contains("kernel hooks attached"))
        {
            *self.startup_line.borrow_mut() = line.trim().to_string();
        }
        if let Some(watch) = String::from_utf8_lossy(&seen)
            .split("mount_watch=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            *self.mount_watch.borrow_mut() = watch.to_string();
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Ok(child)
    }

    fn stop_daemon(mut child: Child) -> Result<DaemonRun> {
        let pid = child.id();
        let peak_rss_kib = status_kib(pid, "VmHWM:");
        let cpu_secs = cpu_secs(pid);
        send_signal(pid, 15);
        child.wait()?;
        Ok(DaemonRun {
            cpu_secs,
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
                // The workload's renames are thread renames; losses are
                // host-wide, so other classes are left out.
                Some("events-lost")
                    if e.pointer("/lost/class").and_then(Value::as_str) == Some("thread") =>
                {
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

    /// Runs `work` under a private auditd with `rule`. Refuses when an
    /// auditd already runs: the benchmark must not touch a host's real audit
    /// setup.
    fn with_auditd(&self, rule: &[&str], work: impl FnOnce() -> Result<Rate>) -> Result<Rate> {
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
            for args in [&["-b", "8192"][..], rule] {
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
    fn with_daemon_latency(&self, storm: bool, reader: Reader) -> Result<[f64; 4]> {
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
        let needle = format!("\"pid\":{probe_pid}");
        let needle = memchr::memmem::Finder::new(needle.as_bytes());
        if reader == Reader::Prioritised {
            set_realtime(Some(50))?;
        }
        let result = self.read_latencies(&output, probe_pid, reader, &needle);
        if reader == Reader::Prioritised {
            set_realtime(None)?;
        }
        probe.wait()?;
        if let Some(s) = storm_child.as_mut() {
            let _ = s.kill();
            let _ = s.wait();
        }
        Self::stop_daemon(child)?;
        Ok(latency_summary(result?))
    }

    /// Milliseconds from each of the probe's renames to the moment its line
    /// was read from `output`.
    fn read_latencies(
        &self,
        output: &Path,
        probe_pid: u64,
        reader: Reader,
        needle: &memchr::memmem::Finder<'_>,
    ) -> Result<Vec<f64>> {
        let mut file = loop {
            if let Ok(f) = fs::File::open(output) {
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
                if reader == Reader::Prioritised && needle.find(&line).is_none() {
                    continue;
                }
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
        Ok(latencies)
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

/// User + system CPU seconds of process `pid` (all its threads).
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15; after "pid (comm)" they are 11 and 12.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
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

/// Turns on the kernel's BPF run-time statistics (`kernel.bpf_stats_enabled`)
/// while it lives, and puts back the previous setting when dropped. Each
/// program run then also pays for two clock reads, so rates are never
/// measured with it on.
struct BpfStats {
    previous: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn on() -> Result<Self> {
        let previous =
            fs::read_to_string(BPF_STATS).with_context(|| format!("reading {BPF_STATS}"))?;
        fs::write(BPF_STATS, "1").with_context(|| format!("writing 1 to {BPF_STATS}"))?;
        Ok(Self { previous })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(error) = fs::write(BPF_STATS, self.previous.trim()) {
            eprintln!("could not restore {BPF_STATS}: {error}");
        }
    }
}

/// Nanoseconds the kernel has counted in the BPF programs that process `pid`
/// holds (`run_time_ns` in each program's fdinfo), summed.
fn bpf_run_time_ns(pid: u32) -> u64 {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(|fd| {
        let fd = fd.ok()?;
        let link = fs::read_link(fd.path()).ok()?;
        if link.to_string_lossy() != "anon_inode:bpf-prog" {
            return None;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("run_time_ns:"))?
            .trim()
            .parse::<u64>()
            .ok()
    })
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_units_bounding_set_becomes_setprivs_list() {
        let unit = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rename-audit.service"),
        )
        .expect("the unit");
        assert_eq!(
            setpriv_caps(&unit).expect("caps"),
            "-all,+bpf,+perfmon,+sys_ptrace"
        );
        assert!(setpriv_caps("[Service]\n").is_err());
    }
}
