//! The `checkpoint` file: how far the log is known to be durable, and how
//! far the cache's time has gone.
//!
//! ```text
//! offset  width  field
//!      0      8  magic        8B 4B 45 47 43 4B 50 0A  ("\x8bKEGCKP\n")
//!      8      2  version      3 (2: no sequence mark, void ranges at 72;
//!                             1: no clock anchor either, void ranges at 32)
//!     10      2  void_count   number of void ranges, 0 ..= 64
//!     12      4  reserved     0
//!     16      8  durable_seq  every record with seq <= this is durable on disk
//!     24      8  clock_ms     clock mark: no time (Unix ms) the cache has used is later
//!     32      8  held_ms      clock anchor (all four 0: none): no time used before
//!                             the write is later
//!     40      8  wall_ms        the wall clock at the write (Unix ms)
//!     48      8  boot_ms        time since boot at the write (ms)
//!     56     16  boot_id        names that boot; never 0 in an anchor
//!     72      8  seq_mark     sequence mark: no sequence number the cache has used
//!                             (or will use before it writes a higher mark) is larger
//!     80   16*n  void ranges  (first u64, last u64), inclusive sequence ranges
//!                             whose records must be ignored
//!      …      4  crc32        CRC-32 of every preceding byte
//! ```
//!
//! The file is replaced atomically: written to `checkpoint.tmp`, fsynced,
//! renamed over `checkpoint`, and the directory fsynced.

use super::{crc, u16_at, u32_at, u64_at, DecodeError, CHECKPOINT_VERSION};

/// Magic bytes at the start of the checkpoint file.
pub const MAGIC: [u8; 8] = *b"\x8bKEGCKP\n";
/// Most void ranges a checkpoint holds.
pub const MAX_VOID_RANGES: usize = 64;
/// Fixed part of a version-3 checkpoint, before the void ranges.
///
/// ```
/// use keg::format::checkpoint::{Checkpoint, HEADER_LEN};
/// assert_eq!(Checkpoint::default().encode().len(), HEADER_LEN + 4);
/// ```
pub const HEADER_LEN: usize = 80;
/// Fixed part of a version-2 checkpoint (no sequence mark), before the void ranges.
///
/// ```
/// assert_eq!(keg::format::checkpoint::HEADER_LEN_V2, 72);
/// ```
pub const HEADER_LEN_V2: usize = 72;
/// Fixed part of a version-1 checkpoint (no clock anchor), before the void ranges.
///
/// ```
/// assert_eq!(keg::format::checkpoint::HEADER_LEN_V1, 32);
/// ```
pub const HEADER_LEN_V1: usize = 32;

/// How many sequence numbers one sequence mark reserves: a writable cache
/// writes a new checkpoint (fsynced, with its directory) once per this many
/// records, before the first record numbered above the mark on disk. An
/// open after a crash starts above the mark, so each crash skips at most
/// this many numbers: 2^62 / 2^20 = 2^42 crashes before the numbers run out
/// (one a second for 139,000 years).
///
/// ```
/// use keg::format::checkpoint::{seq_mark_for, SEQ_RESERVATION};
/// assert_eq!(SEQ_RESERVATION, 1 << 20);
/// assert_eq!(seq_mark_for(1), SEQ_RESERVATION);
/// ```
pub const SEQ_RESERVATION: u64 = 1 << 20;

/// The sequence mark that reserves `next_seq` and the
/// [`SEQ_RESERVATION`]` - 1` numbers after it, never above
/// [`MAX_SEQ`](super::MAX_SEQ) (a mark above it would read as damage).
///
/// ```
/// use keg::format::{checkpoint::seq_mark_for, MAX_SEQ};
/// assert_eq!(seq_mark_for(MAX_SEQ - 3), MAX_SEQ);
/// ```
pub fn seq_mark_for(next_seq: u64) -> u64 {
    next_seq.saturating_add(SEQ_RESERVATION - 1).min(super::MAX_SEQ)
}

/// How far the cache's time may run ahead of an anchor's wall clock
/// carried forward: it absorbs the millisecond rounding of the two clocks
/// (see [`ClockAnchor::covers_ms`]). After a crash on the same boot the
/// cache resumes at most this plus 3 ms (rounding again) ahead of the wall clock.
///
/// ```
/// assert!(keg::format::checkpoint::CLOCK_SLACK_MS <= 2);
/// ```
pub const CLOCK_SLACK_MS: u64 = 2;

