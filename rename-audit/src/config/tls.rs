//! `tls_config`: a sink's TLS client settings, with the key names of
//! Prometheus's `tls_config` (fleet operators know them already):
//! `ca_file`, `cert_file`, `key_file`, `server_name`, `insecure_skip_verify`.
//!
//! Any sink section takes one (`[sinks.<sink>.tls_config]`): its raw table
//! is [`RawTlsConfig`] and [`parse`] checks it, recording each problem at its
//! key's span under the section's name, so every sink reports `path:line:col`
//! the same way. The checks read the files (that they exist, can be read,
//! parse, and that the client certificate and key belong together), so
//! `check-config` finds all of it without the network. What the files hold
//! is loaded by [`TlsConfig::load`], which the sinks build their rustls
//! configuration from (`sinks::tls`).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use toml::Spanned;

use super::collect::Problem;
use crate::util::secret::read_secret_pem;

/// A sink's TLS client settings, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA certificates (PEM) that server certificates must chain to; the
    /// system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM, leaf first) for mutual TLS; with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM); a secret, so refused
    /// when group or others can read it.
    pub key_file: Option<PathBuf>,
    /// The name the server certificate must carry, instead of the URL's
    /// host (a DNS name or an IP address).
    pub server_name: Option<String>,
    /// Accept any server certificate. Off by default; warned about loudly.
    pub insecure_skip_verify: bool,
}

/// `[sinks.<sink>.tls_config]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawTlsConfig {
    pub ca_file: Option<Spanned<String>>,
    pub cert_file: Option<Spanned<String>>,
    pub key_file: Option<Spanned<String>>,
    pub server_name: Option<Spanned<String>>,
    pub insecure_skip_verify: Option<bool>,
}

/// Largest certificate file read: a bundle of a few hundred CAs is ~200 KiB.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// Checks `raw`, the `tls_config` table of section `section` (e.g.
/// `"sinks.alertmanager"`), recording each problem at its span. `None` when
/// the table is absent or has a problem.
pub(crate) fn parse(
    raw: Option<Spanned<RawTlsConfig>>,
    section: &str,
    problems: &mut Vec<Problem>,
) -> Option<TlsConfig> {
    let raw = raw?;
    let table_span = raw.span();
    let raw = raw.into_inner();
    let before = problems.len();
    let key = |k: &str| format!("{section}.tls_config.{k}");
    let mut path = |value: &Option<Spanned<String>>, k: &str| -> Option<PathBuf> {
        let v = value.as_ref()?;
        if v.get_ref().starts_with('/') && !v.get_ref().contains('\0') {
            Some(PathBuf::from(v.get_ref()))
        } else {
            problems.push(Problem::at(
                v.span(),
                format!("{}: {:?} is not an absolute path", key(k), v.get_ref()),
            ));
            None
        }
    };
    let ca_file = path(&raw.ca_file, "ca_file");
    let cert_file = path(&raw.cert_file, "cert_file");
    let key_file = path(&raw.key_file, "key_file");
    match (&raw.cert_file, &raw.key_file) {
        (Some(c), None) => problems.push(Problem::at(
            c.span(),
            format!(
                "{}: a client certificate needs its key: set {} too",
                key("cert_file"),
                key("key_file")
            ),
        )),
        (None, Some(k)) => problems.push(Problem::at(
            k.span(),
            format!(
                "{}: a client key needs its certificate: set {} too",
                key("key_file"),
                key("cert_file")
            ),
        )),
        _ => {}
    }
    let server_name = raw.server_name.as_ref().and_then(|n| {
        let name = n.get_ref();
        match ServerName::try_from(name.as_str()) {
            Ok(_) => Some(name.clone()),
            Err(_) => {
                problems.push(Problem::at(
                    n.span(),
                    format!(
                        "{}: {name:?} is neither a DNS name nor an IP address",
                        key("server_name")
                    ),
                ));
                None
            }
        }
    });
    if problems.len() > before {
        return None;
    }
    let config = TlsConfig {
        ca_file,
        cert_file,
        key_file,
        server_name,
        insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
    };
    // The files, as the sink will read them.
    if let Err(e) = config.load() {
        let span = match e.key {
            "ca_file" => raw.ca_file.as_ref().map(Spanned::span),
            "cert_file" => raw.cert_file.as_ref().map(Spanned::span),
            "key_file" => raw.key_file.as_ref().map(Spanned::span),
            _ => None,
        }
        .unwrap_or(table_span);
        problems.push(Problem::at(span, format!("{}: {}", key(e.key), e.reason)));
        return None;
    }
    Some(config)
}

