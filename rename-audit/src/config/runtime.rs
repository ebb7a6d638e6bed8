//! From the file's settings and the command line to what each stage takes.
//! Flags given on the command line win over the file.
use super::{Config, ConfigError, OutputTarget, validate};
use crate::{
    capture::CaptureOptions, classify::Filter, cli::RunArgs, noise::NoiseFilter, output::OutputDest,
};

impl Config {
    /// Applies the flags given, each through the same check as its key in
    /// the file, so the command line accepts exactly what the file does.
    pub fn apply_flags(&mut self, args: &RunArgs) -> Result<(), ConfigError> {
        let flag = |flag: &'static str| move |problem| ConfigError::Flag { flag, problem };
        if let Some(path) = &args.output {
            self.output.path = validate::output_path(path).map_err(flag("output"))?;
        }
        if let Some(secs) = args.output_unwritable_timeout {
            let secs = validate::in_range(secs, &validate::UNWRITABLE_TIMEOUT_SECS)
                .map_err(flag("output-unwritable-timeout"))?;
            self.output.unwritable_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(format) = args.format {
            self.output.format = format;
        }
        if let Some(mode) = args.thread_renames {
            self.output.thread_renames = mode;
        }
        self.output.include_exec |= args.include_exec;
        self.output.include_kernel |= args.include_kernel;
        let storm = &mut self.storm;
        for (name, given, value) in [
            ("thread-rate", args.thread_rate, &mut storm.thread_rate),
            ("thread-burst", args.thread_burst, &mut storm.thread_burst),
            ("process-rate", args.process_rate, &mut storm.process_rate),
            (
                "process-burst",
                args.process_burst,
                &mut storm.process_burst,
            ),
        ] {
            if let Some(given) = given {
                *value =
                    validate::in_range(given.into(), &validate::RATE).map_err(flag(name))? as u32;
            }
        }
        if let Some(bytes) = args.priority_ring_bytes {
            self.capture.priority_ring_bytes =
                validate::ring_bytes(bytes.into()).map_err(flag("priority-ring-bytes"))?;
        }
        if let Some(bytes) = args.thread_ring_bytes {
            self.capture.thread_ring_bytes =
                validate::ring_bytes(bytes.into()).map_err(flag("thread-ring-bytes"))?;
        }
        if let Some(listen) = args.metrics_listen {
            self.sinks.prometheus = Some(super::PrometheusSink { listen });
        }
        Ok(())
    }

    /// The settings of `new` that differ from `self` (the configuration the
    /// daemon started with) and that a reload cannot apply: the output
    /// destination, the kernel buffers and rates, and the sinks are set up
    /// once at start-up, and so is the output format. Rules, allow-lists,
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
