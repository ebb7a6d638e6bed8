//! Fleet identity and central queries (issue 24 items 3, 5 and 8): the real
//! daemon names its host and itself on every line (`host.*`, `agent.id`,
//! `agent.name`, `labels`), keeps `agent.id` in its state directory across
//! restarts, falls back to an id of its own run (with one warning) when it
//! cannot, and leaves `host.id` out without a machine id; `search --host`
//! and `report`'s per-host table read per-host files and a mixed one.
//!
//! Hermetic: the machine id and os-release come from files the test writes
//! (`--machine-id-file`, `--os-release-file`, hidden flags for this), the
//! state directory is the test's own.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{Value, json};

use crate::support::{
    daemon::{Daemon, at, str_at},
    renamer,
};

const MACHINE_ID: &str = "5f3c0a9e1d2b4c6f8a7e9d0c1b2a3f4e";
const OS_RELEASE: &str =
    "PRETTY_NAME=\"Test OS 42 (e2e)\"\nNAME=\"Test OS\"\nVERSION_ID=\"42.1\"\nID=testos\n";

/// A host the test plays: its configuration, machine id and os-release in
/// `dir`, its state directory `state`.
struct Host {
    dir: tempfile::TempDir,
    config: PathBuf,
    state: PathBuf,
}

impl Host {
    fn new(config: &str) -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("config.toml"), config).unwrap();
        std::fs::write(path("machine-id"), format!("{MACHINE_ID}\n")).unwrap();
        std::fs::write(path("os-release"), OS_RELEASE).unwrap();
        Host {
            config: path("config.toml"),
            state: path("state"),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the daemon as this host, with `machine_id` as its machine-id
    /// file, writing to `output`.
    fn start(&self, machine_id: &Path, output: &str) -> Daemon {
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        let args = [
            "--config".to_owned(),
            s(&self.config),
            "--state-dir".to_owned(),
            s(&self.state),
            "--machine-id-file".to_owned(),
            s(machine_id),
            "--os-release-file".to_owned(),
            s(&self.path("os-release")),
            "--thread-renames".to_owned(),
            "all".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let output = dir.path().join(output);
        Daemon::start_with(dir, output, &args)
    }
}

/// Renames a process to `name` and waits for its event.
fn rename_and_wait(d: &mut Daemon, name: &'static str) -> Value {
    let pid = renamer::run("prctl", name.as_bytes(), &[]).get("pid");
    d.wait_for(name, move |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rename.new_name").as_str() == Some(name)
    })
}

/// The kernel's host name and release, as the daemon reads them.
fn kernel(file: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{file}"))
        .unwrap()
        .trim_end()
        .to_owned()
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit())
}

#[test]
fn every_line_names_host_and_agent_and_agent_id_survives_a_restart() {
    let host =
        Host::new("[host]\nname = \"db 1 \u{fc}\"\nlabels = { env = \"prod\", role = \"db\" }\n");
    let mut d = host.start(&host.path("machine-id"), "events.json");
    rename_and_wait(&mut d, "e2e-fleet-a");
    d.stop();
    let first: Vec<Value> = d.events().to_vec();
    let agent_id = std::fs::read_to_string(host.state.join("agent-id")).expect("agent-id kept");
    let agent_id = agent_id.trim_end();
    assert!(is_uuid_v4(agent_id), "{agent_id:?}");
    let want_host = json!({
        "name": "db 1 \u{fc}",
        "hostname": kernel("hostname"),
        "id": MACHINE_ID,
        "os": {"kernel": kernel("osrelease"), "name": "Test OS", "version": "42.1"},
    });
    let want_labels = json!({"env": "prod", "role": "db"});
    assert!(first.len() >= 3, "agent-started, the rename, agent-stopped");
    for e in &first {
        assert_eq!(e["host"], want_host, "{e}");
        assert_eq!(e["labels"], want_labels, "{e}");
        assert_eq!(str_at(e, "agent.id"), agent_id, "{e}");
        assert_eq!(str_at(e, "agent.name"), "db 1 \u{fc}", "{e}");
        assert_eq!(str_at(e, "agent.type"), "rename-audit");
    }

    // The same state directory: the same agent.id; a new run, so new
    // ephemeral_id, and event.id stays unique.
    let mut d = host.start(&host.path("machine-id"), "events.json");
    rename_and_wait(&mut d, "e2e-fleet-b");
    d.stop();
    let second: Vec<Value> = d.events().to_vec();
    for e in &second {
        assert_eq!(str_at(e, "agent.id"), agent_id, "{e}");
        assert_eq!(e["host"], want_host, "{e}");
    }
    let run = |events: &[Value]| str_at(&events[0], "agent.ephemeral_id").to_owned();
    assert_ne!(run(&first), run(&second));
    let ids: std::collections::HashSet<&str> = first
        .iter()
        .chain(&second)
        .map(|e| str_at(e, "event.id"))
        .collect();
    assert_eq!(ids.len(), first.len() + second.len(), "event.id is unique");
    assert_eq!(
        std::fs::read_to_string(host.state.join("agent-id"))
            .unwrap()
            .trim_end(),
        agent_id
    );
}

