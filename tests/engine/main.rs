//! The engine through its public API: well- and ill-formed input, threads,
//! the directory lock, the size cap, clock jumps, a model-based proptest and
//! reopening with other segment settings.
//!
//! One test binary per area (engine, recovery, faults, cli, format) so that a
//! change to the library relinks five binaries, not one per file. A file's
//! tests run on their own with a filter on its module:
//! `cargo test --release --test engine size_cap::`.

#[path = "../fault_model/mod.rs"]
mod fault_model;
#[path = "../handmade/mod.rs"]
mod handmade;
// The model of `model_proptest`, shared with the `ops_model` fuzz target
// (which refers to `crate::input`, so both sit at this crate's root). Only
// part of each is used here.
#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../fuzz/src/ops_model.rs"]
mod ops_model;

mod api_basics;
mod atomic_ops;
mod clock_jumps;
mod compact_expired;
mod concurrency;
mod model_proptest;
mod ownership_foreign_files;
mod ownership_lock;
mod reinsertion_budget;
mod reopen_resumes_segments;
mod reopen_with_smaller_segments;
mod settings_validated;
mod size_cap;
mod space_bound;
mod tags;
mod writeback_during_fills;
