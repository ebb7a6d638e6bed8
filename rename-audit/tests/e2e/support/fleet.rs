//! A fleet's Alertmanager on loopback: Debian's `prometheus-alertmanager`
//! replicas behind TLS with client certificates (`client_auth_type:
//! RequireAndVerifyClientCert`) and bcrypt basic auth, alone or gossiping as
//! a cluster, plus the certificates they and the daemon use, made by the
//! `openssl` CLI in the test's own directory.
//!
//! Each replica has its own storage path, web port, cluster port and
//! `--web.config.file`; a stopped replica restarts on the same ports and
//! storage, as after an outage. Replicas are queried over the same mTLS and
//! basic auth with `curl`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::servers::{ALERTMANAGER, Proc, free_port, require};

/// The user every replica knows, and its password.
pub const USER: &str = "fleet";
pub const PASSWORD: &str = "correct horse battery staple";

/// Why the fleet tests cannot run here, if they cannot.
pub fn missing_tool() -> Option<String> {
    for (tool, package) in [
        ("openssl", "openssl"),
        ("htpasswd", "apache2-utils"),
        ("curl", "curl"),
    ] {
        let found = Command::new(tool)
            .arg("-h")
            .output()
            .map(|_| true)
            .unwrap_or(false);
        if !found {
            return Some(format!("no {tool} (install Debian's {package})"));
        }
    }
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A certificate and its key (mode 0600).
#[derive(Clone, Debug)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The test's certificates: a CA, a server certificate for 127.0.0.1 (SAN
/// IP), a client certificate, an expired server certificate from the same
/// CA, one for the name am.internal only, and a server certificate from a
/// CA nobody trusts.
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub server: Pair,
    pub client: Pair,
    pub expired_server: Pair,
    pub rogue_server: Pair,
    /// For the DNS name `am.internal` only, not 127.0.0.1.
    pub named_server: Pair,
}

/// Test certificates with the `openssl` command line, shared by the fleet
/// tests (Alertmanager and syslog). Every command runs in `dir`, the files
/// are named `<name>.key`, `<name>.csr`, `<name>.pem`.
pub mod openssl {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;
    use std::process::Command;

    /// An elliptic-curve P-256 key.
    pub const EC: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    /// A 2048-bit RSA key.
    pub const RSA: &[&str] = &["-newkey", "rsa:2048"];

    /// Runs `openssl args` in `dir`; panics when it fails.
    pub fn run(dir: &Path, args: &[&str]) {
        super::run(Command::new("openssl").args(args).current_dir(dir));
    }

