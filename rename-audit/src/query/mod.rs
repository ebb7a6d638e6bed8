//! `rename-audit search` and `rename-audit report`: questions to the audit
//! log ("who renamed pid 9165, when, and to what?") without jq, the way
//! `ausearch` and `aureport` answer them for auditd.
//!
//! Both read JSON lines as the daemon wrote them ([`input`]: files, rotated
//! and gzip-compressed ones, stdin, or the configured output file), skip
//! most lines that cannot match with byte checks ([`filter`]), and parse
//! only what they look at, borrowed from the line ([`record`]). No BPF and
//! no privileges: a copy of the log is enough.

pub mod filter;
pub mod input;
pub mod record;
mod report;

use std::io::{self, BufWriter, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use time::OffsetDateTime;

use crate::cli::{ReportArgs, SearchArgs};
use filter::Filters;
use input::Input;
use record::Record;

/// What a scan saw besides the matches.
#[derive(Debug, Default)]
pub struct Scan {
    pub matched: u64,
    /// Non-empty lines that were looked at but are not events.
    pub unreadable: u64,
}

/// Calls `on_match` with each matching line (as read, `'\n'` included) and
/// its record, in input order. Stops early, without error, when `on_match`
/// reports a broken pipe (`search ... | head`). Without `needs_record`, a
/// line the byte checks alone decide is passed without parsing (`None`).
pub fn scan(
    inputs: &[Input],
    filters: &Filters,
    needs_record: bool,
    mut on_match: impl FnMut(&[u8], Option<&Record<'_>>) -> io::Result<()>,
) -> Result<Scan> {
    let mut scan = Scan::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    for input in inputs {
        let mut reader = input::open(input)?;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read {input}"))?;
            if n == 0 {
                break;
            }
            let line = trim_end(&buf);
            if line.is_empty() || !filters.may_match(line) {
                continue;
            }
            let parsed;
            let record = if !needs_record && filters.decided_by_bytes(line) {
                None
            } else {
                let Some(record) = Record::parse(line) else {
                    scan.unreadable += 1;
                    continue;
                };
                if !filters.matches(&record) {
                    continue;
                }
                parsed = record;
                Some(&parsed)
            };
            scan.matched += 1;
            match on_match(&buf, record) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(scan),
                Err(e) => return Err(e).context("cannot write to stdout"),
            }
        }
    }
    Ok(scan)
}

fn trim_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn warn_unreadable(scan: &Scan) {
    if scan.unreadable > 0 {
        eprintln!(
            "rename-audit: {} line(s) of the input are not rename-audit events and were skipped",
            scan.unreadable
        );
    }
}

/// `rename-audit search`: exit status 0 when something matched, 1 when
/// nothing did (as grep and ausearch do).
pub fn search(args: &SearchArgs) -> Result<ExitCode> {
    let filters = Filters::new(&args.filters, OffsetDateTime::now_utc())?;
    let inputs = input::inputs(&args.input)?;
    let color = !args.json && crate::output::stdout_wants_color();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut text = Vec::with_capacity(512);
    let scan = scan(&inputs, &filters, !args.json, |line, record| {
        match record {
            Some(record) if !args.json => {
                text.clear();
                record.text().write(&mut text, color);
                out.write_all(&text)?;
            }
            _ => {
                out.write_all(line)?;
                if !line.ends_with(b"\n") {
                    out.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    })?;
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write to stdout");
        }
        _ => {}
    }
    warn_unreadable(&scan);
    if scan.matched == 0 {
        eprintln!("rename-audit: no matching events");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rename-audit report`.
pub fn report(args: &ReportArgs) -> Result<ExitCode> {
    let filters = Filters::new(&args.filters, OffsetDateTime::now_utc())?;
    let inputs = input::inputs(&args.input)?;
    let mut report = report::Report::default();
    let scan = scan(&inputs, &filters, true, |_, record| {
        if let Some(record) = record {
            report.add(record);
        }
        Ok(())
    })?;
    let mut out = Vec::new();
    report.write(&mut out, args.top);
    match io::stdout().lock().write_all(&out) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write to stdout");
        }
        _ => {}
    }
    warn_unreadable(&scan);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
