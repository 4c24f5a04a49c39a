//! Many connections at once, each on its own server thread: writes that
//! make the cache evict (inside the connection's own thread), read back by
//! other connections, never give a value that was not written for the key.

use crate::{stats, tempdir, Server};

#[test]
fn concurrent_writers_over_the_cap_evict_and_never_read_a_wrong_value() {
    let dir = tempdir();
    // 4 MiB of cap against 8 connections with 2 MiB of live keys each: sets must evict.
    let server = Server::start(&dir.path().join("c"), &["--max-bytes", "4MiB", "--max-item-size", "16KiB"]);
    let addr = server.tcp();
    std::thread::scope(|s| {
        for w in 0..8u32 {
            s.spawn(move || {
                let mut c = crate::Client::tcp(addr);
                for i in 0..1024u32 {
                    // The value names its key and its write, and is as long as its number says.
                    let key = format!("w{w}-k{}", i % 512);
                    let value = format!("{key}={i};").repeat(4 << 10 >> 4);
                    assert_eq!(c.set(&key, i, 0, value.as_bytes()), "STORED");
                    // Another writer's key, read back: absent (evicted) or a value written for it.
                    let other = format!("w{}-k{}", (w + 1) % 8, i % 512);
                    if let Some(v) = c.get(&other) {
                        let text = String::from_utf8(v).expect("a value some writer wrote");
                        let piece = text.split(';').next().unwrap();
                        assert!(piece.starts_with(&format!("{other}=")), "{other} read a value of {piece}");
                        assert_eq!(text, format!("{piece};").repeat(4 << 10 >> 4), "{other}: a torn value");
                    }
                }
            });
        }
    });
    let mut c = server.client();
    let s = stats(&mut c, "");
    assert!(s["evictions"].parse::<u64>().unwrap() > 0, "the writes never made the cache evict: {s:?}");
    assert_eq!(s["keg_server_errors"], "0", "{s:?}");
    assert!(s["keg_disk_bytes"].parse::<u64>().unwrap() <= 5 << 20, "{s:?}");
    server.stop();
}
