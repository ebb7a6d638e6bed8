//! `rename-audit search` and `report` (issue 10 items 3 and 4) on a log the
//! real daemon wrote during the test: filters by pid, tid, glob, rule,
//! method and time; `--json` prints the matching input lines byte for byte;
//! rotated and gzip-compressed files, stdin and the configured output file
//! are read; an unprivileged user can search a copy.
use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

use crate::support::{
    daemon::{Daemon, at, str_at},
    renamer,
};
use serde_json::Value;

/// The log of one daemon run and what was done during it.
struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Every line of the file, '\n' included.
    lines: Vec<Vec<u8>>,
    first: u32,
    thread: (u32, u32),
    sibling: u32,
    storm: u32,
    /// @timestamp of the first and of the sibling rename.
    first_ts: String,
    sibling_ts: String,
}

fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let mut d = Daemon::start(&[]);
        let by = |d: &mut Daemon, pid: u32, name: &'static str| {
            d.wait_for(name, move |e| {
                at(e, "process.pid").as_u64() == Some(pid.into())
                    && at(e, "rename.new_name").as_str() == Some(name)
            })
        };
        let first = renamer::run("prctl", b"e2e-q-first", &[]).get("pid");
        let first_ts = str_at(&by(&mut d, first, "e2e-q-first"), "@timestamp").to_owned();
        let out = renamer::run("thread-prctl", b"e2e-q-thread", &[]);
        let thread = (out.get("pid"), out.get("tid"));
        by(&mut d, thread.0, "e2e-q-thread");
        let sibling = renamer::run("sibling", b"e2e-q-sib", &[]).get("pid");
        let sibling_ts = str_at(&by(&mut d, sibling, "e2e-q-sib"), "@timestamp").to_owned();
        // A storm: 5000 renames of one thread, most of them summarized.
        let storm = renamer::run("storm", b"", &["1", "5000"]).get("pid");
        d.wait_for("the storm's last summary", |e| {
            at(e, "process.pid").as_u64() == Some(storm.into())
                && at(e, "summary.thread_exited").as_bool() == Some(true)
        });
        d.stop();
        let bytes = std::fs::read(&d.output).expect("read the log");
        let lines = bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        let path = d.output.clone();
        Log {
            _dir: std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap()),
            path,
            lines,
            first,
            thread,
            sibling,
            storm,
            first_ts,
            sibling_ts,
        }
    })
}

fn parsed(line: &[u8]) -> Value {
    serde_json::from_slice(line).expect("the daemon writes JSON lines")
}

impl Log {
    /// The lines `pred` picks, concatenated: what `--json` must print.
    fn expect(&self, pred: impl Fn(&Value) -> bool) -> Vec<u8> {
        let out: Vec<u8> = self
            .lines
            .iter()
            .filter(|l| pred(&parsed(l)))
            .flatten()
            .copied()
            .collect();
        assert!(!out.is_empty(), "the expectation selects no line");
        out
    }

