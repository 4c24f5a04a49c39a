//! Walking a segment's records: [`Scanner`] over the bytes, [`Walk`] over
//! the hint's listing then the bytes after it, and [`Item`], what each kind
//! of record is to the engine.
//!
//! Every reader of segment records goes through here: recovery (open),
//! reclaim (eviction and compaction), hint writing, and `crate::inspect`
//! (the tools' reader, which adds resynchronisation past damage on top of
//! [`Scanner`]). A new record kind is added once, as a variant of [`Item`];
//! the compiler then points at each reader that must say what to do with it.
//! Until a reader is taught, the record is an [`Item::Unknown`], which every
//! reader already handles safely.
//!
//! What each kind of record is, reader by reader:
//!
//! | record | [`Item`] | recovery | reclaim | hint file | inspect |
//! |---|---|---|---|---|---|
//! | value (kind 1) | `Record` | applied: per key the highest sequence number wins | live: kept (copied, new number) or evicted; otherwise dropped, with a tombstone if it may hide an older value | listed (a segment with tagged values gets none) | `Record` |
//! | tombstone (kind 2) | `Record` | applied: a winning tombstone deletes | copied (same number) while an older value it counts may exist, else dropped | listed | `Record` |
//! | invalidation (kind 3) | `Invalidation` | noted in the tag/namespace table; holds its number | copied to main (same number) while an older value may exist in either log | none (the segment is scanned at open) | `Other` |
//! | intact, but not understood (a later version's kind or flags) | `Unknown` | stepped over; holds its number | copied byte for byte to main (same number) while an older value may exist in either log | none | `Other` |
//! | numbered above [`MAX_SEQ`] | ends a [`Walk`] | cut there | cut short there | cut there | `Record`/`Other` (shown as is) |
//! | not intact (checksum, torn) | ends the scan | cut there | cut short there | cut there | `Damaged`, then resynchronised |
//! | zeros to the end of the bytes (a synced segment's preallocated tail) | ends the scan, cleanly ([`End::Zeros`]) | the log ends there (cut, not counted as damage) | — (sealed segments have none) | cut there | the end |

use crate::format::hint::{self, HintEntry};
use crate::format::record::{self, Header, Invalidation, Record};
use crate::format::{segment, DecodeError, MAX_SEQ};

/// One step of a scan: an intact record, by what it is.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    /// An intact value or tombstone record at `offset`.
    Record { offset: u64, record: Record<'a> },
    /// An intact invalidation record (kind 3) at `offset`.
    Invalidation { offset: u64, inv: Invalidation<'a> },
    /// An intact record (its checksum matched) that this version does not
    /// understand; the scan steps over it. `raw` is the whole record.
    Unknown { offset: u64, header: Header, raw: &'a [u8], why: &'static str },
}

impl Item<'_> {
    /// Where the record starts in the segment.
    pub(crate) fn offset(&self) -> u64 {
        match self {
            Item::Record { offset, .. } | Item::Invalidation { offset, .. } | Item::Unknown { offset, .. } => *offset,
        }
    }

    /// The record's sequence number.
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Item::Record { record, .. } => record.header.seq,
            Item::Invalidation { inv, .. } => inv.seq,
            Item::Unknown { header, .. } => header.seq,
        }
    }

    /// Bytes the record takes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Item::Record { record, .. } => record.len(),
            Item::Invalidation { inv, .. } => inv.len,
            Item::Unknown { raw, .. } => raw.len() as u64,
        }
    }
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The bytes ended exactly after the last record.
    Clean,
    /// Every byte from `offset` to the end is zero: the preallocated tail of
    /// a segment written in synced mode (FORMAT.md 2.8). The log ends at
    /// `offset` as cleanly as at the end of the bytes: no record is all
    /// zeros (its key length is at least 1), and a record torn while it was
    /// written into zeros is not all zeros either, so it ends the scan as
    /// [`End::Bad`].
    Zeros { offset: u64 },
    /// Bytes after `offset` do not form a record: a torn tail or damage.
    Bad { offset: u64, error: DecodeError },
}

