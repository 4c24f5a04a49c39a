//! Open: rebuild the index from hint files and segment scans, cut torn tails,
//! and find the prefix of history that survived a crash.
//!
//! The steps, each explained in FORMAT.md ("Recovery"):
//!
//! 1. List the directory; drop leftovers (keg's own `*.tmp` files, hints
//!    without a segment). Other files are never touched (see `crate::dir`).
//! 2. Read the checkpoint: `durable_seq` (every record up to it is durable)
//!    and the void ranges earlier recoveries discarded.
//! 3. For each segment, oldest first: check its header, then take its records
//!    from its hint file if that is intact and matches, else scan the data
//!    (verifying every checksum) and cut the file after the last good record.
//! 4. Find the first sequence number above `durable_seq` that no record
//!    holds. Everything above such a hole was written after something that
//!    was lost, so it is declared void: this keeps the cache a prefix of its
//!    history even when a power loss persisted later writes but not earlier ones.
//! 5. Apply the surviving records in any order: for each key the record with
//!    the highest sequence number wins, and a tombstone that wins deletes it.
//!    Same-hash keys are told apart by reading their keys from the segments.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::checkpoint::{seq_mark_for, Checkpoint, MAX_VOID_RANGES};
use crate::format::hint::expires_s;
use crate::format::record::{self, Kind};
use crate::format::segment::{self, LogKind, SegmentHeader, HEADER_LEN};
use crate::format::{DecodeError, SEGMENT_VERSION};
use crate::hash::KeyHasher;
use crate::index::{Entry, Index, Loc, ShardBuilder, ShardLayout, MAX_OFFSET};
use crate::log::checkpoint::{read_checkpoint, write_checkpoint};
use crate::log::hints;
use crate::log::scan::{Item, Step, Walk};
use crate::log::{hint_path, parse_name, segment_path, Segment};
use crate::stats::{add, bump, Counters};
use crate::storage::{Storage, FSYNC_FAILED_FILE};

/// Marks a tombstone's slot in the index while recovery runs.
const TOMBSTONE_MARK: u32 = u32::MAX;

/// What open rebuilt.
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) index: Index,
    pub(crate) next_seq: u64,
    pub(crate) next_id: u32,
    pub(crate) checkpoint: Checkpoint,
    /// Segments without a usable hint file.
    pub(crate) need_hint: Vec<Arc<Segment>>,
    /// Segments to append to (see [`resume_tails`]), at most one per log.
    pub(crate) resumed: Vec<Arc<Segment>>,
    /// Keys with a main-log value that a probation record hides, and no
    /// main-log tombstone as new as that value. keg does not write that (a
    /// key's values sit in the log of its current entry, and deletes go to
    /// main), but damage can, and so can a power cut that undoes the removal
    /// of a main segment after eviction dropped a value, once the key was
    /// set again (tests/faults/faults_power_cut_sessions.rs met it). Reclaim drops a probation record
    /// counting only probation values as ones it may hide, so the main-log
    /// value would come back: a writable open moves each such key's newest
    /// record to main (see `Engine::settle_split_key`).
    pub(crate) split_keys: Vec<Vec<u8>>,
    pub(crate) clock_floor_ms: u64,
    /// The invalidation records and tagged value records found (outside void ranges).
    pub(crate) marks: Marks,
}

/// What a scan finds for tags and namespaces: invalidation records (scope,
/// name, sequence number) and, per tag, the key hashes of value records
/// carrying it. Segments holding either have no hint file (`hints::write`),
/// so every one is scanned at open and this is complete.
#[derive(Default)]
pub(crate) struct Marks {
    pub(crate) invalidations: Vec<(record::Scope, Vec<u8>, u64)>,
    pub(crate) tagged: Vec<(Vec<u8>, u64, u64)>,
}

/// One record, as a hint entry or a scan describes it.
#[derive(Clone, Copy)]
struct Rec {
    off: u32,
    hash: u64,
    seq: u64,
    expires_s: u32,
    len: u32,
    tombstone: bool,
    /// Not to be applied: shadowed when its hint was written, or not understood.
    dead: bool,
}

enum Source {
    /// A hint file (for the records up to its `data_len`, read again on each
    /// pass), and the records a scan found after that (appended since the
    /// hint was written).
    Hint(hints::Listing, Vec<Rec>),
    Scan(Vec<Rec>),
}

impl Source {
    /// How many records it lists.
    fn len(&self) -> usize {
        match self {
            Source::Scan(recs) => recs.len(),
            Source::Hint(listing, tail) => listing.header().count as usize + tail.len(),
        }
    }

    /// Calls `f` with each record, in log order (`buf` is room to read a
    /// hint file into); fails if a hint file can no longer be read as it was.
    fn for_each(&self, buf: &mut Vec<u8>, mut f: impl FnMut(Rec)) -> Result<()> {
        match self {
            Source::Scan(recs) => recs.iter().copied().for_each(f),
            Source::Hint(listing, tail) => {
                listing.walk(buf, |off, e| {
                    f(Rec {
                        off: off as u32,
                        hash: e.key_hash,
                        seq: e.seq,
                        expires_s: e.expires_s,
                        len: e.len,
                        tombstone: e.tombstone,
                        dead: e.dead,
                    })
                })?;
                tail.iter().copied().for_each(f);
            }
        }
        Ok(())
    }
}

/// Records per index shard (not dead; void ones included), one count per shard.
fn count_shards(layout: ShardLayout, counts: &mut [u32], recs: &[Rec]) {
    for r in recs.iter().filter(|r| !r.dead) {
        counts[layout.of(r.hash)] += 1;
    }
}

