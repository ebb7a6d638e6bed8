//! Hostile input to `search`, `report` and the configuration (issue 22):
//! memory stays bounded on a 1 GiB line, a gzip bomb and endless zeros;
//! every field that reaches the terminal is escaped; exit statuses are
//! grep's (0 match, 1 none, 2 error) and a damaged input does not hide the
//! others; report totals do not wrap; and a configuration path that is a
//! FIFO, a socket or a device is refused at once at start-up, on SIGHUP and
//! by check-config, with SIGTERM still ending the daemon.

use std::{
    ffi::CString,
    fs::File,
    io::{Seek as _, SeekFrom, Write as _},
    os::unix::{fs::symlink, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    daemon::{Daemon, at},
    patience, renamer,
};

const BIN: &str = env!("CARGO_BIN_EXE_rename-audit");

/// The bound the issue sets on peak RSS.
const MAX_RSS_BYTES: u64 = 64 << 20;

const GIB: u64 = 1 << 30;

/// What a finished command did, with its peak RSS.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    /// VmHWM of the child just before it exited, in bytes; `None` if it
    /// was killed at the deadline.
    max_rss: Option<u64>,
}

/// Where a command's stdin comes from.
enum Stdin {
    Null,
    /// A pipe the test writes `prefix`, then `zeros` zero bytes, then
    /// `suffix` into (stopping quietly if the command stops reading).
    Pipe {
        prefix: Vec<u8>,
        zeros: u64,
        suffix: Vec<u8>,
    },
}

