use std::sync::Arc;

use time::OffsetDateTime;

use super::*;
use crate::event::{Class, Lost, LostReason, Writer};
use crate::util::glob::Pattern;

/// Running processes: (pid, main-thread name, executable).
#[derive(Default)]
struct Table(Vec<(u32, &'static str, Option<&'static str>)>);

impl ProcessIndex for Table {
    fn find_executable_named(
        &self,
        name: &[u8],
        except_pid: u32,
        wanted: &mut dyn FnMut(&Name) -> bool,
    ) -> Option<Name> {
        self.0
            .iter()
            .filter(|(pid, n, _)| *pid != except_pid && n.as_bytes() == name)
            .filter_map(|(_, _, exe)| exe.map(Name::from))
            .find(|exe| wanted(exe))
    }
}

const PID: u32 = 1234;

/// A rename of thread `tid` of process PID (executable `exe`) by thread
/// `writer_tid` of the same process.
fn rename(exe: Option<&str>, tid: u32, writer_tid: u32, old: &[u8], new: &[u8]) -> Event {
    Event {
        sequence: 1,
        timestamp: OffsetDateTime::UNIX_EPOCH,
        host: Arc::from("host"),
        process: Some(ProcessContext {
            pid: PID,
            name: Name::new(if tid == PID { new } else { old }),
            executable: exe.map(Name::from),
            uid: Some(1000),
            ..Default::default()
        }),
        body: Body::Rename(Rename {
            tid,
            old_name: Name::new(old),
            new_name: Name::new(new),
            main_thread: tid == PID,
            method: Method::Prctl,
            writer: Writer {
                pid: PID,
                tid: writer_tid,
                name: Name::new(old),
            },
            original_name: Name::new(old),
            count: 1,
        }),
        alert: None,
    }
}

/// The main thread renames itself.
fn main_rename(exe: &str, old: &str, new: &str) -> Event {
    rename(Some(exe), PID, PID, old.as_bytes(), new.as_bytes())
}

fn engine() -> RuleEngine {
    RuleEngine::new(&RulesConfig::default(), &AllowConfig::default())
}

fn rule_of(engine: &RuleEngine, ev: &Event) -> Option<&'static str> {
    engine.evaluate(ev, &Table::default()).map(|a| a.rule_id)
}

#[test]
fn atomic_red_team_tmp_binary_renamed_to_totally_legit() {
    let alert = engine()
        .evaluate(
            &main_rename("/tmp/x", "x", "totally_legit"),
            &Table::default(),
        )
        .expect("alert");
    assert_eq!(alert.rule_id, "writable-path-stomp");
    assert_eq!(alert.rule_name, RuleId::WritablePathStomp.name());
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.technique, Some("T1036.005"));
    assert_eq!(
        alert.message,
        "process 1234 (/tmp/x) renamed itself from \"x\" to \"totally_legit\": \
         the executable is under /tmp"
    );
}

#[test]
fn kernel_thread_mimic_is_critical_and_comes_first() {
    let alert = engine()
        .evaluate(
            &main_rename("/tmp/x", "x", "kworker/0:1"),
            &Table::default(),
        )
        .expect("alert");
    assert_eq!(alert.rule_id, "kernel-thread-mimic");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.technique, Some("T1036.004"));
    assert!(
        alert.message.ends_with("shaped like a kernel thread"),
        "{}",
        alert.message
    );
}

#[test]
fn kernel_thread_mimic_covers_thread_renames_and_brackets() {
    let ev = rename(
        Some("/usr/bin/python3.11"),
        PID + 1,
        PID + 1,
        b"python3",
        b"[kthreadd]",
    );
    assert_eq!(rule_of(&engine(), &ev), Some("kernel-thread-mimic"));
    let ev = rename(
        Some("/usr/bin/python3.11"),
        PID + 1,
        PID + 1,
        b"python3",
        b"worker",
    );
    assert_eq!(
        rule_of(&engine(), &ev),
        None,
        "a plain thread rename is not alerted"
    );
}