pub(crate) fn recover(
    storage: &Storage,
    dir: &Path,
    hasher: &KeyHasher,
    read_only: bool,
    resume_capacity: Option<u64>,
    layout: ShardLayout,
    counters: &Counters,
) -> Result<Recovered> {
    debug_assert!(!(read_only && resume_capacity.is_some()));
    let names = storage.list_dir(dir)?;
    let mut seg_ids = Vec::new();
    let mut hint_ids = BTreeSet::new();
    for name in &names {
        if let Some(id) = parse_name(name, "seg") {
            seg_ids.push(id);
        } else if let Some(id) = parse_name(name, "hint") {
            hint_ids.insert(id);
        } else if crate::dir::is_keg_tmp(name) && !read_only {
            storage.remove(&dir.join(name))?;
        }
    }
    seg_ids.sort_unstable();
    crate::killpoint!("recovery.listed");
    if !read_only {
        for &id in hint_ids.iter().filter(|id| seg_ids.binary_search(id).is_err()) {
            storage.remove(&hint_path(dir, id))?;
        }
    }
    let checkpoint = read_checkpoint(storage, dir)?;

    // Step 3: headers, hints, scans, torn tails.
    let mut loaded: Vec<(Arc<Segment>, Source)> = Vec::with_capacity(seg_ids.len());
    // Per loaded segment, its records per index shard (to size the staging).
    let mut shard_counts: Vec<Box<[u32]>> = Vec::with_capacity(seg_ids.len());
    let mut need_hint = Vec::new();
    // Segments whose bytes may not be durable yet (scanned, or cut here).
    let mut unsynced = Vec::new();
    let mut hint_durable_seq = 0;
    let mut clock_floor_ms = checkpoint.as_ref().map_or(0, |c| c.clock_ms);
    let mut older_format = Vec::new();
    let mut marks = Marks::default();
    for &id in &seg_ids {
        let path = segment_path(dir, id);
        let file = match storage.open(&path, !read_only) {
            Ok(f) => f,
            // A live writer may remove a segment while a read-only open lists the directory.
            Err(Error::Io { source, .. }) if read_only && source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let file_len = file.len()?;
        let mut head = vec![0u8; (file_len as usize).min(HEADER_LEN)];
        file.read_at(&mut head, 0)?;
        let header = match SegmentHeader::decode(&head) {
            Err(DecodeError::UnsupportedVersion { found, supported }) => {
                return Err(Error::UnsupportedVersion { path, found, supported })
            }
            Ok(h) if h.id == id => h,
            _ => {
                // An unreadable header (a segment torn at creation, or damaged): nothing in it can be trusted.
                bump(&counters.recovery_dropped_segments);
                crate::killpoint!("recovery.drop_segment");
                if !read_only {
                    drop(file);
                    storage.remove(&path)?;
                    storage.remove(&hint_path(dir, id))?;
                }
                continue;
            }
        };
        clock_floor_ms = clock_floor_ms.max(header.created_ms);
        if segment::version(&head) != Some(SEGMENT_VERSION) {
            // Written by a keg whose records carry no user flags: read, never
            // appended to (a reader of that version would skip a flagged record).
            older_format.push(id);
        }
        let seg = Arc::new(Segment::from_existing(file, header, file_len, file_len)?);
        let mut counts = vec![0u32; layout.count()].into_boxed_slice();
        let hint = hint_ids
            .contains(&id)
            .then(|| {
                counts.fill(0);
                hints::Listing::open(storage, &hint_path(dir, id), id, hasher.id(), file_len, |_, e| {
                    if !e.dead {
                        counts[layout.of(e.key_hash)] += 1;
                    }
                })
            })
            .flatten();
        if hint.is_none() {
            counts.fill(0);
        }
        let (source, valid_len) = match hint {
            Some(listing) => {
                let h = *listing.header();
                hint_durable_seq = hint_durable_seq.max(h.durable_seq);
                seg.set_hint_len(listing.file_len(), h.data_len);
                // Records appended after the hint was written (a session
                // that went on appending to this segment, then crashed):
                // scanned, and the segment needs a new hint.
                let (tail, valid_len) = scan(Walk::after_listing(seg.bytes(), h.data_len), hasher, &mut marks);
                count_shards(layout, &mut counts, &tail);
                if h.data_len < file_len {
                    bump(&counters.recovery_scanned_segments);
                    need_hint.push(seg.clone());
                    unsynced.push(seg.id);
                }
                (Source::Hint(listing, tail), valid_len)
            }
            None => {
                bump(&counters.recovery_scanned_segments);
                if hint_ids.contains(&id) && !read_only {
                    storage.remove(&hint_path(dir, id))?;
                }
                let (recs, valid_len) = scan(Walk::new(seg.bytes(), None), hasher, &mut marks);
                count_shards(layout, &mut counts, &recs);
                need_hint.push(seg.clone());
                // No hint: the previous session may not have fsynced it.
                unsynced.push(seg.id);
                (Source::Scan(recs), valid_len)
            }
        };
        if valid_len < file_len {
            // A zero tail (a synced segment's preallocated zeros, FORMAT.md
            // 2.8) is the log's end, not damage: cut, but not counted.
            let zero_tail = seg.bytes().get(valid_len as usize..).is_some_and(|t| t.iter().all(|&b| b == 0));
            if !zero_tail {
                add(&counters.recovery_truncated_bytes, file_len - valid_len);
            }
            crate::killpoint!("recovery.before_truncate");
            if !read_only {
                seg.file().set_len(valid_len)?;
                if !unsynced.contains(&seg.id) {
                    unsynced.push(seg.id);
                }
            }
        }
        seg.set_len(valid_len);
        seg.set_visible(valid_len);
        seg.set_synced(valid_len);
        loaded.push((seg, source));
        shard_counts.push(counts);
    }

    let resumed = match resume_capacity {
        Some(capacity) => resume_tails(storage, dir, hasher, &mut loaded, capacity, &older_format, &mut need_hint)?,
        None => Vec::new(),
    };

    // Step 4: the prefix of history.
    let had_checkpoint = checkpoint.is_some();
    let mut checkpoint = checkpoint.unwrap_or(Checkpoint { durable_seq: hint_durable_seq, ..Checkpoint::default() });
    let mut buf = Vec::new();
    let (max_seq, min_seq, above) = survey(&loaded, &checkpoint, &mut buf)?;
    let voided = find_hole(above, &checkpoint);
    if let Some(first) = voided {
        add_void_range(&mut checkpoint, first, max_seq);
    }
    // Drop the void ranges that hold no record (they void nothing). The
    // checkpoint on disk must then be rewritten before any write: otherwise a
    // new record could get a number in a range the file still holds (or above
    // one, leaving a gap that reads as a hole), and the next crash recovery
    // would void it.
    let ranges = checkpoint.void_ranges.len();
    checkpoint.void_ranges.retain(|&(first, last)| first <= last && last >= min_seq && first <= max_seq);
    let pruned = checkpoint.void_ranges.len() != ranges;
    checkpoint.clock_ms = checkpoint.clock_ms.max(clock_floor_ms);

    // Step 5: apply, shard by shard (see `build_index`).
    let (index, split) = build_index(&loaded, &shard_counts, layout, &checkpoint, counters)?;
    let split_keys = unhidden_in_main(&loaded, &checkpoint, &split, &mut buf)?;
    // (A void invalidation never happened: the crash lost it, with every later write.)
    marks.invalidations.retain(|i| !checkpoint.is_void(i.2));
    marks.tagged.retain(|t| !checkpoint.is_void(t.2));

    let void_top = checkpoint.void_ranges.iter().map(|r| r.1).max().unwrap_or(0);
    // Above the sequence mark too: a record the crash lost may have had any
    // number up to it, and a caller may hold that number as a version.
    let records_top = max_seq.max(void_top);
    let next_seq = records_top.max(checkpoint.durable_seq).max(checkpoint.seq_mark) + 1;
    let next_id = seg_ids.last().map_or(1, |&id| id.saturating_add(1));
    crate::killpoint!("recovery.before_checkpoint");
    // Settle history: every number below next_seq now belongs to a record taken,
    // a void range, or a loss already accounted for. Once the segments are
    // fsynced, the durable mark can cover them all, so that a later recovery
    // looks for holes only among records written after this open. Without
    // this, a crash before the mark next moved would read the numbers this
    // open stepped over (void ranges, gaps below them) as a hole, and void
    // every write made since.
    let settle = !read_only && checkpoint.durable_seq < next_seq - 1;
    // Records above the durable mark are made durable before the mark
    // covers them; numbers above every record (up to the sequence mark) need
    // only the checkpoint.
    let settle_records = settle && checkpoint.durable_seq < records_top;
    if settle {
        checkpoint.durable_seq = next_seq - 1;
    }
    if !read_only {
        // What this open found is the ground everything next stands on: the
        // checkpoint will soon say it is durable, and reclaim will judge
        // which segments are oldest from this listing. But a killed process
        // leaves bytes it never fsynced, and segments it created or removed
        // without a directory fsync; a power cut later could still undo them.
        // So make them durable now: the segments that may hold unsynced bytes
        // (no hint file, or cut here; every segment when the checkpoint
        // changes), then the directory.
        //
        // After a failed fsync (its marker is here), the bytes read from
        // those segments may be pages the kernel gave up writing: an fsync
        // would not write them, so they are written again first.
        let rewrite = voided.is_some() || !had_checkpoint || pruned || settle_records;
        let fsync_failed = names.iter().any(|n| n == FSYNC_FAILED_FILE);
        for (seg, _) in loaded.iter().filter(|(s, _)| rewrite || unsynced.contains(&s.id)) {
            if fsync_failed && unsynced.contains(&seg.id) {
                rewrite_in_place(seg)?;
            }
            seg.file().sync_data()?;
        }
        crate::killpoint!("recovery.after_sync");
        if rewrite || settle {
            // Written anyway: it reserves this session's first numbers too.
            checkpoint.seq_mark = checkpoint.seq_mark.max(seq_mark_for(next_seq));
            // The void ranges must be durable before any new write can be.
            write_checkpoint(storage, dir, &checkpoint)?;
        } else {
            storage.sync_dir(dir)?;
        }
        if fsync_failed {
            // (Not made durable: only an open in this boot could need it.)
            storage.remove(&dir.join(FSYNC_FAILED_FILE))?;
        }
    }
    Ok(Recovered {
        segments: loaded.into_iter().map(|(s, _)| s).collect(),
        index,
        next_seq,
        next_id,
        checkpoint,
        need_hint,
        split_keys,
        resumed,
        clock_floor_ms,
        marks,
    })
}

/// Writes the readable bytes of `seg` again, where they are, so that the
/// next fsync writes them to the disk whatever the page cache thought of
/// them (see [`FSYNC_FAILED_FILE`]).
fn rewrite_in_place(seg: &Segment) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let bytes = seg.bytes();
    let mut buf = Vec::with_capacity(CHUNK.min(bytes.len()));
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        buf.clear();
        buf.extend_from_slice(chunk);
        seg.file().write_at(&buf, (i * CHUNK) as u64)?;
    }
    Ok(())
}

