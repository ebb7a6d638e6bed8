//! The Alertmanager sink against a fleet's Alertmanager: Debian's real
//! `prometheus-alertmanager` replicas on loopback, each behind TLS with
//! client certificates and bcrypt basic auth (`support::fleet`), the real
//! daemon, and real renames. Every alert goes to every replica, each
//! replica has its own queue, TLS and credential refusals are named and
//! counted without a retry loop, and the watchdog reaches every replica.
//! Every wait polls a real signal (an API, the daemon's log or /metrics)
//! under a deadline.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    daemon::Daemon,
    fleet::{self, Fleet, PASSWORD, Pki, Serving, USER},
    http, patience, renamer,
    servers::free_port,
    skip,
};

/// A copy of the workload outside every writable place the rules know, so
/// that its kworker name is a `kernel-thread-mimic` alert of its own.
struct Workload {
    path: PathBuf,
}

impl Workload {
    fn new(tag: &str) -> Workload {
        let dir =
            Path::new("/var/lib").join(format!("rename-audit-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("workload directory");
        let path = dir.join("renamer");
        std::fs::copy(renamer::path(), &path).expect("copy the workload");
        Workload { path }
    }

    /// Renames itself to a kernel thread's name: a masquerade.
    fn masquerade(&self) {
        renamer::run_from(&self.path, "prctl", b"kworker/1:2", &[]);
    }

    fn exe(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The daemon's configuration for `urls`: mTLS with the test CA (and the
/// client certificate unless `client_cert` is false), basic auth with the
/// password in a 0600 file.
fn daemon_config(
    dir: &Path,
    pki: &Pki,
    urls: &[String],
    client_cert: bool,
    heartbeat_secs: u64,
    timeout_ms: u64,
    password: &str,
) -> (PathBuf, PathBuf) {
    let tls = TlsExtra {
        client_cert,
        ..MTLS
    };
    daemon_config_with(dir, pki, urls, &tls, heartbeat_secs, timeout_ms, password)
}

struct TlsExtra<'a> {
    client_cert: bool,
    server_name: Option<&'a str>,
    insecure_skip_verify: bool,
}

/// Mutual TLS with the test CA and the client certificate, nothing else.
const MTLS: TlsExtra<'static> = TlsExtra {
    client_cert: true,
    server_name: None,
    insecure_skip_verify: false,
};

fn daemon_config_with(
    dir: &Path,
    pki: &Pki,
    urls: &[String],
    tls: &TlsExtra,
    heartbeat_secs: u64,
    timeout_ms: u64,
    password: &str,
) -> (PathBuf, PathBuf) {
    let client_cert = tls.client_cert;
    let password_file = pki.secret("am-password", &format!("{password}\n"));
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let cert = if client_cert {
        format!(
            "cert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.client.cert.display(),
            pki.client.key.display()
        )
    } else {
        String::new()
    };
    let cert = match tls.server_name {
        Some(name) => format!("{cert}server_name = \"{name}\"\n"),
        None => cert,
    };
    let cert = if tls.insecure_skip_verify {
        format!("{cert}insecure_skip_verify = true\n")
    } else {
        cert
    };
    // The daemon sees the whole host: only the rule the workload trips is
    // on, so that other processes' renames seldom add alerts (the checks
    // below hold even when they do).
    let text = format!(
        "[rules.process-renamed]\nenabled = false\n[rules.sibling-renamed-main]\nenabled = false\n\
         [rules.system-name-mimic]\nenabled = false\n[rules.writable-path-stomp]\nenabled = false\n\
         [rules.process-hidden]\nenabled = false\n\n\
         [sinks.alertmanager]\nurls = [{}]\nheartbeat_secs = {heartbeat_secs}\n\
         timeout_ms = {timeout_ms}\n\n\
         [sinks.alertmanager.tls_config]\nca_file = \"{}\"\n{cert}\n\
         [sinks.alertmanager.basic_auth]\nusername = \"{USER}\"\npassword_file = \"{}\"\n",
        urls.join(", "),
        pki.ca.display(),
        password_file.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    (path, password_file)
}

/// Starts the daemon with `config` and `/metrics` on a free port.
fn start_daemon(config: &Path) -> (Daemon, SocketAddr) {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let d = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--metrics-listen",
        &listen.to_string(),
    ]);
    (d, listen)
}

/// The value of one series of the daemon's /metrics, 0 when absent.
fn metric(listen: SocketAddr, series: &str) -> f64 {
    let (status, body) = http::get(listen, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().expect("numeric sample"))
        })
        .unwrap_or(0.0)
}

