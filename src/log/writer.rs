//! The appender: the only code that adds bytes to segment files.
//!
//! One `Writer` sits behind the cache's writer mutex. It assigns nothing
//! itself: the caller picks the sequence number and encodes the record, the
//! writer puts it at the end of the chosen log's active segment, rolling to a
//! new segment when the record would not fit.
//!
//! **Preallocation** (synced mode): fdatasync after an append that grows the
//! file must also write the file's new size (one more metadata write per
//! set); after an overwrite of blocks the file already holds it need not. So
//! when the writer is given `prealloc_bytes` (see [`PREALLOC_BYTES`]), the
//! active segments' files hold zeros ahead of their last records, which
//! synced appends overwrite:
//!
//! - an append that leaves fewer than `prealloc_bytes / 2` of zeros after
//!   its record asks for more ([`Segments::want_zeros`]); the background
//!   thread then writes zeros up to `prealloc_bytes` past the last record
//!   and fsyncs them ([`Writer::prezero`]), off every writer's path but
//!   for the writer lock it holds while it hands the zeros to the OS;
//! - an append whose record would not fit in the zeros (no background
//!   thread, or one that fell behind) writes the next stretch itself first,
//!   which its group commit's fsync then makes durable with the record.
//!
//! Sealing a segment cuts its zeros off (a sealed segment ends at its last
//! record, as before); a crash leaves them, and the scan reads a zero tail
//! as the end of the log (FORMAT.md 2.8).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::record::{self, Header, Kind};
use crate::format::segment::{LogKind, HEADER_LEN};
use crate::index::{Loc, MAX_OFFSET};
use crate::log::{segment_path, Segment, Segments};
use crate::storage::Storage;

/// Zeros the writer keeps ahead of an active segment's last record in
/// synced mode (see the module docs): 1 MiB, so at most 2 MiB of zeros on
/// disk at once (one stretch per log), counted in the directory's bytes
/// while the segments are active and cut off when they are sealed.
pub(crate) const PREALLOC_BYTES: u64 = 1 << 20;

struct Active {
    seg: Arc<Segment>,
    /// The file holds zeros up to here, past its last record (at most
    /// `seg.len()` when it has none).
    zeroed_to: u64,
    /// Records appended but not yet written (buffered durability only).
    pending: Vec<u8>,
    /// Segment offset of `pending[0]`.
    pending_at: u64,
    /// Bytes of the segment whose write-out to the disk has been started
    /// (see [`WRITEBACK_CHUNK`]).
    kicked: u64,
}

/// Every time this many more bytes of the active segment have reached the
/// operating system, the writer asks the kernel to start writing them to
/// the disk (`FileRef::start_writeback`), whole pages only,
/// without waiting: the disk then works while the caller goes on appending,
/// and a later fsync (a `sync`, a seal's) waits only for the tail. Without
/// it a fill wrote nothing until its fsync (the kernel starts on its own
/// only past its dirty-page threshold, gigabytes here), and the time of a
/// fill that ends in a sync was the time to append plus the time to write
/// everything. It makes nothing durable and changes no promise.
pub(crate) const WRITEBACK_CHUNK: u64 = 4 << 20;

impl Active {
    fn new(seg: Arc<Segment>, at: u64) -> Active {
        Active { seg, zeroed_to: 0, pending: Vec::new(), pending_at: at, kicked: at & !(PAGE - 1) }
    }

    /// Writes zeros from the file's end (or its records' end, if further) up
    /// to `to`: at most its capacity, and fewer (or none) if more would take
    /// the committed bytes past `cap`. Counts them in `segments`; returns
    /// whether it wrote any.
    fn prezero(&mut self, segments: &Segments, to: u64, cap: u64) -> Result<bool> {
        let from = self.zeroed_to.max(self.seg.len());
        let room = cap.saturating_sub(segments.committed_bytes());
        let to = to.min(self.seg.capacity()).min(from.saturating_add(room));
        if to <= from {
            return Ok(false);
        }
        self.seg.write_zeros(from, to)?;
        segments.grow(to - from);
        self.zeroed_to = to;
        Ok(true)
    }

