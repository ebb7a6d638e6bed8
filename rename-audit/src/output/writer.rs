//! The destination of the JSON lines: stdout or a file. Plain blocking I/O
//! on its own thread, so a slow reader delays only this thread, never the
//! ring-buffer drain.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::event::Event;

use super::{Format, ecs, text};

/// Where the lines go; `-` on the command line means stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputDest {
    Stdout,
    File(PathBuf),
}

impl FromStr for OutputDest {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" {
            OutputDest::Stdout
        } else {
            OutputDest::File(PathBuf::from(s))
        })
    }
}

impl fmt::Display for OutputDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputDest::Stdout => f.write_str("stdout"),
            OutputDest::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    // The OS error is part of the message rather than a `source`, so a
    // caller printing the error chain does not repeat it.
    #[error("cannot open output file {}: {error}; {hint}", path.display())]
    Open {
        path: PathBuf,
        error: io::Error,
        hint: String,
    },
    #[error(
        "cannot write events to stdout: {error}; start rename-audit with stdout open or use --output PATH"
    )]
    Stdout { error: io::Error },
}

/// Lines are handed to the OS once this much is buffered, and at every
/// [`JsonLinesWriter::flush`].
const WRITE_AT: usize = 64 * 1024;
/// While the destination fails (disk full, ...), unwritten lines are kept
/// up to this much; past it new lines are dropped and counted, so a dead
/// destination cannot grow memory without bound.
const MAX_BACKLOG: usize = 8 * 1024 * 1024;

/// Writes events as ECS JSON lines. Owns its buffer: each event is
/// serialized straight into it, and it goes to the destination in large
/// writes, so the cost per event is one serialization and no syscall.
pub struct JsonLinesWriter {
    file: File,
    dest: OutputDest,
    buf: Vec<u8>,
    format: Format,
    color: bool,
    syslog_prefix: bool,
    broken: bool,
    lines_dropped: u64,
}

impl JsonLinesWriter {
    /// Opens the destination now, so that a bad path stops start-up before
    /// anything is attached. A file is created with mode 0640 if missing
    /// and appended to (a log rotator's copy-truncate stays safe).
    pub fn open(dest: &OutputDest) -> Result<Self, OutputError> {
        let file = match dest {
            OutputDest::Stdout => open_stdout()?,
            OutputDest::File(path) => open_file(path)?,
        };
        Ok(Self::with_file(file, dest.clone()))
    }

    fn with_file(file: File, dest: OutputDest) -> Self {
        JsonLinesWriter {
            file,
            dest,
            buf: Vec::with_capacity(WRITE_AT + 4096),
            format: Format::Json,
            color: false,
            syslog_prefix: false,
            broken: false,
            lines_dropped: 0,
        }
    }

    /// Prefixes each line with `<N>`, its syslog priority (see
    /// [`ecs::syslog_priority`]), which journald strips and turns into the
    /// entry's priority. Only for stdout connected to the journal (see
    /// [`stdout_is_journal`]): elsewhere the prefix would break the JSON.
    pub fn with_syslog_prefix(mut self, on: bool) -> Self {
        self.syslog_prefix = on;
        self
    }

    /// Writes lines in `format`; `color` adds ANSI colours to readable
    /// lines (only for a terminal: see [`super::stdout_wants_color`]).
    pub fn with_format(mut self, format: Format, color: bool) -> Self {
        self.format = format;
        self.color = color && format == Format::Text;
        self
    }

    pub fn dest(&self) -> &OutputDest {
        &self.dest
    }

    /// Lines refused because the destination was closed (broken pipe) or
    /// the backlog was full. Never reset.
    pub fn lines_dropped(&self) -> u64 {
        self.lines_dropped
    }

