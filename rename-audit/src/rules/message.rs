//! The one-line alert message. Every name and path in it goes through
//! [`Name::escaped`], so a hostile name cannot break the line or fake text.

use super::paths::Writable;
use super::{Moment, Reason};
use crate::event::NameSource;
use crate::event::{Hidden, ProcessContext, Rename};
use crate::names::Name;

pub(super) fn build(process: &ProcessContext, rename: &Rename, reason: &Reason) -> String {
    let exe = match &process.executable {
        Some(exe) => exe.escaped(),
        None => "unknown executable".to_owned(),
    };
    let pid = process.pid;
    let writer = &rename.writer;
    let subject = if writer.pid != pid {
        format!(
            "process {} renamed thread {} of process {pid} ({exe})",
            writer.pid, rename.tid
        )
    } else if writer.tid == rename.tid {
        if rename.main_thread {
            format!("process {pid} ({exe}) renamed itself")
        } else {
            format!(
                "thread {} of process {pid} ({exe}) renamed itself",
                rename.tid
            )
        }
    } else if rename.main_thread {
        format!(
            "thread {} of process {pid} ({exe}) renamed the main thread",
            writer.tid
        )
    } else {
        format!(
            "thread {} of process {pid} ({exe}) renamed thread {}",
            writer.tid, rename.tid
        )
    };
    let new = rename.new_name.escaped();
    let why = why(reason, &new);
    format!(
        "{subject} from \"{}\" to \"{new}\": {why}",
        rename.old_name.escaped()
    )
}

/// The message of an alert on a name no rename gave: at exec or start-up.
pub(super) fn judged(
    process: &ProcessContext,
    moment: Moment,
    source: NameSource,
    name: &Name,
    reason: &Reason,
) -> String {
    let exe = match &process.executable {
        Some(exe) => exe.escaped(),
        None => "unknown executable".to_owned(),
    };
    let pid = process.pid;
    let shown = name.escaped();
    let what = match source {
        NameSource::Name => format!("named \"{shown}\""),
        NameSource::Argv0 => format!("with argv[0] \"{shown}\""),
    };
    let when = match moment {
        Moment::Exec => format!("process {pid} ({exe}) was started {what}"),
        Moment::StartUp => {
            format!("process {pid} ({exe}) was running {what} when the daemon started")
        }
    };
    format!("{when}: {}", why(reason, &shown))
}

fn why(reason: &Reason, new: &str) -> String {
    match reason {
        Reason::KernelShape => format!("\"{new}\" is shaped like a kernel thread"),
        Reason::Writable(Writable::Memfd) => "the executable is a memfd".to_owned(),
        Reason::Writable(Writable::Deleted) => "the executable was deleted".to_owned(),
        Reason::Writable(Writable::Incomplete) => {
            "the executable's path is too deep to be read whole".to_owned()
        }
        Reason::Writable(Writable::Under(dir)) => {
            format!(
                "the executable is under {}",
                Name::from(dir.as_str()).escaped()
            )
        }
        Reason::WellKnownName => format!("\"{new}\" is a well-known system program name"),
        Reason::NameOfRunning(other) => {
            format!("\"{new}\" is the name of a running {}", other.escaped())
        }
        Reason::SiblingRename => "the process name changed under the process".to_owned(),
        Reason::Renamed => "the process name changed".to_owned(),
        Reason::Writable(Writable::Owned { path, uid }) => format!(
            "the executable can be written by user {uid}, who owns {}",
            Name::from(path.as_str()).escaped()
        ),
        Reason::Writable(Writable::Open { path }) => format!(
            "the executable is under {}, which users other than root can write to",
            Name::from(path.as_str()).escaped()
        ),
    }
}

/// The message of a `process-hidden` alert.
pub(super) fn hidden(process: Option<&ProcessContext>, hidden: &Hidden) -> String {
    let exe = match process.and_then(|p| p.executable.as_ref()) {
        Some(exe) => exe.escaped(),
        None => "unknown executable".to_owned(),
    };
    let covering = match (hidden.covered_by, &hidden.entry) {
        (Some(pid), None) => format!("the /proc entry of process {pid}"),
        (Some(pid), Some(_)) => format!("a path from the /proc entry of process {pid}"),
        (None, _) => "another file system".to_owned(),
    };
    format!(
        "process {} ({exe}) is hidden from ps: {covering} is mounted over {}",
        hidden.pid,
        hidden.mount_point.escaped()
    )
}