    /// Starts the write-out of the whole pages the OS holds past `kicked`,
    /// once there are [`WRITEBACK_CHUNK`] of them. (The page the next
    /// append continues is left: a page under write-out may make that
    /// write wait for it.)
    fn start_writeback(&mut self) {
        let end = self.seg.visible() & !(PAGE - 1);
        if end >= self.kicked + WRITEBACK_CHUNK {
            self.seg.file().start_writeback(self.kicked, end - self.kicked);
            self.kicked = end;
        }
    }
}

/// The page size write-out is started in.
const PAGE: u64 = 4096;

/// What a group commit must fsync to make everything up to `seq` durable.
pub(crate) struct SyncPlan {
    pub(crate) seq: u64,
    files: Vec<(Arc<Segment>, u64)>,
    pub(crate) dir: bool,
}

pub(crate) struct Writer {
    storage: Storage,
    dir: PathBuf,
    /// The sequence number the next record gets.
    pub(crate) next_seq: u64,
    /// The highest sequence number the checkpoint on disk reserves (its
    /// sequence mark): a record numbered above it waits for a new mark
    /// (see `Engine::reserve_seq`).
    seq_reserved: u64,
    next_id: u32,
    segment_bytes: u64,
    /// Zeros kept ahead of the active segments' ends (0: none; see the module docs).
    prealloc_bytes: u64,
    /// Zeros are written only while the directory's committed bytes
    /// ([`Segments::committed_bytes`], which count them) stay at most this:
    /// the cache's `max_bytes`, so that they never take the files past the
    /// cap's bound.
    prealloc_cap: u64,
    /// Write-buffer size in bytes, for both logs together; 0 writes every
    /// record through at once.
    buffer_bytes: usize,
    /// Buffered records older than this (cache time, ms) are written out at
    /// the next append (0: no limit); the maintenance thread writes them out
    /// when no append comes.
    buffer_age_ms: u64,
    /// Cache time of the oldest record in either write buffer.
    pending_since_ms: Option<u64>,
    /// A batch is open (see [`Writer::begin_batch`]): records wait in the
    /// write buffer whatever the durability mode, until the batch ends.
    batch: bool,
    active: [Option<Active>; 2],
    /// Scratch space for encoding one record.
    scratch: Vec<u8>,
    /// Segments sealed since maintenance last took them (they need an fsync and a hint file).
    pub(crate) sealed: Vec<Arc<Segment>>,
    /// Segments that may hold bytes not yet fsynced.
    unsynced: Vec<Arc<Segment>>,
    /// A segment was created since the directory was last fsynced.
    dir_dirty: bool,
    /// Set after a failure that leaves durability unknown; every later write fails with it.
    disabled: Option<(&'static str, PathBuf, String)>,
}

/// A record to append, before it is encoded.
pub(crate) struct NewRecord<'a> {
    pub(crate) kind: Kind,
    /// `None`: the next sequence number (consumed only if the append succeeds).
    /// `Some`: a number the record keeps (a tombstone copied or left by reclaim).
    pub(crate) seq: Option<u64>,
    pub(crate) expires_ms: u64,
    pub(crate) key: &'a [u8],
    /// The item's user flags (0: none stored).
    pub(crate) user_flags: u32,
    /// Its tags and whether its key is namespaced.
    pub(crate) meta: Meta<'a>,
    pub(crate) value: &'a [u8],
}

/// What a value record says of its item besides the value and user flags:
/// its encoded tag list (empty: none) and whether its key is namespaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta<'a> {
    pub(crate) tags: &'a [u8],
    pub(crate) namespaced: bool,
}

impl<'a> Meta<'a> {
    /// The metadata `rec` carries.
    pub(crate) fn of(rec: &record::Record<'a>) -> Meta<'a> {
        Meta { tags: rec.tags, namespaced: rec.namespaced() }
    }

    /// Bytes it adds to a record (with `user_flags`).
    pub(crate) fn extra_len(&self, user_flags: u32) -> usize {
        self.tags.len() + if user_flags != 0 { 4 } else { 0 }
    }
}

impl NewRecord<'_> {
    /// Bytes the record takes on disk.
    pub(crate) fn encoded_len(&self) -> usize {
        record::encoded_len(self.key.len(), self.value.len()) + self.meta.extra_len(self.user_flags)
    }
}