#[test]
fn kernel_thread_mimic_needs_an_executable() {
    let ev = rename(None, PID, PID, b"x", b"kworker/0:1");
    assert_eq!(rule_of(&engine(), &ev), Some("process-renamed"));
}

#[test]
fn kernel_renames_never_alert() {
    let mut ev = main_rename("/tmp/x", "x", "kworker/0:1");
    let Body::Rename(r) = &mut ev.body else {
        unreachable!()
    };
    r.method = Method::Kernel;
    assert_eq!(rule_of(&engine(), &ev), None);
    let mut ev = main_rename("/tmp/x", "x", "sshd");
    let Body::Rename(r) = &mut ev.body else {
        unreachable!()
    };
    r.method = Method::Procfs;
    assert_eq!(rule_of(&engine(), &ev), Some("writable-path-stomp"));
}

#[test]
fn writable_path_stomp_covers_deleted_and_memfd_but_not_threads() {
    let e = engine();
    let alert = e
        .evaluate(
            &main_rename("/usr/bin/x (deleted)", "x", "y"),
            &Table::default(),
        )
        .unwrap();
    assert_eq!(alert.rule_id, "writable-path-stomp");
    assert!(alert.message.ends_with("the executable was deleted"));
    let alert = e
        .evaluate(
            &main_rename("/memfd:p (deleted)", "p", "y"),
            &Table::default(),
        )
        .unwrap();
    assert!(alert.message.ends_with("the executable is a memfd"));
    let thread = rename(Some("/tmp/x"), PID + 1, PID + 1, b"x", b"worker");
    assert_eq!(rule_of(&e, &thread), None);
    assert_eq!(
        rule_of(&e, &main_rename("/usr/bin/x", "x", "y")),
        Some("process-renamed")
    );
}

#[test]
fn system_name_mimic_on_well_known_names() {
    let alert = engine()
        .evaluate(
            &main_rename("/usr/bin/python3.11", "python3", "sshd"),
            &Table::default(),
        )
        .unwrap();
    assert_eq!(alert.rule_id, "system-name-mimic");
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.technique, Some("T1036.004"));
    assert_eq!(
        alert.message,
        "process 1234 (/usr/bin/python3.11) renamed itself from \"python3\" to \"sshd\": \
         \"sshd\" is a well-known system program name"
    );
}

#[test]
fn renaming_to_the_own_executable_name_is_benign() {
    let e = engine();
    assert_eq!(
        rule_of(&e, &main_rename("/usr/sbin/sshd", "x", "sshd")),
        None
    );
    assert_eq!(
        rule_of(
            &e,
            &main_rename("/usr/sbin/avahi-daemon", "avahi-daemon", "avahi-daemon")
        ),
        None
    );
    assert_eq!(
        rule_of(
            &e,
            &main_rename("/usr/lib/systemd/systemd-journald", "x", "systemd-journal")
        ),
        None
    );
    // A dropped or deleted binary is still flagged, whatever its new name.
    assert_eq!(
        rule_of(&e, &main_rename("/tmp/sshd", "x", "sshd")),
        Some("writable-path-stomp")
    );
}

#[test]
fn system_name_mimic_on_names_of_other_running_processes() {
    let e = engine();
    let ev = main_rename("/usr/bin/app", "app", "billing");
    let other = Table(vec![(77, "billing", Some("/opt/billing/bin/billing"))]);
    let alert = e.evaluate(&ev, &other).unwrap();
    assert_eq!(alert.rule_id, "system-name-mimic");
    assert!(
        alert
            .message
            .ends_with("\"billing\" is the name of a running /opt/billing/bin/billing"),
        "{}",
        alert.message
    );
    // Same program (another instance, or the pre-upgrade copy): no mimicry.
    let same = Table(vec![
        (77, "billing", Some("/usr/bin/app")),
        (78, "billing", Some("/usr/bin/app (deleted)")),
        (79, "billing", None),
    ]);
    assert_eq!(
        e.evaluate(&ev, &same).map(|a| a.rule_id),
        Some("process-renamed")
    );
    // The renamed process itself is not "another" process.
    let itself = Table(vec![(PID, "billing", Some("/opt/other"))]);
    assert_eq!(
        e.evaluate(&ev, &itself).map(|a| a.rule_id),
        Some("process-renamed")
    );
    // Threads are not compared with process names.
    let thread = rename(Some("/usr/bin/app"), PID + 1, PID + 1, b"app", b"billing");
    assert_eq!(e.evaluate(&thread, &other), None);
    // An unknown own executable cannot be shown to differ.
    let unknown = rename(None, PID, PID, b"app", b"sshd");
    assert_eq!(
        e.evaluate(&unknown, &other).map(|a| a.rule_id),
        Some("process-renamed")
    );
}

