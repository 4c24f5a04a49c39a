//! One record as a row of `keg dump` (table or jsonl) and `keg export`.

use keg::format::record::{self, Kind, Record, Scope};
use keg::format::segment::LogKind;
use keg::format::DecodeError;
use keg::inspect::{Classifier, Item};
use serde_json::{Map, Value};

use crate::common::{escape, put_bytes};
use crate::time::iso8601;

/// The jsonl fields, for `keg dump --help` (docs/cli.md repeats this table).
pub const FIELDS_HELP: &str = "\
JSONL FIELDS (one object per line, one line per record, in log order: segments by id, records by offset):
  segment          segment id: the file 0000002a.seg is segment 42 (null if the file name has none)
  log              \"probation\" or \"main\", from the segment header (null if the header is bad)
  offset           byte offset of the record in its segment file
  len              bytes the record takes on disk (for a damaged row: bytes up to the next intact record)
  kind             \"value\", \"tombstone\", \"invalidation\" (Cache::invalidate_tag, Cache::drop_namespace)
                   or \"other\" (damaged, or a record this version does not write)
  status           \"live\"      the index points here and it has not expired: get serves it
                   \"expired\"   the index points here but its expiry has passed
                   \"invalidated\" the index points here but its tag was invalidated or its
                               namespace dropped since: get misses it
                   \"shadowed\"  a value the index does not point at: overwritten or deleted later,
                               or discarded by recovery
                   \"tombstone\" a delete marker
                   \"invalidation\" an invalidation record (kind \"invalidation\")
                   \"unindexed\" outside what the index covers: appended after dump read the index,
                               in a segment the engine ignores, after damage, or --no-index
                   \"ignored\"   an intact record of a kind or flags this version does not define
                   \"damaged\"   bytes that are not an intact record
  checksum         \"ok\", \"mismatch\", or \"truncated\" (the record runs past the end of the file)
  seq              write sequence number; for the record get serves, the item's version
                   (Entry::version, memcached's cas unique)
  flags            the user flags stored with the value (SetOptions::flags; 0 when none)
  namespace        for a key written through a namespace (Cache::namespace): its name (namespace_b64 when
                   not UTF-8); null for a plain key. key is then the key within the namespace
  key              the key as a JSON string, when it is valid UTF-8
  key_b64          otherwise: the key in standard base64 (RFC 4648, with padding); never both
  key_len          key length in bytes
  value_len        value length in bytes
  tags             the tags stored with the value (SetOptions::tags), a list of strings; tags_b64 instead,
                   a list of base64 strings, when one is not UTF-8
  invalidates      for an invalidation record: \"tag\" or \"namespace\"; its name is in name (or name_b64)
  expires          expiry as ISO 8601 UTC, e.g. \"2024-05-01T12:00:00.000Z\"; null when none
  expires_ms       the same expiry in Unix milliseconds; null when none
  value            with --values, for value records: the value (its first --max-value-bytes bytes) as a string, when
                   those bytes are UTF-8 (a character cut at the limit is dropped)
  value_b64        with --values, otherwise: those bytes in standard base64
  value_truncated  with --values: true when the value shown is shorter than value_len
  error            for damaged and ignored rows: what is wrong
Damaged and ignored rows have no key, seq, flags or expiry fields; invalidation rows have seq, invalidates and
name.

TABLE: the same, in columns (NAMESPACE and TAGS: \"-\" when none; tags separated by commas, a comma in a tag
as \\x2c; an invalidation row shows its name under TAGS or NAMESPACE); keys and values are escaped so that a cell holds no whitespace:
bytes outside printable ASCII, and space, as \\xNN, backslash as \\\\. A cut value ends in \"...\".";

/// Where a row's record lives.
#[derive(Debug, Clone, Copy)]
pub struct SegCtx {
    pub id: Option<u32>,
    pub log: Option<LogKind>,
}

/// The status column for `item`.
pub fn status_of(item: &Item<'_>, seg: &SegCtx, classifier: Option<&Classifier<'_>>) -> &'static str {
    match item {
        Item::Record { record, .. } if record.kind == Kind::Tombstone => "tombstone",
        Item::Record { offset, record } => match (seg.id, classifier) {
            (Some(id), Some(c)) => c.classify(id, *offset, record).as_str(),
            _ => "unindexed",
        },
        Item::Invalidation { .. } => "invalidation",
        Item::Other { .. } => "ignored",
        Item::Damaged(_) => "damaged",
    }
}

