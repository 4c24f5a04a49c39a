//! Corruption of closed caches: random bit flips, zeroed ranges and
//! truncations in segments, hint files and the checkpoint, one file or
//! several at once, in caches closed cleanly (every segment has a hint) and in
//! caches whose process was killed (the newest segments have none). For each:
//! - the damage is detectable: `keg verify` reports it (when the CLI is
//!   built), and so does a verifier built here only on `keg::format`'s decoders;
//! - opening the cache succeeds or fails with an error naming a file — it
//!   never panics;
//! - every key reads as a value that was written for it, or as nothing;
//! - the cache then works: it takes writes and reopens;
//! - damage confined to hint files costs nothing: each damaged hint is
//!   ignored, its segment scanned (`recovery_scanned_segments`), and every
//!   key reads exactly as before.
//!
//! Trials: `KEG_CORRUPTION_TRIALS` (default 400 per test); `KEG_CORRUPTION_SEED`
//! varies the damage.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fault_model::*;
use keg::format::checkpoint::Checkpoint;
use keg::format::{hint, record, segment};
use keg::{Cache, ManualClock};

const T0: u64 = 1_700_000_000_000;
const KEYS: u32 = 60;

fn builder(clock: &ManualClock) -> keg::Builder {
    Cache::builder().max_bytes(4 << 20).segment_bytes(16 << 10).background_maintenance(false).clock(clock.clone())
}

/// A closed cache and every value ever written per key.
struct Pristine {
    dir: tempfile::TempDir,
    written: BTreeMap<u32, BTreeSet<Vec<u8>>>,
    /// What each key read before the damage.
    reads: BTreeMap<u32, Option<Vec<u8>>>,
}

fn pristine(clean_close: bool) -> Pristine {
    let dir = fast_tempdir();
    let clock = ManualClock::new(T0);
    let cache = builder(&clock).open(dir.path()).unwrap();
    let mut written: BTreeMap<u32, BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut rng = Rng(if clean_close { 11 } else { 12 });
    for i in 0..900 {
        let k = rng.below(KEYS as u64) as u32;
        match rng.below(10) {
            0 | 1 => drop(cache.delete(&key(k)).unwrap()),
            _ => {
                let v = value(k, i, 20 + rng.below(900) as usize);
                let ttl = (rng.below(6) == 0).then(|| Duration::from_secs(1 + rng.below(600)));
                cache.set(&key(k), &v, ttl).unwrap();
                written.entry(k).or_default().insert(v);
            }
        }
        if i % 200 == 199 {
            clock.advance(Duration::from_secs(60));
            cache.compact().unwrap();
        }
    }
    let reads = (0..KEYS).map(|k| (k, cache.get(&key(k)).unwrap().map(|v| v.to_vec()))).collect();
    if clean_close {
        cache.close().unwrap();
    } else {
        cache.run_maintenance().unwrap(); // hints for the sealed segments only
        cache.abandon();
    }
    let p = Pristine { dir, written, reads };
    assert_eq!(verify(p.dir.path()), Vec::<String>::new(), "the verifier flags an undamaged cache");
    if let Some(report) = keg_verify(p.dir.path()) {
        assert_eq!(report, "", "keg verify flags an undamaged cache");
    }
    p
}