#[test]
fn sibling_renamed_main_is_medium() {
    let ev = rename(Some("/usr/bin/app"), PID, PID + 3, b"app", b"app-main");
    let alert = engine().evaluate(&ev, &Table::default()).unwrap();
    assert_eq!(alert.rule_id, "sibling-renamed-main");
    assert_eq!(alert.severity, Severity::Medium);
    assert_eq!(alert.technique, None);
    assert_eq!(
        alert.message,
        "thread 1237 of process 1234 (/usr/bin/app) renamed the main thread \
         from \"app\" to \"app-main\": the process name changed under the process"
    );
    let same = rename(Some("/usr/bin/app"), PID, PID + 3, b"app", b"app");
    assert_eq!(rule_of(&engine(), &same), None, "no change, no alert");
}

#[test]
fn process_renamed_is_low_and_needs_a_change() {
    let alert = engine()
        .evaluate(
            &main_rename("/usr/bin/app", "app", "app: idle"),
            &Table::default(),
        )
        .unwrap();
    assert_eq!(alert.rule_id, "process-renamed");
    assert_eq!(alert.severity, Severity::Low);
    assert_eq!(
        rule_of(&engine(), &main_rename("/usr/bin/app", "x", "x")),
        None
    );
}

#[test]
fn only_renames_with_a_process_are_candidates() {
    let mut ev = main_rename("/tmp/x", "x", "y");
    ev.body = Body::Lost(Lost {
        class: Class::Process,
        reason: LostReason::RingFull,
        count: 3,
        sink: None,
    });
    assert_eq!(rule_of(&engine(), &ev), None);
    let mut ev = main_rename("/tmp/x", "x", "y");
    ev.process = None;
    assert_eq!(rule_of(&engine(), &ev), None);
}

#[test]
fn disabled_rules_are_skipped() {
    let mut rules = RulesConfig::default();
    rules.disabled.insert(RuleId::WritablePathStomp);
    let e = RuleEngine::new(&rules, &AllowConfig::default());
    assert_eq!(
        rule_of(&e, &main_rename("/tmp/x", "x", "totally_legit")),
        Some("process-renamed")
    );
    rules.disabled = RuleId::ALL.into_iter().collect();
    let e = RuleEngine::new(&rules, &AllowConfig::default());
    assert_eq!(rule_of(&e, &main_rename("/tmp/x", "x", "kworker/0")), None);
}

#[test]
fn configured_names_and_paths_extend_the_rules() {
    let rules = RulesConfig {
        writable_paths: vec!["/srv/drop".into()],
        system_names: vec![Name::from("billingd")],
        ..Default::default()
    };
    let e = RuleEngine::new(&rules, &AllowConfig::default());
    assert_eq!(
        rule_of(&e, &main_rename("/srv/drop/x", "x", "y")),
        Some("writable-path-stomp")
    );
    assert_eq!(
        rule_of(&e, &main_rename("/usr/bin/app", "app", "billingd")),
        Some("system-name-mimic")
    );
}

