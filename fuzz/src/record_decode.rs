//! `record_decode`: arbitrary bytes through the record decoder, the segment
//! header decoder, and the walk a segment scan does (record after record until
//! the first one that does not decode).
//!
//! The first input byte is a mode (see [`FIX_CHECKSUMS`]); the rest are the bytes.
//!
//! Invariants checked on every input:
//! - nothing panics, and no length read from the bytes is trusted before it is
//!   checked against the bytes available;
//! - a decoded record lies within its input, its header agrees with
//!   `decode_header`, and encoding it again reproduces its bytes exactly;
//! - every strict prefix of a decoded record reads as `Truncated` (a torn tail
//!   is never mistaken for damage) and extra bytes after it change nothing;
//! - each error names what actually went wrong (a `Truncated` error really
//!   lacks bytes, a `ChecksumMismatch` really mismatches, an `Invalid` record
//!   really has an intact checksum);
//! - a scan only moves forward, stays within the bytes, and ends exactly at
//!   the end of the input or at the first record that does not decode;
//! - a decoded segment header encodes back to the same bytes (reserved bytes aside);
//! - `keg::inspect::records`, the tools' reader, tiles the bytes with its items,
//!   reports each as the decoder sees it, and finds its first damage exactly
//!   where the engine's scan stops.

use keg::format::record::{self, Kind};
use keg::format::segment::{self, SegmentHeader};
use keg::format::DecodeError;

/// Mode bit: before checking, give every record of the walk (and the
/// segment header) a matching checksum, so that the checks behind the
/// checksum see mutated fields.
pub const FIX_CHECKSUMS: u8 = 1;
/// Mode bit: with `FIX_CHECKSUMS`, walk from byte 0 instead of after a segment header.
pub const FROM_ZERO: u8 = 2;

/// Runs every check on one input: a mode byte, then the bytes.
pub fn run(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else { return };
    if mode & FIX_CHECKSUMS != 0 {
        let mut fixed = bytes.to_vec();
        if fixed.len() >= 28 {
            let sum = crc32fast::hash(&fixed[..24]);
            fixed[24..28].copy_from_slice(&sum.to_le_bytes());
        }
        fix_checksums(&mut fixed, if mode & FROM_ZERO != 0 { 0 } else { segment::HEADER_LEN });
        check(&fixed);
    } else {
        check(bytes);
    }
}

fn check(bytes: &[u8]) {
    check_segment_header(bytes);
    check_record(bytes);
    walk(bytes, 0);
    let engine_end = walk(bytes, segment::HEADER_LEN);
    check_inspect_records(bytes, engine_end);
}

/// `keg::inspect::records` (the reader behind `keg dump` and `keg verify`)
/// must tile the bytes after the header with its items, report each item as
/// the decoder sees it, and agree with the engine's scan up to the first damage.
pub fn check_inspect_records(bytes: &[u8], engine_end: usize) {
    let start = segment::HEADER_LEN as u64;
    let mut pos = start;
    let mut damaged = false;
    for item in keg::inspect::records(bytes) {
        assert_eq!(item.offset(), pos, "inspect items do not tile the segment");
        assert!(item.len() > 0, "an empty inspect item at {pos}");
        let at = &bytes[pos as usize..];
        match &item {
            keg::inspect::Item::Record { record, .. } => assert_eq!(record::decode(at).as_ref(), Ok(record)),
            keg::inspect::Item::Invalidation { invalidation, .. } => {
                assert!(matches!(record::decode(at), Err(DecodeError::Invalid(_))));
                assert_eq!(record::decode_invalidation(at).as_ref(), Ok(invalidation))
            }
            keg::inspect::Item::Other { reason, .. } => {
                assert_eq!(record::decode(at), Err(DecodeError::Invalid(reason)))
            }
            keg::inspect::Item::Damaged(d) => {
                assert!(
                    !matches!(record::decode(at), Ok(_) | Err(DecodeError::Invalid(_))),
                    "intact bytes reported as damage"
                );
                assert_eq!(d.resumed, pos + d.len < bytes.len() as u64);
                if !damaged {
                    assert_eq!(pos as usize, engine_end, "inspect's first damage is not where the engine's scan stops");
                }
                damaged = true;
            }
        }
        pos += item.len();
        assert!(pos <= bytes.len() as u64, "an inspect item runs past the end");
    }
    assert_eq!(pos, start.max(bytes.len() as u64), "inspect stopped before the end");
    if !damaged {
        assert_eq!(engine_end as u64, pos, "the engine's scan stopped where inspect saw no damage");
    }
}

