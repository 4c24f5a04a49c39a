//! The hint file: a compact list of a sealed segment's records, for fast open.
//!
//! A hint file `<id>.hint` describes segment `<id>.seg` so that open can build
//! the index without reading values. It is written once, after its segment is
//! sealed and fsynced, and never changes. Header (48 bytes):
//!
//! ```text
//! offset  width  field
//!      0      8  magic        8B 4B 45 47 48 4E 54 0A  ("\x8bKEGHNT\n")
//!      8      2  version      1
//!     10      1  hasher       1 = xxh3-64 (seed 0); 255 = a custom test hasher
//!     11      1  reserved     0
//!     12      4  segment_id
//!     16      8  data_len     segment bytes covered: header plus every listed record
//!     24      4  count        number of entries
//!     28      4  entries_crc  CRC-32 of the entry array
//!     32      8  durable_seq  the checkpoint's durable sequence when written
//!     40      4  reserved     0
//!     44      4  header_crc   CRC-32 of bytes [0, 44)
//! ```
//!
//! Then `count` entries of 24 bytes, one per record, in the segment's order:
//!
//! ```text
//! offset  width  field
//!      0      8  key_hash     the record's key hash
//!      8      8  seq          the record's sequence number
//!     16      4  expires_s    expiry in Unix seconds, rounded up; 0 = never
//!     20      4  len_flags    bits 0..30: record length; bit 30: value already
//!                             shadowed when the hint was written; bit 31: tombstone
//! ```
//!
//! Record offsets are implied: the first record starts at byte 32 of the
//! segment and each next one where the previous ends. A reader rejects the
//! whole hint (and scans the segment instead) when either checksum fails, the
//! segment id differs, the lengths do not add up to `data_len`, or `data_len`
//! exceeds the segment file's length.

use super::record::{Kind, Record};
use super::{crc, u16_at, u32_at, u64_at, DecodeError, FORMAT_VERSION};

/// Magic bytes at the start of a hint file.
pub const MAGIC: [u8; 8] = *b"\x8bKEGHNT\n";
/// Bytes in a hint header.
pub const HEADER_LEN: usize = 48;
/// Bytes per hint entry.
pub const ENTRY_LEN: usize = 24;

const DEAD_BIT: u32 = 1 << 30;
const TOMBSTONE_BIT: u32 = 1 << 31;
const LEN_MASK: u32 = DEAD_BIT - 1;

/// One record as a hint file lists it.
///
/// ```
/// use keg::format::hint::{self, HintEntry, HintHeader};
/// let e = HintEntry { key_hash: 0xfeed, seq: 5, expires_s: 0, len: 40, tombstone: true, dead: false };
/// let h = HintHeader { hasher: 1, segment_id: 1, data_len: 72, count: 1, durable_seq: 5 };
/// let bytes = hint::encode(&h, &[e]);
/// let (_, mut entries) = hint::decode(&bytes).unwrap();
/// assert!(entries.next().unwrap().tombstone);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintEntry {
    /// Hash of the record's key.
    pub key_hash: u64,
    /// The record's sequence number.
    pub seq: u64,
    /// Expiry in Unix seconds, rounded up; 0 for none.
    pub expires_s: u32,
    /// Record length in bytes (header, key and value).
    pub len: u32,
    /// True for a tombstone.
    pub tombstone: bool,
    /// True when the value was already shadowed when the hint was written.
    pub dead: bool,
}

/// Expiry in whole seconds, rounded up, as hint entries and the index keep
/// it (0 = never), from a record's `expires_ms`.
///
/// ```
/// use keg::format::hint::expires_s;
/// assert_eq!((expires_s(0), expires_s(1), expires_s(1000), expires_s(1001)), (0, 1, 1, 2));
/// ```
pub fn expires_s(expires_ms: u64) -> u32 {
    if expires_ms == 0 {
        0
    } else {
        expires_ms.div_ceil(1000).min(u32::MAX as u64 - 1).max(1) as u32
    }
}

impl HintEntry {
    /// The entry that describes `record`, whose key hashes to `key_hash`.
    ///
    /// ```
    /// use keg::format::{hint::HintEntry, record};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, record::Kind::Value, 7, 0, b"k", b"v").unwrap();
    /// let e = HintEntry::of(&record::decode(&buf).unwrap(), 42, false);
    /// assert_eq!((e.key_hash, e.seq, e.len), (42, 7, 30));
    /// ```
    pub fn of(record: &Record<'_>, key_hash: u64, dead: bool) -> HintEntry {
        HintEntry {
            key_hash,
            seq: record.header.seq,
            expires_s: expires_s(record.header.expires_ms),
            len: record.len() as u32,
            tombstone: record.kind == Kind::Tombstone,
            dead,
        }
    }

