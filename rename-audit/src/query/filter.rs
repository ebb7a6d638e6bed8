//! The filters of `search` and `report`, compiled once, and the cheap byte
//! checks that let most non-matching lines be skipped without parsing.

use memchr::memmem::Finder;
use time::{
    Date, OffsetDateTime, PrimitiveDateTime, Time, format_description::well_known::Rfc3339,
};

use super::record::Record;
use crate::cli::FilterArgs;
use crate::util::glob::Pattern;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("--{flag}: {value:?} is not a time or a duration: {reason}")]
    Time {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--{flag}: {source}")]
    Glob {
        flag: &'static str,
        #[source]
        source: crate::util::glob::PatternError,
    },
}

/// Every filter given; an event passes when all of them match.
pub struct Filters {
    pid: Option<u32>,
    tid: Option<u32>,
    name: Option<Pattern>,
    exe: Option<Pattern>,
    host: Option<Pattern>,
    rule: Option<String>,
    method: Option<String>,
    process_only: bool,
    /// Bounds as `@timestamp` text (RFC 3339 UTC, six fractional digits),
    /// which orders like the times it names.
    since: Option<String>,
    until: Option<String>,
    /// Byte strings a matching line must contain.
    needles: Vec<Finder<'static>>,
}

/// What the daemon writes first on every line.
const TIMESTAMP_PREFIX: &[u8] = br#"{"@timestamp":""#;
const TIMESTAMP_LEN: usize = 27;

impl Filters {
    pub fn new(args: &FilterArgs, now: OffsetDateTime) -> Result<Filters, FilterError> {
        let glob = |flag, value: &Option<String>| {
            value
                .as_deref()
                .map(Pattern::name)
                .transpose()
                .map_err(|source| FilterError::Glob { flag, source })
        };
        let mut needles = Vec::new();
        if let Some(pid) = args.pid {
            needles.push(Finder::new(pid.to_string().as_bytes()).into_owned());
        }
        if let Some(tid) = args.tid {
            needles.push(Finder::new(tid.to_string().as_bytes()).into_owned());
        }
        if let Some(rule) = &args.rule {
            needles.push(Finder::new(format!("\"{rule}\"").as_bytes()).into_owned());
        }
        if let Some(method) = &args.method {
            needles.push(Finder::new(format!("\"method\":\"{method}\"").as_bytes()).into_owned());
        }
        // A central store holds many hosts: a host's name on the line is
        // the cheapest way to skip the others' lines unparsed.
        for glob in [&args.name, &args.exe, &args.host].into_iter().flatten() {
            if let Some(literal) = required_literal(glob) {
                needles.push(Finder::new(literal.as_bytes()).into_owned());
            }
        }
        Ok(Filters {
            pid: args.pid,
            tid: args.tid,
            name: glob("name", &args.name)?,
            exe: glob("exe", &args.exe)?,
            host: glob("host", &args.host)?,
            rule: args.rule.clone(),
            method: args.method.clone(),
            process_only: args.process_only,
            since: bound("since", args.since.as_deref(), now)?,
            until: bound("until", args.until.as_deref(), now)?,
            needles,
        })
    }

    /// `false` when `line` certainly does not match; `true` means parse it
    /// and ask [`Filters::matches`].
    pub fn may_match(&self, line: &[u8]) -> bool {
        if let Some(ts) = line
            .strip_prefix(TIMESTAMP_PREFIX)
            .and_then(|rest| rest.get(..TIMESTAMP_LEN))
            && !self.in_time(ts)
        {
            return false;
        }
        self.needles.iter().all(|n| n.find(line).is_some())
    }

