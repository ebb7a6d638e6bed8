//! Debian's real `prometheus`, `prometheus-alertmanager` and `rsyslogd`, each
//! started on loopback on free ports with a config file and data directory in
//! its own temporary directory, waited on until it answers, and killed when
//! dropped. Nothing host-wide is touched: no default ports, no /dev/log, no
//! system config or pid file.
//!
//! A server is killed when the thread that started it exits (PDEATHSIG), so
//! start and drop it on the test's own thread.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::http;

const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
pub const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nobody listens on right now (TCP and UDP).
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn require(binary: &str, package: &str) {
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install Debian's {package} (apt-get install -y {package}); \
         the project's test command does this"
    );
}

/// One child process with its log file; killed on drop.
pub struct Proc {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = fs::File::create(&log).expect("create server log");
        let err = out.try_clone().expect("dup log fd");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork
        // and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name,
            child: Some(child),
            log,
        }
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Panics with the server's log if it has exited.
    fn assert_running(&mut self) {
        if let Some(c) = &mut self.child
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!(
                "{} exited during start-up ({status}); its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// SIGTERM, then SIGKILL after 5 s; waits for the exit.
    pub fn stop(&mut self) {
        self.stop_within(Duration::from_secs(5));
    }

    /// SIGTERM, then SIGKILL after `timeout`; waits for the exit.
    pub fn stop_within(&mut self, timeout: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) of our own child, not yet reaped.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let until = Instant::now() + READY_TIMEOUT;
        while Instant::now() < until {
            self.assert_running();
            if ready() {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "{} not ready ({what}) after {READY_TIMEOUT:?}; its log:\n{}",
            self.name,
            self.log_tail()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn http_ready(addr: SocketAddr) -> bool {
    matches!(http::get(addr, "/-/ready"), Ok((200, _)))
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) =
        http::get(addr, path).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"));
    assert_eq!(status, 200, "GET http://{addr}{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: bad JSON {e}: {body}"))
}

/// `prometheus-alertmanager` with one receiver that sends nowhere and
/// clustering off (no gossip port).
pub struct Alertmanager {
    pub addr: SocketAddr,
    proc_: Proc,
    _dir: TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        require(ALERTMANAGER, "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .expect("write alertmanager.yml");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut proc_ = Proc::spawn(
            "alertmanager",
            Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--cluster.listen-address="),
            dir.path().join("alertmanager.log"),
        );
        proc_.wait_until("GET /-/ready", || http_ready(addr));
        Alertmanager {
            addr,
            proc_,
            _dir: dir,
        }
    }

    /// Base URL for the sink's `url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /api/v2/alerts`: every alert Alertmanager holds.
    pub fn alerts(&self) -> Vec<Value> {
        match get_json(self.addr, "/api/v2/alerts") {
            Value::Array(a) => a,
            other => panic!("/api/v2/alerts is not an array: {other}"),
        }
    }

    /// Alerts whose label `key` equals `value`, the daemon's always-firing
    /// `RenameAuditWatchdog` aside (it carries the host label too).
    pub fn alerts_with_label(&self, key: &str, value: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| a["labels"][key] == value)
            .filter(|a| a["labels"]["alertname"] != "RenameAuditWatchdog")
            .collect()
    }

    /// Poll until `pred` holds for the alerts with label `key`=`value`.
    pub fn wait_for_alerts(
        &self,
        key: &str,
        value: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = Instant::now() + timeout;
        loop {
            let alerts = self.alerts_with_label(key, value);
            if pred(&alerts) {
                return alerts;
            }
            if Instant::now() > until {
                panic!(
                    "alertmanager: condition not met after {timeout:?} for {key}={value:?}; \
                     it holds: {alerts:#?}"
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Stop the server now (SIGTERM, waited for), as an outage would.
    pub fn stop(&mut self) {
        self.proc_.stop();
    }
}

/// `prometheus` scraping the given targets every second.
pub struct Prometheus {
    pub addr: SocketAddr,
    proc_: Proc,
    _dir: TempDir,
}

impl Prometheus {
    pub fn start(targets: &[SocketAddr]) -> Prometheus {
        Self::start_with_rules(targets, &[])
    }

    /// As [`Prometheus::start`], also evaluating the alerting rules in
    /// `rule_files` every second.
    pub fn start_with_rules(targets: &[SocketAddr], rule_files: &[&Path]) -> Prometheus {
        require(PROMETHEUS, "prometheus");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|f| format!("'{}'", f.display()))
            .collect();
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  \
                 evaluation_interval: 1s\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: rename-audit\n    static_configs:\n      \
                 - targets: [{}]\n",
                rules.join(", "),
                targets.join(", ")
            ),
        )
        .expect("write prometheus.yml");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut proc_ = Proc::spawn(
            "prometheus",
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .current_dir(dir.path()),
            dir.path().join("prometheus.log"),
        );
        proc_.wait_until("GET /-/ready", || http_ready(addr));
        Prometheus {
            addr,
            proc_,
            _dir: dir,
        }
    }

    /// `GET path` on Prometheus's HTTP API, parsed; e.g. `/api/v1/alerts`.
    pub fn api(&self, path: &str) -> Value {
        get_json(self.addr, path)
    }

    /// An instant PromQL query; the `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let v = get_json(
            self.addr,
            &format!("/api/v1/query?query={}", http::encode(promql)),
        );
        assert_eq!(v["status"], "success", "query {promql}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of an instant query, if it has exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [one] => one["value"][1].as_str().and_then(|s| s.parse().ok()),
            _ => None,
        }
    }

    /// Poll `promql` until its single value satisfies `pred`.
    pub fn wait_for_value(
        &self,
        promql: &str,
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let until = Instant::now() + timeout;
        loop {
            if let Some(v) = self.value(promql)
                && pred(v)
            {
                return v;
            }
            if Instant::now() > until {
                panic!(
                    "prometheus: {promql} did not reach the expected value in {timeout:?}; \
                     last result {:?}; scrape targets: {}",
                    self.query(promql),
                    get_json(self.addr, "/api/v1/targets")
                );
            }
            sleep(Duration::from_millis(200));
        }
    }
}

