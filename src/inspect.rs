//! Read-only inspection of a cache directory, for tools (`keg dump`, `keg
//! verify`, `keg stats`) and for operators' own scripts.
//!
//! Nothing here writes a byte or takes the directory's lock, so all of it
//! works on a cache that another process has open. Files are read with plain
//! reads (never memory-mapped: a file another process truncates under a
//! mapping would fault), and every structure is decoded with the
//! non-panicking decoders of [`crate::format`]: damaged or truncated files are
//! reported, never trusted.
//!
//! * [`list`] finds the segment files (with their headers and hint files),
//!   the checkpoint and any other files in a directory.
//! * [`SegmentData`] holds one segment file's bytes and walks its records with
//!   [`Records`], which reports damage with its offset and carries on with the
//!   next intact record.
//! * [`Classifier`] tells, against a [`Cache`] opened read-only, whether a
//!   record is the one the index serves ([`Status`]).
//! * [`for_each_live`] walks the live entries of a [`Cache`], for export.
//! * [`check_hint`] checks a hint file against its segment.
//!
//! ```
//! use keg::inspect::{self, Classifier, Item, SegmentData, Status};
//! let dir = tempfile::tempdir().unwrap();
//! // (Without background maintenance, a clean close leaves the overwritten
//! // value on disk; with it, close compacts that segment away.)
//! let cache = keg::Cache::builder().background_maintenance(false).open(dir.path()).unwrap();
//! cache.set(b"k", b"old", None).unwrap();
//! cache.set(b"k", b"new", None).unwrap();
//! cache.close().unwrap();
//!
//! let reader = keg::Cache::builder().open_read_only(dir.path()).unwrap();
//! let classifier = Classifier::new(&reader);
//! let mut seen = Vec::new();
//! for file in inspect::list(dir.path()).unwrap().segments {
//!     let data = SegmentData::read(&file.path).unwrap();
//!     for item in data.records() {
//!         if let Item::Record { offset, record } = item {
//!             seen.push((record.value.to_vec(), classifier.classify(file.id, offset, &record)));
//!         }
//!     }
//! }
//! assert_eq!(seen, vec![(b"old".to_vec(), Status::Shadowed), (b"new".to_vec(), Status::Live)]);
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::engine::expired;
use crate::format::hint::{self, HintHeader};
use crate::format::record::{self, Header, Kind, Record};
use crate::format::segment::{self, LogKind, SegmentHeader};
use crate::format::DecodeError;
use crate::hash::XXH3_ID;
use crate::lock::LOCK_FILE;
use crate::log::checkpoint::CHECKPOINT_FILE;
use crate::log::scan::{self, End, Scanner};
use crate::log::{hint_path, parse_name};
use crate::Cache;

/// The files of a cache directory, as [`list`] finds them.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// keg::Cache::open(dir.path()).unwrap().set(b"k", b"v", None).unwrap();
/// let files = keg::inspect::list(dir.path()).unwrap();
/// assert_eq!(files.segments.len(), 1);
/// assert!(files.checkpoint.is_some());
/// assert!(files.orphan_hints.is_empty() && files.other.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheFiles {
    /// Segment files (`<8 hex digits>.seg`), lowest id first.
    pub segments: Vec<SegmentFile>,
    /// Hint files whose segment file does not exist (a writer's open removes them).
    pub orphan_hints: Vec<PathBuf>,
    /// The `checkpoint` file, when there is one.
    pub checkpoint: Option<PathBuf>,
    /// Every other file except `LOCK` and the `KEG` marker: leftover `*.tmp` files, strangers.
    pub other: Vec<PathBuf>,
}

/// One segment file of a cache directory.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// keg::Cache::open(dir.path()).unwrap().set(b"k", b"v", None).unwrap();
/// let seg = &keg::inspect::list(dir.path()).unwrap().segments[0];
/// assert_eq!(seg.id, 1);
/// assert!(seg.path.ends_with("00000001.seg"));
/// assert_eq!(seg.header.as_ref().unwrap().id, 1);
/// assert_eq!(seg.len, 32 + 28 + 2); // header, then one record with a 1-byte key and value
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// The id in the file name.
    pub id: u32,
    /// Path of the segment file.
    pub path: PathBuf,
    /// Its size in bytes when listed.
    pub len: u64,
    /// Its decoded header, or why the first 32 bytes are not a valid header.
    pub header: Result<SegmentHeader, DecodeError>,
    /// Path and size of its hint file, when it has one.
    pub hint: Option<(PathBuf, u64)>,
}