impl Writer {
    /// The sequence number the next record gets, unless it would pass the
    /// highest one open accepts (a record numbered above it would read as
    /// damage at the next open, and be lost), or the checkpoint's sequence
    /// mark (a power cut could lose the record, and the next open would
    /// give its number, a version some caller may hold, again).
    #[inline]
    pub(crate) fn seq_for_next(&self) -> Result<u64> {
        if self.next_seq > self.seq_reserved {
            return Err(self.seq_refused());
        }
        Ok(self.next_seq)
    }

    /// Why the next number cannot be given (see [`Writer::seq_for_next`]).
    #[cold]
    #[inline(never)]
    fn seq_refused(&self) -> Error {
        if self.next_seq > crate::format::MAX_SEQ {
            return Error::SequenceExhausted { path: self.dir.clone() };
        }
        // Every path that numbers a record reserves first (`Engine::reserve_seq`).
        debug_assert!(self.next_seq <= self.seq_reserved, "sequence number {} not reserved", self.next_seq);
        Error::WritesDisabled {
            op: "sequence reservation",
            path: self.dir.join(crate::log::checkpoint::CHECKPOINT_FILE),
            reason: format!("keg bug: record number {} is above the mark {}", self.next_seq, self.seq_reserved),
        }
    }

    /// Whether the next record's number is above the reserved ones (and
    /// below [`crate::format::MAX_SEQ`]): the checkpoint needs a new mark first.
    #[inline]
    pub(crate) fn needs_seq_mark(&self) -> bool {
        self.next_seq > self.seq_reserved && self.next_seq <= crate::format::MAX_SEQ
    }

    /// Gives back the reserved numbers above `last` (a clean close): the
    /// next record needs a new mark.
    pub(crate) fn release_seqs(&mut self, last: u64) {
        self.seq_reserved = self.seq_reserved.min(last);
    }

    /// The checkpoint on disk now reserves every number up to `mark`.
    pub(crate) fn set_seq_reserved(&mut self, mark: u64) {
        self.seq_reserved = self.seq_reserved.max(mark);
    }

    /// Encodes `rec` and appends it to `log`: the path every record keg
    /// writes takes. Returns where it landed and its sequence number.
    ///
    /// A record the format cannot hold (an empty key, say: only a key read
    /// off a damaged disk could be one) is refused with an error before any
    /// byte is written; the engine's own writes never ask for one, which a
    /// debug assertion checks.
    pub(crate) fn append_record(
        &mut self,
        segments: &Segments,
        log: LogKind,
        rec: NewRecord<'_>,
        now_ms: u64,
    ) -> Result<(Loc, u64)> {
        let seq = match rec.seq {
            Some(seq) => seq,
            None => self.seq_for_next()?,
        };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let (tags, namespaced) = (rec.meta.tags, rec.meta.namespaced);
        let encoded = record::encode_full(
            &mut buf,
            rec.kind,
            seq,
            rec.expires_ms,
            rec.key,
            rec.user_flags,
            tags,
            namespaced,
            rec.value,
        );
        debug_assert!(encoded.is_ok(), "keg asked to write an invalid record: {encoded:?}");
        let appended = match encoded {
            Ok(()) => self.append(segments, log, &buf, now_ms),
            Err(e) => Err(Error::from(e)),
        };
        self.scratch = buf;
        let loc = appended?;
        if rec.seq.is_none() {
            self.next_seq += 1;
        }
        Ok((loc, seq))
    }

    /// Appends `raw`, an intact record read from a segment, byte for byte,
    /// keeping its sequence number: how reclaim keeps a record this version
    /// does not understand (it cannot encode it again). Every other record
    /// comes through [`Writer::append_record`]; both end in the same append.
    pub(crate) fn append_verbatim(
        &mut self,
        segments: &Segments,
        log: LogKind,
        raw: &[u8],
        now_ms: u64,
    ) -> Result<Loc> {
        debug_assert!(
            matches!(record::decode(raw), Err(crate::format::DecodeError::Invalid(_))),
            "only an intact record this version does not understand is copied verbatim"
        );
        self.append(segments, log, raw, now_ms)
    }

