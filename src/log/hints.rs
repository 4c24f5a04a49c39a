//! Writing and loading hint files (the format is in `format::hint`).

use std::path::Path;

use crate::error::Result;
use crate::format::hint::{self, HintEntry, HintHeader};
use crate::format::record::Kind;
use crate::hash::KeyHasher;
use crate::index::{Index, Loc};
use crate::log::scan::{Item, Scanner};
use crate::log::{hint_path, Segment, Segments};
use crate::storage;

/// Expiry in whole seconds, rounded up, as the index and hint files keep it (0 = never).
pub(crate) fn expires_s(expires_ms: u64) -> u32 {
    if expires_ms == 0 {
        0
    } else {
        expires_ms.div_ceil(1000).min(u32::MAX as u64 - 1).max(1) as u32
    }
}

/// Writes `seg`'s hint file (the segment must be sealed and fsynced) and
/// returns its size, or `None` when the segment holds something a hint cannot
/// describe (then open scans it instead).
pub(crate) fn write(
    dir: &Path,
    segments: &Segments,
    seg: &Segment,
    hasher: &KeyHasher,
    index: &Index,
    durable_seq: u64,
) -> Result<Option<u64>> {
    let mut entries = Vec::new();
    let mut scanner = Scanner::new(seg.bytes());
    for item in scanner.by_ref() {
        let Item::Record { offset, record } = item else { return Ok(None) };
        let key_hash = hasher.hash(record.key);
        let tombstone = record.kind == Kind::Tombstone;
        let loc = Loc { seg: seg.id, off: offset as u32 };
        entries.push(HintEntry {
            key_hash,
            seq: record.header.seq,
            expires_s: expires_s(record.header.expires_ms),
            len: record.len() as u32,
            tombstone,
            dead: !tombstone && index.get_at(key_hash, loc).is_none(),
        });
    }
    let header = HintHeader {
        hasher: hasher.id(),
        segment_id: seg.id,
        data_len: scanner.position(),
        count: entries.len() as u32,
        durable_seq,
    };
    let bytes = hint::encode(&header, &entries);
    storage::write_file_atomic(&hint_path(dir, seg.id), &bytes)?;
    segments.grow(bytes.len() as u64);
    seg.set_hint_len(bytes.len() as u64);
    Ok(Some(bytes.len() as u64))
}

/// Loads and checks segment `id`'s hint file; `None` when it is missing, damaged,
/// or does not match the segment (then the caller scans the segment).
pub(crate) fn load(path: &Path, id: u32, hasher_id: u8, segment_len: u64) -> Option<Vec<u8>> {
    let bytes = storage::read_file(path).ok()?;
    let (h, _) = hint::decode(&bytes).ok()?;
    (h.segment_id == id && h.hasher == hasher_id && h.data_len <= segment_len).then_some(bytes)
}