/// `VmHWM` of `pid` in bytes, from /proc.
fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Runs `rename-audit args` to its end and returns what it did, with its
/// peak RSS: VmHWM read at its exit stop (ptrace, PTRACE_O_TRACEEXIT),
/// when it has exited but its memory is still there. That is the peak of
/// the program itself, from its exec on; wait4's ru_maxrss would also
/// count this test process's pages, which the child had before its exec.
/// The address space is capped at 4 GiB so that a reader without bounds
/// fails here instead of taking the machine's memory; a run still going
/// after `deadline` is killed and the test fails.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by waitpid, which ptrace needs"
)]
fn run(args: &[&str], stdin: Stdin, deadline: Duration) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .stdin(match stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Pipe { .. } => Stdio::piped(),
        });
    // SAFETY: setrlimit and ptrace are async-signal-safe system calls that
    // touch no memory of the parent; nothing else runs between fork and
    // exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 * GIB,
                rlim_max: 4 * GIB,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0
                || libc::ptrace(
                    libc::PTRACE_TRACEME,
                    0,
                    std::ptr::null_mut::<libc::c_void>(),
                    std::ptr::null_mut::<libc::c_void>(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // ptrace requests must come from the thread that started the child:
    // this one, to the end of the function.
    let mut child = cmd.spawn().expect("start rename-audit");
    let pid = child.id() as libc::pid_t;
    let writer = match stdin {
        Stdin::Null => None,
        Stdin::Pipe {
            prefix,
            zeros,
            suffix,
        } => {
            let mut pipe = child.stdin.take().expect("stdin");
            Some(std::thread::spawn(move || {
                let zero = vec![0u8; 1 << 20];
                let mut write = || -> std::io::Result<()> {
                    pipe.write_all(&prefix)?;
                    let mut left = zeros;
                    while left > 0 {
                        let n = left.min(zero.len() as u64) as usize;
                        pipe.write_all(&zero[..n])?;
                        left -= n as u64;
                    }
                    pipe.write_all(&suffix)
                };
                // A command that refuses its input stops reading: EPIPE.
                let _ = write();
            }))
        }
    };
    let cont = |sig: libc::c_int| {
        // SAFETY: our own stopped tracee; the signal to deliver, or 0.
        unsafe {
            libc::ptrace(
                libc::PTRACE_CONT,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                sig as usize as *mut libc::c_void,
            )
        };
    };
    let end = Instant::now() + patience(deadline);
    let mut killed = false;
    let mut traced = false;
    let mut max_rss = None;
    let status = loop {
        let mut status = 0;
        let flags = if killed { 0 } else { libc::WNOHANG };
        // SAFETY: waits for our own child only, with a valid out-pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, flags) };
        assert!(got >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if got == 0 {
            if Instant::now() > end {
                let _ = child.kill();
                killed = true;
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            break status;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xffff;
        if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXIT {
            if !killed {
                max_rss = vm_hwm(pid);
            }
            cont(0);
        } else if sig == libc::SIGTRAP && !traced {
            // The stop after exec: from now on, stop at the exit too.
            traced = true;
            // SAFETY: our own stopped tracee.
            unsafe {
                libc::ptrace(
                    libc::PTRACE_SETOPTIONS,
                    pid,
                    std::ptr::null_mut::<libc::c_void>(),
                    (libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL) as usize
                        as *mut libc::c_void,
                )
            };
            cont(0);
        } else {
            // A signal for the child (SIGPIPE, ...): delivered as it came.
            cont(sig);
        }
    };
    if let Some(writer) = writer {
        writer.join().expect("stdin writer");
    }
    assert!(
        !killed,
        "rename-audit {args:?} did not finish within {deadline:?}"
    );
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: std::fs::read(&out_path).expect("stdout"),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).expect("stderr")).into_owned(),
        max_rss,
    }
}

fn assert_bounded(what: &str, run: &Run) {
    let rss = run
        .max_rss
        .unwrap_or_else(|| panic!("{what}: no VmHWM read: {run:?}"));
    eprintln!("{what}: peak RSS {} KiB", rss >> 10);
    assert!(
        rss < MAX_RSS_BYTES,
        "{what}: peak RSS {} MiB, not under {} MiB: {run:?}",
        rss >> 20,
        MAX_RSS_BYTES >> 20,
    );
}

/// A rename event line as the daemon writes it (fewer fields).
fn event(pid: u32, new_name: &str) -> String {
    format!(
        r#"{{"@timestamp":"2026-12-04T19:32:25.000000Z","event":{{"kind":"event","action":"process-renamed"}},"process":{{"pid":{pid},"name":"{new_name}","executable":"/usr/bin/x","thread":{{"id":{pid}}}}},"rename":{{"old_name":"x","new_name":"{new_name}","main_thread":true,"method":"prctl","writer":{{"pid":{pid},"tid":{pid},"name":"x"}}}}}}
"#
    )
}

const TOO_LONG: &str = "rename-audit: 1 line(s) of the input are longer than 1 MiB, the most a \
                        rename-audit event can be, and were skipped\n";

#[test]
fn a_one_gibibyte_line_is_skipped_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("one-line.json");
    let (first, last) = (event(101, "before"), event(102, "after"));
    // A sparse file: a 1 GiB line of zeros costs no disk.
    let mut file = File::create(&path).expect("create");
    file.write_all(first.as_bytes()).expect("write");
    file.seek(SeekFrom::Current(GIB as i64)).expect("seek");
    file.write_all(b"\n").expect("write");
    file.write_all(last.as_bytes()).expect("write");
    drop(file);
    let run = run(
        &["search", "--json", path.to_str().unwrap()],
        Stdin::Null,
        Duration::from_secs(120),
    );
    assert_bounded("a 1 GiB line", &run);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{first}{last}"),
        "the lines around the long one are found"
    );
    assert_eq!(run.stderr, TOO_LONG);
}