/// Gives each record from `start` on, while the lengths fit, a matching checksum.
fn fix_checksums(bytes: &mut [u8], start: usize) {
    let mut pos = start;
    for _ in 0..=bytes.len() / record::HEADER_LEN {
        let Some(rest) = bytes.get_mut(pos..) else { return };
        let Ok(h) = record::decode_header(rest) else { return };
        let total = h.record_len();
        if total > rest.len() as u64 {
            return;
        }
        let sum = crc32fast::hash(&rest[4..total as usize]);
        rest[..4].copy_from_slice(&sum.to_le_bytes());
        pos += total as usize;
    }
}

/// Checks one decode of the record at the start of `buf`.
pub fn check_record(buf: &[u8]) {
    if let Ok(inv) = record::decode_invalidation(buf) {
        assert_eq!(record::decode(buf), Err(DecodeError::Invalid(record::INVALIDATION_RECORD)));
        let mut again = Vec::new();
        let key = record::invalidation_key(inv.scope, inv.name);
        record::encode_full(&mut again, Kind::Invalidation, inv.seq, 0, &key, 0, &[], false, b"").unwrap();
        assert_eq!(again, &buf[..inv.len as usize], "re-encoding an invalidation record changed its bytes");
    }
    let header = record::decode_header(buf);
    match record::decode(buf) {
        Ok(rec) => {
            let len = rec.len() as usize;
            assert!(len <= buf.len(), "record of {len} bytes decoded from {} bytes", buf.len());
            let flag_bytes = if rec.header.flags & record::FLAG_USER_FLAGS != 0 { 4 } else { 0 };
            assert_eq!(len, record::encoded_len(rec.key.len(), rec.value.len()) + flag_bytes + rec.tags.len());
            assert_eq!(rec.tags.is_empty(), rec.header.flags & record::FLAG_TAGS == 0);
            assert!(record::tags(rec.tags).all(|t| !t.is_empty() && t.len() <= record::MAX_NAME_LEN));
            if rec.namespaced() {
                assert!(record::namespace_of(rec.key).is_some(), "a namespaced record without a namespace");
            }
            assert!(!rec.key.is_empty(), "a decoded record has an empty key");
            assert_eq!(header.as_ref().ok(), Some(&rec.header), "decode and decode_header disagree");
            assert_eq!(record::validate(&rec.header), Ok(rec.kind));
            if rec.kind == Kind::Tombstone {
                assert!(rec.value.is_empty(), "a tombstone with a value decoded");
            }
            let mut again = Vec::with_capacity(len);
            let flags = rec.user_flags;
            record::encode_full(
                &mut again,
                rec.kind,
                rec.header.seq,
                rec.header.expires_ms,
                rec.key,
                flags,
                rec.tags,
                rec.namespaced(),
                rec.value,
            )
            .unwrap();
            assert_eq!(again, &buf[..len], "re-encoding a decoded record changed its bytes");
            assert_eq!(record::decode(&buf[..len]), Ok(rec), "bytes after a record changed its decoding");
            for cut in 0..len {
                assert!(
                    matches!(record::decode(&buf[..cut]), Err(DecodeError::Truncated { .. })),
                    "a {cut}-byte prefix of a {len}-byte record is not reported as truncated"
                );
            }
        }
        Err(DecodeError::Truncated { needed, available }) => {
            assert_eq!(available, buf.len() as u64);
            assert!(needed > available, "truncated, yet {needed} bytes needed of {available}");
            match header {
                Err(_) => assert_eq!(needed, record::HEADER_LEN as u64),
                Ok(h) => assert_eq!(needed, h.record_len()),
            }
        }
        Err(DecodeError::ChecksumMismatch { stored, computed }) => {
            let h = header.expect("a checksum was compared, so the header decoded");
            let total = h.record_len() as usize;
            assert!(total <= buf.len(), "checksum compared over bytes that are not there");
            assert_eq!(stored, h.crc);
            assert_eq!(computed, crc32fast::hash(&buf[4..total]));
            assert_ne!(stored, computed, "a matching checksum reported as a mismatch");
        }
        Err(DecodeError::Invalid(why)) => {
            let h = header.expect("fields were checked, so the header decoded");
            let total = h.record_len() as usize;
            assert!(total <= buf.len());
            assert_eq!(crc32fast::hash(&buf[4..total]), h.crc, "invalid ({why}) reported before the checksum matched");
            assert_eq!(record::validate(&h), Err(DecodeError::Invalid(why)));
        }
        Err(other) => panic!("record::decode returned an error it never should: {other:?}"),
    }
}