    /// How this entry fails to describe `record` (the first field that
    /// differs: length, sequence number, kind, expiry, then the key hash when
    /// `key_hash` is given), or `None` if it describes it. The one check of a
    /// hint entry against its record: recovery, reclaim, hint rewriting and
    /// `keg verify` all use it.
    ///
    /// ```
    /// use keg::format::{hint::{Disagreement, HintEntry}, record};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, record::Kind::Value, 7, 0, b"k", b"v").unwrap();
    /// let rec = record::decode(&buf).unwrap();
    /// let mut e = HintEntry::of(&rec, 42, false);
    /// assert_eq!(e.disagreement(&rec, Some(42)), None);
    /// e.seq = 8;
    /// assert_eq!(e.disagreement(&rec, Some(42)), Some(Disagreement::Sequence { hint: 8, record: 7 }));
    /// ```
    pub fn disagreement(&self, record: &Record<'_>, key_hash: Option<u64>) -> Option<Disagreement> {
        let d = if u64::from(self.len) != record.len() {
            Disagreement::Length { hint: self.len, record: record.len() }
        } else if self.seq != record.header.seq {
            Disagreement::Sequence { hint: self.seq, record: record.header.seq }
        } else if self.tombstone != (record.kind == Kind::Tombstone) {
            Disagreement::Kind
        } else if self.expires_s != expires_s(record.header.expires_ms) {
            Disagreement::Expiry { hint_s: self.expires_s, record_ms: record.header.expires_ms }
        } else if key_hash.is_some_and(|h| h != self.key_hash) {
            Disagreement::KeyHash
        } else {
            return None;
        };
        Some(d)
    }

    /// Whether this entry describes `record`, whose key hashes to `key_hash`
    /// (see [`HintEntry::disagreement`]).
    ///
    /// ```
    /// use keg::format::{hint::HintEntry, record};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, record::Kind::Tombstone, 3, 0, b"k", b"").unwrap();
    /// let rec = record::decode(&buf).unwrap();
    /// assert!(HintEntry::of(&rec, 9, false).describes(&rec, 9));
    /// assert!(!HintEntry::of(&rec, 9, false).describes(&rec, 10));
    /// ```
    pub fn describes(&self, record: &Record<'_>, key_hash: u64) -> bool {
        self.disagreement(record, Some(key_hash)).is_none()
    }
}

/// How a hint entry differs from the record at its offset.
///
/// ```
/// let d = keg::format::hint::Disagreement::Length { hint: 40, record: 36 };
/// assert_eq!(d.to_string(), "length 40 in hint, 36 in segment");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    /// The record's length.
    Length {
        /// What the hint says.
        hint: u32,
        /// What the record is.
        record: u64,
    },
    /// The sequence number.
    Sequence {
        /// What the hint says.
        hint: u64,
        /// What the record holds.
        record: u64,
    },
    /// Value or tombstone.
    Kind,
    /// The expiry.
    Expiry {
        /// The hint's, in seconds.
        hint_s: u32,
        /// The record's, in milliseconds.
        record_ms: u64,
    },
    /// The hash of the record's key.
    KeyHash,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disagreement::Length { hint, record } => write!(f, "length {hint} in hint, {record} in segment"),
            Disagreement::Sequence { hint, record } => write!(f, "sequence number {hint} in hint, {record} in segment"),
            Disagreement::Kind => write!(f, "tombstone flag disagrees with the record's kind"),
            Disagreement::Expiry { hint_s, record_ms } => {
                write!(f, "expiry {hint_s} s in hint, {record_ms} ms in segment")
            }
            Disagreement::KeyHash => write!(f, "key hash disagrees with the record's key"),
        }
    }
}

