//! Command line. Flags override the configuration file. The man pages and
//! shell completions are generated from this definition
//! (`rename-audit generate`, used by `cargo xtask package`).
use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{noise::ThreadRenames, output::Format, rules::RuleId};

use crate::capture;
use crate::config::{self, Config, ConfigError, OutputConfig, StormConfig, checks};

fn with_default(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

/// The command-line spelling of a value enum's default (`json`, `alerts`),
/// so help shows the default the configuration uses.
pub fn default_name<T: ValueEnum + Default>() -> String {
    T::default()
        .to_possible_value()
        .expect("a default value is never skipped")
        .get_name()
        .to_owned()
}

/// `1 MiB`, `512 KiB`: how the docs and deploy/config.toml write sizes.
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
    about = "Audit every thread and process rename (comm change) on this host with eBPF",
    // `--help` on each command instead: every listed command has a man page.
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture renames and write them as ECS JSON lines (or readable lines).
    Run(RunArgs),
    /// Validate a configuration file and report every problem with its line and column.
    ///
    /// The file must be a regular file: a FIFO, a socket, a device or a
    /// directory is refused at once, unread, with a message naming its type
    /// (as `run` refuses it at start-up and on SIGHUP). Exit status 0 when
    /// the file is valid, 1 otherwise.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Find events in the audit log: who renamed what, when and how.
    #[command(long_about = query_about(SEARCH_ABOUT, "matching events were printed", SEARCH_JSON))]
    Search(SearchArgs),
    /// Summarize the audit log over a time range, as aureport does: counts by
    /// executable, rule, method and new name, the top renamers, and the
    /// losses and storm summaries in the range.
    #[command(long_about = query_about(REPORT_ABOUT, "events were in range", ""))]
    Report(ReportArgs),
    /// Write the man pages, shell completions or docs/kernels.md's hook table
    /// into a directory (packaging, docs).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generate,
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
}

const SEARCH_ABOUT: &str = "Find events in the audit log: who renamed what, when and how.\n\n\
    Reads the given files (rotated and gzip-compressed ones too; - is stdin), \
    or with none the configured output file and its rotations, oldest first. \
    Needs no privileges and no BPF. Prints one readable line per matching \
    event, or with --json the matching lines as they are in the log (byte for \
    byte, unless a line holds characters a terminal would act on: see below).";

const REPORT_ABOUT: &str = "Summarize the audit log over a time range, as aureport does: \
    counts by executable, rule, method and new name, the top renamers, and the \
    losses and storm summaries in the range. Reads its inputs as search does.";

const SEARCH_JSON: &str = "; with --json, such characters are written as JSON \\uXXXX \
    escapes, which decode to the same values";

/// The description of `search` or `report` for `--help` and the man pages,
/// with their exit statuses and input limits; the cap comes from the code
/// that applies it.
fn query_about(about: &str, matched: &str, json: &str) -> String {
    format!(
        "{about}\n\n\
         Exit status, as grep's: 0 when {matched}; 1 when none were; 2 \
         on an error: an input could not be opened or read to its end (a \
         missing file, a truncated .gz), the arguments or the configuration \
         are wrong, or stdout could not be written. With several inputs, a \
         damaged one is reported on stderr and the others are still read; the \
         status is then 2, even if events matched.\n\n\
         Limits: a line longer than {} MiB (many times the longest event the \
         daemon writes) is skipped and counted, like a line that is not an \
         event; gzip input is decompressed as a stream, so memory stays small \
         whatever an input holds. Devices and sockets are refused; pipes are \
         read. Every text taken from the log is printed escaped: control \
         characters, line separators and bidi controls as escapes, bytes that \
         are not UTF-8 as \\xNN{json}.",
        MAX_LINE >> 20
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// rename-audit(8), one page per command, and rename-audit.toml(5).
    Man,
    /// bash, zsh and fish completions.
    Completions,
    /// hook-table.md: docs/kernels.md's hook table, from the one the
    /// daemon enforces.
    HookTable,
}

/// Which events `search` and `report` look at. All given filters must match.
#[derive(Debug, Args, Default, Clone)]
pub struct FilterArgs {
    /// Events about process N: the renamed process or the writer's.
    #[arg(long, value_name = "N")]
    pub pid: Option<u32>,
    /// Events about thread N: the renamed thread or the writer.
    #[arg(long, value_name = "N")]
    pub tid: Option<u32>,
    /// The old or the new name matches GLOB (* and ? match any character, / too).
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// The executable path matches GLOB (* and ? match any character, / too).
    #[arg(long, value_name = "GLOB")]
    pub exe: Option<String>,
    /// Events from hosts whose name (host.name) matches GLOB (* and ? match any character).
    #[arg(long, value_name = "GLOB")]
    pub host: Option<String>,
    /// Alerts in which rule ID matched (the most severe rule or any other).
    #[arg(long, value_name = "ID", value_parser = rule_id)]
    pub rule: Option<String>,
    /// Renames done by method M.
    #[arg(long, value_name = "M", value_parser = ["prctl", "procfs", "exec", "kernel"])]
    pub method: Option<String>,
    /// Only process (main-thread) renames and process storm summaries.
    #[arg(long)]
    pub process_only: bool,
    /// Events at or after TIME: an RFC 3339 time (2026-11-23T12:00:00Z), a
    /// UTC date and time (2026-11-23 12:00[:00]), a date, or a duration
    /// before now (30s, 15m, 1h, 2d, "1h 30m").
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Events at or before TIME (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

fn rule_id(id: &str) -> Result<String, String> {
    match RuleId::parse(id) {
        Some(_) => Ok(id.to_owned()),
        None => Err(format!(
            "unknown rule; the rules are {}",
            RuleId::ALL.map(RuleId::as_str).join(", ")
        )),
    }
}

/// The longest line `search` and `report` read; a longer one is skipped and
/// counted. The daemon's longest line is a few tens of KiB (arguments,
/// executable and cgroup paths at their kernel-side caps, each possibly
/// escaped six-fold and repeated in hex), so this is many times that and
/// still a small, fixed amount of memory.
pub const MAX_LINE: usize = 1 << 20;

/// The log files `search` and `report` read.
#[derive(Debug, Args, Default, Clone)]
pub struct InputArgs {
    /// Configuration file naming the output file read when no FILE is given
    /// [default: /etc/rename-audit/config.toml, if it exists].
    #[arg(long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Log files (plain or gzip-compressed); - reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the matching events as they are in the log (JSON lines, byte
    /// for byte unless escapes are needed) instead of readable lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Args, Default, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Rows in each table.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub input: InputArgs,
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
    #[arg(long, value_enum, value_name = "FORMAT", help = with_default(
        "How events are written: ECS JSON lines, or one readable line each (coloured on a terminal)",
        default_name::<Format>(),
    ))]
    pub format: Option<Format>,
    #[arg(long, value_enum, value_name = "WHICH", help = with_default(
        "Which thread (non-main) renames are written: all, only those a rule matches (alerts), or none; process renames always are",
        default_name::<ThreadRenames>(),
    ))]
    pub thread_renames: Option<ThreadRenames>,
    /// Also report renames done by exec (by default they only set the baseline name;
    /// an exec a rule matches, by the name it gives or its argv[0], alerts either way).
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
    /// Directory for the daemon's state (agent.id, and the run's last record, to report the gap after a kill or crash) [default: $STATE_DIRECTORY, else /var/lib/rename-audit].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Read `host.id` from this file instead of /etc/machine-id (tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub machine_id_file: Option<PathBuf>,
    /// Read `host.os` from this file instead of /etc/os-release (tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub os_release_file: Option<PathBuf>,
}

