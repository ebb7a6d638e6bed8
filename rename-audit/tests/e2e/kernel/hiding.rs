//! End-to-end: hiding under `/proc/<pid>` and the daemon's own runs. A fake
//! file bound over `/proc/<pid>/comm` or `/stat`, or kthreadd's task
//! directory bound over `/proc/<pid>/task/<pid>`, makes `ps` show a kernel
//! thread and `pgrep` miss the process without covering the whole entry:
//! each such mount is reported as `process-hidden`, naming what it covers,
//! whether it was there at start-up or made while the daemon runs. The
//! output starts with `agent-started` and ends with `agent-stopped`, which
//! says why; every start after a run reports the gap from that run's last
//! record (`monitoring-gap`): its `agent-stopped` after a clean stop (a
//! restart, an upgrade), the last record it saved when it was killed.
use std::process::{Command, Stdio};

use crate::support::{
    daemon::{Daemon, at, str_at},
    renamer,
};
use serde_json::Value;

/// The name the fake files show, as `ps` would print it.
const FAKE: &str = "kworker/0:5";

/// One bind mount made by the test, undone on drop (also when the test
/// fails), before the process it hides exits.
struct Bound {
    target: String,
}

impl Bound {
    fn new(source: &str, target: String) -> Self {
        let status = Command::new("mount")
            .args(["--bind", source, &target])
            .status()
            .expect("run mount");
        assert!(status.success(), "mount --bind {source} {target}");
        Self { target }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(&self.target)
            .stderr(Stdio::null())
            .status();
    }
}

/// The three hides of one process: fake `comm` and `stat` files, and
/// kthreadd's task directory over the process's main thread's. Checks that
/// each took: the process now reads as a kernel thread.
fn hide_inside(pid: u32, fakes: &std::path::Path) -> Vec<Bound> {
    let comm = fakes.join(format!("comm-{pid}"));
    std::fs::write(&comm, format!("{FAKE}\n")).expect("write the fake comm");
    // kthreadd's own stat line, with this pid and the fake name.
    let real = std::fs::read_to_string("/proc/2/stat").expect("read /proc/2/stat");
    let rest = &real[real.rfind(") ").expect("a stat line") + 2..];
    let stat = fakes.join(format!("stat-{pid}"));
    std::fs::write(&stat, format!("{pid} ({FAKE}) {rest}")).expect("write the fake stat");
    let mounts = vec![
        Bound::new(comm.to_str().unwrap(), format!("/proc/{pid}/comm")),
        Bound::new(stat.to_str().unwrap(), format!("/proc/{pid}/stat")),
        Bound::new("/proc/2/task/2", format!("/proc/{pid}/task/{pid}")),
    ];
    let read = |path: String| std::fs::read_to_string(path).unwrap();
    assert_eq!(read(format!("/proc/{pid}/comm")), format!("{FAKE}\n"));
    assert!(read(format!("/proc/{pid}/stat")).starts_with(&format!("{pid} ({FAKE}) ")));
    assert_eq!(read(format!("/proc/{pid}/task/{pid}/comm")), "kthreadd\n");
    mounts
}

/// The `process-hidden` alert about `pid` for the mount at `mount_point`.
fn hidden_at(d: &mut Daemon, pid: u32, mount_point: String) -> Value {
    d.wait_for(&format!("process-hidden at {mount_point}"), move |e| {
        at(e, "event.action").as_str() == Some("process-hidden")
            && at(e, "hidden.pid").as_u64() == Some(pid.into())
            && at(e, "hidden.mount_point").as_str() == Some(mount_point.as_str())
    })
}