/// Where the wall clock stood against time since boot when the checkpoint
/// was written: after a crash on the same boot, it tells how much time
/// really passed, whatever the wall clock did (FORMAT.md, section 6).
///
/// ```
/// use keg::format::checkpoint::ClockAnchor;
/// let a = ClockAnchor { held_ms: 1_000, wall_ms: 900, boot_id: 7, boot_ms: 50 };
/// assert_eq!(a.covers_ms(50), 1_000); // the time held, ahead of the wall clock
/// assert_eq!(a.covers_ms(1_050), 1_902); // the wall clock carried forward, plus the slack
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockAnchor {
    /// No time the cache used before the write is later (Unix ms).
    pub held_ms: u64,
    /// The wall clock at the write (Unix ms).
    pub wall_ms: u64,
    /// Names the boot (never 0).
    pub boot_id: u128,
    /// Time since that boot at the write (ms).
    pub boot_ms: u64,
}

impl ClockAnchor {
    /// The latest time the anchor covers when the time since its boot reads
    /// `boot_ms`: the time held, or the wall clock carried forward by the
    /// time since boot that passed (plus [`CLOCK_SLACK_MS`]), if later.
    /// The cache hands out no later time before it writes a new anchor.
    ///
    /// ```
    /// use keg::format::checkpoint::ClockAnchor;
    /// let a = ClockAnchor { held_ms: 100, wall_ms: 100, boot_id: 1, boot_ms: 0 };
    /// assert_eq!(a.covers_ms(10), 112);
    /// ```
    pub fn covers_ms(&self, boot_ms: u64) -> u64 {
        let carried = self.wall_ms.saturating_add(boot_ms.saturating_sub(self.boot_ms)).saturating_add(CLOCK_SLACK_MS);
        self.held_ms.max(carried)
    }
}

/// The decoded checkpoint.
///
/// ```
/// use keg::format::checkpoint::Checkpoint;
/// let c = Checkpoint { durable_seq: 41, seq_mark: 1 << 20, ..Default::default() };
/// let back = Checkpoint::decode(&c.encode()).unwrap();
/// assert_eq!((back.durable_seq, back.seq_mark), (41, 1 << 20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every record with a sequence number up to this one is durable.
    pub durable_seq: u64,
    /// The clock mark, Unix ms: no time the cache has used is later (FORMAT.md, section 6).
    pub clock_ms: u64,
    /// The clock anchor (none in a version-1 file, or from a clock that
    /// does not know the time since boot).
    pub anchor: Option<ClockAnchor>,
    /// The sequence mark: no sequence number the cache has used is larger,
    /// so the next open numbers records from above it, whatever a power cut
    /// lost (FORMAT.md, section 6). 0 in a version-1 or version-2 file.
    pub seq_mark: u64,
    /// Inclusive sequence ranges whose records recovery discarded (lost history after a crash).
    pub void_ranges: Vec<(u64, u64)>,
}

impl Checkpoint {
    /// True when `seq` lies in one of the void ranges.
    ///
    /// ```
    /// use keg::format::checkpoint::Checkpoint;
    /// let c = Checkpoint { void_ranges: vec![(10, 20)], ..Default::default() };
    /// assert!(c.is_void(10) && c.is_void(20) && !c.is_void(21));
    /// ```
    pub fn is_void(&self, seq: u64) -> bool {
        self.void_ranges.iter().any(|&(a, b)| a <= seq && seq <= b)
    }