#[test]
fn allow_entries_apply_per_rule() {
    let only_stomp = AllowEntry {
        rules: Some([RuleId::WritablePathStomp].into()),
        executable: Some(Pattern::path("/tmp/*").unwrap()),
        ..Default::default()
    };
    let allow = AllowConfig {
        default_allowlist: true,
        entries: vec![only_stomp.clone()],
    };
    let e = RuleEngine::new(&RulesConfig::default(), &allow);
    assert_eq!(
        rule_of(&e, &main_rename("/tmp/x", "x", "totally_legit")),
        Some("process-renamed"),
        "the next rule still fires"
    );
    assert_eq!(
        rule_of(&e, &main_rename("/tmp/x", "x", "kworker/0:1")),
        Some("kernel-thread-mimic"),
        "an entry for one rule does not silence another"
    );
    let all_rules = AllowEntry {
        rules: None,
        ..only_stomp
    };
    let allow = AllowConfig {
        default_allowlist: true,
        entries: vec![all_rules],
    };
    let e = RuleEngine::new(&RulesConfig::default(), &allow);
    assert_eq!(
        rule_of(&e, &main_rename("/tmp/x", "x", "totally_legit")),
        None
    );
}

/// Renames a stock Debian host makes at boot and in normal operation.
fn debian_boot() -> Vec<Event> {
    let mut evs = vec![
        main_rename("/usr/lib/systemd/systemd", "systemd", "(sd-pam)"),
        main_rename("/usr/lib/systemd/systemd", "systemd", "(cron)"),
        main_rename("/usr/lib/systemd/systemd", "systemd", "(sshd)"),
        main_rename("/usr/lib/systemd/systemd (deleted)", "systemd", "(agetty)"),
        main_rename("/lib/systemd/systemd", "systemd", "(sd-close)"),
        main_rename(
            "/usr/lib/systemd/systemd-executor",
            "systemd-executo",
            "(rsyslogd)",
        ),
        main_rename("/usr/bin/udevadm", "systemd-udevd", "(udev-worker)"),
        main_rename(
            "/usr/lib/systemd/systemd-coredump",
            "systemd-coredum",
            "(sd-parse-elf)",
        ),
        main_rename("/usr/bin/systemd-tmpfiles", "systemd-tmpfile", "(sd-rmrf)"),
        main_rename("/usr/lib/systemd/systemd", "init", "systemd"),
        main_rename("/usr/sbin/avahi-daemon", "avahi-daemon", "avahi-daemon"),
        main_rename("/usr/sbin/runc", "runc", "runc:[0:PARENT]"),
        main_rename(
            "/memfd:runc_cloned:/proc/self/exe (deleted)",
            "runc",
            "runc:[1:CHILD]",
        ),
        main_rename("/usr/bin/runc", "runc", "runc:[2:INIT]"),
        main_rename("/usr/bin/tmux", "tmux", "tmux: server"),
    ];
    // Thread pools: rsyslogd, GLib daemons (polkitd, udisksd), the JVM,
    // tokio and Go runtimes name their threads.
    for (exe, name) in [
        ("/usr/sbin/rsyslogd", "in:imuxsock"),
        ("/usr/sbin/rsyslogd", "in:imklog"),
        ("/usr/sbin/rsyslogd", "rs:main Q:Reg"),
        ("/usr/lib/polkit-1/polkitd", "gmain"),
        ("/usr/lib/polkit-1/polkitd", "gdbus"),
        ("/usr/lib/polkit-1/polkitd", "pool-spawner"),
        ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "GC Thread#0"),
        (
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
            "C2 CompilerThre",
        ),
        ("/usr/sbin/rename-audit", "tokio-runtime-w"),
        ("/usr/bin/containerd", "containerd"),
        ("/usr/sbin/mariadbd", "ib_io_rd-1"),
        ("/usr/bin/python3.11", "python3"),
    ] {
        evs.push(rename(Some(exe), PID + 1, PID + 1, b"x", name.as_bytes()));
    }
    evs
}

#[test]
fn a_stock_debian_host_raises_no_alert() {
    let e = engine();
    let running = Table(vec![
        (1, "systemd", Some("/usr/lib/systemd/systemd")),
        (300, "(sd-pam)", Some("/usr/lib/systemd/systemd")),
        (400, "systemd-udevd", Some("/usr/bin/udevadm")),
        (401, "(udev-worker)", Some("/usr/bin/udevadm")),
        (500, "sshd", Some("/usr/sbin/sshd")),
        (600, "cron", Some("/usr/sbin/cron")),
    ]);
    for ev in debian_boot() {
        assert_eq!(e.evaluate(&ev, &running), None, "{:?}", ev.body);
    }
}

