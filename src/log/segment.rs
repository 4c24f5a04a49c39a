//! One segment file: its mapping, its bounds, and its live/dead accounting.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::Result;
use crate::format::hint;
use crate::format::record::{self, Header, Record};
use crate::format::segment::{LogKind, SegmentHeader, HEADER_LEN};
use crate::format::DecodeError;
use crate::storage::{FileRef, Mapping, Storage};

/// Bytes of zeros [`Segment::write_zeros`] writes per call.
const ZEROS_PIECE: usize = 64 << 10;

/// Why a read at a location failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The location is past the bytes readers may see (still in a write buffer).
    NotVisible,
    /// The bytes there are not an intact record.
    Corrupt,
}

/// A segment file, mapped for reading.
///
/// Readers may touch only `[0, visible)`: bytes the writer has completely
/// handed to the operating system. An active segment is mapped at its full
/// capacity before it is written, so the mapping never has to move; pages past
/// the end of the file are never touched because no index entry points there.
pub(crate) struct Segment {
    pub(crate) id: u32,
    pub(crate) log: LogKind,
    created_ms: u64,
    file: FileRef,
    map: Mapping,
    visible: AtomicU64,
    /// Bytes appended so far, including any still in the writer's buffer.
    len: AtomicU64,
    /// Bytes known to be durable.
    synced: AtomicU64,
    sealed: AtomicBool,
    /// Size of this segment's hint file (0 while it has none).
    hint_len: AtomicU64,
    /// Segment bytes that hint file covers (its `data_len`; less than `len`
    /// once records are appended after it).
    hinted_len: AtomicU64,
    /// Bytes of records the index points to.
    pub(crate) live_bytes: AtomicU64,
    /// Number of records the index points to.
    pub(crate) live_count: AtomicU64,
    /// Smallest sequence number of any value record in the file (u64::MAX if none).
    pub(crate) min_value_seq: AtomicU64,
    /// Largest sequence number of any record in the file (0 if none).
    pub(crate) max_seq: AtomicU64,
    /// Bytes of tombstones in the file.
    pub(crate) tombstone_bytes: AtomicU64,
    /// Smallest sequence number of a tombstone in the file (u64::MAX if none).
    pub(crate) min_tombstone_seq: AtomicU64,
    /// Records noted in the file (values, tombstones, others).
    records: AtomicU64,
    /// Bytes its hint file will add once written, counted in
    /// [`Segments::hint_debt`](super::Segments) (0 when it needs none).
    pub(crate) hint_debt: AtomicU64,
}

impl Segment {
    /// Creates a new, empty segment file with its header, mapped at `capacity`.
    pub(crate) fn create(
        storage: &Storage,
        path: &Path,
        id: u32,
        log: LogKind,
        created_ms: u64,
        capacity: u64,
    ) -> Result<Segment> {
        let file = storage.create_new(path)?;
        let header = SegmentHeader { log, id, created_ms }.encode();
        file.write_at(&header, 0)?;
        let map = file.map(capacity as usize)?;
        Ok(Segment::new(file, map, SegmentHeader { log, id, created_ms }, HEADER_LEN as u64, false))
    }

    /// Wraps an existing file whose header has been checked, mapped at `map_len`,
    /// with `valid_len` readable bytes.
    pub(crate) fn from_existing(file: FileRef, header: SegmentHeader, map_len: u64, valid_len: u64) -> Result<Segment> {
        let map = file.map(map_len as usize)?;
        Ok(Segment::new(file, map, header, valid_len, true))
    }

    /// Reopens an existing segment, whose `len` bytes recovery found intact
    /// and durable, as an active segment that appends from `len`: mapped at
    /// `capacity` like a new one.
    pub(crate) fn resume(file: FileRef, header: SegmentHeader, capacity: u64, len: u64) -> Result<Segment> {
        debug_assert!(len <= capacity);
        let map = file.map(capacity as usize)?;
        let seg = Segment::new(file, map, header, len, false);
        seg.set_synced(len);
        Ok(seg)
    }