    /// A self-signed CA `<name>.pem` with its key `<name>.key`.
    pub fn ca(dir: &Path, name: &str, key: &[&str], cn: &str) {
        let (keyout, out, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(key);
        args.extend_from_slice(&[
            "-nodes",
            "-keyout",
            &keyout,
            "-out",
            &out,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(dir, &args);
    }

    /// A key `<name>.key` and a request `<name>.csr` for `/CN=cn`.
    pub fn csr(dir: &Path, name: &str, key: &[&str], cn: &str) {
        let (keyout, out, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-new"];
        args.extend_from_slice(key);
        args.extend_from_slice(&["-nodes", "-keyout", &keyout, "-out", &out, "-subj", &subj]);
        run(dir, &args);
    }

    /// `<name>.pem`, `<name>.csr` signed by CA `<ca>` with the extensions
    /// in file `ext`, valid two days.
    pub fn sign(dir: &Path, name: &str, ca: &str, ext: &str) {
        let (csr, out) = (format!("{name}.csr"), format!("{name}.pem"));
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        run(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &out,
                "-days",
                "2",
                "-extfile",
                ext,
            ],
        );
    }

    /// Makes `path` readable by its owner only, as the daemon wants keys and
    /// secrets.
    pub fn owner_only(path: &Path) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

impl Pki {
    pub fn make() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ec = openssl::EC;
        openssl::ca(d, "ca", ec, "rename-audit test ca");
        openssl::ca(d, "rogue-ca", ec, "rename-audit test rogue-ca");
        for (ext, text) in [
            (
                "server.ext",
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "named.ext",
                "subjectAltName=DNS:am.internal\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client.ext",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            ),
        ] {
            fs::write(d.join(ext), text).unwrap();
        }
        let sign = |name: &str, ca: &str, ext: &str| {
            let cn = if ext == "client" {
                "fleet-host"
            } else {
                "127.0.0.1"
            };
            openssl::csr(d, name, ec, cn);
            openssl::sign(d, name, ca, &format!("{ext}.ext"));
        };
        sign("server", "ca", "server");
        sign("client", "ca", "client");
        sign("rogue-server", "rogue-ca", "server");
        sign("named-server", "ca", "named");
        // Expired: `openssl ca` takes explicit dates (OpenSSL 3.0's x509
        // has no -not_after).
        openssl::csr(d, "expired-server", ec, "127.0.0.1");
        fs::create_dir_all(d.join("newcerts")).unwrap();
        fs::write(d.join("index.txt"), "").unwrap();
        fs::write(d.join("serial"), "1000\n").unwrap();
        fs::write(
            d.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = test\n[test]\ndatabase = {d}/index.txt\n\
                 new_certs_dir = {d}/newcerts\nserial = {d}/serial\ndefault_md = sha256\n\
                 policy = anything\nunique_subject = no\n[anything]\ncommonName = supplied\n\
                 [ext]\nsubjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
                 extendedKeyUsage = serverAuth\n",
                d = d.display()
            ),
        )
        .unwrap();
        openssl::run(
            d,
            &[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                "expired-server.csr",
                "-out",
                "expired-server.pem",
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
                "-extensions",
                "ext",
                "-notext",
            ],
        );
        let pair = |name: &str| {
            let key = d.join(format!("{name}.key"));
            openssl::owner_only(&key);
            Pair {
                cert: d.join(format!("{name}.pem")),
                key,
            }
        };
        Pki {
            ca: d.join("ca.pem"),
            server: pair("server"),
            client: pair("client"),
            expired_server: pair("expired-server"),
            rogue_server: pair("rogue-server"),
            named_server: pair("named-server"),
            dir,
        }
    }

    /// A file holding `content`, mode 0600, as a secret must be.
    pub fn secret(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, content).unwrap();
        openssl::owner_only(&path);
        path
    }
}

/// How one replica serves.
#[derive(Clone, Debug)]
pub struct Serving {
    pub server: Pair,
    /// The password its user `fleet` has.
    pub password: String,
    /// The DNS name its certificate is for, when not 127.0.0.1.
    pub dns_name: Option<String>,
}

impl Serving {
    pub fn good(pki: &Pki) -> Serving {
        Serving {
            server: pki.server.clone(),
            password: PASSWORD.to_owned(),
            dns_name: None,
        }
    }
}

/// One `prometheus-alertmanager`, restartable.
pub struct Replica {
    pub addr: SocketAddr,
    pub cluster: SocketAddr,
    proc_: Option<Proc>,
    dir: PathBuf,
    args: Vec<String>,
    ca: PathBuf,
    client: Pair,
    password: String,
    dns_name: Option<String>,
    starts: u32,
}

impl Replica {
    /// `https://127.0.0.1:<port>`, as the daemon's `urls` lists it.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let mut proc_ = Proc::spawn(
            "alertmanager",
            Command::new(ALERTMANAGER).args(&self.args),
            self.dir.join(format!("alertmanager-{}.log", self.starts)),
        );
        let (addr, client, password) = (self.addr, self.client.clone(), self.password.clone());
        // Whatever certificate it serves (expired, from another CA), it is
        // up once it answers /-/ready to its own user.
        proc_.wait_until("GET /-/ready over mTLS", || ready(addr, &client, &password));
        self.proc_ = Some(proc_);
    }

    /// Stops it now (SIGTERM, waited for), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc_.take() {
            p.stop();
        }
    }

    /// Starts it again on the same ports and storage.
    pub fn restart(&mut self) {
        assert!(self.proc_.is_none(), "restart of a running replica");
        self.spawn();
    }

    /// `GET /api/v2/alerts` over mTLS and basic auth.
    pub fn alerts(&self) -> Vec<Value> {
        let body = curl_as(
            self.addr,
            self.dns_name.as_deref(),
            &self.ca,
            &self.client,
            PASSWORD,
            "/api/v2/alerts",
        )
        .unwrap_or_else(|e| panic!("GET {}/api/v2/alerts: {e}", self.url()));
        match serde_json::from_str(&body) {
            Ok(Value::Array(a)) => a,
            other => panic!("{}: /api/v2/alerts is not an array: {other:?}", self.url()),
        }
    }

    /// Polls until `pred` holds for the alerts whose label `key` is
    /// `value`; returns them.
    pub fn wait_for_alerts(
        &self,
        key: &str,
        value: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = Instant::now() + super::patience(timeout);
        loop {
            let alerts: Vec<Value> = self
                .alerts()
                .into_iter()
                .filter(|a| a["labels"][key] == value)
                .collect();
            if pred(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < until,
                "{}: no alert with {key}={value:?} as expected within {timeout:?}; it holds {alerts:#?}",
                self.url()
            );
            sleep(Duration::from_millis(100));
        }
    }
}

