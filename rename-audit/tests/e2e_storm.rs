//! Storms: exact accounting (delivered + summarized + lost == generated, per
//! class), process renames first, and summaries when a storm ends or its
//! thread exits. These assert counts, never speed.
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    daemon::{Daemon, at, str_at, u64_at},
    patience, renamer,
};

/// What the output says about one thread's renames.
#[derive(Debug, Default)]
struct Tally {
    delivered: u64,
    summarized: u64,
    summaries: Vec<Value>,
}

fn tally(d: &mut Daemon, pid: u32, tid: u32) -> Tally {
    let mut t = Tally::default();
    for e in d.events() {
        if at(e, "process.pid").as_u64() != Some(pid.into())
            || at(e, "process.thread.id").as_u64() != Some(tid.into())
        {
            continue;
        }
        match str_at(e, "event.action") {
            "process-renamed" | "thread-renamed" => t.delivered += 1,
            "renames-summarized" => {
                t.summarized += u64_at(e, "summary.count");
                t.summaries.push(e.clone());
            }
            other => panic!("unexpected {other} for thread {tid}"),
        }
    }
    t
}

/// Records of `class` the kernel could not send, host-wide.
fn lost(d: &mut Daemon, class: &str) -> u64 {
    d.events()
        .iter()
        .filter(|e| str_at(e, "event.action") == "events-lost" && str_at(e, "lost.class") == class)
        .map(|e| u64_at(e, "lost.count"))
        .sum()
}

/// Waits until the output accounts for every one of `generated` renames of
/// the given threads, and checks nothing is counted twice. Loss counts are
/// host-wide, so this is exact only while no other thread on the host loses
/// records, which holds with the default rings.
fn wait_accounted(
    d: &mut Daemon,
    pid: u32,
    tids: &[u32],
    class: &str,
    generated: u64,
) -> Vec<Tally> {
    let deadline = Instant::now() + patience(Duration::from_secs(15));
    loop {
        let tallies: Vec<Tally> = tids.iter().map(|&tid| tally(d, pid, tid)).collect();
        let seen: u64 = tallies
            .iter()
            .map(|t| t.delivered + t.summarized)
            .sum::<u64>()
            + lost(d, class);
        assert!(
            seen <= generated,
            "more renames in the output ({seen}) than happened ({generated}): {tallies:?}"
        );
        if seen == generated {
            return tallies;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} of {generated} renames accounted for: {tallies:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn thread_storm_is_accounted_exactly_and_summarized_at_thread_exit() {
    let mut d = Daemon::start(&[]);
    let out = renamer::run("storm", b"", &["2", "300000"]);
    let pid = out.get("pid");
    let tids = out.all("storm_tid");
    assert_eq!(tids.len(), 2);
    let tallies = wait_accounted(&mut d, pid, &tids, "thread", 600_000);
    for (tid, t) in tids.iter().zip(&tallies) {
        assert!(
            t.summarized > 0,
            "thread {tid} stormed but was never summarized: {t:?}"
        );
        assert!(
            t.delivered >= 1000,
            "the burst of thread {tid} is delivered one by one: {t:?}"
        );
        let last = t.summaries.last().expect("a summary");
        assert_eq!(
            at(last, "summary.thread_exited"),
            &Value::Bool(true),
            "the last summary comes at thread exit"
        );
        assert_eq!(str_at(last, "summary.class"), "thread");
        assert!(str_at(last, "summary.last_name").starts_with("storm-"));
        assert!(
            at(last, "summary.first_seen").is_string() && at(last, "summary.last_seen").is_string()
        );
    }
    assert_eq!(
        lost(&mut d, "thread"),
        0,
        "the default rings lose nothing in this storm"
    );
}

#[test]
fn storm_end_is_summarized_while_the_thread_lives() {
    let mut d = Daemon::start(&[]);
    let mut w = renamer::spawn_waiting("storm-hold", b"", &["1", "200000"]);
    let pid = w.pid;
    let tid = w.read_value("storm_tid");
    let tallies = wait_accounted(&mut d, pid, &[tid], "thread", 200_000);
    let t = &tallies[0];
    assert!(!t.summaries.is_empty(), "no summary after the storm ended");
    assert!(
        t.summaries
            .iter()
            .all(|s| at(s, "summary.thread_exited") == &Value::Bool(false)),
        "the thread is still alive: {:?}",
        t.summaries
    );
    w.go();
}

#[test]
fn process_renames_beside_a_thread_storm_all_arrive_individually() {
    let mut d = Daemon::start(&[]);
    // A thread storm on every core.
    let mut storm = renamer::spawn_waiting("storm-until", b"", &["2"]);
    let storm_tids = [storm.read_value("storm_tid"), storm.read_value("storm_tid")];
    // 10,000 process renames at up to 10,000/s next to it.
    let out = renamer::run("loop-prctl", b"proc", &["10000", "10000"]);
    let pid = out.get("pid");
    // All 10,000 were made while the storm ran; it can stop now. (On a
    // slow host, such as the qemu guest, a storm on every core leaves the
    // daemon little time until it ends, so nothing is checked before.)
    let storm_pid = storm.pid;
    let stormed = storm.go().int("renamed") as u64;

    let tallies = wait_accounted(&mut d, pid, &[pid], "process", 10_000);
    assert_eq!(
        tallies[0].delivered, 10_000,
        "every process rename arrives on its own: {:?}",
        tallies[0]
    );
    assert_eq!(tallies[0].summarized, 0);
    assert_eq!(lost(&mut d, "process"), 0);

    let storm_tallies = wait_accounted(&mut d, storm_pid, &storm_tids, "thread", stormed);
    for t in &storm_tallies {
        assert!(
            !t.summaries.is_empty(),
            "the storm went over its rate and was summarized: {t:?}"
        );
    }
}

#[test]
fn a_tiny_ring_loses_records_but_counts_every_one() {
    // 4 KiB rings and no rate limit: most renames cannot be sent.
    let mut d = Daemon::start(&[
        "--thread-ring-bytes",
        "4096",
        "--priority-ring-bytes",
        "4096",
        "--thread-rate",
        "100000000",
        "--thread-burst",
        "100000000",
    ]);
    let out = renamer::run("storm", b"", &["2", "100000"]);
    let pid = out.get("pid");
    let tids = out.all("storm_tid");
    // Other threads on the host may lose records to these rings too, so
    // here the identity is a lower bound on what is accounted.
    let deadline = Instant::now() + patience(Duration::from_secs(15));
    loop {
        let tallies: Vec<Tally> = tids.iter().map(|&tid| tally(&mut d, pid, tid)).collect();
        let own: u64 = tallies.iter().map(|t| t.delivered + t.summarized).sum();
        let lost = lost(&mut d, "thread");
        assert!(
            own <= 200_000,
            "more renames delivered than happened: {tallies:?}"
        );
        if own + lost >= 200_000 && lost > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {own} delivered + {lost} lost of 200,000: {tallies:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