/// Walks `bytes` from `start` the way a segment scan does; returns where it stopped.
pub fn walk(bytes: &[u8], start: usize) -> usize {
    let mut pos = start;
    // Every step consumes at least a record header, so this bound is never reached
    // unless a step fails to move forward.
    for _ in 0..=bytes.len() / record::HEADER_LEN + 1 {
        let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) else { return pos };
        let step = match record::decode(rest) {
            Ok(rec) => rec.len(),
            // An intact record this version does not understand: a scan steps over it.
            Err(DecodeError::Invalid(_)) => record::decode_header(rest).expect("invalid implies a header").record_len(),
            Err(_) => return pos,
        };
        assert!(step >= record::HEADER_LEN as u64, "a scan step of {step} bytes");
        assert!(step <= rest.len() as u64, "a scan step past the end of the bytes");
        pos += step as usize;
    }
    panic!("the scan did not end after {} steps over {} bytes", bytes.len() / record::HEADER_LEN + 1, bytes.len());
}

/// Decodes the first bytes as a segment header and checks the round trip.
pub fn check_segment_header(data: &[u8]) {
    match SegmentHeader::decode(data) {
        Ok(h) => {
            let again = h.encode();
            assert_eq!(SegmentHeader::decode(&again), Ok(h));
            // Byte 11 and bytes 28..32 are reserved: written as zero, not checked on read.
            let mut expect = [0u8; segment::HEADER_LEN];
            expect.copy_from_slice(&data[..segment::HEADER_LEN]);
            // (A version-1 header decodes, and encodes back as this build's version.)
            if expect[11] == 0 && segment::version(data) == Some(keg::format::SEGMENT_VERSION) {
                expect[28..32].fill(0);
                assert_eq!(again, expect, "a segment header did not encode back to its bytes");
            }
        }
        Err(DecodeError::Truncated { needed, available }) => {
            assert_eq!((needed, available), (segment::HEADER_LEN as u64, data.len() as u64));
            assert!(data.len() < segment::HEADER_LEN);
        }
        Err(DecodeError::BadMagic { .. }) => assert_ne!(data[..8], segment::MAGIC),
        Err(DecodeError::ChecksumMismatch { stored, computed }) => {
            assert_eq!(computed, crc32fast::hash(&data[..24]));
            assert_ne!(stored, computed);
        }
        Err(DecodeError::UnsupportedVersion { found, .. }) => {
            assert_eq!(found, u16::from_le_bytes([data[8], data[9]]));
            assert_ne!(found, keg::format::FORMAT_VERSION);
        }
        Err(DecodeError::Invalid(_)) => assert!(data[10] > 1),
        Err(other) => panic!("an error this target does not know: {other:?}"),
    }
}
