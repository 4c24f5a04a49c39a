#![no_main]
//! See `fuzz/src/serve_session.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::serve_session::run(data));