    /// A byte string every matching line holds (the longest, likely the
    /// rarest, of them), for skipping whole runs of lines without it.
    pub fn skip_needle(&self) -> Option<&Finder<'static>> {
        self.needles.iter().max_by_key(|n| n.needle().len())
    }

    /// Whether [`Filters::may_match`] saying yes to `line` is already the
    /// answer: only time bounds are given and the line starts with a
    /// timestamp as the daemon writes it. Then a caller that only copies
    /// lines need not parse them.
    pub fn decided_by_bytes(&self, line: &[u8]) -> bool {
        self.pid.is_none()
            && self.tid.is_none()
            && self.name.is_none()
            && self.exe.is_none()
            && self.host.is_none()
            && self.rule.is_none()
            && self.method.is_none()
            && !self.process_only
            && line
                .strip_prefix(TIMESTAMP_PREFIX)
                .and_then(|rest| rest.get(..TIMESTAMP_LEN))
                .is_some_and(|ts| ts.ends_with(b"Z"))
    }

    fn in_time(&self, ts: &[u8]) -> bool {
        self.since.as_ref().is_none_or(|s| ts >= s.as_bytes())
            && self.until.as_ref().is_none_or(|u| ts <= u.as_bytes())
    }

    pub fn matches(&self, r: &Record<'_>) -> bool {
        if !self.in_time(normalized(&r.timestamp).as_bytes()) {
            return false;
        }
        let writer = r.rename.as_ref().map(|r| &r.writer);
        if let Some(pid) = self.pid
            && r.pid() != Some(pid)
            && writer.map(|w| w.pid) != Some(pid)
        {
            return false;
        }
        if let Some(tid) = self.tid
            && r.tid() != Some(tid)
            && writer.map(|w| w.tid) != Some(tid)
        {
            return false;
        }
        if let Some(name) = &self.name {
            let names = [r.old_name(), r.new_name(), r.last_name()];
            if !names.iter().flatten().any(|n| name.is_match(n)) {
                return false;
            }
        }
        if let Some(exe) = &self.exe
            && !r.executable().is_some_and(|e| exe.is_match(&e))
        {
            return false;
        }
        if let Some(host) = &self.host
            && !r.host_name().is_some_and(|h| host.is_match(h.as_bytes()))
        {
            return false;
        }
        if let Some(rule) = &self.rule
            && !r.rules().contains(&rule.as_str())
        {
            return false;
        }
        if let Some(method) = &self.method
            && r.rename.as_ref().is_none_or(|x| x.method != *method)
        {
            return false;
        }
        if self.process_only {
            let process = match (&r.rename, &r.summary) {
                (Some(rename), _) => rename.main_thread,
                (None, Some(s)) => s.class == "process",
                (None, None) => false,
            };
            if !process {
                return false;
            }
        }
        true
    }
}

/// A piece of text every string matching `glob` contains, written the same
/// in the JSON line: the longest run between `*` and `?` wildcards, when it
/// is printable ASCII that JSON does not escape (`"` and `\\` are). A name
/// that is not UTF-8 is written lossily, but its ASCII runs stay as they
/// are. Globs with classes, alternatives or escapes give none.
fn required_literal(glob: &str) -> Option<&str> {
    if glob.contains(['[', '{', '\\']) {
        return None;
    }
    glob.split(['*', '?'])
        .filter(|run| run.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"'))
        .max_by_key(|run| run.len())
        .filter(|run| !run.is_empty())
}

/// `@timestamp` as the daemon writes it; any other RFC 3339 form is
/// converted so that comparing text compares times.
fn normalized(ts: &str) -> std::borrow::Cow<'_, str> {
    if ts.len() == TIMESTAMP_LEN && ts.ends_with('Z') {
        return ts.into();
    }
    match OffsetDateTime::parse(ts, &Rfc3339) {
        Ok(t) => format_ts(t).into(),
        Err(_) => ts.into(),
    }
}

fn format_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (h, m, s, us) = t.to_hms_micro();
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{us:06}Z",
        t.year(),
        t.month() as u8,
        t.day()
    )
}

