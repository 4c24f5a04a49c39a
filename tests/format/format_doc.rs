//! FORMAT.md is exact: files the engine writes decode with nothing but the
//! layouts it states, and its worked example is what the encoder produces.

use std::time::Duration;

use keg::{Cache, ManualClock};

fn le16(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as u64
}
fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn engine_written_segment_decodes_by_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_767_225_600_000 - 10_000);
    // (Without background maintenance, so that close leaves the segment
    // of the deleted value alone instead of compacting it away.)
    let cache = Cache::builder().clock(clock.clone()).background_maintenance(false).open(dir.path()).unwrap();
    cache.set(b"user:1", b"Ada", Some(Duration::from_secs(10))).unwrap();
    cache.delete(b"user:1").unwrap();
    cache.close().unwrap();

    let seg = std::fs::read(dir.path().join("00000001.seg")).unwrap();
    // Section 2.1: the segment header.
    assert_eq!(&seg[0..8], b"\x8bKEGSEG\n");
    assert_eq!(le16(&seg, 8), 2, "version");
    assert_eq!(seg[10], 0, "new keys land in the probation log");
    assert_eq!(le32(&seg, 12), 1, "segment id");
    assert_eq!(le64(&seg, 16), 1_767_225_600_000 - 10_000, "created_ms");
    assert_eq!(le32(&seg, 24), crc32fast::hash(&seg[0..24]) as u64, "header crc");

    // Section 2.2: the value record.
    let r = &seg[32..];
    let (key_len, kind, flags, value_len) = (le16(r, 4) as usize, r[6], r[7], le32(r, 8) as usize);
    let len = 28 + key_len + value_len;
    assert_eq!(le32(r, 0), crc32fast::hash(&r[4..len]) as u64, "record crc covers bytes 4..len");
    assert_eq!((key_len, kind, flags, value_len), (6, 1, 0, 3));
    assert_eq!(le64(r, 12), 1, "first write gets seq 1");
    assert_eq!(le64(r, 20), 1_767_225_600_000, "absolute expiry in ms");
    assert_eq!(&r[28..34], b"user:1");
    assert_eq!(&r[34..37], b"Ada");

    assert_eq!(r.len(), len, "the value is the segment's only record");

    // The delete's tombstone goes to the main log: segment 2.
    let seg2 = std::fs::read(dir.path().join("00000002.seg")).unwrap();
    assert_eq!((seg2[10], le32(&seg2, 12)), (1, 2), "main log, segment id 2");
    let t = &seg2[32..];
    assert_eq!((le16(t, 4), t[6], le32(t, 8), le64(t, 12)), (6, 2, 0, 2));
    assert_eq!(le32(t, 0), crc32fast::hash(&t[4..34]) as u64);
    assert_eq!(t.len(), 34, "the segment ends after the tombstone");

    // Section 5: the hint files written at close.
    let h = std::fs::read(dir.path().join("00000001.hint")).unwrap();
    assert_eq!(&h[0..8], b"\x8bKEGHNT\n");
    assert_eq!((le16(&h, 8), h[10], le32(&h, 12)), (1, 1, 1));
    assert_eq!(le64(&h, 16), seg.len() as u64, "data_len");
    assert_eq!(le32(&h, 24), 1, "one entry");
    assert_eq!(le32(&h, 28), crc32fast::hash(&h[48..]) as u64);
    assert_eq!(le32(&h, 44), crc32fast::hash(&h[0..44]) as u64);
    let e0 = &h[48..72];
    assert_eq!(le64(e0, 0), xxhash_rust::xxh3::xxh3_64(b"user:1"));
    assert_eq!((le64(e0, 8), le32(e0, 16)), (1, 1_767_225_600));
    // Length 37; not flagged "shadowed": only a newer *value* can set that bit.
    assert_eq!(le32(e0, 20), 37);
    let h2 = std::fs::read(dir.path().join("00000002.hint")).unwrap();
    assert_eq!((le32(&h2, 12), le64(&h2, 16), le32(&h2, 24)), (2, seg2.len() as u64, 1));
    let e1 = &h2[48..72];
    assert_eq!((le64(e1, 8), le32(e1, 20)), (2, 34 | 1 << 31), "seq 2, tombstone");

    // Section 6: the checkpoint.
    let c = std::fs::read(dir.path().join("checkpoint")).unwrap();
    assert_eq!(&c[0..8], b"\x8bKEGCKP\n");
    assert_eq!((le16(&c, 8), le16(&c, 10)), (3, 0));
    assert_eq!(le64(&c, 16), 2, "both writes durable after a clean close");
    let t0 = 1_767_225_600_000 - 10_000;
    assert_eq!(le64(&c, 24), t0, "a clean close writes the exact time used");
    // The clock anchor: the manual clock's boot, 0 ms into it, at t0.
    let boot = keg::Clock::since_boot(&clock).unwrap();
    assert_eq!((le64(&c, 32), le64(&c, 40), le64(&c, 48)), (t0, t0, 0), "held_ms, wall_ms, boot_ms");
    assert_eq!(u128::from_le_bytes(c[56..72].try_into().unwrap()), boot.boot_id);
    assert_eq!(le64(&c, 72), 2, "seq_mark: a clean close gives back the numbers reserved but not used");
    assert_eq!(c.len(), 84);
    assert_eq!(le32(&c, 80), crc32fast::hash(&c[..80]) as u64);

    // Section 6, "Sequence numbers": an open after a crash numbers records
    // from above the mark, and reserves 2^20 numbers in the checkpoint it
    // writes; a write reserves before it takes a number above the mark.
    let cache = Cache::builder().clock(clock.clone()).background_maintenance(false).open(dir.path()).unwrap();
    let third = cache.set_with(b"k", b"v", &keg::SetOptions::new()).unwrap();
    assert_eq!(third, 3, "numbered on from the clean close");
    let c = std::fs::read(dir.path().join("checkpoint")).unwrap();
    assert_eq!(le64(&c, 72), 3 + (1 << 20) - 1, "the write reserved 2^20 numbers from its own");
    cache.abandon();
    let cache = Cache::builder().clock(clock.clone()).background_maintenance(false).open(dir.path()).unwrap();
    let c = std::fs::read(dir.path().join("checkpoint")).unwrap();
    let mark = 3 + (1 << 20) - 1;
    assert_eq!(le64(&c, 16), mark, "durable_seq settled over the numbers the crash may have used");
    assert_eq!(le64(&c, 72), mark + (1 << 20), "and the next 2^20 reserved");
    assert_eq!(cache.set_with(b"k", b"v", &keg::SetOptions::new()).unwrap(), mark + 1);
    cache.close().unwrap();
}