#[test]
fn without_the_default_allowlist_systemd_renames_alert() {
    let allow = AllowConfig {
        default_allowlist: false,
        entries: vec![],
    };
    let e = RuleEngine::new(&RulesConfig::default(), &allow);
    assert_eq!(
        rule_of(
            &e,
            &main_rename("/usr/lib/systemd/systemd", "systemd", "(sd-pam)")
        ),
        Some("system-name-mimic")
    );
    assert_eq!(
        rule_of(
            &e,
            &main_rename("/usr/lib/systemd/systemd", "systemd", "(cron)")
        ),
        Some("process-renamed")
    );
}

#[test]
fn defaults_do_not_let_a_dropped_binary_hide() {
    let e = engine();
    for (exe, name, rule) in [
        ("/tmp/systemd", "(sd-pam)", "writable-path-stomp"),
        ("/usr/bin/python3.11", "(sd-pam)", "system-name-mimic"),
        (
            "/usr/lib/systemd/systemd",
            "kworker/0:1",
            "kernel-thread-mimic",
        ),
        ("/usr/lib/systemd/systemd", "sshd", "system-name-mimic"),
        ("/memfd:x (deleted)", "runc:[2:INIT]", "writable-path-stomp"),
        ("/usr/sbin/runc", "[kworker/0:0]", "kernel-thread-mimic"),
    ] {
        assert_eq!(
            rule_of(&e, &main_rename(exe, "x", name)),
            Some(rule),
            "{exe} -> {name}"
        );
    }
}

#[test]
fn messages_stay_one_line_whatever_the_names() {
    let ev = rename(
        Some("/tmp/a\nb"),
        PID,
        PID,
        b"x\"y",
        b"kworker/\n\x1b[31m\xff",
    );
    let alert = engine().evaluate(&ev, &Table::default()).unwrap();
    assert!(
        !alert.message.chars().any(|c| c.is_control()),
        "{:?}",
        alert.message
    );
    assert_eq!(
        alert.message,
        "process 1234 (/tmp/a\\nb) renamed itself from \"x\\\"y\" to \
         \"kworker/\\n\\u{1b}[31m\\xff\": \"kworker/\\n\\u{1b}[31m\\xff\" is shaped like a kernel thread"
    );
}

#[test]
fn rule_ids_round_trip_and_are_ordered_by_severity() {
    for id in RuleId::ALL {
        assert_eq!(RuleId::parse(id.as_str()), Some(id));
    }
    let sev: Vec<_> = RuleId::ALL.iter().map(|r| r.severity()).collect();
    assert!(sev.windows(2).all(|w| w[0] >= w[1]), "{sev:?}");
}

#[test]
fn every_matching_rule_is_listed_most_severe_first() {
    // A /tmp binary whose worker thread renames the main thread (a pyenv
    // Python's worker does this): the stomp is the alert, and the sibling
    // rename and the plain process rename are kept beside it.
    let ev = rename(Some("/tmp/py/python3"), PID, PID + 1, b"python3", b"worker");
    let alert = engine().evaluate(&ev, &Table::default()).expect("alert");
    assert_eq!(alert.rule_id, "writable-path-stomp");
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(
        alert.matched,
        [
            "writable-path-stomp",
            "sibling-renamed-main",
            "process-renamed"
        ]
    );
}

#[test]
fn allow_listed_and_disabled_rules_are_not_listed() {
    let rules = RulesConfig {
        disabled: [RuleId::ProcessRenamed].into(),
        ..RulesConfig::default()
    };
    let allow = AllowConfig {
        entries: vec![AllowEntry {
            rules: Some([RuleId::WritablePathStomp].into()),
            executable: Some(Pattern::path("/tmp/py/*").unwrap()),
            ..Default::default()
        }],
        ..AllowConfig::default()
    };
    let engine = RuleEngine::new(&rules, &allow);
    let ev = rename(Some("/tmp/py/python3"), PID, PID + 1, b"python3", b"worker");
    let alert = engine.evaluate(&ev, &Table::default()).expect("alert");
    assert_eq!(alert.rule_id, "sibling-renamed-main");
    assert_eq!(alert.matched, ["sibling-renamed-main"]);
}