    fn file(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn pid_is(e: &Value, pid: u32) -> bool {
    at(e, "process.pid").as_u64() == Some(pid.into())
        || at(e, "rename.writer.pid").as_u64() == Some(pid.into())
}

fn ours(e: &Value) -> bool {
    ["rename.old_name", "rename.new_name"]
        .iter()
        .any(|f| at(e, f).as_str().is_some_and(|n| n.starts_with("e2e-q-")))
}

/// `search` and `report` read a configuration only to find the log when no
/// FILE is given: every call here names its files, or passes `--config`,
/// so /etc/rename-audit/config.toml plays no part.
fn rename_audit(args: &[&str], stdin: Option<&[u8]>) -> Output {
    rename_audit_as(
        Path::new(env!("CARGO_BIN_EXE_rename-audit")),
        None,
        args,
        stdin,
    )
}

fn rename_audit_as(bin: &Path, user: Option<u32>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = match user {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rename-audit");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(data) = stdin {
        input.write_all(data).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

/// stdout of a search that must find something.
fn found(args: &[&str]) -> Vec<u8> {
    let out = rename_audit(args, None);
    assert!(out.status.success(), "{args:?} failed: {out:?}");
    out.stdout
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8 output")
}

#[test]
fn json_output_is_the_matching_input_lines_byte_for_byte() {
    let log = log();
    let pid = log.first.to_string();
    assert_eq!(
        text(found(&["search", "--json", "--pid", &pid, log.file()])),
        text(log.expect(|e| pid_is(e, log.first)))
    );
    let ours_json = log.expect(ours);
    assert_eq!(
        ours_json
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        3,
        "three renames to e2e-q-* names"
    );
    assert_eq!(
        text(found(&[
            "search",
            "--json",
            "--name",
            "e2e-q-*",
            log.file()
        ])),
        text(ours_json)
    );
    // stdin
    let out = rename_audit(
        &["search", "--json", "--pid", &pid, "-"],
        Some(&std::fs::read(&log.path).unwrap()),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(out.stdout), text(log.expect(|e| pid_is(e, log.first))));
}

#[test]
fn readable_lines_by_default() {
    let log = log();
    let pid = log.first;
    let out = text(found(&["search", "--pid", &pid.to_string(), log.file()]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains(&format!(" process-renamed {pid}/{pid} \"renamer-"))
            && lines[0].contains(" → \"e2e-q-first\" prctl by ")
            && lines[0].ends_with(" ALERT low process-renamed"),
        "{out}"
    );
    assert!(lines[0].starts_with(&log.first_ts), "{out}");
}

#[test]
fn each_filter_selects_exactly_its_events() {
    let log = log();
    let (tpid, tid) = log.thread;
    type Selects = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(Vec<String>, Selects)> = vec![
        (
            vec!["--tid".into(), tid.to_string()],
            Box::new(move |e| {
                at(e, "process.thread.id").as_u64() == Some(tid.into())
                    || at(e, "rename.writer.tid").as_u64() == Some(tid.into())
            }),
        ),
        (
            vec!["--name".into(), "e2e-q-*".into(), "--process-only".into()],
            Box::new(|e| ours(e) && at(e, "rename.main_thread") == true),
        ),
        (
            vec![
                "--rule".into(),
                "sibling-renamed-main".into(),
                "--name".into(),
                "e2e-q-*".into(),
            ],
            Box::new(move |e| pid_is(e, log.sibling) && ours(e)),
        ),
        (
            vec![
                "--method".into(),
                "procfs".into(),
                "--name".into(),
                "e2e-q-*".into(),
            ],
            Box::new(move |e| pid_is(e, log.sibling) && ours(e)),
        ),
        (
            vec![
                "--exe".into(),
                "*/renamer-*".into(),
                "--name".into(),
                "e2e-q-th*".into(),
            ],
            Box::new(move |e| pid_is(e, tpid) && ours(e)),
        ),
        (
            vec![
                "--since".into(),
                log.sibling_ts.clone(),
                "--name".into(),
                "e2e-q-*".into(),
            ],
            Box::new(move |e| pid_is(e, log.sibling) && ours(e)),
        ),
        (
            vec![
                "--until".into(),
                log.first_ts.clone(),
                "--name".into(),
                "e2e-q-*".into(),
            ],
            Box::new(move |e| pid_is(e, log.first) && ours(e)),
        ),
        (
            vec![
                "--since".into(),
                "1h".into(),
                "--name".into(),
                "e2e-q-*".into(),
            ],
            Box::new(ours),
        ),
    ];
    for (filters, pred) in cases {
        let mut args = vec!["search", "--json"];
        args.extend(filters.iter().map(String::as_str));
        args.push(log.file());
        assert_eq!(
            text(found(&args)),
            text(log.expect(|e| pred(e))),
            "search {filters:?}"
        );
    }
    let out = rename_audit(
        &["search", "--until", "1h", "--name", "e2e-q-*", log.file()],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "nothing matched: {out:?}");
    assert!(out.stdout.is_empty());
    let out = rename_audit(&["search", "--rule", "no-such-rule", log.file()], None);
    assert_eq!(out.status.code(), Some(2), "a usage error: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sibling-renamed-main"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut input = gz.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data).expect("gzip input"));
    let out = gz.wait_with_output().expect("gzip");
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn rotated_and_gzip_files_and_the_configured_output_are_read() {
    let log = log();
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("events.json");
    // Split where our renames fall into different files, as logrotate
    // (with compress and delaycompress) leaves them: .2.gz, .1, current.
    let index = |pid: u32| {
        log.lines
            .iter()
            .position(|l| {
                let e = parsed(l);
                pid_is(&e, pid) && ours(&e)
            })
            .expect("our line")
    };
    let (a, b) = (index(log.first) + 1, index(log.thread.0) + 1);
    let cat = |r: std::ops::Range<usize>| -> Vec<u8> { log.lines[r].concat() };
    std::fs::write(dir.path().join("events.json.2.gz"), gzip(&cat(0..a))).unwrap();
    std::fs::write(dir.path().join("events.json.1"), cat(a..b)).unwrap();
    std::fs::write(&current, cat(b..log.lines.len())).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[output]\npath = \"{}\"\n", current.display()),
    )
    .unwrap();

    let all_ours = text(log.expect(ours));
    assert_eq!(
        text(found(&[
            "search",
            "--json",
            "--name",
            "e2e-q-*",
            "--config",
            cfg.to_str().unwrap()
        ])),
        all_ours,
        "no FILE: the configured file and its rotations, oldest first"
    );
    let gz = dir.path().join("events.json.2.gz");
    assert_eq!(
        text(found(&[
            "search",
            "--json",
            "--pid",
            &log.first.to_string(),
            gz.to_str().unwrap()
        ])),
        text(log.expect(|e| pid_is(e, log.first))),
        "a .gz file given by name"
    );
}

#[test]
fn an_unprivileged_user_searches_a_copy() {
    let log = log();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("copy.json");
    std::fs::copy(&log.path, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The test binary's directory may not be reachable for nobody: copy it.
    let bin = dir.path().join("rename-audit");
    std::fs::copy(env!("CARGO_BIN_EXE_rename-audit"), &bin).unwrap();
    let pid = log.first.to_string();
    let out = rename_audit_as(
        &bin,
        Some(65534),
        &["search", "--json", "--pid", &pid, copy.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(out.stdout), text(log.expect(|e| pid_is(e, log.first))));
    let out = rename_audit_as(&bin, Some(65534), &["report", copy.to_str().unwrap()], None);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn report_counts_the_range() {
    let log = log();
    let out = text(found(&["report", "--name", "e2e-q-*", log.file()]));
    for want in [
        "  process renames              2\n",
        "  thread renames               1\n",
        "  alerts                       2\n",
        "\nAlerts by rule (each matched rule counted)\n       count  rule  severity\n           2  process-renamed  low\n           1  sibling-renamed-main  medium\n",
        "\nRenames by method\n       count  method\n           2  prctl\n           1  procfs\n",
        "           1  e2e-q-first\n",
        "           1  e2e-q-sib\n",
        "           1  e2e-q-thread\n",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    let since = text(found(&[
        "report",
        "--since",
        &log.sibling_ts,
        "--name",
        "e2e-q-*",
        log.file(),
    ]));
    assert!(
        since.contains("  process renames              1\n")
            && since.contains("  thread renames               0\n"),
        "{since}"
    );

    // The storm: what was delivered one by one plus what was summarized is
    // every rename the thread made, and the report shows both.
    let storm = log.storm;
    let events: Vec<Value> = log
        .lines
        .iter()
        .map(|l| parsed(l))
        .filter(|e| pid_is(e, storm))
        .collect();
    let delivered = events
        .iter()
        .filter(|e| at(e, "event.action") == "thread-renamed")
        .count() as u64;
    let summaries: Vec<u64> = events
        .iter()
        .filter_map(|e| at(e, "summary.count").as_u64())
        .collect();
    let summarized: u64 = summaries.iter().sum();
    assert_eq!(
        delivered + summarized,
        5000,
        "the daemon accounts for every rename"
    );
    let out = text(found(&["report", "--pid", &storm.to_string(), log.file()]));
    let want_summary = format!(
        "  storm summaries   {:>12}  ({summarized} renames summarized, thread {summarized})\n",
        summaries.len()
    );
    assert!(
        out.contains(&format!("  thread renames    {delivered:>12}\n")),
        "{out}"
    );
    assert!(
        out.contains(&want_summary),
        "{want_summary:?} not in:\n{out}"
    );
    assert!(
        out.contains("  loss reports                 0  (0 records lost)\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  {:>10}  {storm}  ", delivered + summarized)),
        "the storm is the top renamer with all its renames:\n{out}"
    );
}

/// Runs `rename-audit <args>` on a pseudo-terminal (util-linux `script`),
/// returning what the terminal received.
fn on_a_terminal(args: &[&str], no_color: bool) -> String {
    let line = std::iter::once(env!("CARGO_BIN_EXE_rename-audit"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run script");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let log = log();
    let pid = log.first.to_string();
    let args = ["search", "--pid", &pid, log.file()];
    let tty = on_a_terminal(&args, false);
    assert!(
        tty.contains("\x1b[") && tty.contains("e2e-q-first"),
        "a terminal gets colours: {tty:?}"
    );
    let plain = on_a_terminal(&args, true);
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(
        !text(found(&args)).contains('\x1b'),
        "a pipe gets no colour"
    );
}
