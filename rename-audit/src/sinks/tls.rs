//! The rustls client configuration of a sink's `tls_config`.
//!
//! rustls with the ring provider: nothing links OpenSSL. The trust anchors
//! are the `ca_file`'s, or the system's bundle (Debian's
//! /etc/ssl/certs/ca-certificates.crt, which ca-certificates keeps); a
//! client certificate and key give mutual TLS; `server_name` checks the
//! server certificate against that name instead of the URL's host; and
//! `insecure_skip_verify` accepts any server certificate (still checking
//! that the server holds its key), with one loud warning.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

pub use crate::config::{TlsConfig, TlsFileError};

/// Where Debian (and Ubuntu) keep every trusted CA in one PEM bundle.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a TLS client configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    File(#[from] TlsFileError),
    #[error(
        "no ca_file is set and the system's CA bundle {SYSTEM_BUNDLE} cannot be used: {0} \
         (install ca-certificates, or set tls_config.ca_file)"
    )]
    SystemRoots(String),
    #[error("tls_config: {0}")]
    Rustls(String),
}

/// The rustls client configuration `cfg` asks for; `sink` names the sink
/// in the warning about `insecure_skip_verify`.
pub fn client_config(cfg: &TlsConfig, sink: &str) -> Result<rustls::ClientConfig, TlsError> {
    let material = cfg.load()?;
    let provider = Arc::new(crate::config::tls_crypto_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if cfg.insecure_skip_verify {
        tracing::warn!(
            sink,
            "tls_config.insecure_skip_verify is true: ANY server certificate is accepted, so \
             anyone on the network path can read, forge or drop these alerts; set ca_file \
             instead"
        );
        Arc::new(CustomVerifier {
            certificate: None,
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        let roots = match material.roots {
            Some(roots) => roots,
            None => system_roots()?,
        };
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots);
        let algorithms = provider.signature_verification_algorithms;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        match &cfg.server_name {
            None => webpki,
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| TlsError::Rustls(format!("server_name {name:?}: {e}")))?;
                Arc::new(CustomVerifier {
                    certificate: Some((webpki, name)),
                    algorithms,
                })
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match material.identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| TlsError::Rustls(format!("client certificate: {e}"))),
    }
}

/// Everything [`client_config`] checks without the network: the files, and
/// that rustls accepts what they hold. `check-config` runs the file checks
/// through the configuration's own validation (which reports them at their
/// keys' lines); this is the same judgment for a caller holding a
/// [`TlsConfig`].
pub fn check(cfg: &TlsConfig) -> Result<(), TlsError> {
    client_config(cfg, "check").map(drop)
}

/// The system's trust anchors.
fn system_roots() -> Result<Vec<CertificateDer<'static>>, TlsError> {
    crate::config::tls_certificates(Path::new(SYSTEM_BUNDLE)).map_err(TlsError::SystemRoots)
}

/// The verifier for `server_name` or `insecure_skip_verify`. The handshake's
/// signatures are checked with the provider's algorithms either way, as
/// [`WebPkiServerVerifier`] itself does.
#[derive(Debug)]
struct CustomVerifier {
    /// `None` for `insecure_skip_verify`: any certificate is taken. Else
    /// the certificate is verified as issued for the name (Prometheus's
    /// `server_name`), whatever host the URL names.
    certificate: Option<(Arc<WebPkiServerVerifier>, ServerName<'static>)>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CustomVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.certificate {
            None => Ok(ServerCertVerified::assertion()),
            Some((webpki, name)) => {
                webpki.verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_bundle_gives_a_config_without_a_ca_file() {
        if !Path::new(SYSTEM_BUNDLE).exists() {
            eprintln!("SKIPPED: no {SYSTEM_BUNDLE}");
            return;
        }
        client_config(&TlsConfig::default(), "test").expect("system roots");
    }

    #[test]
    fn a_missing_ca_file_is_named_with_its_key() {
        let cfg = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let e = check(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("tls_config.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }
}
