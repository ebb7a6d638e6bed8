//! `cargo xtask bench --search-only` (and the last step of `cargo xtask
//! bench`): how fast `rename-audit search` and `report` read a large log.
//!
//! The log is made of real lines: the daemon records a mix of renames
//! (process and thread renames, a sibling renaming the main thread, alerts,
//! hostile names, a storm summary), and those lines are repeated up to the
//! asked size with increasing `@timestamp`s, so time filters select a real
//! share of it. Each query runs against the page-cached file with its output
//! sent to /dev/null; the wall and CPU times are reported, nothing is
//! asserted.
//!
//! Then a central store: 10 million of those lines from 100 hosts
//! (`--fleet-events`, `--fleet-hosts`), each line's host name rewritten,
//! searched by host and by rule. `--search-log-mib 0` skips the first log.
use std::{
    fs,
    io::{BufWriter, Write as _},
    path::Path,
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};

use super::Bench;
use crate::report::{Cell, Report, Table};

/// The names the sample's renames take (hex-encoded for the workload).
const SAMPLE: &[(&str, &[u8])] = &[
    ("prctl", b"bench-q-proc"),
    ("thread-prctl", b"bench-q-thread"),
    ("sibling", b"bench-q-sib"),
    ("prctl", b"kworker/3:1"),
    ("thread-prctl", b"kworker/u8:2"),
    ("prctl", b"sshd"),
    ("prctl", b"evil\n\x1b[31m\xff"),
    ("thread-prctl", b"C2 CompilerThre"),
];

impl Bench {
    /// The 1 GB log (`mib` MiB; none when 0), then the central store of
    /// `fleet.0` events from `fleet.1` hosts.
    pub fn search(&self, report: &mut Report, mib: u64, fleet: (u64, u64)) -> Result<()> {
        let sample = self.record_sample()?;
        if mib > 0 {
            self.search_log(report, &sample, mib)?;
        }
        if fleet.0 > 0 && fleet.1 > 0 {
            self.search_fleet(report, &sample, fleet.0, fleet.1)?;
        }
        Ok(())
    }

    fn search_log(&self, report: &mut Report, sample: &[Vec<u8>], mib: u64) -> Result<()> {
        let log = self.dir.join("search-bench.json");
        let lines = write_log(sample, &log, mib << 20)?;
        let bytes = fs::metadata(&log)?.len();
        warm(&log)?;
        let mid = timestamp(lines / 2);
        let file = log.to_str().context("non-UTF-8 bench path")?;
        let queries: [(&str, Vec<&str>); 7] = [
            (
                "one pid (byte prefilter)",
                vec!["search", "--pid", "4242", file],
            ),
            (
                "rule id (byte prefilter)",
                vec!["search", "--rule", "sibling-renamed-main", file],
            ),
            (
                "name glob kworker/* (its literal prefilters)",
                vec!["search", "--name", "kworker/*", file],
            ),
            (
                "name glob [k]worker/* (parses every line)",
                vec!["search", "--name", "[k]worker/*", file],
            ),
            (
                "second half by time, --json (copies, no parsing)",
                vec!["search", "--json", "--since", &mid, file],
            ),
            (
                "second half by time, readable",
                vec!["search", "--since", &mid, file],
            ),
            ("report (parses every line)", vec!["report", file]),
        ];
        // CPU seconds as well as wall seconds: on a busy host the wall time
        // says more about the neighbours than about rename-audit.
        let mut table = Table::new(
            "search",
            format!(
                "search over a {:.2} GB log ({lines} lines, {} distinct real lines), page-cached, \
                 output to /dev/null",
                bytes as f64 / 1e9,
                sample.len()
            ),
            &["query", "wall s", "CPU s (user+sys)", "GB/s of CPU"],
        );
        for (label, args) in queries {
            let (secs, cpu) = self.timed(&args)?;
            table.row(vec![
                Cell::text(label),
                Cell::num(secs, 2),
                Cell::num(cpu, 2),
                Cell::num(bytes as f64 / 1e9 / cpu, 2),
            ]);
        }
        fs::remove_file(&log)?;
        report.table(table)
    }

    /// A central store: `events` lines from `hosts` hosts (the sample's
    /// lines with the host's name replaced, one host after another line by
    /// line, as a collector interleaves them), searched by host and by rule.
    fn search_fleet(
        &self,
        report: &mut Report,
        sample: &[Vec<u8>],
        events: u64,
        hosts: u64,
    ) -> Result<()> {
        let log = self.dir.join("search-fleet.json");
        let bytes = write_fleet_log(sample, &log, events, hosts)?;
        warm(&log)?;
        let file = log.to_str().context("non-UTF-8 bench path")?;
        let one = host_name(hosts / 2);
        let queries: [(&str, Vec<&str>); 4] = [
            ("one host (--host)", vec!["search", "--host", &one, file]),
            (
                "one rule (--rule)",
                vec!["search", "--rule", "kernel-thread-mimic", file],
            ),
            (
                "one host's alerts of one rule",
                vec![
                    "search",
                    "--host",
                    &one,
                    "--rule",
                    "kernel-thread-mimic",
                    file,
                ],
            ),
            ("report of one host", vec!["report", "--host", &one, file]),
        ];
        let mut table = Table::new(
            "fleet",
            format!(
                "search over a central store: {events} events from {hosts} hosts in one \
                 {:.2} GB file, page-cached, output to /dev/null",
                bytes as f64 / 1e9
            ),
            &["query", "wall s", "CPU s (user+sys)", "GB/s of CPU"],
        );
        for (label, args) in queries {
            let (secs, cpu) = self.timed(&args)?;
            table.row(vec![
                Cell::text(label),
                Cell::num(secs, 2),
                Cell::num(cpu, 2),
                Cell::num(bytes as f64 / 1e9 / cpu, 2),
            ]);
        }
        fs::remove_file(&log)?;
        report.table(table)
    }

