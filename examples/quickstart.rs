//! keg's main job on a built-in default: open a cache in `./keg-quickstart`,
//! write a few thousand entries (some with a TTL), delete some, close it,
//! reopen it, read everything back, and print what the cache holds.
//!
//! ```text
//! cargo run --release --example quickstart [DIR]
//! ```

use std::time::{Duration, Instant};

fn main() -> Result<(), keg::Error> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "keg-quickstart".into());
    let n = 20_000u32;

    let started = Instant::now();
    let builder = keg::Cache::builder().max_bytes(256 << 20);
    let cache = builder.clone().open(&dir)?;
    cache.clear()?;
    for i in 0..n {
        let key = format!("page:/articles/{i}");
        let body = format!("<html><body>article {i}: {}</body></html>", "lorem ipsum ".repeat((i % 50) as usize));
        let ttl = (i % 4 == 0).then(|| Duration::from_secs(3600));
        cache.set(key.as_bytes(), body.as_bytes(), ttl)?;
    }
    for i in (0..n).step_by(10) {
        cache.delete(format!("page:/articles/{i}").as_bytes())?;
    }
    println!("wrote {n} entries and deleted {} in {:?} to {dir}/", n / 10, started.elapsed());
    cache.close()?;

    let started = Instant::now();
    let cache = builder.open(&dir)?;
    println!("reopened in {:?}: {} entries", started.elapsed(), cache.len());
    let (mut found, mut missing) = (0, 0);
    for i in 0..n {
        match cache.get(format!("page:/articles/{i}").as_bytes())? {
            Some(v) => {
                assert!(v.starts_with(format!("<html><body>article {i}:").as_bytes()), "wrong value for key {i}");
                found += 1;
            }
            None => {
                assert_eq!(i % 10, 0, "key {i} was written and not deleted, yet it is missing");
                missing += 1;
            }
        }
    }
    println!("read back {found} values; {missing} deleted keys are gone, as they should be");
    let s = cache.stats();
    println!(
        "stats: entries={} hits={} misses={} live_bytes={} dead_bytes={} disk_bytes={} (cap {}) segments={}",
        s.entries, s.hits, s.misses, s.live_bytes, s.dead_bytes, s.disk_bytes, s.max_bytes, s.segments
    );
    Ok(())
}
