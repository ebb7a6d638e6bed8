//! Command line. Flags override the configuration file.
use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

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
    /// Seconds the output may stay unwritable (disk full, ...) before the daemon stops with a
    /// non-zero exit status [default: 120].
    #[arg(long, value_name = "SECS")]
    pub output_unwritable_timeout: Option<u64>,
    /// Also report renames done by exec (by default they only set the baseline name).
    #[arg(long)]
    pub include_exec: bool,
    /// Also report renames done by the kernel (kernel threads, io_uring workers).
    #[arg(long)]
    pub include_kernel: bool,
    /// Renames per second one non-main thread may make before it is summarized [default: 100].
    #[arg(long, value_name = "N")]
    pub thread_rate: Option<u32>,
    /// Burst allowed above --thread-rate [default: 1000].
    #[arg(long, value_name = "N")]
    pub thread_burst: Option<u32>,
    /// Renames per second one main thread may make before it is summarized [default: 20000].
    #[arg(long, value_name = "N")]
    pub process_rate: Option<u32>,
    /// Burst allowed above --process-rate [default: 20000].
    #[arg(long, value_name = "N")]
    pub process_burst: Option<u32>,
    /// Bytes of the ring for process renames and lifecycle records (power of two) [default: 512 KiB a CPU, at least 2 MiB].
    #[arg(long, value_name = "BYTES")]
    pub priority_ring_bytes: Option<u32>,
    /// Bytes of the ring for thread renames (power of two) [default: 1 MiB a CPU, at least 4 MiB].
    #[arg(long, value_name = "BYTES")]
    pub thread_ring_bytes: Option<u32>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9560).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}
