//! `hint_decode`: arbitrary bytes through the hint-file decoder.
//!
//! The first input byte is a mode (see [`FIX_CHECKSUMS`]); the rest is the file.
//!
//! Invariants: nothing panics; a decoded hint has exactly `count` entries
//! filling the file; its entry lengths tile `data_len` the way recovery walks
//! them; every entry is one recovery may apply (a full record length, not both
//! tombstone and dead); encoding the decoded hint reproduces the file (reserved
//! bytes aside); each error names what actually went wrong.

use keg::format::hint::{self, HintEntry, ENTRY_LEN, HEADER_LEN, MAGIC};
use keg::format::{record, segment, DecodeError};

/// Mode bit: give the header and the entries matching checksums before
/// decoding, so that the checks behind the checksums see mutated fields.
pub const FIX_CHECKSUMS: u8 = 1;

/// Runs every check on one input: a mode byte, then the file.
pub fn run(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else { return };
    if mode & FIX_CHECKSUMS != 0 && bytes.len() >= HEADER_LEN {
        let mut fixed = bytes.to_vec();
        let body = crc32fast::hash(&fixed[HEADER_LEN..]);
        fixed[28..32].copy_from_slice(&body.to_le_bytes());
        let header = crc32fast::hash(&fixed[..44]);
        fixed[44..48].copy_from_slice(&header.to_le_bytes());
        check(&fixed);
    } else {
        check(bytes);
    }
}

fn check(data: &[u8]) {
    match hint::decode(data) {
        Ok((header, entries)) => {
            // Allocation is bounded by the input: decode has checked count against the length.
            let entries: Vec<HintEntry> = entries.collect();
            assert_eq!(entries.len(), header.count as usize);
            assert_eq!(data.len(), HEADER_LEN + ENTRY_LEN * entries.len());
            // Recovery derives record offsets from the lengths: they must end at data_len.
            let mut off = segment::HEADER_LEN as u64;
            for e in &entries {
                assert!(e.len as usize > record::HEADER_LEN, "an entry shorter than a record: {e:?}");
                assert!(!(e.tombstone && e.dead), "an entry both tombstone and dead: {e:?}");
                off += e.len as u64;
            }
            assert_eq!(off, header.data_len, "entry lengths do not tile data_len");
            let again = hint::encode(&header, &entries);
            let (h2, e2) = hint::decode(&again).expect("an encoded hint decodes");
            assert_eq!((h2, e2.collect::<Vec<_>>()), (header, entries.clone()));
            // Byte 11 and bytes 40..44 are reserved (zero when written, covered by the header checksum).
            if data[11] == 0 && data[40..44] == [0; 4] {
                assert_eq!(again, data, "a decoded hint did not encode back to its bytes");
            }
        }
        Err(DecodeError::Truncated { needed, available }) => {
            assert_eq!(available, data.len() as u64);
            assert_ne!(needed, available);
            if data.len() >= HEADER_LEN {
                let count = u32::from_le_bytes(data[24..28].try_into().unwrap()) as u64;
                assert_eq!(needed, HEADER_LEN as u64 + count * ENTRY_LEN as u64);
            }
        }
        Err(DecodeError::BadMagic { .. }) => assert_ne!(data[..8], MAGIC),
        Err(DecodeError::ChecksumMismatch { stored, computed }) => assert_ne!(stored, computed),
        Err(DecodeError::UnsupportedVersion { found, supported }) => {
            assert_eq!(found, u16::from_le_bytes([data[8], data[9]]));
            assert_ne!(found, supported);
        }
        Err(DecodeError::Invalid(_)) => {}
        Err(other) => panic!("an error this target does not know: {other:?}"),
    }
}
