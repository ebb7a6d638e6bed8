//! Runs the real daemon (real kernel programs) and reads its output file.
//!
//! Hermetic: every daemon gets `--config` with a file of the test's own (an
//! empty one, written in the test's temp dir, unless the test passes its
//! own), so /etc/rename-audit/config.toml never changes an outcome, and
//! `--state-dir` in its temp dir (unless the test passes its own), so no
//! run of a test reads or leaves /var/lib/rename-audit.
//! Readiness is the daemon's `READY=1` on a notification socket the harness
//! owns (the sd_notify protocol systemd uses for `Type=notify`), not a
//! pattern in its log.
use std::{
    io::{BufRead, BufReader},
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

pub struct Daemon {
    child: Child,
    pub output: PathBuf,
    pub dir: tempfile::TempDir,
    read: usize,
    events: Vec<Value>,
    stderr: mpsc::Receiver<String>,
    pub stderr_lines: Vec<String>,
    /// Lines of `stderr_lines` that `wait_for_log` has looked past.
    log_read: usize,
}

/// `event["a"]["b"]` for the path "a.b"; Null when absent.
pub fn at<'a>(event: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(event, |v, k| v.get(k).unwrap_or(&Value::Null))
}

pub fn str_at<'a>(event: &'a Value, path: &str) -> &'a str {
    at(event, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {event}"))
}

pub fn u64_at(event: &Value, path: &str) -> u64 {
    at(event, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a number in {event}"))
}

/// Where a test that starts the daemon or reads a configuration by
/// default points it instead of /etc/rename-audit/config.toml: an empty
/// file in `dir` (so the defaults), created on first use.
pub fn empty_config(dir: &Path) -> PathBuf {
    let path = dir.join("empty-config.toml");
    if !path.exists() {
        std::fs::write(&path, b"").expect("write the empty config");
    }
    path
}

/// An empty configuration for one-shot commands with no directory of their
/// own, in the target's scratch directory (writable in the guests too). Not
/// /dev/null: the daemon refuses a configuration that is not a regular file.
pub fn no_config() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = empty_config(Path::new(env!("CARGO_TARGET_TMPDIR")));
        path.to_str().expect("a UTF-8 target directory").to_owned()
    })
}

/// Whether a notification datagram says the daemon is ready.
fn says_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

impl Daemon {
    /// Starts `rename-audit run --output <tmp file> <args>` and waits until
    /// it says it is ready.
    pub fn start(args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = dir.path().join("events.json");
        Self::start_with(dir, output, args)
    }

    pub fn start_with(dir: tempfile::TempDir, output: PathBuf, args: &[&str]) -> Daemon {
        Self::start_configured(dir, output, args, |_| {})
    }

