//! Writing and loading hint files (the format is in `format::hint`).

use std::path::Path;

use crate::error::Result;
use crate::format::hint::{self, HintEntry, HintHeader};
use crate::format::record::{self, Kind, Record};
use crate::format::segment;
use crate::format::MAX_SEQ;
use crate::hash::KeyHasher;
use crate::index::{Index, Loc};
use crate::log::scan::{Item, Step, Walk};
use crate::log::{hint_path, Segment, Segments};
use crate::mem::ZeroedBuf;
use crate::storage::Storage;

/// Writes `seg`'s hint file (the segment must be sealed and fsynced) and
/// returns its size, or `None` when the segment holds something a hint cannot
/// describe (then open scans it instead): an unknown record, an invalidation
/// record (kind 3), or a tagged value record (open learns each tag's keys
/// from the records).
pub(crate) fn write(
    storage: &Storage,
    dir: &Path,
    segments: &Segments,
    seg: &Segment,
    hasher: &KeyHasher,
    index: &Index,
    durable_seq: u64,
) -> Result<Option<u64>> {
    // Built in place, in a buffer with room for as many records as the
    // segment could hold (untouched room costs no memory; see `crate::mem`).
    let most = seg.bytes().len().saturating_sub(segment::HEADER_LEN) / (record::HEADER_LEN + 1);
    let mut bytes = ZeroedBuf::new(hint::HEADER_LEN + most * hint::ENTRY_LEN);
    let mut count = 0;
    let shadowed = |record: &Record<'_>, key_hash: u64, offset: u64| {
        let loc = Loc { seg: seg.id, off: offset as u32 };
        record.kind != Kind::Tombstone
            && shadowed_durably(segments, index, key_hash, loc, record.key, record.header.seq, durable_seq)
    };
    // A segment appended to after its hint file was written (see
    // `recovery::resume_tails`, and the records a crashed session appended):
    // open read the records that hint covers as it lists them, not as they
    // are. The new hint lists them the same way, or the next open would see
    // what this one did not. They differ only after damage (a hint that lies
    // about a key hash, say, hid a key this session may have deleted without
    // a tombstone, finding nothing), and then the new hint keeps the lie.
    // Entries that agree with their record may newly be marked dead.
    let old = old_hint(storage, dir, seg, hasher);
    let mut walk = Walk::new(seg.bytes(), old.as_deref());
    for step in walk.by_ref() {
        match step {
            Step::Listed { offset, entry: mut e } => {
                if !e.dead && !e.tombstone {
                    if let Some(Ok(record)) = seg.bytes().get(offset as usize..).map(record::decode) {
                        let key_hash = hasher.hash(record.key);
                        e.dead = e.describes(&record, key_hash) && shadowed(&record, key_hash, offset);
                    }
                }
                hint::put_entry(&mut bytes, count, &e);
            }
            Step::Scanned(Item::Record { offset, record }) => {
                if !record.tags.is_empty() {
                    // Open scans a segment with tagged records, to learn each tag's keys.
                    return Ok(None);
                }
                let key_hash = hasher.hash(record.key);
                let dead = shadowed(&record, key_hash, offset);
                hint::put_entry(&mut bytes, count, &HintEntry::of(&record, key_hash, dead));
            }
            // An invalidation record, or one this version does not understand.
            Step::Scanned(Item::Invalidation { .. } | Item::Unknown { .. }) => return Ok(None),
        }
        count += 1;
    }
    let header = HintHeader {
        hasher: hasher.id(),
        segment_id: seg.id,
        data_len: walk.valid_len(),
        count: count as u32,
        durable_seq,
    };
    let len = hint::finish(&mut bytes, &header, count);
    let bytes = &bytes[..len];
    storage.write_file_atomic(&hint_path(dir, seg.id), bytes)?;
    segments.grow(bytes.len() as u64);
    segments.shrink(seg.hint_len());
    seg.set_hint_len(bytes.len() as u64, header.data_len);
    segments.settle_hint(seg);
    Ok(Some(bytes.len() as u64))
}

/// `seg`'s current hint file, if open used one (its entries cover the
/// segment's first `data_len` bytes).
fn old_hint(storage: &Storage, dir: &Path, seg: &Segment, hasher: &KeyHasher) -> Option<Vec<u8>> {
    if seg.hint_len() == 0 {
        return None;
    }
    load(storage, &hint_path(dir, seg.id), seg.id, hasher.id(), seg.len())
}