#[test]
fn the_worked_example_in_format_md_is_what_the_encoder_writes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md")).unwrap();
    let start = doc.find("### 2.3 Worked example").unwrap();
    let block = &doc[start..];
    let block = &block[block.find("```").unwrap() + 3..];
    let block = &block[..block.find("```").unwrap()];
    let documented: Vec<u8> = block
        .lines()
        .filter_map(|l| l.split_once(": "))
        .flat_map(|(_, hex)| hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect::<Vec<_>>())
        .collect();
    let mut encoded = Vec::new();
    keg::format::record::encode(
        &mut encoded,
        keg::format::record::Kind::Value,
        7,
        1_767_225_600_000,
        b"user:1",
        b"Ada",
    )
    .unwrap();
    assert_eq!(documented, encoded);

    let tomb_line = doc[start..].lines().find(|l| l.starts_with("`5e af")).unwrap();
    let documented: Vec<u8> = tomb_line
        .trim_matches(|c| c == '`' || c == '.')
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let mut encoded = Vec::new();
    keg::format::record::encode(&mut encoded, keg::format::record::Kind::Tombstone, 9, 0, b"user:1", b"").unwrap();
    assert_eq!(documented, encoded);
}

#[test]
fn a_record_with_user_flags_decodes_by_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set_with(b"k", b"data", &keg::SetOptions::new().flags(0x0102_0304)).unwrap();
    cache.close().unwrap();
    let seg = std::fs::read(dir.path().join("00000001.seg")).unwrap();
    // Section 2.2: flag bit 0, and a value area of 4 flag bytes, then the value.
    let r = &seg[32..];
    let (key_len, kind, flags, value_len) = (le16(r, 4) as usize, r[6], r[7], le32(r, 8) as usize);
    assert_eq!((key_len, kind, flags, value_len), (1, 1, 1, 8));
    assert_eq!(le32(r, 0), crc32fast::hash(&r[4..37]) as u64);
    assert_eq!(&r[28..29], b"k");
    assert_eq!(le32(r, 29), 0x0102_0304, "user flags first in the value area");
    assert_eq!(&r[33..37], b"data");
}

