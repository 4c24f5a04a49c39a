//! The `keg` command-line tool, run as the binary this test run built.
//!
//! A file's tests run on their own with a filter on its module:
//! `cargo test --release --test cli cli_dump::`.
#![cfg(feature = "cli")]

#[path = "../common/mod.rs"]
mod common;

mod cli_dump;
mod cli_get_set;
mod cli_live_cache;
mod cli_load_export;
mod cli_stats;
mod cli_tags;
mod cli_usage;
mod cli_verify;
