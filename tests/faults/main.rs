//! Faults: injected I/O errors, fsyncgate, a full disk, simulated power cuts,
//! and child processes killed with SIGKILL or at kill points.
//!
//! `crash_buffered_loss`, `crash_kill9`, `crash_loop` and `crash_ttl` re-execute this binary as their child
//! process with `--exact <module>::<child test>`; the module path in those
//! filters must match where the file sits in this binary.
//!
//! A file's tests run on their own with a filter on its module:
//! `cargo test --release --test faults faults_sweep::`.

#[path = "../fault_model/mod.rs"]
mod fault_model;

mod crash_buffered_loss;
mod crash_kill9;
mod crash_loop;
mod crash_loop_short_runs;
mod crash_ttl;
mod faults_fsyncgate;
mod faults_full_disk;
mod faults_memory_backend;
mod faults_power_cut;
mod faults_power_cut_sessions;
mod faults_regressions;
mod faults_sequence_mark;
mod faults_sweep;
mod synced_preallocation;
