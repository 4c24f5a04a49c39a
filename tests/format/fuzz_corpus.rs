//! The fuzz targets' inputs as ordinary tests, on stable Rust.
//!
//! Each target's logic lives once, in `fuzz/src/<target>.rs`; the cargo-fuzz
//! binaries call it, and this test binary includes the same files (at its
//! root, see `main.rs`) and replays here every input in
//! `fuzz/corpus/<target>/` (the seeds) and `fuzz/regressions/<target>/`
//! (inputs that once found a bug). Set `KEG_FUZZ_CORPUS=<dir>` to also replay
//! `<dir>/<target>/*`, e.g. a corpus a long fuzzing run grew.
//!
//! The directory targets run on the simulator's in-memory files, as the
//! fuzzers do, and again on real files (`*_on_files`), so that both storage
//! paths take every stored input.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::input::Backend;
#[cfg(feature = "server")]
use crate::protocol_parse;
#[cfg(feature = "server")]
use crate::serve_session;
use crate::{checkpoint_decode, hint_decode, open_dir, ops_model, record_decode, seeds};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted, without hidden ones; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("list a corpus directory").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

/// Runs `run` on every stored input of `target`; returns how many.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut dirs = vec![fuzz_dir().join("corpus").join(target), fuzz_dir().join("regressions").join(target)];
    if let Some(extra) = std::env::var_os("KEG_FUZZ_CORPUS") {
        dirs.push(Path::new(&extra).join(target));
    }
    let mut count = 0;
    for path in dirs.iter().flat_map(|d| inputs(d)) {
        let bytes = std::fs::read(&path).expect("read a corpus file");
        if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
            panic!("fuzz target {target} fails on {}", path.display());
        }
        count += 1;
    }
    assert!(count > 0, "no inputs for fuzz target {target} under {}", fuzz_dir().display());
    count
}

#[test]
fn record_decode_corpus() {
    replay("record_decode", record_decode::run);
}

#[test]
fn hint_decode_corpus() {
    replay("hint_decode", hint_decode::run);
}

#[test]
fn checkpoint_decode_corpus() {
    replay("checkpoint_decode", checkpoint_decode::run);
}

#[test]
fn open_dir_corpus() {
    replay("open_dir", open_dir::run);
}

#[test]
fn open_dir_corpus_on_files() {
    replay("open_dir", |data| open_dir::run_on(data, Backend::Files));
}

#[test]
fn ops_model_corpus() {
    replay("ops_model", ops_model::run);
}

#[test]
fn ops_model_corpus_on_files() {
    replay("ops_model", |data| ops_model::run_on(data, Backend::Files));
}

#[cfg(feature = "server")]
#[test]
fn protocol_parse_corpus() {
    replay("protocol_parse", protocol_parse::run);
}

#[cfg(feature = "server")]
#[test]
fn serve_session_corpus() {
    replay("serve_session", serve_session::run);
}

/// The checked-in seeds are what the generator makes from today's engine: a
/// format change that leaves them stale fails here rather than silently
/// starting the fuzzers from files the engine no longer writes.
#[test]
fn seeds_are_current() {
    let write = std::env::var_os("KEG_FUZZ_WRITE_SEEDS").is_some();
    for (target, name, bytes) in seeds::all() {
        let path = fuzz_dir().join("corpus").join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let stored = std::fs::read(&path).unwrap_or_default();
            assert!(
                stored == bytes,
                "seed {} is stale or missing; regenerate with KEG_FUZZ_WRITE_SEEDS=1 cargo test --test format fuzz_corpus::seeds",
                path.display()
            );
        }
    }
}
