//! Every command this build's `keg serve` carries out on a real cache, and
//! every error reply.

use crate::{stats, tempdir, Server};

#[test]
fn storage_and_retrieval() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.set("k", 0, 0, b"hello"), "STORED");
    assert_eq!(c.ask("get k\r\n", "END\r\n"), "VALUE k 0 5\r\nhello\r\nEND\r\n");
    // Values hold any bytes, \r\n included; an empty one is fine.
    assert_eq!(c.set("bin", 0, 0, b"a\r\nb\0\xff"), "STORED");
    assert_eq!(c.get("bin").unwrap(), b"a\r\nb\0\xff");
    assert_eq!(c.set("empty", 0, 0, b""), "STORED");
    assert_eq!(c.get("empty").unwrap(), b"");
    // Many keys, missing ones left out, order kept, a key twice served twice.
    let reply = c.ask("get k nope empty k\r\n", "END\r\n");
    assert_eq!(reply, "VALUE k 0 5\r\nhello\r\nVALUE empty 0 0\r\n\r\nVALUE k 0 5\r\nhello\r\nEND\r\n");
    assert_eq!(c.ask("get nope\r\n", "END\r\n"), "END\r\n");
    // gets carries a cas unique after the length.
    let reply = c.ask("gets k\r\n", "END\r\n");
    let head = reply.lines().next().unwrap();
    let fields: Vec<&str> = head.split(' ').collect();
    assert_eq!(&fields[..4], &["VALUE", "k", "0", "5"], "{reply}");
    assert!(fields[4].parse::<u64>().is_ok(), "{reply}");
    // A 250-byte key is accepted; UTF-8 keys too.
    let long = "k".repeat(250);
    assert_eq!(c.set(&long, 0, 0, b"v"), "STORED");
    assert_eq!(c.get(&long).unwrap(), b"v");
    assert_eq!(c.set("clé", 0, 0, b"v"), "STORED");
    assert_eq!(c.get("clé").unwrap(), b"v");
    // Overwrite.
    assert_eq!(c.set("k", 0, 0, b"second"), "STORED");
    assert_eq!(c.get("k").unwrap(), b"second");
    server.stop();
}

#[test]
fn values_up_to_the_item_size_limit() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &["--max-item-size", "100KiB"]);
    let mut c = server.client();
    let max = vec![b'm'; 100 << 10];
    assert_eq!(c.set("max", 0, 0, &max), "STORED");
    assert_eq!(c.get("max").unwrap(), max);
    // One byte more: dropped, the old value deleted, the connection fine.
    assert_eq!(c.set("max", 0, 0, &vec![b'x'; (100 << 10) + 1]), "SERVER_ERROR object too large for cache");
    assert_eq!(c.get("max"), None);
    assert_eq!(c.set("after", 0, 0, b"ok"), "STORED");
    server.stop();
}

#[test]
fn expiry() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    // Negative: stored already expired.
    assert_eq!(c.set("gone", 0, 0, b"v"), "STORED");
    assert_eq!(c.set("gone", 0, -1, b"v"), "STORED");
    assert_eq!(c.get("gone"), None);
    // An absolute Unix time in the past (beyond 30 days means absolute).
    assert_eq!(c.set("past", 0, 2_592_001, b"v"), "STORED");
    assert_eq!(c.get("past"), None);
    // An absolute time in the future, and a relative one.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(c.set("future", 0, now + 3600, b"v"), "STORED");
    assert_eq!(c.get("future").unwrap(), b"v");
    assert_eq!(c.set("soon", 0, 2, b"v"), "STORED");
    assert_eq!(c.get("soon").unwrap(), b"v");
    let deadline = std::time::Instant::now() + crate::WAIT;
    while c.get("soon").is_some() {
        assert!(std::time::Instant::now() < deadline, "a 2 s item did not expire");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(c.set("forever", 0, 0, b"v"), "STORED");
    assert_eq!(c.get("forever").unwrap(), b"v");
    server.stop();
}