#[test]
fn a_version_1_directory_opens_serves_and_is_not_appended_to() {
    // A directory as the previous release wrote it: a version-1 segment
    // (header version 1, records without user flags) and no hint.
    let dir = tempfile::tempdir().unwrap();
    let mut seg = keg::format::segment::SegmentHeader {
        log: keg::format::segment::LogKind::Probation,
        id: 1,
        created_ms: 1_700_000_000_000,
    }
    .encode()
    .to_vec();
    seg[8] = 1;
    let sum = crc32fast::hash(&seg[0..24]);
    seg[24..28].copy_from_slice(&sum.to_le_bytes());
    keg::format::record::encode(&mut seg, keg::format::record::Kind::Value, 1, 0, b"old", b"value").unwrap();
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();

    let cache = Cache::open(dir.path()).unwrap();
    assert_eq!(cache.get(b"old").unwrap().unwrap(), b"value");
    cache.set_with(b"new", b"v", &keg::SetOptions::new().flags(5)).unwrap();
    cache.close().unwrap();
    assert_eq!(std::fs::read(dir.path().join("00000001.seg")).unwrap(), seg, "the version-1 segment was appended to");
    let seg2 = std::fs::read(dir.path().join("00000002.seg")).unwrap();
    assert_eq!(le16(&seg2, 8), 2, "new records go to a version-2 segment");
    let cache = Cache::open(dir.path()).unwrap();
    assert_eq!(cache.get(b"old").unwrap().unwrap(), b"value");
    assert_eq!(cache.get_entry(b"new").unwrap().unwrap().flags, 5);
}

#[test]
fn the_marker_is_the_17_bytes_format_md_lists() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md")).unwrap();
    let section = &doc[doc.find("### 1.1 The marker").unwrap()..doc.find("### 1.2").unwrap()];
    // Section 1.1: the hex bytes of its table rows, in order.
    let documented: Vec<u8> = section
        .lines()
        .filter(|l| l.starts_with("| 0 |") || l.starts_with("| 8 |"))
        .flat_map(|l| {
            // The row's code span of hex bytes.
            let is_hex = |t: &str| t.len() == 2 && t.bytes().all(|c| c.is_ascii_hexdigit());
            let hex = l.split('`').skip(1).step_by(2).find(|c| c.split_whitespace().all(is_hex)).unwrap();
            hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(documented.len(), 17, "{documented:?}");
    assert!(section.contains("exactly 17 bytes"));

    let dir = tempfile::tempdir().unwrap();
    Cache::open(dir.path()).unwrap().close().unwrap();
    assert_eq!(std::fs::read(dir.path().join("KEG")).unwrap(), documented);
    assert_eq!(&documented[..8], b"\x8bKEGDIR\n");
    assert_eq!(&documented[8..], b"format 1\n");
}
