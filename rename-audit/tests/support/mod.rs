//! Shared by the end-to-end tests.
#![allow(dead_code)]
pub mod daemon;
pub mod http;
pub mod renamer;
pub mod servers;