/// Lists the files of the cache directory `dir`.
///
/// Reads each segment's 32-byte header. A file that disappears while the
/// directory is listed (another process compacted it away) is left out. Files
/// whose names are not UTF-8 go to [`CacheFiles::other`] only if their name
/// can be shown, otherwise they are skipped.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
/// let files = keg::inspect::list(dir.path()).unwrap();
/// assert!(files.segments.is_empty());
/// assert_eq!(files.other, vec![dir.path().join("notes.txt")]);
/// assert!(keg::inspect::list(dir.path().join("missing")).is_err());
/// ```
pub fn list(dir: impl AsRef<Path>) -> io::Result<CacheFiles> {
    let dir = dir.as_ref();
    let mut out = CacheFiles::default();
    let mut seg_ids = Vec::new();
    let mut hint_ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            out.other.push(entry.path());
            continue;
        };
        if let Some(id) = parse_name(name, "seg") {
            seg_ids.push(id);
        } else if let Some(id) = parse_name(name, "hint") {
            hint_ids.push(id);
        } else if name == CHECKPOINT_FILE {
            out.checkpoint = Some(entry.path());
        } else if ![LOCK_FILE, crate::format::marker::FILE_NAME, crate::storage::FSYNC_FAILED_FILE].contains(&name) {
            out.other.push(entry.path());
        }
    }
    seg_ids.sort_unstable();
    hint_ids.sort_unstable();
    out.other.sort();
    for id in seg_ids {
        let path = crate::log::segment_path(dir, id);
        let (len, header) = match read_head(&path) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let hint = hint_ids.binary_search(&id).ok().and_then(|_| {
            let p = hint_path(dir, id);
            let len = std::fs::metadata(&p).ok()?.len();
            Some((p, len))
        });
        out.segments.push(SegmentFile { id, path, len, header, hint });
    }
    for id in hint_ids {
        if out.segments.binary_search_by_key(&id, |s| s.id).is_err() {
            out.orphan_hints.push(hint_path(dir, id));
        }
    }
    Ok(out)
}

fn read_head(path: &Path) -> io::Result<(u64, Result<SegmentHeader, DecodeError>)> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = Vec::with_capacity(segment::HEADER_LEN);
    file.take(segment::HEADER_LEN as u64).read_to_end(&mut head)?;
    Ok((len, SegmentHeader::decode(&head)))
}

/// Whether a file named `name` in a cache directory is a temporary file keg
/// writes (`checkpoint.tmp`, `KEG.tmp`, `XXXXXXXX.hint.tmp`): the leftover of
/// an interrupted write, which a writer's next open removes. Other `*.tmp`
/// files are not keg's, and keg leaves them alone.
///
/// ```
/// assert!(keg::inspect::is_leftover_tmp("0000002a.hint.tmp"));
/// assert!(!keg::inspect::is_leftover_tmp("notes.tmp"));
/// ```
pub fn is_leftover_tmp(name: &str) -> bool {
    crate::dir::is_keg_tmp(name)
}

/// The segment id in a segment file's name (`0000002a.seg` is 42), if it has one.
///
/// ```
/// use keg::inspect::segment_id;
/// assert_eq!(segment_id("/var/cache/app/0000002a.seg"), Some(42));
/// assert_eq!(segment_id("0000002a.hint"), None);
/// assert_eq!(segment_id("notes.txt"), None);
/// ```
pub fn segment_id(path: impl AsRef<Path>) -> Option<u32> {
    parse_name(path.as_ref().file_name()?.to_str()?, "seg")
}

