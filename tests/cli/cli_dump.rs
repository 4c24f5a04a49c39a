//! `keg dump` lists exactly what was written: keys, lengths, offsets,
//! expiries, tombstones, and whether the index serves each record.
#![cfg(feature = "cli")]

use std::time::Duration;

use crate::common::*;
use keg::{Cache, Clock, ManualClock, SystemClock};
use serde_json::{json, Value};

const DAY: u64 = 86_400_000;

/// Writes a known history; returns the window the "future" entry's expiry lies in.
fn build(dir: &std::path::Path) -> (u64, u64) {
    let clock = ManualClock::new(T0);
    let cache = Cache::builder().clock(clock).background_maintenance(false).open(dir).unwrap();
    cache.set(b"alpha", b"one", None).unwrap();
    cache.set(b"ttl", b"gone soon", Some(Duration::from_secs(3600))).unwrap();
    cache.set(b"alpha", b"uno", None).unwrap();
    cache.set(b"beta", b"two", None).unwrap();
    cache.delete(b"beta").unwrap();
    cache.set(&[0xff, 0x00, b'k'], &[0, 1, 2, 255], None).unwrap();
    cache.close().unwrap();
    // A second session on the real clock: an entry that expires in the future.
    let cache = Cache::builder().background_maintenance(false).open(dir).unwrap();
    let before = SystemClock.now_ms();
    cache.set(b"future", b"f", Some(Duration::from_secs(10 * 86_400))).unwrap();
    let after = SystemClock.now_ms();
    cache.close().unwrap();
    (before + 10 * DAY, after + 10 * DAY)
}

fn dump(dir: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let a = keg().arg("dump").arg(dir).args(["--format", "jsonl"]).args(extra).assert().success();
    jsonl(&a.get_output().stdout)
}

#[test]
fn jsonl_rows_match_the_history_written() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (lo, hi) = build(dir.path());
    let rows = dump(dir.path(), &[]);
    // (key field, key, value len, kind, status, seq)
    let expected: [(&str, &str, u64, &str, &str, u64); 5] = [
        ("key", "alpha", 3, "value", "shadowed", 1),
        ("key", "ttl", 9, "value", "expired", 2),
        ("key", "alpha", 3, "value", "live", 3),
        ("key", "beta", 3, "value", "shadowed", 4),
        ("key_b64", "/wBr", 4, "value", "live", 6),
    ];
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let mut offset = SEG_HEADER;
    for (row, (field, key, vlen, kind, status, seq)) in rows.iter().zip(expected) {
        let key_len = if field == "key" { key.len() as u64 } else { 3 };
        assert_eq!(row["segment"], 1, "{row}");
        assert_eq!(row["log"], "probation", "{row}");
        assert_eq!(row["offset"], offset, "{row}");
        assert_eq!(row["len"], 28 + key_len + vlen, "{row}");
        assert_eq!(row[field], key, "{row}");
        assert_eq!(row["key_len"], key_len, "{row}");
        assert_eq!(row["value_len"], vlen, "{row}");
        assert_eq!(row["kind"], kind, "{row}");
        assert_eq!(row["status"], status, "{row}");
        assert_eq!(row["checksum"], "ok", "{row}");
        assert_eq!(row["seq"], seq, "{row}");
        assert_eq!(row["flags"], 0, "{row}");
        assert!(row.get("value").is_none() && row.get("value_b64").is_none(), "values only with --values");
        offset += row["len"].as_u64().unwrap();
    }
    assert!(rows[4].get("key").is_none(), "a non-UTF-8 key appears only as key_b64");
    // Expiry: exact for the manual clock (T0 + 1h), none for the others.
    assert_eq!(rows[1]["expires"], "2023-11-14T23:13:20.000Z");
    assert_eq!(rows[1]["expires_ms"], T0 + 3_600_000);
    for i in [0, 2, 3, 4, 6] {
        assert_eq!((&rows[i]["expires"], &rows[i]["expires_ms"]), (&Value::Null, &Value::Null), "{}", rows[i]);
    }
    // The second session went on appending to the same segment.
    let future = &rows[5];
    assert_eq!((&future["segment"], &future["offset"], &future["key"]), (&json!(1), &json!(offset), &json!("future")));
    assert_eq!(future["status"], "live");
    let exp = future["expires_ms"].as_u64().unwrap();
    assert!((lo..=hi).contains(&exp), "{exp} not in {lo}..={hi}");
    assert!(future["expires"].as_str().unwrap().ends_with('Z'));
    // Deletes go to the main log: segment 2.
    let t = &rows[6];
    assert_eq!((&t["segment"], &t["log"], &t["offset"]), (&json!(2), &json!("main"), &json!(SEG_HEADER)));
    assert_eq!(
        (&t["key"], &t["kind"], &t["status"], &t["seq"]),
        (&json!("beta"), &json!("tombstone"), &json!("tombstone"), &json!(5))
    );
    assert_eq!((&t["len"], &t["value_len"]), (&json!(28 + 4), &json!(0)));
}

