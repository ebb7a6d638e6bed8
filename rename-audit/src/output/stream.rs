//! The output's health: the same promise as the kernel side. Every event is
//! written as a whole line or counted as lost (`rename_audit_events_lost_total
//! {class="output"}` at once, and an `events-lost` record of class `output`
//! once the output takes lines again). Errors are logged rate-limited: the
//! first one, then one summary per interval. A broken stdout, or an output
//! that stays unwritable longer than the configured time, is fatal: the
//! daemon stops with a non-zero exit status so that systemd restarts it.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::writer::{JsonLinesWriter, OutputError, WriteOutcome};
use crate::event::Event;
use crate::metrics::Metrics;
use crate::util::throttle::LogThrottle;

/// At most one summary of repeated output errors per this long.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The name of the output in `rename_audit_sink_errors_total{sink}`.
const SINK: &str = "output";

struct Failing {
    since: Instant,
    errors: u64,
    last_error: String,
}

pub struct OutputStream {
    writer: JsonLinesWriter,
    metrics: Arc<Metrics>,
    unwritable_timeout: Duration,
    failing: Option<Failing>,
    log: LogThrottle,
    /// Part of `writer.lines_lost()` already in the metric.
    counted: u64,
    /// Part of `writer.lines_lost()` already in an `events-lost` record.
    reported: u64,
    fatal_told: bool,
}

/// How the output ended, for the exit status.
#[derive(Debug, Default)]
pub struct OutputSummary {
    /// Lines lost and not reported by an `events-lost` record in the output.
    pub unreported_lost: u64,
    /// Lines lost in all, reported or not.
    pub lost: u64,
    pub dest: String,
}

impl OutputStream {
    /// `unwritable_timeout`: how long the output may fail before the
    /// daemon gives up.
    pub fn new(
        writer: JsonLinesWriter,
        metrics: Arc<Metrics>,
        unwritable_timeout: Duration,
    ) -> Self {
        OutputStream {
            writer,
            metrics,
            unwritable_timeout,
            failing: None,
            log: LogThrottle::new(LOG_EVERY),
            counted: 0,
            reported: 0,
            fatal_told: false,
        }
    }

    pub fn write(&mut self, ev: &Event) {
        match self.writer.write_event(ev) {
            Ok(WriteOutcome::Buffered) => {}
            // The writer holds no error for a line it refused outright
            // (the reader is gone): the failure is already known.
            Ok(WriteOutcome::Lost) => {}
            Err(error) => self.failed(&error),
        }
        self.count_lost();
    }

    /// Hands the buffered lines to the OS: after every batch, and on every
    /// idle tick so a recovered output is noticed without new events.
    pub fn flush(&mut self) {
        match self.writer.flush() {
            Ok(()) => self.recovered(),
            Err(error) => self.failed(&error),
        }
        self.count_lost();
    }

    /// Lines lost since the last report, once the output works again: the
    /// caller writes an `events-lost` record of class `output` for them.
    pub fn losses_to_report(&mut self) -> Option<u64> {
        let lost = self.writer.lines_lost();
        if self.failing.is_some() || self.writer.is_broken() || lost == self.reported {
            return None;
        }
        let n = lost - self.reported;
        self.reported = lost;
        Some(n)
    }

    /// `Some(message)` once, when the daemon must stop: stdout's reader is
    /// gone, or the output failed for longer than the configured time.
    pub fn fatal(&mut self, now: Instant) -> Option<String> {
        if self.fatal_told {
            return None;
        }
        let message = if self.writer.is_broken() {
            format!(
                "the reader of {} went away (broken pipe); stopping so the service manager can restart rename-audit with a working output",
                self.writer.dest()
            )
        } else {
            let f = self.failing.as_ref()?;
            let failed_for = now.saturating_duration_since(f.since);
            if failed_for < self.unwritable_timeout {
                return None;
            }
            format!(
                "the output {} has been unwritable for {} s (the limit is output.unwritable_timeout_secs = {}): {}; stopping",
                self.writer.dest(),
                failed_for.as_secs(),
                self.unwritable_timeout.as_secs(),
                f.last_error
            )
        };
        self.fatal_told = true;
        Some(message)
    }

    /// Log rotation: continue in a new file at the same path.
    pub fn reopen(&mut self) -> Result<(), OutputError> {
        let result = self.writer.reopen();
        self.count_lost();
        result
    }

    /// The last flush; lines that still cannot be written are counted.
    pub fn close(mut self) -> OutputSummary {
        let (gave_up, error) = self.writer.close();
        if let Some(error) = error {
            tracing::error!(
                output = %self.writer.dest(),
                %error,
                lines = gave_up,
                "the output failed at exit; these lines are lost"
            );
        }
        self.count_lost();
        let lost = self.writer.lines_lost();
        OutputSummary {
            unreported_lost: lost - self.reported,
            lost,
            dest: self.writer.dest().to_string(),
        }
    }

    fn count_lost(&mut self) {
        let lost = self.writer.lines_lost();
        if lost > self.counted {
            self.metrics.output_lost(lost - self.counted);
            self.counted = lost;
        }
    }

    fn failed(&mut self, error: &io::Error) {
        self.metrics.sink_error(SINK);
        let now = Instant::now();
        let f = self.failing.get_or_insert_with(|| Failing {
            since: now,
            errors: 0,
            last_error: String::new(),
        });
        f.errors += 1;
        f.last_error = error.to_string();
        // A broken pipe is fatal and said once, as the exit message.
        if self.writer.is_broken() {
            return;
        }
        let Some(held) = self.log.allow(now) else {
            return;
        };
        let dest = self.writer.dest();
        if held == 0 && f.errors == 1 {
            tracing::error!(
                output = %dest,
                %error,
                "writing to the output failed; lines wait in memory (up to 8 MiB), later ones are counted as lost"
            );
        } else {
            tracing::error!(
                output = %dest,
                %error,
                errors = f.errors,
                failing_secs = now.saturating_duration_since(f.since).as_secs(),
                lost = self.writer.lines_lost(),
                "the output is still failing"
            );
        }
    }

    fn recovered(&mut self) {
        if let Some(f) = self.failing.take() {
            tracing::info!(
                output = %self.writer.dest(),
                errors = f.errors,
                failing_secs = f.since.elapsed().as_secs(),
                lost = self.writer.lines_lost() - self.reported,
                "the output is writable again"
            );
        }
    }
}
