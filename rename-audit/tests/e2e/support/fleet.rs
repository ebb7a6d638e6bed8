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
use std::os::unix::fs::PermissionsExt as _;
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
/// CA, and a server certificate from a CA nobody trusts.
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub server: Pair,
    pub client: Pair,
    pub expired_server: Pair,
    pub rogue_server: Pair,
}

impl Pki {
    pub fn make() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(d));
        let ca = |name: &str| {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=rename-audit test {name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        };
        ca("ca");
        ca("rogue-ca");
        fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        fs::write(
            d.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let csr = |name: &str, cn: &str| {
            openssl(&[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ]);
        };
        let sign = |name: &str, ca: &str, ext: &str| {
            csr(
                name,
                if ext == "client" {
                    "fleet-host"
                } else {
                    "127.0.0.1"
                },
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{ext}.ext"),
            ]);
        };
        sign("server", "ca", "server");
        sign("client", "ca", "client");
        sign("rogue-server", "rogue-ca", "server");
        // Expired: `openssl ca` takes explicit dates (OpenSSL 3.0's x509
        // has no -not_after).
        csr("expired-server", "127.0.0.1");
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
        openssl(&[
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
        ]);
        let pair = |name: &str| {
            let key = d.join(format!("{name}.key"));
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
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
            dir,
        }
    }

    /// A file holding `content`, mode 0600, as a secret must be.
    pub fn secret(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

/// How one replica serves.
#[derive(Clone, Debug)]
pub struct Serving {
    pub server: Pair,
    /// The password its user `fleet` has.
    pub password: String,
}

impl Serving {
    pub fn good(pki: &Pki) -> Serving {
        Serving {
            server: pki.server.clone(),
            password: PASSWORD.to_owned(),
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
        let body = curl(
            self.addr,
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
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .arg("-u")
        .arg(format!("{USER}:{password}"))
        .arg(format!("https://{addr}{path}"))
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

    fn start(pki: Pki, serving: &[Serving], clustered: bool) -> Fleet {
        require(ALERTMANAGER, "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let ports: Vec<(SocketAddr, SocketAddr)> = serving
            .iter()
            .map(|_| {
                (
                    ([127, 0, 0, 1], free_port()).into(),
                    ([127, 0, 0, 1], free_port()).into(),
                )
            })
            .collect();
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