    /// Runs `rename-audit <args>` with its output to /dev/null; wall and
    /// CPU seconds.
    fn timed(&self, args: &[&str]) -> Result<(f64, f64)> {
        let cpu_before = children_cpu_secs();
        let start = Instant::now();
        let status = Command::new(&self.daemon)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running rename-audit {}", args.join(" ")))?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = children_cpu_secs() - cpu_before;
        // 1: nothing matched, which is fine for a benchmark.
        ensure!(
            matches!(status.code(), Some(0 | 1)),
            "rename-audit {} failed: {status}",
            args.join(" ")
        );
        Ok((secs, cpu))
    }

    /// Real lines from the daemon for the sample renames.
    fn record_sample(&self) -> Result<Vec<Vec<u8>>> {
        let output = self.dir.join("search-sample.json");
        let child = self.start_daemon(&output)?;
        for (cmd, name) in SAMPLE {
            let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
            let status = Command::new(&self.renamer)
                .args([cmd, &hex.as_str()])
                .stdout(Stdio::null())
                .status()
                .context("running the workload")?;
            ensure!(status.success(), "the workload {cmd} failed");
        }
        let status = Command::new(&self.renamer)
            .args(["storm", "", "1", "3000"])
            .stdout(Stdio::null())
            .status()?;
        ensure!(status.success(), "the storm workload failed");
        // Let the storm's last summary (thread exit) reach the file.
        sleep(Duration::from_millis(1500));
        Self::stop_daemon(child)?;
        let text = fs::read(&output)?;
        let sample: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(br#"{"@timestamp":""#) && l.len() > 42)
            .map(<[u8]>::to_vec)
            .collect();
        ensure!(!sample.is_empty(), "the daemon wrote no lines");
        Ok(sample)
    }
}

/// User and system CPU seconds of every waited-for child so far.
fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// `@timestamp` of line `i`: a millisecond apart from 2026-01-01.
fn timestamp(i: u64) -> String {
    let t = time::OffsetDateTime::UNIX_EPOCH
        + Duration::from_secs(1_767_225_600)
        + Duration::from_millis(i);
    let (h, m, s, us) = t.to_hms_micro();
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{us:06}Z",
        t.year(),
        t.month() as u8,
        t.day()
    )
}

/// Reads `path` once, through a small buffer, so every query starts from
/// the page cache. Not into one allocation: the central store is half the
/// machine's memory, and holding it twice would evict the cache it fills.
fn warm(path: &Path) -> Result<()> {
    use std::io::Read as _;
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while file.read(&mut buf)? > 0 {}
    Ok(())
}

fn host_name(i: u64) -> String {
    format!("host-{i:03}")
}

/// `events` lines cycling through the sample, each from the next of
/// `hosts` hosts: every `"<name>"` the sample's host wrote (`host.name`,
/// `host.hostname`, `agent.name`) becomes that host's. Returns the bytes.
fn write_fleet_log(sample: &[Vec<u8>], path: &Path, events: u64, hosts: u64) -> Result<u64> {
    let name = sample
        .iter()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            Some(v["host"]["name"].as_str()?.to_owned())
        })
        .context("the sample names no host")?;
    let quoted = format!("\"{name}\"");
    let finder = memchr::memmem::Finder::new(quoted.as_bytes());
    // Each line as the pieces between its host names.
    let pieces: Vec<Vec<&[u8]>> = sample
        .iter()
        .map(|line| {
            let mut out = Vec::new();
            let mut at = 0;
            for hit in finder.find_iter(line) {
                out.push(&line[at..hit]);
                at = hit + quoted.len();
            }
            out.push(&line[at..]);
            out
        })
        .collect();
    let names: Vec<String> = (0..hosts)
        .map(|h| format!("\"{}\"", host_name(h)))
        .collect();
    let mut out = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut written = 0u64;
    for i in 0..events {
        let line = &pieces[(i / hosts) as usize % pieces.len()];
        let host = names[(i % hosts) as usize].as_bytes();
        for (k, piece) in line.iter().enumerate() {
            if k > 0 {
                out.write_all(host)?;
                written += host.len() as u64;
            }
            out.write_all(piece)?;
            written += piece.len() as u64;
        }
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

/// Repeats the sample with new timestamps until `size` bytes; returns the
/// number of lines.
fn write_log(sample: &[Vec<u8>], path: &Path, size: u64) -> Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let (mut written, mut lines) = (0u64, 0u64);
    while written < size {
        for line in sample {
            // `{"@timestamp":"` is 15 bytes, the time 27.
            out.write_all(&line[..15])?;
            out.write_all(timestamp(lines).as_bytes())?;
            out.write_all(&line[42..])?;
            out.write_all(b"\n")?;
            written += line.len() as u64 + 1;
            lines += 1;
        }
    }
    out.flush()?;
    Ok(lines)
}
