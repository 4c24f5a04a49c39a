//! Shared by the fault, crash and power-cut tests: a history of writes with
//! what each call returned, the values each key may legitimately hold after
//! that history (with or without losing a suffix of it), and the check that
//! an error names the failed operation and its file.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keg::sim::{FaultFs, Op};
use keg::{Cache, Error};

/// A temporary directory on tmpfs when there is one (fsync is free there, and
/// the simulated file system decides what survives a power cut anyway).
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix("keg-test").tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// A value that names its key and the write that stored it, so a wrong answer is recognisable.
pub fn value(key: u32, write: usize, len: usize) -> Vec<u8> {
    let mut v = format!("{key}:{write}:").into_bytes();
    v.resize(v.len().max(len), b'a' + (write % 26) as u8);
    v
}

pub fn key(k: u32) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

/// Which write a value came from (for messages).
pub fn describe(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "absent".into(),
        Some(v) => {
            let end = v.iter().enumerate().filter(|&(_, &b)| b == b':').nth(1).map_or(v.len().min(24), |(i, _)| i);
            format!("{:?}", String::from_utf8_lossy(&v[..end]))
        }
    }
}

/// One attempted write.
#[derive(Clone, Debug)]
pub struct Write {
    pub key: u32,
    /// `None` deletes.
    pub value: Option<Vec<u8>>,
    /// Absolute expiry in ms; 0 = never.
    pub expires_ms: u64,
    /// The call returned `Ok`.
    pub acked: bool,
    /// Evictions counted when the call returned (see [`History::matching_prefix`]).
    pub epoch: u64,
}

/// Every write attempted, in order.
#[derive(Default, Clone, Debug)]
pub struct History {
    pub writes: Vec<Write>,
    pub keys: u32,
}

impl History {
    pub fn new(keys: u32) -> History {
        History { writes: Vec::new(), keys }
    }

    pub fn push(&mut self, key: u32, value: Option<Vec<u8>>, expires_ms: u64, acked: bool) {
        self.writes.push(Write { key, value, expires_ms, acked, epoch: 0 });
    }

    /// `push`, noting how many evictions had been counted when the call returned.
    pub fn push_at(&mut self, key: u32, value: Option<Vec<u8>>, expires_ms: u64, acked: bool, epoch: u64) {
        self.writes.push(Write { key, value, expires_ms, acked, epoch });
    }

    /// The longest prefix of at least `lo` writes that `got` matches at time
    /// `now`, where a key may also be missing if more evictions than
    /// `evictions` had counted by its last write have happened since (the
    /// cache may drop any entry when it evicts).
    pub fn matching_prefix(
        &self,
        got: &BTreeMap<u32, Option<Vec<u8>>>,
        lo: usize,
        now: u64,
        evictions: u64,
    ) -> Option<usize> {
        let lo = lo.min(self.writes.len());
        (lo..=self.writes.len()).rev().find(|&p| self.matches(got, p, now, evictions))
    }

    /// Whether `got` matches exactly the first `p` writes, under
    /// [`History::matching_prefix`]'s rules.
    pub fn matches(&self, got: &BTreeMap<u32, Option<Vec<u8>>>, p: usize, now: u64, evictions: u64) -> bool {
        got.iter().all(|(&k, v)| self.allows(k, v, p, now, evictions))
    }

    /// Whether key `k` may read `v` after the first `p` writes, under
    /// [`History::matching_prefix`]'s rules.
    pub fn allows(&self, k: u32, v: &Option<Vec<u8>>, p: usize, now: u64, evictions: u64) -> bool {
        if self.allowed(k, p, now, 0).contains(v) {
            return true;
        }
        let last = self.writes[..p].iter().rposition(|w| w.key == k);
        v.is_none() && last.is_some_and(|j| evictions > self.writes[j].epoch)
    }

    /// Why `got` does not match prefix `p` under [`History::matching_prefix`]'s rules.
    pub fn mismatch(&self, got: &BTreeMap<u32, Option<Vec<u8>>>, p: usize, now: u64, evictions: u64) -> String {
        let mut why = Vec::new();
        for (&k, v) in got {
            let allowed = self.allowed(k, p, now, 0);
            if allowed.contains(v) {
                continue;
            }
            let last = self.writes[..p].iter().rposition(|w| w.key == k);
            let epoch = last.map(|j| self.writes[j].epoch);
            if v.is_none() && epoch.is_some_and(|e| evictions > e) {
                continue;
            }
            let allowed: Vec<String> = allowed.iter().map(describe).collect();
            why.push(format!(
                "key {k} reads {} (allowed {allowed:?}; last write #{last:?} at eviction count {epoch:?}, now {evictions})",
                describe(v)
            ));
        }
        format!("at prefix {p}: {}", why.join("; "))
    }

