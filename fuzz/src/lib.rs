//! The logic of keg's fuzz targets, one module per target.
//!
//! Each `fuzz_targets/<name>.rs` calls `<name>::run`; keg's
//! `tests/format/main.rs` includes these same files with `#[path]` (at its
//! root, since they name each other `crate::<module>`) and
//! `tests/format/fuzz_corpus.rs` calls `run` on every file of
//! `corpus/<name>/` and `regressions/<name>/`, so the corpora are exercised
//! by `cargo test` on stable Rust. The modules may use
//! only `keg`, its dependencies and `tempfile`, which both crates have.

pub mod checkpoint_decode;
pub mod hint_decode;
pub mod input;
pub mod open_dir;
pub mod ops_model;
pub mod protocol_parse;
pub mod record_decode;
pub mod seeds;
pub mod serve_session;
