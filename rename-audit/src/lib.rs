//! rename-audit: audit every thread and process rename on a Linux host.
//!
//! The daemon is a pipeline, one module a stage, read top-down:
//! [`capture`] (kernel programs, ring buffers, storm slots) ->
//! [`proctable`] (exact table of processes) -> [`classify`] (enriched
//! [`event::Event`]s) -> [`rules`] (alerts) -> [`noise`] (which thread
//! renames are written) -> [`output`] and [`sinks`]. [`query`] is the other
//! side: `search` and `report` over the written log, without BPF.
//!
//! Imports run one way: a stage may import the stages before it and the
//! modules below them all, never a later one. At the bottom are the kernel's
//! vocabulary and record layouts (`rename_audit_common`), [`names`],
//! [`clock`], the value types of a process ([`process`]), who is writing
//! ([`identity`]: host and agent, on every event and alert) and small shared
//! tools ([`util`]). [`config`] builds each stage's settings from the file
//! (the sinks take theirs from it), and [`cli`] merges the flags in.
//! [`state`] keeps the run's last written record for the next start, beside
//! the pipeline that writes it.
pub mod capture;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod event;
pub mod generate;
pub mod identity;
pub mod metrics;
pub mod names;
pub mod noise;
pub mod output;
pub mod pipeline;
pub mod process;
pub mod proctable;
pub mod query;
pub mod rules;
pub mod sinks;
pub mod state;
pub mod util;
