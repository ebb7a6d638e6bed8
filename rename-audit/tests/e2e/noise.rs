//! Noise control (issue 10 item 5): `--thread-renames all|alerts|none` and
//! `output.thread_renames_allow`, with real threads renaming themselves.
//!
//! A thread rename's absence is only meaningful once the daemon has got
//! past it: each case runs the thread rename first, then a process rename
//! (the marker) from another process. The drain empties the thread ring
//! before the priority ring, so once the marker's line is written every
//! earlier thread rename has been either written or filtered.
use std::net::SocketAddr;

use crate::support::{
    daemon::{Daemon, at, str_at},
    http, renamer,
    servers::free_port,
};
use serde_json::Value;

/// Runs a thread rename to `name`, then a marker process rename; returns
/// the thread rename's event if the daemon wrote one.
fn thread_rename_then_marker(d: &mut Daemon, name: &[u8], marker: &str) -> Option<Value> {
    let [seen] = thread_rename_then_marker_in([d], name, marker);
    seen
}

/// As [`thread_rename_then_marker`], for daemons running at once: each sees
/// the same renames, and each answer is known once its marker is out.
fn thread_rename_then_marker_in<const N: usize>(
    daemons: [&mut Daemon; N],
    name: &[u8],
    marker: &str,
) -> [Option<Value>; N] {
    let out = renamer::run("thread-prctl", name, &[]);
    let (pid, tid) = (out.get("pid"), out.get("tid"));
    let marker_pid = renamer::run("prctl", marker.as_bytes(), &[]).get("pid");
    daemons.map(|d| {
        let m = d.wait_for(&format!("marker {marker}"), |e| {
            at(e, "process.pid").as_u64() == Some(marker_pid.into())
                && at(e, "rename.new_name").as_str() == Some(marker)
        });
        assert_eq!(
            str_at(&m, "event.action"),
            "process-renamed",
            "process renames are always written"
        );
        d.events_of(pid)
            .into_iter()
            .find(|e| at(e, "process.thread.id").as_u64() == Some(tid.into()))
    })
}

/// Thread renames of processes other than `ours`'s that `witness` wrote
/// (one by one, or counted in a summary) since `from`.
fn others_thread_renames(witness: &mut Daemon, ours: &Value, from: time::OffsetDateTime) -> u64 {
    let pid = at(ours, "process.pid").as_u64();
    witness
        .events()
        .iter()
        .filter(|e| at(e, "process.pid").as_u64() != pid)
        .filter(|e| {
            let ts = str_at(e, "@timestamp");
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|err| panic!("@timestamp {ts}: {err}"))
                >= from
        })
        .map(|e| match str_at(e, "event.action") {
            "thread-renamed" => 1,
            "renames-summarized" if str_at(e, "summary.class") == "thread" => {
                at(e, "summary.count").as_u64().expect("summary.count")
            }
            _ => 0,
        })
        .sum()
}

fn filtered(listen: SocketAddr, reason: &str) -> f64 {
    let (status, body) = http::get(listen, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let series = format!("rename_audit_renames_filtered_total{{reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {body}"))
}

#[test]
fn all_writes_every_thread_rename() {
    let mut d = Daemon::start(&["--thread-renames", "all"]);
    let e = thread_rename_then_marker(&mut d, b"e2e-n-worker", "e2e-n-mark1")
        .expect("under `all` a benign thread rename is written");
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
    assert_eq!(str_at(&e, "event.kind"), "event");
}

