//! Command line. Flags override the configuration file.
use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::capture;
use crate::config::{OutputConfig, StormConfig};

fn with_default(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

/// `1 MiB`, `512 KiB`: how the README and config docs write sizes.
pub fn mib(bytes: u32) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

fn ring_help(text: &str, per_cpu: u32, min: u32) -> String {
    format!(
        "{text} (a power of two) [default: {} a CPU, at least {}]",
        mib(per_cpu),
        mib(min)
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "rename-audit",
    version,
    about = "Audit every thread and process rename (comm change) on this host with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture renames and write them as ECS JSON lines.
    Run(RunArgs),
    /// Validate a configuration file and report every problem with its line and column.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Configuration file [default: /etc/rename-audit/config.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where events go: a file path (appended to), or - for stdout [default: -].
    #[arg(long, value_name = "PATH|-")]
    pub output: Option<String>,
    #[arg(long, value_name = "SECS", help = with_default(
        "Seconds the output may stay unwritable (disk full, ...) before the daemon stops with a non-zero exit status",
        OutputConfig::DEFAULT_UNWRITABLE_TIMEOUT_SECS,
    ))]
    pub output_unwritable_timeout: Option<u64>,
    /// Also report renames done by exec (by default they only set the baseline name).
    #[arg(long)]
    pub include_exec: bool,
    /// Also report renames done by the kernel (kernel threads, io_uring workers).
    #[arg(long)]
    pub include_kernel: bool,
    // The defaults in these help texts come from the code that applies
    // them, so `--help` cannot drift from it.
    #[arg(long, value_name = "N", help = with_default(
        "Renames per second one non-main thread may make before it is summarized",
        StormConfig::default().thread_rate,
    ))]
    pub thread_rate: Option<u32>,
    #[arg(long, value_name = "N", help = with_default(
        "Burst allowed above --thread-rate",
        StormConfig::default().thread_burst,
    ))]
    pub thread_burst: Option<u32>,
    #[arg(long, value_name = "N", help = with_default(
        "Renames per second one main thread may make before it is summarized",
        StormConfig::default().process_rate,
    ))]
    pub process_rate: Option<u32>,
    #[arg(long, value_name = "N", help = with_default(
        "Burst allowed above --process-rate",
        StormConfig::default().process_burst,
    ))]
    pub process_burst: Option<u32>,
    #[arg(long, value_name = "BYTES", help = ring_help(
        "Bytes of the ring for process renames and lifecycle records",
        capture::PRIORITY_RING_PER_CPU,
        capture::PRIORITY_RING_MIN,
    ))]
    pub priority_ring_bytes: Option<u32>,
    #[arg(long, value_name = "BYTES", help = ring_help(
        "Bytes of the ring for thread renames",
        capture::THREAD_RING_PER_CPU,
        capture::THREAD_RING_MIN,
    ))]
    pub thread_ring_bytes: Option<u32>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9560).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}
