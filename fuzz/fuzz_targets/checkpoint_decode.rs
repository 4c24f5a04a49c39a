#![no_main]
//! See `fuzz/src/checkpoint_decode.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::checkpoint_decode::run(data));