#[test]
fn delete_flush_and_noreply() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.set("a", 0, 0, b"1"), "STORED");
    assert_eq!(c.ask_line("delete a\r\n"), "DELETED");
    assert_eq!(c.ask_line("delete a\r\n"), "NOT_FOUND");
    assert_eq!(c.set("a", 0, 0, b"1"), "STORED");
    assert_eq!(c.ask_line("delete a 0\r\n"), "DELETED");
    // noreply: no bytes at all, and the effect happens; the next reply is the mn's.
    c.send(b"set n 0 0 1 noreply\r\nx\r\ndelete nope noreply\r\nflush_all noreply\r\nset m 0 0 1 noreply\r\ny\r\n");
    assert_eq!(c.ask_line("mn\r\n"), "MN");
    assert_eq!(c.get("n"), None, "flush_all noreply flushed n");
    assert_eq!(c.get("m").unwrap(), b"y");
    // flush_all.
    assert_eq!(c.set("b", 0, 0, b"2"), "STORED");
    assert_eq!(c.ask_line("flush_all\r\n"), "OK");
    assert_eq!(c.get("b"), None);
    assert_eq!(c.get("m"), None);
    // A delayed flush_all: nothing goes before the delay, everything after.
    assert_eq!(c.set("c", 0, 0, b"3"), "STORED");
    assert_eq!(c.ask_line("flush_all 3\r\n"), "OK");
    assert_eq!(c.get("c").unwrap(), b"3");
    let deadline = std::time::Instant::now() + crate::WAIT;
    while c.get("c").is_some() {
        assert!(std::time::Instant::now() < deadline, "delayed flush_all never came");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    server.stop();
}

#[test]
fn version_verbosity_stats_quit() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &["--max-connections", "77"]);
    let mut c = server.client();
    let version = c.ask_line("version\r\n");
    let number = version.strip_prefix("VERSION ").unwrap().split(' ').next().unwrap();
    assert!(number.starts_with("1.6."), "{version}");
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    assert_eq!(c.ask_line("verbosity 1\r\n"), "OK");
    c.send(b"verbosity 0 noreply\r\n");
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    c.get("k");
    c.get("missing");
    let s = stats(&mut c, "");
    for name in [
        "pid",
        "uptime",
        "time",
        "version",
        "curr_connections",
        "total_connections",
        "cmd_get",
        "cmd_set",
        "get_hits",
        "get_misses",
        "delete_hits",
        "incr_hits",
        "cas_hits",
        "cas_badval",
        "curr_items",
        "total_items",
        "bytes",
        "limit_maxbytes",
        "evictions",
        "expired_unfetched",
        "keg_disk_bytes",
        "keg_hint_bytes_pending",
        "keg_bytes_reinserted",
        "keg_reinsertions_skipped",
    ] {
        assert!(s.contains_key(name), "stats lacks {name}: {s:?}");
    }
    assert_eq!(s["pid"], server.child.id().to_string());
    assert_eq!(s["version"], number);
    assert_eq!(s["cmd_get"], "2");
    assert_eq!(s["get_hits"], "1");
    assert_eq!(s["get_misses"], "1");
    assert_eq!(s["cmd_set"], "1");
    assert_eq!(s["curr_items"], "1");
    assert_eq!(s["curr_connections"], "1");
    assert_eq!(s["limit_maxbytes"], (64u64 << 20).to_string());
    assert!(s["keg_disk_bytes"].parse::<u64>().unwrap() > 0);
    // The store's own call times: one call in 16 per worker thread is timed,
    // so 64 gets and 64 sets give each histogram at least two samples.
    for i in 0..64 {
        assert_eq!(c.set(&format!("t{i}"), 0, 0, b"v"), "STORED");
        c.get(&format!("t{i}"));
    }
    let s = stats(&mut c, "");
    for op in ["get", "set"] {
        let q = |label: &str| s[&format!("keg_{op}_{label}_ns")].parse::<u64>().unwrap();
        assert!(q("p50") > 0 && q("p50") <= q("p99") && q("p99") <= q("p999"), "{op}: {s:?}");
    }
    let settings = stats(&mut c, "settings");
    assert_eq!(settings["maxconns"], "77");
    assert_eq!(settings["item_size_max"], (1u64 << 20).to_string());
    assert_eq!(settings["verbosity"], "0");
    assert_eq!(c.ask_line("stats reset\r\n"), "RESET");
    assert_eq!(stats(&mut c, "")["cmd_get"], "0");
    assert_eq!(c.ask("stats slabs\r\n", "END\r\n"), "END\r\n");
    assert_eq!(c.ask_line("stats nonsense\r\n"), "ERROR");
    c.send(b"quit\r\n");
    assert_eq!(c.read_to_close(), "");
    server.stop();
}