    /// The reader of stdout went away (EPIPE); every later line is dropped.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Serializes `ev` into the buffer, handing the buffer to the OS once it
    /// is large. An error leaves the lines buffered (up to a bound) for the
    /// next call; the error is returned so it can be logged. After a broken
    /// pipe every call fails with [`io::ErrorKind::BrokenPipe`] and counts
    /// the line as dropped: check [`Self::is_broken`] to log it once.
    pub fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        if self.broken {
            self.lines_dropped += 1;
            return Err(broken_pipe());
        }
        if self.buf.len() >= MAX_BACKLOG {
            // Give the destination one more chance before dropping.
            if let Err(err) = self.write_buffered() {
                self.lines_dropped += 1;
                return Err(io::Error::new(
                    err.kind(),
                    format!(
                        "output {} failed and {} bytes are waiting: line dropped: {err}",
                        self.dest,
                        self.buf.len()
                    ),
                ));
            }
        }
        if self.syslog_prefix {
            let prio = ecs::syslog_priority(ev);
            self.buf.extend_from_slice(&[b'<', b'0' + prio, b'>']);
        }
        match self.format {
            Format::Json => ecs::write_json_line(ev, &mut self.buf),
            Format::Text => text::write_text_line(ev, &mut self.buf, self.color),
        }
        if self.buf.len() >= WRITE_AT {
            self.write_buffered()?;
        }
        Ok(())
    }

    /// Hands every buffered line to the OS. No fsync: a line is in the page
    /// cache, visible to readers, and on disk within the kernel's writeback
    /// delay. Call after every drained batch.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(broken_pipe());
        }
        self.write_buffered()
    }

    /// [`Self::flush`], then waits until a file's data is on the disk
    /// (fdatasync). For a pipe, socket or terminal only flushes.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        match self.file.sync_data() {
            // EINVAL: a pipe, socket or tty, which has nothing to sync.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        }
    }

    /// Flushes, then reopens a file destination by path, for log rotation
    /// that renames the file. Stdout is left as it is.
    pub fn reopen(&mut self) -> Result<(), OutputError> {
        let OutputDest::File(path) = &self.dest else {
            return Ok(());
        };
        let path = path.clone();
        // Lines that fail to reach the old file go to the new one.
        let _ = self.write_buffered();
        self.file = open_file(&path)?;
        Ok(())
    }

    /// Writes out the buffer, keeping whatever the OS did not take.
    fn write_buffered(&mut self) -> io::Result<()> {
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            match self.file.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..done);
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.broken = true;
            // Lines still buffered (a partly written one included) will
            // never be written.
            self.lines_dropped += self.buf.iter().filter(|&&b| b == b'\n').count() as u64;
            self.buf = Vec::new();
            return Err(broken_pipe());
        }
        // Keep the buffer's memory bounded after a backlog drains.
        if self.buf.is_empty() && self.buf.capacity() > 4 * WRITE_AT {
            self.buf = Vec::with_capacity(WRITE_AT + 4096);
        }
        result
    }
}

impl Drop for JsonLinesWriter {
    fn drop(&mut self) {
        if !self.broken {
            let _ = self.write_buffered();
        }
    }
}

fn broken_pipe() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the reader of the output went away (broken pipe); later events are dropped",
    )
}

/// True when stdout is the systemd journal's stream (`JOURNAL_STREAM`
/// names its device and inode), where a `<N>` prefix sets a line's priority.
pub fn stdout_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = var.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    match File::from(fd).metadata() {
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt;
            meta.dev() == dev && meta.ino() == ino
        }
        Err(_) => false,
    }
}

/// A private handle on fd 1, so writes bypass std's line-buffered `Stdout`
/// (one syscall per line) and dropping it does not close stdout.
fn open_stdout() -> Result<File, OutputError> {
    // Rust's runtime ignores SIGPIPE before main, so a closed reader shows
    // up as EPIPE from write; make sure nothing reset that, or the first
    // write would kill the daemon without a word.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let fd = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| OutputError::Stdout { error })?;
    Ok(File::from(fd))
}

fn open_file(path: &Path) -> Result<File, OutputError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|error| OutputError::Open {
            path: path.to_owned(),
            hint: open_hint(path, &error),
            error,
        })
}