#[test]
fn a_gzip_bomb_is_decompressed_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bomb.json.gz");
    let line = event(103, "inside");
    // 1 GiB of zeros, compressed as a stream into the file (about 1 MiB),
    // then a real event: found after the bomb is read past.
    let mut gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(File::create(&path).expect("create")),
        flate2::Compression::fast(),
    );
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(GIB >> 20) {
        gz.write_all(&zeros).expect("gzip");
    }
    gz.write_all(b"\n").expect("gzip");
    gz.write_all(line.as_bytes()).expect("gzip");
    gz.finish().expect("gzip").flush().expect("flush");
    let compressed = std::fs::metadata(&path).expect("stat").len();
    assert!(compressed < 8 << 20, "a bomb: {compressed} bytes");
    for args in [
        vec!["search", "--json", path.to_str().unwrap()],
        vec!["report", path.to_str().unwrap()],
    ] {
        let run = run(&args, Stdin::Null, Duration::from_secs(120));
        assert_bounded(&format!("a gzip bomb, {args:?}"), &run);
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        if args[0] == "search" {
            assert_eq!(String::from_utf8_lossy(&run.stdout), line);
        } else {
            assert!(
                String::from_utf8_lossy(&run.stdout).starts_with(
                    "rename-audit report: 1 events from 2026-12-04T19:32:25.000000Z to \
                     2026-12-04T19:32:25.000000Z\n  process renames              1\n"
                ),
                "{run:?}"
            );
        }
        assert_eq!(run.stderr, TOO_LONG, "{args:?}");
    }
}

/// `/dev/zero` is a device: refused at once (it would never end), the
/// other inputs still read. Endless zeros through a pipe are read past in
/// bounded memory: a pipe of 1 GiB stands for them.
#[test]
fn dev_zero_is_refused_and_zeros_from_a_pipe_are_read_past() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.json");
    let line = event(104, "good");
    std::fs::write(&good, &line).expect("write");
    let run1 = run(
        &["search", "--json", "/dev/zero", good.to_str().unwrap()],
        Stdin::Null,
        Duration::from_secs(30),
    );
    assert_bounded("/dev/zero", &run1);
    assert_eq!(run1.code, Some(2), "{run1:?}");
    assert_eq!(String::from_utf8_lossy(&run1.stdout), line);
    assert_eq!(
        run1.stderr,
        "rename-audit: /dev/zero is a character device, not a log file; not read\n\
         rename-audit: 1 input(s) could not be read in full (see above)\n"
    );

    let run2 = run(
        &["search", "--json", "-"],
        Stdin::Pipe {
            prefix: Vec::new(),
            zeros: GIB,
            suffix: Vec::new(),
        },
        Duration::from_secs(120),
    );
    assert_bounded("1 GiB of zeros on stdin", &run2);
    assert_eq!(run2.code, Some(1), "no event in zeros: {run2:?}");
    assert!(run2.stdout.is_empty());
    assert_eq!(
        run2.stderr,
        format!("{TOO_LONG}rename-audit: no matching events\n")
    );
}

/// One line whose every string field holds ESC, C1 controls (raw and as
/// JSON escapes), bidi controls (raw and escaped), and, in the names that
/// have a hex sibling, bytes that are not UTF-8.
fn hostile_line() -> String {
    // ESC ] 52 ... BEL: an OSC-52 clipboard write; U+009B: CSI; U+202E:
    // right-to-left override; U+2066: left-to-right isolate.
    let s = |tag: &str| {
        format!(r"{tag}\u001b]52;c;aGk=\u0007\u009b{tag}") + "\u{9b}\u{202e}" + r"\u2066"
    };
    // Raw bytes: ff (not UTF-8), 1b (ESC), c2 9b (CSI), e2 80 ae (RLO).
    let hex = |tag: &str| {
        tag.bytes()
            .chain([0xff, 0x1b, 0xc2, 0x9b, 0xe2, 0x80, 0xae])
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    format!(
        concat!(
            r#"{{"@timestamp":"{ts}","event":{{"kind":"alert","action":"{action}"}},"#,
            r#""process":{{"pid":77,"name":"{pname}","name_hex":"{pname_hex}","executable":"{exe}","executable_hex":"{exe_hex}","thread":{{"id":78}}}},"#,
            r#""rename":{{"old_name":"{old}","old_name_hex":"{old_hex}","new_name":"{new}","new_name_hex":"{new_hex}","main_thread":true,"method":"{method}","#,
            r#""writer":{{"pid":77,"tid":78,"name":"{writer}","name_hex":"{writer_hex}"}},"rules":["{rule}","{rule2}"]}},"#,
            r#""summary":{{"count":5,"last_name":"{last}","last_name_hex":"{last_hex}","class":"{sclass}"}},"#,
            r#""lost":{{"count":6,"class":"{lclass}","reason":"{reason}"}},"#,
            r#""rule":{{"id":"{rule}","severity":"{severity}"}}}}"#,
            "\n"
        ),
        ts = s("T"),
        action = s("A"),
        pname = s("P"),
        pname_hex = hex("P"),
        exe = s("E"),
        exe_hex = hex("E"),
        old = s("O"),
        old_hex = hex("O"),
        new = s("N"),
        new_hex = hex("N"),
        method = s("M"),
        writer = s("W"),
        writer_hex = hex("W"),
        rule = s("R"),
        rule2 = s("Q"),
        last = s("L"),
        last_hex = hex("L"),
        sclass = s("S"),
        lclass = s("C"),
        reason = s("X"),
        severity = s("V"),
    )
}

/// No byte or character a terminal acts on, other than the line ends.
fn assert_terminal_safe(what: &str, out: &[u8]) {
    let text =
        std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {out:?}"));
    for c in text.chars() {
        let disguising = matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        );
        assert!(
            c == '\n' || !(c.is_control() || disguising),
            "{what}: {c:?} reaches the terminal in {text}"
        );
    }
}