/// Each of the three hides of `pid` is reported, found as `found`, naming
/// the covered path and, for the task directory, the process it came from;
/// the event describes the real process, not the fake.
fn assert_reported(d: &mut Daemon, pid: u32, found: &str) {
    let exe = renamer::path().to_str().unwrap();
    for (entry, covered_by) in [
        ("comm".to_owned(), None),
        ("stat".to_owned(), None),
        (format!("task/{pid}"), Some(2)),
    ] {
        let e = hidden_at(d, pid, format!("/proc/{pid}/{entry}"));
        assert_eq!(str_at(&e, "hidden.entry"), entry, "{e}");
        assert_eq!(str_at(&e, "hidden.found"), found, "{e}");
        assert_eq!(at(&e, "hidden.covered_by.pid").as_u64(), covered_by, "{e}");
        assert_eq!(str_at(&e, "event.kind"), "alert", "{e}");
        assert_eq!(str_at(&e, "rule.id"), "process-hidden", "{e}");
        assert_eq!(str_at(&e, "rule.severity"), "high", "{e}");
        assert_eq!(str_at(&e, "process.executable"), exe, "{e}");
        assert!(
            str_at(&e, "message").contains(&format!("/proc/{pid}/{entry}")),
            "{e}"
        );
    }
}

#[test]
fn a_mount_on_a_path_inside_a_proc_entry_before_start_up_is_reported_at_start_up() {
    let fakes = tempfile::tempdir().expect("temp dir");
    let early = renamer::spawn_waiting("wait-prctl", b"early-inside", &[]);
    let mounts = hide_inside(early.pid, fakes.path());
    let mut d = Daemon::start(&[]);
    assert_reported(&mut d, early.pid, "start-up");
    drop(mounts);
    early.go();
    d.stop();
}

#[test]
fn a_mount_on_a_path_inside_a_proc_entry_while_running_is_reported() {
    let fakes = tempfile::tempdir().expect("temp dir");
    let mut d = Daemon::start(&[]);
    // Once a marker rename's line is out, the start-up scan of the mount
    // tables is done: the mounts below can only be found by the watch.
    let marker = renamer::run("probe", b"", &["1", "0"]).get("pid");
    d.wait_for("a marker rename", move |e| {
        at(e, "process.pid").as_u64() == Some(marker.into())
            && at(e, "rename.new_name").as_str() == Some("probe-0")
    });
    let late = renamer::spawn_waiting("wait-prctl", b"late-inside", &[]);
    let mounts = hide_inside(late.pid, fakes.path());
    assert_reported(&mut d, late.pid, "mount");
    drop(mounts);
    late.go();
    d.stop();
}

/// Stops the daemon with `signal` and returns every line it wrote, after
/// checking that it exited cleanly.
fn stopped_by(signal: i32) -> (u32, Vec<Value>) {
    let mut d = Daemon::start(&[]);
    // Records of the run in between: the last record still comes last.
    let marker = renamer::run("probe", b"", &["1", "0"]).get("pid");
    d.wait_for("a marker rename", move |e| {
        at(e, "process.pid").as_u64() == Some(marker.into())
            && at(e, "rename.new_name").as_str() == Some("probe-0")
    });
    let pid = d.pid();
    d.signal(signal);
    let status = d.wait_exit(std::time::Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", d.stderr_text());
    (pid, d.events().to_vec())
}

#[test]
fn the_output_starts_with_agent_started_and_ends_with_agent_stopped_saying_why() {
    for (signal, reason) in [(libc::SIGTERM, "sigterm"), (libc::SIGINT, "sigint")] {
        let (pid, events) = stopped_by(signal);
        let first = &events[0];
        assert_eq!(str_at(first, "event.action"), "agent-started", "{first}");
        assert_eq!(at(first, "event.sequence").as_u64(), Some(1), "{first}");
        assert_eq!(str_at(first, "event.kind"), "event", "{first}");
        assert_eq!(at(first, "event.type"), &serde_json::json!(["start"]));
        assert_eq!(at(first, "run.pid").as_u64(), Some(pid.into()), "{first}");
        let last = events.last().unwrap();
        assert_eq!(str_at(last, "event.action"), "agent-stopped", "{last}");
        assert_eq!(str_at(last, "run.stop_reason"), reason, "{last}");
        assert_eq!(at(last, "run.pid").as_u64(), Some(pid.into()), "{last}");
        assert_eq!(at(last, "event.type"), &serde_json::json!(["end"]));
        assert_eq!(
            at(last, "event.sequence").as_u64(),
            Some(events.len() as u64),
            "the last record has the last number: {last}"
        );
        assert_eq!(
            str_at(last, "agent.ephemeral_id"),
            str_at(first, "agent.ephemeral_id")
        );
        for (action, n) in [("agent-started", 1), ("agent-stopped", 1)] {
            let seen = events
                .iter()
                .filter(|e| at(e, "event.action").as_str() == Some(action))
                .count();
            assert_eq!(seen, n, "{action} once per run");
        }
    }
}

/// Starts a daemon on `state` (a state directory shared between runs),
/// waits until a marker rename of its own is written, and returns it.
fn run_on(state: &std::path::Path) -> Daemon {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("events.json");
    let mut d = Daemon::start_with(dir, output, &["--state-dir", state.to_str().unwrap()]);
    let marker = renamer::run("probe", b"", &["1", "0"]).get("pid");
    d.wait_for("a marker rename", move |e| {
        at(e, "process.pid").as_u64() == Some(marker.into())
            && at(e, "rename.new_name").as_str() == Some("probe-0")
    });
    d
}

fn gaps(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| at(e, "event.action").as_str() == Some("monitoring-gap"))
        .collect()
}

