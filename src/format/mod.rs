//! The on-disk format: pure encode/decode of every structure keg writes, with no I/O.
//!
//! Each structure lives in its own file and documents its byte layout above its
//! code; `FORMAT.md` at the repository root is the reference that ties them together.
//! All integers are little-endian. All checksums are CRC-32 (IEEE 802.3, the
//! polynomial `crc32fast` implements).
//!
//! | file            | structure                                   |
//! |-----------------|---------------------------------------------|
//! | `segment.rs`    | the 32-byte header at the start of each segment file |
//! | `record.rs`     | one entry record (value or tombstone)      |
//! | `hint.rs`       | the per-segment hint file used for fast open |
//! | `checkpoint.rs` | the `checkpoint` file: durable sequence mark, void ranges, clock mark |
//! | `marker.rs`     | the `KEG` file that marks a directory as a keg cache |
//!
//! A second reader needs nothing else; for example, the first record of a
//! segment file:
//!
//! ```
//! use keg::format::{record, segment};
//! let dir = tempfile::tempdir().unwrap();
//! let cache = keg::Cache::open(dir.path()).unwrap();
//! cache.set(b"k", b"v", None).unwrap();
//! drop(cache);
//! let seg = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path())
//!     .find(|p| p.extension().is_some_and(|e| e == "seg")).unwrap();
//! let bytes = std::fs::read(seg).unwrap();
//! segment::SegmentHeader::decode(&bytes).unwrap();
//! let first = record::decode(&bytes[segment::HEADER_LEN..]).unwrap();
//! assert_eq!((first.key, first.value), (&b"k"[..], &b"v"[..]));
//! ```

pub mod checkpoint;
pub mod hint;
pub mod marker;
pub mod record;
pub mod segment;

/// The version of the hint files this build writes and reads (and of the
/// directory format as a whole).
///
/// ```
/// assert_eq!(keg::format::FORMAT_VERSION, 1);
/// ```
pub const FORMAT_VERSION: u16 = 1;

/// The checkpoint version this build writes: 3, which adds the sequence
/// mark ([`checkpoint::Checkpoint::seq_mark`]; version 2 added the clock
/// anchor, [`checkpoint::ClockAnchor`]). It reads versions 1 to 3; a keg
/// that reads only versions 1 and 2 refuses a version-3 checkpoint with
/// [`DecodeError::UnsupportedVersion`] (it would number records from below
/// the mark, and give a version again).
///
/// ```
/// assert_eq!(keg::format::CHECKPOINT_VERSION, 3);
/// ```
pub const CHECKPOINT_VERSION: u16 = 3;

/// The segment format version this build writes: 2, whose records may carry
/// 32-bit user flags (see [`record::FLAG_USER_FLAGS`]). It reads versions 1
/// and 2; a keg that reads only version 1 refuses a version-2 segment with
/// [`DecodeError::UnsupportedVersion`] instead of skipping its flagged records.
///
/// ```
/// assert_eq!(keg::format::SEGMENT_VERSION, 2);
/// ```
pub const SEGMENT_VERSION: u16 = 2;

/// The oldest segment format version this build reads.
///
/// ```
/// assert!(keg::format::OLDEST_SEGMENT_VERSION <= keg::format::SEGMENT_VERSION);
/// ```
pub const OLDEST_SEGMENT_VERSION: u16 = 1;

/// The highest sequence number keg writes or accepts when it opens a cache.
/// keg would need 2^62 writes to get there, so a larger one in a record,
/// hint or checkpoint whose checksum matched is damage (or a hand-made file),
/// and is treated like a failed checksum. This keeps the arithmetic on
/// sequence numbers (the next one to assign, the search for a hole above the
/// durable mark) far from overflow.
///
/// ```
/// assert_eq!(keg::format::MAX_SEQ, 1 << 62);
/// ```
pub const MAX_SEQ: u64 = 1 << 62;

/// CRC-32 (IEEE) of `bytes`, as `crc32fast::hash` computes it. A hasher
/// made once is copied for each call: `crc32fast::Hasher::new` detects the
/// CPU's features every time (about 35 instructions, a sixth of the checksum
/// of a 100-byte record, which every `get` verifies).
#[inline]
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    static FRESH: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    let mut h = FRESH.get_or_init(crc32fast::Hasher::new).clone();
    h.update(bytes);
    h.finalize()
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Why a structure read from disk was rejected.
///
/// Every decoder in [`crate::format`] returns this instead of panicking, whatever
/// the bytes.
///
/// ```
/// use keg::format::{record, DecodeError};
/// assert!(matches!(record::decode(&[0u8; 3]), Err(DecodeError::Truncated { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes are present than the structure needs (a torn or cut tail).
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes that are present.
        available: u64,
    },
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum read from disk.
        stored: u32,
        /// The checksum of the bytes as they are now.
        computed: u32,
    },
    /// The magic bytes do not belong to this kind of keg file.
    #[error("bad magic bytes: not a keg {what}")]
    BadMagic {
        /// Which structure was expected.
        what: &'static str,
    },
    /// The structure declares a format version this build does not know.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version on disk.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The checksum matched but a field holds a value this version does not define.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_is_crc32_ieee_at_every_length() {
        // The check value of CRC-32/ISO-HDLC, then lengths around the SIMD block sizes.
        assert_eq!(super::crc(b"123456789"), 0xcbf4_3926);
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in [0, 1, 15, 16, 63, 64, 65, 128, 152, 300] {
            assert_eq!(super::crc(&bytes[..len]), crc32fast::hash(&bytes[..len]), "length {len}");
        }
    }
}