#[test]
fn every_field_of_every_output_is_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = hostile_line();
    serde_json::from_str::<serde_json::Value>(&line).expect("the hostile line is JSON");
    // Not JSON: raw ESC and a byte that is not UTF-8 after a timestamp as
    // the daemon writes it, which a time filter alone would pass on bytes.
    let mut raw = br#"{"@timestamp":"2026-12-04T19:32:25.000000Z","event":{"action":"x"},"lost":{"count":1,"class":""#.to_vec();
    raw.extend_from_slice(b"\x1b]52;c;aGk=\x07\xff\xc2\x9b\"}}\n");
    let path = dir.path().join("hostile.json");
    let mut data = line.clone().into_bytes();
    data.extend_from_slice(&raw);
    std::fs::write(&path, &data).expect("write");
    let file = path.to_str().unwrap();

    let expected_text = concat!(
        r#"T\u{1b}]52;c;aGk=\u{7}\u{9b}T\u{9b}\u{202e}\u{2066} A\u{1b}]52;c;aGk=\u{7}\u{9b}A\u{9b}\u{202e}\u{2066} 77/78 "#,
        r#""O\xff\u{1b}\u{9b}\u{202e}" → "N\xff\u{1b}\u{9b}\u{202e}" M\u{1b}]52;c;aGk=\u{7}\u{9b}M\u{9b}\u{202e}\u{2066} by 77/78 "W\xff\u{1b}\u{9b}\u{202e}""#,
        r#" 5 renames, last "L\xff\u{1b}\u{9b}\u{202e}" (S\u{1b}]52;c;aGk=\u{7}\u{9b}S\u{9b}\u{202e}\u{2066})"#,
        r#" 6 C\u{1b}]52;c;aGk=\u{7}\u{9b}C\u{9b}\u{202e}\u{2066} records lost exe E\xff\u{1b}\u{9b}\u{202e}"#,
        r#" ALERT V\u{1b}]52;c;aGk=\u{7}\u{9b}V\u{9b}\u{202e}\u{2066} R\u{1b}]52;c;aGk=\u{7}\u{9b}R\u{9b}\u{202e}\u{2066}"#,
        r#" (+Q\u{1b}]52;c;aGk=\u{7}\u{9b}Q\u{9b}\u{202e}\u{2066})"#,
        "\n"
    );
    // The same line with the raw C1 and bidi characters as JSON escapes.
    let expected_json = line
        .replace('\u{9b}', r"\u009b")
        .replace('\u{202e}', r"\u202e");
    let unreadable =
        "rename-audit: 1 line(s) of the input are not rename-audit events and were skipped\n";

    for (args, want_out) in [
        (vec!["search", file], expected_text.to_owned()),
        (vec!["search", "--json", file], expected_json.clone()),
        (
            vec!["search", "--json", "--since", "2000-01-01", file],
            expected_json.clone(),
        ),
    ] {
        let run = run(&args, Stdin::Null, Duration::from_secs(30));
        assert_terminal_safe(&format!("{args:?}"), &run.stdout);
        assert_eq!(String::from_utf8_lossy(&run.stdout), want_out, "{args:?}");
        assert_eq!(run.stderr, unreadable, "{args:?}");
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        if args.contains(&"--json") {
            let back: serde_json::Value =
                serde_json::from_slice(&run.stdout).expect("--json output is JSON");
            assert_eq!(
                back,
                serde_json::from_str::<serde_json::Value>(&line).unwrap(),
                "the escapes decode to the same values"
            );
        }
    }

    let run = run(&["report", file], Stdin::Null, Duration::from_secs(30));
    assert_terminal_safe("report", &run.stdout);
    let t = r"T\u{1b}]52;c;aGk=\u{7}\u{9b}T\u{9b}\u{202e}\u{2066}";
    let esc = |tag: &str| {
        format!(r"{tag}\u{{1b}}]52;c;aGk=\u{{7}}\u{{9b}}{tag}\u{{9b}}\u{{202e}}\u{{2066}}")
    };
    let name = |tag: &str| format!(r"{tag}\xff\u{{1b}}\u{{9b}}\u{{202e}}");
    let expected_report = format!(
        "rename-audit report: 1 events from {t} to {t}\n\
         \x20 process renames              1\n\
         \x20 thread renames               0\n\
         \x20 alerts                       1\n\
         \x20 storm summaries              1  (5 renames summarized, {s} 5)\n\
         \x20 loss reports                 1  (6 records lost, {c} 6)\n\
         \n\
         Renames by executable\n\
         \x20      count  executable\n\
         \x20          1  {e}\n\
         \n\
         Alerts by rule (each matched rule counted)\n\
         \x20      count  rule  severity\n\
         \x20          1  {q}  -\n\
         \x20          1  {r}  {v}\n\
         \n\
         Renames by method\n\
         \x20      count  method\n\
         \x20          1  {m}\n\
         \n\
         Renames by new name\n\
         \x20      count  new name\n\
         \x20          1  {n}\n\
         \n\
         Top renamers (renames, summarized ones included)\n\
         \x20      count  pid  executable  process name\n\
         \x20          6  77  {e}  {p}\n",
        s = esc("S"),
        c = esc("C"),
        e = name("E"),
        q = esc("Q"),
        r = esc("R"),
        v = esc("V"),
        m = esc("M"),
        n = name("N"),
        p = name("P"),
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), expected_report);
    assert_eq!(run.stderr, unreadable);
    assert_eq!(run.code, Some(0), "{run:?}");
}