/// The bytes of one segment file, read into memory with plain reads.
///
/// ```
/// use keg::inspect::{self, SegmentData};
/// let dir = tempfile::tempdir().unwrap();
/// keg::Cache::open(dir.path()).unwrap().set(b"k", b"v", None).unwrap();
/// let file = &inspect::list(dir.path()).unwrap().segments[0];
/// let data = SegmentData::read(&file.path).unwrap();
/// assert_eq!(data.len(), file.len);
/// assert_eq!(data.records().count(), 1);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SegmentData {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl SegmentData {
    /// Reads the file at `path`: the bytes it holds when opened (a file that
    /// another process appends to meanwhile is read up to its size at open;
    /// one that shrinks, up to its new end). Allocates at most the file's size.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("00000001.seg");
    /// std::fs::write(&path, b"not a segment").unwrap();
    /// let data = keg::inspect::SegmentData::read(&path).unwrap();
    /// assert_eq!(data.bytes(), b"not a segment");
    /// assert!(keg::inspect::SegmentData::read(dir.path().join("absent.seg")).is_err());
    /// ```
    pub fn read(path: impl AsRef<Path>) -> io::Result<SegmentData> {
        let path = path.as_ref();
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let cap = usize::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file too large"))?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(cap)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, format!("cannot allocate {len} bytes")))?;
        file.take(len).read_to_end(&mut bytes)?;
        Ok(SegmentData { path: path.to_owned(), bytes })
    }

    /// Wraps bytes already in memory (for tests and tools that fetched them elsewhere).
    ///
    /// ```
    /// let data = keg::inspect::SegmentData::from_bytes("x.seg", vec![0; 8]);
    /// assert!(data.header().is_err());
    /// assert_eq!(data.records().count(), 0);
    /// ```
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> SegmentData {
        SegmentData { path: path.into(), bytes }
    }

    /// The path the bytes were read from.
    ///
    /// ```
    /// let data = keg::inspect::SegmentData::from_bytes("a/00000001.seg", Vec::new());
    /// assert_eq!(data.path(), std::path::Path::new("a/00000001.seg"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, header included.
    ///
    /// ```
    /// let data = keg::inspect::SegmentData::from_bytes("x.seg", vec![1, 2, 3]);
    /// assert_eq!(data.bytes(), &[1, 2, 3]);
    /// ```
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of bytes read.
    ///
    /// ```
    /// assert_eq!(keg::inspect::SegmentData::from_bytes("x.seg", vec![0; 5]).len(), 5);
    /// ```
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether no bytes were read.
    ///
    /// ```
    /// assert!(keg::inspect::SegmentData::from_bytes("x.seg", Vec::new()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The decoded segment header, or why the first 32 bytes are not one.
    ///
    /// ```
    /// use keg::format::segment::{LogKind, SegmentHeader};
    /// let h = SegmentHeader { log: LogKind::Main, id: 3, created_ms: 0 };
    /// let data = keg::inspect::SegmentData::from_bytes("00000003.seg", h.encode().to_vec());
    /// assert_eq!(data.header().unwrap(), h);
    /// ```
    pub fn header(&self) -> Result<SegmentHeader, DecodeError> {
        SegmentHeader::decode(&self.bytes)
    }

    /// The records after the header, in file order (see [`records`]).
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut bytes = vec![0u8; 32]; // the records do not depend on the header
    /// record::encode(&mut bytes, Kind::Value, 1, 0, b"k", b"v").unwrap();
    /// let data = keg::inspect::SegmentData::from_bytes("x.seg", bytes);
    /// assert_eq!(data.records().map(|i| i.offset()).collect::<Vec<_>>(), vec![32]);
    /// ```
    pub fn records(&self) -> Records<'_> {
        records(&self.bytes)
    }
}

impl fmt::Debug for SegmentData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentData").field("path", &self.path).field("len", &self.bytes.len()).finish()
    }
}

/// Walks the records in `segment`, the bytes of a whole segment file (the
/// records start after the 32-byte header, whatever the header holds).
///
/// ```
/// use keg::format::record::{self, Kind};
/// use keg::inspect::{records, Item};
/// let mut bytes = vec![0u8; 32];
/// record::encode(&mut bytes, Kind::Value, 1, 0, b"a", b"1").unwrap();
/// record::encode(&mut bytes, Kind::Tombstone, 2, 0, b"a", b"").unwrap();
/// let kinds: Vec<_> = records(&bytes)
///     .map(|item| match item {
///         Item::Record { record, .. } => record.kind,
///         _ => unreachable!(),
///     })
///     .collect();
/// assert_eq!(kinds, vec![Kind::Value, Kind::Tombstone]);
/// ```
pub fn records(segment: &[u8]) -> Records<'_> {
    Records { bytes: segment, scanner: Scanner::new(segment) }
}

/// One step of [`Records`]: an intact record, an intact record this version
/// does not understand, or a damaged stretch.
///
/// ```
/// use keg::format::record::{self, Kind};
/// use keg::inspect::{records, Item};
/// let mut bytes = vec![0u8; 32];
/// record::encode(&mut bytes, Kind::Value, 1, 0, b"key", b"value").unwrap();
/// bytes[44] ^= 0xff; // damage the sequence number
/// match records(&bytes).next().unwrap() {
///     Item::Damaged(d) => assert_eq!((d.offset, d.len), (32, bytes.len() as u64 - 32)),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// An intact (checksum-verified) record.
    Record {
        /// Byte offset of the record in the file.
        offset: u64,
        /// The decoded record, borrowing the file's bytes.
        record: Record<'a>,
    },
    /// An intact invalidation record (kind 3: `Cache::invalidate_tag`,
    /// `Cache::drop_namespace`; FORMAT.md 2.3).
    Invalidation {
        /// Byte offset of the record in the file.
        offset: u64,
        /// The decoded record, borrowing the file's bytes.
        invalidation: record::Invalidation<'a>,
    },
    /// A record whose checksum matches but whose kind or flags this version
    /// does not define; the engine steps over it and so does the iterator.
    Other {
        /// Byte offset of the record in the file.
        offset: u64,
        /// Its header, as stored.
        header: Header,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes that do not form an intact record.
    Damaged(Damage),
}