/// `name{sink="alertmanager",replica="<url>"}`.
fn replica_series(name: &str, url: &str) -> String {
    format!("{name}{{sink=\"alertmanager\",replica=\"{url}\"}}")
}

/// The value of `name` for replica `url`, 0 when absent.
fn replica_metric(listen: SocketAddr, name: &str, url: &str) -> f64 {
    metric(listen, &replica_series(name, url))
}

/// `rename_audit_alertmanager_watchdog_posts_total` for replica `url` and
/// `result`.
fn watchdog_posts(listen: SocketAddr, url: &str, result: &str) -> f64 {
    metric(
        listen,
        &format!(
            "rename_audit_alertmanager_watchdog_posts_total{{replica=\"{url}\",result=\"{result}\"}}"
        ),
    )
}

/// Waits up to `secs` until `name` for replica `url` counts at least one.
fn wait_replica_counted(listen: SocketAddr, name: &str, url: &str, secs: u64) {
    wait_metric(
        listen,
        &replica_series(name, url),
        Duration::from_secs(secs),
        |v| v >= 1.0,
    );
}

fn wait_metric(
    listen: SocketAddr,
    series: &str,
    timeout: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let until = Instant::now() + patience(timeout);
    loop {
        let v = metric(listen, series);
        if pred(v) {
            return v;
        }
        assert!(
            Instant::now() < until,
            "{series} is {v}, not as expected, after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a line of the daemon's log that holds every one of `needles`.
fn wait_log_line(d: &mut Daemon, needles: &[&str], timeout: Duration) -> String {
    let until = Instant::now() + patience(timeout);
    loop {
        let text = d.stderr_text();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < until,
            "the daemon logged no line with all of {needles:?} within {timeout:?}; its log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `url` has given up on at least one alert, then checks that
/// no attempt was a retry: each failed attempt stands for at least one
/// alert given up or one watchdog post. A retry loop would make more
/// attempts than that (and would not have given up yet).
fn assert_given_up_without_retries(listen: SocketAddr, url: &str) {
    let failed = "rename_audit_sink_failed_total";
    wait_replica_counted(listen, failed, url, 20);
    // Attempts first: each is counted before what it gave up.
    let errors = replica_metric(listen, "rename_audit_sink_errors_total", url);
    let failed = replica_metric(listen, failed, url);
    let watchdog = watchdog_posts(listen, url, "failed");
    assert_eq!(
        watchdog, 1.0,
        "{url}: the watchdog was posted once, at start"
    );
    assert!(
        errors >= 2.0 && errors <= failed + watchdog,
        "{url}: {errors} failed attempts for {failed} alerts given up and {watchdog} watchdog posts"
    );
    assert_eq!(
        replica_metric(listen, "rename_audit_sink_sent_total", url),
        0.0
    );
}

/// Waits up to `secs` until `replica` holds the workload's
/// `kernel-thread-mimic` alert; returns the workload's alerts.
fn wait_mimic(replica: &fleet::Replica, workload: &Workload, secs: u64) -> Vec<Value> {
    replica.wait_for_alerts(
        "executable",
        workload.exe(),
        Duration::from_secs(secs),
        has_mimic,
    )
}

/// The fleet's certificates, or `None` (the test is skipped) when a tool
/// the fleet needs is missing.
fn pki_or_skip() -> Option<Pki> {
    if let Some(why) = fleet::missing_tool() {
        skip(&why);
        return None;
    }
    Some(Pki::make())
}

/// One replica, serving well.
fn one_good_replica(pki: Pki) -> Fleet {
    let good = Serving::good(&pki);
    Fleet::alone(pki, &[good])
}

fn has_mimic(alerts: &[Value]) -> bool {
    alerts
        .iter()
        .any(|a| a["labels"]["rule"] == "kernel-thread-mimic")
}

fn watchdog_of(replica: &fleet::Replica, host: &str) -> Value {
    let w = replica.wait_for_alerts(
        "alertname",
        "RenameAuditWatchdog",
        Duration::from_secs(20),
        |a| a.iter().any(|w| w["labels"]["host"] == host),
    );
    w.into_iter()
        .find(|w| w["labels"]["host"] == host)
        .expect("the watchdog")
}

fn hostname() -> String {
    ::hostname::get().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_replica_gets_the_alert_and_a_stopped_one_gets_it_after_its_restart() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let good = Serving::good(&pki);
    let mut fleet = Fleet::cluster(pki, &[good.clone(), good.clone(), good]);
    let urls = fleet.urls();
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = daemon_config(dir.path(), &fleet.pki, &urls, true, 1, 2000, PASSWORD);
    let (mut d, listen) = start_daemon(&config);
    let host = hostname();

    // The watchdog is on every replica, carrying the host's labels.
    for r in &fleet.replicas {
        let w = watchdog_of(r, &host);
        assert_eq!(w["status"]["state"], "active", "{w:#}");
    }

    // One replica goes down; an alert fires meanwhile.
    fleet.replicas[2].stop();
    let down = urls[2].clone();
    let workload = Workload::new("fleet-restart");
    workload.masquerade();
    for r in &fleet.replicas[..2] {
        let got = wait_mimic(r, &workload, 20);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0]["labels"]["host"], host.as_str());
    }
    wait_replica_counted(listen, "rename_audit_sink_errors_total", &down, 20);
    wait_log_line(
        &mut d,
        &[&format!("replica={down}"), "cannot connect"],
        Duration::from_secs(10),
    );
    let sent = |url: &str| replica_metric(listen, "rename_audit_sink_sent_total", url);
    assert!(sent(&urls[0]) >= 1.0 && sent(&urls[1]) >= 1.0);
    assert_eq!(
        sent(&down),
        0.0,
        "the down replica's alert is held, not sent"
    );

    // Back up: its queue still held the alert, which it now gets. Alerts
    // are not gossiped, so only the daemon can have brought it.
    fleet.replicas[2].restart();
    let got = wait_mimic(&fleet.replicas[2], &workload, 30);
    assert_eq!(got.len(), 1, "{got:#?}");
    wait_replica_counted(listen, "rename_audit_sink_sent_total", &down, 10);
    for url in &urls {
        assert_eq!(
            replica_metric(listen, "rename_audit_sink_failed_total", url),
            0.0,
            "nothing given up for {url}"
        );
        assert_eq!(
            replica_metric(listen, "rename_audit_sink_queue_dropped_total", url),
            0.0,
            "nothing dropped for {url}"
        );
    }

    // The watchdog is refreshed on every replica, the restarted one
    // included: same start, a later end, three heartbeats ahead.
    for r in &fleet.replicas {
        let first = watchdog_of(r, &host);
        let until = Instant::now() + patience(Duration::from_secs(20));
        let later = loop {
            let w = watchdog_of(r, &host);
            if w["endsAt"] != first["endsAt"] {
                break w;
            }
            assert!(
                Instant::now() < until,
                "{}: the watchdog is not refreshed: {w:#}",
                r.url()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            later["endsAt"].as_str() > first["endsAt"].as_str(),
            "{first:#} then {later:#}"
        );
        assert_eq!(later["labels"]["alertname"], "RenameAuditWatchdog");
        assert_eq!(later["status"]["state"], "active", "{later:#}");
    }
    assert!(watchdog_posts(listen, &urls[0], "sent") >= 2.0);
    let (status, _) = d.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn tls_and_credential_refusals_name_the_replica_and_the_reason_and_are_not_retried() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let good = Serving::good(&pki);
    let rogue = Serving {
        server: pki.rogue_server.clone(),
        ..good.clone()
    };
    let expired = Serving {
        server: pki.expired_server.clone(),
        ..good.clone()
    };
    let other_password = Serving {
        password: "wrong horse battery staple".to_owned(),
        ..good.clone()
    };
    let fleet = Fleet::alone(pki, &[good, rogue, expired, other_password]);
    let urls = fleet.urls();
    let dir = tempfile::tempdir().unwrap();
    // A heartbeat far away: the watchdog is posted once, at start.
    let (config, _) = daemon_config(dir.path(), &fleet.pki, &urls, true, 3600, 5000, PASSWORD);
    let (mut d, listen) = start_daemon(&config);

    let workload = Workload::new("fleet-refusals");
    workload.masquerade();
    // The good replica is not held up by the three that refuse.
    wait_mimic(&fleet.replicas[0], &workload, 20);

    for (url, reason) in [
        (
            &urls[1],
            "the server's certificate is not signed by a trusted CA",
        ),
        (&urls[2], "the server's certificate has expired"),
        (
            &urls[3],
            "HTTP 401 Unauthorized (the replica refused the credentials",
        ),
    ] {
        // Given up at once, counted as failed for this replica, no retries.
        assert_given_up_without_retries(listen, url);
        let line = wait_log_line(
            &mut d,
            &[
                "giving up on delivering records to this replica",
                &format!("replica={url}"),
                reason,
            ],
            Duration::from_secs(10),
        );
        assert!(!line.contains(PASSWORD), "{line}");
    }
    assert!(replica_metric(listen, "rename_audit_sink_sent_total", &urls[0]) >= 1.0);
    let log = d.stderr_text();
    assert!(!log.contains(PASSWORD), "the password is never logged");
    let (status, _) = d.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn server_name_checks_the_certificate_against_that_name_instead_of_the_host() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let named = Serving {
        server: pki.named_server.clone(),
        dns_name: Some("am.internal".to_owned()),
        ..Serving::good(&pki)
    };
    let fleet = Fleet::alone(pki, &[named]);
    let urls = fleet.urls();
    let url = &urls[0];

    // Reached at 127.0.0.1, the certificate (for am.internal) is refused.
    let dir = tempfile::tempdir().unwrap();
    let (config, _) =
        daemon_config_with(dir.path(), &fleet.pki, &urls, &MTLS, 3600, 5000, PASSWORD);
    let (mut d, listen) = start_daemon(&config);
    let workload = Workload::new("fleet-name-1");
    workload.masquerade();
    assert_given_up_without_retries(listen, url);
    wait_log_line(
        &mut d,
        &[
            &format!("replica={url}"),
            "the server's certificate is not for this host",
        ],
        Duration::from_secs(10),
    );
    d.stop();

    // With server_name = "am.internal" the same certificate is taken.
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsExtra {
        server_name: Some("am.internal"),
        ..MTLS
    };
    let (config, _) = daemon_config_with(dir.path(), &fleet.pki, &urls, &tls, 3600, 5000, PASSWORD);
    let (mut d, _listen) = start_daemon(&config);
    let workload = Workload::new("fleet-name-2");
    workload.masquerade();
    wait_mimic(&fleet.replicas[0], &workload, 20);
    d.stop();
}

#[test]
fn insecure_skip_verify_takes_any_certificate_and_says_so_loudly() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let rogue = Serving {
        server: pki.rogue_server.clone(),
        ..Serving::good(&pki)
    };
    let fleet = Fleet::alone(pki, &[rogue]);
    let urls = fleet.urls();
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsExtra {
        insecure_skip_verify: true,
        ..MTLS
    };
    let (config, _) = daemon_config_with(dir.path(), &fleet.pki, &urls, &tls, 3600, 5000, PASSWORD);
    let (mut d, listen) = start_daemon(&config);
    wait_log_line(
        &mut d,
        &[
            "insecure_skip_verify is true",
            "ANY server certificate is accepted",
        ],
        Duration::from_secs(10),
    );
    // The certificate from a CA nobody trusts is taken: the watchdog and
    // the alert are accepted (HTTP 200) by the replica.
    let workload = Workload::new("fleet-insecure");
    workload.masquerade();
    wait_replica_counted(listen, "rename_audit_sink_sent_total", &urls[0], 20);
    assert_eq!(watchdog_posts(listen, &urls[0], "sent"), 1.0);
    d.stop();
}

#[test]
fn a_replica_refuses_a_daemon_without_a_client_certificate_once_per_alert() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let fleet = one_good_replica(pki);
    let urls = fleet.urls();
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = daemon_config(dir.path(), &fleet.pki, &urls, false, 3600, 5000, PASSWORD);
    let (mut d, listen) = start_daemon(&config);
    let workload = Workload::new("fleet-no-cert");
    workload.masquerade();
    let url = &urls[0];
    assert_given_up_without_retries(listen, url);
    wait_log_line(
        &mut d,
        &[
            &format!("replica={url}"),
            "the server refused the client certificate, or none was sent",
        ],
        Duration::from_secs(10),
    );
    d.stop();
}

/// Accepts TCP connections and never answers; holds them until dropped.
struct HungServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HungServer {
    fn start() -> HungServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => held.push(s),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
        });
        HungServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HungServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_hung_replica_does_not_delay_the_others() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let good = Serving::good(&pki);
    let fleet = Fleet::cluster(pki, &[good.clone(), good]);
    let hung = HungServer::start();
    let hung_url = format!("https://{}", hung.addr);
    let urls = vec![
        fleet.replicas[0].url(),
        hung_url.clone(),
        fleet.replicas[1].url(),
    ];
    let dir = tempfile::tempdir().unwrap();
    // The hung replica's requests wait out a minute: far longer than the
    // others need.
    let (config, _) = daemon_config(dir.path(), &fleet.pki, &urls, true, 3600, 60_000, PASSWORD);
    let (mut d, listen) = start_daemon(&config);
    let workload = Workload::new("fleet-hung");
    workload.masquerade();
    for r in &fleet.replicas {
        wait_mimic(r, &workload, 20);
    }
    // Both got it while the hung replica's first request is still waiting:
    // nothing is counted for it yet, neither sent nor failed.
    for name in [
        "rename_audit_sink_sent_total",
        "rename_audit_sink_failed_total",
        "rename_audit_sink_errors_total",
    ] {
        assert_eq!(replica_metric(listen, name, &hung_url), 0.0, "{name}");
    }
    for url in [&urls[0], &urls[2]] {
        assert!(replica_metric(listen, "rename_audit_sink_sent_total", url) >= 1.0);
    }
    // Stopping does not wait out the hung request either.
    let (status, _) = d.stop_within(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    drop(hung);
}

#[test]
fn sighup_reads_a_changed_password_file_again() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let fleet = one_good_replica(pki);
    let urls = fleet.urls();
    let dir = tempfile::tempdir().unwrap();
    let (config, password_file) = daemon_config(
        dir.path(),
        &fleet.pki,
        &urls,
        true,
        3600,
        5000,
        "an old password",
    );
    let (mut d, listen) = start_daemon(&config);
    let url = &urls[0];
    let first = Workload::new("fleet-hup-1");
    first.masquerade();
    wait_replica_counted(listen, "rename_audit_sink_failed_total", url, 20);

    // The password is rotated: the file gets the new one, then SIGHUP.
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded");
    let second = Workload::new("fleet-hup-2");
    second.masquerade();
    wait_mimic(&fleet.replicas[0], &second, 20);
    assert!(replica_metric(listen, "rename_audit_sink_sent_total", url) >= 1.0);

    // A secret file others can read is refused on reload, naming the fix;
    // the password in use stays.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    d.signal(libc::SIGHUP);
    let line = d.wait_for_log("configuration not reloaded");
    assert!(line.contains("chmod 600"), "{line}");
    assert!(!d.stderr_text().contains(PASSWORD));
    d.stop();
}

