//! `checkpoint_decode`: arbitrary bytes through the checkpoint decoder.
//!
//! The first input byte is a mode (see [`FIX_CHECKSUMS`]); the rest is the file.
//!
//! Invariants: nothing panics; a decoded checkpoint holds at most
//! `MAX_VOID_RANGES` ranges and its file is exactly as long as its version
//! and they need; encoding it reproduces a version-3 file (reserved bytes
//! aside), and a version-1 or 2 one decodes with no sequence mark; an anchor has a boot id; `is_void` agrees with its ranges; each
//! error names what actually went wrong.

use keg::format::checkpoint::{Checkpoint, HEADER_LEN, HEADER_LEN_V1, HEADER_LEN_V2, MAGIC, MAX_VOID_RANGES};
use keg::format::DecodeError;

/// Mode bit: give the file a matching checksum before decoding, so that the
/// checks behind the checksum see mutated fields.
pub const FIX_CHECKSUMS: u8 = 1;

/// Runs every check on one input: a mode byte, then the file.
pub fn run(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else { return };
    if mode & FIX_CHECKSUMS != 0 && bytes.len() >= 4 {
        let mut fixed = bytes.to_vec();
        let end = fixed.len() - 4;
        let sum = crc32fast::hash(&fixed[..end]);
        fixed[end..].copy_from_slice(&sum.to_le_bytes());
        check(&fixed);
    } else {
        check(bytes);
    }
}

fn check(data: &[u8]) {
    match Checkpoint::decode(data) {
        Ok(c) => {
            assert!(c.void_ranges.len() <= MAX_VOID_RANGES);
            let version = u16::from_le_bytes([data[8], data[9]]);
            let head = match version {
                1 => HEADER_LEN_V1,
                2 => HEADER_LEN_V2,
                _ => HEADER_LEN,
            };
            if version < 3 {
                assert_eq!(c.seq_mark, 0, "a version-{version} checkpoint has no sequence mark");
            }
            assert_eq!(data.len(), head + 4 + 16 * c.void_ranges.len());
            assert!(c.anchor.is_none_or(|a| a.boot_id != 0), "an anchor without a boot id");
            let again = c.encode();
            assert_eq!(Checkpoint::decode(&again).as_ref(), Ok(&c));
            // Bytes 12..16 are reserved (zero when written, covered by the checksum).
            if version == 3 && data[12..16] == [0; 4] {
                assert_eq!(again, data, "a decoded checkpoint did not encode back to its bytes");
            }
            let probes = c.void_ranges.iter().flat_map(|&(a, b)| [a.wrapping_sub(1), a, b, b.wrapping_add(1)]);
            for seq in probes.chain([0, c.durable_seq, u64::MAX]) {
                let expect = c.void_ranges.iter().any(|&(a, b)| (a..=b).contains(&seq));
                assert_eq!(c.is_void(seq), expect, "is_void({seq}) for {:?}", c.void_ranges);
            }
        }
        Err(DecodeError::Truncated { needed, available }) => {
            assert_eq!(available, data.len() as u64);
            assert_ne!(needed, available);
        }
        Err(DecodeError::BadMagic { .. }) => assert_ne!(data[..8], MAGIC),
        Err(DecodeError::ChecksumMismatch { stored, computed }) => assert_ne!(stored, computed),
        Err(DecodeError::UnsupportedVersion { found, supported }) => {
            assert_eq!(found, u16::from_le_bytes([data[8], data[9]]));
            assert_ne!(found, supported);
        }
        Err(DecodeError::Invalid(_)) => {
            let n = u16::from_le_bytes([data[10], data[11]]) as usize;
            let anchorless = data[56..72] == [0; 16] && data[32..56] != [0; 24];
            assert!(n > MAX_VOID_RANGES || anchorless);
        }
        Err(other) => panic!("an error this target does not know: {other:?}"),
    }
}
