//! The daemon's configuration: a TOML file, by default [`DEFAULT_PATH`].
//!
//! Reading a file reports every problem in it at once, each with its line and
//! column: syntax errors first (the rest of a broken file cannot be trusted),
//! otherwise every unknown key, wrong type and out-of-range or malformed
//! value. `deploy/config.toml` documents every key.
//!
//! How: the file is parsed into a spanned tree and deserialized with serde
//! (`deny_unknown_fields`); each failure is recorded and the key it points at
//! dropped, until the rest deserializes (`collect.rs`). Values are then checked
//! against their spans (`validate.rs`) into the plain types below.

mod collect;
mod error;
mod raw;
mod runtime;
mod sinks;
#[cfg(test)]
mod tests;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Diagnostic};
pub use sinks::{
    AlertmanagerSink, EndpointError, Facility, PrometheusSink, SinksConfig, SyslogSink,
    SyslogTarget,
};

pub use crate::identity::HostConfig;
use crate::noise::ThreadRenames;
use crate::output::Format;
use crate::rules::{AllowConfig, RulesConfig};
use crate::util::glob::Pattern;

/// The checks values of the file pass, for the command line to put its
/// flags through: both accept exactly the same values.
pub mod checks {
    pub use super::validate::{RATE, UNWRITABLE_TIMEOUT_SECS, in_range, output_path, ring_bytes};
}

/// Larger files are refused unread: a configuration is a few KiB, and
/// `--config /dev/zero` must not read until memory runs out.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads at most [`MAX_FILE_BYTES`] of `path`, which must be a regular file.
///
/// Opening a FIFO blocks until a writer comes, and reading a device or a
/// FIFO may never end; the daemon reads its configuration on SIGHUP, where
/// a hang would stop it from acting on any later signal. So the type is
/// checked before opening (nothing that is not a regular file is opened at
/// all), the open itself cannot block (`O_NONBLOCK`, which is then without
/// effect on a regular file's reads), and the opened file's type is checked
/// again, in case the path was swapped in between.
fn read_limited(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let regular = |meta: &std::fs::Metadata| match file_kind(meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(ConfigError::NotRegular {
            path: path.to_owned(),
            kind,
        }),
    };
    regular(&std::fs::metadata(path).map_err(read)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read)?;
    regular(&file.metadata().map_err(read)?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, for the message refusing it;
/// `None` for a regular file.
fn file_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_file() {
        None
    } else if file_type.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_dir() {
        Some("a directory")
    } else {
        Some("not a regular file")
    }
}

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/rename-audit/config.toml";

/// A validated configuration. Every key of the file is optional;
/// [`Config::default`] is what an empty or missing default file gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub output: OutputConfig,
    pub capture: CaptureConfig,
    pub storm: StormConfig,
    pub rules: RulesConfig,
    pub allow: AllowConfig,
    pub sinks: SinksConfig,
    /// `[host]`: the host's name and labels on every event and alert.
    pub host: HostConfig,
}

/// `[output]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    pub path: OutputTarget,
    /// JSON lines or readable lines.
    pub format: Format,
    /// Report exec renames (otherwise they only set the baseline name).
    pub include_exec: bool,
    /// Report renames done by kernel threads.
    pub include_kernel: bool,
    /// Which thread renames are written.
    pub thread_renames: ThreadRenames,
    /// Executables whose thread renames are not written under
    /// [`ThreadRenames::All`] unless a rule matched.
    pub thread_renames_allow: Vec<Pattern>,
    /// How long the output may stay unwritable (disk full, ...) before the
    /// daemon stops with a non-zero exit status.
    pub unwritable_timeout: std::time::Duration,
}

impl OutputConfig {
    pub const DEFAULT_UNWRITABLE_TIMEOUT_SECS: u64 = 120;
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            path: OutputTarget::default(),
            format: Format::default(),
            include_exec: false,
            include_kernel: false,
            thread_renames: ThreadRenames::default(),
            thread_renames_allow: Vec::new(),
            unwritable_timeout: std::time::Duration::from_secs(
                Self::DEFAULT_UNWRITABLE_TIMEOUT_SECS,
            ),
        }
    }
}

/// Where the event stream goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OutputTarget {
    /// `-`
    #[default]
    Stdout,
    /// An absolute path, appended to.
    File(PathBuf),
}

/// `[capture]`: sizes of the kernel-side buffers, fixed at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Bytes of the ring for process renames and lifecycle records; `None`
    /// (0 in the file) sizes it
    /// by the number of CPUs. Otherwise a power of two of at least a page.
    pub priority_ring_bytes: Option<u64>,
    /// Bytes of the ring for thread renames, as above.
    pub thread_ring_bytes: Option<u64>,
    /// Threads the kernel can track as storming at once.
    pub storm_slots: u32,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            priority_ring_bytes: None,
            thread_ring_bytes: None,
            storm_slots: 4096,
        }
    }
}

/// `[storm]`: per-thread token buckets above which renames are summarized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StormConfig {
    /// Thread renames per second, per thread.
    pub thread_rate: u32,
    pub thread_burst: u32,
    /// Process (main-thread) renames per second, per thread.
    pub process_rate: u32,
    pub process_burst: u32,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            thread_rate: 100,
            thread_burst: 1000,
            process_rate: 20_000,
            process_burst: 20_000,
        }
    }
}

impl Config {
    /// Reads and validates `path`. A missing file is an error: use this for a
    /// file the user named.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = read_limited(path)?;
        Config::parse_bytes(&bytes, path)
    }

    /// Like [`Config::load`], but a file that does not exist gives the
    /// defaults: use this for [`DEFAULT_PATH`].
    pub fn load_or_default(path: &Path) -> Result<Config, ConfigError> {
        match read_limited(path) {
            Ok(bytes) => Config::parse_bytes(&bytes, path),
            Err(ConfigError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Config::default())
            }
            Err(e) => Err(e),
        }
    }

    /// Validates the text of a configuration file; `path` only names it in
    /// diagnostics.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (raw, mut problems) = collect::deserialize::<raw::File>(text);
        let config = validate::validate(raw, text, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::invalid(path, text, problems))
        }
    }

    fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Config, ConfigError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Config::parse(text, path),
            Err(e) => {
                let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                let problem = collect::Problem {
                    span: Some(valid.len()..valid.len()),
                    message: "the file is not UTF-8, as TOML requires".to_owned(),
                };
                Err(ConfigError::invalid(path, valid, vec![problem]))
            }
        }
    }
}

/// `rename-audit check-config FILE`: the configuration in `path`, or every
/// problem in it.
pub fn check(path: &Path) -> Result<Config, ConfigError> {
    Config::load(path)
}
