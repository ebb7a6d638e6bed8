//! rename-audit: audit every thread and process rename on a Linux host.
//!
//! The daemon is a pipeline, one module a stage, read top-down:
//! [`capture`] (kernel programs, ring buffers, storm slots) ->
//! [`proctable`] (exact table of processes) -> [`classify`] (enriched
//! [`event::Event`]s) -> [`rules`] (alerts) -> [`noise`] (which thread
//! renames are written) -> [`output`] and [`sinks`]. [`query`] is the other
//! side: `search` and `report` over the written log, without BPF.
pub mod capture;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod event;
pub mod generate;
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
