//! `serve_session`: arbitrary bytes sent to `keg serve` as one client
//! connection (`keg::server::Session`: the served connection's state and
//! request execution, without the socket), on the reference store or on a
//! keg cache in simulated memory.
//!
//! The first input byte is a mode: [`SMALL_LIMITS`], [`ON_CACHE`], and in
//! bits 2-4 the size of the pieces the client's bytes arrive in
//! ([`PIECES`]); the rest is what the client sent.
//!
//! Invariants checked on every input:
//! - nothing panics, whatever the bytes (the parser's fuzz target covers the
//!   parser; this one covers everything after it: the classic and meta
//!   commands' execution, base64 keys, the recache flows, `flush_all`,
//!   `stats`, oversized items, throttled multi-key gets);
//! - every byte is taken unless the connection ended (`quit`), and closing
//!   the session ends it;
//! - the replies do not depend on how the bytes were cut into pieces: the
//!   same input sent in one piece to a fresh store gives the same replies,
//!   up to numbers (cas uniques, times and statistics may differ between two
//!   runs; the replies' words, keys and non-digit bytes may not).

use std::sync::Arc;

use keg::server::{Config, Limits, MemoryStore, Session, Store};
use keg::sim::FaultFs;
use keg::Cache;

/// Mode bit: tiny limits (64-byte lines, 32-byte items, 48 bytes of
/// replies before a multi-key get pauses), to reach them often.
pub const SMALL_LIMITS: u8 = 1;
/// Mode bit: a keg cache on in-memory storage instead of `MemoryStore`.
pub const ON_CACHE: u8 = 2;
/// Piece sizes, chosen by mode bits 2-4.
pub const PIECES: [usize; 8] = [1, 2, 3, 5, 8, 64, 1024, usize::MAX];

/// Runs every check on one input: a mode byte, then the client's bytes.
pub fn run(data: &[u8]) {
    let Some((&mode, input)) = data.split_first() else { return };
    let piece = PIECES[usize::from(mode >> 2) & 7];
    let pieced = replies(mode, input, piece);
    let whole = replies(mode, input, usize::MAX);
    assert_eq!(
        without_digits(&pieced),
        without_digits(&whole),
        "the replies depend on how the input was cut ({piece}-byte pieces against one)"
    );
}

/// The replies to `input`, sent in pieces of `piece` bytes to a fresh store.
fn replies(mode: u8, input: &[u8], piece: usize) -> Vec<u8> {
    let config = if mode & SMALL_LIMITS != 0 {
        Config {
            limits: Limits { max_line: 64, max_retrieval_line: 128, max_item_size: 32 },
            max_output_bytes: 48,
            ..Config::default()
        }
    } else {
        Config::default()
    };
    if mode & ON_CACHE != 0 {
        let cache = Cache::builder()
            .storage(FaultFs::in_memory())
            .max_bytes(64 << 20)
            .max_value_len(config.limits.max_item_size)
            .background_maintenance(false)
            .open("/serve")
            .expect("open a cache on in-memory storage");
        converse(Arc::new(cache), config, input, piece)
    } else {
        let store = MemoryStore::new(config.limits.max_item_size);
        converse(Arc::new(store), config, input, piece)
    }
}

fn converse<S: Store>(store: Arc<S>, config: Config, input: &[u8], piece: usize) -> Vec<u8> {
    let mut session = Session::new(store, config).expect("a valid config");
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        let took = session.send(chunk, &mut out);
        if took < chunk.len() {
            assert!(session.is_closed(), "a session left {} bytes without being closed", chunk.len() - took);
            return out;
        }
    }
    session.close(&mut out);
    assert!(session.is_closed(), "closing did not end the session");
    out
}

/// `replies` with each run of ASCII digits replaced by one `#`.
fn without_digits(replies: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(replies.len());
    for &b in replies {
        if b.is_ascii_digit() {
            if out.last() != Some(&b'#') {
                out.push(b'#');
            }
        } else {
            out.push(b);
        }
    }
    out
}