/// Whether the value record of `key` at `loc` (sequence `seq`) is shadowed by
/// a newer value of the same key that the checkpoint already covers.
///
/// Only such records may be marked dead in a hint: recovery skips them, which
/// is safe only if the record shadowing them is certain to survive any crash
/// (a newer record that a power cut could lose would otherwise expose an even
/// older value).
fn shadowed_durably(
    segments: &Segments,
    index: &Index,
    hash: u64,
    loc: Loc,
    key: &[u8],
    seq: u64,
    durable_seq: u64,
) -> bool {
    if index.get_at(hash, loc).is_some() {
        return false;
    }
    index.lookup(hash, false).iter().any(|e| {
        segments
            .get(e.loc.seg)
            .and_then(|s| s.peek(e.loc.off).map(|(h, k)| k == key && h.seq > seq && h.seq <= durable_seq))
            .unwrap_or(false)
    })
}

/// Loads and checks segment `id`'s hint file; `None` when it is missing, damaged,
/// or does not match the segment (then the caller scans the segment).
pub(crate) fn load(storage: &Storage, path: &Path, id: u32, hasher_id: u8, segment_len: u64) -> Option<Vec<u8>> {
    let bytes = storage.read_file(path).ok()?;
    let usable = {
        let (h, mut entries) = hint::decode(&bytes).ok()?;
        // Sequence numbers past MAX_SEQ are damage (see recovery): scan instead.
        let plausible = h.durable_seq <= MAX_SEQ && entries.all(|e| e.seq <= MAX_SEQ);
        plausible && h.segment_id == id && h.hasher == hasher_id && h.data_len <= segment_len
    };
    usable.then_some(bytes)
}

/// Entries read from a hint file per `read_at` while open streams it.
const LISTING_CHUNK_ENTRIES: usize = 8192;

/// A hint file that open checked once and reads again, in chunks, each time
/// it walks the records (a few passes): open never holds a whole listing in
/// memory, so that rebuilding the index does not need room for every hint
/// file beside it (24 bytes per record, as much as the index itself).
///
/// The file stays open: keg replaces a hint only by renaming a new file over
/// it, which leaves this one as it was. Every pass checks the entries'
/// checksum again and fails (an I/O error) if the bytes changed meanwhile.
pub(crate) struct Listing {
    file: crate::storage::FileRef,
    header: HintHeader,
    crc: u32,
}

impl Listing {
    /// Opens and checks segment `id`'s hint file as [`load`] does, calling
    /// `f` with each entry and its record's offset; `None` when it is
    /// missing, damaged, or does not match the segment (then the caller
    /// scans the segment, and must forget what `f` saw).
    pub(crate) fn open(
        storage: &Storage,
        path: &Path,
        id: u32,
        hasher_id: u8,
        segment_len: u64,
        mut f: impl FnMut(u64, &HintEntry),
    ) -> Option<Listing> {
        let file = storage.open(path, false).ok()?;
        let mut head = [0u8; hint::HEADER_LEN];
        file.read_at(&mut head, 0).ok()?;
        let header = hint::decode_header(&head).ok()?;
        let file_len = file.len().ok()?;
        let fits = file_len == hint::HEADER_LEN as u64 + u64::from(header.count) * hint::ENTRY_LEN as u64;
        // Sequence numbers past MAX_SEQ are damage (see recovery): scan instead.
        let usable = fits
            && header.durable_seq <= MAX_SEQ
            && header.segment_id == id
            && header.hasher == hasher_id
            && header.data_len <= segment_len;
        if !usable {
            return None;
        }
        let listing = Listing { file, header, crc: hint::entries_crc(&head) };
        let mut bad = false;
        let mut total = segment::HEADER_LEN as u64;
        listing
            .walk(&mut Vec::new(), |off, e| {
                bad |= !hint::possible(e) || e.seq > MAX_SEQ;
                total = off + u64::from(e.len);
                f(off, e);
            })
            .ok()?;
        (!bad && total == header.data_len).then_some(listing)
    }

