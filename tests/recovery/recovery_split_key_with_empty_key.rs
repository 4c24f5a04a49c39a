//! Found by the `open_dir` fuzz target (issue 16): a directory whose hint
//! files list value records with an empty key in both logs, the probation one
//! newer. Recovery took the pair for a split key (a main-log value hidden by
//! a probation record of the same key) and settled it by writing a tombstone
//! for the key it peeked from the unverified header: the empty key. The
//! encoder's assertion then panicked inside `Cache::open` (with debug
//! assertions, as the fuzzer builds), and without them a record no reader
//! accepts was appended. A record whose key cannot be read is damage: it is
//! never re-encoded, and the open comes up serving only what was written.

use crate::handmade::{self, hint_file, segment};
use keg::format::hint::HintEntry;
use keg::format::record::{self, Kind};
use keg::format::segment::LogKind;

/// A checksum-valid value record with an empty key (`key_len` 0), which
/// `record::encode` refuses to write and `record::decode` rejects.
fn empty_key_record(seq: u64, value: &[u8]) -> Vec<u8> {
    let mut rec = vec![0u8; 4];
    rec.extend_from_slice(&0u16.to_le_bytes());
    rec.push(1); // kind: value
    rec.push(0); // flags
    rec.extend_from_slice(&(value.len() as u32).to_le_bytes());
    rec.extend_from_slice(&seq.to_le_bytes());
    rec.extend_from_slice(&0u64.to_le_bytes());
    rec.extend_from_slice(value);
    let crc = crc32fast::hash(&rec[4..]);
    rec[..4].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// Segment `id` of `log`: an ordinary record of `key`, then an empty-key
/// value record numbered `seq`, with a hint listing both (the empty key's
/// entry under the hash of the empty string, as a lying hint would).
fn write_segment(dir: &std::path::Path, log: LogKind, id: u32, key: &[u8], key_seq: u64, seq: u64) {
    let (mut seg, mut entries) = segment(log, id, &[(key_seq, Kind::Value, key, b"intact")]);
    let rec = empty_key_record(seq, b"value-of-no-key");
    entries.push(HintEntry {
        key_hash: xxhash_rust::xxh3::xxh3_64(b""),
        seq,
        expires_s: 0,
        len: rec.len() as u32,
        tombstone: false,
        dead: false,
    });
    seg.extend_from_slice(&rec);
    std::fs::write(dir.join(format!("{id:08}.hint")), hint_file(id, &seg, &entries, 4)).unwrap();
    std::fs::write(dir.join(format!("{id:08}.seg")), seg).unwrap();
}

/// The records of every segment file in `dir` whose key is empty (walked by
/// their headers, as `keg dump` would show them).
fn empty_key_records(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "seg") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut off = keg::format::segment::HEADER_LEN;
        while let Ok(h) = record::decode_header(&bytes[off..]) {
            let end = off + h.record_len() as usize;
            if h.record_len() == 0 || end > bytes.len() {
                break;
            }
            count += usize::from(h.key_len == 0);
            off = end;
        }
    }
    count
}

#[test]
fn an_empty_key_in_both_logs_is_damage_not_a_split_key_to_settle() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), LogKind::Main, 1, b"main-key", 1, 2);
    write_segment(dir.path(), LogKind::Probation, 2, b"probation-key", 3, 4);
    assert_eq!(empty_key_records(dir.path()), 2);

    let cache = handmade::open(dir.path(), 1 << 20);
    assert_eq!(cache.get(b"main-key").unwrap().as_deref(), Some(&b"intact"[..]));
    assert_eq!(cache.get(b"probation-key").unwrap().as_deref(), Some(&b"intact"[..]));
    cache.close().unwrap();
    assert_eq!(empty_key_records(dir.path()), 2, "the open wrote a record for the empty key");

    // The directory keeps opening, after a restart and after a crash, and
    // serves the same.
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 1 << 20),
        |cache, when| {
            for key in [&b"main-key"[..], b"probation-key"] {
                assert_eq!(cache.get(key).unwrap().as_deref(), Some(&b"intact"[..]), "{key:?} after {when}");
            }
        },
    );
    assert_eq!(empty_key_records(dir.path()), 2);
}

#[test]
fn the_encoder_refuses_what_the_format_cannot_hold_instead_of_panicking() {
    let mut buf = Vec::new();
    for (kind, key, value) in [
        (Kind::Tombstone, &b""[..], &b""[..]),
        (Kind::Value, b"", b"v"),
        (Kind::Tombstone, b"k", b"v"),
        (Kind::Value, &[b'k'; 65536][..], b"v"),
    ] {
        assert!(record::encode(&mut buf, kind, 1, 0, key, value).is_err());
        assert!(buf.is_empty(), "a refused record left bytes behind");
    }
}
