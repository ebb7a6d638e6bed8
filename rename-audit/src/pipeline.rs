//! The pipeline thread: classify -> rules -> noise -> output and sinks, one drained
//! batch at a time. Runs off the drain thread so formatting and writing never
//! hold up the rings.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};

use crate::{
    capture::Batch,
    classify::{Classified, Classifier, Filter},
    event::{AgentRun, Event, StopReason},
    metrics::Metrics,
    noise::NoiseFilter,
    output::{OutputStream, OutputSummary},
    rules::RuleEngine,
    sinks::Sinks,
    state::Tracker,
};

/// Changes applied between batches (SIGHUP).
pub enum Control {
    Reload {
        rules: Box<RuleEngine>,
        filter: Filter,
        noise: NoiseFilter,
    },
    /// Log rotation: continue in a new file at the output's path.
    ReopenOutput,
    /// The daemon is stopping, and why: said in the last record,
    /// `agent-stopped`, once the capture side has been drained.
    Stopping(StopReason, Option<String>),
}

/// With no batch for this long, the pipeline retries a failing output
/// anyway, so it notices both recovery and the unwritable timeout.
const IDLE_TICK: Duration = Duration::from_millis(500);

pub struct Pipeline {
    pub classifier: Classifier,
    pub rules: RuleEngine,
    pub noise: NoiseFilter,
    pub output: OutputStream,
    pub sinks: Sinks,
    pub metrics: Arc<Metrics>,
    /// Told once, when the output fails for good: the daemon stops.
    pub fatal: tokio::sync::mpsc::UnboundedSender<String>,
    /// The last record written, kept in the state directory, and how the
    /// previous run ended.
    pub state: Tracker,
}

impl Pipeline {
    /// Runs until the capture side closes the batch channel, then flushes.
    pub fn run(
        mut self,
        batches: Receiver<Batch>,
        control: Receiver<Control>,
    ) -> (Sinks, OutputSummary) {
        // The first record of the run, before anything the capture sends.
        let started = self.classifier.agent_event(AgentRun::Started);
        let until = started.timestamp;
        self.emit(started);
        // Then the blind window since the previous run: a restart's or an
        // upgrade's (it stopped cleanly), or what a kill or crash left.
        if let Some(previous) = self.state.take_previous() {
            let since =
                time::OffsetDateTime::from_unix_timestamp_nanos(previous.last_event_unix_ns)
                    .unwrap_or(until);
            let gap = self.classifier.agent_event(AgentRun::Gap {
                since,
                previous_run: previous.ephemeral_id,
                previous_sequence: previous.sequence,
                previous_stopped: previous.stopped,
                until,
            });
            self.emit(gap);
        }
        // Processes that took a disguise before the daemon ran.
        for found in self.classifier.found_events() {
            self.handle(found);
        }
        self.output.flush();
        self.state.save(false);
        let mut stopping = None;
        loop {
            select! {
                recv(batches) -> batch => match batch {
                    Ok(batch) => self.batch(batch),
                    Err(_) => break,
                },
                recv(control) -> msg => match msg {
                    Ok(Control::Reload { rules, filter, noise }) => {
                        self.rules = *rules;
                        self.classifier.set_filter(filter);
                        self.noise = noise;
                    }
                    Ok(Control::ReopenOutput) => match self.output.reopen() {
                        Ok(()) => tracing::info!("output reopened"),
                        Err(error) => tracing::error!(%error, "cannot reopen the output; still writing to the old file"),
                    },
                    Ok(Control::Stopping(reason, error)) => stopping = Some((reason, error)),
                    Err(_) => {}
                },
                default(IDLE_TICK) => self.settle(),
            }
        }
        // Exec renames still waiting for their exec record are written too.
        for overdue in self.classifier.overdue_exec_events(u64::MAX) {
            self.handle(overdue);
        }
        self.settle();
        self.report_sink_losses(true);
        // The reason is sent before the capture side stops, but the batch
        // channel may close before this loop took it.
        for msg in control.try_iter() {
            if let Control::Stopping(reason, error) = msg {
                stopping = Some((reason, error));
            }
        }
        let (reason, error) = stopping.unwrap_or((StopReason::CaptureEnded, None));
        let stopped = self
            .classifier
            .agent_event(AgentRun::Stopped { reason, error });
        self.emit(stopped);
        self.output.flush();
        self.state.save(true);
        (self.sinks, self.output.close())
    }

    fn batch(&mut self, batch: Batch) {
        for record in batch {
            let classified = self.classifier.classify(record);
            self.handle(classified);
        }
        for overdue in self
            .classifier
            .overdue_exec_events(crate::clock::monotonic_ns())
        {
            self.handle(overdue);
        }
        self.settle();
        self.classifier.tick();
        self.metrics
            .set_processes_tracked(self.classifier.table().len() as i64);
    }

    fn handle(&mut self, classified: Classified) {
        {
            match classified {
                Classified::Event(mut event) => {
                    event.alert = self.rules.evaluate(&event, self.classifier.table());
                    if let Some(reason) = self.noise.drop_reason(&event) {
                        // Neither written nor sent, but counted.
                        self.metrics.filtered(reason);
                        return;
                    }
                    self.emit(event);
                }
                Classified::Candidate {
                    mut event,
                    keep,
                    filtered,
                } => {
                    event.alert = self.rules.evaluate(&event, self.classifier.table());
                    if event.alert.is_none() && !keep {
                        if let Some(method) = filtered {
                            self.metrics.filtered(method.as_str());
                        }
                        return;
                    }
                    if let Some(reason) = self.noise.drop_reason(&event) {
                        self.metrics.filtered(reason);
                        return;
                    }
                    self.emit(event);
                }
                Classified::Filtered(method) => self.metrics.filtered(method.as_str()),
                Classified::Kernel(state) => self.metrics.kernel_state(&state),
                Classified::Nothing => {}
            }
        }
    }

    /// Numbers a record and writes it: numbering here, after every filter,
    /// keeps `event.sequence` without holes (a rename dropped as unchanged
    /// used to take a number).
    fn emit(&mut self, mut event: Box<Event>) {
        self.classifier.number(&mut event);
        self.metrics.observe(&event);
        self.output.write(&event);
        self.state.written(event.sequence, event.timestamp);
        self.sinks.offer(event);
    }

    /// What the sinks could not deliver, as `events-lost` records of class
    /// `sink`: the output has every record, so the central store learns
    /// from here what its copy lacks. At most one round per
    /// [`Sinks::losses_to_report`]'s interval unless `force`d, so a dead
    /// relay (which loses these records too) adds a line now and then, not
    /// one per failure.
    fn report_sink_losses(&mut self, force: bool) {
        let losses = self.sinks.losses_to_report(Instant::now(), force);
        if losses.is_empty() {
            return;
        }
        for (sink, reason, count) in losses {
            let lost = self.classifier.sink_lost(sink, reason, count);
            self.emit(lost);
        }
        self.output.flush();
    }

    /// Once per batch (lines reach the file well within a second) and when
    /// idle: flush, report output losses once the output works again, and
    /// tell the daemon to stop if the output failed for good.
    fn settle(&mut self) {
        for hidden in self.classifier.hidden_events() {
            self.handle(hidden);
        }
        self.output.flush();
        if let Some(count) = self.output.losses_to_report() {
            let lost = self.classifier.output_lost(count);
            self.emit(lost);
            self.output.flush();
        }
        self.report_sink_losses(false);
        // After the flush: the state never names a record not yet written.
        self.state.save(false);
        if let Some(message) = self.output.fatal(Instant::now()) {
            let _ = self.fatal.send(message);
        }
    }
}
