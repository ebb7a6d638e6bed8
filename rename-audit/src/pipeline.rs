//! The pipeline thread: classify -> rules -> noise -> output and sinks, one drained
//! batch at a time. Runs off the drain thread so formatting and writing never
//! hold up the rings.
use std::sync::Arc;

use crossbeam_channel::{Receiver, select};

use crate::{
    capture::Batch,
    classify::{Classified, Classifier, Filter},
    metrics::Metrics,
    noise::NoiseFilter,
    output::JsonLinesWriter,
    rules::RuleEngine,
    sinks::Sinks,
};

/// Changes applied between batches (SIGHUP reloads).
pub enum Control {
    Reload {
        rules: Box<RuleEngine>,
        filter: Filter,
        noise: NoiseFilter,
    },
}

pub struct Pipeline {
    pub classifier: Classifier,
    pub rules: RuleEngine,
    pub noise: NoiseFilter,
    pub writer: JsonLinesWriter,
    pub sinks: Sinks,
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Runs until the capture side closes the batch channel, then flushes.
    pub fn run(mut self, batches: Receiver<Batch>, control: Receiver<Control>) -> Sinks {
        loop {
            select! {
                recv(batches) -> batch => match batch {
                    Ok(batch) => self.batch(batch),
                    Err(_) => break,
                },
                recv(control) -> msg => if let Ok(Control::Reload { rules, filter, noise }) = msg {
                    self.rules = *rules;
                    self.classifier.set_filter(filter);
                    self.noise = noise;
                },
            }
        }
        if let Err(error) = self.writer.flush() {
            tracing::error!(%error, "flushing the output failed");
        }
        self.sinks
    }

    fn batch(&mut self, batch: Batch) {
        for record in batch {
            match self.classifier.classify(record) {
                Classified::Event(mut event) => {
                    event.alert = self.rules.evaluate(&event, self.classifier.table());
                    if let Some(reason) = self.noise.drop_reason(&event) {
                        // Neither written nor sent, but counted.
                        self.metrics.filtered(reason);
                        continue;
                    }
                    self.metrics.observe(&event);
                    if let Err(error) = self.writer.write_event(&event) {
                        self.metrics.sink_error("output");
                        tracing::error!(%error, "writing an event failed");
                    }
                    self.sinks.send(&Arc::new(*event));
                }
                Classified::Filtered(method) => self.metrics.filtered(method.as_str()),
                Classified::Kernel(state) => self.metrics.kernel_state(&state),
                Classified::Nothing => {}
            }
        }
        // Once per batch: lines reach the file well within a second.
        if let Err(error) = self.writer.flush() {
            self.metrics.sink_error("output");
            tracing::error!(%error, "flushing the output failed");
        }
        self.classifier.tick();
        self.metrics
            .set_processes_tracked(self.classifier.table().len() as i64);
    }
}