    /// Encodes the checkpoint (always version 3).
    ///
    /// ```
    /// use keg::format::checkpoint::Checkpoint;
    /// let c = Checkpoint { durable_seq: 10, clock_ms: 5, seq_mark: 99, void_ranges: vec![(3, 4)], ..Default::default() };
    /// assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.void_ranges.len() <= MAX_VOID_RANGES);
        let mut b = Vec::with_capacity(HEADER_LEN + 4 + 16 * self.void_ranges.len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.void_ranges.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&self.durable_seq.to_le_bytes());
        b.extend_from_slice(&self.clock_ms.to_le_bytes());
        let a = self.anchor.filter(|a| a.boot_id != 0).unwrap_or_default();
        b.extend_from_slice(&a.held_ms.to_le_bytes());
        b.extend_from_slice(&a.wall_ms.to_le_bytes());
        b.extend_from_slice(&a.boot_ms.to_le_bytes());
        b.extend_from_slice(&a.boot_id.to_le_bytes());
        b.extend_from_slice(&self.seq_mark.to_le_bytes());
        for &(first, last) in &self.void_ranges {
            b.extend_from_slice(&first.to_le_bytes());
            b.extend_from_slice(&last.to_le_bytes());
        }
        let sum = crc(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and verifies a checkpoint file (version 1, 2 or 3).
    ///
    /// ```
    /// use keg::format::{checkpoint::Checkpoint, DecodeError};
    /// assert!(matches!(Checkpoint::decode(b"short"), Err(DecodeError::Truncated { .. })));
    /// ```
    pub fn decode(b: &[u8]) -> Result<Checkpoint, DecodeError> {
        if b.len() < HEADER_LEN_V1 + 4 {
            return Err(DecodeError::Truncated { needed: HEADER_LEN_V1 as u64 + 4, available: b.len() as u64 });
        }
        if b[0..8] != MAGIC {
            return Err(DecodeError::BadMagic { what: "checkpoint" });
        }
        let version = u16_at(b, 8);
        let head = match version {
            1 => HEADER_LEN_V1,
            2 => HEADER_LEN_V2,
            3 => HEADER_LEN,
            _ => {
                // Another version's layout: refuse it if its checksum holds
                // (a whole file from another keg), else it is damage.
                let end = b.len() - 4;
                let (stored, computed) = (u32_at(b, end), crc(&b[..end]));
                if stored != computed {
                    return Err(DecodeError::ChecksumMismatch { stored, computed });
                }
                return Err(DecodeError::UnsupportedVersion { found: version, supported: CHECKPOINT_VERSION });
            }
        };
        let n = u16_at(b, 10) as usize;
        let len = head + 4 + 16 * n;
        if b.len() != len {
            return Err(DecodeError::Truncated { needed: len as u64, available: b.len() as u64 });
        }
        let stored = u32_at(b, len - 4);
        let computed = crc(&b[..len - 4]);
        if stored != computed {
            return Err(DecodeError::ChecksumMismatch { stored, computed });
        }
        if n > MAX_VOID_RANGES {
            return Err(DecodeError::Invalid("too many void ranges"));
        }
        let anchor = if version == 1 {
            None
        } else {
            let a = ClockAnchor {
                held_ms: u64_at(b, 32),
                wall_ms: u64_at(b, 40),
                boot_ms: u64_at(b, 48),
                boot_id: u128::from_le_bytes(b[56..72].try_into().expect("16 bytes")),
            };
            match a {
                ClockAnchor { boot_id: 0, held_ms: 0, wall_ms: 0, boot_ms: 0 } => None,
                ClockAnchor { boot_id: 0, .. } => return Err(DecodeError::Invalid("a clock anchor without a boot id")),
                a => Some(a),
            }
        };
        let seq_mark = if version == 3 { u64_at(b, 72) } else { 0 };
        let void_ranges = (0..n).map(|i| (u64_at(b, head + 16 * i), u64_at(b, head + 8 + 16 * i))).collect();
        Ok(Checkpoint { durable_seq: u64_at(b, 16), clock_ms: u64_at(b, 24), anchor, seq_mark, void_ranges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_rejected() {
        let anchor = Some(ClockAnchor { held_ms: 5, wall_ms: 4, boot_id: 9, boot_ms: 3 });
        let good = Checkpoint { durable_seq: 77, clock_ms: 1, anchor, seq_mark: 80, void_ranges: vec![(1, 2), (9, 9)] }
            .encode();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Checkpoint::decode(&bad).is_err(), "bit {bit}");
        }
        for cut in 0..good.len() {
            assert!(Checkpoint::decode(&good[..cut]).is_err());
        }
    }

    #[test]
    fn a_version_1_checkpoint_is_read_without_an_anchor() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(&4u64.to_le_bytes());
        let sum = crc(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        let c = Checkpoint::decode(&b).unwrap();
        let want = Checkpoint {
            durable_seq: 7,
            clock_ms: 1_700_000_000_000,
            anchor: None,
            seq_mark: 0,
            void_ranges: vec![(3, 4)],
        };
        assert_eq!(c, want);
    }

    #[test]
    fn a_version_2_checkpoint_is_read_without_a_sequence_mark() {
        let anchor = Some(ClockAnchor { held_ms: 5, wall_ms: 4, boot_id: 9, boot_ms: 3 });
        let v3 = Checkpoint { durable_seq: 7, clock_ms: 1, anchor, seq_mark: 123, void_ranges: vec![(3, 4)] };
        let b = v3.encode();
        // The same file as version 2 wrote it: no mark between the anchor and the ranges.
        let mut v2 = b[..HEADER_LEN_V2].to_vec();
        v2[8..10].copy_from_slice(&2u16.to_le_bytes());
        v2.extend_from_slice(&b[HEADER_LEN..b.len() - 4]);
        let sum = crc(&v2);
        v2.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(Checkpoint::decode(&v2).unwrap(), Checkpoint { seq_mark: 0, ..v3 });
    }
}
