use std::path::Path;

use super::*;
use crate::names::Name;
use crate::rules::RuleId;

const EXAMPLE: &str = include_str!("../../../deploy/config.toml");

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("t.toml"))
        .unwrap_or_else(|e| panic!("config should be valid, got:\n{e}"))
}

/// The `line:col: message` lines of an invalid file.
fn problems(text: &str) -> Vec<String> {
    match Config::parse(text, Path::new("t.toml")) {
        Ok(c) => panic!("config should be invalid, got {c:?}"),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

/// The example with every `#key = value` and `#[table]` line uncommented.
fn example_uncommented() -> String {
    EXAMPLE
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| !c.is_whitespace() && c != '#') => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_empty_file_gives_the_defaults() {
    assert_eq!(parse(""), Config::default());
    let d = Config::default();
    assert_eq!(d.output.path, OutputTarget::Stdout);
    assert_eq!(d.output.format, crate::output::Format::Json);
    assert_eq!(d.output.thread_renames, ThreadRenames::Alerts);
    assert_eq!(d.capture.storm_slots, 4096);
    assert_eq!(d.capture.priority_ring_bytes, None);
    assert_eq!(d.storm.thread_rate, 100);
    assert_eq!(d.storm.thread_burst, 1000);
    assert_eq!(d.storm.process_rate, 20_000);
    assert!(d.allow.default_allowlist);
    assert!(RuleId::ALL.iter().all(|r| d.rules.enabled(*r)));
    assert_eq!(d.sinks, SinksConfig::default());
}

#[test]
fn the_example_documents_the_real_defaults() {
    assert_eq!(parse(EXAMPLE), Config::default());
}

#[test]
fn the_example_with_every_setting_uncommented_is_valid() {
    let c = parse(&example_uncommented());
    assert_eq!(
        c.sinks.prometheus,
        Some(PrometheusSink {
            listen: "127.0.0.1:9464".parse().unwrap()
        })
    );
    let am = c.sinks.alertmanager.expect("alertmanager");
    assert_eq!(am.url.as_str(), "http://127.0.0.1:9093/");
    assert_eq!(am.queue, 1024);
    assert_eq!(am.dedup_window, std::time::Duration::from_secs(300));
    assert_eq!(am.rate_limit_per_minute, 10);
    assert_eq!(am.timeout, std::time::Duration::from_millis(5000));
    let syslog = c.sinks.syslog.expect("syslog");
    assert_eq!(syslog.target, SyslogTarget::Unix("/dev/log".into()));
    assert!(syslog.alerts && !syslog.events);
    assert_eq!(syslog.facility, Facility::DAEMON);
    assert_eq!(c.allow.entries.len(), 2);
    assert_eq!(c.rules.writable_paths.len(), 2);
    assert_eq!(
        c.rules.system_names,
        vec![Name::from("billingd"), Name::from("vault")]
    );
}

#[test]
fn every_key_is_read() {
    let c = parse(
        r#"
[output]
path = "/var/log/rename-audit.jsonl"
format = "text"
include_exec = true
include_kernel = true
thread_renames = "all"
thread_renames_allow = ["/usr/lib/jvm/**"]
[capture]
priority_ring_bytes = 1048576
thread_ring_bytes = 0
storm_slots = 128
[storm]
thread_rate = 5
thread_burst = 6
process_rate = 7
process_burst = 8
[rules.kernel-thread-mimic]
enabled = false
[rules.writable-path-stomp]
paths = ["/srv/drop/", "/opt/x"]
[rules.system-name-mimic]
names = ["vault"]
[rules.sibling-renamed-main]
enabled = false
[rules.process-renamed]
enabled = true
[allow]
default_allowlist = false
[[allow.entry]]
rules = ["process-renamed", "sibling-renamed-main"]
executable = "/usr/bin/app"
unit = "app@*.service"
uid = 0
name = "app-*"
[sinks.prometheus]
listen = "[::1]:9464"
[sinks.alertmanager]
url = "http://am.example.com:9093/prefix"
queue = 16
dedup_window_secs = 60
rate_limit_per_minute = 2
timeout_ms = 100
[sinks.syslog]
transport = "tcp"
address = "logs.example.com:6514"
alerts = false
events = true
facility = "local3"
queue = 8
"#,
    );
    assert_eq!(
        c.output,
        OutputConfig {
            path: OutputTarget::File("/var/log/rename-audit.jsonl".into()),
            format: crate::output::Format::Text,
            include_exec: true,
            include_kernel: true,
            thread_renames: ThreadRenames::All,
            thread_renames_allow: vec![Pattern::path("/usr/lib/jvm/**").unwrap()],
            ..OutputConfig::default()
        }
    );
    assert_eq!(
        c.capture,
        CaptureConfig {
            priority_ring_bytes: Some(1 << 20),
            thread_ring_bytes: None,
            storm_slots: 128,
        }
    );
    assert_eq!(
        c.storm,
        StormConfig {
            thread_rate: 5,
            thread_burst: 6,
            process_rate: 7,
            process_burst: 8,
        }
    );
    assert_eq!(
        c.rules.disabled,
        [RuleId::KernelThreadMimic, RuleId::SiblingRenamedMain].into()
    );
    assert_eq!(
        c.rules.writable_paths,
        vec![std::path::PathBuf::from("/srv/drop"), "/opt/x".into()]
    );
    assert!(!c.allow.default_allowlist);
    let e = &c.allow.entries[0];
    assert_eq!(
        e.rules,
        Some([RuleId::ProcessRenamed, RuleId::SiblingRenamedMain].into())
    );
    assert_eq!(e.executable.as_ref().unwrap().as_str(), "/usr/bin/app");
    assert_eq!(e.unit.as_ref().unwrap().as_str(), "app@*.service");
    assert_eq!(e.uid, Some(0));
    assert_eq!(e.name.as_ref().unwrap().as_str(), "app-*");
    assert_eq!(
        c.sinks.prometheus.unwrap().listen,
        "[::1]:9464".parse().unwrap()
    );
    let am = c.sinks.alertmanager.unwrap();
    assert_eq!(am.url.as_str(), "http://am.example.com:9093/prefix");
    assert_eq!(
        (
            am.queue,
            am.dedup_window.as_secs(),
            am.rate_limit_per_minute,
            am.timeout.as_millis()
        ),
        (16, 60, 2, 100)
    );
    assert_eq!(
        c.sinks.syslog,
        Some(SyslogSink {
            target: SyslogTarget::Tcp("logs.example.com:6514".into()),
            alerts: false,
            events: true,
            facility: Facility::from_code(19).unwrap(),
            queue: 8,
            ..SyslogSink::new(SyslogTarget::Tcp("logs.example.com:6514".into()))
        })
    );
}

#[test]
fn sink_sections_without_their_address_are_off() {
    let c = parse("[sinks.prometheus]\n[sinks.alertmanager]\nqueue = 5\n");
    assert_eq!(c.sinks.prometheus, None);
    assert_eq!(c.sinks.alertmanager, None);
    let c = parse("[sinks.syslog]\ntransport = \"udp\"\n");
    assert_eq!(
        c.sinks.syslog.unwrap().target,
        SyslogTarget::Udp("127.0.0.1:514".into())
    );
}

#[test]
fn a_syntax_error_has_its_line_and_column() {
    assert_eq!(
        problems("[output]\ninclude_exec = tru\n"),
        vec!["2:16: invalid boolean, expected `true`"]
    );
}

#[test]
fn an_unknown_key_has_its_line_and_column() {
    let p = problems("[output]\n\ncolour = true\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("3:1: output.colour: unknown field `colour`"),
        "{p:?}"
    );
}

#[test]
fn an_unknown_rule_id_is_an_error() {
    let p = problems("[rules.kernel-thread-mimc]\nenabled = false\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("1:8: rules.kernel-thread-mimc: unknown field `kernel-thread-mimc`"),
        "{p:?}"
    );
    assert!(p[0].contains("`kernel-thread-mimic`"), "{p:?}");
    let p = problems("[[allow.entry]]\nrules = [\"process-renamed\", \"nope\"]\nuid = 0\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("2:29: allow.entry.rules: unknown variant `nope`"),
        "{p:?}"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_order() {
    let text = r#"[output]
path = "relative"
colour = true
[capture]
thread_ring_bytes = 3000
storm_slots = "many"
[storm]
thread_rate = 0
[rules.bogus]
enabled = false
[rules.system-name-mimic]
names = ["systemd-journald", 5]
[[allow.entry]]
rules = ["nope"]
[[allow.entry]]
executable = "[abc"
[[allow.entry]]
[sinks.prometheus]
listen = "localhost"
[sinks.alertmanager]
url = "ftp://x"
queue = 0
[sinks.syslog]
transport = "carrier-pigeon"
facility = "nope"
"#;
    let p = problems(text);
    let at: Vec<&str> = p.iter().map(|l| l.split(": ").next().unwrap()).collect();
    assert_eq!(
        at,
        vec![
            "2:8", "3:1", "5:21", "6:15", "8:15", "9:8", "12:10", "12:30", "14:10", "16:14",
            "17:1", "19:10", "21:7", "22:9", "24:13", "25:12",
        ],
        "{p:#?}"
    );
    let expect = [
        "output.path: must be \"-\" (stdout) or an absolute path",
        "output.colour: unknown field",
        "capture.thread_ring_bytes: 3000 is not a power of two",
        "capture.storm_slots: invalid type: string \"many\"",
        "storm.thread_rate: must be between 1 and 4294967295, not 0",
        "rules.bogus: unknown field `bogus`",
        "rules.system-name-mimic.names: \"systemd-journald\" is 16 bytes long",
        "rules.system-name-mimic.names: invalid type: integer `5`",
        "allow.entry.rules: unknown variant `nope`",
        "allow.entry.executable: ",
        "allow.entry: give at least one of executable, unit, container, uid, name",
        "sinks.prometheus.listen: \"localhost\" is not an IP socket address",
        "sinks.alertmanager.url: \"ftp://x\" cannot be used: scheme \"ftp\" is not http",
        "sinks.alertmanager.queue: must be between 1 and 1048576, not 0",
        "sinks.syslog.transport: unknown variant `carrier-pigeon`",
        "sinks.syslog.facility: unknown syslog facility \"nope\"",
    ];
    for (line, want) in p.iter().zip(expect) {
        assert!(line.contains(want), "{line:?} should contain {want:?}");
    }
}

#[test]
fn the_error_shows_path_line_and_column_per_line() {
    let e = Config::parse(
        "[storm]\nthread_rate = 0\nprocess_rate = -1\n",
        Path::new("/etc/rename-audit/config.toml"),
    )
    .unwrap_err();
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("/etc/rename-audit/config.toml:2:15: storm.thread_rate:"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("/etc/rename-audit/config.toml:3:16: storm.process_rate:"),
        "{text}"
    );
}

#[test]
fn ring_sizes_must_be_powers_of_two_of_at_least_a_page() {
    assert!(problems("[capture]\npriority_ring_bytes = 1024\n")[0].contains("smaller than a page"));
    assert!(
        problems("[capture]\npriority_ring_bytes = 4294967296\n")[0].contains("larger than 1 GiB")
    );
    let c = parse("[capture]\npriority_ring_bytes = 0\nthread_ring_bytes = 67108864\n");
    assert_eq!(c.capture.priority_ring_bytes, None);
    assert_eq!(c.capture.thread_ring_bytes, Some(64 << 20));
}

#[test]
fn allow_entries_are_checked() {
    // An entry that matches everything would silently switch rules off.
    let p = problems("[[allow.entry]]\nrules = [\"process-renamed\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("1:1: allow.entry: give at least one"),
        "{p:?}"
    );
    let p = problems("[[allow.entry]]\nrules = []\nuid = 0\n");
    assert!(
        p[0].starts_with("2:9: allow.entry.rules: an empty list"),
        "{p:?}"
    );
    let p = problems("[[allow.entry]]\nexecutable = \"python3\"\n");
    assert!(p[0].contains("never matches"), "{p:?}");
    // A wrong value is reported once, not again as a matcher-less entry.
    let p = problems("[[allow.entry]]\nuid = \"root\"\n[output]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("2:7: allow.entry.uid: invalid type"),
        "{p:?}"
    );
    let p = problems("[allow]\nentry = [{ uid = -1 }, {}]\n");
    assert_eq!(p.len(), 2, "{p:?}");
}

#[test]
fn syslog_addresses_follow_the_transport() {
    let p = problems("[sinks.syslog]\naddress = \"127.0.0.1:514\"\n");
    assert!(p[0].contains("not an absolute socket path"), "{p:?}");
    let p = problems("[sinks.syslog]\ntransport = \"udp\"\naddress = \"/dev/log\"\n");
    assert!(p[0].contains("is not host:port"), "{p:?}");
    let p = problems("[sinks.syslog]\ntransport = \"udpp\"\naddress = \"10.0.0.1:514\"\n");
    assert_eq!(p.len(), 1, "a misspelt transport is reported once: {p:?}");
    let p = problems("[sinks.syslog]\nalerts = false\n");
    assert!(
        p[0].starts_with("1:1: sinks.syslog: sends nothing"),
        "{p:?}"
    );
}

#[test]
fn configured_names_and_paths_are_checked() {
    let p = problems("[rules.writable-path-stomp]\npaths = [\"tmp\", \"/\"]\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("is not an absolute path"), "{p:?}");
    assert!(p[1].contains("would cover every executable"), "{p:?}");
    let p = problems("[rules.system-name-mimic]\nnames = [\"\"]\n");
    assert!(p[0].contains("cannot be a task name"), "{p:?}");
}

#[test]
fn messages_quoting_the_file_stay_on_one_line() {
    let e = Config::parse(
        "[sinks.syslog]\ntransport = \"a\\nb\"\n",
        Path::new("t.toml"),
    )
    .unwrap_err();
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
}

#[test]
fn a_missing_named_file_is_an_error_and_a_missing_default_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("config.toml");
    let err = Config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(check(&missing).is_err());
    assert_eq!(
        Config::load_or_default(&missing).unwrap(),
        Config::default()
    );
}

#[test]
fn files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[output]\ninclude_exec = true\n").unwrap();
    assert!(check(&path).unwrap().output.include_exec);
    assert!(Config::load_or_default(&path).unwrap().output.include_exec);
    std::fs::write(&path, "[output]\ninclude_exec = 1\n").unwrap();
    let err = Config::load_or_default(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:16: output.include_exec:", path.display())),
        "{err}"
    );
    std::fs::write(&path, b"[output]\npath = \"\xff\"\n").unwrap();
    let err = check(&path).unwrap_err();
    assert_eq!(err.diagnostics()[0].line, 2);
    assert_eq!(err.diagnostics()[0].column, 9);
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn a_reload_names_what_only_a_restart_applies() {
    let start = parse("[rules.process-renamed]\nenabled = false\n");
    let rules_only =
        parse("[rules.process-renamed]\nenabled = true\n[output]\ninclude_exec = true\n");
    assert!(start.needs_restart(&rules_only).is_empty());
    let everything = parse(
        "[output]\npath = \"/var/log/x.jsonl\"\nformat = \"text\"\n[capture]\nstorm_slots = 8\n\
         [storm]\nthread_rate = 5\n[sinks.prometheus]\nlisten = \"127.0.0.1:1\"\n",
    );
    assert_eq!(
        start.needs_restart(&everything),
        vec!["output.path", "output.format", "capture", "storm", "sinks"]
    );
    let noise =
        parse("[rules.process-renamed]\nenabled = false\n[output]\nthread_renames = \"none\"\n");
    assert!(
        start.needs_restart(&noise).is_empty(),
        "the thread-rename setting is reloaded"
    );
}

#[test]
fn noise_settings_are_checked() {
    let got = problems(
        "[output]\nthread_renames = \"some\"\nformat = \"xml\"\n\
         thread_renames_allow = [\"java\", \"/ok/**\", \"/a/{b\"]\n",
    );
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(
        got[0].starts_with("2:18: output.thread_renames: unknown variant `some`"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("3:10: output.format: unknown variant `xml`"),
        "{got:#?}"
    );
    assert!(
        got[2].starts_with("4:25: output.thread_renames_allow: \"java\" never matches"),
        "{got:#?}"
    );
    assert!(
        got[3].starts_with("4:43: output.thread_renames_allow: "),
        "{got:#?}"
    );
}

#[test]
fn check_config_refuses_what_the_alertmanager_sink_refuses() {
    let err = Config::parse(
        "[sinks.alertmanager]\nurl = \"https://am:9093\"\n",
        Path::new("t.toml"),
    )
    .expect_err("the sink cannot post over https");
    assert!(
        err.to_string()
            .contains("2:7: sinks.alertmanager.url: \"https://am:9093\" cannot be used: https is not supported"),
        "{err}"
    );
    let err = Config::parse("[sinks.syslog]\nfacility = \"nope\"\n", Path::new("t.toml"))
        .expect_err("unknown facility");
    assert!(err.to_string().contains("unknown syslog facility"), "{err}");
    // Every facility the sink knows, the file accepts.
    let c = Config::parse("[sinks.syslog]\nfacility = \"ntp\"\n", Path::new("t.toml"))
        .expect("ntp is an RFC 5424 facility");
    assert_eq!(c.sinks.syslog.expect("syslog on").facility.code(), 12);
}

#[test]
fn help_readme_and_config_docs_show_the_defaults_the_code_uses() {
    use crate::capture::{
        PRIORITY_RING_MIN, PRIORITY_RING_PER_CPU, THREAD_RING_MIN, THREAD_RING_PER_CPU,
    };
    use crate::cli::mib;
    let readme = include_str!("../../../docs/configuration.md");
    let docs = include_str!("../../../deploy/config.toml");
    let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let help = cmd
        .find_subcommand_mut("run")
        .expect("run")
        .render_help()
        .to_string();
    let storm = StormConfig::default();
    let thousands = |n: u32| {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for (flag, value) in [
        ("--thread-rate", storm.thread_rate),
        ("--thread-burst", storm.thread_burst),
        ("--process-rate", storm.process_rate),
        ("--process-burst", storm.process_burst),
    ] {
        let after = &help[help.find(flag).expect(flag)..];
        let line_end = after.find("[default: ").expect("a default");
        assert!(
            after[line_end..].starts_with(&format!("[default: {value}]")),
            "{flag}"
        );
        let key = flag.trim_start_matches("--").replace('-', "_");
        assert!(
            docs.contains(&format!("\n{key} = {value}\n")),
            "config.toml {key}"
        );
    }
    assert!(readme.contains(&format!(
        "| {}/s, {} |",
        thousands(storm.thread_rate),
        thousands(storm.thread_burst)
    )));
    assert!(readme.contains(&format!(
        "| {}/s, {} |",
        thousands(storm.process_rate),
        thousands(storm.process_burst)
    )));
    let rings = format!(
        "{} / {} per CPU, at least {} / {}",
        mib(PRIORITY_RING_PER_CPU),
        mib(THREAD_RING_PER_CPU),
        mib(PRIORITY_RING_MIN).trim_end_matches(" MiB"),
        mib(THREAD_RING_MIN)
    );
    assert!(readme.contains(&rings), "README rings: {rings}");
    let docs_rings = format!(
        "{} / {} a CPU, at least {} / {}",
        mib(PRIORITY_RING_PER_CPU),
        mib(THREAD_RING_PER_CPU),
        mib(PRIORITY_RING_MIN).trim_end_matches(" MiB"),
        mib(THREAD_RING_MIN)
    );
    assert!(
        docs.contains(&docs_rings),
        "config.toml rings: {docs_rings}"
    );
    assert!(help.contains(&format!(
        "[default: {} a CPU, at least {}]",
        mib(PRIORITY_RING_PER_CPU),
        mib(PRIORITY_RING_MIN)
    )));
    let timeout = OutputConfig::DEFAULT_UNWRITABLE_TIMEOUT_SECS;
    assert!(help.contains(&format!("[default: {timeout}]")));
    assert!(readme.contains(&format!(
        "| `--output-unwritable-timeout SECS` | {timeout} s |"
    )));
    assert!(docs.contains(&format!("\nunwritable_timeout_secs = {timeout}\n")));
    // The value-enum settings: --format and --thread-renames.
    use crate::cli::default_name;
    for (flag, values, key, value) in [
        (
            "--format",
            "json\\|text",
            "format",
            default_name::<crate::output::Format>(),
        ),
        (
            "--thread-renames",
            "all\\|alerts\\|none",
            "thread_renames",
            default_name::<ThreadRenames>(),
        ),
    ] {
        let after = &help[help.find(flag).expect(flag)..];
        let default = after.find("[default: ").expect("a default");
        assert!(
            after[default..].starts_with(&format!("[default: {value}]")),
            "{flag} help"
        );
        assert!(
            readme.contains(&format!("| `{flag} {values}` | `{value}` |")),
            "README {flag}"
        );
        assert!(
            docs.contains(&format!("\n{key} = \"{value}\"\n")),
            "config.toml {key}"
        );
    }
}

/// A FIFO, a socket, a device and a directory are refused at once, unread,
/// with their type named; a symlink to a regular file is read. (Opening a
/// FIFO without O_NONBLOCK blocks until a writer comes: this test would
/// hang, not fail, if the check were missing, and the end-to-end test
/// bounds it.)
#[test]
fn only_regular_files_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let regular = dir.path().join("config.toml");
    std::fs::write(&regular, "[storm]\nthread_rate = 7\n").expect("write");
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&regular, &link).expect("symlink");
    let fifo_link = dir.path().join("fifo-link.toml");
    std::os::unix::fs::symlink(&fifo, &fifo_link).expect("symlink");
    for (path, kind) in [
        (fifo.as_path(), "a FIFO (named pipe)"),
        (fifo_link.as_path(), "a FIFO (named pipe)"),
        (sock.as_path(), "a socket"),
        (Path::new("/dev/null"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        for result in [
            Config::load(path),
            Config::load_or_default(path),
            check(path),
        ] {
            let error = result.expect_err("refused");
            assert_eq!(
                error.to_string(),
                format!(
                    "{}: is {kind}, not a regular file; the configuration must be a regular \
                     file (replace it, or point --config at one)",
                    path.display()
                )
            );
        }
    }
    assert_eq!(Config::load(&link).expect("read").storm.thread_rate, 7);
    assert_eq!(
        Config::load_or_default(&dir.path().join("missing")).expect("defaults"),
        Config::default()
    );
}

#[test]
fn host_names_the_host_and_labels_it() {
    let c = parse("[host]\nname = \"db 1\"\nlabels = { env = \"prod\", role = \"db\" }\n");
    assert_eq!(c.host.name.as_deref(), Some("db 1"));
    assert_eq!(
        c.host.labels.iter().collect::<Vec<_>>(),
        [
            (&"env".to_owned(), &"prod".to_owned()),
            (&"role".to_owned(), &"db".to_owned())
        ]
    );
    assert!(Config::default().needs_restart(&c).contains(&"host"));
}

#[test]
fn label_keys_alertmanager_refuses_are_refused_where_they_are() {
    let text = "[host]\nname = \"\"\n\
                labels = { env = \"prod\", \"bad-key\" = \"x\", \"9x\" = \"y\", severity = \"z\", \"__a\" = \"b\", ok = \"\" }\n";
    let p = problems(text);
    assert_eq!(
        p,
        [
            "2:8: host.name: \"\" is empty; leave it out for the kernel's host name",
            "3:26: host.labels: \"bad-key\" is not a valid label name: Alertmanager takes only [a-zA-Z_][a-zA-Z0-9_]*",
            "3:43: host.labels: \"9x\" is not a valid label name: Alertmanager takes only [a-zA-Z_][a-zA-Z0-9_]*",
            "3:55: host.labels: \"severity\" is a label every alert already carries (alertname, rule, severity, host, process_name, executable)",
            "3:71: host.labels: \"__a\": label names starting with \"__\" are reserved for Alertmanager's own use",
            "3:89: host.labels.ok: the value is empty",
        ]
    );
    // The same in a table of its own.
    let p = problems("[host.labels]\nenv = \"prod\"\n\"dc.zone\" = \"a\"\n");
    assert_eq!(
        p,
        [
            "3:1: host.labels: \"dc.zone\" is not a valid label name: Alertmanager takes only [a-zA-Z_][a-zA-Z0-9_]*"
        ]
    );
}
