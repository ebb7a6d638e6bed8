//! `[sinks.alertmanager]`'s fleet keys: `urls`, `tls_config`, `basic_auth`,
//! `authorization`, `heartbeat_secs`; and the shared `tls_config` parser.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("t.toml"))
        .unwrap_or_else(|e| panic!("config should be valid, got:\n{e}"))
}

fn problems(text: &str) -> Vec<String> {
    match Config::parse(text, Path::new("t.toml")) {
        Ok(c) => panic!("config should be invalid, got {c:?}"),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

fn secret(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
    crate::util::secret::test_file(dir, name, content.as_bytes(), mode)
}

#[test]
fn urls_lists_every_replica_and_url_is_the_one_replica_form() {
    let c = parse(
        "[sinks.alertmanager]\nurls = [\"http://am1:9093\", \"http://am2:9093/\", \"http://am3:9093\"]\n",
    );
    let am = c.sinks.alertmanager.unwrap();
    let urls: Vec<&str> = am.urls.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        urls,
        ["http://am1:9093/", "http://am2:9093/", "http://am3:9093/"]
    );
    let names: Vec<String> = am.urls.iter().map(replica_name).collect();
    assert_eq!(
        names,
        ["http://am1:9093", "http://am2:9093", "http://am3:9093"]
    );
    assert_eq!(am.heartbeat, Duration::from_secs(60));
    assert_eq!(am.tls, None);
    assert_eq!(am.auth, None);

    let one = parse("[sinks.alertmanager]\nurl = \"https://am1:9093\"\nheartbeat_secs = 5\n");
    let am = one.sinks.alertmanager.unwrap();
    assert_eq!(am.urls.len(), 1);
    assert_eq!(am.urls[0].scheme(), "https", "https is accepted");
    assert_eq!(am.heartbeat, Duration::from_secs(5));
}

#[test]
fn url_and_urls_together_empty_or_repeated_urls_are_errors_with_line_and_column() {
    assert_eq!(
        problems("[sinks.alertmanager]\nurl = \"http://a:1\"\nurls = [\"http://b:1\"]\n"),
        [
            "3:8: sinks.alertmanager.urls: give either url (one replica) or urls (every replica), not both"
        ]
    );
    assert_eq!(
        problems("[sinks.alertmanager]\nurls = []\n"),
        ["2:8: sinks.alertmanager.urls: is empty: list every replica's URL, or remove the section"]
    );
    assert_eq!(
        problems("[sinks.alertmanager]\nurls = [\"http://a:1\", \"http://a:1/\"]\n"),
        ["2:23: sinks.alertmanager.urls: \"http://a:1/\" is listed twice"]
    );
    assert_eq!(
        problems("[sinks.alertmanager]\nurls = [\"http://a:1\", \"ftp://b\"]\n"),
        [
            "2:23: sinks.alertmanager.url: \"ftp://b\" cannot be used: scheme \"ftp\" is neither http nor https"
        ]
    );
    assert_eq!(
        problems("[sinks.alertmanager]\nheartbeat_secs = 0\nurl = \"http://a:1\"\n"),
        ["2:18: sinks.alertmanager.heartbeat_secs: must be between 1 and 86400, not 0"]
    );
}

#[test]
fn a_password_in_a_url_is_refused_pointing_at_basic_auth_and_never_repeated() {
    let p = problems("[sinks.alertmanager]\nurls = [\"https://alice:hunter2@am1:9093\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("2:9: sinks.alertmanager.url: "), "{p:?}");
    assert!(
        p[0].contains("use [sinks.alertmanager.basic_auth]"),
        "{p:?}"
    );
    assert!(
        !p[0].contains("hunter2") && !p[0].contains("alice"),
        "{p:?}"
    );
}

#[test]
fn tls_config_keys_are_checked_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let text = format!(
        "[sinks.alertmanager]\n\
         url = \"https://am:9093\"\n\
         [sinks.alertmanager.tls_config]\n\
         ca_file = \"{d}/missing-ca.pem\"\n\
         cert_file = \"relative.pem\"\n\
         server_name = \"not a name\"\n\
         verify = true\n"
    );
    let p = problems(&text);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p[0].starts_with("5:13: sinks.alertmanager.tls_config.cert_file: \"relative.pem\" is not an absolute path"), "{p:#?}");
    assert!(
        p[1].starts_with(
            "5:13: sinks.alertmanager.tls_config.cert_file: a client certificate needs its key"
        ),
        "{p:#?}"
    );
    assert!(
        p[2].starts_with(
            "6:15: sinks.alertmanager.tls_config.server_name: \"not a name\" is neither"
        ),
        "{p:#?}"
    );
    assert!(
        p[3].starts_with("7:1: sinks.alertmanager.tls_config.verify: unknown field"),
        "{p:#?}"
    );

    let text = format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.tls_config]\nca_file = \"{d}/missing-ca.pem\"\n"
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with(&format!(
            "4:11: sinks.alertmanager.tls_config.ca_file: {d}/missing-ca.pem: cannot read: "
        )),
        "{p:#?}"
    );
    let not_pem = secret(dir.path(), "ca.txt", "hello\n", 0o644);
    let text = format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.tls_config]\nca_file = \"{}\"\n",
        not_pem.display()
    );
    let p = problems(&text);
    assert!(p[0].contains("holds no PEM certificate"), "{p:#?}");
}