/// Step 3b: picks the newest segment of each log to go on appending to, so
/// that opening a cache, writing a little and closing it (a CLI command, a
/// short-lived process) does not leave one more small file each time.
///
/// A segment qualifies when it is less than half full (which bounds both the
/// extra reading here and the number of files: at most about twice as many as
/// full segments would need) and everything recovery took from it is what
/// its bytes say: a segment read from its hint file is scanned, and resumed
/// only if every record is intact and matches its hint entry. Its hint file
/// stays: recovery reads a hint for the records up to its `data_len` and
/// scans the rest, and when the segment is sealed again a new hint replaces
/// it (keeping the old one's dead marks).
fn resume_tails(
    storage: &Storage,
    dir: &Path,
    hasher: &KeyHasher,
    loaded: &mut [(Arc<Segment>, Source)],
    capacity: u64,
    older_format: &[u32],
    need_hint: &mut Vec<Arc<Segment>>,
) -> Result<Vec<Arc<Segment>>> {
    let mut resumed = Vec::new();
    if capacity > MAX_OFFSET as u64 {
        return Ok(resumed);
    }
    for log in LogKind::ALL {
        let Some(pos) = loaded.iter().rposition(|(s, _)| s.log == log) else { continue };
        let (seg, source) = &loaded[pos];
        let len = seg.len();
        if len >= capacity / 2 || older_format.contains(&seg.id) || !matches_its_bytes(seg, source, hasher) {
            continue;
        }
        let id = seg.id;
        let file = storage.open(&segment_path(dir, id), true)?;
        let resumed_seg = Arc::new(Segment::resume(file, seg.header(), capacity, len)?);
        resumed_seg.set_hint_len(seg.hint_len(), seg.hinted_len());
        crate::killpoint!("recovery.resume");
        need_hint.retain(|s| s.id != id);
        loaded[pos].0 = resumed_seg.clone();
        resumed.push(resumed_seg);
    }
    Ok(resumed)
}

/// Whether every record `source` lists is the intact record at its offset in
/// `seg`, with the same sequence number, length, kind, expiry and key hash,
/// and they cover the whole segment.
fn matches_its_bytes(seg: &Segment, source: &Source, hasher: &KeyHasher) -> bool {
    match source {
        // A scan lists exactly the intact records (recovery cut the file after them).
        Source::Scan(recs) => recs.iter().all(|r| !r.dead),
        Source::Hint(..) => {
            let (recs, valid_len) = scan(Walk::new(seg.bytes(), None), hasher, &mut Marks::default());
            if valid_len != seg.len() || recs.len() != source.len() {
                return false;
            }
            let mut i = 0;
            let mut same = true;
            let read = source.for_each(&mut Vec::new(), |h| {
                let Some(r) = recs.get(i) else {
                    same = false;
                    return;
                };
                i += 1;
                same &= !r.dead
                    && (h.off, h.hash, h.seq, h.expires_s, h.len, h.tombstone)
                        == (r.off, r.hash, r.seq, r.expires_s, r.len, r.tombstone);
            });
            same && read.is_ok()
        }
    }
}

