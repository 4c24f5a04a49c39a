//! Tags, namespaces and invalidations in `keg dump`, `keg verify`, `keg
//! export` and `keg load`: dump shows each value's tags and namespace and
//! lists invalidation records; what an invalidation hides is neither live
//! nor exported; export then load carries tags and namespaces.
#![cfg(feature = "cli")]

use crate::common::*;
use keg::{Cache, SetOptions};
use serde_json::{json, Value};

/// A cache with tagged and namespaced entries, a dropped namespace and an
/// invalidated tag.
fn build(dir: &std::path::Path) {
    let cache = Cache::builder().background_maintenance(false).open(dir).unwrap();
    cache.set_with(b"a", b"1", &SetOptions::new().flags(3).tags(["author:7", "lang:en"])).unwrap();
    cache.namespace("blog").unwrap().set_with(b"post", b"2", &SetOptions::new().tags(["author:7"])).unwrap();
    cache.set(b"plain", b"3", None).unwrap();
    cache.namespace("old").unwrap().set(b"x", b"4", None).unwrap();
    cache.drop_namespace("old").unwrap();
    cache.set_with(b"b", b"5", &SetOptions::new().tags(["author:8"])).unwrap();
    assert_eq!(cache.invalidate_tag("author:8").unwrap(), 1);
    cache.set_with(&[0xff, b'k'], b"6", &SetOptions::new().tags([&b"bin\xff"[..], b"c,d"])).unwrap();
    cache.close().unwrap();
}

fn row<'r>(rows: &'r [Value], key: &str) -> &'r Value {
    rows.iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("no row of key {key}: {rows:?}"))
}

#[test]
fn dump_shows_tags_namespaces_and_invalidation_records() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let a = keg().arg("dump").arg(dir.path()).args(["--format", "jsonl"]).assert().success();
    let rows = jsonl(&a.get_output().stdout);
    let a_row = row(&rows, "a");
    assert_eq!(
        (&a_row["tags"], &a_row["namespace"], &a_row["flags"], &a_row["status"]),
        (&json!(["author:7", "lang:en"]), &Value::Null, &json!(3), &json!("live"))
    );
    let post = row(&rows, "post");
    assert_eq!(
        (&post["namespace"], &post["tags"], &post["key_len"]),
        (&json!("blog"), &json!(["author:7"]), &json!(4))
    );
    assert_eq!(row(&rows, "plain")["tags"], json!([]));
    let x = row(&rows, "x");
    assert_eq!((&x["namespace"], &x["status"]), (&json!("old"), &json!("invalidated")));
    assert_eq!(row(&rows, "b")["status"], "invalidated");
    let bin = rows.iter().find(|r| r["key_b64"] == "/2s=").expect("the binary key's row");
    assert_eq!(bin["tags_b64"], json!(["Ymlu/w==", "Yyxk"]), "one tag is not UTF-8: all in base64");
    let invalidations: Vec<(&Value, &Value, &Value)> = rows
        .iter()
        .filter(|r| r["kind"] == "invalidation")
        .map(|r| (&r["status"], &r["invalidates"], &r["name"]))
        .collect();
    let (tag, ns) = (json!("tag"), json!("namespace"));
    let (inv, old, author) = (json!("invalidation"), json!("old"), json!("author:8"));
    assert_eq!(invalidations, [(&inv, &ns, &old), (&inv, &tag, &author)]);
    assert!(rows.iter().all(|r| r["kind"] != "other"), "{rows:?}");

    // The table: a NAMESPACE and a TAGS column before the key.
    let a = keg().arg("dump").arg(dir.path()).assert().success();
    let out = stdout_of(&a);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0][10..], ["NAMESPACE", "TAGS", "KEY"], "{out}");
    let cells = |key: &str| lines.iter().find(|c| c.last() == Some(&key)).unwrap_or_else(|| panic!("{key}: {out}"));
    assert_eq!(cells("a")[10..], ["-", "author:7,lang:en", "a"]);
    assert_eq!(cells("post")[10..], ["blog", "author:7", "post"]);
    assert_eq!(cells("\\xffk")[10..], ["-", "bin\\xff,c\\x2cd", "\\xffk"]);
    let inv_rows: Vec<&[&str]> = lines.iter().filter(|c| c[3] == "invalidation").map(|c| &c[10..]).collect();
    assert_eq!(inv_rows, [&["old", "-", "-"][..], &["-", "author:8", "-"][..]], "{out}");
}

#[test]
fn verify_and_stats_take_invalidation_records_as_healthy() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let a = keg().arg("verify").arg(dir.path()).assert().success();
    let all = format!("{}{}", stdout_of(&a), stderr_of(&a));
    assert!(!all.contains("does not define") && !all.to_lowercase().contains("warning"), "{all}");
    let a = keg().arg("stats").arg(dir.path()).args(["--format", "jsonl"]).assert().success();
    let stats: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!((&stats["live_entries"], &stats["invalidated_entries"]), (&json!(4), &json!(2)), "{stats}");
}

#[test]
fn export_then_load_carries_tags_and_namespaces_and_nothing_invalidated() {
    let _serial = serial();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("export.jsonl");
    let a = keg().arg("export").arg(src.path()).arg(&file).assert().success();
    assert!(stderr_of(&a).contains("exported 4 entries"), "{}", stderr_of(&a));
    let rows = jsonl(&std::fs::read(&file).unwrap());
    let keys: Vec<&Value> = rows.iter().map(|r| r.get("key").unwrap_or(&r["key_b64"])).collect();
    assert!(!keys.contains(&&json!("x")) && !keys.contains(&&json!("b")), "invalidated entries exported: {keys:?}");

    let dst = work.path().join("copy");
    let a = keg().arg("load").arg(&dst).arg(&file).assert().success();
    assert!(stderr_of(&a).contains("loaded 4 entries"), "{}", stderr_of(&a));
    let cache = Cache::open(&dst).unwrap();
    let blog = cache.namespace("blog").unwrap();
    assert_eq!(cache.get_entry(b"a").unwrap().unwrap().flags, 3);
    assert_eq!(blog.get(b"post").unwrap().unwrap(), b"2");
    assert!(cache.get(b"\x04blogpost").unwrap().is_none(), "a namespace's key came back as a plain key");
    assert!(cache.namespace("old").unwrap().get(b"x").unwrap().is_none());
    assert!(cache.get(b"b").unwrap().is_none());
    // The tags came along: invalidating them reaches the loaded entries.
    assert_eq!(cache.invalidate_tag("author:7").unwrap(), 2);
    assert!(cache.get(b"a").unwrap().is_none() && blog.get(b"post").unwrap().is_none());
    assert_eq!(cache.invalidate_tag(b"c,d").unwrap(), 1);
    assert_eq!(cache.get(b"plain").unwrap().unwrap(), b"3");
}
