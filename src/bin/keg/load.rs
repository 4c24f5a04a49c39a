//! `keg load`: bulk import from jsonl.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use keg::{Clock, SetOptions, SystemClock};
use serde_json::{Map, Value};

use crate::common::{get_bytes, note, CmdResult, Failure, WriterOpts, EXIT_ERROR};
use crate::time::parse_iso8601;
use crate::units::parse_duration;

/// Store every entry of a jsonl file (as `keg export` writes it) in the cache.
///
/// Each line is one JSON object with the key in "key" (UTF-8 text) or
/// "key_b64" (base64), the value in "value" or "value_b64", and optionally
/// an expiry: "expires_ms" (Unix ms), "expires" (ISO 8601 UTC), "ttl_ms"
/// (ms from now) or "ttl" (a duration such as "30s" or "1h"), looked for in
/// that order; null or absent means no expiry. Entries already expired are
/// skipped, as are rows whose "kind" is not "value" or whose "status" is not
/// "live" (so `keg dump --format jsonl --values` output can be fed in too).
/// "flags" (a number below 2^32; absent or null: 0) is stored with the value
/// as its user flags; "tags" (a list of strings) or "tags_b64" (a list of
/// base64 strings) as its tags; "namespace" (or "namespace_b64"; absent or
/// null: none) puts the key in that namespace. A row with
/// "value_truncated": true is refused. Other fields are ignored.
/// Later rows for the same key replace earlier ones.
///
/// Takes the cache directory's lock (and creates the cache if the directory
/// does not exist); fails with exit status 3 when another process has the
/// cache open. Stops at the first bad line, naming it; rows before it stay
/// loaded.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// The jsonl file, or - for stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    writer: WriterOpts,
}

#[derive(Default)]
struct Counts {
    loaded: u64,
    expired: u64,
    not_live: u64,
}

pub fn run(args: Args) -> CmdResult {
    let name = args.file.display().to_string();
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&args.file).map_err(|e| Failure::io(&name, e))?)
    };
    let cache = args.writer.open(&args.dir, "open the cache for writing", true)?;
    let mut counts = Counts::default();
    let result = load(&cache, BufReader::with_capacity(1 << 20, input), &name, &mut counts);
    let closed = cache.close().map_err(|e| Failure::keg("close the cache", e));
    let mut msg = format!("loaded {} entries", counts.loaded);
    if counts.expired > 0 {
        msg.push_str(&format!("; skipped {} already expired", counts.expired));
    }
    if counts.not_live > 0 {
        msg.push_str(&format!("; skipped {} rows that are not live values", counts.not_live));
    }
    note(msg);
    result?;
    closed?;
    Ok(ExitCode::SUCCESS)
}

fn load(cache: &keg::Cache, input: impl BufRead, name: &str, counts: &mut Counts) -> Result<(), Failure> {
    for (i, line) in input.lines().enumerate() {
        let at = || format!("{name}:{}", i + 1);
        let line = line.map_err(|e| Failure::io(at(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Map<String, Value> = serde_json::from_str(&line)
            .map_err(|e| Failure::new(EXIT_ERROR, format!("{}: not a JSON object: {e}", at())))?;
        let bad = |msg: String| Failure::new(EXIT_ERROR, format!("{}: {msg}", at()));
        let is = |field: &str, want: &str| row.get(field).is_none_or(|v| v.as_str() == Some(want));
        if !is("kind", "value") || !is("status", "live") {
            counts.not_live += 1;
            continue;
        }
        if row.get("value_truncated").and_then(Value::as_bool) == Some(true) {
            return Err(bad(
                "the value was cut (\"value_truncated\": true); export whole values with `keg export`".into()
            ));
        }
        let key = get_bytes(&row, "key").map_err(bad)?;
        let namespace = match (row.get("namespace"), row.get("namespace_b64")) {
            (None | Some(Value::Null), None) => None,
            _ => Some(get_bytes(&row, "namespace").map_err(bad)?),
        };
        let tags = tags(&row).map_err(bad)?;
        let value = get_bytes(&row, "value").map_err(bad)?;
        let flags = match row.get("flags").filter(|v| !v.is_null()) {
            None => 0,
            Some(v) => v
                .as_u64()
                .and_then(|f| u32::try_from(f).ok())
                .ok_or_else(|| bad("\"flags\" must be a whole number below 2^32".into()))?,
        };
        let ttl = match expiry(&row).map_err(bad)? {
            Expiry::Never => None,
            Expiry::At(ms) => match ms.checked_sub(SystemClock.now_ms()).filter(|&left| left > 0) {
                Some(left) => Some(Duration::from_millis(left)),
                None => {
                    counts.expired += 1;
                    continue;
                }
            },
            Expiry::In(d) if d.is_zero() => {
                counts.expired += 1;
                continue;
            }
            Expiry::In(d) => Some(d),
        };
        let opts = SetOptions::new().ttl(ttl).flags(flags).tags(tags);
        let stored = match namespace {
            Some(ns) => cache.namespace(ns).and_then(|n| n.set_with(&key, &value, &opts)),
            None => cache.set_with(&key, &value, &opts),
        };
        stored.map_err(|e| bad(format!("cannot store this entry: {e}")))?;
        counts.loaded += 1;
    }
    Ok(())
}

/// The row's tags: "tags" (strings) or "tags_b64" (base64 strings); none when absent or null.
fn tags(row: &Map<String, Value>) -> Result<Vec<Vec<u8>>, String> {
    let list = |field: &str| match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(_) => Err(format!("\"{field}\" must be a list of strings")),
    };
    match (list("tags")?, list("tags_b64")?) {
        (Some(_), Some(_)) => Err("both \"tags\" and \"tags_b64\" are present".into()),
        (Some(items), None) => items
            .iter()
            .map(|t| {
                t.as_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| "\"tags\" must be a list of strings".into())
            })
            .collect(),
        (None, Some(items)) => items
            .iter()
            .map(|t| {
                let s = t.as_str().ok_or("\"tags_b64\" must be a list of strings")?;
                crate::common::from_b64(s).map_err(|e| format!("\"tags_b64\" holds invalid base64: {e}"))
            })
            .collect(),
        (None, None) => Ok(Vec::new()),
    }
}

enum Expiry {
    Never,
    At(u64),
    In(Duration),
}

fn expiry(row: &Map<String, Value>) -> Result<Expiry, String> {
    let present = |f: &str| row.get(f).filter(|v| !v.is_null());
    if let Some(v) = present("expires_ms") {
        return v.as_u64().map(Expiry::At).ok_or_else(|| "\"expires_ms\" must be a whole number of Unix ms".into());
    }
    if let Some(v) = present("expires") {
        let s = v.as_str().ok_or("\"expires\" must be a string")?;
        return parse_iso8601(s).map(Expiry::At);
    }
    if let Some(v) = present("ttl_ms") {
        return v
            .as_u64()
            .map(|ms| Expiry::In(Duration::from_millis(ms)))
            .ok_or_else(|| "\"ttl_ms\" must be a whole number".into());
    }
    if let Some(v) = present("ttl") {
        let s = v.as_str().ok_or("\"ttl\" must be a string such as \"30s\"")?;
        return parse_duration(s).map(Expiry::In);
    }
    Ok(Expiry::Never)
}
