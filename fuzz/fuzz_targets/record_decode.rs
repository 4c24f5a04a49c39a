#![no_main]
//! See `fuzz/src/record_decode.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::record_decode::run(data));