    /// After a reopen matched prefix `p`: the writes past it never happened,
    /// and what the reopen found is each key's state from now on (a write in
    /// doubt happened or not; a lost or evicted value is gone). A key seen
    /// present may go missing later only through a later eviction: its state
    /// gets the eviction count `evictions`.
    pub fn settle(&mut self, p: usize, got: &BTreeMap<u32, Option<Vec<u8>>>, evictions: u64) {
        self.writes.truncate(p);
        for (&k, v) in got {
            let last = self.writes.iter().rposition(|w| w.key == k);
            match last {
                None if v.is_none() => continue,
                Some(j) if self.writes[j].acked && self.writes[j].value == *v => {
                    self.writes[j].epoch = evictions;
                    continue;
                }
                _ => {}
            }
            let expires_ms = v
                .as_ref()
                .and_then(|v| self.writes.iter().rev().find(|w| w.key == k && w.value.as_ref() == Some(v)))
                .map_or(0, |w| w.expires_ms);
            self.writes.push(Write { key: k, value: v.clone(), expires_ms, acked: true, epoch: evictions });
        }
    }

    /// Forgets writes that no longer matter: for each key, those before its
    /// last acknowledged write before `lo`. Returns where `lo` is now.
    pub fn forget_before(&mut self, lo: usize) -> usize {
        let lo = lo.min(self.writes.len());
        let mut last_acked: std::collections::HashMap<u32, usize> = Default::default();
        for (j, w) in self.writes[..lo].iter().enumerate() {
            if w.acked {
                last_acked.insert(w.key, j);
            }
        }
        let keep: Vec<bool> = self
            .writes
            .iter()
            .enumerate()
            .map(|(j, w)| j >= lo || last_acked.get(&w.key).is_none_or(|&a| j >= a))
            .collect();
        let mut j = 0;
        self.writes.retain(|_| {
            j += 1;
            keep[j - 1]
        });
        keep[..lo].iter().filter(|&&k| k).count()
    }

    /// Index just past the last acknowledged write.
    pub fn acked_len(&self) -> usize {
        self.writes.iter().rposition(|w| w.acked).map_or(0, |i| i + 1)
    }

    /// The values `key` may hold after the first `upto` writes happened, given
    /// that failed writes may or may not have happened, at time `now`.
    /// Entries expiring within `slack` ms of `now` may read either way: after
    /// a crash the cache's time may run ahead of the clock (by its clock
    /// lease) and stands still until the clock catches up, so expiry may come
    /// a little early or, for entries written meanwhile, a little late.
    pub fn allowed(&self, key: u32, upto: usize, now: u64, slack: u64) -> Vec<Option<Vec<u8>>> {
        let mut states: Vec<(Option<Vec<u8>>, u64)> = vec![(None, 0)];
        for w in self.writes[..upto].iter().filter(|w| w.key == key) {
            let s = (w.value.clone(), w.expires_ms);
            if w.acked {
                states = vec![s];
            } else {
                states.push(s);
            }
        }
        let mut out = Vec::new();
        for (v, exp) in states {
            let live = v.is_some() && (exp == 0 || exp.saturating_add(slack) > now);
            let maybe_dead = v.is_none() || (exp != 0 && exp <= now.saturating_add(slack));
            if live {
                out.push(v);
            }
            if maybe_dead {
                out.push(None);
            }
        }
        out
    }

    /// Reads every key.
    pub fn read_all(&self, cache: &Cache) -> BTreeMap<u32, Option<Vec<u8>>> {
        (0..self.keys).map(|k| (k, cache.get(&key(k)).unwrap().map(|v| v.to_vec()))).collect()
    }

    /// Checks that `got` is the state after exactly the whole history (failed
    /// writes may or may not have happened). With `absent_ok`, any key may
    /// also be missing (eviction).
    pub fn check_all(
        &self,
        got: &BTreeMap<u32, Option<Vec<u8>>>,
        now: u64,
        slack: u64,
        absent_ok: bool,
    ) -> Result<(), String> {
        self.check_at(got, self.writes.len(), now, slack, absent_ok)
    }

    fn check_at(
        &self,
        got: &BTreeMap<u32, Option<Vec<u8>>>,
        upto: usize,
        now: u64,
        slack: u64,
        absent_ok: bool,
    ) -> Result<(), String> {
        for (&k, v) in got {
            if absent_ok && v.is_none() {
                continue;
            }
            let allowed = self.allowed(k, upto, now, slack);
            if !allowed.contains(v) {
                let allowed: Vec<String> = allowed.iter().map(describe).collect();
                return Err(format!("key {k} reads {}, allowed after {upto} writes: {allowed:?}", describe(v)));
            }
        }
        Ok(())
    }