    pub(crate) fn new(
        storage: &Storage,
        dir: &Path,
        next_seq: u64,
        next_id: u32,
        segment_bytes: u64,
        buffer_bytes: usize,
        buffer_age_ms: u64,
    ) -> Writer {
        Writer {
            storage: storage.clone(),
            dir: dir.to_owned(),
            next_seq,
            seq_reserved: 0,
            next_id,
            segment_bytes,
            prealloc_bytes: 0,
            prealloc_cap: 0,
            buffer_bytes,
            buffer_age_ms,
            pending_since_ms: None,
            batch: false,
            active: [None, None],
            scratch: Vec::new(),
            sealed: Vec::new(),
            unsynced: Vec::new(),
            dir_dirty: false,
            disabled: None,
        }
    }

    /// Keeps `bytes` of zeros ahead of the active segments' last records
    /// (see the module docs; 0, the default, keeps none), as long as the
    /// directory's committed bytes, zeros included, stay within `cap`.
    pub(crate) fn set_prealloc(&mut self, bytes: u64, cap: u64) {
        self.prealloc_bytes = bytes;
        self.prealloc_cap = cap;
    }

    /// Makes `seg` (unsealed, from [`Segment::resume`]) the active segment of
    /// its log: the next record of that log is appended after its last one.
    pub(crate) fn resume(&mut self, seg: Arc<Segment>) {
        debug_assert!(!seg.is_sealed());
        let i = seg.log.index();
        debug_assert!(self.active[i].is_none());
        let pending_at = seg.len();
        self.active[i] = Some(Active::new(seg, pending_at));
    }

    /// Fails if writes have been disabled by an earlier fatal error.
    pub(crate) fn check_enabled(&self) -> Result<()> {
        match &self.disabled {
            None => Ok(()),
            Some((op, path, reason)) => Err(Error::WritesDisabled { op, path: path.clone(), reason: reason.clone() }),
        }
    }

    /// Turns writes off for good (until reopen) after `err`, and returns it.
    ///
    /// Every failed fsync of segment data comes here, wherever it happens
    /// (group commit, hint writing, clear): after a failed fsync the kernel
    /// may have dropped the dirty pages and marked them clean, so a retry can
    /// succeed without them ("fsyncgate"). Continuing would let a later
    /// checkpoint call durable what may be lost; a reopen rereads the files.
    pub(crate) fn disable(&mut self, err: Error) -> Error {
        if self.disabled.is_some() {
            // Keep the first cause: it is the one that explains the rest.
        } else if let Error::Io { op, path, source } = &err {
            self.disabled = Some((op, path.clone(), source.to_string()));
        } else {
            self.disabled = Some(("write", self.dir.clone(), err.to_string()));
        }
        err
    }

    /// The active segment of `log`, if it has one.
    pub(crate) fn active(&self, log: LogKind) -> Option<&Arc<Segment>> {
        self.active[log.index()].as_ref().map(|a| &a.seg)
    }

    /// The header and key of a record still in the write buffer.
    pub(crate) fn peek_pending(&self, loc: Loc) -> Option<(Header, &[u8])> {
        let a = self.active.iter().flatten().find(|a| a.seg.id == loc.seg)?;
        let at = (loc.off as u64).checked_sub(a.pending_at)? as usize;
        let bytes = a.pending.get(at..)?;
        let header = record::decode_header(bytes).ok()?;
        let key = bytes.get(record::HEADER_LEN..record::HEADER_LEN + header.key_len as usize)?;
        Some((header, key))
    }

