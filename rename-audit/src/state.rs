//! The state directory: what the current run has written so far, so that
//! the next start can report the blind window from this run's last written
//! record to the new start (`monitoring-gap`), and whether this run stopped
//! cleanly (a restart or upgrade: its last record is `agent-stopped`) or
//! not (killed, crashed, power lost).
//!
//! One small JSON file, replaced whole (written beside it, then renamed),
//! so a kill at any moment leaves either the old or the new content.
use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Where the state lives when neither `--state-dir` nor systemd's
/// `$STATE_DIRECTORY` (from `StateDirectory=`) says otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/rename-audit";

const FILE: &str = "last-run.json";
/// `agent.id`, made once and kept for every later run (and upgrade).
const AGENT_ID_FILE: &str = "agent-id";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("creating the state directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a rename-audit state file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A run as the state file records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its `agent.ephemeral_id`.
    pub ephemeral_id: String,
    /// `event.sequence` of the last record it wrote.
    pub sequence: u64,
    /// `@timestamp` of that record, in nanoseconds since the Unix epoch.
    pub last_event_unix_ns: i128,
    /// It wrote its `agent-stopped` record and ended cleanly.
    pub stopped: bool,
}

/// The directory the daemon keeps its state in: the flag, else the first
/// of systemd's `$STATE_DIRECTORY`, else [`DEFAULT_DIR`].
pub fn resolve_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    // systemd separates several StateDirectory= entries with colons.
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|v| {
            let v = v.to_str()?.split(':').next()?.to_owned();
            (!v.is_empty()).then(|| PathBuf::from(v))
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// This host's `agent.id`: the UUID in the state directory's `agent-id`,
/// made (and synced to disk) the first time. An error means it cannot be
/// kept, and neither can anything else in `dir`.
pub fn agent_id(dir: &Path) -> Result<String, StateError> {
    let path = dir.join(AGENT_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match uuid::Uuid::parse_str(text.trim()) {
            Ok(id) => return Ok(id.hyphenated().to_string()),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "not an agent id: replacing it with a new one");
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // A directory unreadable or not a directory: it cannot keep an id.
        Err(source) => return Err(StateError::Read { path, source }),
    }
    create_dir(dir)?;
    let id = crate::identity::new_agent_id();
    let tmp = dir.join(format!("{AGENT_ID_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(format!("{id}\n").as_bytes())?;
        // Made once, kept for ever: a power cut must not lose it.
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|source| StateError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(id)
}

/// Creates `dir` (owner-only) when it is missing.
fn create_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::Create {
            path: dir.to_path_buf(),
            source,
        })
}

/// The state file of this run.
pub struct StateFile {
    path: PathBuf,
    tmp: PathBuf,
    /// The sequence number last saved, so an idle daemon writes nothing.
    saved: Option<(u64, bool)>,
}

impl StateFile {
    /// Creates the directory (owner-only) when it is missing.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        create_dir(dir)?;
        Ok(Self {
            path: dir.join(FILE),
            tmp: dir.join(format!("{FILE}.tmp")),
            saved: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the previous run left; `None` when no run has been here.
    pub fn previous(&self) -> Result<Option<RunRecord>, StateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Parse {
                path: self.path.clone(),
                source,
            })
    }

    /// Whether the file already says what `run` does.
    fn saved_as(&self, run: &RunRecord) -> bool {
        self.saved == Some((run.sequence, run.stopped))
    }

    /// Replaces the file with `run`, unless it already says the same.
    /// The clean stop is synced to disk; the rest need only outlive a kill.
    pub fn save(&mut self, run: &RunRecord) -> Result<(), StateError> {
        if self.saved_as(run) {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&self.tmp)?;
            let mut json = serde_json::to_vec(run).map_err(std::io::Error::other)?;
            json.push(b'\n');
            file.write_all(&json)?;
            if run.stopped {
                file.sync_all()?;
            }
            std::fs::rename(&self.tmp, &self.path)
        };
        write().map_err(|source| StateError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.saved = Some((run.sequence, run.stopped));
        Ok(())
    }
}

/// This run's side of the state file: the last record written, saved
/// between batches (and only when it changed), and the clean stop.
pub struct Tracker {
    file: Option<StateFile>,
    previous: Option<RunRecord>,
    /// Sequence and `@timestamp` (Unix ns) of the last record written.
    last: Option<(u64, i128)>,
    /// The last save failed (warned once per streak of failures).
    failing: bool,
    /// When the file was last replaced during the run.
    saved_at: Option<std::time::Instant>,
}

/// During a run the file is replaced at most this often. Replacing it
/// evicts the old file, which waits for its writeback: once per batch, a
/// busy pipeline stalled up to 70 ms at a time on it. A kill then loses at
/// most this much of the gap's start, which the gap reports earlier (longer),
/// never later.
pub const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Tracker {
    /// The state file in `dir` and what the previous run left in it; on
    /// any error the daemon runs on without them and says why (no gap can
    /// be reported).
    pub fn open_or_warn(dir: &Path) -> Self {
        let file = match StateFile::open(dir) {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(%error, "no state directory: no monitoring gap can be reported across restarts");
                return Self::disabled();
            }
        };
        let previous = file.previous().unwrap_or_else(|error| {
            tracing::warn!(%error, "the previous run's state cannot be read: no gap is reported for it");
            None
        });
        Self {
            file: Some(file),
            previous,
            last: None,
            failing: false,
            saved_at: None,
        }
    }

    /// No state kept (tests of the pipeline alone, or a state directory
    /// that cannot be written).
    pub fn disabled() -> Self {
        Self {
            file: None,
            previous: None,
            last: None,
            failing: false,
            saved_at: None,
        }
    }

    /// The previous run, however it ended; once.
    pub fn take_previous(&mut self) -> Option<RunRecord> {
        self.previous.take()
    }

    /// A record was written.
    pub fn written(&mut self, sequence: u64, timestamp: time::OffsetDateTime) {
        self.last = Some((sequence, timestamp.unix_timestamp_nanos()));
    }

    /// Saves the last record written; `stopped` once the run ends cleanly.
    /// During the run, at most every [`SAVE_EVERY`]: a later call saves
    /// what changed meanwhile.
    pub fn save(&mut self, stopped: bool) {
        self.save_at(stopped, std::time::Instant::now());
    }

    fn save_at(&mut self, stopped: bool, now: std::time::Instant) {
        let (Some(file), Some((sequence, last_event_unix_ns))) = (&mut self.file, self.last) else {
            return;
        };
        if !stopped
            && self
                .saved_at
                .is_some_and(|at| now.saturating_duration_since(at) < SAVE_EVERY)
        {
            return;
        }
        let run = RunRecord {
            ephemeral_id: crate::event::run_id().to_owned(),
            sequence,
            last_event_unix_ns,
            stopped,
        };
        if file.saved_as(&run) {
            return;
        }
        self.saved_at = Some(now);
        match file.save(&run) {
            Ok(()) => self.failing = false,
            Err(error) if !self.failing => {
                self.failing = true;
                tracing::warn!(%error, "cannot save the run's state: a gap after a kill or crash may be reported short");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_run_reads_back_and_the_flag_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = StateFile::open(&dir.path().join("sub")).unwrap();
        assert_eq!(file.previous().unwrap(), None, "no run yet");
        let run = RunRecord {
            ephemeral_id: "x".into(),
            sequence: 7,
            last_event_unix_ns: 1_700_000_000_123_456_789,
            stopped: false,
        };
        file.save(&run).unwrap();
        assert_eq!(file.previous().unwrap(), Some(run));
        std::fs::write(file.path(), b"{").unwrap();
        assert!(matches!(file.previous(), Err(StateError::Parse { .. })));
        assert_eq!(resolve_dir(Some(Path::new("/s"))), PathBuf::from("/s"));
    }

    #[test]
    fn during_a_run_the_file_is_replaced_at_most_every_interval_and_at_the_stop() {
        let dir = tempfile::tempdir().unwrap();
        let mut tracker = Tracker::open_or_warn(dir.path());
        let saved = || -> (u64, bool) {
            let run: RunRecord =
                serde_json::from_slice(&std::fs::read(dir.path().join("last-run.json")).unwrap())
                    .unwrap();
            (run.sequence, run.stopped)
        };
        let t0 = std::time::Instant::now();
        let at = time::OffsetDateTime::UNIX_EPOCH;
        tracker.written(1, at);
        tracker.save_at(false, t0);
        assert_eq!(saved(), (1, false), "the first save at once");
        tracker.written(2, at);
        tracker.save_at(false, t0 + SAVE_EVERY / 2);
        assert_eq!(saved(), (1, false), "held back within the interval");
        tracker.save_at(false, t0 + SAVE_EVERY);
        assert_eq!(saved(), (2, false), "saved by a later call");
        tracker.written(3, at);
        tracker.save_at(true, t0 + SAVE_EVERY);
        assert_eq!(saved(), (3, true), "the clean stop is never held back");
    }

    #[test]
    fn the_agent_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        let id = agent_id(&sub).unwrap();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert_eq!(agent_id(&sub).unwrap(), id, "read back, not made again");
        std::fs::write(sub.join(AGENT_ID_FILE), "garbage").unwrap();
        let new = agent_id(&sub).unwrap();
        assert_ne!(new, id, "a damaged file is replaced");
        assert_eq!(agent_id(&sub).unwrap(), new);
        // A file where the directory should be: no id can be kept.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(agent_id(&file).is_err());
    }
}