    /// Checks that `got` is the state after some prefix of the history of at
    /// least `min` writes; returns the longest such prefix.
    pub fn check_prefix(
        &self,
        got: &BTreeMap<u32, Option<Vec<u8>>>,
        min: usize,
        now: u64,
        slack: u64,
        absent_ok: bool,
    ) -> Result<usize, String> {
        for upto in (min..=self.writes.len()).rev() {
            if self.check_at(got, upto, now, slack, absent_ok).is_ok() {
                return Ok(upto);
            }
        }
        let why = self.check_at(got, self.writes.len(), now, slack, absent_ok).unwrap_err();
        Err(format!("the cache matches no prefix of its {} writes of at least {min}: {why}", self.writes.len()))
    }
}

/// The word keg's error messages use for a storage operation.
pub fn op_word(op: Op) -> &'static str {
    match op {
        Op::Create => "create",
        Op::Open => "open",
        Op::Read => "read",
        Op::Write => "write",
        Op::Sync => "fsync",
        Op::SetLen => "truncate",
        Op::Map => "mmap",
        Op::Rename => "rename",
        Op::Remove => "remove",
        Op::SyncDir => "fsync directory",
        Op::List => "list directory",
    }
}

/// Checks that an error caused by injected faults names one of them: the
/// operation and the file, in the message a user would see. Returns whether
/// it says writes are disabled.
pub fn check_error(e: &Error, fs: &FaultFs) -> bool {
    let faults = fs.injected_faults();
    let msg = e.to_string();
    let (op, path, disabled): (&str, &PathBuf, bool) = match e {
        Error::Io { op, path, .. } => (op, path, false),
        Error::WritesDisabled { op, path, .. } => (op, path, true),
        other => panic!("an injected fault surfaced as {other:?}: {msg}"),
    };
    assert!(
        faults.iter().any(|(o, p)| op_word(*o) == op && p == path),
        "error {msg:?} names {op} {} but the injected faults were {faults:?}",
        path.display()
    );
    assert!(
        msg.contains(op) && msg.contains(&path.display().to_string()),
        "message does not name the op and file: {msg}"
    );
    disabled
}

/// Whether a fault was an fsync of a segment file (after which writes must stay off).
pub fn is_segment_fsync(op: Op, path: &Path) -> bool {
    op == Op::Sync && path.extension().is_some_and(|e| e == "seg")
}

/// Bytes of segment and hint files in `dir`, measured on disk.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg" || x == "hint"))
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// The measuring programs' xorshift64 (`examples/common/xorshift.rs`), with
/// a bounded draw for the tests.
#[path = "../../examples/common/xorshift.rs"]
mod xorshift;
pub use xorshift::Rng;

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An env variable as a number, or a default.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Whether `KEG_DUMP` asks failing tests to print what they saw.
pub fn dumping() -> bool {
    std::env::var_os("KEG_DUMP").is_some()
}

/// With `KEG_DUMP` set: prints what was read, the history, and the files.
pub fn explain(hist: &History, got: &BTreeMap<u32, Option<Vec<u8>>>, dir: &Path) {
    if !dumping() {
        return;
    }
    for (k, v) in got {
        eprintln!("read key {k}: {}", describe(v));
    }
    for (i, w) in hist.writes.iter().enumerate() {
        eprintln!("write {i}: key {} = {} expires {} acked {}", w.key, describe(&w.value), w.expires_ms, w.acked);
    }
    dump_dir(dir);
}

/// Prints what a cache directory holds, record by record (for debugging a failure).
pub fn dump_dir(dir: &Path) {
    use keg::format::{checkpoint::Checkpoint, hint, record, segment};
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        let bytes = std::fs::read(&p).unwrap_or_default();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name == "checkpoint" {
            eprintln!("{name}: {:?}", Checkpoint::decode(&bytes));
        } else if name.ends_with(".seg") {
            eprintln!("{name}: {} bytes, header {:?}", bytes.len(), segment::SegmentHeader::decode(&bytes));
            let mut at = segment::HEADER_LEN;
            while at < bytes.len() {
                match record::decode(&bytes[at..]) {
                    Ok(r) => {
                        eprintln!(
                            "  @{at} seq {} {:?} {} exp {} {}",
                            r.header.seq,
                            r.kind,
                            String::from_utf8_lossy(r.key),
                            r.header.expires_ms,
                            describe(&Some(r.value.to_vec()))
                        );
                        at += r.len() as usize;
                    }
                    Err(e) => {
                        eprintln!("  @{at} {e}");
                        break;
                    }
                }
            }
        } else if name.ends_with(".hint") {
            match hint::decode(&bytes) {
                Ok((h, entries)) => {
                    let e: Vec<_> = entries.map(|e| (e.seq, e.len, e.tombstone, e.dead)).collect();
                    eprintln!("{name}: {h:?} {e:?}");
                }
                Err(e) => eprintln!("{name}: {e}"),
            }
        } else {
            eprintln!("{name}: {} bytes", bytes.len());
        }
    }
}