/// check-config and `run` quote keys and values of a bad configuration in
/// their messages: through the same escape rule.
#[test]
fn configuration_messages_are_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hostile.toml");
    std::fs::write(
        &path,
        "[output]\n\"a\\u001b]52;c;aGk=\\u0007\\u009b\u{202e}\" = 1\n\
         format = \"x\\u001b[31m\\u202e\\u2066\"\n",
    )
    .expect("write");
    let p = path.to_str().unwrap();
    let key = r"a\u{1b}]52;c;aGk=\u{7}\u{9b}\u{202e}";
    // The list of known keys after "expected one of" is the schema's.
    let unknown_key = format!(
        "rename-audit: {p}:2:1: output.{key}: unknown field `{key}`, expected one of `path`, "
    );
    let bad_value = format!(
        "{p}:3:10: output.format: unknown variant `x\\u{{1b}}[31m\\u{{202e}}\\u{{2066}}`, \
         expected `json` or `text`"
    );
    let check = |what: &str, r: &Run| {
        assert_terminal_safe(what, r.stderr.as_bytes());
        assert_eq!(r.code, Some(1), "{what}: {r:?}");
        let lines: Vec<&str> = r.stderr.lines().collect();
        let n = lines.len();
        assert!(n >= 2, "{what}: {r:?}");
        assert!(lines[n - 2].starts_with(&unknown_key), "{what}: {r:?}");
        assert_eq!(lines[n - 1], bad_value, "{what}");
    };
    check(
        "check-config",
        &run(&["check-config", p], Stdin::Null, Duration::from_secs(10)),
    );
    let out = dir.path().join("events.json");
    check(
        "run",
        &run(
            &["run", "--config", p, "--output", out.to_str().unwrap()],
            Stdin::Null,
            Duration::from_secs(10),
        ),
    );
}