/// An exec of `exe` that named the process `comm`, with `argv`.
fn exec(exe: &str, old: &str, comm: &str, argv: &[&str]) -> Event {
    let mut ev = main_rename(exe, old, comm);
    let Body::Rename(r) = &mut ev.body else {
        unreachable!()
    };
    r.method = Method::Exec;
    let p = ev.process.as_mut().unwrap();
    p.args = argv
        .iter()
        .map(|a| Name::from(*a))
        .collect::<Vec<_>>()
        .into();
    ev
}

/// A process found at start-up named `name`, with `argv`.
fn found(exe: &str, name: &str, argv: &[&str]) -> Event {
    let mut ev = exec(exe, name, name, argv);
    ev.body = Body::Found(crate::event::Found {
        name: Name::from(name),
    });
    ev
}

fn judged(ev: &Event) -> Option<(Vec<&'static str>, &'static str, String)> {
    let a = engine().evaluate(ev, &Table::default())?;
    let j = a.judged.expect("a name rule says what it judged");
    Some((
        a.matched,
        j.source.as_str(),
        String::from_utf8_lossy(j.name.as_bytes()).into_owned(),
    ))
}

#[test]
fn an_exec_is_judged_by_the_name_it_gives() {
    // A dropped binary named like a system program, or a deleted or memfd
    // one, at exec.
    for exe in [
        "/tmp/x/sshd",
        "/memfd:sshd (deleted)",
        "/tmp/x/sshd (deleted)",
    ] {
        assert_eq!(
            judged(&exec(exe, "bash", "sshd", &["sshd"])),
            Some((
                vec!["writable-path-stomp", "system-name-mimic"],
                "name",
                "sshd".into()
            )),
            "{exe}"
        );
    }
    // Shaped like a kernel thread, wherever the binary is.
    assert_eq!(
        judged(&exec(
            "/usr/local/bin/kworker",
            "sh",
            "kworker",
            &["kworker"]
        )),
        Some((vec!["kernel-thread-mimic"], "name", "kworker".into()))
    );
    // Installed programs, symlink names (sh -> dash, busybox applets) and
    // an ordinary program in /tmp are not disguises.
    for (exe, comm, argv0) in [
        ("/usr/sbin/sshd", "sshd", "/usr/sbin/sshd"),
        ("/usr/bin/dash", "sh", "sh"),
        ("/usr/bin/busybox", "ls", "ls"),
        ("/usr/bin/python3.11", "python3", "/usr/bin/python3"),
        ("/usr/bin/vim.basic", "vi", "vi"),
        ("/tmp/x/build", "build", "./build"),
        ("/usr/bin/bash", "bash", "-bash"),
        ("/usr/bin/bash", "bash", "bash"),
    ] {
        assert_eq!(
            judged(&exec(exe, "x", comm, &[argv0])),
            None,
            "{exe} {argv0}"
        );
    }
}

/// A script run through a linked interpreter (`#!/bin/sh`, /bin/sh ->
/// dash) has argv[0] "/bin/sh" and its own file name as its name. When the
/// process is gone by the time it is judged (a short maintainer script),
/// the host's file at argv[0] says whether it is the executable.
#[test]
fn a_script_through_a_linked_interpreter_is_no_spoof_after_it_exited() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let interpreter = dir.path().join("dash");
    std::fs::write(&interpreter, b"").unwrap();
    let link = dir.path().join("sh");
    std::os::unix::fs::symlink(&interpreter, &link).unwrap();
    let meta = std::fs::metadata(&interpreter).unwrap();
    let argv0 = link.to_str().unwrap();
    let mut ev = exec(
        "/usr/bin/dash",
        "dpkg",
        "pkg.postinst",
        &[argv0, "configure"],
    );
    let file = |inode| crate::process::ExeFile {
        major: libc::major(meta.dev()),
        minor: libc::minor(meta.dev()),
        inode,
    };
    ev.process.as_mut().unwrap().executable_file = Some(file(meta.ino()));
    assert_eq!(judged(&ev), None, "argv[0] is the executable itself");
    // Another file at that path is a spoof.
    ev.process.as_mut().unwrap().executable_file = Some(file(meta.ino() + 1));
    assert_eq!(
        judged(&ev),
        Some((vec!["system-name-mimic"], "argv0", "sh".into()))
    );
}

