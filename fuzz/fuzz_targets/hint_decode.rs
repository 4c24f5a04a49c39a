#![no_main]
//! See `fuzz/src/hint_decode.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::hint_decode::run(data));