/// Iterates over the records in `bytes`, a whole segment including its header.
///
/// Stops at the first record that does not decode; [`Scanner::end`] then says
/// why. It never reads past `bytes` and never resynchronises past damage: bytes
/// after a bad record could be the inside of a value, so only a hint file (which
/// lists record offsets under its own checksum) may reach beyond it.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: u64,
    end: Option<End>,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Scanner<'a> {
        Scanner::starting_at(bytes, segment::HEADER_LEN as u64)
    }

    /// A scanner whose first record starts at `pos` (a record boundary).
    pub(crate) fn starting_at(bytes: &'a [u8], pos: u64) -> Scanner<'a> {
        Scanner { bytes, pos, end: None }
    }

    /// Where the next record would start: after a scan, the valid length.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Why the scan stopped (None until it has).
    pub(crate) fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.end.is_some() {
            return None;
        }
        let rest = self.bytes.get(self.pos as usize..).unwrap_or(&[]);
        if rest.is_empty() {
            self.end = Some(End::Clean);
            return None;
        }
        let offset = self.pos;
        if rest[0] == 0 && rest.iter().all(|&b| b == 0) {
            self.end = Some(End::Zeros { offset });
            return None;
        }
        match record::decode(rest) {
            Ok(record) => {
                self.pos += record.len();
                Some(Item::Record { offset, record })
            }
            Err(DecodeError::Invalid(why)) => {
                // The checksum matched, so the header's lengths are the
                // writer's and lie within `rest` (`decode` checked both).
                let Ok(header) = record::decode_header(rest) else {
                    self.end = Some(End::Bad { offset, error: DecodeError::Invalid(why) });
                    return None;
                };
                let raw = &rest[..header.record_len() as usize];
                self.pos += header.record_len();
                match record::decode_invalidation(raw) {
                    Ok(inv) => Some(Item::Invalidation { offset, inv }),
                    Err(_) => Some(Item::Unknown { offset, header, raw, why }),
                }
            }
            Err(error) => {
                self.end = Some(End::Bad { offset, error });
                None
            }
        }
    }
}

/// One step of a [`Walk`].
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A record the segment's hint file lists at `offset` (its bytes not read).
    Listed { offset: u64, entry: HintEntry },
    /// A record read from the bytes after what the hint covers (or from the
    /// whole segment, without a hint).
    Scanned(Item<'a>),
}

/// A segment's records as the engine reads them: the entries of its hint
/// file for the bytes the hint covers (its `data_len`), then the records
/// scanned after them (appended since the hint was written, or all of them
/// without a hint).
///
/// The scan ends at the first record that does not decode, and at the first
/// numbered above [`MAX_SEQ`] (damage whose checksum happened to match, or
/// a hand-made file: no writer hands out such a number); [`Walk::valid_len`]
/// then says where. The hint must be one [`hint::decode`] accepted for this
/// segment (`crate::log::hints::load` checks that), so that its entries'
/// lengths add up to where the scan starts.
pub(crate) struct Walk<'a> {
    listing: Option<Box<dyn Iterator<Item = (u64, HintEntry)> + 'a>>,
    scanner: Scanner<'a>,
    /// Where a record numbered above [`MAX_SEQ`] stopped the scan.
    cut: Option<u64>,
}

impl<'a> Walk<'a> {
    /// The records of `bytes` (a whole segment), through `hint` if given.
    pub(crate) fn new(bytes: &'a [u8], hint: Option<&'a [u8]>) -> Walk<'a> {
        let from = hint.map_or(segment::HEADER_LEN as u64, hint_data_len);
        let listing = hint.map(|h| Box::new(hint::listing(h)) as Box<dyn Iterator<Item = (u64, HintEntry)> + 'a>);
        Walk { listing, scanner: Scanner::starting_at(bytes, from), cut: None }
    }

    /// The same walk with the hint's listing skipped: only the records
    /// scanned after what `hint` covers (recovery keeps the listing as the
    /// hint's bytes, which it reads several times).
    #[cfg(test)]
    pub(crate) fn after_hint(bytes: &'a [u8], hint: &'a [u8]) -> Walk<'a> {
        Walk::after_listing(bytes, hint_data_len(hint))
    }

    /// The walk of the records after the first `data_len` bytes of the
    /// segment, which a hint file lists (recovery streams the hint itself).
    pub(crate) fn after_listing(bytes: &'a [u8], data_len: u64) -> Walk<'a> {
        let from = data_len.max(segment::HEADER_LEN as u64);
        Walk { listing: None, scanner: Scanner::starting_at(bytes, from), cut: None }
    }

    /// Where the walk stopped, once it has: the end of the last record taken
    /// (the segment's valid length).
    pub(crate) fn valid_len(&self) -> u64 {
        self.cut.unwrap_or(self.scanner.position())
    }

    /// Whether the scan stopped before the end of the bytes (damage, a torn
    /// tail, or a number above [`MAX_SEQ`]). A zero tail is not cut short.
    pub(crate) fn cut_short(&self) -> bool {
        self.cut.is_some() || matches!(self.scanner.end(), Some(End::Bad { .. }))
    }
}

