//! The commands that need the library's atomic operations, flags and
//! versions: add, replace, append, prepend, cas, incr, decr, touch, gat,
//! gats, and flags and cas uniques in get/gets.

use crate::{stats, tempdir, Server};

fn cas_of(reply: &str) -> u64 {
    let head = reply.lines().next().unwrap();
    head.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no cas in {reply:?}"))
}

#[test]
fn flags_are_returned_unchanged() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    for flags in [0u32, 1, 16, 65535, 65536, u32::MAX] {
        assert_eq!(c.set("f", flags, 0, b"v"), "STORED");
        assert_eq!(c.ask("get f\r\n", "END\r\n"), format!("VALUE f {flags} 1\r\nv\r\nEND\r\n"));
    }
    server.stop();
}

#[test]
fn add_replace_append_prepend() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("add k 5 0 1\r\na\r\n"), "STORED");
    assert_eq!(c.ask_line("add k 0 0 1\r\nb\r\n"), "NOT_STORED");
    assert_eq!(c.ask_line("replace nope 0 0 1\r\nb\r\n"), "NOT_STORED");
    assert_eq!(c.ask_line("replace k 6 0 1\r\nb\r\n"), "STORED");
    assert_eq!(c.ask_line("append k 99 0 2\r\ncd\r\n"), "STORED");
    assert_eq!(c.ask_line("prepend k 99 0 2\r\n01\r\n"), "STORED");
    // append and prepend keep the item's flags.
    assert_eq!(c.ask("get k\r\n", "END\r\n"), "VALUE k 6 5\r\n01bcd\r\nEND\r\n");
    assert_eq!(c.ask_line("append nope 0 0 1\r\nx\r\n"), "NOT_STORED");
    assert_eq!(c.ask_line("prepend nope 0 0 1\r\nx\r\n"), "NOT_STORED");
    // add over an expired item stores; add with a negative exptime is still STORED.
    assert_eq!(c.set("old", 0, -1, b"v"), "STORED");
    assert_eq!(c.ask_line("add old 0 0 1\r\nw\r\n"), "STORED");
    assert_eq!(c.ask_line("add neg 0 -1 1\r\nw\r\n"), "STORED");
    assert_eq!(c.get("neg"), None);
    server.stop();
}

#[test]
fn cas_and_gets() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.set("k", 0, 0, b"v1"), "STORED");
    let first = cas_of(&c.ask("gets k\r\n", "END\r\n"));
    assert_eq!(c.ask_line(&format!("cas k 0 0 2 {}\r\nv2\r\n", first + 1)), "EXISTS");
    assert_eq!(c.ask_line(&format!("cas k 3 0 2 {first}\r\nv2\r\n")), "STORED");
    let second = cas_of(&c.ask("gets k\r\n", "END\r\n"));
    assert!(second > first);
    assert_eq!(c.ask_line(&format!("cas k 0 0 2 {first}\r\nv3\r\n")), "EXISTS");
    assert_eq!(c.ask_line("cas nope 0 0 1 1\r\nx\r\n"), "NOT_FOUND");
    assert_eq!(c.ask("get k\r\n", "END\r\n"), "VALUE k 3 2\r\nv2\r\nEND\r\n");
    let s = stats(&mut c, "");
    assert_eq!((s["cas_hits"].as_str(), s["cas_badval"].as_str(), s["cas_misses"].as_str()), ("1", "2", "1"));
    // The cas unique stays valid across a restart.
    server.stop();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(cas_of(&c.ask("gets k\r\n", "END\r\n")), second);
    assert_eq!(c.ask_line(&format!("cas k 0 0 2 {second}\r\nv4\r\n")), "STORED");
    server.stop();
}

#[test]
fn incr_decr() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("incr n 1\r\n"), "NOT_FOUND");
    assert_eq!(c.set("n", 0, 0, b"10"), "STORED");
    assert_eq!(c.ask_line("incr n 5\r\n"), "15");
    assert_eq!(c.ask_line("decr n 100\r\n"), "0");
    assert_eq!(c.set("n", 0, 0, b"18446744073709551615"), "STORED");
    assert_eq!(c.ask_line("incr n 2\r\n"), "1");
    assert_eq!(c.ask_line("incr n 18446744073709551615\r\n"), "0");
    assert_eq!(c.set("t", 0, 0, b"text"), "STORED");
    assert_eq!(c.ask_line("incr t 1\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value");
    assert_eq!(c.ask_line("decr t 1\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value");
    c.send(b"incr n 41 noreply\r\n");
    assert_eq!(c.get("n").unwrap(), b"41");
    server.stop();
}

#[test]
fn touch_gat_gats() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("touch nope 10\r\n"), "NOT_FOUND");
    assert_eq!(c.set("k", 7, 2, b"v"), "STORED");
    assert_eq!(c.ask_line("touch k 0\r\n"), "TOUCHED");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(c.get("k").unwrap(), b"v", "touch 0 made it permanent");
    assert_eq!(c.ask("gat 100 k nope\r\n", "END\r\n"), "VALUE k 7 1\r\nv\r\nEND\r\n");
    let reply = c.ask("gats 100 k\r\n", "END\r\n");
    assert!(reply.starts_with("VALUE k 7 1 "), "{reply}");
    assert_eq!(c.ask("gat -1 k\r\n", "END\r\n"), "VALUE k 7 1\r\nv\r\nEND\r\n");
    assert_eq!(c.get("k"), None, "gat -1 expired it");
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    assert_eq!(c.ask_line("touch k -1\r\n"), "TOUCHED");
    assert_eq!(c.get("k"), None);
    server.stop();
}