impl Item<'_> {
    /// Byte offset in the file where this item starts.
    ///
    /// ```
    /// use keg::inspect::{Damage, Item};
    /// use keg::format::DecodeError;
    /// let d = Damage { offset: 90, len: 10, error: DecodeError::Invalid("x"), header: None, resumed: false };
    /// assert_eq!(Item::Damaged(d).offset(), 90);
    /// ```
    pub fn offset(&self) -> u64 {
        match self {
            Item::Record { offset, .. } | Item::Invalidation { offset, .. } | Item::Other { offset, .. } => *offset,
            Item::Damaged(d) => d.offset,
        }
    }

    /// Bytes the item spans in the file.
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut bytes = vec![0u8; 32];
    /// record::encode(&mut bytes, Kind::Value, 1, 0, b"k", b"value").unwrap();
    /// assert_eq!(keg::inspect::records(&bytes).next().unwrap().len(), 28 + 1 + 5);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        match self {
            Item::Record { record, .. } => record.len(),
            Item::Invalidation { invalidation, .. } => invalidation.len,
            Item::Other { header, .. } => header.record_len(),
            Item::Damaged(d) => d.len,
        }
    }
}

/// A damaged stretch of a segment file.
///
/// After damage the iterator looks for the next intact record at every later
/// byte (not where the damaged header says its record ends: that length may
/// be the damaged part). Bytes it skips over are reported here, once. A record
/// found this way is intact (its checksum matched), but the engine's own scan
/// stops at the first damage, so it knows such records only if a hint file
/// lists them; and bytes inside a damaged value that happen to form a whole
/// record would be found too.
///
/// ```
/// use keg::format::record::{self, Kind};
/// use keg::inspect::{records, Item};
/// let mut bytes = vec![0u8; 32];
/// record::encode(&mut bytes, Kind::Value, 1, 0, b"a", b"first").unwrap();
/// let second = bytes.len() as u64;
/// record::encode(&mut bytes, Kind::Value, 2, 0, b"b", b"second").unwrap();
/// bytes[62] ^= 1; // a bit of the first value
/// let items: Vec<_> = records(&bytes).collect();
/// let Item::Damaged(d) = &items[0] else { panic!() };
/// assert_eq!((d.offset, d.len, d.resumed), (32, second - 32, true));
/// assert!(matches!(items[1], Item::Record { offset, .. } if offset == second));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file where the damage starts.
    pub offset: u64,
    /// Bytes from `offset` to the next intact record, or to the end of the file.
    pub len: u64,
    /// Why the bytes at `offset` are not a record.
    pub error: DecodeError,
    /// The record header at `offset`, unverified, when at least 28 bytes remain.
    pub header: Option<Header>,
    /// Whether an intact record follows (false: the damage runs to the end of the file).
    pub resumed: bool,
}

/// Iterator over the records of a segment, from [`records`] or
/// [`SegmentData::records`].
///
/// It never panics and never reads outside the slice: every length in a
/// header is checked against the bytes present before it is used. It does not
/// stop at damage: see [`Damage`].
///
/// ```
/// use keg::format::record::{self, Kind};
/// let mut bytes = vec![0u8; 32];
/// record::encode(&mut bytes, Kind::Value, 1, 0, b"k", b"v").unwrap();
/// bytes.truncate(bytes.len() - 1); // a torn tail
/// let mut it = keg::inspect::records(&bytes);
/// assert!(matches!(it.next(), Some(keg::inspect::Item::Damaged(_))));
/// assert!(it.next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    /// The engine's own scan (`crate::log::scan`), restarted after each damaged stretch.
    scanner: Scanner<'a>,
}

impl<'a> Records<'a> {
    /// Where the next item starts (after the last one, the file's length).
    ///
    /// ```
    /// let mut it = keg::inspect::records(&[0u8; 32]);
    /// assert_eq!(it.position(), 32);
    /// assert!(it.next().is_none());
    /// ```
    pub fn position(&self) -> u64 {
        self.scanner.position()
    }

    /// The first offset after `from` where an intact record starts.
    fn resync(&self, from: usize) -> Option<usize> {
        let last = self.bytes.len().checked_sub(record::HEADER_LEN + 1)?;
        (from + 1..=last).find(|&p| intact_at(self.bytes, p))
    }
}

/// Whether an intact value, tombstone or invalidation record starts at `p`.
fn intact_at(bytes: &[u8], p: usize) -> bool {
    let Some(rest) = bytes.get(p..) else { return false };
    let Ok(h) = record::decode_header(rest) else { return false };
    // Cheap field checks first; the checksum only for plausible headers.
    plausible(&h)
        && h.record_len() <= rest.len() as u64
        && (record::decode(rest).is_ok() || record::decode_invalidation(rest).is_ok())
}

/// A header keg could have written: a key, only the flag bits it defines
/// (user flags, tags, namespaced key), and a kind it writes.
fn plausible(h: &Header) -> bool {
    let known = record::FLAG_USER_FLAGS | record::FLAG_TAGS | record::FLAG_NAMESPACED;
    h.key_len != 0
        && h.flags & !known == 0
        && (h.kind_code == 1 || ((h.kind_code == 2 || h.kind_code == 3) && h.value_len == 0))
}