/// `rsyslogd` receiving on UDP, TCP (octet-counting or LF framing) and a unix
/// datagram socket, writing every message as one line to `output`:
/// `pri=.. sev=.. fac=.. app=.. procid=.. msgid=.. sd=.. msg=..`.
pub struct Rsyslog {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub unix_socket: PathBuf,
    pub output: PathBuf,
    config: PathBuf,
    dir: TempDir,
    proc_: Proc,
}

impl Rsyslog {
    pub fn start() -> Rsyslog {
        require(RSYSLOGD, "rsyslog");
        let dir = tempfile::tempdir().expect("tempdir");
        let work = dir.path().join("work");
        fs::create_dir(&work).expect("rsyslog work dir");
        let port = free_port();
        let udp: SocketAddr = ([127, 0, 0, 1], port).into();
        let tcp_port = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let tcp: SocketAddr = ([127, 0, 0, 1], tcp_port).into();
        let unix_socket = dir.path().join("log.sock");
        let output = dir.path().join("messages.log");
        let config = dir.path().join("rsyslog.conf");
        fs::write(
            &config,
            format!(
                r#"global(workDirectory="{work}" net.enableDNS="off")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
input(type="imuxsock" Socket="{sock}" UseSpecialParser="off" ParseHostname="on")
template(name="line" type="string" string="pri=%pri% sev=%syslogseverity% fac=%syslogfacility% app=%app-name% procid=%procid% msgid=%msgid% sd=%structured-data% msg=%msg%\n")
action(type="omfile" file="{out}" template="line")
"#,
                work = work.display(),
                udp_port = udp.port(),
                tcp_port = tcp.port(),
                sock = unix_socket.display(),
                out = output.display(),
            ),
        )
        .expect("write rsyslog.conf");
        let proc_ = Self::spawn(&config, dir.path());
        let mut r = Rsyslog {
            udp,
            tcp,
            unix_socket,
            output,
            config,
            dir,
            proc_,
        };
        r.wait_ready();
        r
    }

    fn spawn(config: &Path, dir: &Path) -> Proc {
        Proc::spawn(
            "rsyslogd",
            Command::new(RSYSLOGD)
                .arg("-n")
                .arg("-f")
                .arg(config)
                .arg("-i")
                .arg(dir.join("rsyslogd.pid")),
            dir.join("rsyslogd.log"),
        )
    }

    /// Ready when the TCP port accepts, the unix socket exists, and a probe
    /// sent over UDP is written out.
    fn wait_ready(&mut self) {
        let (tcp, sock, out, udp) = (
            self.tcp,
            self.unix_socket.clone(),
            self.output.clone(),
            self.udp,
        );
        let probe = format!("probe-{}-{}", std::process::id(), self.tcp.port());
        let sender = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
        self.proc_
            .wait_until("TCP, unix socket and a UDP probe", || {
                if TcpStream::connect_timeout(&tcp, Duration::from_millis(200)).is_err()
                    || !sock.exists()
                {
                    return false;
                }
                let _ = sender.send_to(format!("<14>1 - - test - - - {probe}").as_bytes(), udp);
                sleep(Duration::from_millis(50));
                fs::read_to_string(&out).is_ok_and(|t| t.contains(&probe))
            });
    }

    /// Kill and start again on the same ports and socket, as a restart would.
    pub fn restart(&mut self) {
        self.proc_.stop();
        let _ = fs::remove_file(&self.unix_socket);
        self.proc_ = Self::spawn(&self.config, self.dir.path());
        self.wait_ready();
    }

    pub fn stop(&mut self) {
        self.proc_.stop();
    }

    pub fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Poll until `n` written lines contain `needle`; returns those lines.
    pub fn wait_for_lines(&self, needle: &str, n: usize, timeout: Duration) -> Vec<String> {
        let until = Instant::now() + timeout;
        loop {
            let hits: Vec<String> = self
                .lines()
                .into_iter()
                .filter(|l| l.contains(needle))
                .collect();
            if hits.len() >= n || Instant::now() > until {
                assert!(
                    hits.len() >= n,
                    "rsyslog: expected {n} lines with {needle:?} within {timeout:?}, got {}:\n{}",
                    hits.len(),
                    hits.join("\n")
                );
                return hits;
            }
            sleep(Duration::from_millis(50));
        }
    }
}
