//! The `checkpoint` file: how far the log is known to be durable.
//!
//! ```text
//! offset  width  field
//!      0      8  magic        8B 4B 45 47 43 4B 50 0A  ("\x8bKEGCKP\n")
//!      8      2  version      1
//!     10      2  void_count   number of void ranges, 0 ..= 64
//!     12      4  reserved     0
//!     16      8  durable_seq  every record with seq <= this is durable on disk
//!     24      8  clock_ms     clock mark: no time (Unix ms) the cache has used is later
//!     32   16*n  void ranges  (first u64, last u64), inclusive sequence ranges
//!                             whose records must be ignored
//!      …      4  crc32        CRC-32 of every preceding byte
//! ```
//!
//! The file is replaced atomically: written to `checkpoint.tmp`, fsynced,
//! renamed over `checkpoint`, and the directory fsynced.

use super::{crc, u16_at, u32_at, u64_at, DecodeError, FORMAT_VERSION};

/// Magic bytes at the start of the checkpoint file.
pub const MAGIC: [u8; 8] = *b"\x8bKEGCKP\n";
/// Most void ranges a checkpoint holds.
pub const MAX_VOID_RANGES: usize = 64;

/// The decoded checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every record with a sequence number up to this one is durable.
    pub durable_seq: u64,
    /// The clock mark, Unix ms: no time the cache has used is later (FORMAT.md, section 6).
    pub clock_ms: u64,
    /// Inclusive sequence ranges whose records recovery discarded (lost history after a crash).
    pub void_ranges: Vec<(u64, u64)>,
}

impl Checkpoint {
    /// True when `seq` lies in one of the void ranges.
    pub fn is_void(&self, seq: u64) -> bool {
        self.void_ranges.iter().any(|&(a, b)| a <= seq && seq <= b)
    }

    /// Encodes the checkpoint.
    ///
    /// ```
    /// use keg::format::checkpoint::Checkpoint;
    /// let c = Checkpoint { durable_seq: 10, clock_ms: 5, void_ranges: vec![(3, 4)] };
    /// assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.void_ranges.len() <= MAX_VOID_RANGES);
        let mut b = Vec::with_capacity(36 + 16 * self.void_ranges.len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.void_ranges.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&self.durable_seq.to_le_bytes());
        b.extend_from_slice(&self.clock_ms.to_le_bytes());
        for &(first, last) in &self.void_ranges {
            b.extend_from_slice(&first.to_le_bytes());
            b.extend_from_slice(&last.to_le_bytes());
        }
        let sum = crc(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and verifies a checkpoint file.
    ///
    /// ```
    /// use keg::format::{checkpoint::Checkpoint, DecodeError};
    /// assert!(matches!(Checkpoint::decode(b"short"), Err(DecodeError::Truncated { .. })));
    /// ```
    pub fn decode(b: &[u8]) -> Result<Checkpoint, DecodeError> {
        if b.len() < 36 {
            return Err(DecodeError::Truncated { needed: 36, available: b.len() as u64 });
        }
        if b[0..8] != MAGIC {
            return Err(DecodeError::BadMagic { what: "checkpoint" });
        }
        let n = u16_at(b, 10) as usize;
        let len = 36 + 16 * n;
        if b.len() != len {
            return Err(DecodeError::Truncated { needed: len as u64, available: b.len() as u64 });
        }
        let stored = u32_at(b, len - 4);
        let computed = crc(&b[..len - 4]);
        if stored != computed {
            return Err(DecodeError::ChecksumMismatch { stored, computed });
        }
        let version = u16_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
        }
        if n > MAX_VOID_RANGES {
            return Err(DecodeError::Invalid("too many void ranges"));
        }
        let void_ranges = (0..n).map(|i| (u64_at(b, 32 + 16 * i), u64_at(b, 40 + 16 * i))).collect();
        Ok(Checkpoint { durable_seq: u64_at(b, 16), clock_ms: u64_at(b, 24), void_ranges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_rejected() {
        let good = Checkpoint { durable_seq: 77, clock_ms: 1, void_ranges: vec![(1, 2), (9, 9)] }.encode();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Checkpoint::decode(&bad).is_err(), "bit {bit}");
        }
        for cut in 0..good.len() {
            assert!(Checkpoint::decode(&good[..cut]).is_err());
        }
    }
}