#[test]
fn a_start_after_a_kill_reports_the_gap_from_the_last_record_written() {
    let state = tempfile::tempdir().expect("state dir");
    // A first start has no previous run: no gap.
    let mut first = run_on(state.path());
    let (status, _) = first.stop();
    assert!(status.success(), "{status}");
    assert!(gaps(first.events()).is_empty(), "no gap on a first start");
    // A restart (clean stop, then start) reports its own blind window:
    // from the first run's agent-stopped to this run's agent-started.
    let stopped = first.events().last().expect("records").clone();
    assert_eq!(str_at(&stopped, "event.action"), "agent-stopped");
    let mut second = run_on(state.path());
    let events = second.events().to_vec();
    assert_eq!(str_at(&events[0], "event.action"), "agent-started");
    let gap = &events[1];
    assert_eq!(str_at(gap, "event.action"), "monitoring-gap", "{gap}");
    assert_eq!(at(gap, "gap.previous_stopped"), true, "{gap}");
    assert_eq!(
        str_at(gap, "gap.previous_ephemeral_id"),
        str_at(&stopped, "agent.ephemeral_id"),
        "{gap}"
    );
    assert_eq!(
        at(gap, "gap.previous_sequence"),
        at(&stopped, "event.sequence"),
        "{gap}"
    );
    assert_eq!(
        str_at(gap, "gap.start"),
        str_at(&stopped, "@timestamp"),
        "{gap}"
    );
    assert_eq!(
        str_at(gap, "gap.end"),
        str_at(&events[0], "@timestamp"),
        "{gap}"
    );
    assert_eq!(gaps(&events).len(), 1, "one gap");
    // Killed once its marker's record is saved (just after the flush that
    // wrote it): no agent-stopped, and the next start reports the gap.
    let marker_seq = second
        .events()
        .iter()
        .filter(|e| at(e, "rename.new_name").as_str() == Some("probe-0"))
        .filter_map(|e| at(e, "event.sequence").as_u64())
        .max()
        .expect("the marker");
    let deadline =
        std::time::Instant::now() + crate::support::patience(std::time::Duration::from_secs(10));
    loop {
        let saved = std::fs::read(state.path().join("last-run.json")).unwrap_or_default();
        let saved: Value = serde_json::from_slice(&saved).unwrap_or(Value::Null);
        if at(&saved, "sequence").as_u64() >= Some(marker_seq) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the marker's record saved within 10 s: {saved}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    second.signal(libc::SIGKILL);
    second.wait_exit(std::time::Duration::from_secs(10));
    let killed = second.events().to_vec();
    assert!(
        !killed
            .iter()
            .any(|e| at(e, "event.action").as_str() == Some("agent-stopped")),
        "a killed run writes no agent-stopped"
    );
    let killed_id = str_at(&killed[0], "agent.ephemeral_id").to_owned();
    let mut third = run_on(state.path());
    let events = third.events().to_vec();
    assert_eq!(str_at(&events[0], "event.action"), "agent-started");
    let gap = &events[1];
    assert_eq!(str_at(gap, "event.action"), "monitoring-gap", "{gap}");
    assert_eq!(str_at(gap, "event.kind"), "event", "{gap}");
    assert_eq!(str_at(gap, "gap.previous_ephemeral_id"), killed_id, "{gap}");
    assert_eq!(at(gap, "gap.previous_stopped"), false, "{gap}");
    // The gap starts at a record the killed run wrote (its last, or one of
    // the last batch if the kill came between a flush and the save), and
    // ends when this run started.
    let sequence = at(gap, "gap.previous_sequence")
        .as_u64()
        .expect("a sequence");
    let record = killed
        .iter()
        .find(|e| at(e, "event.sequence").as_u64() == Some(sequence))
        .unwrap_or_else(|| panic!("record {sequence} is in the killed run's output: {gap}"));
    assert_eq!(
        str_at(gap, "gap.start"),
        str_at(record, "@timestamp"),
        "{gap}"
    );
    assert_eq!(
        str_at(gap, "gap.end"),
        str_at(&events[0], "@timestamp"),
        "{gap}"
    );
    // Its marker rename was saved before the kill.
    assert!(sequence >= marker_seq, "{sequence} < {marker_seq}: {gap}");
    assert_eq!(gaps(&events).len(), 1, "one gap");
    third.stop();
}

/// Replacing the state file evicts the old one, which waits for its
/// writeback: saved after every batch, it stalled a busy pipeline up to 70 ms
/// at a time, and an alert burst's rename-to-line p99 went from 0.1 to 0.7 s
/// (docs/benchmarks.md). During a run it is replaced at most once a second;
/// the gap a kill leaves then starts up to a second earlier, never later.
#[test]
fn under_a_stream_of_renames_the_state_file_is_replaced_at_most_once_a_second() {
    use std::os::unix::fs::MetadataExt as _;
    let state = tempfile::tempdir().expect("state dir");
    let mut d = run_on(state.path());
    let file = state.path().join("last-run.json");
    // 300 renames 10 ms apart: each is a record of its own batch.
    let mut probe = Command::new(renamer::path())
        .args(["probe", &renamer::hex(b""), "300", "10"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the renamer");
    let started = std::time::Instant::now();
    let mut last = None;
    let mut replaced = 0;
    loop {
        let done = probe.try_wait().expect("the renamer").is_some();
        if let Ok(m) = std::fs::metadata(&file)
            && last != Some(m.ino())
        {
            last = Some(m.ino());
            replaced += 1;
        }
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let secs = started.elapsed().as_secs_f64();
    let pid = probe.id();
    let written = d.wait_for("the probe's last rename", move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some("probe-299")
    });
    assert!(at(&written, "event.sequence").as_u64().is_some());
    let bound = secs.ceil() as usize + 1;
    assert!(
        replaced <= bound,
        "the state file was replaced {replaced} times in {secs:.1} s of renames (at most {bound})"
    );
}

/// The allocator asks for transparent huge pages, and each first touch of
/// one zeroed 2 MiB: a fifth of the Alertmanager sink's CPU in an alert
/// burst, and RSS moving in 2 MiB steps. The daemon turns them off.
#[test]
fn the_daemon_runs_without_transparent_huge_pages() {
    let mut d = Daemon::start(&[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim)
        .expect("THP_enabled in /proc/<pid>/status (Linux 5.0)");
    assert_eq!(thp, "0", "{status}");
    let (exit, _) = d.stop();
    assert!(exit.success(), "{exit}");
}