#[test]
fn check_config_finds_fleet_mistakes_offline_at_their_lines() {
    let Some(pki) = pki_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exposed = dir.path().join("exposed-password");
    std::fs::write(&exposed, format!("{PASSWORD}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[sinks.alertmanager]\n\
             urls = [\"https://127.0.0.1:9093\", \"http://127.0.0.1:9094\"]\n\
             [sinks.alertmanager.tls_config]\n\
             ca_file = \"{}\"\n\
             cert_file = \"{}\"\n\
             key_file = \"{}\"\n\
             [sinks.alertmanager.basic_auth]\n\
             username = \"{USER}\"\n\
             password_file = \"{}\"\n",
            pki.ca.display(),
            pki.client.cert.display(),
            pki.server.key.display(),
            exposed.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for want in [
        format!("{p}:2:35: sinks.alertmanager.url: \"http://127.0.0.1:9094\" is plain http"),
        format!(
            "{p}:6:12: sinks.alertmanager.tls_config.key_file: {}: is not the key of the certificate in {}",
            pki.server.key.display(),
            pki.client.cert.display()
        ),
        format!(
            "{p}:9:17: sinks.alertmanager.basic_auth.password_file: {}: permissions 0644 are too open",
            exposed.display()
        ),
    ] {
        assert!(err.contains(&want), "want {want:?} in:\n{err}");
    }
    assert!(!err.contains(PASSWORD), "{err}");
}