/// Takes the records a [`Walk`] scans (it lists no hint: recovery keeps a
/// hint's listing as its bytes); returns them and the valid length, which
/// ends at the first record that does not decode or holds a sequence number
/// above [`MAX_SEQ`](crate::format::MAX_SEQ). Notes invalidation records and tagged value records in
/// `marks`. What each kind of record is to recovery is written here, once
/// (see the table in `crate::log::scan`).
fn scan(mut walk: Walk<'_>, hasher: &KeyHasher, marks: &mut Marks) -> (Vec<Rec>, u64) {
    let mut recs = Vec::new();
    for step in walk.by_ref() {
        let Step::Scanned(item) = step else { continue };
        let off = item.offset() as u32;
        let (seq, len) = (item.seq(), item.len() as u32);
        // Not applied, but holding its number (a hole there would void what follows).
        let mark = Rec { off, hash: 0, seq, expires_s: 0, len, tombstone: true, dead: true };
        recs.push(match item {
            Item::Record { record, .. } => {
                let hash = hasher.hash(record.key);
                for tag in record::tags(record.tags) {
                    marks.tagged.push((tag.to_vec(), hash, seq));
                }
                Rec {
                    off,
                    hash,
                    seq,
                    expires_s: expires_s(record.header.expires_ms),
                    len,
                    tombstone: record.kind == Kind::Tombstone,
                    dead: false,
                }
            }
            Item::Invalidation { inv, .. } => {
                marks.invalidations.push((inv.scope, inv.name.to_vec(), inv.seq));
                mark
            }
            Item::Unknown { .. } => mark,
        });
    }
    (recs, walk.valid_len())
}

/// One pass over every record: notes each in its segment's bounds, and
/// returns the highest and lowest sequence numbers and, sorted, the numbers
/// above the checkpoint's `durable_seq` outside its void ranges (the ones
/// [`find_hole`] looks among; none after a clean close).
fn survey(loaded: &[(Arc<Segment>, Source)], c: &Checkpoint, buf: &mut Vec<u8>) -> Result<(u64, u64, Vec<u64>)> {
    let (mut max, mut min) = (0, u64::MAX);
    let mut above = Vec::new();
    for (seg, source) in loaded {
        // (Summed here and noted once: an atomic operation per record costs.)
        let (mut seg_max, mut min_value, mut min_tomb, mut tomb_bytes) = (0, u64::MAX, u64::MAX, 0);
        source.for_each(buf, |r| {
            match (r.tombstone, r.dead) {
                (false, _) => min_value = min_value.min(r.seq),
                (true, false) => {
                    min_tomb = min_tomb.min(r.seq);
                    tomb_bytes += r.len as u64;
                }
                (true, true) => {}
            }
            seg_max = seg_max.max(r.seq);
            min = min.min(r.seq);
            if r.seq > c.durable_seq && !c.is_void(r.seq) {
                above.push(r.seq);
            }
        })?;
        seg.note_many(source.len() as u64, min_value, min_tomb, tomb_bytes, seg_max);
        max = max.max(seg_max);
    }
    above.sort_unstable();
    above.dedup();
    Ok((max, min, above))
}

/// The first sequence number above the checkpoint's `durable_seq`, outside
/// its void ranges, that no record holds, if some record above it exists;
/// `seqs` are the records' numbers above it outside void ranges, sorted.
fn find_hole(seqs: Vec<u64>, c: &Checkpoint) -> Option<u64> {
    let base = c.durable_seq;
    // Walk the numbers above `base` that are not void, in step with the records':
    // the first one the records skip is the hole. (Void ranges are stepped over
    // as a whole, so they may be as long as they like.)
    let mut expect = base + 1;
    for seq in seqs {
        expect = past_void(c, expect);
        if seq != expect {
            return Some(expect);
        }
        expect = seq + 1;
    }
    None
}

/// `seq`, or if it is void, the first number after the void ranges that hold it.
fn past_void(c: &Checkpoint, mut seq: u64) -> u64 {
    // Each step leaves a range behind for good, so there are at most as many steps as ranges.
    for _ in 0..c.void_ranges.len() {
        match c.void_ranges.iter().find(|&&(a, b)| a <= seq && seq <= b) {
            Some(&(_, last)) => seq = last.saturating_add(1),
            None => break,
        }
    }
    seq
}

fn add_void_range(c: &mut Checkpoint, first: u64, last: u64) {
    if c.void_ranges.len() >= MAX_VOID_RANGES {
        // Out of room: widen the newest range instead (discards more, never less).
        let newest = c.void_ranges.iter_mut().max_by_key(|r| r.1).expect("non-empty");
        newest.1 = last;
        newest.0 = newest.0.min(first);
    } else {
        c.void_ranges.push((first, last));
    }
}

/// A record waiting to be applied, grouped with the others of its shard.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Staged {
    hash: u64,
    /// The sequence number recovery took the record to have: from its hint
    /// (whose checksum covers it) or from a verified scan. A record's own
    /// header is not used: in a hinted segment it is read unverified, and
    /// damage there must not reorder history.
    seq: u64,
    /// The record's segment: its position in the list of loaded segments.
    seg: u32,
    off: u32,
    expires_s: u32,
    /// The record's length; the top bit marks a tombstone.
    len_tomb: u32,
}

const TOMB_BIT: u32 = 1 << 31;

/// Below this many records, the index is built on the calling thread alone.
const PARALLEL_MIN_RECORDS: usize = 100_000;

/// The most threads open uses to build the index.
const MAX_BUILD_THREADS: usize = 8;

