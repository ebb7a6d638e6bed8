//! (interim: replaced by the configuration module)
use std::path::Path;

use crate::{capture::CaptureOptions, classify::Filter, cli::RunArgs, output::OutputDest};

#[derive(Debug, Default)]
pub struct Config {
    pub output: Option<String>,
    pub filter: Filter,
    pub capture: CaptureOptions,
    pub rules: (),
    pub allow: (),
}

impl Config {
    pub fn load(_path: Option<&Path>) -> anyhow::Result<Config> {
        Ok(Config::default())
    }
    pub fn apply_flags(&mut self, a: &RunArgs) {
        if let Some(o) = &a.output {
            self.output = Some(o.clone());
        }
        self.filter.include_exec |= a.include_exec;
        self.filter.include_kernel |= a.include_kernel;
        let c = &mut self.capture;
        if let Some(v) = a.thread_rate {
            c.thread_rate = v
        }
        if let Some(v) = a.thread_burst {
            c.thread_burst = v
        }
        if let Some(v) = a.process_rate {
            c.process_rate = v
        }
        if let Some(v) = a.process_burst {
            c.process_burst = v
        }
        if let Some(v) = a.priority_ring_bytes {
            c.priority_ring_bytes = v
        }
        if let Some(v) = a.thread_ring_bytes {
            c.thread_ring_bytes = v
        }
    }
    pub fn output_dest(&self) -> OutputDest {
        self.output.as_deref().unwrap_or("-").parse().unwrap()
    }
    pub fn capture_options(&self) -> CaptureOptions {
        self.capture.clone()
    }
    pub fn filter(&self) -> Filter {
        self.filter
    }
    pub fn sinks_config(&self) {}
}

pub fn check(_file: &Path) -> anyhow::Result<()> {
    Ok(())
}