/// The `data_len` of a hint file `hint::decode` accepted.
fn hint_data_len(hint: &[u8]) -> u64 {
    hint::data_len_of_decoded(hint).max(segment::HEADER_LEN as u64)
}

impl<'a> Iterator for Walk<'a> {
    type Item = Step<'a>;

    fn next(&mut self) -> Option<Step<'a>> {
        if let Some(listing) = &mut self.listing {
            match listing.next() {
                Some((offset, entry)) => return Some(Step::Listed { offset, entry }),
                None => self.listing = None,
            }
        }
        if self.cut.is_some() {
            return None;
        }
        let item = self.scanner.next()?;
        if item.seq() > MAX_SEQ {
            self.cut = Some(item.offset());
            return None;
        }
        Some(Step::Scanned(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::Kind;

    fn segment_bytes(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; segment::HEADER_LEN];
        for (i, (k, v)) in records.iter().enumerate() {
            record::encode(&mut b, Kind::Value, i as u64 + 1, 0, k, v).unwrap();
        }
        b
    }

    #[test]
    fn scans_all_then_ends_clean() {
        let b = segment_bytes(&[(b"a", b"1"), (b"bb", b"22")]);
        let mut s = Scanner::new(&b);
        assert_eq!(s.by_ref().count(), 2);
        assert_eq!(s.end(), Some(&End::Clean));
        assert_eq!(s.position(), b.len() as u64);
    }

    #[test]
    fn torn_tail_stops_at_last_good_record() {
        let b = segment_bytes(&[(b"a", b"1"), (b"bb", b"22")]);
        for cut in segment::HEADER_LEN + 1..b.len() {
            let mut s = Scanner::new(&b[..cut]);
            let n = s.by_ref().count();
            let boundary = (segment::HEADER_LEN + record::HEADER_LEN + 2) as u64;
            assert_eq!(n, if cut as u64 >= boundary { 1 } else { 0 });
            if cut as u64 == boundary {
                assert_eq!(s.end(), Some(&End::Clean));
            } else {
                assert!(matches!(s.end(), Some(End::Bad { .. })), "cut {cut}");
            }
        }
    }

    #[test]
    fn a_zero_tail_ends_the_scan_cleanly_and_a_record_torn_into_it_does_not() {
        let b = segment_bytes(&[(b"a", b"1"), (b"bb", b"22")]);
        let end = b.len() as u64;
        let mut z = b.clone();
        z.resize(b.len() + 4096, 0);
        let mut s = Scanner::new(&z);
        assert_eq!(s.by_ref().count(), 2);
        assert_eq!((s.end(), s.position()), (Some(&End::Zeros { offset: end }), end));
        let mut walk = Walk::new(&z, None);
        assert_eq!(walk.by_ref().count(), 2);
        assert_eq!((walk.valid_len(), walk.cut_short()), (end, false));
        // A segment that is all zeros after its header holds no record.
        let mut empty = vec![0u8; segment::HEADER_LEN + 100];
        empty[0] = 1;
        let mut s = Scanner::new(&empty);
        assert_eq!(s.by_ref().count(), 0);
        assert_eq!(s.end(), Some(&End::Zeros { offset: segment::HEADER_LEN as u64 }));
        // A third record written into the zeros and torn anywhere: a cut
        // that keeps any of its bytes (its prefix, or a later part with
        // zeros before it) is damage, never a clean end and never a record.
        let mut whole = b.clone();
        record::encode(&mut whole, Kind::Value, 9, 0, b"ccc", b"333").unwrap();
        let rec_len = whole.len() - b.len();
        for keep in 1..rec_len {
            for suffix in [false, true] {
                let mut t = z.clone();
                let (from, to) =
                    if suffix { (b.len() + rec_len - keep, b.len() + rec_len) } else { (b.len(), b.len() + keep) };
                t[from..to].copy_from_slice(&whole[from..to]);
                if t[b.len()..].iter().all(|&x| x == 0) {
                    continue; // the kept bytes happen to be zeros
                }
                let mut s = Scanner::new(&t);
                assert_eq!(s.by_ref().count(), 2, "keep {keep} suffix {suffix}");
                assert!(
                    matches!(s.end(), Some(End::Bad { offset, .. }) if *offset == end),
                    "keep {keep} suffix {suffix}"
                );
            }
        }
        // The whole third record, then zeros: three records, a clean end.
        let mut t = z.clone();
        t[b.len()..b.len() + rec_len].copy_from_slice(&whole[b.len()..]);
        let mut s = Scanner::new(&t);
        assert_eq!(s.by_ref().count(), 3);
        assert_eq!(s.end(), Some(&End::Zeros { offset: (b.len() + rec_len) as u64 }));
    }

    #[test]
    fn each_kind_is_its_own_item() {
        let mut b = segment_bytes(&[(b"a", b"1")]);
        let inv_at = b.len();
        let key = record::invalidation_key(record::Scope::Tag, b"t");
        record::encode_full(&mut b, Kind::Invalidation, 2, 0, &key, 0, &[], false, b"").unwrap();
        let unknown_at = b.len();
        record::encode(&mut b, Kind::Tombstone, 3, 0, b"z", b"").unwrap();
        b[unknown_at + 6] = 9; // an unknown kind, its checksum fixed
        let sum = crc32fast::hash(&b[unknown_at + 4..]);
        b[unknown_at..unknown_at + 4].copy_from_slice(&sum.to_le_bytes());
        let items: Vec<_> = Scanner::new(&b).collect();
        assert!(matches!(&items[0], Item::Record { offset: 32, .. }));
        assert!(
            matches!(&items[1], Item::Invalidation { offset, inv } if *offset == inv_at as u64 && inv.name == b"t")
        );
        let Item::Unknown { offset, header, raw, .. } = &items[2] else { panic!("{:?}", items[2]) };
        assert_eq!((*offset, header.seq, *raw), (unknown_at as u64, 3, &b[unknown_at..]));
        assert_eq!(items.iter().map(Item::seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(items.iter().map(Item::len).sum::<u64>(), (b.len() - segment::HEADER_LEN) as u64);
    }

    #[test]
    fn a_walk_lists_the_hint_then_scans_the_tail() {
        let b = segment_bytes(&[(b"a", b"1"), (b"bb", b"22"), (b"c", b"3")]);
        let entries: Vec<HintEntry> = Scanner::new(&b)
            .take(2)
            .map(|i| match i {
                Item::Record { record, .. } => HintEntry::of(&record, 7, false),
                other => panic!("{other:?}"),
            })
            .collect();
        let covered = segment::HEADER_LEN as u64 + entries.iter().map(|e| e.len as u64).sum::<u64>();
        let header = hint::HintHeader { hasher: 1, segment_id: 1, data_len: covered, count: 2, durable_seq: 0 };
        let h = hint::encode(&header, &entries);
        let mut walk = Walk::new(&b, Some(&h));
        let steps: Vec<_> = walk.by_ref().collect();
        assert!(matches!(steps[0], Step::Listed { offset: 32, .. }));
        assert!(matches!(steps[1], Step::Listed { offset: 62, .. }));
        assert!(matches!(&steps[2], Step::Scanned(Item::Record { offset, .. }) if *offset == covered));
        assert_eq!(steps.len(), 3);
        assert_eq!((walk.valid_len(), walk.cut_short()), (b.len() as u64, false));
        // Skipping the listing leaves the scanned tail.
        let tail: Vec<_> = Walk::after_hint(&b, &h).collect();
        assert!(matches!(&tail[..], [Step::Scanned(Item::Record { offset, .. })] if *offset == covered));
    }

    #[test]
    fn a_walk_stops_at_a_number_above_max_seq_and_at_damage() {
        let mut b = segment_bytes(&[(b"a", b"1")]);
        let at = b.len();
        record::encode(&mut b, Kind::Value, MAX_SEQ + 1, 0, b"b", b"2").unwrap();
        record::encode(&mut b, Kind::Value, 3, 0, b"c", b"3").unwrap();
        let mut walk = Walk::new(&b, None);
        assert_eq!(walk.by_ref().count(), 1);
        assert_eq!((walk.valid_len(), walk.cut_short()), (at as u64, true));
        // The scanner alone (the tools' reader) shows the record as it is.
        assert_eq!(Scanner::new(&b).count(), 3);
        let mut walk = Walk::new(&b[..b.len() - 1], None);
        assert_eq!(walk.by_ref().count(), 1);
        assert!(walk.cut_short());
        let mut walk = Walk::new(&b[..at], None);
        assert_eq!(walk.by_ref().count(), 1);
        assert_eq!((walk.valid_len(), walk.cut_short()), (at as u64, false));
    }
}