/// `keg verify` in miniature, from the format decoders alone: every problem found.
fn verify(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut segs: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut hints: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let id = |ext: &str| name.strip_suffix(ext).and_then(|s| u32::from_str_radix(s, 16).ok());
        if name == "checkpoint" {
            if let Err(e) = Checkpoint::decode(&bytes) {
                problems.push(format!("checkpoint: {e}"));
            }
        } else if let Some(id) = id(".seg") {
            segs.insert(id, bytes);
        } else if let Some(id) = id(".hint") {
            hints.insert(id, bytes);
        }
    }
    // Segments: header, reserved bytes, every record's checksum.
    let mut records: BTreeMap<u32, Vec<(u64, u64, bool, u64)>> = BTreeMap::new();
    for (&id, bytes) in &segs {
        match segment::SegmentHeader::decode(bytes) {
            Err(e) => {
                problems.push(format!("{id:08x}.seg: header: {e}"));
                continue;
            }
            Ok(h) if h.id != id => problems.push(format!("{id:08x}.seg: header names segment {}", h.id)),
            Ok(_) => {}
        }
        if bytes[28..32] != [0; 4] {
            problems.push(format!("{id:08x}.seg: reserved header bytes are not zero"));
        }
        let mut at = segment::HEADER_LEN;
        let mut recs = Vec::new();
        while at < bytes.len() {
            match record::decode(&bytes[at..]) {
                Ok(r) => {
                    recs.push((at as u64, r.header.seq, r.kind == record::Kind::Tombstone, r.len()));
                    at += r.len() as usize;
                }
                Err(e) => {
                    problems.push(format!("{id:08x}.seg: record at {at}: {e}"));
                    break;
                }
            }
        }
        records.insert(id, recs);
    }
    // Hints: checksums, and agreement with their segment record by record.
    for (&id, bytes) in &hints {
        let (h, entries) = match hint::decode(bytes) {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("{id:08x}.hint: {e}"));
                continue;
            }
        };
        let Some(seg) = segs.get(&id) else {
            problems.push(format!("{id:08x}.hint: no segment"));
            continue;
        };
        if h.segment_id != id || h.data_len != seg.len() as u64 {
            problems.push(format!(
                "{id:08x}.hint: describes {} bytes of segment {}, the file has {}",
                h.data_len,
                h.segment_id,
                seg.len()
            ));
        }
        let recs = records.get(&id).cloned().unwrap_or_default();
        let mut off = segment::HEADER_LEN as u64;
        for (n, e) in entries.enumerate() {
            if !recs
                .iter()
                .any(|&(o, seq, tomb, len)| o == off && seq == e.seq && tomb == e.tombstone && len == e.len as u64)
            {
                problems.push(format!("{id:08x}.hint: entry {n} (seq {}) does not match the record at {off}", e.seq));
                break;
            }
            off += e.len as u64;
        }
    }
    problems
}

/// What `keg verify` reports for `dir` (its findings, one a line; exit code
/// and all), or `None` when the CLI is not built.
fn keg_verify(dir: &Path) -> Option<String> {
    let exe = option_env!("CARGO_BIN_EXE_keg")?;
    let out = std::process::Command::new(exe).arg("verify").arg(dir).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(code == 0 || code == 1, "keg verify exited {code}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(code == 1, stdout.contains("error"), "keg verify's exit code and findings disagree: {stdout}");
    Some(stdout)
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { file: PathBuf, bits: Vec<u64> },
    Zero { file: PathBuf, at: u64, len: u64 },
    Truncate { file: PathBuf, at: u64 },
}

fn apply(d: &Damage) {
    match d {
        Damage::Flip { file, bits } => {
            let mut b = std::fs::read(file).unwrap();
            for &bit in bits {
                if let Some(byte) = b.get_mut((bit / 8) as usize) {
                    *byte ^= 1 << (bit % 8);
                }
            }
            std::fs::write(file, b).unwrap();
        }
        Damage::Zero { file, at, len } => {
            let mut b = std::fs::read(file).unwrap();
            let end = (*at + *len).min(b.len() as u64) as usize;
            let start = (*at as usize).min(end);
            b[start..end].fill(0);
            std::fs::write(file, b).unwrap();
        }
        Damage::Truncate { file, at } => {
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len((*at).min(len)).unwrap();
        }
    }
}

fn random_damage(rng: &mut Rng, file: PathBuf) -> Damage {
    let len = std::fs::metadata(&file).unwrap().len().max(1);
    match rng.below(3) {
        0 => Damage::Flip { file, bits: (0..1 + rng.below(4)).map(|_| rng.below(len * 8)).collect() },
        1 => {
            let at = rng.below(len);
            let span = if rng.below(2) == 0 { 16 } else { 2048 };
            Damage::Zero { file, at, len: 1 + rng.below(span) }
        }
        _ => Damage::Truncate { file, at: rng.below(len) },
    }
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = fast_tempdir();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.path().join(p.file_name().unwrap())).unwrap();
    }
    to
}

