//! Every builder setting is checked at open: a value at each end of its
//! documented range opens, one step past it is refused with
//! `Error::Config` naming the setting, the value and the range, and a
//! refused open writes nothing.

use std::time::Duration;

use keg::{Builder, Cache, Durability, Error};

fn buffered() -> Builder {
    Cache::builder().durability(Durability::Buffered)
}

/// Opens with `b` in a fresh directory; `Ok` if it opened.
fn open(b: Builder) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    match b.open(&path) {
        Ok(cache) => {
            cache.close().unwrap();
            Ok(())
        }
        Err(Error::Config(msg)) => {
            assert!(!path.exists(), "a refused open created {}", path.display());
            Err(msg)
        }
        Err(e) => panic!("expected Error::Config, got {e:?}"),
    }
}

/// `b` is refused with a message holding every one of `words`.
fn refused(b: Builder, words: &[&str]) {
    let msg = open(b).expect_err("these settings must be refused");
    for w in words {
        assert!(msg.contains(w), "{w:?} missing from: {msg}");
    }
}

#[test]
fn flush_interval_is_10_ms_to_1_s() {
    refused(buffered().flush_interval(Duration::ZERO), &["flush_interval is 0ns", "10ms ..= 1s"]);
    refused(buffered().flush_interval(Duration::from_micros(9_999)), &["flush_interval is 9.999ms"]);
    open(buffered().flush_interval(Duration::from_millis(10))).unwrap();
    open(buffered().flush_interval(Duration::from_secs(1))).unwrap();
    refused(buffered().flush_interval(Duration::from_millis(1001)), &["flush_interval is 1.001s", "10ms ..= 1s"]);
    // Checked whatever the mode.
    refused(Cache::builder().flush_interval(Duration::ZERO), &["flush_interval"]);
    assert_eq!(keg::MIN_FLUSH_INTERVAL, Duration::from_millis(10));
    assert_eq!(keg::MAX_FLUSH_INTERVAL, Duration::from_secs(1));
}

#[test]
fn write_buffer_bytes_is_4_kib_to_64_mib() {
    refused(buffered().write_buffer_bytes(0), &["write_buffer_bytes is 0", "4096 ..= 67108864"]);
    refused(buffered().write_buffer_bytes(4095), &["write_buffer_bytes is 4095"]);
    open(buffered().write_buffer_bytes(4096)).unwrap();
    open(buffered().write_buffer_bytes(64 << 20)).unwrap();
    refused(buffered().write_buffer_bytes((64 << 20) + 1), &["write_buffer_bytes is 67108865", "4 KiB ..= 64 MiB"]);
    refused(Cache::builder().write_buffer_bytes(0), &["write_buffer_bytes"]);
}

#[test]
fn compaction_threshold_is_a_tenth_to_nine_tenths() {
    for bad in [0.0, 0.099, 0.901, 1.0, -1.0, f64::NAN, f64::INFINITY] {
        refused(Cache::builder().compaction_threshold(bad), &["compaction_threshold is", "0.1 ..= 0.9"]);
    }
    open(Cache::builder().compaction_threshold(0.1)).unwrap();
    open(Cache::builder().compaction_threshold(0.9)).unwrap();
}

#[test]
fn max_key_len_is_1_to_65535() {
    refused(Cache::builder().max_key_len(0), &["max_key_len is 0", "1 ..= 65535"]);
    open(Cache::builder().max_key_len(1)).unwrap();
    open(Cache::builder().max_key_len(65535)).unwrap();
    refused(Cache::builder().max_key_len(65536), &["max_key_len is 65536", "1 ..= 65535"]);
}