impl<'a> Iterator for Records<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        match self.scanner.next() {
            Some(scan::Item::Record { offset, record }) => Some(Item::Record { offset, record }),
            Some(scan::Item::Invalidation { offset, inv }) => Some(Item::Invalidation { offset, invalidation: inv }),
            Some(scan::Item::Unknown { offset, header, why, .. }) => Some(Item::Other { offset, header, reason: why }),
            None => {
                // The engine's scan stops at damage; the tools' reader looks
                // for the next intact record and goes on from there.
                let Some(End::Bad { offset, error }) = self.scanner.end().cloned() else { return None };
                let header = record::decode_header(&self.bytes[offset as usize..]).ok();
                let next = self.resync(offset as usize);
                let end = next.unwrap_or(self.bytes.len());
                let resumed = next.is_some();
                self.scanner = Scanner::starting_at(self.bytes, end as u64);
                Some(Item::Damaged(Damage { offset, len: end as u64 - offset, error, header, resumed }))
            }
        }
    }
}

/// What the index makes of a record, from [`Classifier::classify`].
///
/// ```
/// use keg::inspect::Status;
/// assert_eq!(Status::Live.as_str(), "live");
/// assert_eq!(Status::Shadowed.to_string(), "shadowed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// The index points at this record, it has not expired and no
    /// invalidation hides it: `get` serves it.
    Live,
    /// The index points at this record but its expiry has passed: `get`
    /// misses, and maintenance will reclaim it.
    Expired,
    /// The index points at this record but an invalidation hides it (its tag
    /// was invalidated or its namespace dropped since it was written): `get`
    /// misses, and maintenance will reclaim it.
    Invalidated,
    /// A value record the index does not point at: overwritten or deleted
    /// later, or discarded by recovery (written after history lost in a crash).
    Shadowed,
    /// A tombstone (a delete). Tombstones are never served; they keep older
    /// values of their key from coming back.
    Tombstone,
    /// The record lies outside what the index covers: in a segment, or past
    /// the end of one, that the cache did not read when it was opened
    /// (appended by a live writer since, or after damage that stopped
    /// recovery's scan).
    Unindexed,
}

impl Status {
    /// Every status, in declaration order.
    ///
    /// ```
    /// assert_eq!(keg::inspect::Status::ALL.len(), 6);
    /// ```
    pub const ALL: [Status; 6] =
        [Status::Live, Status::Expired, Status::Invalidated, Status::Shadowed, Status::Tombstone, Status::Unindexed];

    /// The lower-case name tools print: `live`, `expired`, `invalidated`,
    /// `shadowed`, `tombstone`, `unindexed`.
    ///
    /// ```
    /// assert_eq!(keg::inspect::Status::Unindexed.as_str(), "unindexed");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Live => "live",
            Status::Expired => "expired",
            Status::Invalidated => "invalidated",
            Status::Shadowed => "shadowed",
            Status::Tombstone => "tombstone",
            Status::Unindexed => "unindexed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies records against a cache's index as of one moment.
///
/// Open the cache with [`crate::Builder::open_read_only`] to inspect a
/// directory another process has open.
///
/// ```
/// use std::time::Duration;
/// use keg::inspect::{Classifier, Status};
/// let dir = tempfile::tempdir().unwrap();
/// let clock = keg::ManualClock::new(1_000_000);
/// let cache = keg::Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
/// cache.set(b"k", b"v", Some(Duration::from_secs(60))).unwrap();
/// let data = keg::inspect::SegmentData::read(dir.path().join("00000001.seg")).unwrap();
/// let keg::inspect::Item::Record { offset, record } = data.records().next().unwrap() else { panic!() };
/// assert_eq!(Classifier::new(&cache).classify(1, offset, &record), Status::Live);
/// assert_eq!(Classifier::at(&cache, 1_060_000).classify(1, offset, &record), Status::Expired);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Classifier<'c> {
    cache: &'c Cache,
    now_ms: u64,
}

