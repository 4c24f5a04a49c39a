//! Request traces: the real CSV trace and seeded synthetic generators.

use crate::baselines::U64Map;
use std::io::{BufRead, BufReader};

#[derive(Clone, Copy, Debug)]
pub struct Req {
    pub key: u64,
    pub size: u32,
}

pub struct Trace {
    pub name: String,
    pub reqs: Vec<Req>,
    pub unique_keys: u64,
    pub unique_bytes: u64,
}

impl Trace {
    fn finish(name: &str, reqs: Vec<Req>) -> Trace {
        let mut seen: U64Map<()> = U64Map::default();
        let mut ub = 0u64;
        for r in &reqs {
            if seen.insert(r.key, ()).is_none() {
                ub += r.size as u64;
            }
        }
        Trace { name: name.to_string(), unique_keys: seen.len() as u64, unique_bytes: ub, reqs }
    }

    pub fn requested_bytes(&self) -> u64 {
        self.reqs.iter().map(|r| r.size as u64).sum()
    }
}

/// Reads `key_id,size_bytes,op` lines (gzip if the path ends in `.gz`).
/// A key keeps the size of its first request (the file already does this).
pub fn load_csv(path: &str, name: &str) -> std::io::Result<Trace> {
    let f = std::fs::File::open(path)?;
    let rd: Box<dyn BufRead> = if path.ends_with(".gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    let mut first_size: U64Map<u32> = U64Map::default();
    let mut reqs = Vec::new();
    for line in rd.lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut it = line.split(',');
        let key: u64 = it.next().unwrap().parse().expect("bad key");
        let size: u32 = it.next().expect("no size").parse().expect("bad size");
        let size = *first_size.entry(key).or_insert(size);
        reqs.push(Req { key, size });
    }
    Ok(Trace::finish(name, reqs))
}

/// xoshiro256** seeded by splitmix64: small, fast, deterministic.
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Value size of a synthetic key: log-uniform in [100 B, 64 KiB], a fixed
/// function of the key (so a key always has the same size).
pub fn synth_size(key: u64, seed: u64) -> u32 {
    let u = (mix(key ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d)) >> 11) as f64 / (1u64 << 53) as f64;
    let (lo, hi) = (100f64.ln(), 65536f64.ln());
    (lo + u * (hi - lo)).exp().round() as u32
}

/// Zipf sampler over ranks 0..n by inverse CDF (binary search).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, alpha: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 0..n {
            acc += 1.0 / ((i + 1) as f64).powf(alpha);
            cdf.push(acc);
        }
        for c in cdf.iter_mut() {
            *c /= acc;
        }
        Zipf { cdf }
    }
    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// `n_req` Zipf(alpha) requests over `n_keys` keys. Ranks are scattered over
/// key ids by a hash so popularity is not correlated with key order.
/// If `scan` is `Some((every, len))`, after every `every` Zipf requests a
/// sequential scan of `len` never-before-seen (and never reused) keys is
/// inserted; the total length stays `n_req`.
pub fn zipf(name: &str, n_req: usize, n_keys: usize, alpha: f64, scan: Option<(usize, usize)>, seed: u64) -> Trace {
    let z = Zipf::new(n_keys, alpha);
    let mut rng = Rng::new(seed);
    let mut reqs = Vec::with_capacity(n_req);
    let mut scan_key: u64 = 1 << 40; // disjoint from Zipf key ids
    let mut since_scan = 0usize;
    while reqs.len() < n_req {
        if let Some((every, len)) = scan {
            if since_scan == every {
                since_scan = 0;
                for _ in 0..len {
                    if reqs.len() == n_req {
                        break;
                    }
                    reqs.push(Req { key: scan_key, size: synth_size(scan_key, seed) });
                    scan_key += 1;
                }
                continue;
            }
        }
        let rank = z.sample(&mut rng) as u64;
        let key = mix(rank ^ seed) & ((1 << 39) - 1);
        reqs.push(Req { key, size: synth_size(key, seed) });
        since_scan += 1;
    }
    Trace::finish(name, reqs)
}
