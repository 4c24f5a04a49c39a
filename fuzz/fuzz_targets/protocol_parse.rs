#![no_main]
//! See `fuzz/src/protocol_parse.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::protocol_parse::run(data));