#[test]
fn values_are_shown_cut_to_the_limit_in_text_or_base64() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let rows = dump(dir.path(), &["--values", "--max-value-bytes", "2"]);
    assert_eq!((&rows[0]["value"], &rows[0]["value_truncated"]), (&json!("on"), &json!(true)));
    // The first two bytes of [0, 1, 2, 255] are valid UTF-8, so they show as text.
    assert_eq!((&rows[4]["value"], &rows[4]["value_truncated"]), (&json!("\u{0}\u{1}"), &json!(true)));
    let rows = dump(dir.path(), &["--values"]);
    assert_eq!((&rows[2]["value"], &rows[2]["value_truncated"]), (&json!("uno"), &json!(false)));
    assert_eq!(rows[4]["value_b64"], "AAEC/w==");
    assert!(rows[6].get("value").is_none(), "a tombstone has no value");
}

#[test]
fn filters_select_live_entries_a_key_or_a_prefix() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let keys = |rows: Vec<Value>| -> Vec<String> {
        rows.iter().map(|r| r.get("key").or(r.get("key_b64")).unwrap().as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(keys(dump(dir.path(), &["--live"])), ["alpha", "/wBr", "future"]);
    assert_eq!(keys(dump(dir.path(), &["--key", "beta"])), ["beta", "beta"]);
    assert_eq!(keys(dump(dir.path(), &["--prefix", "al"])), ["alpha", "alpha"]);
    assert_eq!(keys(dump(dir.path(), &["--prefix", "nothing"])), Vec::<String>::new());
    let statuses: Vec<_> =
        dump(dir.path(), &["--no-index"]).iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, ["unindexed", "unindexed", "unindexed", "unindexed", "unindexed", "unindexed", "tombstone"]);
}

#[test]
fn a_single_segment_file_dumps_like_its_directory() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let all = dump(dir.path(), &[]);
    let one = dump(&seg_path(dir.path(), 1), &[]);
    assert_eq!(one, all[..6].to_vec());
    // Copied out of its cache, a segment still dumps; nothing can say what is live.
    let elsewhere = tempfile::tempdir().unwrap();
    for id in [1, 2] {
        std::fs::copy(seg_path(dir.path(), id), elsewhere.path().join(format!("0000000{id}.seg"))).unwrap();
    }
    let rows = dump(&elsewhere.path().join("00000001.seg"), &[]);
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[2]["status"], "unindexed");
    let rows = dump(&elsewhere.path().join("00000002.seg"), &[]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "tombstone");
}

#[test]
fn table_has_a_header_and_one_escaped_row_per_record() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let a = keg().arg("dump").arg(dir.path()).arg("--values").assert().success();
    let out = stdout_of(&a);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert!(lines[0].starts_with("SEGMENT") && lines[0].contains("STATUS") && lines[0].ends_with("VALUE"));
    let cells: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "00000001",
            "68",
            "40",
            "value",
            "expired",
            "ok",
            "2",
            "0",
            "2023-11-14T23:13:20.000Z",
            "9",
            "-",
            "-",
            "ttl",
            "gone\\x20soon"
        ]
    );
    assert!(lines[5].contains("\\xff\\x00k") && lines[5].contains("\\x00\\x01\\x02\\xff"), "{}", lines[5]);
    assert!(lines[7].contains("tombstone  tombstone"));
}

#[test]
fn flags_and_versions_show_in_both_formats() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().background_maintenance(false).open(dir.path()).unwrap();
    let opts = |flags| keg::SetOptions::new().flags(flags);
    let v1 = cache.set_with(b"plain", b"p", &opts(0)).unwrap();
    let v2 = cache.set_with(b"flagged", b"f", &opts(7)).unwrap();
    let v3 = cache.set_with(b"all-ones", b"x", &opts(u32::MAX)).unwrap();
    let v4 = cache.append(b"flagged", b"g").unwrap().unwrap(); // keeps its flags
    cache.close().unwrap();
    let rows = dump(dir.path(), &["--values"]);
    let got: Vec<(&str, u64, u64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap(),
                r["seq"].as_u64().unwrap(),
                r["flags"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("plain", v1, 0, "live"),
            ("flagged", v2, 7, "shadowed"),
            ("all-ones", v3, u32::MAX as u64, "live"),
            ("flagged", v4, 7, "live")
        ]
    );
    // The version a live row shows is the one get_entry gives.
    let cache = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(cache.get_entry(b"flagged").unwrap().unwrap().version, v4);
    let a = keg().arg("dump").arg(dir.path()).assert().success();
    let out = stdout_of(&a);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header[6..9], ["SEQ", "FLAGS", "EXPIRES"], "{out}");
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split_whitespace().collect()).collect();
    let flags: Vec<&str> = cells.iter().map(|c| c[7]).collect();
    assert_eq!(flags, ["0", "7", "4294967295", "7"], "{out}");
}

#[test]
fn damaged_records_are_listed_and_dumping_goes_on() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let seg = seg_path(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[(SEG_HEADER + 36 + 28 + 3 + 2) as usize] ^= 0x40; // inside the value of the second record
    std::fs::write(&seg, &bytes).unwrap();
    let a = keg().arg("dump").arg(dir.path()).args(["--format", "jsonl"]).assert().success();
    let rows = jsonl(&a.get_output().stdout);
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[1]["status"], "damaged");
    assert_eq!(rows[1]["checksum"], "mismatch");
    assert_eq!((&rows[1]["offset"], &rows[1]["len"]), (&json!(68), &json!(40)));
    assert_eq!(rows[2]["key"], "alpha", "the record after the damage is still found");
    assert!(stderr_of(&a).contains("damaged"));
}