fn files(dir: &Path, pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pick(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// Whether `file` is a segment without a hint file that is now a prefix of
/// what it was, ending where a record ended: the state a crash leaves in the
/// segment it was appending to, which no verifier can tell from damage.
fn cut_at_a_record_boundary(before: &BTreeMap<PathBuf, Vec<u8>>, file: &Path) -> bool {
    let (Some(old), Ok(new)) = (before.get(file), std::fs::read(file)) else { return false };
    if file.extension().is_none_or(|e| e != "seg") || before.contains_key(&file.with_extension("hint")) {
        return false;
    }
    let mut at = segment::HEADER_LEN;
    while at < new.len() {
        match record::decode(&old[at..]) {
            Ok(r) => at += r.len() as usize,
            Err(_) => return false,
        }
    }
    at == new.len() && old.starts_with(&new)
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files(dir, |_| true).into_iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect()
}

/// Opens the damaged cache and checks everything it says; returns its stats after reading every key.
fn open_and_check(p: &Pristine, dir: &Path, what: &str) -> Option<keg::Stats> {
    // A clock past every TTL of the pristine cache, so expiry never muddles the check.
    let clock = ManualClock::new(T0 + 1_000_000_000);
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| builder(&clock).open(dir)));
    let cache = match opened {
        Err(_) => panic!("open panicked on {what}"),
        Ok(Err(e)) => {
            let msg = e.to_string();
            assert!(msg.contains(&dir.display().to_string()), "open failed without naming a file: {msg} ({what})");
            return None;
        }
        Ok(Ok(c)) => c,
    };
    let reads = std::panic::catch_unwind(AssertUnwindSafe(|| {
        (0..KEYS).map(|k| (k, cache.get(&key(k)).unwrap().map(|v| v.to_vec()))).collect::<BTreeMap<_, _>>()
    }))
    .unwrap_or_else(|_| panic!("a read panicked on {what}"));
    for (k, v) in &reads {
        if let Some(v) = v {
            assert!(
                p.written.get(k).is_some_and(|w| w.contains(v)),
                "key {k} reads {} which was never written for it ({what})",
                describe(&Some(v.clone()))
            );
        }
    }
    let stats = cache.stats();
    // It works: writes, a clean close, a reopen.
    cache.set(b"after", b"damage", None).unwrap_or_else(|e| panic!("a write after {what} failed: {e}"));
    cache.close().unwrap_or_else(|e| panic!("close after {what} failed: {e}"));
    let cache = builder(&clock).open(dir).unwrap_or_else(|e| panic!("second open after {what} failed: {e}"));
    assert_eq!(cache.get(b"after").unwrap().as_deref(), Some(&b"damage"[..]));
    for (k, v) in &reads {
        let again = cache.get(&key(*k)).unwrap().map(|v| v.to_vec());
        assert!(again.is_none() || again == *v, "key {k} changed between two opens after {what}");
    }
    Some(stats)
}