#[test]
fn an_exec_is_judged_by_a_spoofed_argv0() {
    assert_eq!(
        judged(&exec(
            "/usr/bin/sleep",
            "bash",
            "sleep",
            &["[kworker/0:1]", "30"]
        )),
        Some((vec!["kernel-thread-mimic"], "argv0", "[kworker/0:1]".into()))
    );
    assert_eq!(
        judged(&exec(
            "/usr/bin/sleep",
            "bash",
            "sleep",
            &["sshd: root@pts/0"]
        )),
        Some((
            vec!["system-name-mimic"],
            "argv0",
            "sshd: root@pts/0".into()
        ))
    );
    // A path to a program of another name is judged by its file name.
    assert_eq!(
        judged(&exec(
            "/usr/bin/sleep",
            "bash",
            "sleep",
            &["/usr/sbin/cron"]
        )),
        Some((vec!["system-name-mimic"], "argv0", "cron".into()))
    );
    // From a dropped binary both names count: the most severe leads.
    assert_eq!(
        judged(&exec("/tmp/x/sshd", "bash", "sshd", &["[kworker/1:7]"])),
        Some((
            vec![
                "kernel-thread-mimic",
                "writable-path-stomp",
                "system-name-mimic"
            ],
            "argv0",
            "[kworker/1:7]".into()
        ))
    );
}

#[test]
fn a_process_found_at_start_up_is_judged_like_an_exec() {
    assert_eq!(
        judged(&found("/usr/bin/sleep", "kworker/1:7", &["x"])),
        Some((vec!["kernel-thread-mimic"], "name", "kworker/1:7".into()))
    );
    assert_eq!(
        judged(&found("/tmp/x/payload", "cron", &["/tmp/x/payload"])),
        Some((
            vec!["writable-path-stomp", "system-name-mimic"],
            "name",
            "cron".into()
        ))
    );
    // sshd's and nginx's own setproctitle shapes, and systemd's helpers.
    for (exe, name, argv0) in [
        ("/usr/sbin/sshd", "sshd", "sshd: root@pts/0"),
        (
            "/usr/lib/openssh/sshd-session",
            "sshd-session",
            "sshd: root@pts/0",
        ),
        ("/usr/sbin/nginx", "nginx", "nginx: worker process"),
        ("/usr/sbin/php-fpm8.2", "php-fpm8.2", "php-fpm: pool www"),
        ("/usr/lib/systemd/systemd", "(sd-pam)", "(sd-pam)"),
        ("/usr/bin/bash", "bash", "-bash"),
    ] {
        assert_eq!(judged(&found(exe, name, &[argv0])), None, "{exe} {argv0}");
    }
}

#[test]
fn a_colon_suffix_does_not_hide_a_system_name() {
    for new in ["sshd:", "sshd: root@pts/"] {
        let a = engine()
            .evaluate(
                &main_rename("/usr/local/bin/x", "x", new),
                &Table::default(),
            )
            .expect("alert");
        assert_eq!(a.rule_id, "system-name-mimic", "{new}");
    }
    let a = engine()
        .evaluate(
            &main_rename("/usr/sbin/sshd", "sshd", "sshd: root@pts/"),
            &Table::default(),
        )
        .expect("still a rename");
    assert_eq!(a.rule_id, "process-renamed");
}

#[test]
fn a_rename_that_keeps_the_name_matches_nothing() {
    for (exe, name) in [
        ("/tmp/x", "kworker/0:1"),
        ("/tmp/x", "sshd"),
        ("/usr/bin/x", "y"),
    ] {
        assert_eq!(
            rule_of(&engine(), &main_rename(exe, name, name)),
            None,
            "{name}"
        );
    }
}
