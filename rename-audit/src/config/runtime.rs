//! From the settings to what each stage takes, and which settings a reload
//! cannot change.
use super::{Config, OutputTarget};
use crate::{capture::CaptureOptions, classify::Filter, noise::NoiseFilter, output::OutputDest};

impl Config {
    /// The settings of `new` that differ from `self` (the configuration the
    /// daemon started with) and that a reload cannot apply: the output
    /// destination, the kernel buffers and rates, the sinks and `[host]` are
    /// set up once at start-up, and so is the output format. Rules, allow-lists,
    /// the exec/kernel filters and the thread-rename setting are reloaded.
    pub fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.output.path != new.output.path {
            changed.push("output.path");
        }
        if self.output.unwritable_timeout != new.output.unwritable_timeout {
            changed.push("output.unwritable_timeout_secs");
        }
        if self.output.format != new.output.format {
            changed.push("output.format");
        }
        if self.capture != new.capture {
            changed.push("capture");
        }
        if self.storm != new.storm {
            changed.push("storm");
        }
        if self.sinks != new.sinks {
            changed.push("sinks");
        }
        // The identity is gathered once, so every record of a run agrees.
        if self.host != new.host {
            changed.push("host");
        }
        changed
    }

    pub fn output_dest(&self) -> OutputDest {
        match &self.output.path {
            OutputTarget::Stdout => OutputDest::Stdout,
            OutputTarget::File(path) => OutputDest::File(path.clone()),
        }
    }

    pub fn filter(&self) -> Filter {
        Filter {
            include_exec: self.output.include_exec,
            include_kernel: self.output.include_kernel,
        }
    }

    /// Which thread renames are written; reloaded on SIGHUP.
    pub fn noise(&self) -> NoiseFilter {
        NoiseFilter {
            thread_renames: self.output.thread_renames,
            allow: self.output.thread_renames_allow.clone(),
        }
    }

    pub fn capture_options(&self) -> CaptureOptions {
        // Validation keeps ring sizes to powers of two well under 4 GiB.
        let ring = |bytes: Option<u64>| bytes.map_or(0, |b| u32::try_from(b).unwrap_or(u32::MAX));
        CaptureOptions {
            priority_ring_bytes: ring(self.capture.priority_ring_bytes),
            thread_ring_bytes: ring(self.capture.thread_ring_bytes),
            storm_slots: self.capture.storm_slots,
            thread_rate: self.storm.thread_rate,
            thread_burst: self.storm.thread_burst,
            process_rate: self.storm.process_rate,
            process_burst: self.storm.process_burst,
        }
    }
}
