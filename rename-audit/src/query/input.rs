//! Where `search` and `report` read from: the files given (`-` is stdin),
//! or the configured output file with its rotations, oldest first. Gzip
//! files are recognized by their magic bytes, whatever their name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use flate2::read::MultiGzDecoder;

use crate::cli::InputArgs;
use crate::config::{self, Config, OutputTarget};

/// Reads of this size keep the per-line cost down on large logs.
const READ_BUF: usize = 1 << 20;

/// One input: a path, or stdin for `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Stdin => f.write_str("stdin"),
            Input::File(p) => write!(f, "{}", p.display()),
        }
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

/// A buffered reader of the input's lines, decompressing gzip.
pub fn open(input: &Input) -> Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(path) => Box::new(File::open(path).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (the daemon creates its log root-only: run as root, or search a copy)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot open {}: {e}{hint}", path.display())
        })?),
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
