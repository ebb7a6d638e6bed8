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

use anyhow::Result;
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
    /// Lines longer than [`input::MAX_LINE`], skipped unread.
    pub too_long: u64,
    /// Inputs that could not be opened or read to their end, each already
    /// reported on stderr; the others were still read.
    pub failed_inputs: u64,
}

/// Why a scan stopped before the end of its inputs.
#[derive(Debug)]
pub enum Stop {
    /// `on_match` reported a broken pipe (`search ... | head`): not an error.
    BrokenPipe,
    /// Writing the output failed.
    Write(io::Error),
}

/// Calls `on_match` with each matching line (as read, `'\n'` included) and
/// its record, in input order. Stops early, without error, when `on_match`
/// reports a broken pipe (`search ... | head`). Without `needs_record`, a
/// line the byte checks alone decide is passed without parsing (`None`).
///
/// An input that cannot be opened, or fails part-way (a truncated .gz), is
/// reported on stderr and counted, and the next one is read: with several
/// inputs, one damaged file must not hide what the others hold.
pub fn scan(
    inputs: &[Input],
    filters: &Filters,
    needs_record: bool,
    mut on_match: impl FnMut(&[u8], Option<&Record<'_>>) -> io::Result<()>,
) -> (Scan, Option<Stop>) {
    let mut scan = Scan::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    for input in inputs {
        let mut reader = match input::open(input) {
            Ok(reader) => reader,
            Err(e) => {
                eprintln!("rename-audit: {e:#}");
                scan.failed_inputs += 1;
                continue;
            }
        };
        let skip = filters.skip_needle();
        loop {
            if let Some(needle) = skip
                && let Err(e) = input::skip_lines_without(&mut *reader, needle)
            {
                eprintln!("rename-audit: cannot read {input} to its end: {e}");
                scan.failed_inputs += 1;
                break;
            }
            match input::read_line(&mut *reader, &mut buf, input::MAX_LINE) {
                Ok(input::LineRead::Line) => {}
                Ok(input::LineRead::TooLong) => {
                    scan.too_long += 1;
                    continue;
                }
                Ok(input::LineRead::Eof) => break,
                Err(e) => {
                    eprintln!("rename-audit: cannot read {input} to its end: {e}");
                    scan.failed_inputs += 1;
                    break;
                }
            }
            let line = trim_end(&buf);
            if line.is_empty() || !filters.may_match(line) {
                continue;
            }
            let parsed;
            let record = if !needs_record && filters.decided_by_bytes(line) && is_line_safe(line) {
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
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return (scan, Some(Stop::BrokenPipe));
                }
                Err(e) => return (scan, Some(Stop::Write(e))),
            }
        }
    }
    (scan, None)
}

fn trim_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether `line` can be copied to a terminal as it is: printable ASCII
/// only, the common case for the daemon's own lines (which escape every
/// other control character). Anything else is parsed first, so that bytes
/// which are not JSON are never copied.
fn is_line_safe(line: &[u8]) -> bool {
    line.iter().all(|b| (0x20..0x7f).contains(b))
}