/// Exit statuses as grep's, and a damaged input among several reported on
/// stderr while the others are still searched and reported.
#[test]
fn exit_statuses_are_greps_and_a_damaged_input_hides_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (event(201, "a"), event(202, "b"), event(203, "c"));
    let good = dir.path().join("good.json");
    std::fs::write(&good, format!("{a}{b}")).expect("write");
    let good = good.to_str().unwrap();
    // A .gz cut short: its first line is there, then the stream ends.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(c.as_bytes()).expect("gzip");
    for i in 0..2000 {
        gz.write_all(event(300 + i, "filler").as_bytes())
            .expect("gzip");
    }
    let whole = gz.finish().expect("gzip");
    let cut = dir.path().join("cut.json.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    let cut = cut.to_str().unwrap();
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let go = |args: &[&str]| run(args, Stdin::Null, Duration::from_secs(30));

    let r = go(&["search", "--json", good]);
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stdout), format!("{a}{b}"));

    let r = go(&["search", "--pid", "9", good]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (Some(1), "rename-audit: no matching events\n"),
        "{r:?}"
    );

    let r = go(&["search", "--json", missing, good]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stdout), format!("{a}{b}"));
    assert_eq!(
        r.stderr,
        format!(
            "rename-audit: cannot open {missing}: No such file or directory (os error 2)\n\
             rename-audit: 1 input(s) could not be read in full (see above)\n"
        )
    );

    let r = go(&["search", "--json", "--pid", "203", cut, good]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        c,
        "the cut file's start"
    );
    assert!(
        r.stderr
            .starts_with(&format!("rename-audit: cannot read {cut} to its end: ")),
        "{r:?}"
    );
    assert!(
        r.stderr
            .ends_with("rename-audit: 1 input(s) could not be read in full (see above)\n"),
        "{r:?}"
    );
    let r = go(&["search", "--json", "--pid", "202", cut, good]);
    assert_eq!(r.code, Some(2), "an error wins over a match: {r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        b,
        "the next file is read"
    );

    let r = go(&["report", "--pid", "202", missing, good]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stdout).starts_with(
            "rename-audit report: 1 events from 2026-12-04T19:32:25.000000Z to \
             2026-12-04T19:32:25.000000Z\n"
        ),
        "the report of what could be read: {r:?}"
    );
    let r = go(&["report", "--pid", "9", good]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "rename-audit report: no events in range\n"
    );
    let r = go(&["report", good]);
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{r:?}");

    // Errors before reading are errors too.
    for args in [
        vec!["search", "--since", "yesterday", good],
        vec!["report", "--since", "yesterday", good],
        vec!["search", "--config", missing],
    ] {
        let r = go(&args);
        assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
    }
}

