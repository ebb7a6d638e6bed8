//! rename-audit: audit every thread and process rename on a Linux host.
//!
//! The daemon is a pipeline, one module a stage, read top-down:
//! [`capture`] (kernel programs, ring buffers, storm slots) ->
//! [`proctable`] (exact table of processes) -> [`classify`] (enriched
//! [`event::Event`]s) -> [`rules`] (alerts) -> [`output`] and [`sinks`].
pub mod capture;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod event;
pub mod metrics;
pub mod names;
pub mod output;
pub mod pipeline;
pub mod proctable;
pub mod rules;
pub mod sinks;