    /// Bytes its mapping covers: the most the file may hold.
    pub(crate) fn capacity(&self) -> u64 {
        self.map.len() as u64
    }

    /// The header this segment was created with.
    pub(crate) fn header(&self) -> SegmentHeader {
        SegmentHeader { log: self.log, id: self.id, created_ms: self.created_ms }
    }

    fn new(file: FileRef, map: Mapping, h: SegmentHeader, len: u64, sealed: bool) -> Segment {
        Segment {
            id: h.id,
            log: h.log,
            created_ms: h.created_ms,
            file,
            map,
            visible: AtomicU64::new(len),
            len: AtomicU64::new(len),
            synced: AtomicU64::new(if sealed { len } else { 0 }),
            sealed: AtomicBool::new(sealed),
            hint_len: AtomicU64::new(0),
            hinted_len: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            live_count: AtomicU64::new(0),
            min_value_seq: AtomicU64::new(u64::MAX),
            max_seq: AtomicU64::new(0),
            tombstone_bytes: AtomicU64::new(0),
            min_tombstone_seq: AtomicU64::new(u64::MAX),
            records: AtomicU64::new(0),
            hint_debt: AtomicU64::new(0),
        }
    }

    pub(crate) fn file(&self) -> &FileRef {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// The readable bytes, header included.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map[..self.visible() as usize]
    }

    #[inline]
    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    pub(crate) fn set_visible(&self, len: u64) {
        self.visible.store(len, Ordering::Release);
    }

    /// Bytes appended (the segment's size once every buffer is flushed).
    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn set_len(&self, len: u64) {
        self.len.store(len, Ordering::Relaxed);
    }

    pub(crate) fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    pub(crate) fn set_synced(&self, len: u64) {
        self.synced.fetch_max(len, Ordering::AcqRel);
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
    }

    pub(crate) fn hint_len(&self) -> u64 {
        self.hint_len.load(Ordering::Relaxed)
    }

    /// Segment bytes its hint file covers (0 while it has none).
    pub(crate) fn hinted_len(&self) -> u64 {
        self.hinted_len.load(Ordering::Relaxed)
    }

    /// Notes a hint file of `len` bytes covering the first `covers` bytes of the segment.
    pub(crate) fn set_hint_len(&self, len: u64, covers: u64) {
        self.hint_len.store(len, Ordering::Relaxed);
        self.hinted_len.store(covers, Ordering::Relaxed);
    }

    /// Whether its hint file covers every record (so it needs no new one).
    pub(crate) fn fully_hinted(&self) -> bool {
        self.hint_len() > 0 && self.hinted_len() >= self.len()
    }

    /// Bytes of records that no index entry points to (shadowed, deleted, expired, tombstones).
    pub(crate) fn dead_bytes(&self) -> u64 {
        self.len().saturating_sub(HEADER_LEN as u64 + self.live_bytes.load(Ordering::Relaxed))
    }