/// What a [`TlsConfig`]'s files hold.
pub struct TlsMaterial {
    /// The CA certificates of `ca_file`; `None`: the system's roots.
    pub roots: Option<Vec<CertificateDer<'static>>>,
    /// The client certificate chain and its key, checked to match.
    pub identity: Option<ClientIdentity>,
}

/// A client certificate chain (leaf first) and its private key.
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("roots", &self.roots.as_ref().map(Vec::len))
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a file of a `tls_config` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tls_config.{key}: {reason}")]
pub struct TlsFileError {
    /// The key naming the file: `ca_file`, `cert_file` or `key_file`.
    pub key: &'static str,
    /// Names the file; never holds a key's bytes.
    pub reason: String,
}

impl TlsConfig {
    /// Reads and parses the files: the CA certificates, the client
    /// certificate chain and its key, and checks that the key is the
    /// certificate's. Called by `check-config` (through [`parse`]), at
    /// start-up and by each reload.
    pub fn load(&self) -> Result<TlsMaterial, TlsFileError> {
        let roots = match &self.ca_file {
            None => None,
            Some(path) => Some(certificates(path).map_err(|reason| TlsFileError {
                key: "ca_file",
                reason,
            })?),
        };
        if let Some(roots) = &roots {
            let mut store = rustls::RootCertStore::empty();
            let (_, bad) = store.add_parsable_certificates(roots.iter().cloned());
            if bad > 0 || store.is_empty() {
                return Err(TlsFileError {
                    key: "ca_file",
                    reason: format!(
                        "{}: {bad} of its {} certificates cannot be used as a CA",
                        display(self.ca_file.as_deref()),
                        roots.len()
                    ),
                });
            }
        }
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(identity(cert, key)?),
            _ => None,
        };
        Ok(TlsMaterial { roots, identity })
    }
}

fn display(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Every certificate in a PEM file; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_public(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn identity(cert: &Path, key: &Path) -> Result<ClientIdentity, TlsFileError> {
    let chain = certificates(cert).map_err(|reason| TlsFileError {
        key: "cert_file",
        reason,
    })?;
    let key_err = |reason: String| TlsFileError {
        key: "key_file",
        reason,
    };
    let pem = read_secret_pem(key).map_err(|e| key_err(e.to_string()))?;
    // The parser's error says what it expected, never what it read.
    let key_der = PrivateKeyDer::from_pem_slice(pem.expose()).map_err(|e| {
        key_err(format!(
            "{}: holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            key.display()
        ))
    })?;
    let provider = crypto_provider();
    let signing = provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|e| key_err(format!("{}: unusable private key: {e}", key.display())))?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), Arc::clone(&signing));
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_err(format!(
                "{}: is not the key of the certificate in {}",
                key.display(),
                cert.display()
            )));
        }
        Err(e) => {
            return Err(TlsFileError {
                key: "cert_file",
                reason: format!("{}: unusable certificate: {e}", cert.display()),
            });
        }
    }
    Ok(ClientIdentity {
        chain,
        key: key_der,
    })
}

/// The rustls cryptography every TLS client of the daemon uses: ring, which
/// builds with the C compiler Rust already needs (aws-lc-rs also wants
/// cmake) and links no OpenSSL. rustls 0.23.48 deprecates ring's provider
/// because ring has no post-quantum key exchange; these connections go to
/// the fleet's own servers, and switching is a one-line change here.
#[allow(deprecated)]
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A certificate file: public, but read with the same care as the
/// configuration (a regular file, bounded).
fn read_public(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| format!("{}: cannot read: {e}", path.display());
    let regular = |meta: std::fs::Metadata| match crate::util::file_kind(meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(format!("{}: is {kind}, not a regular file", path.display())),
    };
    regular(std::fs::metadata(path).map_err(fail)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(fail)?;
    regular(file.metadata().map_err(fail)?)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{}: is larger than {} MiB; is this the right file?",
            path.display(),
            MAX_PEM_BYTES >> 20
        ));
    }
    Ok(bytes)
}