    /// The verified record at `loc`, if it is still in the write buffer.
    pub(crate) fn read_pending(&self, loc: Loc) -> Option<record::Record<'_>> {
        let a = self.active.iter().flatten().find(|a| a.seg.id == loc.seg)?;
        let at = (loc.off as u64).checked_sub(a.pending_at)? as usize;
        record::decode(a.pending.get(at..)?).ok()
    }

    /// Appends one encoded record to `log`, returning where it landed.
    ///
    /// On error nothing is visible and the caller must not consume the
    /// record's sequence number.
    fn append(&mut self, segments: &Segments, log: LogKind, rec: &[u8], now_ms: u64) -> Result<Loc> {
        let len = rec.len() as u64;
        let fits = self.active[log.index()].as_ref().is_some_and(|a| a.seg.len() + len <= self.segment_bytes);
        if !fits {
            // A record longer than a segment (written by an open with larger
            // segments, now copied by maintenance) gets a segment sized to fit it.
            self.roll(segments, log, now_ms, self.segment_bytes.max(HEADER_LEN as u64 + len))?;
        }
        let i = log.index();
        if self.buffer_bytes > 0 && !self.batch {
            // Both logs' buffers are written out together, never one alone:
            // records of the other log with lower sequence numbers would
            // otherwise still be buffered behind them, and a crash would
            // leave a hole that voids the written ones (recovery keeps a
            // prefix of the history). So a crash loses at most what the
            // buffers hold: `buffer_bytes`, written within `buffer_age_ms`.
            let pending = self.pending_bytes();
            let old = self.pending_since_ms.is_some_and(|t| self.buffer_age_ms > 0 && now_ms >= t + self.buffer_age_ms);
            if pending > 0 && (pending + rec.len() > self.buffer_bytes || old) {
                self.flush()?;
            }
        }
        let a = self.active[i].as_mut().expect("rolled");
        let off = a.seg.len();
        debug_assert!(off <= MAX_OFFSET as u64);
        if self.prealloc_bytes > 0 {
            if off + len > a.zeroed_to {
                // No zeros left for this record: the next stretch, written
                // before the record (so that a failure leaves nothing visible).
                a.prezero(segments, off + len + self.prealloc_bytes, self.prealloc_cap)?;
            } else if off + len + self.prealloc_bytes / 2 > a.zeroed_to && a.zeroed_to < a.seg.capacity() {
                segments.want_zeros();
            }
        }
        // Bytes the file grows by: none while the record lands on zeros.
        let grew = (off + len).saturating_sub(a.zeroed_to.max(off));
        if self.buffer_bytes == 0 && !self.batch {
            #[cfg(feature = "fault-injection")]
            if crate::storage::kill::armed("append.torn") {
                a.seg.file().write_torn_and_die(rec, off);
            }
            a.seg.file().write_at(rec, off)?;
            a.seg.set_len(off + len);
            a.seg.set_visible(off + len);
            a.start_writeback();
        } else {
            if a.pending.is_empty() {
                a.pending_at = off;
            }
            a.pending.extend_from_slice(rec);
            a.seg.set_len(off + len);
            self.pending_since_ms.get_or_insert(now_ms);
        }
        segments.grow_record(&a.seg, grew);
        if !self.unsynced.iter().any(|s| Arc::ptr_eq(s, &a.seg)) {
            self.unsynced.push(a.seg.clone());
        }
        Ok(Loc { seg: a.seg.id, off: off as u32 })
    }

    fn flush_log(&mut self, i: usize) -> Result<()> {
        let Some(a) = self.active[i].as_mut() else { return Ok(()) };
        if a.pending.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "fault-injection")]
        if crate::storage::kill::armed("flush.torn") {
            a.seg.file().write_torn_and_die(&a.pending, a.pending_at);
        }
        if let Err(e) = a.seg.file().write_at(&a.pending, a.pending_at) {
            // Buffered records were acknowledged; if they cannot be written, stop writing.
            return Err(self.disable(e));
        }
        let end = a.pending_at + a.pending.len() as u64;
        a.pending.clear();
        a.seg.set_visible(end);
        a.start_writeback();
        Ok(())
    }

    /// Starts a batch: until [`Writer::end_batch`], appended records gather
    /// in the active segments' write buffers (bounded by the segment size:
    /// a segment that fills is written out when it is sealed), so that a
    /// batch reaches the operating system as one write per log (and per
    /// segment it fills), and readers, who take the writer lock to flush a
    /// buffered record they look up, see all of it or none of it.
    pub(crate) fn begin_batch(&mut self) {
        self.batch = true;
    }

    /// Ends a batch: writes its records out (in buffered durability they
    /// stay buffered, as any write's would).
    pub(crate) fn end_batch(&mut self) -> Result<()> {
        self.batch = false;
        if self.buffer_bytes == 0 {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Hands every buffered record to the operating system (both logs:
    /// see [`Writer::append`]).
    pub(crate) fn flush(&mut self) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        let both = self.active.iter().all(|a| a.as_ref().is_some_and(|a| !a.pending.is_empty()));
        for i in 0..self.active.len() {
            #[cfg(feature = "fault-injection")]
            if i > 0 && both {
                crate::killpoint!("flush.between_logs");
            }
            self.flush_log(i)?;
        }
        self.pending_since_ms = None;
        Ok(())
    }

    /// Bytes in the write buffers of both logs.
    fn pending_bytes(&self) -> usize {
        self.active.iter().flatten().map(|a| a.pending.len()).sum()
    }

    /// Seals the active segment of `log` and starts a new one of `capacity` bytes.
    fn roll(&mut self, segments: &Segments, log: LogKind, now_ms: u64, capacity: u64) -> Result<()> {
        self.seal(segments, log)?;
        crate::killpoint!("roll.before_create");
        let id = self.next_id;
        if id == u32::MAX {
            return Err(Error::Config(
                "segment ids are exhausted (4 billion segments written); clear the cache".into(),
            ));
        }
        self.next_id += 1;
        let path = segment_path(&self.dir, id);
        let seg = Arc::new(Segment::create(&self.storage, &path, id, log, now_ms, capacity)?);
        self.dir_dirty = true;
        crate::killpoint!("roll.after_create");
        segments.insert(seg.clone());
        self.active[log.index()] = Some(Active::new(seg, 0));
        Ok(())
    }

    /// Writes zeros up to `prealloc_bytes` past the last record of each
    /// active segment that has fewer than half that left (see the module
    /// docs), and returns those segments: the caller fsyncs them, outside
    /// the writer lock, and on failure disables writes ([`Writer::disable`]).
    pub(crate) fn prezero(&mut self, segments: &Segments) -> Result<Vec<Arc<Segment>>> {
        let mut extended = Vec::new();
        if self.disabled.is_some() {
            return Ok(extended);
        }
        let ahead = self.prealloc_bytes;
        for a in self.active.iter_mut().flatten() {
            let len = a.seg.len();
            let low = ahead > 0 && len + ahead / 2 > a.zeroed_to && a.zeroed_to < a.seg.capacity();
            if low && a.prezero(segments, len + ahead, self.prealloc_cap)? {
                extended.push(a.seg.clone());
            }
        }
        Ok(extended)
    }

    /// Seals the active segment of `log` (if any): flushes the write
    /// buffers (both: see [`Writer::append`]), cuts off its zeros (a sealed
    /// segment ends at its last record) and queues it for a hint file (and
    /// the fsync that makes the cut durable).
    pub(crate) fn seal(&mut self, segments: &Segments, log: LogKind) -> Result<()> {
        self.flush()?;
        if let Some(a) = self.active[log.index()].as_mut() {
            let len = a.seg.len();
            if a.zeroed_to > len {
                crate::killpoint!("seal.before_cut");
                a.seg.file().set_len(len)?;
                segments.shrink(a.zeroed_to - len);
                a.zeroed_to = len;
            }
        }
        if let Some(a) = self.active[log.index()].take() {
            a.seg.seal();
            self.sealed.push(a.seg);
        }
        Ok(())
    }

    /// Seals both active segments (before a clean close).
    pub(crate) fn seal_all(&mut self, segments: &Segments) -> Result<()> {
        for log in LogKind::ALL {
            self.seal(segments, log)?;
        }
        Ok(())
    }

    /// Flushes buffers and lists what must be fsynced to make every record so far durable.
    pub(crate) fn plan_sync(&mut self) -> Result<SyncPlan> {
        self.flush()?;
        self.unsynced.retain(|s| !(s.is_sealed() && s.synced() >= s.len()));
        let files = self.unsynced.iter().filter(|s| s.synced() < s.len()).map(|s| (s.clone(), s.len())).collect();
        let dir = std::mem::take(&mut self.dir_dirty);
        Ok(SyncPlan { seq: self.next_seq.saturating_sub(1), files, dir })
    }

    /// Puts back the directory-fsync duty of a plan that failed.
    pub(crate) fn sync_failed(&mut self, plan: &SyncPlan) {
        self.dir_dirty |= plan.dir;
    }
}

impl SyncPlan {
    /// Performs the fsyncs (outside the writer lock).
    pub(crate) fn run(&self, storage: &Storage, dir: &Path) -> Result<()> {
        for (seg, len) in &self.files {
            seg.file().sync_data()?;
            seg.set_synced(*len);
        }
        crate::killpoint!("sync.before_dir");
        if self.dir {
            storage.sync_dir(dir)?;
        }
        Ok(())
    }
}