#[test]
fn alertmanager_alerts_carry_the_host_labels() {
    let am = crate::support::servers::Alertmanager::start();
    let host = Host::new(&format!(
        "[host]\nname = \"e2e-am-fleet\"\nlabels = {{ env = \"prod\", role = \"db\" }}\n\n\
         [sinks.alertmanager]\nurl = \"{}\"\n",
        am.url()
    ));
    let mut d = host.start(&host.path("machine-id"), "events.json");
    let pid = renamer::run("prctl", b"kworker/7:7", &[]).get("pid");
    d.wait_for("the kernel-thread-mimic alert", |e| {
        at(e, "process.pid").as_u64() == Some(pid.into())
            && at(e, "rule.id").as_str() == Some("kernel-thread-mimic")
    });
    let alerts = am.wait_for_alerts(
        "host",
        "e2e-am-fleet",
        std::time::Duration::from_secs(20),
        |a| {
            a.iter()
                .any(|x| x["labels"]["rule"] == "kernel-thread-mimic")
        },
    );
    d.stop();
    let alert = alerts
        .iter()
        .find(|x| x["labels"]["rule"] == "kernel-thread-mimic")
        .unwrap();
    let labels = alert["labels"].as_object().unwrap();
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "alertname",
            "env",
            "executable",
            "host",
            "process_name",
            "role",
            "rule",
            "severity"
        ],
        "{alert}"
    );
    assert_eq!(labels["env"], "prod");
    assert_eq!(labels["role"], "db");
    assert_eq!(labels["host"], "e2e-am-fleet");
}

#[test]
fn an_unwritable_state_dir_gives_an_ephemeral_agent_id_and_one_warning() {
    let host = Host::new("");
    // A file where the directory should be: nothing can be kept there,
    // whatever the daemon's privileges.
    std::fs::write(&host.state, "not a directory").unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut d = host.start(&host.path("machine-id"), "events.json");
        rename_and_wait(&mut d, "e2e-fleet-ro");
        d.stop();
        let log = d.stderr_text();
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
        let about_state: Vec<&&str> = warnings
            .iter()
            .filter(|l| l.contains("state") || l.contains("agent"))
            .collect();
        assert_eq!(about_state.len(), 1, "one warning: {warnings:#?}");
        assert!(
            about_state[0].contains("agent.id is new for this run only"),
            "{}",
            about_state[0]
        );
        let events = d.events().to_vec();
        let id = str_at(&events[0], "agent.id").to_owned();
        assert!(is_uuid_v4(&id), "{id:?}");
        assert!(events.iter().all(|e| str_at(e, "agent.id") == id));
        // The host's name defaults to the kernel's; no labels configured.
        assert_eq!(str_at(&events[0], "host.name"), kernel("hostname"));
        assert_eq!(at(&events[0], "labels"), &Value::Null);
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "nothing was kept: each run has its own");
    assert_eq!(
        std::fs::read_to_string(&host.state).unwrap(),
        "not a directory"
    );
}

#[test]
fn a_missing_machine_id_leaves_host_id_out() {
    let host = Host::new("");
    let mut d = host.start(&host.path("no-such-machine-id"), "events.json");
    rename_and_wait(&mut d, "e2e-fleet-nomid");
    d.stop();
    for e in d.events() {
        assert_eq!(e["host"].get("id"), None, "{e}");
        assert_eq!(str_at(e, "host.os.name"), "Test OS", "{e}");
    }
}

fn rename_audit(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run rename-audit");
    assert!(out.status.success(), "{args:?} failed: {out:?}");
    out
}

