#![no_main]
//! See `fuzz/src/ops_model.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::ops_model::run(data));