/// Builds the index from the loaded segments' records (void and dead ones
/// left out), noting each segment's sequence bounds, tombstone and live bytes.
///
/// The records are first grouped by index shard (a counting sort, in the
/// order the segments list them, so each shard sees its records in the same
/// relative order as a plain pass would; each thread sorts a run of
/// consecutive segments); then each shard's table is built
/// on its own, at its final size and while it is in cache, on up to
/// [`MAX_BUILD_THREADS`] threads. Inserting 10 million records at random into
/// up to 256 growing tables instead costs a cache miss and several rehashes per record.
fn build_index(
    loaded: &[(Arc<Segment>, Source)],
    shard_counts: &[Box<[u32]>],
    layout: ShardLayout,
    checkpoint: &Checkpoint,
    counters: &Counters,
) -> Result<(Index, Vec<(Loc, u64)>)> {
    let records: Vec<usize> = loaded.iter().map(|(_, source)| source.len()).collect();
    let total: usize = records.iter().sum();
    let threads = if total < PARALLEL_MIN_RECORDS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_BUILD_THREADS)
    };
    let runs = split_by_records(&records, threads);
    let groups = shard_groups(shard_counts, layout, if total < PARALLEL_MIN_RECORDS { 1 } else { STAGE_GROUPS });
    let segs: Vec<&Arc<Segment>> = loaded.iter().map(|(s, _)| s).collect();
    let pos_of: HashMap<u32, usize> = loaded.iter().enumerate().map(|(i, (s, _))| (s.id, i)).collect();
    let ctx = ApplyCtx { segs: &segs, pos_of: &pos_of, layout };
    let index = Index::new(layout);
    let mut live = vec![(0i64, 0i64); loaded.len()];
    let mut split = Vec::new();
    for &(lo, hi) in &groups {
        // Stage: each thread groups the records of a run of consecutive
        // segments by shard. Shard s's records are then, in log order, part
        // 0's records of s, then part 1's, and so on.
        let parts = on_threads(runs.len(), |i| {
            let (first, end) = runs[i];
            stage(&loaded[first..end], &shard_counts[first..end], first, layout, (lo, hi), checkpoint, counters)
        });
        let parts = parts.into_iter().collect::<Result<Vec<Staging>>>()?;
        // Each thread sums live bytes per segment and adds them up at the end
        // (atomics shared by every thread, per record, would bounce between cores).
        let build = |t: usize| {
            let mut tally = Tally { live: vec![(0i64, 0i64); loaded.len()], split: Vec::new() };
            let mut scratch = ShardScratch::default();
            for shard in (lo..hi).filter(|s| s % threads == t) {
                scratch.recs.clear();
                for p in &parts {
                    scratch.recs.extend_from_slice(p.of(shard));
                }
                if !scratch.recs.is_empty() {
                    index.install(build_shard(&ctx, shard, &mut scratch, &mut tally));
                }
            }
            tally
        };
        for tally in on_threads(threads, build) {
            for (sum, add) in live.iter_mut().zip(&tally.live) {
                sum.0 += add.0;
                sum.1 += add.1;
            }
            split.extend(tally.split);
        }
    }
    for ((seg, _), &(bytes, count)) in loaded.iter().zip(&live) {
        seg.add_live_many(bytes.max(0) as u64, count.max(0) as u64);
    }
    Ok((index, split))
}

/// How many groups of shards open stages and builds one after the other (a
/// cache of at least [`PARALLEL_MIN_RECORDS`] records): the staged records
/// of one group, 32 bytes each, are then about a quarter of the records'
/// (8 bytes per record, beside the index's 23), not all of them at once.
const STAGE_GROUPS: usize = 4;

/// Splits the shards into at most `groups` ranges of consecutive shards
/// holding about as many records each; returns each range's `(lo, hi)`.
fn shard_groups(shard_counts: &[Box<[u32]>], layout: ShardLayout, groups: usize) -> Vec<(usize, usize)> {
    let per_shard: Vec<usize> =
        (0..layout.count()).map(|s| shard_counts.iter().map(|c| c.get(s).map_or(0, |&n| n as usize)).sum()).collect();
    split_by_records(&per_shard, groups)
}