    /// Notes that a value record with this sequence number is in the file.
    pub(crate) fn note_value(&self, seq: u64) {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.min_value_seq.fetch_min(seq, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Notes that a tombstone of `len` bytes with this sequence number is in the file.
    pub(crate) fn note_tombstone(&self, seq: u64, len: u64) {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.min_tombstone_seq.fetch_min(seq, Ordering::Relaxed);
        self.tombstone_bytes.fetch_add(len, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Notes many records at once, as the calls above would one by one:
    /// `records` records, the smallest numbers of a value and of a tombstone
    /// among them (`u64::MAX` for none), the tombstones' bytes, and the
    /// highest number (0 for none).
    pub(crate) fn note_many(
        &self,
        records: u64,
        min_value_seq: u64,
        min_tombstone_seq: u64,
        tombstone_bytes: u64,
        max_seq: u64,
    ) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.min_value_seq.fetch_min(min_value_seq, Ordering::Relaxed);
        self.min_tombstone_seq.fetch_min(min_tombstone_seq, Ordering::Relaxed);
        self.tombstone_bytes.fetch_add(tombstone_bytes, Ordering::Relaxed);
        self.max_seq.fetch_max(max_seq, Ordering::Relaxed);
    }

    /// The most a hint file listing its records can add to the directory
    /// now: all of it, or (with a hint that does not cover every record)
    /// nothing less than a whole new one, to be safe. 0 when it has a hint
    /// for every record.
    pub(crate) fn hint_bytes_owed(&self) -> u64 {
        if self.fully_hinted() {
            0
        } else {
            (hint::HEADER_LEN + hint::ENTRY_LEN * self.records.load(Ordering::Relaxed) as usize) as u64
        }
    }

    /// Dead bytes that are not tombstones: what rewriting the segment surely frees.
    pub(crate) fn garbage_bytes(&self) -> u64 {
        self.dead_bytes().saturating_sub(self.tombstone_bytes.load(Ordering::Relaxed))
    }

    pub(crate) fn add_live(&self, bytes: u64) {
        self.live_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.live_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `count` live records of `bytes` in all (open's bulk form of [`Segment::add_live`]).
    pub(crate) fn add_live_many(&self, bytes: u64, count: u64) {
        self.live_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.live_count.fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn sub_live(&self, bytes: u64) {
        let sub = |n: u64| move |v: u64| Some(v.saturating_sub(n));
        let _ = self.live_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, sub(bytes));
        let _ = self.live_count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, sub(1));
    }

    /// The header and key of the record at `off`, unverified (the key check
    /// that tells two same-hash keys apart; values are verified before use).
    pub(crate) fn peek(&self, off: u32) -> Option<(Header, &[u8])> {
        let bytes = self.bytes().get(off as usize..)?;
        let header = record::decode_header(bytes).ok()?;
        let key = bytes.get(record::HEADER_LEN..record::HEADER_LEN + header.key_len as usize)?;
        Some((header, key))
    }

    /// The verified record at `off`.
    pub(crate) fn read(&self, off: u32) -> Result<Record<'_>, ReadError> {
        let visible = self.visible() as usize;
        if off as usize + record::HEADER_LEN > visible {
            return Err(ReadError::NotVisible);
        }
        let bytes = &self.map[off as usize..visible];
        match record::decode(bytes) {
            Err(DecodeError::Truncated { .. }) => Err(ReadError::NotVisible),
            Err(_) => Err(ReadError::Corrupt),
            Ok(r) => Ok(r),
        }
    }

    /// Writes zeros over `[from, to)` of the file, through the storage seam
    /// (in pieces of [`ZEROS_PIECE`] bytes): the preallocated tail of a
    /// segment written in synced mode (see `crate::log::writer`), which the
    /// next fsync makes durable with the records before it, so that later
    /// synced appends overwrite blocks the file already holds.
    pub(crate) fn write_zeros(&self, from: u64, to: u64) -> Result<()> {
        static ZEROS: [u8; ZEROS_PIECE] = [0; ZEROS_PIECE];
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZEROS_PIECE as u64);
            self.file.write_at(&ZEROS[..n as usize], at)?;
            at += n;
        }
        Ok(())
    }

    /// Offset of `slice` (which must point into this segment's mapping).
    pub(crate) fn offset_of(&self, slice: &[u8]) -> usize {
        slice.as_ptr() as usize - self.map.as_ptr() as usize
    }

    /// The mapped bytes `[start, start + len)`; the caller has checked them.
    pub(crate) fn slice(&self, start: usize, len: usize) -> &[u8] {
        &self.map[start..start + len]
    }
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("id", &self.id).field("log", &self.log).field("len", &self.len()).finish()
    }
}
