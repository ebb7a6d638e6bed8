//! Where `search` and `report` read from: the files given (`-` is stdin),
//! or the configured output file with its rotations, oldest first. Gzip
//! files are recognized by their magic bytes, whatever their name.
//!
//! Memory stays bounded whatever the input holds: lines are read through
//! [`read_line`], which keeps at most [`MAX_LINE`] bytes of a line and
//! skips the rest of a longer one, and gzip is decompressed as a stream
//! into the same fixed buffers, so a gzip bomb or a file without a single
//! newline costs time, not memory. Devices and sockets are refused:
//! `/dev/zero` would never end.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use flate2::read::MultiGzDecoder;

use crate::cli::InputArgs;
use crate::config::{self, Config, OutputTarget};

/// Reads of this size keep the per-line cost down on large logs.
const READ_BUF: usize = 1 << 20;

/// Defined with the flags, whose help states it.
pub use crate::cli::MAX_LINE;

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line is in the buffer, `'\n'` included unless the input ended
    /// without one.
    Line,
    /// A line longer than the cap was read past; the buffer is empty.
    TooLong,
    /// The input has ended.
    Eof,
}

/// Reads one line into `buf` (cleared first), keeping at most `cap` bytes
/// of it: a longer line is consumed to its end without being stored.
pub fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => LineRead::TooLong,
                (false, true) => LineRead::Eof,
                (false, false) => LineRead::Line,
            });
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > cap {
                too_long = true;
                buf.clear();
                // Give the memory back: a line just under the cap must not
                // keep a cap-sized buffer alive per input.
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

/// Skips, at a line start, every complete line in the reader's buffer
/// that does not hold `needle`, up to the start of the first line that
/// does (or of the first line that does not end in the buffer). One search
/// over a megabyte instead of a copy and a search per line: a central store
/// holds a hundred hosts, and `--host` wants one. A line skipped here ends
/// in the buffer, so it is shorter than [`MAX_LINE`] and would not have
/// been counted as too long.
pub fn skip_lines_without(
    reader: &mut dyn BufRead,
    needle: &memchr::memmem::Finder<'_>,
) -> io::Result<()> {
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let Some(last) = memchr::memrchr(b'\n', chunk) else {
            // No complete line here: the line reader takes it from here.
            return Ok(());
        };
        let complete = &chunk[..=last];
        let skip = match needle.find(complete) {
            None => complete.len(),
            Some(at) => memchr::memrchr(b'\n', &complete[..at]).map_or(0, |i| i + 1),
        };
        let found = skip < complete.len();
        reader.consume(skip);
        if found {
            return Ok(());
        }
    }
}

/// One input: a path, or stdin for `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl std::fmt::Display for Input {
    /// A path is escaped like every other text that reaches a terminal: a
    /// rotated file's name comes from the directory, not from the user.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Stdin => f.write_str("stdin"),
            Input::File(p) => f.write_str(&escaped_path(p)),
        }
    }
}

fn escaped_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let mut out = Vec::new();
    crate::output::text::escape_into(&mut out, path.as_os_str().as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// What a file that is not a log is, for the message that refuses it.
fn not_a_log(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        None
    }
}

/// The inputs in reading order.
pub fn inputs(args: &InputArgs) -> Result<Vec<Input>> {
    if !args.files.is_empty() {
        return Ok(args
            .files
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    Input::Stdin
                } else {
                    Input::File(f.clone())
                }
            })
            .collect());
    }
    let cfg = match &args.config {
        Some(path) => Config::load(path),
        None => Config::load_or_default(Path::new(config::DEFAULT_PATH)),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    match cfg.output.path {
        OutputTarget::File(path) => {
            let files = with_rotations(&path)
                .with_context(|| format!("cannot list the rotations of {}", path.display()))?;
            Ok(files.into_iter().map(Input::File).collect())
        }
        OutputTarget::Stdout => bail!(
            "no FILE given and the configuration writes events to stdout (the journal under \
             systemd), not to a file; give a FILE, or read the journal with \
             `journalctl -u rename-audit -o cat | rename-audit search -`"
        ),
    }
}

/// `path` and the files logrotate made of it, oldest first:
/// `path.N[.gz]` from the highest N down, then `path-DATE[.gz]` (dateext) in
/// date order, then `path` itself.
pub fn with_rotations(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(vec![path.to_owned()]);
    };
    let mut numbered = Vec::new();
    let mut dated = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(base) else {
            continue;
        };
        let rest = rest.strip_suffix(".gz").unwrap_or(rest);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(n) = rest.strip_prefix('.').filter(|n| digits(n)) {
            if let Ok(n) = n.parse::<u64>() {
                numbered.push((n, entry.path()));
            }
        } else if let Some(date) = rest.strip_prefix('-').filter(|d| digits(d)) {
            dated.push((date.to_owned(), entry.path()));
        }
    }
    numbered.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    dated.sort();
    let mut files: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    files.extend(dated.into_iter().map(|(_, p)| p));
    if path.exists() || files.is_empty() {
        files.push(path.to_owned());
    }
    Ok(files)
}

/// A buffered reader of the input's lines, decompressing gzip. Regular
/// files and pipes are read (`<(zcat ...)` is a pipe); devices and sockets
/// are refused before they are opened.
pub fn open(input: &Input) -> Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(path) => {
            let shown = escaped_path(path);
            let cannot_open = |e: io::Error| {
                let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                    " (the daemon creates its log root-only: run as root, or search a copy)"
                } else {
                    ""
                };
                anyhow::anyhow!("cannot open {shown}: {e}{hint}")
            };
            let meta = std::fs::metadata(path).map_err(cannot_open)?;
            if let Some(what) = not_a_log(meta.file_type()) {
                bail!("{shown} is {what}, not a log file; not read");
            }
            let file = File::open(path).map_err(cannot_open)?;
            // Checked again on what was opened: the path may have changed.
            let meta = file.metadata().map_err(cannot_open)?;
            if let Some(what) = not_a_log(meta.file_type()) {
                bail!("{shown} is {what}, not a log file; not read");
            }
            Box::new(file)
        }
    };
    let mut reader = BufReader::with_capacity(READ_BUF, raw);
    let magic = reader
        .fill_buf()
        .with_context(|| format!("cannot read {input}"))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        // Multi-member: `cat a.gz b.gz` and some rotators' output are
        // several gzip members in a row.
        Ok(Box::new(BufReader::with_capacity(
            READ_BUF,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_come_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        for n in [
            "events.json",
            "events.json.1",
            "events.json.2.gz",
            "events.json.10.gz",
            "events.json-20261120.gz",
            "events.json-20261121",
            "events.jsonl",
            "events.json.bak",
            "other.json.1",
        ] {
            std::fs::write(p(n), b"").expect("write");
        }
        assert_eq!(
            with_rotations(&p("events.json")).expect("list"),
            [
                p("events.json.10.gz"),
                p("events.json.2.gz"),
                p("events.json.1"),
                p("events.json-20261120.gz"),
                p("events.json-20261121"),
                p("events.json"),
            ]
        );
    }

    #[test]
    fn gzip_is_read_by_its_magic() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.1");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}\n").expect("gzip");
        let mut data = gz.finish().expect("gzip");
        let mut second = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        second.write_all(b"{\"b\":2}\n").expect("gzip");
        data.extend(second.finish().expect("gzip"));
        std::fs::write(&path, data).expect("write");
        let mut text = String::new();
        open(&Input::File(path))
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n", "both members are read");
    }
}