#[test]
fn segment_bytes_is_4_kib_to_1_gib_and_the_cap_holds_8() {
    let big = || Cache::builder().max_bytes(8 << 30);
    refused(big().segment_bytes(4095), &["segment_bytes is 4095", "4096 ..= 1073741824"]);
    open(big().segment_bytes(4096).max_key_len(250)).unwrap();
    open(big().segment_bytes(1 << 30)).unwrap();
    refused(big().segment_bytes((1 << 30) + 1), &["segment_bytes is 1073741825", "4 KiB ..= 1 GiB"]);
    // max_bytes: at least 8 segments.
    open(Cache::builder().segment_bytes(64 << 10).max_bytes(8 * (64 << 10))).unwrap();
    refused(
        Cache::builder().segment_bytes(64 << 10).max_bytes(8 * (64 << 10) - 1),
        &["max_bytes is 524287", "8 segments"],
    );
    // A segment must hold a value beside the longest key.
    refused(Cache::builder().segment_bytes(4096).max_key_len(65535), &["segment_bytes is 4096", "max_key_len"]);
}

#[test]
fn max_value_len_is_1_to_what_a_segment_holds() {
    refused(Cache::builder().max_value_len(0), &["max_value_len is 0", "at least 1"]);
    open(Cache::builder().max_value_len(1)).unwrap();
    // With explicit segments: the segment minus its header, a record header and the longest key.
    let seg = 64u64 << 10;
    let room = (seg - 32 - 28 - 100) as usize;
    let b = || Cache::builder().segment_bytes(seg).max_key_len(100);
    open(b().max_value_len(room)).unwrap();
    refused(b().max_value_len(room + 1), &[&format!("max_value_len is {}", room + 1), &format!("at most {room}")]);
    // Without: segments grow to fit, up to 1 GiB.
    refused(
        Cache::builder().max_bytes(64 << 30).max_value_len(1 << 30),
        &["max_value_len is 1073741824", "lower max_value_len"],
    );
}

/// The largest value `b` accepts: the limit `ValueTooLarge` names, checked
/// by storing a value of exactly that size.
fn value_limit(b: Builder) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let cache = b.background_maintenance(false).open(dir.path()).unwrap();
    let max = match cache.set(b"k", &vec![7u8; 4 << 20], None) {
        Err(Error::ValueTooLarge { max, .. }) => max,
        other => panic!("a 4 MiB value: {other:?}"),
    };
    cache.set(b"k", &vec![7u8; max], None).unwrap();
    assert_eq!(cache.get(b"k").unwrap().unwrap().len(), max);
    assert!(matches!(cache.set(b"k", &vec![7u8; max + 1], None), Err(Error::ValueTooLarge { .. })));
    max
}

#[test]
fn the_default_max_value_len_is_1_mib_when_the_cap_can_hold_it() {
    const MIB: usize = 1 << 20;
    let cap = |bytes: u64| Cache::builder().max_bytes(bytes);
    // The cap holds 8 segments of 1 MiB + 60 + 1024 bytes, rounded up to 4 KiB.
    let threshold = 8 * ((MIB as u64 + 60 + 1024).next_multiple_of(4096));
    assert_eq!(threshold, 8_421_376);
    for bytes in [1 << 30, 64 << 20, 16 << 20, threshold] {
        assert_eq!(value_limit(cap(bytes)), MIB, "cap {bytes}");
    }
    // Below it: the largest value a default segment (max_bytes / 64, at
    // least 64 KiB, in 4 KiB steps) holds beside a 1024-byte key.
    assert_eq!(value_limit(cap(threshold - 1)), (128 << 10) - 60 - 1024);
    assert_eq!(value_limit(cap(4 << 20)), (64 << 10) - 60 - 1024);
    assert_eq!(value_limit(cap(1 << 20)), 64_452);
    // Other key lengths move the threshold; explicit segments bound it.
    assert_eq!(value_limit(cap(16 << 20).max_key_len(65535)), MIB);
    assert_eq!(value_limit(cap(64 << 20).segment_bytes(256 << 10)), (256 << 10) - 60 - 1024);
    assert_eq!(value_limit(cap(64 << 20).segment_bytes(4 << 20)), MIB);
    assert_eq!(value_limit(cap(64 << 20).max_value_len(3 << 20)), 3 << 20);
}
