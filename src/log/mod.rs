//! The log: segment files, the scanner that walks their records, the writer
//! that appends to them, and the table of live segments readers look up.

pub(crate) mod checkpoint;
pub(crate) mod hints;
pub(crate) mod scan;
pub(crate) mod segment;
pub(crate) mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub(crate) use segment::Segment;

use crate::stripe::{self, Padded, STRIPES};

/// One thread stripe's copy of the segment table.
type StripeTable = RwLock<BTreeMap<u32, SegmentRef>>;

/// A handle that keeps a segment (and its mapping) alive, as a `get`'s
/// [`crate::Value`] holds it. Handles come from one thread stripe's own
/// allocation (see [`Segments::get_ref`]), whose reference count is on cache
/// lines of its own, so that cloning and dropping them on two cores at once
/// does not pass one line between the cores.
#[derive(Clone)]
pub(crate) struct SegmentRef(Arc<Padded<Arc<Segment>>>);

impl SegmentRef {
    fn new(seg: Arc<Segment>) -> SegmentRef {
        SegmentRef(Arc::new(Padded(seg)))
    }
}

impl std::ops::Deref for SegmentRef {
    type Target = Segment;

    #[inline]
    fn deref(&self) -> &Segment {
        &self.0 .0
    }
}

/// File name of segment `id`.
pub(crate) fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08x}.seg"))
}

/// File name of segment `id`'s hint file.
pub(crate) fn hint_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08x}.hint"))
}

/// Parses `<8 hex digits>.<ext>` into an id.
pub(crate) fn parse_name(name: &str, ext: &str) -> Option<u32> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 8 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(stem, 16).ok().filter(|&id| id != 0)
}

/// Every live segment by id. Readers clone an `Arc` out and read without a lock;
/// a segment removed from the table stays readable through the handles that hold it.
///
/// The read path ([`Segments::get_ref`]) looks in a copy of the table kept
/// per thread stripe (see [`crate::stripe`]), whose handles are that
/// stripe's own ([`SegmentRef`]): a `get` then writes no cache line that a
/// `get` on another core writes too (the table's lock word and the
/// segment's reference count were two such lines, written twice a call).
/// A copy gets a segment at its first read from that stripe (under the
/// table's read lock); a removal takes it out of every copy, under the
/// table's write lock, before it returns. Lock order: the table, then a copy.
///
/// It also keeps the running total of bytes the segment and hint files take,
/// and the bytes the hint files not yet written will take: the size cap is
/// enforced against both (see [`Segments::committed_bytes`]).
#[derive(Default)]
pub(crate) struct Segments {
    map: RwLock<BTreeMap<u32, Arc<Segment>>>,
    /// The same table per thread stripe, with that stripe's handles.
    stripes: Box<[Padded<StripeTable>; STRIPES]>,
    disk_bytes: AtomicU64,
    /// Sum of the segments' `hint_debt`.
    hint_debt: AtomicU64,
    /// An active segment is running out of preallocated zeros (see
    /// `crate::log::writer`): the background thread should write more.
    zeros_wanted: AtomicBool,
}

