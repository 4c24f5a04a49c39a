//! The header at the start of every segment file.
//!
//! ```text
//! offset  width  field
//!      0      8  magic       8B 4B 45 47 53 45 47 0A  ("\x8bKEGSEG\n")
//!      8      2  version     2 (1: written before records could carry user flags; read, never appended to)
//!     10      1  log         0 = probationary log, 1 = main log
//!     11      1  reserved    0
//!     12      4  segment_id  the number in the file name
//!     16      8  created_ms  wall clock (Unix ms) when the segment was created
//!     24      4  crc32       CRC-32 of bytes [0, 24)
//!     28      4  reserved    0
//! ```
//!
//! Records follow from byte 32 ([`HEADER_LEN`]) to the end of the file.

use super::{crc, u16_at, u32_at, u64_at, DecodeError, OLDEST_SEGMENT_VERSION, SEGMENT_VERSION};

/// Bytes in a segment header; the first record starts here.
pub const HEADER_LEN: usize = 32;

/// Magic bytes at the start of a segment file.
pub const MAGIC: [u8; 8] = *b"\x8bKEGSEG\n";

/// Which of the two logs a segment belongs to.
///
/// New keys land in the short probationary log; keys that prove popular move
/// to the main log (see `src/maintain/`).
///
/// ```
/// use keg::format::segment::LogKind;
/// assert_eq!(LogKind::ALL.map(LogKind::name), ["probation", "main"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// The small probationary log where new keys land.
    Probation,
    /// The main log.
    Main,
}

impl LogKind {
    /// Both logs, in a fixed order usable as an array index.
    pub const ALL: [LogKind; 2] = [LogKind::Probation, LogKind::Main];

    /// This log's position in [`LogKind::ALL`].
    ///
    /// ```
    /// use keg::format::segment::LogKind;
    /// assert!(LogKind::ALL.iter().enumerate().all(|(i, log)| log.index() == i));
    /// ```
    pub fn index(self) -> usize {
        match self {
            LogKind::Probation => 0,
            LogKind::Main => 1,
        }
    }

    /// A short name for tools and logs.
    ///
    /// ```
    /// assert_eq!(keg::format::segment::LogKind::Main.name(), "main");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Probation => "probation",
            LogKind::Main => "main",
        }
    }
}

/// A decoded segment header.
///
/// ```
/// use keg::format::segment::{SegmentHeader, LogKind, HEADER_LEN};
/// let bytes = SegmentHeader { log: LogKind::Probation, id: 12, created_ms: 1_700_000_000_000 }.encode();
/// assert_eq!(bytes.len(), HEADER_LEN);
/// assert_eq!(SegmentHeader::decode(&bytes).unwrap().id, 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Which log the segment belongs to.
    pub log: LogKind,
    /// The segment's id (also in its file name).
    pub id: u32,
    /// Unix milliseconds at creation; feeds the clock high-water mark.
    pub created_ms: u64,
}

impl SegmentHeader {
    /// Encodes the header.
    ///
    /// ```
    /// use keg::format::segment::{SegmentHeader, LogKind};
    /// let h = SegmentHeader { log: LogKind::Main, id: 7, created_ms: 1 };
    /// assert_eq!(SegmentHeader::decode(&h.encode()).unwrap(), h);
    /// ```
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b[10] = self.log.index() as u8;
        b[12..16].copy_from_slice(&self.id.to_le_bytes());
        b[16..24].copy_from_slice(&self.created_ms.to_le_bytes());
        let sum = crc(&b[0..24]);
        b[24..28].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and checks a header: magic, checksum, then version and fields.
    ///
    /// A foreign file fails with [`DecodeError::BadMagic`]; a keg segment of
    /// another version with [`DecodeError::UnsupportedVersion`], which callers
    /// must treat as "refuse", never as damage.
    ///
    /// ```
    /// use keg::format::{segment::SegmentHeader, DecodeError};
    /// assert!(matches!(SegmentHeader::decode(b"hello, world, this is not keg!!!"),
    ///                  Err(DecodeError::BadMagic { .. })));
    /// ```
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, DecodeError> {
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated { needed: HEADER_LEN as u64, available: b.len() as u64 });
        }
        if b[0..8] != MAGIC {
            return Err(DecodeError::BadMagic { what: "segment" });
        }
        let stored = u32_at(b, 24);
        let computed = crc(&b[0..24]);
        if stored != computed {
            return Err(DecodeError::ChecksumMismatch { stored, computed });
        }
        let version = u16_at(b, 8);
        if !(OLDEST_SEGMENT_VERSION..=SEGMENT_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion { found: version, supported: SEGMENT_VERSION });
        }
        let log = match b[10] {
            0 => LogKind::Probation,
            1 => LogKind::Main,
            _ => return Err(DecodeError::Invalid("unknown log kind in segment header")),
        };
        Ok(SegmentHeader { log, id: u32_at(b, 12), created_ms: u64_at(b, 16) })
    }
}

/// The version field of a segment header's bytes (unchecked: call it on a
/// header that [`SegmentHeader::decode`] accepted).
///
/// ```
/// use keg::format::segment::{self, LogKind, SegmentHeader};
/// let b = SegmentHeader { log: LogKind::Main, id: 1, created_ms: 0 }.encode();
/// assert_eq!(segment::version(&b), Some(keg::format::SEGMENT_VERSION));
/// ```
pub fn version(b: &[u8]) -> Option<u16> {
    (b.len() >= 10).then(|| u16_at(b, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bit_flip_is_rejected() {
        let h = SegmentHeader { log: LogKind::Probation, id: 0xdead, created_ms: 1_700_000_000_000 };
        let good = h.encode();
        for bit in 0..24 * 8 {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&bad).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn future_version_is_unsupported_not_corrupt() {
        let mut b = SegmentHeader { log: LogKind::Main, id: 1, created_ms: 0 }.encode();
        b[8] = 3;
        let sum = crc(&b[0..24]);
        b[24..28].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&b), Err(DecodeError::UnsupportedVersion { found: 3, supported: 2 }));
    }

    #[test]
    fn version_1_segments_still_decode() {
        let h = SegmentHeader { log: LogKind::Main, id: 7, created_ms: 5 };
        let mut b = h.encode();
        assert_eq!(version(&b), Some(2));
        b[8] = 1;
        let sum = crc(&b[0..24]);
        b[24..28].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(version(&b), Some(1));
    }
}
