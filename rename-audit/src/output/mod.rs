//! The event stream: one ECS JSON object per line, on stdout or a file
//! (or, with `--format text`, one readable line per event: [`text`]).
//!
//! [`ecs::write_json_line`] turns an [`Event`](crate::event::Event) into a
//! line; [`JsonLinesWriter`] owns the destination. Objects are nested, never
//! dotted keys. A line holds:
//!
//! - `@timestamp`: RFC 3339 UTC, six fractional digits, the time of the
//!   rename itself. `ecs.version`.
//! - `event`: `id` (`<agent.ephemeral_id>-<event.sequence>`, unique across
//!   restarts and hosts), `kind` ("event", or "alert" when a rule matched), `category`
//!   ["process"], `type` ["change"] for renames and ["info"] for
//!   `renames-summarized` / `events-lost`, `action` (`process-renamed`,
//!   `thread-renamed`, `renames-summarized`, `events-lost`), `sequence`,
//!   `severity` (alerts only: 21/47/73/99 for low/medium/high/critical),
//!   `module` "rename_audit", `dataset` "rename_audit.renames".
//! - `agent`: `type` "rename-audit", `version`, `ephemeral_id` (a random
//!   UUID drawn at start-up: the run; `event.sequence` restarts at 1 in
//!   each run), `id` (a UUID kept in the state directory: the install),
//!   `name`.
//! - `host`: `name`, `hostname`, `id` (the machine id, when there is one),
//!   `os.{kernel,name,version}`; `labels` (`[host] labels`, when set).
//!   See [`crate::identity`].
//! - `process` (when known): `pid`, `name`, `executable`, `args`, `start`,
//!   `user.id` (a string, as ECS wants), `parent.{pid,name,executable}`,
//!   `thread.id` and `thread.name` (the renamed thread and its new name; for
//!   a summary its last name). A summary whose process is unknown carries
//!   only `process.thread`. `systemd.unit` when the process runs in one.
//! - `rename`: `old_name`, `new_name`, `main_thread`, `method`,
//!   `writer.{pid,tid,name}`, `original_name`, `count`; on alerts also
//!   `rules`, every rule that matched (ids, most severe first, so
//!   `rename.rules[0]` is `rule.id`): ECS has one `rule` per event, and a
//!   custom field under our own `rename` namespace cannot clash with a
//!   future ECS field.
//! - `summary`: `count`, `first_seen`, `last_seen`, `last_name`, `class`
//!   ("process"/"thread"), `thread_exited`.
//! - `lost`: `count`, `class` (`process`, `thread`, `lifecycle`: the kernel
//!   could not send them; `output`: the daemon could not write them).
//! - Alerts add `rule.{id,name,severity}` (`rule.severity` is the label,
//!   "low".."critical": ECS has no field for it), `threat.framework`
//!   "MITRE ATT&CK" with `threat.technique.{id,reference}` (arrays, as in
//!   ECS) when a technique applies, and `message`.
//!
//! Names are bytes. Every field holding one is written as its text, exact
//! when the bytes are UTF-8. When they are not, the text is lossy and a
//! sibling `<field>_hex` (e.g. `rename.new_name_hex`,
//! `process.executable_hex`) holds the raw bytes in lowercase hex. For
//! `process.args`, `process.args_hex` appears when any argument is not
//! UTF-8: an array parallel to `args` with the hex of each lossy item and
//! `null` where the text is exact. So a name's raw bytes are always
//! `<field>_hex` if present, else the UTF-8 of `<field>`.

pub mod ecs;
mod encode;
pub mod stream;
pub mod text;
pub mod writer;

#[cfg(test)]
mod ecs_tests;

pub use ecs::{write_json_line, write_json_line_as};
pub use stream::{OutputStream, OutputSummary};
pub use writer::{JsonLinesWriter, OutputDest, OutputError, WriteOutcome, stdout_is_journal};

/// How the event stream is written (`--format`, `output.format`): ECS JSON
/// lines for machines (the default), or the readable line of [`text`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Text,
}

/// Colour for readable lines on stdout: only on a terminal, and not when
/// the user asked for none (`NO_COLOR`, <https://no-color.org>).
pub fn stdout_wants_color() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