#[test]
fn tls_config_with_a_plain_http_url_is_an_error() {
    let p = problems(
        "[sinks.alertmanager]\nurls = [\"https://a:1\", \"http://b:1\"]\n\
         [sinks.alertmanager.tls_config]\ninsecure_skip_verify = true\n",
    );
    assert_eq!(
        p,
        [
            "2:24: sinks.alertmanager.url: \"http://b:1\" is plain http, but a tls_config is set: use https://, or remove tls_config"
        ]
    );
    let c = parse(
        "[sinks.alertmanager]\nurls = [\"https://a:1\"]\n\
         [sinks.alertmanager.tls_config]\ninsecure_skip_verify = true\nserver_name = \"am.internal\"\n",
    );
    let tls = c.sinks.alertmanager.unwrap().tls.unwrap();
    assert!(tls.insecure_skip_verify);
    assert_eq!(tls.server_name.as_deref(), Some("am.internal"));
    assert_eq!(tls.ca_file, None);
}

#[test]
fn basic_auth_and_authorization_read_their_secret_files_and_refuse_exposed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pw = secret(dir.path(), "pw", "hunter2\n", 0o600);
    let c = parse(&format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.basic_auth]\nusername = \"fleet\"\npassword_file = \"{}\"\n",
        pw.display()
    ));
    assert_eq!(
        c.sinks.alertmanager.unwrap().auth,
        Some(HttpAuth::Basic {
            username: "fleet".into(),
            password_file: pw.clone()
        })
    );
    let c = parse(&format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.authorization]\ncredentials_file = \"{}\"\n",
        pw.display()
    ));
    assert_eq!(
        c.sinks.alertmanager.unwrap().auth,
        Some(HttpAuth::Authorization {
            scheme: "Bearer".into(),
            credentials_file: pw.clone()
        }),
        "the type defaults to Bearer"
    );

    let open = secret(dir.path(), "open", "hunter2\n", 0o644);
    let p = problems(&format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.basic_auth]\nusername = \"fleet\"\npassword_file = \"{}\"\n",
        open.display()
    ));
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with("5:17: sinks.alertmanager.basic_auth.password_file: "),
        "{p:#?}"
    );
    assert!(
        p[0].contains(&format!("chmod 600 {}", open.display())),
        "{p:#?}"
    );
    assert!(!p[0].contains("hunter2"), "{p:#?}");

    let two_lines = secret(dir.path(), "two", "hunter2\r\n", 0o600);
    let p = problems(&format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.authorization]\ntype = \"Token\"\ncredentials_file = \"{}\"\n",
        two_lines.display()
    ));
    assert!(p[0].contains("not one line of UTF-8 text"), "{p:#?}");
    assert!(!p[0].contains("hunter2"), "{p:#?}");
}

#[test]
fn secrets_are_never_inline_and_auth_is_one_kind() {
    let p = problems(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.basic_auth]\nusername = \"fleet\"\npassword = \"hunter2\"\n",
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("3:1: sinks.alertmanager.basic_auth: password_file is missing")
            || p[0].contains("password_file is missing"),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("5:1: sinks.alertmanager.basic_auth.password: unknown field")),
        "{p:#?}"
    );
    assert!(p.iter().all(|l| !l.contains("hunter2")), "{p:#?}");
    let p = problems(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.basic_auth]\nusername = \"a\"\npassword_file = \"/x\"\n\
         [sinks.alertmanager.authorization]\ncredentials_file = \"/y\"\n",
    );
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].contains("give basic_auth or authorization, not both"),
        "{p:#?}"
    );
    let p = problems(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.authorization]\ntype = \"Basic\"\ncredentials_file = \"/y\"\n",
    );
    assert!(
        p[0].contains("for Basic, use [sinks.alertmanager.basic_auth]"),
        "{p:#?}"
    );
}

/// `openssl` makes a CA, a client certificate and two keys; `None` when it
/// is missing.
fn client_pki(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(())
    };
    // Self-signed: `name.pem` with its key `name.key`.
    let self_signed = |name: &str, cn: &str| {
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
        ])
    };
    self_signed("ca", "test-ca")?;
    self_signed("client", "client")?;
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "other.key",
    ])?;
    for key in ["client.key", "other.key", "ca.key"] {
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Some((
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
        dir.join("other.key"),
    ))
}

#[test]
fn check_config_proves_the_client_certificate_and_key_belong_together() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key, other)) = client_pki(dir.path()) else {
        eprintln!("SKIPPED: no openssl to make certificates");
        return;
    };
    let text = |key: &Path| {
        format!(
            "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
             [sinks.alertmanager.tls_config]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            ca.display(),
            cert.display(),
            key.display()
        )
    };
    let c = parse(&text(&key));
    let tls = c.sinks.alertmanager.unwrap().tls.unwrap();
    assert_eq!(tls.cert_file.as_deref(), Some(cert.as_path()));
    let material = tls.load().expect("the files load");
    assert_eq!(material.roots.as_ref().map(Vec::len), Some(1));
    assert!(format!("{material:?}").contains("<redacted>"));
    crate::sinks::tls::check(&tls).expect("rustls takes them");

    let p = problems(&text(&other));
    assert_eq!(
        p,
        [format!(
            "6:12: sinks.alertmanager.tls_config.key_file: {}: is not the key of the certificate in {}",
            other.display(),
            cert.display()
        )]
    );
    // The key is a secret: refused when others can read it.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let p = problems(&text(&key));
    assert!(
        p[0].starts_with("6:12: sinks.alertmanager.tls_config.key_file: "),
        "{p:#?}"
    );
    assert!(p[0].contains("chmod 600"), "{p:#?}");
    // A key file in place of a certificate.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = problems(&format!(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n\
         [sinks.alertmanager.tls_config]\nca_file = \"{}\"\n",
        key.display()
    ));
    assert!(p[0].contains("holds no PEM certificate"), "{p:#?}");
}