impl RunArgs {
    /// Where the host's identity is read from: the system's files unless a
    /// (hidden, for tests) flag names another.
    pub fn identity_sources(&self) -> crate::identity::Sources {
        let mut sources = crate::identity::Sources::default();
        if let Some(path) = &self.machine_id_file {
            sources.machine_id = path.clone();
        }
        if let Some(path) = &self.os_release_file {
            sources.os_release = vec![path.clone()];
        }
        sources
    }

    /// The configuration file (`--config`, else [`config::DEFAULT_PATH`]
    /// if it exists) merged with the flags, which win.
    pub fn settings(&self) -> Result<Config, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path),
            None => Config::load_or_default(std::path::Path::new(config::DEFAULT_PATH)),
        }?;
        self.apply_to(&mut cfg)?;
        Ok(cfg)
    }

    /// Applies the flags given, each through the same check as its key in
    /// the file, so the command line accepts exactly what the file does.
    fn apply_to(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        let flag = |flag: &'static str| move |problem| ConfigError::Flag { flag, problem };
        if let Some(path) = &self.output {
            cfg.output.path = checks::output_path(path).map_err(flag("output"))?;
        }
        if let Some(secs) = self.output_unwritable_timeout {
            let secs = checks::in_range(secs, &checks::UNWRITABLE_TIMEOUT_SECS)
                .map_err(flag("output-unwritable-timeout"))?;
            cfg.output.unwritable_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(format) = self.format {
            cfg.output.format = format;
        }
        if let Some(mode) = self.thread_renames {
            cfg.output.thread_renames = mode;
        }
        cfg.output.include_exec |= self.include_exec;
        cfg.output.include_kernel |= self.include_kernel;
        let storm = &mut cfg.storm;
        for (name, given, value) in [
            ("thread-rate", self.thread_rate, &mut storm.thread_rate),
            ("thread-burst", self.thread_burst, &mut storm.thread_burst),
            ("process-rate", self.process_rate, &mut storm.process_rate),
            (
                "process-burst",
                self.process_burst,
                &mut storm.process_burst,
            ),
        ] {
            if let Some(given) = given {
                *value = checks::in_range(given.into(), &checks::RATE).map_err(flag(name))? as u32;
            }
        }
        if let Some(bytes) = self.priority_ring_bytes {
            cfg.capture.priority_ring_bytes =
                checks::ring_bytes(bytes.into()).map_err(flag("priority-ring-bytes"))?;
        }
        if let Some(bytes) = self.thread_ring_bytes {
            cfg.capture.thread_ring_bytes =
                checks::ring_bytes(bytes.into()).map_err(flag("thread-ring-bytes"))?;
        }
        if let Some(listen) = self.metrics_listen {
            cfg.sinks.prometheus = Some(config::PrometheusSink { listen });
        }
        Ok(())
    }
}
