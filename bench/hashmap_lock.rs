//! A std HashMap of 200 000 entries (24 B keys, 100 B values) read plain, behind
//! an `RwLock` and behind a `Mutex`, 1 and 2 threads: what the peers harness's
//! "std HashMap" row leaves out (it reads the map without a lock), for
//! BENCHMARKS.md §9 "The CPU cost of a get and a set". Not part of any build:
//! `rustc -O bench/hashmap_lock.rs -o /tmp/hashmap_lock && /tmp/hashmap_lock`.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Instant;
fn key(i: u64) -> [u8; 24] {
    let mut k = [b'k'; 24];
    k[8..16].copy_from_slice(&i.to_le_bytes());
    k[16..24].copy_from_slice(&(i.wrapping_mul(0x9e3779b97f4a7c15)).to_le_bytes());
    k
}
#[path = "../examples/common/xorshift.rs"]
mod xorshift;
use xorshift::Rng;
fn main() {
    let n = 200_000u64;
    let ops = 3_000_000u64;
    let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(n as usize);
    for i in 0..n {
        let mut v = vec![0u8; 100];
        v[..8].copy_from_slice(&i.to_le_bytes());
        m.insert(key(i).to_vec(), v);
    }
    let rw = RwLock::new(m.clone());
    let mx = Mutex::new(m.clone());
    for round in 0..3 {
        for which in ["plain", "rwlock"] {
            let t = Instant::now();
            std::thread::scope(|sc| {
                for th in 0..2u64 {
                    let (m, rw) = (&m, &rw);
                    sc.spawn(move || {
                        let mut r = Rng(777 + th + round);
                        let mut sum = 0u64;
                        for _ in 0..ops {
                            let i = r.next() % n;
                            let k = key(i);
                            let ok = if which == "plain" {
                                m.get(&k[..]).map(|v| v[..8] == i.to_le_bytes())
                            } else {
                                rw.read().unwrap().get(&k[..]).map(|v| v[..8] == i.to_le_bytes())
                            };
                            sum += ok.unwrap() as u64;
                        }
                        assert_eq!(sum, ops);
                    });
                }
            });
            let ns = t.elapsed().as_nanos() as f64 / (2 * ops) as f64;
            println!("round {round} 2 threads {which}: {:.2} M/s", 1e3 / ns);
        }
        for which in ["plain", "rwlock", "mutex"] {
            let mut r = Rng(12345 + round);
            let mut sum = 0u64;
            let t = Instant::now();
            for _ in 0..ops {
                let i = r.next() % n;
                let k = key(i);
                let ok = match which {
                    "plain" => m.get(&k[..]).map(|v| v[..8] == i.to_le_bytes() && v.len() == 100),
                    "rwlock" => rw.read().unwrap().get(&k[..]).map(|v| v[..8] == i.to_le_bytes() && v.len() == 100),
                    _ => mx.lock().unwrap().get(&k[..]).map(|v| v[..8] == i.to_le_bytes() && v.len() == 100),
                };
                sum += ok.unwrap() as u64;
            }
            let ns = t.elapsed().as_nanos() as f64 / ops as f64;
            println!("round {round} {which}: {:.0} ns/get ({:.2} M/s) sum {sum}", ns, 1e3 / ns);
        }
    }
}