fn trials(clean_close: bool, pick: fn(&str) -> bool, files_at_once: u64, hints_only: bool) -> (u64, u64) {
    let p = pristine(clean_close);
    let n = env_or("KEG_CORRUPTION_TRIALS", 400);
    let mut rng = Rng(0xbad_da7a + clean_close as u64 + files_at_once * 3 + 1000 * env_or("KEG_CORRUPTION_SEED", 0));
    let (mut done, mut failed_opens) = (0, 0);
    for trial in 0..n {
        let dir = copy_dir(p.dir.path());
        let candidates = files(dir.path(), pick);
        if candidates.is_empty() {
            continue;
        }
        let before = snapshot(dir.path());
        let damages: Vec<Damage> = (0..1 + rng.below(files_at_once))
            .map(|_| {
                let file = candidates[rng.below(candidates.len() as u64) as usize].clone();
                random_damage(&mut rng, file)
            })
            .collect();
        damages.iter().for_each(apply);
        let changed: Vec<PathBuf> =
            before.iter().filter(|(f, b)| std::fs::read(f).ok().as_ref() != Some(b)).map(|(f, _)| f.clone()).collect();
        if changed.is_empty() {
            continue; // e.g. zeros written over zeros
        }
        if changed.iter().all(|f| cut_at_a_record_boundary(&before, f)) {
            continue; // what a crash leaves: nothing can tell it from damage
        }
        let what = format!("trial {trial}: {damages:?}");
        // Detectable: the verifiers report it.
        assert!(!verify(dir.path()).is_empty(), "undetected damage: {what}");
        if let Some(report) = keg_verify(dir.path()) {
            assert!(!report.is_empty(), "keg verify found nothing wrong after {what}");
        }
        match open_and_check(&p, dir.path(), &what) {
            None => failed_opens += 1,
            Some(stats) if hints_only => {
                let damaged_hints = changed.len() as u64;
                assert!(
                    stats.recovery_scanned_segments >= damaged_hints,
                    "{damaged_hints} damaged hints but {} segments scanned ({what})",
                    stats.recovery_scanned_segments
                );
                assert_eq!(stats.corrupt_reads, 0, "({what})");
            }
            Some(_) => {}
        }
        done += 1;
    }
    (done, failed_opens)
}

#[test]
fn damaged_segments_hints_and_checkpoints_of_a_cleanly_closed_cache() {
    let (done, failed) = trials(true, |n| n.ends_with(".seg") || n.ends_with(".hint") || n == "checkpoint", 1, false);
    eprintln!("clean close, one file: {done} damaged caches checked, {failed} opens failed cleanly");
    assert!(done > 0);
}

#[test]
fn several_damaged_files_of_a_killed_cache() {
    let (done, failed) = trials(false, |n| n.ends_with(".seg") || n.ends_with(".hint") || n == "checkpoint", 4, false);
    eprintln!("killed, several files: {done} damaged caches checked, {failed} opens failed cleanly");
    assert!(done > 0);
}

#[test]
fn damaged_hint_files_fall_back_to_scanning_their_segments() {
    let (done, failed) = trials(true, |n| n.ends_with(".hint"), 3, true);
    eprintln!("hint files only: {done} damaged caches checked, {failed} opens failed");
    assert_eq!(failed, 0, "damage to hint files alone made open fail");
    assert!(done > 0);
}

#[test]
fn a_damaged_hint_costs_nothing() {
    // Every key reads exactly as before the damage when only hints are hit.
    let p = pristine(true);
    let mut rng = Rng(99);
    for trial in 0..60 {
        let dir = copy_dir(p.dir.path());
        let hints = files(dir.path(), |n| n.ends_with(".hint"));
        let file = hints[rng.below(hints.len() as u64) as usize].clone();
        let before = std::fs::read(&file).unwrap();
        let d = random_damage(&mut rng, file.clone());
        apply(&d);
        if std::fs::read(&file).unwrap() == before {
            continue; // zeros over zeros
        }
        let clock = ManualClock::new(T0 + 1);
        let cache = builder(&clock).open(dir.path()).unwrap();
        assert!(cache.stats().recovery_scanned_segments >= 1, "trial {trial}: {d:?}");
        for k in 0..KEYS {
            let v = cache.get(&key(k)).unwrap().map(|v| v.to_vec());
            assert_eq!(v, p.reads[&k], "key {k} after {d:?}");
        }
    }
}