#[test]
fn alerts_is_the_default_and_writes_only_matched_thread_renames_counting_the_rest() {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    // No --thread-renames and an empty configuration: the default applies.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("empty.toml");
    std::fs::write(&cfg, "").unwrap();
    let mut d = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-listen",
        &listen.to_string(),
    ]);
    // The counter is host-wide. A witness at the same time under `all`
    // writes, with their pids, the thread renames the first one counts:
    // the count rises by our one rename plus the other processes' ones the
    // witness saw meanwhile, which on a quiet host is exactly one.
    let mut witness = Daemon::start(&["--thread-renames", "all"]);
    let from = time::OffsetDateTime::now_utc();
    let before = filtered(listen, "thread-renames");
    let [left_out, ours] =
        thread_rename_then_marker_in([&mut d, &mut witness], b"e2e-n-quiet", "e2e-n-mark2");
    assert!(
        left_out.is_none(),
        "a benign thread rename is not written by default"
    );
    let ours = ours.expect("the witness writes the thread rename");
    let after = filtered(listen, "thread-renames");
    // Renames after this marker were not counted yet.
    let end = renamer::run("prctl", b"e2e-n-end", &[]).get("pid");
    witness.wait_for("the end marker", |e| {
        at(e, "process.pid").as_u64() == Some(end.into())
    });
    let others = others_thread_renames(&mut witness, &ours, from - time::Duration::seconds(1));
    let counted = after - before;
    assert!(
        counted >= 1.0 && counted <= 1.0 + others as f64,
        "the left-out rename is counted once: {before} -> {after}, with {others} thread \
         renames of other processes meanwhile"
    );
    let e = thread_rename_then_marker(&mut d, b"kworker/9:9", "e2e-n-mark3")
        .expect("a thread rename a rule matches is written");
    assert_eq!(str_at(&e, "rule.id"), "kernel-thread-mimic");
    assert_eq!(str_at(&e, "event.action"), "thread-renamed");
}

#[test]
fn none_writes_no_thread_rename_not_even_an_alert() {
    // The control: a second daemon, at the same time, under `all`. It sees
    // the same renames, so what it writes the first one saw too.
    let mut none = Daemon::start(&["--thread-renames", "none"]);
    let mut all = Daemon::start(&["--thread-renames", "all"]);
    let [left_out, control] =
        thread_rename_then_marker_in([&mut none, &mut all], b"e2e-n-none", "e2e-n-mark4");
    assert!(left_out.is_none(), "`none` writes no thread rename");
    let control = control.expect("under `all` the same thread rename is written");
    assert_eq!(str_at(&control, "event.action"), "thread-renamed");

    let [left_out, control] =
        thread_rename_then_marker_in([&mut none, &mut all], b"kworker/8:8", "e2e-n-mark5");
    assert!(left_out.is_none(), "`none` means none, not even an alert");
    let control = control.expect("under `all` the same thread rename is written");
    assert_eq!(
        str_at(&control, "rule.id"),
        "kernel-thread-mimic",
        "the rename is one a rule matches: {control}"
    );
}

#[test]
fn allow_listed_executables_are_quiet_under_all_and_sighup_switches_the_setting() {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("noise.toml");
    let exe = renamer::path().to_str().expect("UTF-8 path").to_owned();
    std::fs::write(
        &cfg,
        format!("[output]\nthread_renames = \"all\"\nthread_renames_allow = [\"{exe}\"]\n"),
    )
    .unwrap();
    let mut d = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-listen",
        &listen.to_string(),
    ]);
    // Only this test's renamer (a binary of this run) is on the list, so
    // only the test can move this counter.
    let before = filtered(listen, "thread-renames-allow");
    assert!(
        thread_rename_then_marker(&mut d, b"e2e-n-allowed", "e2e-n-mark6").is_none(),
        "the allow-listed executable's thread rename is left out"
    );
    assert_eq!(
        filtered(listen, "thread-renames-allow"),
        before + 1.0,
        "the one left-out thread rename is counted once"
    );
    let e = thread_rename_then_marker(&mut d, b"kworker/6:6", "e2e-n-mark7")
        .expect("an alert is written even for an allow-listed executable");
    assert_eq!(str_at(&e, "rule.id"), "kernel-thread-mimic");

    // The setting is reloaded on SIGHUP.
    std::fs::write(&cfg, "[output]\nthread_renames = \"all\"\n").unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded");
    assert!(
        thread_rename_then_marker(&mut d, b"e2e-n-after", "e2e-n-mark8").is_some(),
        "without the allow-list the thread rename is written"
    );
}