/// A record's key as its writer gave it, and its namespace if it has one.
fn split_key<'a>(record: &Record<'a>) -> (Option<&'a [u8]>, &'a [u8]) {
    match record::namespace_of(record.key).filter(|_| record.namespaced()) {
        Some(ns) => (Some(ns), &record.key[1 + ns.len()..]),
        None => (None, record.key),
    }
}

/// What an invalidation record invalidates.
fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Tag => "tag",
        Scope::Namespace => "namespace",
    }
}

fn kind_of(item: &Item<'_>) -> &'static str {
    match item {
        Item::Record { record, .. } => match record.kind {
            Kind::Value => "value",
            Kind::Tombstone => "tombstone",
            Kind::Invalidation => "invalidation",
        },
        Item::Invalidation { .. } => "invalidation",
        _ => "other",
    }
}

fn checksum_of(item: &Item<'_>) -> &'static str {
    match item {
        Item::Damaged(d) => match d.error {
            DecodeError::Truncated { .. } => "truncated",
            _ => "mismatch",
        },
        _ => "ok",
    }
}

fn error_of(item: &Item<'_>) -> Option<String> {
    match item {
        Item::Record { .. } | Item::Invalidation { .. } => None,
        Item::Other { reason, .. } => Some((*reason).to_owned()),
        Item::Damaged(d) => Some(if d.resumed {
            format!("{}; the next intact record starts {} bytes later", d.error, d.len)
        } else {
            format!("{}; nothing intact follows to the end of the file", d.error)
        }),
    }
}

/// The first `max` bytes of `value`, cut back to a character boundary when
/// the cut splits a UTF-8 character.
fn shown(value: &[u8], max: usize) -> &[u8] {
    let cut = &value[..value.len().min(max)];
    match std::str::from_utf8(cut) {
        Err(e) if e.error_len().is_none() && cut.len() < value.len() => &cut[..e.valid_up_to()],
        _ => cut,
    }
}

/// The row as a JSON object. `values`: include values, at most this many bytes.
pub fn json(item: &Item<'_>, seg: &SegCtx, status: &str, values: Option<usize>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("segment".into(), seg.id.into());
    o.insert("log".into(), seg.log.map(|l| l.name()).into());
    o.insert("offset".into(), item.offset().into());
    o.insert("len".into(), item.len().into());
    o.insert("kind".into(), kind_of(item).into());
    o.insert("status".into(), status.into());
    o.insert("checksum".into(), checksum_of(item).into());
    if let Item::Record { record, .. } = item {
        let h = &record.header;
        o.insert("seq".into(), h.seq.into());
        o.insert("flags".into(), record.user_flags.into());
        let (namespace, key) = split_key(record);
        match namespace {
            Some(ns) => put_bytes(&mut o, "namespace", ns),
            None => drop(o.insert("namespace".into(), Value::Null)),
        }
        put_bytes(&mut o, "key", key);
        o.insert("key_len".into(), key.len().into());
        let tags: Vec<&[u8]> = record::tags(record.tags).collect();
        match tags.iter().map(|t| std::str::from_utf8(t)).collect::<Result<Vec<&str>, _>>() {
            Ok(text) => drop(o.insert("tags".into(), text.into())),
            Err(_) => {
                let b64: Vec<String> = tags.iter().map(|t| crate::common::b64(t)).collect();
                o.insert("tags_b64".into(), b64.into());
            }
        }
        o.insert("value_len".into(), record.value.len().into());
        let exp = (h.expires_ms != 0).then_some(h.expires_ms);
        o.insert("expires".into(), exp.map(iso8601).into());
        o.insert("expires_ms".into(), exp.into());
        if let (Some(max), Kind::Value) = (values, record.kind) {
            let v = shown(record.value, max);
            put_bytes(&mut o, "value", v);
            o.insert("value_truncated".into(), (v.len() < record.value.len()).into());
        }
    }
    if let Item::Invalidation { invalidation: inv, .. } = item {
        o.insert("seq".into(), inv.seq.into());
        o.insert("invalidates".into(), scope_name(inv.scope).into());
        put_bytes(&mut o, "name", inv.name);
    }
    if let Item::Other { header, .. } = item {
        o.insert("key_len".into(), header.key_len.into());
        o.insert("value_len".into(), header.value_len.into());
    }
    if let Some(e) = error_of(item) {
        o.insert("error".into(), e.into());
    }
    o
}

/// The header line of the table.
pub fn table_header(values: bool) -> String {
    let mut s = format!(
        "{:<8}  {:>10}  {:>8}  {:<9}  {:<9}  {:<9}  {:>8}  {:>10}  {:<24}  {:>8}  {:<9}  {:<9}  KEY",
        "SEGMENT",
        "OFFSET",
        "LEN",
        "KIND",
        "STATUS",
        "CHECKSUM",
        "SEQ",
        "FLAGS",
        "EXPIRES",
        "VLEN",
        "NAMESPACE",
        "TAGS"
    );
    if values {
        s.push_str("  VALUE");
    }
    s
}

/// The row as a table line (no newline).
pub fn table(item: &Item<'_>, seg: &SegCtx, status: &str, values: Option<usize>) -> String {
    let seg_name = seg.id.map_or_else(|| "-".to_owned(), |id| format!("{id:08x}"));
    let dash = || "-".to_owned();
    let (seq, flags, exp, vlen, ns, tags, key) = match item {
        Item::Record { record, .. } => {
            let h = &record.header;
            let exp = if h.expires_ms == 0 { dash() } else { iso8601(h.expires_ms) };
            let flags = record.user_flags.to_string();
            let (ns, key) = split_key(record);
            let tags: Vec<String> = record::tags(record.tags).map(escape_tag).collect();
            let tags = if tags.is_empty() { dash() } else { tags.join(",") };
            let ns = ns.map_or_else(dash, escape);
            (h.seq.to_string(), flags, exp, record.value.len().to_string(), ns, tags, escape(key))
        }
        Item::Invalidation { invalidation: inv, .. } => {
            let (ns, tags) = match inv.scope {
                Scope::Tag => (dash(), escape_tag(inv.name)),
                Scope::Namespace => (escape(inv.name), dash()),
            };
            (inv.seq.to_string(), dash(), dash(), "0".into(), ns, tags, dash())
        }
        Item::Other { header, .. } => {
            (header.seq.to_string(), dash(), dash(), header.value_len.to_string(), dash(), dash(), dash())
        }
        Item::Damaged(_) => (dash(), dash(), dash(), dash(), dash(), dash(), dash()),
    };
    let mut s = format!(
        "{seg_name:<8}  {:>10}  {:>8}  {:<9}  {status:<9}  {:<9}  {seq:>8}  {flags:>10}  {exp:<24}  {vlen:>8}  {ns:<9}  {tags:<9}  {key}",
        item.offset(),
        item.len(),
        kind_of(item),
        checksum_of(item),
    );
    if let (Some(max), Item::Record { record, .. }) = (values, item) {
        let v = shown(record.value, max);
        s.push_str("  ");
        s.push_str(&escape(v));
        if v.len() < record.value.len() {
            s.push_str("...");
        }
    }
    if let Some(e) = error_of(item) {
        s.push_str("  ! ");
        s.push_str(&e);
    }
    s
}

/// A tag for a table cell: escaped, and a comma (which separates tags) as `\x2c`.
fn escape_tag(tag: &[u8]) -> String {
    escape(tag).replace(',', "\\x2c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_cuts_at_char_boundaries_only_when_cutting() {
        assert_eq!(shown(b"hello", 64), b"hello");
        assert_eq!(shown(b"hello", 3), b"hel");
        assert_eq!(shown("héllo".as_bytes(), 2), b"h");
        assert_eq!(shown(b"\xff\xfe\xfd", 2), b"\xff\xfe");
        assert_eq!(shown(b"ab\xc3", 64), b"ab\xc3");
    }
}