/// `report`'s row for a host, computed from the lines themselves.
fn host_row(lines: &[Value], host: &str) -> String {
    let of: Vec<&Value> = lines
        .iter()
        .filter(|e| str_at(e, "host.name") == host)
        .collect();
    let renames = |main: bool| {
        of.iter()
            .filter(|e| at(e, "rename.main_thread").as_bool() == Some(main))
            .count()
    };
    let alerts = of.iter().filter(|e| !at(e, "rule.id").is_null()).count();
    let lost: u64 = of.iter().filter_map(|e| at(e, "lost.count").as_u64()).sum();
    let starts = of
        .iter()
        .filter(|e| str_at(e, "event.action") == "agent-started")
        .count();
    format!(
        "  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {host}\n",
        of.len(),
        renames(true),
        renames(false),
        alerts,
        lost,
        starts
    )
}

#[test]
fn search_by_host_and_report_by_host_on_per_host_and_mixed_files() {
    // Two hosts' logs, as a central store keeps them (one file each), and
    // the same lines interleaved in one file.
    let mut files = BTreeMap::new();
    for (name, marker) in [("db-1", "e2e-fleet-db"), ("web-1", "e2e-fleet-web")] {
        let host = Host::new(&format!("[host]\nname = \"{name}\"\n"));
        let mut d = host.start(&host.path("machine-id"), "events.json");
        rename_and_wait(&mut d, marker);
        d.stop();
        let bytes = std::fs::read(&d.output).unwrap();
        files.insert(name, (d, bytes));
    }
    let dir = tempfile::tempdir().unwrap();
    let split = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split_inclusive(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let db = split(&files["db-1"].1);
    let web = split(&files["web-1"].1);
    let mut mixed = Vec::new();
    for i in 0..db.len().max(web.len()) {
        for side in [&db, &web] {
            if let Some(line) = side.get(i) {
                mixed.extend_from_slice(line);
            }
        }
    }
    let mixed_path = dir.path().join("mixed.json");
    std::fs::write(&mixed_path, &mixed).unwrap();
    let db_path = files["db-1"].0.output.to_str().unwrap().to_owned();
    let web_path = files["web-1"].0.output.to_str().unwrap().to_owned();
    let mixed_path = mixed_path.to_str().unwrap();

    let text = |o: Output| String::from_utf8(o.stdout).unwrap();
    let db_text = String::from_utf8(db.concat()).unwrap();
    // Mixed file, and both per-host files at once: exactly db-1's lines.
    for inputs in [vec![mixed_path], vec![web_path.as_str(), db_path.as_str()]] {
        let mut args = vec!["search", "--json", "--host", "db-*"];
        args.extend(&inputs);
        assert_eq!(text(rename_audit(&args)), db_text, "{inputs:?}");
        // With another filter: db-1's rename, not web-1's.
        let mut args = vec![
            "search",
            "--json",
            "--host",
            "db-?",
            "--name",
            "e2e-fleet-*",
        ];
        args.extend(&inputs);
        let found = text(rename_audit(&args));
        assert_eq!(found.lines().count(), 1, "{found}");
        assert!(found.contains("\"new_name\":\"e2e-fleet-db\""), "{found}");
    }
    // No host matches: nothing found (exit status 1, as grep).
    let out = Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .args(["search", "--host", "mail-*", mixed_path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());

    // Report: a per-host table, with each host's exact counts, on the
    // mixed file and on the two files; none for one host's file.
    let parse = |lines: &[Vec<u8>]| -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    };
    let all: Vec<Value> = parse(&db).into_iter().chain(parse(&web)).collect();
    for inputs in [vec![mixed_path], vec![db_path.as_str(), web_path.as_str()]] {
        let mut args = vec!["report"];
        args.extend(&inputs);
        let report = text(rename_audit(&args));
        assert!(report.contains("\nBy host (2 hosts)\n"), "{report}");
        for host in ["db-1", "web-1"] {
            let row = host_row(&all, host);
            assert!(report.contains(&row), "{row:?} not in\n{report}");
        }
    }
    let report = text(rename_audit(&["report", &db_path]));
    assert!(!report.contains("By host"), "{report}");
    // report takes --host too: one host's counts.
    let report = text(rename_audit(&["report", "--host", "web-1", mixed_path]));
    assert!(
        report.starts_with(&format!("rename-audit report: {} events from ", web.len())),
        "{report}"
    );
}

#[test]
fn check_config_refuses_label_keys_alertmanager_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[host]\nname = \"db-1\"\n\n[host.labels]\nenv = \"prod\"\n\"dc.zone\" = \"a\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "rename-audit: {}:6:1: host.labels: \"dc.zone\" is not a valid label name: \
             Alertmanager takes only [a-zA-Z_][a-zA-Z0-9_]*\n",
            path.display()
        )
    );
    std::fs::write(
        &path,
        "[host]\nname = \"db-1\"\nlabels = { env = \"prod\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rename-audit"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
