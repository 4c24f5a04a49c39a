//! TTLs across a kill -9, with the real clock: an entry lives from the
//! wall-clock time of its set to its expiry, before and after a crash, in a
//! writer and in a read-only view beside a live writer. (Before the clock
//! anchor, a crash moved the cache's time up to 20 s ahead: 10 s and 19 s
//! entries vanished at the reopen, and a 1 s entry set after it lived 21 s.)
//!
//! The checks compare each expiry with the wall clock read around the call,
//! so a slow machine only makes a check skip, never fail wrongly: "present"
//! is asserted while the wall clock is before the expiry (less the 5 ms
//! ms a crash may cost), "gone" once it has passed it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keg::{Cache, Clock, SystemClock};

/// The TTLs the child sets, in seconds.
const TTLS_S: [u64; 5] = [2, 10, 19, 25, 60];
/// How early a crash may make an entry expire (the clock anchor's slack,
/// and the millisecond rounding of the clocks): README's promise.
const SLACK_MS: u64 = 5;

fn builder() -> keg::Builder {
    Cache::builder().max_bytes(64 << 20).segment_bytes(1 << 20)
}

fn wall() -> u64 {
    SystemClock.now_ms()
}

/// The child: opens the cache, writes enough for the clock mark to be on
/// disk, sets one key per TTL, prints "set KEY EXPIRES_AT_MS" for each, then
/// "done", and waits to be killed.
#[test]
fn child_ttl_writer() {
    let Ok(dir) = std::env::var("KEG_TTL_CHILD_DIR") else { return };
    let round = std::env::var("KEG_TTL_ROUND").unwrap();
    let cache = builder().open(&dir).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap(); // (after the test harness's "test ... " prefix)
    for i in 0..200u32 {
        cache.set(format!("filler{i}").as_bytes(), &[7u8; 100], None).unwrap();
    }
    for ttl in TTLS_S {
        let key = format!("r{round}-ttl{ttl}");
        cache.set(key.as_bytes(), b"v", Some(Duration::from_secs(ttl))).unwrap();
        let expires = cache.get_entry(key.as_bytes()).unwrap().unwrap().expires_at_ms;
        writeln!(out, "set {key} {expires}").unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The child process, killed when dropped (a failing check must not leave it running).
struct Killed(Child);

impl Killed {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the child writer for `round` and returns it with the expiries it
/// acknowledged (key, expires_at_ms), once it has set them all.
fn start_child(dir: &std::path::Path, round: u32) -> (Killed, Vec<(String, u64)>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_ttl::child_ttl_writer", "--nocapture", "--test-threads=1"])
        .env("KEG_TTL_CHILD_DIR", dir)
        .env("KEG_TTL_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let child = Killed(child);
    let mut set = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "done" {
            break;
        }
        if let Some(rest) = line.strip_prefix("set ") {
            let (key, at) = rest.split_once(' ').unwrap();
            set.push((key.to_owned(), at.parse().unwrap()));
        }
    }
    assert_eq!(set.len(), TTLS_S.len(), "the child did not set every key");
    (child, set)
}

/// Checks `key` (expiring at `expires`) against the wall clock around the
/// read; returns whether a check was made.
fn check(cache: &Cache, key: &str, expires: u64, what: &str) -> bool {
    let before = wall();
    let got = cache.get(key.as_bytes()).unwrap();
    let after = wall();
    if after + SLACK_MS < expires {
        assert!(got.is_some(), "{what}: {key} gone {} ms before its expiry", expires - after);
        true
    } else if before >= expires {
        assert!(got.is_none(), "{what}: {key} served {} ms after its expiry", before - expires);
        true
    } else {
        false
    }
}

#[test]
fn ttl_entries_live_to_their_expiry_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (round, delay_ms) in [300u64, 0, 1000].into_iter().enumerate() {
        let (mut child, set) = start_child(dir.path(), round as u32);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill();
        let cache = builder().open(dir.path()).unwrap();
        for (key, expires) in &set {
            checked += check(&cache, key, *expires, &format!("killed {delay_ms} ms after the sets")) as usize;
        }
        // A 1 s TTL set right after the reopen counts from now.
        let set_at = wall();
        cache.set(b"after", b"v", Some(Duration::from_secs(1))).unwrap();
        let expires = cache.get_entry(b"after").unwrap().map_or(0, |e| e.expires_at_ms);
        assert!(expires <= wall() + 1000 + SLACK_MS, "a 1 s TTL set after a crash expires {} ms on", expires - set_at);
        assert!(expires >= set_at + 1000, "a 1 s TTL set after a crash expires early");
        // The first key (2 s) expires at its time, not later.
        let (key, first) = &set[0];
        std::thread::sleep(Duration::from_millis(first.saturating_sub(wall()) + 10));
        checked += check(&cache, key, *first, "after its expiry") as usize;
        std::thread::sleep(Duration::from_millis(expires.saturating_sub(wall()) + 10));
        checked += check(&cache, "after", expires, "set after the reopen") as usize;
        drop(cache);
    }
    assert!(checked >= 15, "only {checked} checks could be made: the machine is too slow for this test");
}

/// The read-only view beside a live writer: it sees a TTL entry set
/// milliseconds before, until its expiry.
#[test]
fn a_read_only_view_beside_a_live_writer_sees_ttl_entries_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, set) = start_child(dir.path(), 0);
    let reader = builder().open_read_only(dir.path()).unwrap();
    let mut checked = 0;
    for (key, expires) in &set {
        checked += check(&reader, key, *expires, "read-only beside the writer") as usize;
    }
    let (key, first) = &set[0];
    std::thread::sleep(Duration::from_millis(first.saturating_sub(wall()) + 10));
    checked += check(&reader, key, *first, "read-only, after its expiry") as usize;
    child.kill();
    assert!(checked >= 5, "only {checked} checks could be made: the machine is too slow for this test");
}
