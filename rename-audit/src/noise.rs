//! Noise control: which thread renames are written (`output.thread_renames`,
//! `--thread-renames`). Runs after the rules, because "alerts" keeps exactly
//! the thread renames a rule matched.
//!
//! Process (main-thread) renames, storm summaries and loss reports are always
//! written: they are rare, they are what breaks `pgrep` and psutil, and the
//! accounting (delivered + summarized + lost) needs them. The exception is a
//! "rename" to the name the task already had, which changes nothing any tool
//! sees and is left out unless a rule matched it (`unchanged`). What is left out is
//! counted in `rename_audit_renames_filtered_total{reason}`, so nothing
//! vanishes silently.

use crate::event::{Body, Event};
use crate::util::glob::Pattern;

/// Which thread renames are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreadRenames {
    /// Every thread rename, except those of `thread_renames_allow`
    /// executables that no rule matched.
    All,
    /// Only thread renames a rule matched (alerts).
    #[default]
    Alerts,
    /// No thread renames at all, alerts included.
    None,
}

/// `reason` label of a rename left out by the setting.
pub const REASON_SETTING: &str = "thread-renames";
/// `reason` label of a rename that kept the name it had.
pub const REASON_UNCHANGED: &str = "unchanged";
/// `reason` label of a rename left out by the executable allow-list.
pub const REASON_ALLOW: &str = "thread-renames-allow";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoiseFilter {
    pub thread_renames: ThreadRenames,
    /// Executables (path globs) whose thread renames are expected: left out
    /// under `all` unless a rule matched them.
    pub allow: Vec<Pattern>,
}

impl NoiseFilter {
    /// Why `ev` is not written (the metric's reason), or `None` to write it.
    /// Call after the rules ran, with `ev.alert` set.
    pub fn drop_reason(&self, ev: &Event) -> Option<&'static str> {
        let Body::Rename(rename) = &ev.body else {
            return None;
        };
        // A "rename" to the name the task already had changes nothing a
        // tool can see: not written, unless a rule judged what it shows
        // (an exec of a dropped `sshd` from a process already named so).
        if rename.old_name == rename.new_name && ev.alert.is_none() {
            return Some(REASON_UNCHANGED);
        }
        if rename.main_thread {
            return None;
        }
        let alert = ev.alert.is_some();
        match self.thread_renames {
            ThreadRenames::None => Some(REASON_SETTING),
            ThreadRenames::Alerts if !alert => Some(REASON_SETTING),
            ThreadRenames::Alerts => None,
            ThreadRenames::All if alert => None,
            ThreadRenames::All => {
                let exe = ev.process.as_ref()?.executable.as_ref()?;
                self.allow
                    .iter()
                    .any(|p| p.is_match(exe.as_bytes()))
                    .then_some(REASON_ALLOW)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Alert, Method, ProcessContext, Rename, Severity, Writer};
    use crate::names::Name;

    fn rename(main_thread: bool, alert: bool) -> Event {
        Event {
            sequence: 1,
            timestamp: time::OffsetDateTime::UNIX_EPOCH,
            host: Arc::from("h"),
            process: Some(ProcessContext {
                pid: 10,
                executable: Some(Name::from("/usr/lib/jvm/java-17/bin/java")),
                ..ProcessContext::default()
            }),
            body: Body::Rename(Rename {
                tid: if main_thread { 10 } else { 11 },
                old_name: Name::from("java"),
                new_name: Name::from("C2 CompilerThre"),
                main_thread,
                method: Method::Prctl,
                writer: Writer {
                    pid: 10,
                    tid: 11,
                    name: Name::from("java"),
                },
                original_name: Name::from("java"),
                count: 1,
            }),
            alert: alert.then(|| Alert {
                rule_id: "kernel-thread-mimic",
                rule_name: "x",
                severity: Severity::Critical,
                technique: None,
                message: String::new(),
                matched: vec!["kernel-thread-mimic"],
                judged: None,
            }),
        }
    }

    fn filter(mode: ThreadRenames, allow: &[&str]) -> NoiseFilter {
        NoiseFilter {
            thread_renames: mode,
            allow: allow.iter().map(|g| Pattern::path(g).unwrap()).collect(),
        }
    }

    #[test]
    fn a_rename_that_keeps_the_name_is_left_out_unless_a_rule_matched() {
        for main_thread in [true, false] {
            let mut ev = rename(main_thread, false);
            let Body::Rename(r) = &mut ev.body else {
                unreachable!()
            };
            r.new_name = r.old_name.clone();
            let f = filter(ThreadRenames::All, &[]);
            assert_eq!(f.drop_reason(&ev), Some(REASON_UNCHANGED));
            ev.alert = rename(main_thread, true).alert;
            assert_eq!(f.drop_reason(&ev), None, "an exec a rule matched");
        }
    }

    #[test]
    fn process_renames_are_always_written() {
        for mode in [
            ThreadRenames::All,
            ThreadRenames::Alerts,
            ThreadRenames::None,
        ] {
            let f = filter(mode, &["/usr/lib/jvm/**"]);
            assert_eq!(f.drop_reason(&rename(true, false)), None, "{mode:?}");
        }
    }

    #[test]
    fn each_mode_keeps_what_it_says() {
        let cases = [
            (ThreadRenames::All, false, None),
            (ThreadRenames::All, true, None),
            (ThreadRenames::Alerts, false, Some(REASON_SETTING)),
            (ThreadRenames::Alerts, true, None),
            (ThreadRenames::None, false, Some(REASON_SETTING)),
            (ThreadRenames::None, true, Some(REASON_SETTING)),
        ];
        for (mode, alert, want) in cases {
            assert_eq!(
                filter(mode, &[]).drop_reason(&rename(false, alert)),
                want,
                "{mode:?} alert={alert}"
            );
        }
    }

    #[test]
    fn allow_listed_executables_are_quiet_under_all_unless_a_rule_matched() {
        let f = filter(ThreadRenames::All, &["/usr/lib/jvm/**"]);
        assert_eq!(f.drop_reason(&rename(false, false)), Some(REASON_ALLOW));
        assert_eq!(f.drop_reason(&rename(false, true)), None);
        let other = filter(ThreadRenames::All, &["/opt/**"]);
        assert_eq!(other.drop_reason(&rename(false, false)), None);
    }
}