/// `line`, a JSON line that parsed, with every character the one escape
/// rule covers (C0 and C1 controls, DEL, line separators, bidi controls)
/// written as a JSON `\uXXXX` escape. Valid JSON holds such characters
/// only inside strings, so the line decodes to exactly the same values; a
/// line the daemon wrote has none and is copied byte for byte.
fn json_escaped(line: &[u8], out: &mut Vec<u8>) {
    let Ok(text) = std::str::from_utf8(line) else {
        // Not reached: a line that parsed is UTF-8. Escaped all the same.
        crate::output::text::escape_into(out, line);
        return;
    };
    if is_line_safe(line) {
        out.extend_from_slice(line);
        return;
    }
    for c in text.chars() {
        // Valid JSON holds a tab only as whitespace between tokens, where
        // an escape would not be JSON.
        if c == '\t' {
            out.push(b' ');
        } else if c.is_control() || crate::output::text::is_disguising(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// The summary on stderr of what was skipped, and the exit status as grep
/// gives it: 2 when an input failed (even if others matched), else 0 when
/// something matched, 1 when nothing did.
fn finish(scan: &Scan, stop: Option<Stop>) -> ExitCode {
    if scan.unreadable > 0 {
        eprintln!(
            "rename-audit: {} line(s) of the input are not rename-audit events and were skipped",
            scan.unreadable
        );
    }
    if scan.too_long > 0 {
        eprintln!(
            "rename-audit: {} line(s) of the input are longer than {} MiB, the most a \
             rename-audit event can be, and were skipped",
            scan.too_long,
            input::MAX_LINE >> 20
        );
    }
    if let Some(Stop::Write(e)) = stop {
        eprintln!("rename-audit: cannot write to stdout: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    if scan.failed_inputs > 0 {
        eprintln!(
            "rename-audit: {} input(s) could not be read in full (see above)",
            scan.failed_inputs
        );
        return ExitCode::from(EXIT_ERROR);
    }
    if scan.matched == 0 {
        eprintln!("rename-audit: no matching events");
        return ExitCode::from(EXIT_NO_MATCH);
    }
    ExitCode::SUCCESS
}

/// Exit status: nothing matched.
pub const EXIT_NO_MATCH: u8 = 1;
/// Exit status: an input could not be read, or the arguments are wrong.
pub const EXIT_ERROR: u8 = 2;

/// Errors before the scan (filters, the configuration naming the log) end
/// the command with [`EXIT_ERROR`], as grep's do.
fn or_exit_error(result: Result<ExitCode>) -> Result<ExitCode> {
    result.or_else(|error| {
        eprintln!("rename-audit: {error:#}");
        Ok(ExitCode::from(EXIT_ERROR))
    })
}

fn flushed(result: io::Result<()>, stop: Option<Stop>) -> Option<Stop> {
    match (stop, result) {
        (Some(stop), _) => Some(stop),
        (None, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Some(Stop::BrokenPipe),
        (None, Err(e)) => Some(Stop::Write(e)),
        (None, Ok(())) => None,
    }
}

/// `rename-audit search`: exit status 0 when something matched, 1 when
/// nothing did, 2 on an error (as grep's).
pub fn search(args: &SearchArgs) -> Result<ExitCode> {
    or_exit_error(search_inner(args))
}

fn search_inner(args: &SearchArgs) -> Result<ExitCode> {
    let filters = Filters::new(&args.filters, OffsetDateTime::now_utc())?;
    let inputs = input::inputs(&args.input)?;
    let color = !args.json && crate::output::stdout_wants_color();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut text = Vec::with_capacity(512);
    let (scan, stop) = scan(&inputs, &filters, !args.json, |line, record| {
        text.clear();
        match record {
            Some(record) if !args.json => record.text().write(&mut text, color),
            _ => {
                json_escaped(trim_end(line), &mut text);
                text.push(b'\n');
            }
        }
        out.write_all(&text)
    });
    let stop = flushed(out.flush(), stop);
    Ok(finish(&scan, stop))
}

/// `rename-audit report`: the same exit statuses as `search`; with no
/// event in range the (empty) report is still printed.
pub fn report(args: &ReportArgs) -> Result<ExitCode> {
    or_exit_error(report_inner(args))
}

fn report_inner(args: &ReportArgs) -> Result<ExitCode> {
    let filters = Filters::new(&args.filters, OffsetDateTime::now_utc())?;
    let inputs = input::inputs(&args.input)?;
    let mut report = report::Report::default();
    let (scan, stop) = scan(&inputs, &filters, true, |_, record| {
        if let Some(record) = record {
            report.add(record);
        }
        Ok(())
    });
    let mut out = Vec::new();
    report.write(&mut out, args.top);
    let stop = flushed(io::stdout().lock().write_all(&out), stop);
    Ok(finish(&scan, stop))
}

#[cfg(test)]
mod tests;