/// `curl` over mTLS with basic auth: the body of a 2xx answer, or why not.
pub fn curl(
    addr: SocketAddr,
    ca: &Path,
    client: &Pair,
    password: &str,
    path: &str,
) -> Result<String, String> {
    curl_as(addr, None, ca, client, password, path)
}

/// As [`curl`], reaching `addr` by the DNS name `name` when its
/// certificate is for that name only.
fn curl_as(
    addr: SocketAddr,
    name: Option<&str>,
    ca: &Path,
    client: &Pair,
    password: &str,
    path: &str,
) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    let url = match name {
        Some(name) => {
            cmd.arg("--resolve")
                .arg(format!("{name}:{}:{}", addr.port(), addr.ip()));
            format!("https://{name}:{}{path}", addr.port())
        }
        None => format!("https://{addr}{path}"),
    };
    let out = cmd
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .arg("-u")
        .arg(format!("{USER}:{password}"))
        .arg(url)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Whether `/-/ready` answers 200 over mTLS with basic auth, whatever the
/// server's certificate (`-k`: only readiness is judged here).
fn ready(addr: SocketAddr, client: &Pair, password: &str) -> bool {
    Command::new("curl")
        .args([
            "-sSk",
            "--fail",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--cert",
        ])
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .arg("-u")
        .arg(format!("{USER}:{password}"))
        .arg(format!("https://{addr}/-/ready"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Replicas, clustered (gossiping) or alone.
pub struct Fleet {
    pub replicas: Vec<Replica>,
    pub pki: Pki,
    _dir: TempDir,
}

impl Fleet {
    /// A cluster of replicas serving as `serving` says, each peering with
    /// every other.
    pub fn cluster(pki: Pki, serving: &[Serving]) -> Fleet {
        Self::start(pki, serving, true)
    }

    /// Replicas that do not gossip (each its own cluster of one).
    pub fn alone(pki: Pki, serving: &[Serving]) -> Fleet {
        Self::start(pki, serving, false)
    }

    /// Every replica's [`Replica::url`], in order.
    pub fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::url).collect()
    }

    fn start(pki: Pki, serving: &[Serving], clustered: bool) -> Fleet {
        require(ALERTMANAGER, "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        // Distinct ports: two free_port() calls may return the same one.
        let mut taken = std::collections::HashSet::new();
        let mut port = || loop {
            let p = free_port();
            if taken.insert(p) {
                return SocketAddr::from(([127, 0, 0, 1], p));
            }
        };
        let ports: Vec<(SocketAddr, SocketAddr)> =
            serving.iter().map(|_| (port(), port())).collect();
        let mut replicas = Vec::new();
        for (i, (s, (addr, cluster))) in serving.iter().zip(&ports).enumerate() {
            let rdir = dir.path().join(format!("replica{i}"));
            fs::create_dir_all(&rdir).unwrap();
            let hash = run(Command::new("htpasswd").args(["-nbBC", "10", USER, &s.password]));
            let hash = hash.trim().split_once(':').expect("user:hash").1.to_owned();
            let web = rdir.join("web.yml");
            fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  \
                     client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n\
                     basic_auth_users:\n  {USER}: '{hash}'\n",
                    s.server.cert.display(),
                    s.server.key.display(),
                    pki.ca.display()
                ),
            )
            .unwrap();
            let mut args = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", rdir.join("data").display()),
                format!("--web.listen-address={addr}"),
                format!("--web.config.file={}", web.display()),
            ];
            if clustered {
                args.push(format!("--cluster.listen-address={cluster}"));
                args.push(format!("--cluster.advertise-address={cluster}"));
                for (j, (_, peer)) in ports.iter().enumerate() {
                    if j != i {
                        args.push(format!("--cluster.peer={peer}"));
                    }
                }
            } else {
                args.push("--cluster.listen-address=".to_owned());
            }
            replicas.push(Replica {
                addr: *addr,
                cluster: *cluster,
                proc_: None,
                dir: rdir,
                args,
                ca: pki.ca.clone(),
                client: pki.client.clone(),
                password: s.password.clone(),
                dns_name: s.dns_name.clone(),
                starts: 0,
            });
        }
        for r in &mut replicas {
            r.spawn();
        }
        Fleet {
            replicas,
            pki,
            _dir: dir,
        }
    }
}
