//! The credentials of the Alertmanager sink's requests: `basic_auth` or
//! `authorization`, each secret read from its file at start-up and again on
//! every SIGHUP (a rotated password takes effect without a restart).
//!
//! The secret is held as a [`Secret`] and put into a request only as a
//! header marked sensitive, so no `Debug` of a request, error or this type
//! shows it.

use std::sync::{Arc, RwLock};

use reqwest::header::HeaderValue;

use crate::config::HttpAuth;
use crate::util::secret::{Secret, SecretError, read_secret_file};

/// Why a secret file cannot be used; names the file, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("alertmanager: {0}")]
    File(#[from] SecretError),
    #[error(
        "alertmanager: {0}: the secret is not one line of UTF-8 text without control characters \
         (only one trailing newline is taken off)"
    )]
    NotText(String),
}

/// What a request carries.
enum Header {
    Basic { username: String, password: Secret },
    Authorization(HeaderValue),
}

/// The sink's credentials, shared by every replica's requests.
pub(crate) struct Credentials {
    config: Option<HttpAuth>,
    current: RwLock<Option<Arc<Header>>>,
}

/// Credentials read and checked, not yet in use: a reload installs them
/// only when the rest of the configuration is good too.
pub struct Staged(Option<Arc<Header>>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("config", &self.config)
            .field("current", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Reads the secret file `config` names, if any.
    pub(crate) fn load(config: Option<&HttpAuth>) -> Result<Arc<Credentials>, CredentialError> {
        let creds = Credentials {
            config: config.cloned(),
            current: RwLock::new(None),
        };
        let staged = creds.read()?;
        creds.install(staged);
        Ok(Arc::new(creds))
    }

    /// Whether requests carry credentials at all.
    pub(crate) fn configured(&self) -> bool {
        self.config.is_some()
    }

    /// Reads the secret file again, as it is now.
    pub fn read(&self) -> Result<Staged, CredentialError> {
        let Some(config) = &self.config else {
            return Ok(Staged(None));
        };
        let secret = read_secret_file(config.secret_file())?;
        let text = secret
            .expose_str()
            .filter(|s| !s.chars().any(char::is_control))
            .ok_or_else(|| CredentialError::NotText(config.secret_file().display().to_string()))?;
        let header = match config {
            HttpAuth::Basic { username, .. } => Header::Basic {
                username: username.clone(),
                password: Secret::new(text.as_bytes().to_vec()),
            },
            HttpAuth::Authorization { scheme, .. } => {
                let mut value =
                    HeaderValue::from_str(&format!("{scheme} {text}")).map_err(|_| {
                        CredentialError::NotText(config.secret_file().display().to_string())
                    })?;
                value.set_sensitive(true);
                Header::Authorization(value)
            }
        };
        Ok(Staged(Some(Arc::new(header))))
    }

    /// Puts credentials read by [`Credentials::read`] in use.
    pub fn install(&self, staged: Staged) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = staged.0;
    }

    /// `request` with the credentials in use.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match current.as_deref() {
            None => request,
            Some(Header::Basic { username, password }) => {
                // reqwest marks the header it builds sensitive.
                request.basic_auth(username, password.expose_str())
            }
            Some(Header::Authorization(value)) => {
                request.header(reqwest::header::AUTHORIZATION, value.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn header_of(creds: &Credentials) -> String {
        let client = reqwest::Client::new();
        let req = creds
            .apply(client.post("http://127.0.0.1:1/"))
            .build()
            .unwrap();
        let value = req.headers()[reqwest::header::AUTHORIZATION].clone();
        assert!(value.is_sensitive());
        assert!(!format!("{:?}", req.headers()).contains("hunter"));
        value.to_str().unwrap().to_owned()
    }

    #[test]
    fn rereads_the_file_and_keeps_the_secret_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "hunter2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let creds = Credentials::load(Some(&HttpAuth::Authorization {
            scheme: "Bearer".into(),
            credentials_file: path.clone(),
        }))
        .unwrap();
        assert_eq!(header_of(&creds), "Bearer hunter2");
        assert!(!format!("{creds:?}").contains("hunter2"));

        std::fs::write(&path, "hunter3\n").unwrap();
        assert_eq!(header_of(&creds), "Bearer hunter2", "read only when asked");
        let staged = creds.read().unwrap();
        creds.install(staged);
        assert_eq!(header_of(&creds), "Bearer hunter3");

        // A file made readable by others is refused; the old secret stays.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = creds.read().err().expect("an exposed file").to_string();
        assert!(e.contains("chmod 600") && !e.contains("hunter"), "{e}");
        assert_eq!(header_of(&creds), "Bearer hunter3");
    }

    #[test]
    fn basic_auth_sends_user_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "hunter2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        let creds = Credentials::load(Some(&HttpAuth::Basic {
            username: "fleet".into(),
            password_file: path,
        }))
        .unwrap();
        // base64("fleet:hunter2")
        assert_eq!(header_of(&creds), "Basic ZmxlZXQ6aHVudGVyMg==");
    }
}
