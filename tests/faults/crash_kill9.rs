//! kill -9 in the middle of writing: a child process writes a known sequence
//! of sets and deletes in the default durability mode and reports each
//! acknowledged write; the parent kills it at random moments, reopens, and
//! checks that every acknowledged write is there and that every value is one
//! that was written for its key. Rounds: `KEG_KILL_ROUNDS` (default 12).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use keg::Cache;

const KEYS: u64 = 300;

/// Operation `i` of the deterministic history: `Some(value)` sets, `None` deletes.
fn op(i: u64) -> (String, Option<Vec<u8>>) {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    let key = format!("key{}", x % KEYS);
    if x % 7 == 0 {
        (key, None)
    } else {
        let mut v = format!("{key}={i};").into_bytes();
        v.resize(v.len() + (x >> 40) as usize % 3000, (i % 256) as u8);
        (key, Some(v))
    }
}

fn builder() -> keg::Builder {
    Cache::builder().max_bytes(512 << 20).segment_bytes(256 << 10)
}

/// The child: opens the cache, runs the history from KEG_KILL_FROM on, and
/// prints "ack i" after each operation returns.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var("KEG_KILL_CHILD_DIR") else { return };
    let from: u64 = std::env::var("KEG_KILL_FROM").unwrap().parse().unwrap();
    let cache = builder().open(&dir).unwrap();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    for i in from.. {
        let (key, value) = op(i);
        match value {
            Some(v) => cache.set(key.as_bytes(), &v, None).unwrap(),
            None => {
                cache.delete(key.as_bytes()).unwrap();
            }
        }
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
        if i % 997 == 0 {
            cache.compact().unwrap();
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let rounds: u64 = std::env::var("KEG_KILL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    // The model: each key's state after every acknowledged operation.
    let mut model: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    let mut next = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_kill9::child_writer", "--nocapture", "--test-threads=1"])
            .env("KEG_KILL_CHILD_DIR", dir.path())
            .env("KEG_KILL_FROM", next.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill after 0..80 ms of writing; sometimes while the child is still opening.
        let delay = Duration::from_micros(rng % 80_000);
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.strip_prefix("ack ") {
                    last = Some(i.parse::<u64>().unwrap());
                }
            }
            last
        });
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        let last_acked = reader.join().unwrap();
        if let Some(last) = last_acked {
            for i in next..=last {
                let (k, v) = op(i);
                model.insert(k, v);
            }
        }
        let first_unacked = last_acked.map_or(next, |l| l + 1);
        // The one operation that may have happened without its ack being read.
        let (maybe_key, maybe_value) = op(first_unacked);
        let cache = builder().open(dir.path()).unwrap();
        for k in 0..KEYS {
            let key = format!("key{k}");
            let got = cache.get(key.as_bytes()).unwrap().map(|v| v.to_vec());
            let want = model.get(&key).cloned().flatten();
            if got != want {
                assert!(
                    key == maybe_key && got == maybe_value,
                    "round {round}: key {key} reads {:?}, but the last acknowledged write left {:?}",
                    got.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(20)]).into_owned()),
                    want.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(20)]).into_owned()),
                );
                // The unacknowledged operation happened: it is history now.
                model.insert(key.clone(), got);
            }
        }
        drop(cache);
        // Continue the history after the possibly-applied operation.
        next = first_unacked + 1;
    }
    eprintln!("{rounds} kills survived over {next} operations");
    assert!(next > rounds * 10, "the children acknowledged too few writes for a meaningful test");
}