#[test]
fn report_totals_do_not_wrap() {
    let summary = format!(
        r#"{{"@timestamp":"2026-12-04T19:32:25.000000Z","event":{{"action":"thread-rename-summary"}},"process":{{"pid":7,"executable":"/x","thread":{{"id":8}}}},"summary":{{"count":{},"last_name":"n","class":"thread"}}}}
"#,
        u64::MAX
    );
    let run = run(
        &["report", "-"],
        Stdin::Pipe {
            prefix: summary.repeat(3).into_bytes(),
            zeros: 0,
            suffix: Vec::new(),
        },
        Duration::from_secs(30),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = String::from_utf8_lossy(&run.stdout);
    // 3 * (2^64 - 1) = 55340232221128654845.
    for want in [
        "  storm summaries              3  (55340232221128654845 renames summarized, thread 55340232221128654845)\n",
        "  55340232221128654845  7  /x  -\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

// ---- The configuration path is not a regular file ----

/// A FIFO, a listening socket and a character device, and the type each
/// is refused as.
struct Specials {
    _dir: tempfile::TempDir,
    _listener: std::os::unix::net::UnixListener,
    kinds: Vec<(PathBuf, &'static str)>,
}

fn specials() -> Specials {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let c = CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let sock = dir.path().join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    Specials {
        _dir: dir,
        _listener: listener,
        kinds: vec![
            (fifo, "a FIFO (named pipe)"),
            (sock, "a socket"),
            (PathBuf::from("/dev/null"), "a character device"),
        ],
    }
}

fn refusal(path: &Path, kind: &str) -> String {
    format!(
        "{}: is {kind}, not a regular file; the configuration must be a regular file \
         (replace it, or point --config at one)",
        path.display()
    )
}

/// check-config and `run` refuse each at once, with the message; behind a
/// symlink too (the path is followed).
#[test]
fn a_config_that_is_not_a_regular_file_is_refused_at_once() {
    let specials = specials();
    let dir = tempfile::tempdir().expect("tempdir");
    for (target, kind) in &specials.kinds {
        let link = dir.path().join(format!("link-{}", kind.len()));
        symlink(target, &link).expect("symlink");
        for path in [target.as_path(), link.as_path()] {
            let p = path.to_str().unwrap();
            let r = run(&["check-config", p], Stdin::Null, Duration::from_secs(10));
            assert_eq!(r.code, Some(1), "check-config {p}: {r:?}");
            assert_eq!(r.stderr, format!("rename-audit: {}\n", refusal(path, kind)));
            let out = dir.path().join("events.json");
            let r = run(
                &["run", "--config", p, "--output", out.to_str().unwrap()],
                Stdin::Null,
                Duration::from_secs(10),
            );
            assert_eq!(r.code, Some(1), "run --config {p}: {r:?}");
            assert!(
                r.stderr
                    .ends_with(&format!("rename-audit: {}\n", refusal(path, kind))),
                "run --config {p}: {r:?}"
            );
        }
    }
}

/// SIGHUP with the configuration path swapped for a FIFO, a socket or a
/// device: each is refused at once, logged, and the old configuration
/// kept; renames are still reported and SIGTERM still ends the daemon.
#[test]
fn sighup_refuses_a_config_that_is_not_a_regular_file_and_sigterm_still_stops() {
    let specials = specials();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[output]\nthread_renames = \"all\"\n").expect("write");
    let output = dir.path().join("events.json");
    let mut d = Daemon::start_with(
        tempfile::tempdir().expect("tempdir"),
        output,
        &["--config", config.to_str().unwrap()],
    );
    for (i, (target, kind)) in specials.kinds.iter().enumerate() {
        let swap = dir.path().join("swap");
        let _ = std::fs::remove_file(&swap);
        symlink(target, &swap).expect("symlink");
        std::fs::rename(&swap, &config).expect("swap the config for a symlink");
        d.signal(libc::SIGHUP);
        let logged = d.wait_for_log("configuration not reloaded");
        assert!(
            logged.contains(&refusal(&config, kind)),
            "the log names the path and its type: {logged}"
        );
        let name = format!("e2e-hostile-{i}");
        let pid = renamer::run("prctl", name.as_bytes(), &[]).get("pid");
        d.wait_for(&name, |e| {
            at(e, "process.pid").as_u64() == Some(pid.into())
                && at(e, "rename.new_name").as_str() == Some(name.as_str())
        });
    }
    let (status, _) = d.stop_within(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}
