//! Restarts, signals and unix sockets.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::{tempdir, Client, Server, WAIT};

#[test]
fn data_survives_a_clean_restart_and_kill_9() {
    let dir = tempdir();
    let cache = dir.path().join("c");
    let server = Server::start(&cache, &[]);
    let mut c = server.client();
    for i in 0..200 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, format!("value {i}").as_bytes()), "STORED");
    }
    assert_eq!(c.ask_line("delete k7\r\n"), "DELETED");
    server.stop();

    let server = Server::start(&cache, &[]);
    let mut c = server.client();
    assert_eq!(c.get("k0").unwrap(), b"value 0");
    assert_eq!(c.get("k199").unwrap(), b"value 199");
    assert_eq!(c.get("k7"), None);
    // Acknowledged writes survive a kill -9 (durability flushed, the default).
    assert_eq!(c.set("after", 0, 0, b"acknowledged"), "STORED");
    assert_eq!(c.ask_line("delete k8\r\n"), "DELETED");
    server.kill9();

    let server = Server::start(&cache, &[]);
    let mut c = server.client();
    assert_eq!(c.get("after").unwrap(), b"acknowledged");
    assert_eq!(c.get("k8"), None);
    assert_eq!(c.get("k100").unwrap(), b"value 100");
    server.stop();
}

#[test]
fn the_cache_directory_is_locked_while_serving() {
    let dir = tempdir();
    let cache = dir.path().join("c");
    let server = Server::start(&cache, &[]);
    let err = Server::try_start(&cache, &[]).err().expect("a second server on the same directory");
    assert!(err.contains("exit code Some(3)") && err.contains("locked"), "{err}");
    server.stop();
}

#[test]
fn sigterm_answers_what_was_read_then_exits() {
    let dir = tempdir();
    let mut server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    // Both requests go in one packet: once the first is answered, the server has read both.
    c.send(b"get k\r\nset j 0 0 1\r\nj\r\n");
    assert_eq!(c.line(), "VALUE k 0 1");
    server.signal(libc::SIGTERM);
    assert_eq!(c.read_to_close(), "v\r\nEND\r\nSTORED\r\n");
    assert_eq!(server.wait_exit(), Some(0));
    let log = server.drain_log().join("\n");
    assert!(log.contains("SIGTERM") && log.contains("closed cleanly"), "{log}");
    // New connections are refused once it stops.
    assert!(std::net::TcpStream::connect(server.tcp()).is_err());
}

#[test]
fn a_second_signal_exits_at_once() {
    let dir = tempdir();
    let cache = dir.path().join("c");
    let mut server = Server::start(&cache, &[]);
    let mut c = server.client();
    assert_eq!(c.set("k", 0, 0, b"kept"), "STORED");
    assert_eq!(c.set("big", 0, 0, &vec![b'b'; 512 << 10]), "STORED");
    // Replies nobody reads keep a connection busy through the grace period.
    c.send(&b"get big\r\n".repeat(100));
    let mut other = server.client();
    let deadline = Instant::now() + WAIT;
    while crate::stats(&mut other, "")["keg_conn_throttled"] == "0" {
        assert!(Instant::now() < deadline, "the connection was never throttled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    server.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    server.signal(libc::SIGINT);
    let code = server.wait_exit();
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    assert_eq!(code, Some(2));
    drop(server);
    let server = Server::start(&cache, &[]);
    assert_eq!(server.client().get("k").unwrap(), b"kept");
    server.stop();
}

#[test]
fn unix_socket_stale_replaced_live_refused_mode_applied() {
    let dir = tempdir();
    let sock = dir.path().join("keg.sock");
    let listen = format!("unix:{}", sock.display());
    // A stale socket file, as a crashed run leaves it.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let server = Server::start(&dir.path().join("c"), &["--listen", &listen, "--unix-mode", "660"]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    // A live one is not taken over.
    let err = Server::try_start(&dir.path().join("c2"), &["--listen", &listen]).err().expect("refused");
    assert!(err.contains("another server is listening"), "{err}");
    assert_eq!(Client::unix(&sock).ask_line("mn\r\n"), "MN");
    // Nor is a file that is not a socket.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"data").unwrap();
    let err = Server::try_start(&dir.path().join("c3"), &["--listen", &format!("unix:{}", file.display())])
        .err()
        .expect("refused");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
    // After a kill -9 the socket file stays behind, and the next start replaces it.
    server.kill9();
    assert!(sock.exists());
    let server = Server::start(&dir.path().join("c"), &["--listen", &listen]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the default mode");
    assert_eq!(Client::unix(&sock).ask_line("mn\r\n"), "MN");
    server.stop();
}

#[test]
fn bad_options_are_refused() {
    let dir = tempdir();
    for (args, want) in [
        (&["--unix-mode", "999"][..], "permission mode"),
        (&["--listen", "nowhere"], "listen address"),
        (&["--idle-timeout", "5"], "missing unit"),
        (&["--max-item-size", "lots"], "size"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keg"))
            .arg("serve")
            .arg(dir.path().join("c"))
            .args(["--max-bytes", "64MiB"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // --max-bytes is required.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keg")).arg("serve").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