    /// As [`Daemon::start_with`], with `configure` applied to the command
    /// last (limits, stdout, ...).
    pub fn start_configured(
        dir: tempfile::TempDir,
        output: PathBuf,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        // Most tests look at every rename, thread renames included, so they
        // ask for all of them unless they choose (by flag or in a file).
        let gives_config = args.contains(&"--config");
        let chooses = gives_config || args.contains(&"--thread-renames");
        let all_threads: &[&str] = if chooses {
            &[]
        } else {
            &["--thread-renames", "all"]
        };
        let own_config = (!gives_config).then(|| empty_config(dir.path()));
        let own_state = (!args.contains(&"--state-dir")).then(|| dir.path().join("state"));
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("bind the notification socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("notification socket timeout");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rename-audit"));
        cmd.arg("run").arg("--output").arg(&output);
        if let Some(config) = &own_config {
            cmd.arg("--config").arg(config);
        }
        if let Some(state) = &own_state {
            cmd.arg("--state-dir").arg(state);
        }
        cmd.args(all_threads)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("start rename-audit");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[daemon] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            output,
            dir,
            read: 0,
            events: Vec::new(),
            stderr,
            stderr_lines: Vec::new(),
            log_read: 0,
        };
        let deadline = Instant::now() + super::patience(Duration::from_secs(60));
        let mut datagram = [0u8; 4096];
        loop {
            if let Some(status) = daemon.child.try_wait().expect("wait") {
                daemon.drain_stderr();
                panic!(
                    "the daemon exited before it was ready ({status}): {:#?}",
                    daemon.stderr_lines
                );
            }
            match notify.recv(&mut datagram) {
                Ok(n) if says_ready(&datagram[..n]) => {
                    daemon.drain_stderr();
                    return daemon;
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading the notification socket: {e}"),
            }
            daemon.drain_stderr();
            if Instant::now() > deadline {
                panic!(
                    "the daemon sent no READY=1 within 60 s; its stderr: {:#?}",
                    daemon.stderr_lines
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child, e.g. to take a piped stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits up to `timeout` for the daemon to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + super::patience(timeout);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The stderr reader thread ends with the pipe; collect all.
                std::thread::sleep(Duration::from_millis(100));
                self.drain_stderr();
                return status;
            }
            if Instant::now() > deadline {
                self.drain_stderr();
                panic!(
                    "the daemon did not exit within {timeout:?}; its stderr: {:#?}",
                    self.stderr_lines
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the daemon logged so far.
    pub fn stderr_text(&mut self) -> String {
        self.drain_stderr();
        self.stderr_lines.join("\n")
    }

    fn drain_stderr(&mut self) {
        while let Ok(line) = self.stderr.try_recv() {
            self.stderr_lines.push(line);
        }
    }

    /// The output file's bytes so far (for tests of non-JSON formats).
    pub fn raw_output(&self) -> Vec<u8> {
        std::fs::read(&self.output).unwrap_or_default()
    }

    /// Every complete line written so far, parsed.
    pub fn events(&mut self) -> &[Value] {
        let data = std::fs::read(&self.output).unwrap_or_default();
        let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        if end > self.read {
            for line in data[self.read..end]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                let v: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
                    panic!(
                        "output line is not JSON ({e}): {}",
                        String::from_utf8_lossy(line)
                    )
                });
                self.events.push(v);
            }
            self.read = end;
        }
        &self.events
    }

    /// The output file was rotated: read the new file at the path from its
    /// start, forgetting the events read so far.
    pub fn follow_new_file(&mut self) {
        self.read = 0;
        self.events.clear();
    }

    /// Waits up to 10 s for an event matching `pred`.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(Duration::from_secs(10), what, pred)
    }

    /// Waits up to `timeout` for an event matching `pred`.
    pub fn wait_for_within(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + super::patience(timeout);
        loop {
            if let Some(e) = self.events().iter().find(|e| pred(e)) {
                return e.clone();
            }
            if Instant::now() > deadline {
                self.drain_stderr();
                panic!(
                    "no event for {what} within {timeout:?}; daemon stderr: {:#?}",
                    self.stderr_lines
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Events about process `pid` (renamed or writer).
    pub fn events_of(&mut self, pid: u32) -> Vec<Value> {
        let pid = u64::from(pid);
        self.events()
            .iter()
            .filter(|e| {
                at(e, "process.pid").as_u64() == Some(pid)
                    || at(e, "rename.writer.pid").as_u64() == Some(pid)
            })
            .cloned()
            .collect()
    }

    /// Waits up to 10 s for a line on the daemon's stderr (its own log)
    /// that contains `needle` and was not seen by an earlier call.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + super::patience(Duration::from_secs(10));
        loop {
            self.drain_stderr();
            if let Some(i) = self.stderr_lines[self.log_read..]
                .iter()
                .position(|l| l.contains(needle))
            {
                let i = self.log_read + i;
                self.log_read = i + 1;
                return self.stderr_lines[i].clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "the daemon logged no {needle:?} within 10 s; its stderr: {:#?}",
                    self.stderr_lines
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the daemon process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGTERM, then waits for the exit; returns the status and how long it took.
    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        self.stop_within(Duration::from_secs(10))
    }

    /// As [`Daemon::stop`], allowing `timeout` for the exit (a backlog of
    /// records to drain on a busy host).
    pub fn stop_within(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        self.signal(libc::SIGTERM);
        let deadline = start + super::patience(timeout);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.drain_stderr();
                return (status, start.elapsed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the daemon did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
