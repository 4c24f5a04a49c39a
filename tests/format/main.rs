//! The on-disk format: FORMAT.md against what the engine writes, and the fuzz
//! targets' stored inputs replayed as ordinary tests.
//!
//! A file's tests run on their own with a filter on its module:
//! `cargo test --release --test format fuzz_corpus::`.

// The fuzz targets' logic, shared with the cargo-fuzz crate in `fuzz/`. These
// files refer to each other as `crate::<module>`, so they sit at this crate's
// root; `fuzz_corpus` replays the inputs through them.
#[path = "../../fuzz/src/checkpoint_decode.rs"]
mod checkpoint_decode;
#[path = "../../fuzz/src/hint_decode.rs"]
mod hint_decode;
#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/open_dir.rs"]
mod open_dir;
// (`Run::new`, for the model tests, is not used here.)
#[allow(dead_code)]
#[path = "../../fuzz/src/ops_model.rs"]
mod ops_model;
// protocol_parse: the parser of `keg serve` (feature "server").
#[cfg(feature = "server")]
#[path = "../../fuzz/src/protocol_parse.rs"]
mod protocol_parse;
#[path = "../../fuzz/src/record_decode.rs"]
mod record_decode;
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;
// serve_session: `keg serve`'s connections (feature "server").
#[cfg(feature = "server")]
#[path = "../../fuzz/src/serve_session.rs"]
mod serve_session;

mod format_doc;
mod fuzz_corpus;