#[test]
fn every_error_reply() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &["--max-item-size", "1000"]);
    let mut c = server.client();
    let bad = "CLIENT_ERROR bad command line format";
    let long_key = "k".repeat(251);
    let cases: Vec<(String, &str)> = vec![
        ("bogus\r\n".into(), "ERROR"),
        ("\r\n".into(), "ERROR"),
        ("GET k\r\n".into(), "ERROR"),
        ("get\r\n".into(), "ERROR"),
        ("set k 0 0\r\n".into(), "ERROR"),
        ("set k x 0 1\r\nv\r\n".into(), bad),
        ("set k 0 x 1\r\nv\r\n".into(), bad),
        ("set k 4294967296 0 1\r\nv\r\n".into(), bad),
        ("set k 0 0 -1\r\n".into(), bad),
        ("set k 0 0 1 extra\r\n".into(), bad),
        (format!("set {long_key} 0 0 1\r\nv\r\n"), bad),
        (format!("get {long_key}\r\n"), bad),
        ("set k\x01 0 0 1\r\nv\r\n".into(), bad),
        // The block is as long as declared; the two bytes after it must be \r\n.
        ("set k 0 0 2\r\nabcd".into(), "CLIENT_ERROR bad data chunk"),
        ("set k 0 0 1001\r\n".to_string() + &"v".repeat(1001) + "\r\n", "SERVER_ERROR object too large for cache"),
        ("delete k 1\r\n".into(), "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"),
        (format!("delete {long_key}\r\n"), bad),
        ("incr k x\r\n".into(), "CLIENT_ERROR invalid numeric delta argument"),
        ("decr k -1\r\n".into(), "CLIENT_ERROR invalid numeric delta argument"),
        ("touch k x\r\n".into(), "CLIENT_ERROR invalid exptime argument"),
        ("gat x k\r\n".into(), "CLIENT_ERROR invalid exptime argument"),
        ("flush_all soon\r\n".into(), bad),
        ("verbosity\r\n".into(), "ERROR"),
    ];
    for (request, want) in &cases {
        let got = c.ask_line(request);
        assert_eq!(&got, want, "reply to {request:?}");
        // The connection is still in step: the next request gets its own reply.
        assert_eq!(c.ask_line("mn\r\n"), "MN", "after {request:?}");
    }
    // A line over 2048 bytes: the error, the rest of the line dropped as it
    // comes (the end may come much later), and the connection goes on.
    let mut c = server.client();
    assert_eq!(c.ask_line(&format!("touch {} 1", "k".repeat(2100))), "CLIENT_ERROR line too long");
    c.send(&vec![b'x'; 100_000]);
    c.send(b"\r\n");
    assert_eq!(c.ask_line("mn\r\n"), "MN");
    // A multi-key get over 2048 bytes is fine.
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i:04}")).collect();
    let line = format!("get {}\r\n", keys.join(" "));
    assert!(line.len() > 2048);
    assert_eq!(c.ask(&line, "END\r\n"), "END\r\n");
    server.stop();
}

#[test]
fn pipelined_requests_in_one_packet() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    let mut batch = Vec::new();
    let mut want = String::new();
    for i in 0..500 {
        batch.extend_from_slice(format!("set p{i} 0 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        batch.extend_from_slice(format!("get p{i}\r\n").as_bytes());
        want.push_str(&format!("STORED\r\nVALUE p{i} 0 {}\r\n{i}\r\nEND\r\n", i.to_string().len()));
    }
    batch.extend_from_slice(b"mn\r\n");
    want.push_str("MN\r\n");
    c.send(&batch);
    assert_eq!(c.read_until("MN\r\n"), want);
    server.stop();
}

#[test]
fn unix_socket_client() {
    let dir = tempdir();
    let sock = dir.path().join("keg.sock");
    let listen = format!("unix:{}", sock.display());
    let server = Server::start(&dir.path().join("c"), &["--listen", &listen, "--listen", "127.0.0.1:0"]);
    assert_eq!(server.addrs[0], listen);
    let mut u = crate::Client::unix(&sock);
    assert_eq!(u.set("k", 0, 0, b"via unix"), "STORED");
    // The same cache behind both listeners.
    assert_eq!(server.client().get("k").unwrap(), b"via unix");
    server.stop();
    assert!(!sock.exists(), "a clean stop removes the socket file");
}

#[test]
fn concurrent_clients_read_their_own_writes() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let addr = server.tcp();
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                let mut c = crate::Client::tcp(addr);
                for i in 0..150 {
                    let key = format!("t{t}:k{}", i % 20);
                    let value = format!("{t}-{i}-{}", "x".repeat(i * 7 % 300));
                    assert_eq!(c.set(&key, 0, 0, value.as_bytes()), "STORED");
                    assert_eq!(c.get(&key).unwrap(), value.as_bytes(), "{key}");
                }
            });
        }
    });
    let mut c = server.client();
    assert_eq!(stats(&mut c, "")["curr_items"], "160");
    server.stop();
}