    /// Calls `f` with each entry and its record's offset, reading the file
    /// again (`buf` is room to read into); an error if it fails or its bytes
    /// no longer match their checksum (then what `f` saw must not be used).
    pub(crate) fn walk(&self, buf: &mut Vec<u8>, mut f: impl FnMut(u64, &HintEntry)) -> Result<()> {
        let count = self.header.count as usize;
        // (Room for one chunk, or for the whole listing when it is smaller:
        // zeroing a chunk's 192 KiB for a few entries cost an open of a
        // small cache more than reading them.)
        buf.resize(count.min(LISTING_CHUNK_ENTRIES) * hint::ENTRY_LEN, 0);
        let mut crc = crc32fast::Hasher::new();
        let mut off = segment::HEADER_LEN as u64;
        let mut done = 0usize;
        while done < count {
            let n = (count - done).min(LISTING_CHUNK_ENTRIES);
            let chunk = &mut buf[..n * hint::ENTRY_LEN];
            self.file.read_at(chunk, (hint::HEADER_LEN + done * hint::ENTRY_LEN) as u64)?;
            crc.update(chunk);
            for c in chunk.chunks_exact(hint::ENTRY_LEN) {
                let e = hint::decode_entry(c);
                f(off, &e);
                off = off.saturating_add(u64::from(e.len));
            }
            done += n;
        }
        if crc.finalize() != self.crc {
            let changed = std::io::Error::new(std::io::ErrorKind::InvalidData, "hint file changed while open read it");
            return Err(crate::error::Error::io("read", self.file.path(), changed));
        }
        Ok(())
    }

    /// Its header.
    pub(crate) fn header(&self) -> &HintHeader {
        &self.header
    }

    /// The file's length in bytes.
    pub(crate) fn file_len(&self) -> u64 {
        hint::HEADER_LEN as u64 + u64::from(self.header.count) * hint::ENTRY_LEN as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn entry(seq: u64, len: u32) -> HintEntry {
        HintEntry { key_hash: seq * 7, seq, expires_s: 0, len, tombstone: false, dead: false }
    }

    /// A hint file of `n` entries of 40 bytes for segment 3.
    fn hint_file(dir: &Path, n: u64) -> (std::path::PathBuf, u64) {
        let entries: Vec<HintEntry> = (1..=n).map(|s| entry(s, 40)).collect();
        let data_len = segment::HEADER_LEN as u64 + 40 * n;
        let header = HintHeader { hasher: 1, segment_id: 3, data_len, count: n as u32, durable_seq: 0 };
        let path = dir.join("00000003.hint");
        std::fs::write(&path, hint::encode(&header, &entries)).unwrap();
        (path, data_len)
    }

    #[test]
    fn a_listing_streams_every_entry_in_chunks_each_time_it_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let n = LISTING_CHUNK_ENTRIES as u64 * 2 + 5;
        let (path, data_len) = hint_file(dir.path(), n);
        let mut seen = Vec::new();
        let listing =
            Listing::open(&Storage::default(), &path, 3, 1, data_len, |off, e| seen.push((off, e.seq))).unwrap();
        let want: Vec<(u64, u64)> = (1..=n).map(|s| (segment::HEADER_LEN as u64 + 40 * (s - 1), s)).collect();
        assert_eq!(seen, want);
        for _ in 0..2 {
            let mut again = Vec::new();
            listing.walk(&mut Vec::new(), |off, e| again.push((off, e.seq))).unwrap();
            assert_eq!(again, want);
        }
        // A segment shorter than what the hint covers, another segment, or a damaged byte: no listing.
        assert!(Listing::open(&Storage::default(), &path, 3, 1, data_len - 1, |_, _| {}).is_none());
        assert!(Listing::open(&Storage::default(), &path, 4, 1, data_len, |_, _| {}).is_none());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[hint::HEADER_LEN + 30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(Listing::open(&Storage::default(), &path, 3, 1, data_len, |_, _| {}).is_none());
    }

    #[test]
    fn a_listing_whose_bytes_change_after_the_check_fails_its_next_walk() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data_len) = hint_file(dir.path(), 100);
        let listing = Listing::open(&Storage::default(), &path, 3, 1, data_len, |_, _| {}).unwrap();
        // Changed in place (keg never does this: it renames a new hint over an old one).
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[hint::HEADER_LEN + 8] ^= 0x40;
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(&bytes, 0).unwrap();
        assert!(listing.walk(&mut Vec::new(), |_, _| {}).is_err());
        // Renamed over: the open listing still reads the file it checked.
        let listing = {
            let (path, data_len) = hint_file(dir.path(), 100);
            Listing::open(&Storage::default(), &path, 3, 1, data_len, |_, _| {}).unwrap()
        };
        let other = dir.path().join("other");
        std::fs::write(&other, b"something else").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let mut count = 0;
        listing.walk(&mut Vec::new(), |_, _| count += 1).unwrap();
        assert_eq!(count, 100);
    }
}
