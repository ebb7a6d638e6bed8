//! Secrets read from files: passwords, bearer tokens, private keys.
//!
//! A secret lives only in a file the configuration names, never in the
//! configuration itself, so that `config.toml` can stay world-readable and be
//! shown in a bug report. The file is refused when its group or others may
//! read it, the way ssh refuses a private key: a secret anyone on the host
//! can read is not one, and saying so at once is kinder than a leak found
//! later. What the file holds reaches no log line, error, metric or `Debug`
//! output: errors name the file, never its content.

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Larger files are refused unread: a password or token is a few bytes, a
/// PEM private key a few KiB.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A secret's bytes. `Debug` and `Display` print `<redacted>`; only
/// [`Secret::expose`] gives the bytes, so every use is greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The secret itself: hand it to what needs it (a header, a key
    /// parser), never to a formatter.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// As text, when it is UTF-8 (an HTTP credential must be).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: the bytes do not outlive their use in this buffer.
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

/// Why a secret file cannot be used. The message names the file and the
/// fix; it never holds the file's content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{}: permissions {mode:04o} are too open: group or others can read this secret; \
         run `chmod 600 {}` (or 400), as ssh requires of a private key",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{}: is larger than {} KiB; is this the right file?", path.display(), MAX_SECRET_BYTES / 1024)]
    TooLarge { path: PathBuf },
    #[error("{}: is empty", path.display())]
    Empty { path: PathBuf },
}

impl SecretError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        match self {
            SecretError::Read { path, .. }
            | SecretError::NotRegular { path, .. }
            | SecretError::Exposed { path, .. }
            | SecretError::TooLarge { path }
            | SecretError::Empty { path } => path,
        }
    }
}

/// Reads the secret in `path`: a regular file that neither group nor others
/// can read, of at most [`MAX_SECRET_BYTES`]. Exactly one trailing newline
/// is taken off (as Prometheus does, since `echo pw > file` writes one); a
/// file that is empty after that is refused.
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    read_file(path, true)
}

/// As [`read_secret_file`], without taking off a newline: for a PEM file.
pub fn read_secret_pem(path: &Path) -> Result<Secret, SecretError> {
    read_file(path, false)
}

fn read_file(path: &Path, strip_newline: bool) -> Result<Secret, SecretError> {
    let read = |source| SecretError::Read {
        path: path.to_owned(),
        source,
    };
    let check = |meta: &std::fs::Metadata| {
        if let Some(kind) = crate::util::file_kind(meta.file_type()) {
            return Err(SecretError::NotRegular {
                path: path.to_owned(),
                kind,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        Ok(())
    };
    // The type is judged before opening (a FIFO's open would block), and
    // again on the opened file, in case the path was swapped meanwhile.
    check(&std::fs::metadata(path).map_err(read)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(read)?;
    check(&file.metadata().map_err(read)?)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    let mut secret = Secret(bytes);
    if secret.0.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge {
            path: path.to_owned(),
        });
    }
    if strip_newline && secret.0.last() == Some(&b'\n') {
        secret.0.pop();
    }
    if secret.0.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(secret)
}

/// A file `name` in `dir` holding `content` with permission bits `mode`:
/// the secret files of the unit tests.
#[cfg(test)]
pub(crate) fn test_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_file as file;

    #[test]
    fn strips_exactly_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "a", b"hunter2\n", 0o600);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"hunter2");
        let p = file(dir.path(), "b", b"hunter2\n\n", 0o400);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"hunter2\n");
        let p = file(dir.path(), "c", b"  hunter2 ", 0o600);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"  hunter2 ");
        let p = file(dir.path(), "d", b"\n", 0o600);
        assert!(matches!(
            read_secret_file(&p),
            Err(SecretError::Empty { .. })
        ));
        let p = file(dir.path(), "e", b"k\n", 0o600);
        assert_eq!(read_secret_pem(&p).unwrap().expose(), b"k\n");
    }

    #[test]
    fn refuses_a_file_group_or_others_can_read_naming_it_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o620, 0o601] {
            let p = file(dir.path(), "pw", b"hunter2\n", mode);
            let e = read_secret_file(&p).expect_err("an exposed secret");
            let msg = e.to_string();
            assert!(matches!(e, SecretError::Exposed { .. }), "{mode:o}: {msg}");
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn never_shows_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "pw", b"hunter2\n", 0o600);
        let s = read_secret_file(&p).unwrap();
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_secret_file(dir.path()).unwrap_err();
        assert!(matches!(e, SecretError::NotRegular { .. }), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_secret_file(&fifo).unwrap_err();
        assert!(matches!(e, SecretError::NotRegular { .. }), "{e}");
        let e = read_secret_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(e.path(), dir.path().join("missing"));
    }
}