impl<'c> Classifier<'c> {
    /// A classifier that judges expiry at the cache's current time.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let c = keg::inspect::Classifier::new(&cache);
    /// assert!(c.now_ms() > 1_600_000_000_000);
    /// ```
    pub fn new(cache: &'c Cache) -> Classifier<'c> {
        Classifier { cache, now_ms: cache.now_ms() }
    }

    /// A classifier that judges expiry at `now_ms` (Unix milliseconds).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert_eq!(keg::inspect::Classifier::at(&cache, 42).now_ms(), 42);
    /// ```
    pub fn at(cache: &'c Cache, now_ms: u64) -> Classifier<'c> {
        Classifier { cache, now_ms }
    }

    /// The time expiry is judged at, Unix milliseconds.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().clock(keg::ManualClock::new(7)).open(dir.path()).unwrap();
    /// assert_eq!(keg::inspect::Classifier::new(&cache).now_ms(), 7);
    /// ```
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The status of `record`, found at `offset` in segment `segment_id`.
    ///
    /// ```
    /// use keg::inspect::{Classifier, Item, SegmentData, Status};
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v1", None).unwrap();
    /// cache.set(b"k", b"v2", None).unwrap();
    /// let data = SegmentData::read(dir.path().join("00000001.seg")).unwrap();
    /// let c = Classifier::new(&cache);
    /// let statuses: Vec<_> = data
    ///     .records()
    ///     .map(|item| match item {
    ///         Item::Record { offset, record } => c.classify(1, offset, &record),
    ///         _ => unreachable!(),
    ///     })
    ///     .collect();
    /// assert_eq!(statuses, vec![Status::Shadowed, Status::Live]);
    /// ```
    pub fn classify(&self, segment_id: u32, offset: u64, record: &Record<'_>) -> Status {
        if record.kind == Kind::Tombstone {
            return Status::Tombstone;
        }
        match self.cache.index_points_at(record.key, segment_id, offset) {
            None => Status::Unindexed,
            Some(false) => Status::Shadowed,
            Some(true) if expired(record.header.expires_ms, self.now_ms) => Status::Expired,
            Some(true) if self.cache.inner().invalidated(record) => Status::Invalidated,
            Some(true) => Status::Live,
        }
    }
}

/// One live entry, as [`for_each_live`] hands it over.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// cache.set(b"k", b"v", None).unwrap();
/// keg::inspect::for_each_live(&cache, |e| {
///     assert_eq!((e.segment, e.offset, e.record.key, e.record.value), (1, 32, &b"k"[..], &b"v"[..]));
///     Ok::<(), ()>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LiveEntry<'a> {
    /// The segment holding the record.
    pub segment: u32,
    /// The log that segment belongs to.
    pub log: LogKind,
    /// Byte offset of the record in its segment file.
    pub offset: u64,
    /// The record, checksum-verified; its header carries the expiry (`expires_ms`, 0 for none).
    pub record: Record<'a>,
}

/// What [`for_each_live`] found.
///
/// ```
/// let walk = keg::inspect::LiveWalk::default();
/// assert_eq!(walk.live + walk.expired + walk.unreadable, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveWalk {
    /// Entries handed to the callback.
    pub live: u64,
    /// Index entries whose record has expired (skipped).
    pub expired: u64,
    /// Index entries whose record an invalidation hides
    /// ([`Cache::invalidate_tag`], [`Cache::drop_namespace`]; skipped, as
    /// `get` misses them).
    pub invalidated: u64,
    /// Index entries whose record could not be read or failed its checksum
    /// (skipped; `get` would miss them too). On a cache open for writing with
    /// [`crate::Durability::Buffered`], call [`Cache::flush`] first, or
    /// records still in the write buffer count here.
    pub unreadable: u64,
}

/// Calls `f` with every live entry of `cache` (each key whose value `get`
/// would return now), in index order, stopping at the first error `f`
/// returns.
///
/// Records are read from the cache's own view of its files, so with a cache
/// opened with [`crate::Builder::open_read_only`] this is a consistent
/// snapshot as of the open, even while another process keeps writing and
/// compacting. Meant for read-only opens: on a cache open for writing, writes
/// to keys that share an index shard with the entry being visited wait for `f`.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir().unwrap();
/// let clock = keg::ManualClock::new(1_000_000);
/// let cache = keg::Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
/// cache.set(b"a", b"1", None).unwrap();
/// cache.set(b"b", b"2", Some(Duration::from_secs(5))).unwrap();
/// cache.set(b"c", b"3", None).unwrap();
/// cache.delete(b"c").unwrap();
/// clock.advance(Duration::from_secs(10));
/// let mut keys = Vec::new();
/// let walk = keg::inspect::for_each_live(&cache, |e| {
///     keys.push(e.record.key.to_vec());
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap();
/// assert_eq!(keys, vec![b"a".to_vec()]);
/// assert_eq!((walk.live, walk.expired, walk.unreadable), (1, 1, 0));
/// ```
pub fn for_each_live<E>(cache: &Cache, mut f: impl FnMut(&LiveEntry<'_>) -> Result<(), E>) -> Result<LiveWalk, E> {
    let inner = cache.inner();
    let now = inner.now_ms();
    let mut walk = LiveWalk::default();
    let mut failed = None;
    inner.index.for_each(|e| {
        if failed.is_some() {
            return;
        }
        let Some(seg) = inner.segments.get(e.loc.seg) else {
            walk.unreadable += 1;
            return;
        };
        match seg.read(e.loc.off) {
            Ok(record) if record.kind == Kind::Value => {
                if expired(record.header.expires_ms, now) {
                    walk.expired += 1;
                    return;
                }
                if inner.invalidated(&record) {
                    walk.invalidated += 1;
                    return;
                }
                walk.live += 1;
                let entry = LiveEntry { segment: seg.id, log: seg.log, offset: e.loc.off as u64, record };
                if let Err(err) = f(&entry) {
                    failed = Some(err);
                }
            }
            _ => walk.unreadable += 1,
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(walk),
    }
}

/// Why a hint file is not a faithful description of its segment, from [`check_hint`].
///
/// ```
/// let err = keg::inspect::check_hint(b"short", 1, &[]).unwrap_err();
/// assert!(matches!(err, keg::inspect::HintError::Decode(_)));
/// println!("{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintError {
    /// The hint file itself is damaged (checksum, length, magic, version).
    Decode(DecodeError),
    /// The hint file is intact but disagrees with the segment.
    Mismatch {
        /// Index of the disagreeing entry (`None` for the header).
        entry: Option<u32>,
        /// Segment offset the entry describes (`None` for the header).
        segment_offset: Option<u64>,
        /// What disagrees.
        reason: String,
    },
}

impl fmt::Display for HintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HintError::Decode(e) => write!(f, "damaged hint file: {e}"),
            HintError::Mismatch { entry: None, reason, .. } => {
                write!(f, "hint header disagrees with segment: {reason}")
            }
            HintError::Mismatch { entry: Some(i), segment_offset, reason } => {
                write!(f, "hint entry {i}")?;
                if let Some(off) = segment_offset {
                    write!(f, " (segment offset {off})")?;
                }
                write!(f, " disagrees with segment: {reason}")
            }
        }
    }
}

