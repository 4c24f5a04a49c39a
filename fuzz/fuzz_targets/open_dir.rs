#![no_main]
//! See `fuzz/src/open_dir.rs` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keg_fuzz::open_dir::run(data));