/// `--since`/`--until` as `@timestamp` text.
fn bound(
    flag: &'static str,
    value: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<String>, FilterError> {
    let Some(value) = value else {
        return Ok(None);
    };
    parse_time(value, now)
        .map(|t| Some(format_ts(t)))
        .map_err(|reason| FilterError::Time {
            flag,
            value: value.to_owned(),
            reason,
        })
}

/// An RFC 3339 time, a UTC `YYYY-MM-DD[ HH:MM[:SS]]` (or with `T`), or a
/// duration before `now` such as `90s`, `15m`, `1h`, `2d`, `1h 30m`.
pub fn parse_time(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let value = value.trim();
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    if value.starts_with(|c: char| c.is_ascii_digit()) && value.contains('-') {
        let (date, time) = match value.split_once([' ', 'T']) {
            Some((d, t)) => (d, Some(t)),
            None => (value, None),
        };
        let date = Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|e| format!("{e} (expected YYYY-MM-DD)"))?;
        let time = match time {
            None => Time::MIDNIGHT,
            Some(t) => Time::parse(
                t,
                time::macros::format_description!("[hour]:[minute]:[second]"),
            )
            .or_else(|_| Time::parse(t, time::macros::format_description!("[hour]:[minute]")))
            .map_err(|e| format!("{e} (expected HH:MM or HH:MM:SS, UTC)"))?,
        };
        return Ok(PrimitiveDateTime::new(date, time).assume_utc());
    }
    let duration = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    let duration = time::Duration::try_from(duration).map_err(|e| e.to_string())?;
    now.checked_sub(duration)
        .ok_or_else(|| "the duration reaches before year 0".to_owned())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

    #[test]
    fn globs_give_a_literal_only_when_every_match_holds_it() {
        assert_eq!(required_literal("kworker/*"), Some("kworker/"));
        assert_eq!(required_literal("*/tmp/*x?y*"), Some("/tmp/"));
        assert_eq!(required_literal("*"), None);
        assert_eq!(required_literal("{a,b}*"), None);
        assert_eq!(required_literal("[ab]cd"), None);
        assert_eq!(required_literal("a\\*b"), None);
        assert_eq!(required_literal("caf\u{e9}*x"), Some("x"));
        assert_eq!(required_literal("say\"hi\"*"), None);
    }

    #[test]
    fn times_and_durations() {
        let t = |s| parse_time(s, NOW).map(format_ts);
        assert_eq!(t("1h").unwrap(), "2026-11-23T11:00:00.000000Z");
        assert_eq!(t("1h 30m").unwrap(), "2026-11-23T10:30:00.000000Z");
        assert_eq!(t("2d").unwrap(), "2026-11-21T12:00:00.000000Z");
        assert_eq!(t("90s").unwrap(), "2026-11-23T11:58:30.000000Z");
        assert_eq!(
            t("2026-11-23T14:00:00.5+02:00").unwrap(),
            "2026-11-23T12:00:00.500000Z"
        );
        assert_eq!(t("2026-11-22").unwrap(), "2026-11-22T00:00:00.000000Z");
        assert_eq!(
            t("2026-11-22 08:15").unwrap(),
            "2026-11-22T08:15:00.000000Z"
        );
        assert_eq!(
            t("2026-11-22T08:15:07").unwrap(),
            "2026-11-22T08:15:07.000000Z"
        );
        assert!(t("yesterday").is_err());
        assert!(t("2026-13-01").is_err());
    }

    fn filters(args: FilterArgs) -> Filters {
        Filters::new(&args, NOW).expect("valid filters")
    }

    const LINE: &str = r#"{"@timestamp":"2026-11-23T11:30:00.000001Z","event":{"action":"thread-renamed"},"process":{"pid":4242,"executable":"/usr/bin/x","thread":{"id":4243}},"rename":{"old_name":"x","new_name":"kworker/0:1","main_thread":false,"method":"procfs","writer":{"pid":4242,"tid":4242,"name":"x"},"rules":["kernel-thread-mimic"]},"rule":{"id":"kernel-thread-mimic","severity":"critical"}}"#;

    fn check(args: FilterArgs) -> bool {
        let f = filters(args);
        let r = Record::parse(LINE.as_bytes()).expect("parse");
        let full = f.matches(&r);
        // The prefilter may only ever say "maybe" to a line that matches.
        assert!(
            !full || f.may_match(LINE.as_bytes()),
            "prefilter lost a match"
        );
        full
    }

    #[test]
    fn each_filter_matches_and_rejects() {
        let a = FilterArgs::default;
        assert!(check(a()));
        assert!(check(FilterArgs {
            pid: Some(4242),
            ..a()
        }));
        assert!(!check(FilterArgs {
            pid: Some(424),
            ..a()
        }));
        assert!(check(FilterArgs {
            tid: Some(4243),
            ..a()
        }));
        assert!(
            check(FilterArgs {
                tid: Some(4242),
                ..a()
            }),
            "the writer's tid"
        );
        assert!(!check(FilterArgs {
            tid: Some(1),
            ..a()
        }));
        assert!(check(FilterArgs {
            name: Some("kworker/*".into()),
            ..a()
        }));
        assert!(
            check(FilterArgs {
                name: Some("x".into()),
                ..a()
            }),
            "old name"
        );
        assert!(!check(FilterArgs {
            name: Some("y*".into()),
            ..a()
        }));
        assert!(check(FilterArgs {
            exe: Some("*/x".into()),
            ..a()
        }));
        assert!(!check(FilterArgs {
            exe: Some("/tmp/*".into()),
            ..a()
        }));
        assert!(check(FilterArgs {
            rule: Some("kernel-thread-mimic".into()),
            ..a()
        }));
        assert!(!check(FilterArgs {
            rule: Some("process-renamed".into()),
            ..a()
        }));
        assert!(check(FilterArgs {
            method: Some("procfs".into()),
            ..a()
        }));
        assert!(!check(FilterArgs {
            method: Some("prctl".into()),
            ..a()
        }));
        assert!(!check(FilterArgs {
            process_only: true,
            ..a()
        }));
        assert!(check(FilterArgs {
            since: Some("1h".into()),
            ..a()
        }));
        assert!(!check(FilterArgs {
            since: Some("15m".into()),
            ..a()
        }));
        assert!(check(FilterArgs {
            until: Some("15m".into()),
            ..a()
        }));
        assert!(!check(FilterArgs {
            until: Some("2026-11-23T11:30:00Z".into()),
            ..a()
        }));
        assert!(
            check(FilterArgs {
                since: Some("2026-11-23T11:30:00.000001Z".into()),
                until: Some("2026-11-23T11:30:00.000001Z".into()),
                ..a()
            }),
            "both bounds are inclusive"
        );
    }
}