impl std::error::Error for HintError {}

/// Checks the hint file `hint` against the bytes of segment `segment_id`:
/// its checksums, its segment id, that it covers no more than the file
/// holds, and that each entry matches the record at its offset (length,
/// sequence number, kind, expiry and, for the standard hasher, key hash).
/// Returns the hint's header when everything agrees.
///
/// Recovery trusts an intact, matching hint instead of scanning the segment,
/// so a disagreement here means an open would index the wrong thing.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// cache.set(b"k", b"v", None).unwrap();
/// cache.close().unwrap(); // a clean close writes hint files
/// let hint = std::fs::read(dir.path().join("00000001.hint")).unwrap();
/// let mut seg = std::fs::read(dir.path().join("00000001.seg")).unwrap();
/// assert_eq!(keg::inspect::check_hint(&hint, 1, &seg).unwrap().count, 1);
/// seg[44] ^= 1; // the record's sequence number
/// assert!(keg::inspect::check_hint(&hint, 1, &seg).is_err());
/// ```
pub fn check_hint(hint: &[u8], segment_id: u32, segment: &[u8]) -> Result<HintHeader, HintError> {
    let (header, entries) = hint::decode(hint).map_err(HintError::Decode)?;
    let mismatch = |entry, segment_offset, reason| Err(HintError::Mismatch { entry, segment_offset, reason });
    if header.segment_id != segment_id {
        return mismatch(None, None, format!("hint is for segment {}, not {segment_id}", header.segment_id));
    }
    if header.data_len > segment.len() as u64 {
        return mismatch(
            None,
            None,
            format!("hint covers {} bytes but the segment holds {}", header.data_len, segment.len()),
        );
    }
    let mut off = segment::HEADER_LEN as u64;
    for (i, e) in entries.enumerate() {
        let i = i as u32;
        let rec = match record::decode(&segment[off as usize..]) {
            Ok(r) => r,
            Err(err) => return mismatch(Some(i), Some(off), format!("no intact record there: {err}")),
        };
        // (The key hash is checked when the hint's hasher is the default one.)
        let key_hash = (header.hasher == XXH3_ID).then(|| xxhash_rust::xxh3::xxh3_64(rec.key));
        match e.disagreement(&rec, key_hash) {
            None => off += rec.len(),
            Some(d) => return mismatch(Some(i), Some(off), d.to_string()),
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; segment::HEADER_LEN];
        for (i, (k, v)) in records.iter().enumerate() {
            let kind = if v.is_empty() { Kind::Tombstone } else { Kind::Value };
            record::encode(&mut b, kind, i as u64 + 1, 0, k, v).unwrap();
        }
        b
    }

    #[test]
    fn clean_segment_yields_every_record_then_ends() {
        let b = segment(&[(b"a", b"1"), (b"bb", b""), (b"c", b"333")]);
        let items: Vec<_> = records(&b).collect();
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| matches!(i, Item::Record { .. })));
        assert_eq!(items.iter().map(Item::len).sum::<u64>() + 32, b.len() as u64);
    }

    #[test]
    fn any_bit_flip_or_cut_never_panics_and_accounts_for_every_byte() {
        let good = segment(&[(b"alpha", b"one"), (b"beta", b""), (b"gamma", &[7u8; 40]), (b"d", b"x")]);
        let check = |bytes: &[u8]| {
            let mut total = 32u64;
            let mut last = 0;
            let mut it = records(bytes);
            for item in it.by_ref() {
                assert!(item.offset() >= last);
                assert_eq!(item.offset(), total, "items must tile the file");
                assert!(item.len() > 0);
                last = item.offset();
                total += item.len();
            }
            assert_eq!(total.max(32), (bytes.len() as u64).max(32));
            assert_eq!(it.position(), (bytes.len()).max(32) as u64);
        };
        for bit in 32 * 8..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            check(&bad);
            // A single flipped bit damages exactly one record: every other one is still found.
            let intact = records(&bad).filter(|i| matches!(i, Item::Record { .. })).count();
            assert!(intact >= 3, "bit {bit}: only {intact} intact");
        }
        for cut in 0..good.len() {
            check(&good[..cut]);
        }
    }

    #[test]
    fn damaged_length_field_resyncs_at_next_record() {
        let mut b = segment(&[(b"k1", b"v1"), (b"k2", b"v2"), (b"k3", b"v3")]);
        let second = 32 + 28 + 4;
        b[second + 8] = 0xff; // value_len of the second record: now runs past the end
        let items: Vec<_> = records(&b).collect();
        assert!(matches!(items[0], Item::Record { .. }));
        let Item::Damaged(d) = &items[1] else { panic!("{:?}", items[1]) };
        assert_eq!((d.offset, d.len, d.resumed), (second as u64, 32, true));
        assert!(matches!(d.error, DecodeError::Truncated { .. }));
        assert!(matches!(items[2], Item::Record { offset, .. } if offset == second as u64 + 32));
        assert_eq!(items.len(), 3);
    }

    /// After damage, the search for the next intact record finds records
    /// with flags, tags or a namespaced key, and invalidation records, too.
    #[test]
    fn resync_after_damage_finds_the_records_of_issue_12() {
        let mut b = segment(&[(b"k1", b"v1")]);
        let damaged = b.len();
        record::encode(&mut b, Kind::Value, 2, 0, b"k2", b"v2").unwrap();
        let tags = record::encode_tags(&["t"]).unwrap();
        let tagged = b.len();
        record::encode_full(&mut b, Kind::Value, 3, 0, b"\x01nk", 7, &tags, true, b"v3").unwrap();
        let inv = b.len();
        let key = record::invalidation_key(record::Scope::Tag, b"t");
        record::encode_full(&mut b, Kind::Invalidation, 4, 0, &key, 0, &[], false, b"").unwrap();
        b[damaged + 30] ^= 1; // the second record's key
        let items: Vec<_> = records(&b).collect();
        assert!(matches!(items[0], Item::Record { .. }));
        let Item::Damaged(d) = &items[1] else { panic!("{:?}", items[1]) };
        assert_eq!((d.offset as usize, (d.offset + d.len) as usize), (damaged, tagged));
        let Item::Record { offset, record } = &items[2] else { panic!("{:?}", items[2]) };
        assert_eq!((*offset as usize, record.user_flags, record.namespaced()), (tagged, 7, true));
        assert!(matches!(items[3], Item::Invalidation { offset, .. } if offset as usize == inv));
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn unknown_kind_with_good_checksum_is_other_and_skipped() {
        let mut b = segment(&[(b"k1", b"v1"), (b"k2", b"v2")]);
        b[32 + 6] = 9;
        let sum = crc32fast::hash(&b[36..32 + 32]);
        b[32..36].copy_from_slice(&sum.to_le_bytes());
        let items: Vec<_> = records(&b).collect();
        assert!(matches!(items[0], Item::Other { offset: 32, reason: "unknown record kind", .. }));
        assert!(matches!(items[1], Item::Record { offset: 64, .. }));
    }

    #[test]
    fn check_hint_catches_every_disagreement() {
        let seg = segment(&[(b"k1", b"v1"), (b"k2", b"")]);
        let entries: Vec<_> = records(&seg)
            .map(|i| {
                let Item::Record { record, .. } = i else { panic!() };
                hint::HintEntry {
                    key_hash: xxhash_rust::xxh3::xxh3_64(record.key),
                    seq: record.header.seq,
                    expires_s: 0,
                    len: record.len() as u32,
                    tombstone: record.kind == Kind::Tombstone,
                    dead: false,
                }
            })
            .collect();
        let h = HintHeader { hasher: XXH3_ID, segment_id: 5, data_len: seg.len() as u64, count: 2, durable_seq: 0 };
        assert!(check_hint(&hint::encode(&h, &entries), 5, &seg).is_ok());
        assert!(check_hint(&hint::encode(&h, &entries), 6, &seg).is_err());
        assert!(check_hint(&hint::encode(&h, &entries), 5, &seg[..seg.len() - 1]).is_err());
        let mut wrong = entries.clone();
        wrong[1].key_hash ^= 1;
        let err = check_hint(&hint::encode(&h, &wrong), 5, &seg).unwrap_err();
        assert!(matches!(err, HintError::Mismatch { entry: Some(1), segment_offset: Some(64), .. }), "{err}");
        let mut wrong = entries.clone();
        wrong[0].seq = 9;
        assert!(check_hint(&hint::encode(&h, &wrong), 5, &seg).is_err());
        let mut wrong = entries;
        wrong[0].expires_s = 9;
        assert!(check_hint(&hint::encode(&h, &wrong), 5, &seg).is_err());
    }
}