/// The decoded hint header.
///
/// ```
/// use keg::format::hint::{self, HintHeader, HEADER_LEN};
/// let h = HintHeader { hasher: 1, segment_id: 9, data_len: 32, count: 0, durable_seq: 0 };
/// let bytes = hint::encode(&h, &[]);
/// assert_eq!(bytes.len(), HEADER_LEN);
/// assert_eq!(hint::decode(&bytes).unwrap().0.segment_id, 9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintHeader {
    /// Which key hasher produced the hashes.
    pub hasher: u8,
    /// The segment this hint describes.
    pub segment_id: u32,
    /// Segment bytes covered.
    pub data_len: u64,
    /// Number of entries.
    pub count: u32,
    /// The checkpoint's durable sequence number when the hint was written.
    pub durable_seq: u64,
}

/// Encodes a complete hint file.
///
/// ```
/// use keg::format::hint::{self, HintEntry, HintHeader};
/// let e = HintEntry { key_hash: 1, seq: 2, expires_s: 0, len: 40, tombstone: false, dead: false };
/// let h = HintHeader { hasher: 1, segment_id: 3, data_len: 72, count: 1, durable_seq: 0 };
/// let bytes = hint::encode(&h, &[e]);
/// let (h2, entries) = hint::decode(&bytes).unwrap();
/// assert_eq!((h2, entries.collect::<Vec<_>>()), (h, vec![e]));
/// ```
pub fn encode(header: &HintHeader, entries: &[HintEntry]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN + entries.len() * ENTRY_LEN];
    for (i, e) in entries.iter().enumerate() {
        put_entry(&mut out, i, e);
    }
    finish(&mut out, header, entries.len());
    out
}

/// Writes entry number `i` in place into a hint file being built in `out`.
pub(crate) fn put_entry(out: &mut [u8], i: usize, e: &HintEntry) {
    debug_assert!(e.len <= LEN_MASK);
    let mut flags = e.len & LEN_MASK;
    if e.dead {
        flags |= DEAD_BIT;
    }
    if e.tombstone {
        flags |= TOMBSTONE_BIT;
    }
    let c = &mut out[HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN];
    c[0..8].copy_from_slice(&e.key_hash.to_le_bytes());
    c[8..16].copy_from_slice(&e.seq.to_le_bytes());
    c[16..20].copy_from_slice(&e.expires_s.to_le_bytes());
    c[20..24].copy_from_slice(&flags.to_le_bytes());
}

/// Fills in the header of a hint file whose first `count` entries
/// [`put_entry`] wrote into `out`; returns the file's length.
pub(crate) fn finish(out: &mut [u8], header: &HintHeader, count: usize) -> usize {
    let len = HEADER_LEN + count * ENTRY_LEN;
    let entries_crc = crc(&out[HEADER_LEN..len]);
    let h = &mut out[..HEADER_LEN];
    h.fill(0);
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[10] = header.hasher;
    h[12..16].copy_from_slice(&header.segment_id.to_le_bytes());
    h[16..24].copy_from_slice(&header.data_len.to_le_bytes());
    h[24..28].copy_from_slice(&(count as u32).to_le_bytes());
    h[28..32].copy_from_slice(&entries_crc.to_le_bytes());
    h[32..40].copy_from_slice(&header.durable_seq.to_le_bytes());
    let header_crc = crc(&h[0..44]);
    h[44..48].copy_from_slice(&header_crc.to_le_bytes());
    len
}

/// Decodes and verifies a hint file, returning its header and an iterator over its entries.
///
/// Checks both checksums and that the entry lengths add up to `data_len`; the
/// caller checks the segment id, hasher, and `data_len` against the segment file.
///
/// ```
/// use keg::format::{hint, DecodeError};
/// assert!(matches!(hint::decode(&[0u8; 10]), Err(DecodeError::Truncated { .. })));
/// ```
pub fn decode(b: &[u8]) -> Result<(HintHeader, impl Iterator<Item = HintEntry> + '_), DecodeError> {
    let header = decode_header(b)?;
    let body = &b[HEADER_LEN..];
    let needed = header.count as u64 * ENTRY_LEN as u64;
    if body.len() as u64 != needed {
        return Err(DecodeError::Truncated { needed: HEADER_LEN as u64 + needed, available: b.len() as u64 });
    }
    let stored = u32_at(b, 28);
    let computed = crc(body);
    if stored != computed {
        return Err(DecodeError::ChecksumMismatch { stored, computed });
    }
    let entries = body.chunks_exact(ENTRY_LEN).map(decode_entry);
    let mut total = super::segment::HEADER_LEN as u64;
    for e in entries.clone() {
        if !possible(&e) {
            return Err(DecodeError::Invalid("hint entry with an impossible length or flags"));
        }
        total += e.len as u64;
    }
    if total != header.data_len {
        return Err(DecodeError::Invalid("hint entry lengths do not add up to data_len"));
    }
    Ok((header, entries))
}

