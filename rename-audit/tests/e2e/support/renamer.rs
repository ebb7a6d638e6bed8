//! The test workload: tests/e2e/support/renamer.c, compiled once per test binary.
use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdout, Command, Stdio},
    sync::OnceLock,
};

/// Where the renamer is built: outside every writable place the rules
/// know (/tmp, /home, /root, ...), wherever the checkout is, so that its
/// renames raise only the alerts a test expects. Where that directory
/// cannot be made (the kernel matrix's guest shares the host's root read-
/// only), the target directory's tmp.
fn build_dir() -> PathBuf {
    let trusted = PathBuf::from("/var/lib/rename-audit-tests");
    if std::fs::create_dir_all(&trusted).is_ok() {
        // Renamers of test runs that are over.
        for entry in std::fs::read_dir(&trusted).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix("renamer-"));
            if pid.is_some_and(|pid| !std::path::Path::new("/proc").join(pid).exists()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let probe = trusted.join(format!(".probe-{}", std::process::id()));
        if std::fs::write(&probe, b"").is_ok() {
            let _ = std::fs::remove_file(probe);
            return trusted;
        }
    }
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Path of the compiled renamer.
pub fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = build_dir().join(format!("renamer-{}", std::process::id()));
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/support/renamer.c");
        let status = Command::new("cc")
            .args(["-O2", "-pthread", "-o"])
            .arg(&out)
            .arg(src)
            .status()
            .expect("run cc to build the test renamer (is gcc installed?)");
        assert!(status.success(), "compiling {src} failed");
        out
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a finished renamer printed.
#[derive(Debug)]
pub struct Output {
    pub values: HashMap<String, Vec<String>>,
}

impl Output {
    pub fn get(&self, key: &str) -> u32 {
        self.values
            .get(key)
            .and_then(|v| v.first())
            .unwrap_or_else(|| panic!("renamer printed no {key}: {self:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("renamer's {key} is not a number: {self:?}"))
    }

    pub fn all(&self, key: &str) -> Vec<u32> {
        self.values
            .get(key)
            .map(|v| v.iter().map(|s| s.parse().expect("number")).collect())
            .unwrap_or_default()
    }

    pub fn int(&self, key: &str) -> i64 {
        self.values[key][0].parse().expect("number")
    }
}

fn parse(lines: impl Iterator<Item = String>) -> Output {
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once('=') {
            values.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    Output { values }
}

/// Runs `renamer <cmd> <hex name> <extra...>` to completion.
pub fn run(cmd: &str, name: &[u8], extra: &[&str]) -> Output {
    run_from(path(), cmd, name, extra)
}

pub fn run_from(program: &PathBuf, cmd: &str, name: &[u8], extra: &[&str]) -> Output {
    let out = Command::new(program)
        .arg(cmd)
        .arg(hex(name))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run the renamer");
    assert!(out.status.success(), "renamer {cmd} failed: {out:?}");
    parse(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned),
    )
}

/// A renamer that waits for a line on stdin before it acts.
pub struct Waiting {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    pub pid: u32,
}

pub fn spawn_waiting(cmd: &str, name: &[u8], extra: &[&str]) -> Waiting {
    spawn_waiting_from(path(), cmd, name, extra)
}

/// Like [`spawn_waiting`], running the renamer binary at `program`.
pub fn spawn_waiting_from(program: &PathBuf, cmd: &str, name: &[u8], extra: &[&str]) -> Waiting {
    let mut child = Command::new(program)
        .arg(cmd)
        .arg(hex(name))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the renamer");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("renamer pid line");
    let pid = line
        .trim()
        .strip_prefix("pid=")
        .expect("pid=")
        .parse()
        .expect("pid");
    Waiting { child, stdout, pid }
}

impl Waiting {
    /// Tells it to go on and waits for it to finish.
    pub fn go(mut self) -> Output {
        self.child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("write go");
        let lines: Vec<String> = (&mut self.stdout).lines().map_while(Result::ok).collect();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "renamer failed: {status}");
        let mut out = parse(lines.into_iter());
        out.values.insert("pid".into(), vec![self.pid.to_string()]);
        out
    }

    /// Reads one `key=value` line (e.g. a storm thread's tid).
    pub fn read_value(&mut self, key: &str) -> u32 {
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).expect("read") > 0,
                "renamer ended before printing {key}"
            );
            if let Some(v) = line.trim().strip_prefix(&format!("{key}=")) {
                return v.parse().expect("number");
            }
        }
    }
}