/// The keys of the main-log value records at `split` (location and key
/// hash; each lost to a
/// probation record of its key) that no main-log tombstone of their key at
/// least as new hides: see [`Recovered::split_keys`].
///
/// A main tombstone is normal there: a key deleted (the tombstone goes to
/// main) and set again (a new key lands in probation) leaves exactly that,
/// and depending on the order segments are read in, the old value may meet
/// the probation value before the tombstone. Without one, only damage, or a
/// segment whose removal a crash undid after eviction had dropped the value,
/// leaves a main value below a probation record.
fn unhidden_in_main(
    loaded: &[(Arc<Segment>, Source)],
    checkpoint: &Checkpoint,
    split: &[(Loc, u64)],
    buf: &mut Vec<u8>,
) -> Result<Vec<Vec<u8>>> {
    if split.is_empty() {
        return Ok(Vec::new());
    }
    let by_id: HashMap<u32, &Segment> = loaded.iter().map(|(s, _)| (s.id, &**s)).collect();
    // (key, sequence number, hash) of each split value. Only an intact value
    // record counts: a damaged one (its key unreadable, empty or garbled)
    // can never be served, so it has nothing to settle, and its key must not
    // reach the encoder. It stays damage, for reclaim's rules and `keg verify`.
    let values: Vec<(&[u8], u64, u64)> = split
        .iter()
        .filter_map(|&(l, hash)| {
            let rec = by_id.get(&l.seg)?.read(l.off).ok().filter(|r| r.kind == Kind::Value)?;
            Some((rec.key, rec.header.seq, hash))
        })
        .collect();
    // Every applied main-log tombstone with one of those hashes, by hash.
    let mut tombs: HashMap<u64, Vec<(u64, &Segment, u32)>> = values.iter().map(|v| (v.2, Vec::new())).collect();
    for (seg, source) in loaded.iter().filter(|(s, _)| s.log == LogKind::Main) {
        source.for_each(buf, |r| {
            if r.tombstone && !r.dead && !checkpoint.is_void(r.seq) {
                if let Some(list) = tombs.get_mut(&r.hash) {
                    list.push((r.seq, seg, r.off));
                }
            }
        })?;
    }
    let mut keys: Vec<Vec<u8>> = values
        .into_iter()
        .filter(|&(key, seq, hash)| {
            !tombs[&hash].iter().any(|&(t, seg, off)| t >= seq && seg.read(off).is_ok_and(|r| r.key == key))
        })
        .map(|(key, _, _)| key.to_vec())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Buffers one thread of [`build_index`] reuses from shard to shard.
#[derive(Default)]
struct ShardScratch {
    /// The shard's records, in log order; then in hash order.
    recs: Vec<Staged>,
    /// Room for sorting.
    sorted: Vec<Staged>,
    counts: Vec<u32>,
    /// Runs of records sharing a hash: (first, end) in `recs`.
    runs: Vec<(usize, usize)>,
    /// Locations and sequence numbers of one run's records, by location.
    seqs: Vec<(Loc, u64)>,
}

/// Builds one shard's table from its records (`scratch.recs`, in log order).
///
/// A record whose hash no other record of the shard has is the only record
/// of its key: a value is its entry, a tombstone leaves nothing. Those are
/// most records, and go in sorted by hash, straight to their slots
/// ([`ShardBuilder::place_sorted`]). The records of each hash that several
/// records share are then applied one by one, in log order
/// ([`ApplyCtx::apply`]): they meet only entries of their own hash, so
/// applying them after the others gives the table a plain pass in log order
/// would.
fn build_shard(ctx: &ApplyCtx<'_>, shard: usize, scratch: &mut ShardScratch, tally: &mut Tally) -> ShardBuilder {
    sort_by_hash(&mut scratch.recs, &mut scratch.sorted, &mut scratch.counts, ctx.layout);
    let recs = &scratch.recs;
    scratch.runs.clear();
    let mut room = 0;
    let mut first = 0;
    while first < recs.len() {
        let mut end = first + 1;
        while end < recs.len() && recs[end].hash == recs[first].hash {
            end += 1;
        }
        if end - first > 1 {
            scratch.runs.push((first, end));
            room += end - first;
        } else if recs[first].len_tomb & TOMB_BIT == 0 {
            room += 1;
        }
        first = end;
    }
    let mut table = ShardBuilder::new(ctx.layout, shard, room);
    // The records alone with their hash: values only, skipping the runs.
    let runs_list = &scratch.runs;
    let (mut i, mut next_run) = (0, 0);
    let live = &mut tally.live;
    table.place_sorted(std::iter::from_fn(|| loop {
        if i >= recs.len() {
            return None;
        }
        if next_run < runs_list.len() && runs_list[next_run].0 == i {
            i = runs_list[next_run].1;
            next_run += 1;
            continue;
        }
        let r = &recs[i];
        i += 1;
        if r.len_tomb & TOMB_BIT != 0 {
            continue;
        }
        live[r.seg as usize].0 += (r.len_tomb & !TOMB_BIT) as i64;
        live[r.seg as usize].1 += 1;
        let loc = Loc { seg: ctx.segs[r.seg as usize].id, off: r.off };
        return Some(Entry { hash: r.hash, loc, expires_s: r.expires_s, counter: 0 });
    }));
    let mut marked = false;
    for &(first, end) in runs_list {
        let run = &recs[first..end];
        scratch.seqs.clear();
        scratch.seqs.extend(run.iter().map(|r| (Loc { seg: ctx.segs[r.seg as usize].id, off: r.off }, r.seq)));
        scratch.seqs.sort_unstable();
        let seqs = &scratch.seqs;
        let seq_of = |loc: Loc| seqs.binary_search_by_key(&loc, |p| p.0).ok().map(|i| seqs[i].1);
        for r in run {
            marked |= r.len_tomb & TOMB_BIT != 0;
            ctx.apply(&mut table, tally, r, &seq_of);
        }
    }
    if marked {
        table.retain(|e| e.expires_s != TOMBSTONE_MARK);
    }
    table
}

/// Sorts `recs` by hash, and the records of one hash by sequence number (a
/// value before a tombstone of the same number, else in log order): a
/// counting sort on the hash's top bits below the shard's (about one bucket
/// per record), then a stable sort of each bucket that holds more than one
/// record (almost always none; a hasher that puts many keys in one
/// bucket costs a merge sort there, not a quadratic one).
fn sort_by_hash(recs: &mut Vec<Staged>, sorted: &mut Vec<Staged>, counts: &mut Vec<u32>, layout: ShardLayout) {
    let n = recs.len();
    // Within a hash, number order, not log order: the log order of one
    // hash's records across segments and logs is not their age (reclaim
    // copies records to a log's head; probation and main interleave), and
    // an entry's fate must not depend on which record is applied first.
    let order = |r: &Staged| (r.hash, r.seq, r.len_tomb & TOMB_BIT != 0);
    // (Stable: records equal in all three stay in log order, so a tie
    // between equal numbers, which only damage or a hand-made file makes,
    // is decided the same way whatever other records are there.)
    if n <= 16 {
        recs.sort_by_key(order);
        return;
    }
    let bits = usize::BITS - n.leading_zeros();
    let bucket = |h: u64| ((h << layout.bits()) >> (64 - bits)) as usize;
    counts.clear();
    counts.resize((1 << bits) + 1, 0);
    for r in recs.iter() {
        counts[bucket(r.hash) + 1] += 1;
    }
    for b in 1..counts.len() {
        counts[b] += counts[b - 1];
    }
    sorted.clear();
    sorted.resize(n, Staged::default());
    for r in recs.iter() {
        let at = &mut counts[bucket(r.hash)];
        sorted[*at as usize] = *r;
        *at += 1;
    }
    std::mem::swap(recs, sorted);
    // Now `counts[b]` is where bucket b ends.
    let mut start = 0;
    for &end in &counts[..counts.len() - 1] {
        let end = end as usize;
        if end > start + 1 {
            recs[start..end].sort_by_key(order);
        }
        start = end;
    }
}

/// What one thread of [`build_index`] counts besides the index itself.
struct Tally {
    /// Live bytes and entries per loaded segment (by position).
    live: Vec<(i64, i64)>,
    /// Main-log value records that lost to a probation record of the same
    /// key (see [`Recovered::split_keys`]).
    split: Vec<(Loc, u64)>,
}

/// Runs `f(0)` on this thread and `f(1)` .. `f(n - 1)` each on a thread of
/// its own; returns the results in order (a panic in any of them goes on here).
fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if n <= 1 {
        return (0..n).map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..n).map(|i| scope.spawn(move || f(i))).collect();
        let mut out = vec![f(0)];
        out.extend(workers.into_iter().map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))));
        out
    })
}

/// One run of segments' records to apply, of the shards `lo..hi`, grouped by shard.
struct Staging {
    lo: usize,
    /// Shard `lo + i`'s records are `staged[starts[i]..ends[i]]`.
    starts: Vec<usize>,
    ends: Vec<usize>,
    staged: StagedBuf,
}

/// Room for staged records, zeroed (all-zero bytes are a valid [`Staged`]):
/// an anonymous memory map when large, so that it goes back to the system
/// as soon as its group is built instead of staying in the allocator's heap
/// beside the index (see `crate::mem`).
enum StagedBuf {
    Heap(Vec<Staged>),
    Map(memmap2::MmapMut, usize),
}