impl Segments {
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<Arc<Segment>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    /// A handle to segment `id` from the calling thread's stripe: what the
    /// read path uses (see the type's docs).
    #[inline]
    pub(crate) fn get_ref(&self, id: u32) -> Option<SegmentRef> {
        let stripe = &self.stripes[stripe::mine()];
        if let Some(r) = stripe.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Some(r.clone());
        }
        self.add_to_stripe(stripe, id)
    }

    /// A stripe's copy gets a segment at its first read from that stripe:
    /// a table change then touches only the stripes that hold the segment
    /// (an open of many segments made a handle for each in all
    /// [`STRIPES`] copies, most never read). Under the table's read lock, so
    /// that a removal (which takes the write lock first) cannot run in
    /// between and leave the copy a handle to a removed segment.
    #[cold]
    fn add_to_stripe(&self, stripe: &StripeTable, id: u32) -> Option<SegmentRef> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let seg = map.get(&id)?;
        let mut copy = stripe.write().unwrap_or_else(|e| e.into_inner());
        Some(copy.entry(id).or_insert_with(|| SegmentRef::new(seg.clone())).clone())
    }

    pub(crate) fn insert(&self, seg: Arc<Segment>) {
        self.grow(seg.len() + seg.hint_len());
        let owed = seg.hint_bytes_owed();
        seg.hint_debt.store(owed, Ordering::Relaxed);
        self.hint_debt.fetch_add(owed, Ordering::Relaxed);
        // (The stripes' copies get it at their first read: `get_ref`.)
        self.map.write().unwrap_or_else(|e| e.into_inner()).insert(seg.id, seg);
    }

    pub(crate) fn remove(&self, id: u32) -> Option<Arc<Segment>> {
        let seg = {
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            for s in self.stripes.iter() {
                s.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
            }
            map.remove(&id)?
        };
        self.disk_bytes.fetch_sub(seg.len() + seg.hint_len(), Ordering::Relaxed);
        self.settle_hint(&seg);
        Some(seg)
    }

    /// Notes a record appended to `seg`, which is in the table: the bytes
    /// the file grew by (`grew`: fewer than the record's when it landed on
    /// preallocated zeros, which [`Segments::grow`] counted), and the entry
    /// its hint file will need.
    pub(crate) fn grow_record(&self, seg: &Segment, grew: u64) {
        self.grow(grew);
        let entry = crate::format::hint::ENTRY_LEN as u64;
        seg.hint_debt.fetch_add(entry, Ordering::Relaxed);
        self.hint_debt.fetch_add(entry, Ordering::Relaxed);
    }

    /// Notes that `seg` needs no more hint bytes (its hint was written, or it is gone).
    pub(crate) fn settle_hint(&self, seg: &Segment) {
        let owed = seg.hint_debt.swap(0, Ordering::Relaxed);
        let _ = self.hint_debt.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(owed)));
    }

    /// Notes bytes removed from a file of a segment in the table.
    pub(crate) fn shrink(&self, bytes: u64) {
        let _ = self.disk_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(bytes)));
    }

    /// Notes bytes added to a file of a segment in the table.
    pub(crate) fn grow(&self, bytes: u64) {
        self.disk_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Asks the background thread for more preallocated zeros.
    pub(crate) fn want_zeros(&self) {
        self.zeros_wanted.store(true, Ordering::Relaxed);
    }

    /// Whether zeros were asked for since [`Segments::take_zeros_wanted`] last ran.
    pub(crate) fn zeros_wanted(&self) -> bool {
        self.zeros_wanted.load(Ordering::Relaxed)
    }

    /// Takes the request for zeros (the background thread, before it writes them).
    pub(crate) fn take_zeros_wanted(&self) -> bool {
        self.zeros_wanted.swap(false, Ordering::Relaxed)
    }

    /// Bytes of segment and hint files.
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    /// Bytes of segment and hint files once every segment without a hint
    /// file covering it has one: what the size cap is enforced against, so
    /// that writing a hint never takes the files past what writers left.
    pub(crate) fn committed_bytes(&self) -> u64 {
        self.disk_bytes().saturating_add(self.hint_debt.load(Ordering::Relaxed))
    }

    /// All segments, oldest (lowest id) first.
    pub(crate) fn all(&self) -> Vec<Arc<Segment>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::segment::LogKind;

    /// A stripe's copy gets a segment at its first read there, and a
    /// removal leaves no copy holding it, even with readers on many stripes
    /// racing it: the segment's last handle goes with the last reader's.
    #[test]
    fn a_removed_segment_stays_in_no_stripe_copy() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::Storage::default();
        let segments = Arc::new(Segments::default());
        for id in 1..=40u32 {
            let path = segment_path(dir.path(), id);
            let seg = Arc::new(Segment::create(&storage, &path, id, LogKind::Main, 0, 4096).unwrap());
            segments.insert(seg.clone());
            let removed = Arc::new(AtomicBool::new(false));
            let readers: Vec<_> = (0..STRIPES + 2)
                .map(|_| {
                    let (segments, removed) = (segments.clone(), removed.clone());
                    std::thread::spawn(move || {
                        // Reads race the removal (each adds the segment to
                        // this thread's stripe if it finds it); once it is
                        // done, none finds it.
                        while !removed.load(Ordering::Acquire) {
                            drop(segments.get_ref(id));
                        }
                        segments.get_ref(id).is_none()
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_micros(200));
            assert!(segments.remove(id).is_some());
            removed.store(true, Ordering::Release);
            for r in readers {
                assert!(r.join().unwrap(), "segment {id}: a read found it after its removal");
            }
            assert!(segments.get_ref(id).is_none());
            assert_eq!(Arc::strong_count(&seg), 1, "segment {id}: a stripe copy still holds a removed segment");
        }
    }

    #[test]
    fn names_round_trip_and_reject_strangers() {
        let p = segment_path(Path::new("/x"), 0x2a);
        assert_eq!(p, Path::new("/x/0000002a.seg"));
        assert_eq!(parse_name("0000002a.seg", "seg"), Some(42));
        assert_eq!(parse_name("0000002a.hint", "seg"), None);
        assert_eq!(parse_name("2a.seg", "seg"), None);
        assert_eq!(parse_name("00000000.seg", "seg"), None);
        assert_eq!(parse_name("0000002g.seg", "seg"), None);
    }
}
