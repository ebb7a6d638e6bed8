//! `rename-audit report`: counts over the events in range, printed as small
//! tables, most frequent first.
//!
//! Counts are `u128`: a summary or loss record carries a `u64` count of its
//! own, and a crafted log can hold many at `u64::MAX`. A `u128` cannot
//! overflow from fewer than 2^64 such lines, which no log has; the adds
//! saturate all the same, so that a total is never wrong by wrapping.
//! Every text taken from the log is escaped with the one rule of
//! [`escape_into`].

use std::collections::HashMap;
use std::io::Write as _;

use super::record::Record;
use crate::output::text::escape_into;
use crate::rules::RuleId;

#[derive(Debug, Default)]
pub struct Report {
    events: u64,
    first: Option<String>,
    last: Option<String>,
    process_renames: u64,
    thread_renames: u64,
    alerts: u64,
    summaries: u64,
    summarized: HashMap<String, u128>,
    loss_reports: u64,
    lost: HashMap<String, u128>,
    /// `agent-started` and `agent-stopped` records: runs of the daemon, and
    /// how many of them recorded their end.
    agent_starts: u64,
    agent_stops: u64,
    by_executable: HashMap<Vec<u8>, u128>,
    /// rule id -> (severity, alerts it matched in).
    by_rule: HashMap<String, (String, u128)>,
    by_method: HashMap<String, u128>,
    by_new_name: HashMap<Vec<u8>, u128>,
    /// pid -> the processes seen with it (pids are reused), each with its
    /// renames, summarized ones included.
    renamers: HashMap<u32, Vec<Renamer>>,
    /// `host.name` -> its counts; shown when the input holds more than one
    /// host (a central store).
    by_host: HashMap<String, HostCounts>,
}

/// One host's share of the summary lines.
#[derive(Debug, Default)]
struct HostCounts {
    events: u64,
    process_renames: u64,
    thread_renames: u64,
    alerts: u64,
    lost: u128,
    agent_starts: u64,
}

#[derive(Debug)]
struct Renamer {
    executable: Vec<u8>,
    /// The process name in its latest event.
    name: Vec<u8>,
    renames: u128,
}