impl StagedBuf {
    fn zeroed(n: usize) -> StagedBuf {
        let bytes = n * std::mem::size_of::<Staged>();
        if bytes >= crate::mem::MAP_MIN_BYTES {
            if let Ok(map) = memmap2::MmapMut::map_anon(bytes) {
                return StagedBuf::Map(map, n);
            }
        }
        StagedBuf::Heap(vec![Staged::default(); n])
    }
}

impl std::ops::Deref for StagedBuf {
    type Target = [Staged];

    fn deref(&self) -> &[Staged] {
        match self {
            StagedBuf::Heap(v) => v,
            // SAFETY: the map is page-aligned (more than `Staged` needs), `n`
            // records long, and any bytes are a valid `Staged` (integers only).
            StagedBuf::Map(m, n) => unsafe { std::slice::from_raw_parts(m.as_ptr().cast::<Staged>(), *n) },
        }
    }
}

impl std::ops::DerefMut for StagedBuf {
    fn deref_mut(&mut self) -> &mut [Staged] {
        match self {
            StagedBuf::Heap(v) => v,
            // SAFETY: as in `deref`, and the map is uniquely borrowed.
            StagedBuf::Map(m, n) => unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr().cast::<Staged>(), *n) },
        }
    }
}

impl Staging {
    fn of(&self, shard: usize) -> &[Staged] {
        let i = shard - self.lo;
        &self.staged[self.starts[i]..self.ends[i]]
    }
}

/// Splits segments holding `records` records each into at most `parts` runs
/// of consecutive segments holding about as many records each; returns each
/// run's `(first, end)`.
fn split_by_records(records: &[usize], parts: usize) -> Vec<(usize, usize)> {
    let total: usize = records.iter().sum();
    let per = total.div_ceil(parts.max(1)).max(1);
    let mut runs = Vec::new();
    let (mut first, mut sum) = (0, 0);
    for (i, &n) in records.iter().enumerate() {
        sum += n;
        if sum >= per * (runs.len() + 1) && runs.len() + 1 < parts {
            runs.push((first, i + 1));
            first = i + 1;
        }
    }
    if first < records.len() || runs.is_empty() {
        runs.push((first, records.len()));
    }
    runs
}

/// Groups the records of `segs` (which begin at position `first` of the
/// loaded segments) that belong to shards `lo..hi` by shard (a counting sort
/// that keeps the log order within each shard), leaving out dead and void
/// ones; `counts` are each segment's records per shard (void ones included,
/// so each shard's room may end with some unused).
fn stage(
    segs: &[(Arc<Segment>, Source)],
    counts: &[Box<[u32]>],
    first: usize,
    layout: ShardLayout,
    (lo, hi): (usize, usize),
    checkpoint: &Checkpoint,
    counters: &Counters,
) -> Result<Staging> {
    let mut starts = vec![0usize; hi - lo + 1];
    for c in counts {
        for s in lo..hi {
            starts[s - lo + 1] += c.get(s).map_or(0, |&n| n as usize);
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut staged = StagedBuf::zeroed(starts[hi - lo]);
    let mut ends = starts.clone();
    let mut buf = Vec::new();
    for (i, (_, source)) in segs.iter().enumerate() {
        source.for_each(&mut buf, |rec| {
            let shard = layout.of(rec.hash);
            if shard < lo || shard >= hi {
                return;
            }
            // (Counted in the one group that holds the record's shard.)
            if checkpoint.is_void(rec.seq) {
                bump(&counters.recovery_void_records);
                return;
            }
            if rec.dead {
                return;
            }
            let at = &mut ends[shard - lo];
            // (Always room: the counts came from these very bytes, which a
            // hint file's checksum vouches for again at the end of the pass.)
            if *at < starts[shard - lo + 1] {
                staged[*at] = Staged {
                    hash: rec.hash,
                    seq: rec.seq,
                    seg: (first + i) as u32,
                    off: rec.off,
                    expires_s: rec.expires_s,
                    len_tomb: rec.len | if rec.tombstone { TOMB_BIT } else { 0 },
                };
                *at += 1;
            }
        })?;
    }
    ends.pop();
    Ok(Staging { lo, starts, ends, staged })
}

/// What applying a record needs to know of the other segments.
struct ApplyCtx<'a> {
    /// Each loaded segment.
    segs: &'a [&'a Arc<Segment>],
    /// A segment's position in `segs`, by id.
    pos_of: &'a HashMap<u32, usize>,
    /// The index's shards.
    layout: ShardLayout,
}

