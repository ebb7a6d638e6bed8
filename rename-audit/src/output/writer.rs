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
        "cannot use {} as the output: it is {kind}; name a regular file, a FIFO or - for stdout",
        path.display()
    )]
    Unsupported { path: PathBuf, kind: &'static str },
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
///
/// The buffer only ever holds whole lines. A short write (a disk filling
/// up) leaves the head of a line in the file; `written` remembers how much,
/// so the rest follows when the destination recovers, or, if the line is
/// given up, the file is cut back to where the line began: a reader never
/// sees half a line, and every line is either written whole or counted in
/// [`Self::lines_lost`].
pub struct JsonLinesWriter {
    file: File,
    dest: OutputDest,
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already handed to the OS: the head of
    /// the first line, after a short write.
    written: usize,
    format: Format,
    color: bool,
    syslog_prefix: bool,
    broken: bool,
    /// The last write failed.
    failing: bool,
    lines_lost: u64,
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
            written: 0,
            format: Format::Json,
            color: false,
            syslog_prefix: false,
            broken: false,
            failing: false,
            lines_lost: 0,
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

    /// Lines that will never be written: refused because the backlog was
    /// full or the reader was gone, or given up at [`Self::close`]. Never
    /// reset.
    pub fn lines_lost(&self) -> u64 {
        self.lines_lost
    }

    /// The reader of stdout went away (EPIPE); every later line is lost.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Nothing is waiting to be written.
    pub fn is_drained(&self) -> bool {
        self.buf.is_empty()
    }

    /// Serializes `ev` into the buffer, handing the buffer to the OS once it
    /// is large. An error leaves the lines buffered (up to a bound) for the
    /// next call; the error is returned so it can be logged. A line that
    /// does not fit the backlog, or comes after a broken pipe, is lost and
    /// counted, and the call says so with [`WriteOutcome::Lost`]; the next
    /// [`Self::flush`] retries the destination.
    pub fn write_event(&mut self, ev: &Event) -> io::Result<WriteOutcome> {
        if self.broken {
            self.lines_lost += 1;
            return Ok(WriteOutcome::Lost);
        }
        if self.buf.len() >= MAX_BACKLOG {
            // The destination is retried at every flush (each batch), not
            // for every line: a full disk must not cost a syscall per event.
            self.lines_lost += 1;
            return Ok(WriteOutcome::Lost);
        }
        if self.syslog_prefix {
            let prio = ecs::syslog_priority(ev);
            self.buf.extend_from_slice(&[b'<', b'0' + prio, b'>']);
        }
        match self.format {
            Format::Json => ecs::write_json_line(ev, &mut self.buf),
            Format::Text => text::write_text_line(ev, &mut self.buf, self.color),
        }
        // While the destination fails, only `flush` retries it.
        if self.buf.len() >= WRITE_AT && !self.failing {
            self.write_buffered()?;
        }
        Ok(WriteOutcome::Buffered)
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

    /// Reopens a file destination by path, for log rotation that renames
    /// the file (the logrotate convention, on SIGHUP). What is buffered goes
    /// to the old file first, so a line written between the rename and the
    /// reopen ends up in the rotated file; what the old file does not take
    /// goes to the new one, whole. Stdout is left as it is. On error the old
    /// file stays in use.
    pub fn reopen(&mut self) -> Result<(), OutputError> {
        let OutputDest::File(path) = &self.dest else {
            return Ok(());
        };
        let file = open_file(path)?;
        if !self.broken && self.write_buffered().is_err() {
            self.cut_partial_line();
        }
        self.file = file;
        Ok(())
    }

    /// Flushes for the last time; lines that still cannot be written are
    /// counted as lost (a head already in the file is cut off again).
    /// Returns how many lines this call gave up.
    pub fn close(&mut self) -> (u64, Option<io::Error>) {
        if self.broken {
            // Everything was counted when the pipe broke.
            return (0, None);
        }
        let error = match self.flush() {
            Ok(()) => return (0, None),
            Err(e) => e,
        };
        let lost = self.abandon();
        (lost, Some(error))
    }

    /// Writes out the buffer; keeps every line the OS did not take whole.
    fn write_buffered(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        while self.written < self.buf.len() {
            match self.file.write(&self.buf[self.written..]) {
                Ok(0) => {
                    result = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Forget the lines that are out; a line's written head stays, with
        // `written` pointing past it.
        let out = self.buf[..self.written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        self.buf.drain(..out);
        self.written -= out;
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.broken = true;
            self.abandon();
            return Err(broken_pipe());
        }
        self.failing = result.is_err();
        // Keep the buffer's memory bounded after a backlog drains.
        if self.buf.is_empty() && self.buf.capacity() > 4 * WRITE_AT {
            self.buf = Vec::with_capacity(WRITE_AT + 4096);
        }
        result
    }

    /// Gives up every buffered line: counts them, cuts a written head.
    fn abandon(&mut self) -> u64 {
        self.cut_partial_line();
        let lost = self.buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.lines_lost += lost;
        self.buf = Vec::new();
        lost
    }

    /// A line's head is in the file but its tail will not follow: truncate
    /// the file back to where the line began. Only a regular file can be
    /// cut; a pipe's reader is gone when this happens.
    fn cut_partial_line(&mut self) {
        if self.written == 0 {
            return;
        }
        let head = self.written as u64;
        self.written = 0;
        let cut = self.file.metadata().and_then(|m| {
            if !m.file_type().is_file() {
                return Ok(());
            }
            self.file.set_len(m.len().saturating_sub(head))
        });
        if let Err(error) = cut {
            tracing::error!(%error, output = %self.dest, "cannot cut a partly written line from the output");
        }
    }
}

/// What [`JsonLinesWriter::write_event`] did with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Taken: it is in the buffer or already written.
    Buffered,
    /// Lost and counted in [`JsonLinesWriter::lines_lost`].
    Lost,
}

impl Drop for JsonLinesWriter {
    fn drop(&mut self) {
        if !self.broken {
            let _ = self.close();
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

/// Opens `path` for appending. Non-blocking at first, so that a FIFO with
/// no reader fails at once (ENXIO) instead of hanging start-up; then back
/// to blocking, so a slow reader only slows this thread. Only regular
/// files, FIFOs and character devices (a terminal, /dev/null) are taken.
fn open_file(path: &Path) -> Result<File, OutputError> {
    let fail = |error: io::Error| OutputError::Open {
        path: path.to_owned(),
        hint: open_hint(path, &error),
        error,
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(fail)?;
    let kind = file.metadata().map_err(fail)?.file_type();
    use std::os::unix::fs::FileTypeExt;
    if !(kind.is_file() || kind.is_fifo() || kind.is_char_device()) {
        return Err(OutputError::Unsupported {
            path: path.to_owned(),
            kind: if kind.is_block_device() {
                "a block device"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            },
        });
    }
    set_blocking(&file).map_err(fail)?;
    Ok(file)
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; F_GETFL
    // and F_SETFL only read and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
        Some(libc::ENXIO) => {
            "it is a FIFO that no process reads: start the reader first, or use a file".to_owned()
        }
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
                sink: None,
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
        assert_eq!(w.lines_lost(), 1, "the buffered line is counted");
        assert_eq!(
            w.write_event(&lost_event(2))
                .expect("refused, not an error"),
            WriteOutcome::Lost
        );
        assert_eq!(w.lines_lost(), 2);
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
        while w.lines_lost() == 0 {
            seq += 1;
            assert!(seq < 1_000_000, "backlog never hit its bound");
            if let Err(e) = w.write_event(&lost_event(seq)) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                errors += 1;
            }
        }
        assert_eq!(
            w.flush().expect_err("still full").raw_os_error(),
            Some(libc::ENOSPC)
        );
        assert!(errors > 0, "write errors are reported");
        assert!(
            w.buf.len() >= MAX_BACKLOG && w.buf.len() < MAX_BACKLOG + 4096,
            "backlog bounded: {}",
            w.buf.len()
        );
        let kept = w.buf.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(kept + w.lines_lost(), seq, "every line is kept or counted");
        assert!(!w.is_broken(), "a full disk is not a broken pipe");
        let (gave_up, error) = w.close();
        assert_eq!(gave_up, kept, "close counts what it cannot write");
        assert!(error.is_some());
        assert_eq!(w.lines_lost(), seq);
    }

    #[test]
    fn a_line_given_up_after_a_short_write_is_cut_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let mut w = JsonLinesWriter::open(&OutputDest::File(path.clone())).expect("open");
        w.write_event(&lost_event(1)).expect("write");
        w.flush().expect("flush");
        let whole = std::fs::read(&path).expect("read");
        // As after a short write: the head of the next line is in the file.
        w.write_event(&lost_event(2)).expect("write");
        let head = 10;
        w.file.write_all(&w.buf[..head]).expect("write a head");
        w.written = head;
        assert_eq!(w.abandon(), 1);
        assert_eq!(std::fs::read(&path).expect("read"), whole, "head cut off");
        assert_eq!(w.lines_lost(), 1);
    }

    #[test]
    fn reopen_after_a_short_write_completes_the_line_in_the_rotated_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let rotated = dir.path().join("out.jsonl.1");
        let mut w = JsonLinesWriter::open(&OutputDest::File(path.clone())).expect("open");
        w.write_event(&lost_event(1)).expect("write");
        w.flush().expect("flush");
        w.write_event(&lost_event(2)).expect("write");
        w.file.write_all(&w.buf[..10]).expect("write a head");
        w.written = 10;
        std::fs::rename(&path, &rotated).expect("rotate");
        w.reopen().expect("reopen");
        w.write_event(&lost_event(3)).expect("write");
        w.flush().expect("flush");
        let old = lines(&rotated);
        assert_eq!(old.len(), 2, "the started line is finished where it began");
        assert_eq!(old[1]["event"]["sequence"], 2);
        assert_eq!(lines(&path)[0]["event"]["sequence"], 3);
        assert_eq!(w.lines_lost(), 0);
    }

    #[test]
    fn odd_targets_are_refused_and_a_fifo_without_reader_does_not_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = JsonLinesWriter::open(&OutputDest::File(fifo.clone()))
            .err()
            .expect("no reader");
        assert!(
            err.to_string().contains("FIFO that no process reads"),
            "{err}"
        );
        // With a reader it works, and writes block again (not EAGAIN).
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("reader");
        let w = JsonLinesWriter::open(&OutputDest::File(fifo)).expect("open with a reader");
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL on an open descriptor.
        let flags = unsafe { libc::fcntl(w.file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "blocking after open");
        drop((w, reader));
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