/// Whether an entry's length and flags are possible (a record is at least a
/// header and a one-byte key; a tombstone is never marked dead).
pub(crate) fn possible(e: &HintEntry) -> bool {
    (e.len as usize) > super::record::HEADER_LEN && !(e.tombstone && e.dead)
}

/// The CRC-32 of the entry array a hint header vouches for.
pub(crate) fn entries_crc(b: &[u8]) -> u32 {
    b.get(28..32).map_or(0, |_| u32_at(b, 28))
}

/// Decodes and verifies the 48 bytes of a hint header (magic, checksum,
/// version); the entries are [`decode`]'s, or the caller's, to check.
pub(crate) fn decode_header(b: &[u8]) -> Result<HintHeader, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { needed: HEADER_LEN as u64, available: b.len() as u64 });
    }
    if b[0..8] != MAGIC {
        return Err(DecodeError::BadMagic { what: "hint file" });
    }
    let stored = u32_at(b, 44);
    let computed = crc(&b[0..44]);
    if stored != computed {
        return Err(DecodeError::ChecksumMismatch { stored, computed });
    }
    let version = u16_at(b, 8);
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    Ok(header_of_decoded(b))
}

/// The entries of a hint file that [`decode`] has accepted, read again
/// without checking anything (open reads each hint several times).
pub(crate) fn entries_of_decoded(b: &[u8]) -> impl Iterator<Item = HintEntry> + '_ {
    b.get(HEADER_LEN..).unwrap_or_default().chunks_exact(ENTRY_LEN).map(decode_entry)
}

/// The header of a hint file that [`decode`] has accepted, read without
/// checking anything again (a default header if `b` is too short for one).
pub(crate) fn header_of_decoded(b: &[u8]) -> HintHeader {
    if b.len() < HEADER_LEN {
        return HintHeader { hasher: 0, segment_id: 0, data_len: 0, count: 0, durable_seq: 0 };
    }
    HintHeader {
        hasher: b[10],
        segment_id: u32_at(b, 12),
        data_len: u64_at(b, 16),
        count: u32_at(b, 24),
        durable_seq: u64_at(b, 32),
    }
}

/// The `data_len` of a hint file that [`decode`] has accepted (where the
/// records it lists end), read without checking anything again.
pub(crate) fn data_len_of_decoded(b: &[u8]) -> u64 {
    b.get(16..24).map_or(0, |_| u64_at(b, 16))
}

/// [`entries_of_decoded`] with each entry's record offset in its segment:
/// the records a hint lists sit back to back from the segment header on.
/// The one walk of a hint's listing (recovery, reclaim and hint rewriting
/// use it).
pub(crate) fn listing(b: &[u8]) -> impl Iterator<Item = (u64, HintEntry)> + '_ {
    entries_of_decoded(b).scan(super::segment::HEADER_LEN as u64, |off, e| {
        let at = *off;
        *off += u64::from(e.len);
        Some((at, e))
    })
}

/// Decodes one entry's 24 bytes (no check: see [`possible`]).
pub(crate) fn decode_entry(c: &[u8]) -> HintEntry {
    let flags = u32_at(c, 20);
    HintEntry {
        key_hash: u64_at(c, 0),
        seq: u64_at(c, 8),
        expires_s: u32_at(c, 16),
        len: flags & LEN_MASK,
        tombstone: flags & TOMBSTONE_BIT != 0,
        dead: flags & DEAD_BIT != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let es = [
            HintEntry { key_hash: 9, seq: 1, expires_s: 5, len: 40, tombstone: false, dead: true },
            HintEntry { key_hash: 8, seq: 2, expires_s: 0, len: 33, tombstone: true, dead: false },
        ];
        encode(&HintHeader { hasher: 1, segment_id: 4, data_len: 32 + 73, count: 2, durable_seq: 1 }, &es)
    }

    #[test]
    fn every_bit_flip_and_cut_is_rejected() {
        let good = sample();
        assert!(decode(&good).is_ok());
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "bit {bit}");
        }
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn header_checksum_covers_all_header_fields() {
        let good = sample();
        for byte in 0..44 {
            let mut bad = good.clone();
            bad[byte] ^= 0x10;
            assert!(decode(&bad).is_err(), "byte {byte}");
        }
    }
}