impl ApplyCtx<'_> {
    fn seg_at(&self, loc: Loc) -> (usize, &Arc<Segment>) {
        let pos = *self.pos_of.get(&loc.seg).expect("index points only at loaded segments");
        (pos, self.segs[pos])
    }

    /// Takes entry `e`'s value (if it is one, and readable) out of its
    /// segment's live bytes and count: a newer record replaced it.
    fn uncount_live(&self, live: &mut [(i64, i64)], e: &Entry) {
        let (pos, seg) = self.seg_at(e.loc);
        if e.expires_s != TOMBSTONE_MARK {
            if let Some((h, _)) = seg.peek(e.loc.off) {
                live[pos].0 -= h.record_len() as i64;
                live[pos].1 -= 1;
            }
        }
    }

    /// Applies one record to its shard's table: the highest sequence number
    /// wins per key. `live` gathers each segment's live bytes and count.
    ///
    /// `seq_of` gives the sequence number of the record at an entry's
    /// location: every entry of this hash comes from a record of the run
    /// being applied.
    fn apply(&self, table: &mut ShardBuilder, tally: &mut Tally, r: &Staged, seq_of: &impl Fn(Loc) -> Option<u64>) {
        let live = &mut tally.live;
        let seg = self.segs[r.seg as usize];
        let tombstone = r.len_tomb & TOMB_BIT != 0;
        let len = (r.len_tomb & !TOMB_BIT) as i64;
        // The record's segment gains a live value of `len` bytes.
        let count_live = |live: &mut Vec<(i64, i64)>| {
            live[r.seg as usize].0 += len;
            live[r.seg as usize].1 += 1;
        };
        let loc = Loc { seg: seg.id, off: r.off };
        let new_expiry = if tombstone { TOMBSTONE_MARK } else { r.expires_s };
        let entry = Entry { hash: r.hash, loc, expires_s: new_expiry, counter: 0 };
        // The common case: no other entry has this hash.
        if table.insert_if_new_hash(entry) {
            if !tombstone {
                count_live(live);
            }
            return;
        }
        // Read the record's key only if another entry has the same hash (an
        // overwrite or a collision): a hint-based open reads no data otherwise.
        let mut rec_key = None;
        // The entry this record competes with: the one holding the same key, else
        // the first whose key (or the record's own) cannot be read. Unreadable keys
        // count as the same key: treating a stranger as the same key can only lose
        // an entry, while the opposite could revive an old value. But an unreadable
        // entry must not stand in for a readable entry of the key itself, or that
        // entry would outlive the record that supersedes it.
        let mut unreadable = None;
        let mut matched = None;
        // Two different keys count as different only if both records are
        // intact: a damaged byte in a key must make it unreadable, not another
        // key (which would let an older value of the real key outlive this
        // newer record).
        let intact = |seg: &Segment, off: u32| seg.read(off).is_ok();
        for cand in table.lookup(r.hash).iter() {
            let rec_key = *rec_key.get_or_insert_with(|| seg.peek(r.off).map(|(_, k)| k));
            let (_, cand_seg) = self.seg_at(cand.loc);
            match (rec_key, cand_seg.peek(cand.loc.off)) {
                (Some(a), Some((_, b))) if a == b => {
                    matched = Some(*cand);
                    break;
                }
                (Some(_), Some(_)) if intact(seg, r.off) && intact(cand_seg, cand.loc.off) => {}
                _ => {
                    unreadable = unreadable.or(Some(*cand));
                }
            }
        }
        // A record whose own key cannot be read may be the newest record of
        // any key of this hash: it beats every older entry of the hash, not
        // only the first one met (which one that is depends on the order the
        // entries went in, so the choice would change from one open to the
        // next as other keys of the hash come and go, and a key one open
        // showed deleted could be back in the next).
        if rec_key.flatten().is_none() {
            let older: Vec<Entry> =
                table.lookup(r.hash).iter().filter(|c| seq_of(c.loc).unwrap_or(0) < r.seq).copied().collect();
            // (With nothing older, a tie is decided below, as for any record.)
            for c in &older {
                self.uncount_live(live, c);
                table.remove(r.hash, c.loc);
            }
            if !older.is_empty() {
                table.insert(entry);
                if !tombstone {
                    count_live(live);
                }
                return;
            }
        }
        let Some(cand) = matched.or(unreadable) else {
            table.insert(entry);
            if !tombstone {
                count_live(live);
            }
            return;
        };
        let (_, cand_seg) = self.seg_at(cand.loc);
        let cand_seq = seq_of(cand.loc).unwrap_or(0);
        let seq = r.seq;
        // On a tie (two records numbered alike: only damage or a hand-made
        // file does that) a tombstone beats a value, whichever is read first:
        // reclaim copies tombstones to a log's head, which changes the order.
        let wins = seq > cand_seq || (seq == cand_seq && tombstone && cand.expires_s != TOMBSTONE_MARK);
        // A main-log value hidden by a probation record of the same key:
        // damage, or a power cut that undid a removal (see
        // `Recovered::split_keys`).
        if matched.is_some() {
            let cand_value = cand.expires_s != TOMBSTONE_MARK;
            match (wins, cand_seg.log, seg.log) {
                (true, LogKind::Main, LogKind::Probation) if cand_value => tally.split.push((cand.loc, r.hash)),
                (false, LogKind::Probation, LogKind::Main) if !tombstone => tally.split.push((loc, r.hash)),
                _ => {}
            }
        }
        // An intact record newer than an unreadable entry (and no readable
        // entry of its own key) goes beside that entry, not in its place: the
        // unreadable record may be another key's newest, hiding older values
        // of that key. Replaced, it would hide them only on disk, where a
        // later open may read the segment differently (its hint rewritten,
        // say), while a delete of that key, finding no entry that could be
        // it, would leave no tombstone.
        if wins && matched.is_none() && rec_key.flatten().is_some() && intact(seg, r.off) {
            table.insert(entry);
            if !tombstone {
                count_live(live);
            }
            return;
        }
        if wins {
            self.uncount_live(live, &cand);
            table.update(r.hash, cand.loc, loc, new_expiry, Some(0));
            if !tombstone {
                count_live(live);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sort_by_hash_then_by_number_then_in_log_order() {
        let mut x: u64 = 3;
        for (n, spread) in [(5usize, u64::MAX), (40, 7), (3000, u64::MAX), (3000, 0xff), (2000, 0)] {
            let recs: Vec<Staged> = (0..n)
                .map(|i| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    // One shard (the top bits equal); few distinct hashes when `spread` is small.
                    let hash = (7u64 << (64 - 8)) | ((x >> 20) & spread);
                    // Numbers out of log order, some equal, half of them tombstones.
                    let len_tomb = if x >> 63 == 1 { TOMB_BIT | 40 } else { 40 };
                    // (`off` is the log position: ties keep log order.)
                    Staged { hash, seq: (x >> 8) % 64, len_tomb, off: i as u32, ..Staged::default() }
                })
                .collect();
            let mut got = recs.clone();
            sort_by_hash(&mut got, &mut Vec::new(), &mut Vec::new(), ShardLayout::MAX);
            let key =
                |v: &[Staged]| v.iter().map(|r| (r.hash, r.seq, r.len_tomb & TOMB_BIT != 0, r.off)).collect::<Vec<_>>();
            let mut want = key(&recs);
            want.sort();
            assert_eq!(key(&got), want, "n {n}, spread {spread:x}");
        }
    }

    #[test]
    fn runs_cover_every_segment_once_in_order() {
        for sizes in [vec![], vec![5], vec![1, 1, 1], vec![100, 1, 1, 1, 100], vec![0, 0, 7, 0], vec![3; 13]] {
            for parts in 1..5 {
                let runs = split_by_records(&sizes, parts);
                assert!(runs.len() <= parts, "{sizes:?} in {parts}: {runs:?}");
                let mut next = 0;
                for &(first, end) in &runs {
                    assert_eq!(first, next, "{sizes:?} in {parts}: {runs:?}");
                    assert!(end >= first);
                    next = end;
                }
                assert_eq!(next, sizes.len(), "{sizes:?} in {parts}: {runs:?}");
            }
        }
        assert_eq!(split_by_records(&[3; 13], 2), vec![(0, 7), (7, 13)]);
    }
}