/// Adds `n` to `key`'s count, allocating the key only the first time: a
/// report sees the same few keys on millions of lines.
fn bump<K, Q>(map: &mut HashMap<K, u128>, key: &Q, n: u64)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
{
    let n = u128::from(n);
    match map.get_mut(key) {
        Some(count) => *count = count.saturating_add(n),
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

const UNKNOWN: &[u8] = b"(unknown)";

impl Report {
    pub fn add(&mut self, r: &Record<'_>) {
        self.events += 1;
        let host = r.host_name().unwrap_or("(unknown)");
        let host = match self.by_host.get_mut(host) {
            Some(counts) => counts,
            None => self.by_host.entry(host.to_owned()).or_default(),
        };
        host.events += 1;
        if let Some(rename) = &r.rename {
            if rename.main_thread {
                host.process_renames += 1;
            } else {
                host.thread_renames += 1;
            }
        }
        if r.rule.is_some() {
            host.alerts += 1;
        }
        if let Some(l) = &r.lost {
            host.lost = host.lost.saturating_add(u128::from(l.count));
        }
        if r.event.action == "agent-started" {
            host.agent_starts += 1;
        }
        let ts = &*r.timestamp;
        match &mut self.first {
            Some(first) if ts >= first.as_str() => {}
            first => *first = Some(ts.to_owned()),
        }
        match &mut self.last {
            Some(last) if ts <= last.as_str() => {}
            Some(last) => {
                last.clear();
                last.push_str(ts);
            }
            None => self.last = Some(ts.to_owned()),
        }
        let exe = r.executable();
        let exe: &[u8] = exe.as_deref().unwrap_or(UNKNOWN);
        let mut renames: u128 = 0;
        if let Some(rename) = &r.rename {
            if rename.main_thread {
                self.process_renames += 1;
            } else {
                self.thread_renames += 1;
            }
            renames = 1;
            bump(&mut self.by_executable, exe, 1);
            bump(&mut self.by_method, &*rename.method, 1);
            if let Some(name) = r.new_name() {
                bump(&mut self.by_new_name, &*name, 1);
            }
        }
        if let Some(s) = &r.summary {
            self.summaries += 1;
            bump(&mut self.summarized, &*s.class, s.count);
            renames = renames.saturating_add(u128::from(s.count));
        }
        if let (Some(pid), true) = (r.pid(), renames > 0) {
            let name = r.process_name();
            let name: &[u8] = name.as_deref().unwrap_or_default();
            let seen = self.renamers.entry(pid).or_default();
            match seen.iter_mut().find(|p| p.executable == exe) {
                Some(p) => {
                    p.renames = p.renames.saturating_add(renames);
                    if p.name != name {
                        p.name = name.to_vec();
                    }
                }
                None => seen.push(Renamer {
                    executable: exe.to_vec(),
                    name: name.to_vec(),
                    renames,
                }),
            }
        }
        if let Some(rule) = &r.rule {
            self.alerts += 1;
            for id in r.rules() {
                // The log gives the severity of the alert's own rule only;
                // the others' is the built-in rule's.
                let severity = match RuleId::parse(id) {
                    Some(known) => known.severity().as_str().to_owned(),
                    None if id == rule.id => rule.severity.to_string(),
                    None => String::new(),
                };
                let entry = self
                    .by_rule
                    .entry(id.to_owned())
                    .or_insert_with(|| (severity, 0));
                entry.1 = entry.1.saturating_add(1);
            }
        }
        if let Some(l) = &r.lost {
            self.loss_reports += 1;
            bump(&mut self.lost, &*l.class, l.count);
        }
        match &*r.event.action {
            "agent-started" => self.agent_starts += 1,
            "agent-stopped" => self.agent_stops += 1,
            _ => {}
        }
    }

    pub fn write(&self, out: &mut Vec<u8>, top: usize) {
        match (&self.first, &self.last) {
            (Some(first), Some(last)) => {
                let _ = write!(out, "rename-audit report: {} events from ", self.events);
                escape_into(out, first.as_bytes());
                out.extend_from_slice(b" to ");
                escape_into(out, last.as_bytes());
                out.push(b'\n');
            }
            _ => {
                out.extend_from_slice(b"rename-audit report: no events in range\n");
                return;
            }
        }
        let _ = writeln!(out, "  process renames   {:>12}", self.process_renames);
        let _ = writeln!(out, "  thread renames    {:>12}", self.thread_renames);
        let _ = writeln!(out, "  alerts            {:>12}", self.alerts);
        let _ = writeln!(
            out,
            "  storm summaries   {:>12}  ({} renames summarized{})",
            self.summaries,
            total(&self.summarized),
            by_class(&self.summarized)
        );
        let _ = writeln!(
            out,
            "  loss reports      {:>12}  ({} records lost{})",
            self.loss_reports,
            total(&self.lost),
            by_class(&self.lost)
        );
        // Only for logs that have them (written since these records exist).
        if self.agent_starts + self.agent_stops > 0 {
            let _ = writeln!(
                out,
                "  daemon starts     {:>12}  ({} stops recorded)",
                self.agent_starts, self.agent_stops
            );
        }

        self.hosts_table(out, top);
        table(
            out,
            "Renames by executable",
            &["executable"],
            top,
            self.by_executable
                .iter()
                .map(|(k, n)| (vec![k.clone()], *n)),
        );
        table(
            out,
            "Alerts by rule (each matched rule counted)",
            &["rule", "severity"],
            top,
            self.by_rule.iter().map(|(id, (severity, n))| {
                (
                    vec![id.clone().into_bytes(), severity.clone().into_bytes()],
                    *n,
                )
            }),
        );
        table(
            out,
            "Renames by method",
            &["method"],
            top,
            self.by_method
                .iter()
                .map(|(k, n)| (vec![k.clone().into_bytes()], *n)),
        );
        table(
            out,
            "Renames by new name",
            &["new name"],
            top,
            self.by_new_name.iter().map(|(k, n)| (vec![k.clone()], *n)),
        );
        table(
            out,
            "Top renamers (renames, summarized ones included)",
            &["pid", "executable", "process name"],
            top,
            self.renamers.iter().flat_map(|(pid, seen)| {
                seen.iter().map(move |p| {
                    (
                        vec![
                            pid.to_string().into_bytes(),
                            p.executable.clone(),
                            p.name.clone(),
                        ],
                        p.renames,
                    )
                })
            }),
        );
    }
}

impl Report {
    /// The summary lines per host, most events first (ties by name), when
    /// the input holds more than one host.
    fn hosts_table(&self, out: &mut Vec<u8>, top: usize) {
        if self.by_host.len() < 2 {
            return;
        }
        let mut hosts: Vec<_> = self.by_host.iter().collect();
        hosts.sort_by(|a, b| b.1.events.cmp(&a.1.events).then_with(|| a.0.cmp(b.0)));
        let _ = writeln!(
            out,
            "\nBy host ({} hosts)\n  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  host",
            hosts.len(),
            "events",
            "process",
            "thread",
            "alerts",
            "lost",
            "starts"
        );
        for (host, c) in hosts.iter().take(top) {
            let _ = write!(
                out,
                "  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  ",
                c.events, c.process_renames, c.thread_renames, c.alerts, c.lost, c.agent_starts
            );
            escape_into(out, host.as_bytes());
            out.push(b'\n');
        }
        if hosts.len() > top {
            let _ = writeln!(out, "  ... and {} more", hosts.len() - top);
        }
    }
}

fn total(counts: &HashMap<String, u128>) -> u128 {
    counts.values().fold(0, |sum, n| sum.saturating_add(*n))
}

/// `, thread 5, process 2` when there are counts; each class escaped.
fn by_class(counts: &HashMap<String, u128>) -> String {
    let mut classes: Vec<_> = counts.iter().filter(|(_, n)| **n > 0).collect();
    classes.sort();
    let mut out = Vec::new();
    for (class, n) in classes {
        out.extend_from_slice(b", ");
        escape_into(&mut out, class.as_bytes());
        let _ = write!(out, " {n}");
    }
    // escape_into writes UTF-8 only.
    String::from_utf8_lossy(&out).into_owned()
}

/// A table of `count  columns...`, most frequent first (ties by key), at
/// most `top` rows. Every cell from the log is escaped.
fn table(
    out: &mut Vec<u8>,
    title: &str,
    columns: &[&str],
    top: usize,
    rows: impl Iterator<Item = (Vec<Vec<u8>>, u128)>,
) {
    let mut rows: Vec<_> = rows.collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let _ = write!(out, "\n{title}\n  {:>10}", "count");
    for c in columns {
        let _ = write!(out, "  {c}");
    }
    out.push(b'\n');
    for (cells, n) in rows.iter().take(top) {
        let _ = write!(out, "  {n:>10}");
        for cell in cells {
            out.extend_from_slice(b"  ");
            escape_into(out, if cell.is_empty() { b"-" } else { cell });
        }
        out.push(b'\n');
    }
    if rows.len() > top {
        let _ = writeln!(out, "  ... and {} more", rows.len() - top);
    }
}