/// What to do about a failed open, in the terms of the error.
fn open_hint(path: &Path, err: &io::Error) -> String {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
        _ => ".".to_owned(),
    };
    match err.raw_os_error() {
        Some(libc::ENOENT) => {
            format!("the directory {dir} does not exist: create it or choose another path")
        }
        Some(libc::ENOTDIR) => format!("a component of {dir} is not a directory: fix the path"),
        Some(libc::EISDIR) => "it is a directory: name a file inside it".to_owned(),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "the path or {dir} is not writable by this user: fix its permissions or choose another path"
        ),
        Some(libc::EROFS) => format!(
            "{dir} is on a read-only file system (under systemd with ProtectSystem=strict, add it to ReadWritePaths= or use LogsDirectory=)"
        ),
        _ => "check the path, or use --output - to write to stdout".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Class, Lost, LostReason};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use time::macros::datetime;

    fn lost_event(seq: u64) -> Event {
        Event {
            sequence: seq,
            timestamp: datetime!(2026-11-23 12:00:00 UTC),
            host: Arc::from("h"),
            process: None,
            body: Body::Lost(Lost {
                class: Class::Thread,
                reason: LostReason::RingFull,
                count: 3,
            }),
            alert: None,
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("read output file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn dash_is_stdout_anything_else_a_file() {
        assert_eq!("-".parse::<OutputDest>(), Ok(OutputDest::Stdout));
        assert_eq!(
            "/var/log/x.jsonl".parse::<OutputDest>(),
            Ok(OutputDest::File("/var/log/x.jsonl".into()))
        );
    }

    #[test]
    fn file_is_created_0640_and_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let dest = OutputDest::File(path.clone());
        {
            let mut w = JsonLinesWriter::open(&dest).expect("open new file");
            w.write_event(&lost_event(1)).expect("write");
            w.flush().expect("flush");
            assert_eq!(lines(&path).len(), 1, "a flushed line is in the file");
        }
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "created with at most 0640, got {mode:o}");
        {
            let mut w = JsonLinesWriter::open(&dest).expect("reopen existing file");
            w.write_event(&lost_event(2)).expect("write");
            w.sync().expect("sync");
        }
        let got = lines(&path);
        assert_eq!(got.len(), 2, "second open appends");
        assert_eq!(got[1]["event"]["sequence"], 2);
    }

    #[test]
    fn nothing_reaches_the_file_before_flush_everything_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let mut w = JsonLinesWriter::open(&OutputDest::File(path.clone())).expect("open");
        for seq in 0..10 {
            w.write_event(&lost_event(seq)).expect("write");
        }
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            0,
            "small batches stay buffered"
        );
        w.flush().expect("flush");
        let got = lines(&path);
        assert_eq!(got.len(), 10);
        for (i, v) in got.iter().enumerate() {
            assert_eq!(v["event"]["sequence"], i as u64, "lines in order");
        }
    }

    #[test]
    fn large_batches_are_written_without_waiting_for_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let mut w = JsonLinesWriter::open(&OutputDest::File(path.clone())).expect("open");
        let n = 5_000;
        for seq in 0..n {
            w.write_event(&lost_event(seq)).expect("write");
        }
        let written = std::fs::read(&path).expect("read").len();
        assert!(
            written >= WRITE_AT,
            "buffer past {WRITE_AT} bytes was written, got {written}"
        );
        drop(w);
        assert_eq!(lines(&path).len(), n as usize, "drop flushes the rest");
    }

    #[test]
    fn unwritable_paths_name_the_path_the_error_and_a_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("no/such/dir/out.jsonl");
        let err = JsonLinesWriter::open(&OutputDest::File(missing.clone()))
            .err()
            .expect("missing directory must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&missing.display().to_string()),
            "path in: {msg}"
        );
        assert!(
            msg.contains("No such file or directory"),
            "OS error in: {msg}"
        );
        assert!(msg.contains("does not exist: create it"), "hint in: {msg}");

        let err = JsonLinesWriter::open(&OutputDest::File(dir.path().to_owned()))
            .err()
            .expect("a directory must fail");
        assert!(err.to_string().contains("name a file inside it"), "{err}");

        let file = dir.path().join("plain");
        std::fs::write(&file, b"").expect("make file");
        let err = JsonLinesWriter::open(&OutputDest::File(file.join("x")))
            .err()
            .expect("a file as directory must fail");
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
        // SAFETY: pipe2 succeeded, so both fds are open and owned by us.
        unsafe {
            (
                File::from(OwnedFd::from_raw_fd(fds[0])),
                File::from(OwnedFd::from_raw_fd(fds[1])),
            )
        }
    }

    #[test]
    fn closed_reader_gives_broken_pipe_once_then_counts_drops() {
        // Ignore SIGPIPE as `open(Stdout)` does (the test harness does too).
        let _ = open_stdout().expect("stdout");
        let (reader, writer) = pipe();
        let mut w = JsonLinesWriter::with_file(writer, OutputDest::Stdout);
        w.write_event(&lost_event(1)).expect("buffered");
        drop(reader);
        let err = w.flush().expect_err("write to a closed pipe");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(w.is_broken());
        assert_eq!(w.lines_dropped(), 1, "the buffered line is counted");
        let err = w.write_event(&lost_event(2)).expect_err("still broken");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(w.lines_dropped(), 2);
        assert_eq!(
            w.flush().expect_err("still broken").kind(),
            io::ErrorKind::BrokenPipe
        );
        assert!(w.sync().is_err());
    }

    #[test]
    fn pipe_receives_whole_lines_and_sync_is_fine_on_a_pipe() {
        let (mut reader, writer) = pipe();
        let mut w = JsonLinesWriter::with_file(writer, OutputDest::Stdout);
        w.write_event(&lost_event(7)).expect("write");
        w.sync().expect("sync on a pipe only flushes");
        drop(w);
        let mut got = String::new();
        io::Read::read_to_string(&mut reader, &mut got).expect("read pipe");
        assert!(got.ends_with('\n') && got.lines().count() == 1, "{got:?}");
    }

    #[test]
    fn syslog_prefix_precedes_each_line() {
        let (mut reader, writer) = pipe();
        let mut w = JsonLinesWriter::with_file(writer, OutputDest::Stdout).with_syslog_prefix(true);
        w.write_event(&lost_event(1)).expect("write");
        drop(w);
        let mut got = String::new();
        io::Read::read_to_string(&mut reader, &mut got).expect("read pipe");
        assert!(
            got.starts_with("<4>{"),
            "lost records are warnings: {got:?}"
        );
    }

    #[test]
    fn failing_destination_keeps_a_bounded_backlog_and_counts_drops() {
        let full = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full");
        let mut w = JsonLinesWriter::with_file(full, OutputDest::File("/dev/full".into()));
        let mut errors = 0;
        let mut seq = 0;
        while w.lines_dropped() == 0 {
            seq += 1;
            assert!(seq < 1_000_000, "backlog never hit its bound");
            if let Err(e) = w.write_event(&lost_event(seq)) {
                assert!(
                    e.to_string().contains("No space left")
                        || e.raw_os_error() == Some(libc::ENOSPC),
                    "{e}"
                );
                errors += 1;
            }
        }
        assert!(errors > 0, "write errors are reported");
        assert!(
            w.buf.len() >= MAX_BACKLOG && w.buf.len() < MAX_BACKLOG + 4096,
            "backlog bounded: {}",
            w.buf.len()
        );
        let kept = w.buf.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(
            kept + w.lines_dropped(),
            seq,
            "every line is kept or counted"
        );
        assert!(!w.is_broken(), "a full disk is not a broken pipe");
        w.buf.clear(); // do not retry on drop
    }

    #[test]
    fn reopen_follows_a_renamed_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let rotated = dir.path().join("out.jsonl.1");
        let mut w = JsonLinesWriter::open(&OutputDest::File(path.clone())).expect("open");
        w.write_event(&lost_event(1)).expect("write");
        w.flush().expect("flush");
        std::fs::rename(&path, &rotated).expect("rotate");
        w.reopen().expect("reopen");
        w.write_event(&lost_event(2)).expect("write");
        w.flush().expect("flush");
        assert_eq!(lines(&rotated)[0]["event"]["sequence"], 1);
        assert_eq!(lines(&path)[0]["event"]["sequence"], 2);
    }
}
