//! The meta commands (`mg`, `ms`, `md`, `ma`) on a real cache: each flag
//! keg serves, memcached's answers (the expected lines were checked against
//! memcached 1.6.18), the flags keg refuses, atomicity under concurrent
//! clients, versions and expiry across a restart, and the recache flows
//! (win tokens, stubs, stale copies).

use std::collections::HashMap;

use crate::{stats, tempdir, Client, Server};

/// One meta reply: the head line split into its code and its flags (each
/// flag letter to its token), and the data block of a `VA`.
#[derive(Debug)]
struct Reply {
    code: String,
    flags: HashMap<char, String>,
    order: String,
    data: Option<Vec<u8>>,
}

impl Reply {
    fn flag(&self, f: char) -> &str {
        self.flags.get(&f).unwrap_or_else(|| panic!("no {f} in {self:?}"))
    }

    fn num(&self, f: char) -> i64 {
        self.flag(f).parse().unwrap_or_else(|_| panic!("{f} is not a number in {self:?}"))
    }
}

/// Sends `request` and reads one meta reply.
fn meta(c: &mut Client, request: &str) -> Reply {
    c.send(request.as_bytes());
    read_reply(c)
}

fn read_reply(c: &mut Client) -> Reply {
    let head = c.line();
    let mut parts = head.split(' ');
    let code = parts.next().unwrap().to_owned();
    let mut data_len = None;
    if code == "VA" {
        data_len = Some(parts.next().and_then(|n| n.parse::<usize>().ok()).unwrap_or_else(|| panic!("{head}")));
    }
    let mut flags = HashMap::new();
    let mut order = String::new();
    for p in parts {
        let mut chars = p.chars();
        let f = chars.next().unwrap();
        order.push(f);
        flags.insert(f, chars.as_str().to_owned());
    }
    let data = data_len.map(|len| {
        let mut data = Vec::new();
        while data.len() < len + 2 {
            let line = c.line();
            data.extend_from_slice(line.as_bytes());
            data.extend_from_slice(b"\r\n");
        }
        assert_eq!(data.len(), len + 2, "{head}: {data:?}");
        data.truncate(len);
        data
    });
    Reply { code, flags, order, data }
}

/// Sends `request` and then `mn`: the lines before `MN` (none when `q` hid the reply).
fn quiet(c: &mut Client, request: &str) -> String {
    c.send(request.as_bytes());
    c.send(b"mn\r\n");
    let text = c.read_until("MN\r\n");
    text.strip_suffix("MN\r\n").unwrap().to_owned()
}

#[test]
fn meta_get_returns_the_flags_asked_for_in_their_order() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("mg foo v\r\n"), "EN");
    // A miss carries the key and the opaque back (for matching pipelined replies).
    assert_eq!(c.ask_line("mg foo O5 k v c\r\n"), "EN O5 kfoo");
    assert_eq!(c.ask_line("ms foo 2 T90 F1\r\nhi\r\n"), "HD");
    let r = meta(&mut c, "mg foo t f v c k s O123\r\n");
    assert_eq!((r.code.as_str(), r.order.as_str()), ("VA", "tfcksO"), "{r:?}");
    assert_eq!(r.data.as_deref(), Some(&b"hi"[..]));
    assert!((85..=90).contains(&r.num('t')), "{r:?}");
    assert_eq!((r.flag('f'), r.flag('k'), r.flag('s'), r.flag('O')), ("1", "foo", "2", "123"));
    // The cas token is the classic commands' cas unique.
    let gets = c.ask("gets foo\r\n", "END\r\n");
    assert_eq!(gets, format!("VALUE foo 1 2 {}\r\nhi\r\nEND\r\n", r.flag('c')));
    // Without v: HD and no data; the order is the request's.
    let r = meta(&mut c, "mg foo s k\r\n");
    assert_eq!((r.code.as_str(), r.order.as_str(), r.data), ("HD", "sk", None));
    // No expiry: t-1. u (no LRU bump) and the proxy hints P and L are taken and ignored.
    assert_eq!(c.ask_line("ms forever 1\r\nx\r\n"), "HD");
    assert_eq!(c.ask_line("mg forever t u Pxyz L\r\n"), "HD t-1");
    // q hides a miss only.
    assert_eq!(quiet(&mut c, "mg nokey v q\r\n"), "");
    assert_eq!(quiet(&mut c, "mg foo q k\r\n"), "HD kfoo\r\n");
    // T updates the expiry of a hit (as gat): t reports the new one.
    let r = meta(&mut c, "mg foo T1000 t v\r\n");
    assert!((995..=1000).contains(&r.num('t')), "{r:?}");
    let r = meta(&mut c, "mg foo t\r\n");
    assert!((995..=1000).contains(&r.num('t')), "{r:?}");
    assert_eq!(c.ask_line("mg nokey T10 v\r\n"), "EN");
    // A negative T expires it.
    assert_eq!(c.ask_line("mg foo T-1\r\n"), "HD");
    assert_eq!(c.ask_line("mg foo v\r\n"), "EN");
    let s = stats(&mut c, "");
    assert_eq!((s["get_hits"].as_str(), s["touch_hits"].as_str(), s["touch_misses"].as_str()), ("8", "2", "1"));
    server.stop();
}

#[test]
fn meta_set_modes_and_compare_and_swap() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    // c returns the new cas unique, the one mg reports.
    let r = meta(&mut c, "ms a 2 c F7 T0\r\nhi\r\n");
    assert_eq!(r.code, "HD");
    let v1 = r.num('c');
    assert_eq!(meta(&mut c, "mg a c f\r\n").num('c'), v1);
    // Add (E): not over a value; a new key is stored.
    assert_eq!(c.ask_line("ms a 2 ME\r\nno\r\n"), "NS");
    assert_eq!(c.ask_line("ms b 2 ME k\r\nbb\r\n"), "HD kb");
    // Replace (R): only over a value.
    assert_eq!(c.ask_line("ms zz 2 MR\r\nno\r\n"), "NS");
    assert_eq!(c.ask_line("ms b 3 MR F3\r\nbbb\r\n"), "HD");
    // Append and prepend keep the item's flags and expiry, whatever the request says.
    assert_eq!(c.ask_line("ms t 1 T500 F9\r\nm\r\n"), "HD");
    assert_eq!(c.ask_line("ms t 1 MA T5 F1\r\nz\r\n"), "HD");
    assert_eq!(c.ask_line("ms t 1 Mp\r\na\r\n"), "HD");
    let r = meta(&mut c, "mg t v f t\r\n");
    assert_eq!((r.data.as_deref(), r.flag('f')), (Some(&b"amz"[..]), "9"));
    assert!((495..=500).contains(&r.num('t')), "{r:?}");
    assert_eq!(c.ask_line("ms zz 1 MA\r\nx\r\n"), "NS");
    assert_eq!(c.ask_line("ms zz 1 MP\r\nx\r\n"), "NS");
    // C: store only over that version; EX over another, NF without a value.
    assert_eq!(c.ask_line(&format!("ms a 2 C{}\r\nyo\r\n", v1 + 1)), "EX");
    let r = meta(&mut c, &format!("ms a 2 C{v1} c\r\nyo\r\n"));
    assert_eq!(r.code, "HD");
    let v2 = r.num('c');
    assert!(v2 > v1);
    assert_eq!(c.ask_line(&format!("ms a 2 C{v1}\r\nno\r\n")), "EX");
    assert_eq!(c.ask_line("ms zz 2 C5\r\nno\r\n"), "NF");
    assert_eq!(c.ask_line("ms zz 2 MR C5\r\nno\r\n"), "NF");
    assert_eq!(c.ask_line("ms zz 2 MA C5\r\nno\r\n"), "NS");
    assert_eq!(c.ask_line(&format!("ms a 1 MA C{}\r\nx\r\n", v2 + 1)), "EX");
    assert_eq!(c.ask_line(&format!("ms a 1 MA C{v2}\r\n!\r\n")), "HD");
    // Add ignores C: a missing key is stored.
    assert_eq!(c.ask_line("ms new 1 ME C5\r\nn\r\n"), "HD");
    assert_eq!(c.ask("get a new\r\n", "END\r\n"), "VALUE a 0 3\r\nyo!\r\nVALUE new 0 1\r\nn\r\nEND\r\n");
    // A negative T stores it already expired (still HD).
    assert_eq!(c.ask_line("ms a 2 T-1\r\nhi\r\n"), "HD");
    assert_eq!(c.ask_line("mg a v\r\n"), "EN");
    // q hides HD, never the other codes; O and k come back with any code.
    assert_eq!(quiet(&mut c, "ms q 1 q\r\n1\r\n"), "");
    assert_eq!(quiet(&mut c, "ms q 1 ME q O9 k\r\n1\r\n"), "NS O9 kq\r\n");
    // Values of any bytes, an empty one included.
    assert_eq!(c.ask_line("ms bin 4\r\n\r\n\0z\r\n"), "HD");
    assert_eq!(meta(&mut c, "mg bin v\r\n").data.as_deref(), Some(&b"\r\n\0z"[..]));
    assert_eq!(c.ask_line("ms empty 0\r\n\r\n"), "HD");
    assert_eq!(meta(&mut c, "mg empty v s\r\n").data.as_deref(), Some(&b""[..]));
    let s = stats(&mut c, "");
    assert_eq!((s["cas_hits"].as_str(), s["cas_badval"].as_str()), ("2", "3"));
    server.stop();
}

#[test]
fn meta_delete_and_arithmetic() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("ms d 2\r\nhi\r\n"), "HD");
    assert_eq!(c.ask_line("md d k O5\r\n"), "HD kd O5");
    assert_eq!(c.ask_line("md d\r\n"), "NF");
    assert_eq!(c.ask_line("mg d v\r\n"), "EN");
    assert_eq!(quiet(&mut c, "md d q k\r\n"), "NF kd\r\n");
    let v = meta(&mut c, "ms d 2 c\r\nhi\r\n").num('c');
    assert_eq!(c.ask_line(&format!("md d C{}\r\n", v + 1)), "EX");
    assert_eq!(quiet(&mut c, &format!("md d C{v} q\r\n")), "");
    assert_eq!(c.ask_line("mg d v\r\n"), "EN");

    // ma: NF on a miss; N creates the key with J (the delta is not added).
    assert_eq!(c.ask_line("ma n\r\n"), "NF");
    let r = meta(&mut c, "ma n N0 J10 v t\r\n");
    assert_eq!((r.code.as_str(), r.data.as_deref(), r.flag('t')), ("VA", Some(&b"10"[..]), "-1"));
    assert_eq!(meta(&mut c, "ma n v\r\n").data.as_deref(), Some(&b"11"[..]));
    assert_eq!(meta(&mut c, "ma n v D5 MD\r\n").data.as_deref(), Some(&b"6"[..]));
    assert_eq!(meta(&mut c, "ma n v D50 M-\r\n").data.as_deref(), Some(&b"0"[..]));
    assert_eq!(meta(&mut c, "ma n v D7 M+ k O1\r\n").order, "kO");
    // T sets the expiry on success; t reports it; c the new version, which mg reports too.
    let r = meta(&mut c, "ma n T300 t c\r\n");
    assert_eq!(r.code, "HD");
    assert!((295..=300).contains(&r.num('t')), "{r:?}");
    assert_eq!(meta(&mut c, "mg n c v\r\n").num('c'), r.num('c'));
    // C: only over that version.
    assert_eq!(c.ask_line(&format!("ma n C{}\r\n", r.num('c') + 1)), "EX");
    assert_eq!(meta(&mut c, &format!("ma n C{} v\r\n", r.num('c'))).data.as_deref(), Some(&b"9"[..]));
    // q hides HD.
    assert_eq!(quiet(&mut c, "ma n q\r\n"), "");
    assert_eq!(quiet(&mut c, "ma nothing q\r\n"), "NF\r\n");
    // Wraps at 2^64 going up, stops at 0 going down; a non-number is an error and stays.
    assert_eq!(c.ask_line("ms big 20\r\n18446744073709551615\r\n"), "HD");
    assert_eq!(meta(&mut c, "ma big v\r\n").data.as_deref(), Some(&b"0"[..]));
    assert_eq!(c.ask_line("ms s 2 F4\r\nhi\r\n"), "HD");
    assert_eq!(c.ask_line("ma s v\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value");
    assert_eq!(c.ask("get s\r\n", "END\r\n"), "VALUE s 4 2\r\nhi\r\nEND\r\n");
    // A counter keeps its flags.
    assert_eq!(c.ask_line("ms f 1 F8\r\n1\r\n"), "HD");
    assert_eq!(c.ask_line("ma f\r\n"), "HD");
    assert_eq!(c.ask("get f\r\n", "END\r\n"), "VALUE f 8 1\r\n2\r\nEND\r\n");
    let s = stats(&mut c, "");
    assert_eq!((s["delete_hits"].as_str(), s["delete_misses"].as_str()), ("2", "2"));
    server.stop();
}

#[test]
fn meta_errors_are_answered_and_leave_the_connection_usable() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &["--max-item-size", "1KiB"]);
    let mut c = server.client();
    assert_eq!(c.ask_line("ms k 1\r\nv\r\n"), "HD");
    for (request, answer) in [
        ("mg\r\n", "ERROR"),
        ("mg k zz\r\n", "CLIENT_ERROR invalid flag"),
        ("mg k Y\r\n", "CLIENT_ERROR invalid flag"),
        ("mg k C5\r\n", "CLIENT_ERROR invalid flag"),
        ("md k v\r\n", "CLIENT_ERROR invalid flag"),
        ("mg k v v\r\n", "CLIENT_ERROR duplicate flag"),
        ("mg k Tabc\r\n", "CLIENT_ERROR bad token in command line format"),
        ("mg k T\r\n", "CLIENT_ERROR bad token in command line format"),
        ("ma k D\r\n", "CLIENT_ERROR bad token in command line format"),
        ("ma k D-1\r\n", "CLIENT_ERROR bad token in command line format"),
        ("ma k MZ\r\n", "CLIENT_ERROR invalid mode for ma M token"),
        ("mg k O123456789012345678901234567890123\r\n", "CLIENT_ERROR opaque token too long"),
        ("mg Zm9 b v\r\n", "CLIENT_ERROR error decoding key"),
        ("mg k\x01 v\r\n", "CLIENT_ERROR bad command line format"),
        ("ms k\r\n", "CLIENT_ERROR bad command line format"),
        ("ms k -1\r\n", "CLIENT_ERROR bad command line format"),
    ] {
        assert_eq!(c.ask_line(request), answer, "{request:?}");
    }
    // What keg does not serve is refused by name, never half done.
    for request in ["md k x\r\n", "mg k E5\r\n", "ms k 0 E5\r\n\r\n"] {
        let answer = c.ask_line(request);
        assert!(answer.starts_with("CLIENT_ERROR flag not supported by keg serve"), "{request:?}: {answer}");
    }
    assert_eq!(c.get("k").unwrap(), b"v");
    // A bad ms line still has its data block, which is dropped.
    assert_eq!(c.ask_line("ms k 3 MX\r\nabc\r\n"), "CLIENT_ERROR invalid mode for ms M token");
    assert_eq!(c.ask_line("ms k 3 Fx\r\nabc\r\n"), "CLIENT_ERROR bad token in command line format");
    assert_eq!(c.ask_line("ms k 3 F4294967296\r\nabc\r\n"), "CLIENT_ERROR bad token in command line format");
    assert_eq!(c.ask_line("ms k 3 x\r\nabc\r\n"), "CLIENT_ERROR invalid flag");
    assert_eq!(c.ask_line("ms k 3 b\r\nabc\r\n"), "CLIENT_ERROR error decoding key");
    // A data block not ended by \r\n.
    assert_eq!(c.ask_line("ms k 1\r\nxyz"), "CLIENT_ERROR bad data chunk");
    assert_eq!(c.get("k").unwrap(), b"v");
    // Over the item size: refused, the data dropped, the old value gone (as set).
    let big = vec![b'x'; 1025];
    c.send(b"ms k 1025\r\n");
    c.send(&big);
    assert_eq!(c.ask_line("\r\n"), "SERVER_ERROR object too large for cache");
    assert_eq!(c.ask_line("mg k v\r\n"), "EN");
    assert_eq!(c.ask_line("mn\r\n"), "MN");
    server.stop();
}

#[test]
fn meta_base64_keys() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    // "Zm9v" is "foo": the same item as the plain key.
    assert_eq!(c.ask_line("ms Zm9v 2 b\r\nhi\r\n"), "HD");
    assert_eq!(c.get("foo").unwrap(), b"hi");
    let r = meta(&mut c, "mg Zm9v b v k O1\r\n");
    assert_eq!((r.flag('k'), r.flag('b'), r.order.as_str()), ("Zm9v", "", "kbO"));
    // A key no text command can name: a space, a newline and a NUL in it.
    assert_eq!(c.ask_line("ms YSBiCgA= 1 b\r\nx\r\n"), "HD");
    assert_eq!(meta(&mut c, "mg YSBiCgA= b v\r\n").data.as_deref(), Some(&b"x"[..]));
    assert_eq!(c.ask_line("ma YSBiCgA= b\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value");
    assert_eq!(c.ask_line("md YSBiCgA= b\r\n"), "HD");
    assert_eq!(c.ask_line("mg YSBiCgA= b v\r\n"), "EN");
    server.stop();
}

#[test]
fn meta_writes_are_atomic_across_clients() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let threads = 4;
    let per = 200;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mut c = server.client();
            std::thread::spawn(move || {
                let mut won = 0;
                for i in 0..per {
                    // Every client counts with autovivify: no increment is lost.
                    let r = meta(&mut c, "ma hits N0 J0 D1 v\r\n");
                    assert_eq!(r.code, "VA");
                    // One add of each key wins.
                    if c.ask_line(&format!("ms lock{i} 1 ME\r\n{t}\r\n")) == "HD" {
                        won += 1;
                    }
                }
                won
            })
        })
        .collect();
    let won: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(won, per);
    let mut c = server.client();
    // The first vivify stored 0 without adding: threads * per - 1.
    assert_eq!(meta(&mut c, "mg hits v\r\n").data.unwrap(), (threads * per - 1).to_string().into_bytes());
    server.stop();
}

#[test]
fn meta_versions_flags_and_expiry_survive_a_restart() {
    let dir = tempdir();
    let path = dir.path().join("c");
    let server = Server::start(&path, &[]);
    let mut c = server.client();
    let v = meta(&mut c, "ms k 5 F42 T3000 c\r\nhello\r\n").num('c');
    server.stop();
    let server = Server::start(&path, &[]);
    let mut c = server.client();
    let r = meta(&mut c, "mg k v f c t\r\n");
    assert_eq!((r.data.as_deref(), r.flag('f'), r.num('c')), (Some(&b"hello"[..]), "42", v));
    assert!((2900..=3000).contains(&r.num('t')), "{r:?}");
    // The version read before the restart still works for a compare-and-swap.
    assert_eq!(c.ask_line(&format!("ms k 3 C{v}\r\nnew\r\n")), "HD");
    assert_eq!(c.ask_line(&format!("md k C{v}\r\n")), "EX");
    server.kill9();
    let server = Server::start(&path, &[]);
    let mut c = server.client();
    assert_eq!(meta(&mut c, "mg k v\r\n").data.as_deref(), Some(&b"new"[..]));
    server.stop();
}

#[test]
fn meta_vivify_hands_one_client_the_win_and_the_others_the_stub() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    let r = meta(&mut c, "mg viv N30 v t c\r\n");
    assert_eq!((r.code.as_str(), r.data.as_deref(), r.order.as_str()), ("VA", Some(&b""[..]), "tcW"), "{r:?}");
    assert!((25..=30).contains(&r.num('t')));
    let stub_cas = r.num('c');
    let r = meta(&mut c, "mg viv N30 v c\r\n");
    assert_eq!((r.order.as_str(), r.num('c')), ("cZ", stub_cas));
    assert_eq!(c.ask_line("mg viv k O1\r\n"), "HD kviv O1 Z");
    // The stub is the server's, not the cache's: classic commands see nothing.
    assert_eq!(c.ask("get viv\r\n", "END\r\n"), "END\r\n");
    // The winner's write replaces it; the flags are gone with it.
    assert_eq!(c.ask_line("ms viv 3 T60\r\nnew\r\n"), "HD");
    let r = meta(&mut c, "mg viv N30 v\r\n");
    assert_eq!((r.data.as_deref(), r.order.as_str()), (Some(&b"new"[..]), ""));
    // Clients racing on a miss: exactly one wins.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let mut c = server.client();
            std::thread::spawn(move || {
                (0..50).filter(|i| meta(&mut c, &format!("mg race{i} N30 v\r\n")).flags.contains_key(&'W')).count()
            })
        })
        .collect();
    let wins: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(wins, 50);
    server.stop();
}

#[test]
fn classic_writes_that_change_nothing_leave_the_winner_its_stub() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    let r = meta(&mut c, "mg lease N30 v c\r\n");
    assert_eq!(r.order, "cW", "{r:?}");
    let stub = r.num('c');
    // Classic writes that find nothing to change: the stub stays, and the
    // next reader is told to wait for the winner, not handed another win.
    assert_eq!(c.ask_line(&format!("cas lease 0 0 1 {}\r\nx\r\n", stub + 1)), "NOT_FOUND");
    assert_eq!(c.ask_line("replace lease 0 0 1\r\nx\r\n"), "NOT_STORED");
    assert_eq!(c.ask_line("append lease 0 0 1\r\nx\r\n"), "NOT_STORED");
    assert_eq!(c.ask_line("incr lease 1\r\n"), "NOT_FOUND");
    let r = meta(&mut c, "mg lease N30 v c\r\n");
    assert_eq!((r.order.as_str(), r.num('c')), ("cZ", stub), "{r:?}");
    // The winner's write-back with the stub's cas is stored.
    assert_eq!(c.ask_line(&format!("ms lease 4 C{stub} T60\r\nnew!\r\n")), "HD");
    assert_eq!(meta(&mut c, "mg lease v\r\n").data.as_deref(), Some(&b"new!"[..]));
    // A classic write that changes the item drops what was held: a new
    // lease after a set's value is gone starts a new race.
    let r = meta(&mut c, "mg other N30 v c\r\n");
    assert_eq!(r.order, "cW", "{r:?}");
    assert_eq!(c.ask_line("add other 0 0 1\r\nx\r\n"), "STORED");
    assert_eq!(c.ask_line("delete other\r\n"), "DELETED");
    assert_eq!(meta(&mut c, "mg other N30 v c\r\n").order, "cW");
    server.stop();
}

#[test]
fn meta_recache_wins_follow_the_time_left_and_the_version() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("ms r 2 T100\r\nhi\r\n"), "HD");
    // 100 s left: R50 does not win, R200 does, once.
    assert_eq!(meta(&mut c, "mg r R50 v\r\n").order, "");
    assert_eq!(meta(&mut c, "mg r R200 v\r\n").order, "W");
    assert_eq!(meta(&mut c, "mg r R200 v\r\n").order, "Z");
    assert_eq!(meta(&mut c, "mg r v\r\n").order, "Z");
    // A new version of the item: the race is open again.
    assert_eq!(c.ask_line("ms r 2 T100\r\nho\r\n"), "HD");
    assert_eq!(meta(&mut c, "mg r v\r\n").order, "");
    assert_eq!(meta(&mut c, "mg r R200 v\r\n").order, "W");
    // An item without expiry never needs a recache.
    assert_eq!(c.ask_line("ms forever 1\r\nx\r\n"), "HD");
    assert_eq!(meta(&mut c, "mg forever R1000000 v\r\n").order, "");
    server.stop();
}

#[test]
fn meta_invalidate_serves_a_stale_copy_until_the_recache() {
    let dir = tempdir();
    let path = dir.path().join("c");
    let server = Server::start(&path, &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("md s I\r\n"), "NF");
    let v = meta(&mut c, "ms s 2 F3 c\r\nhi\r\n").num('c');
    assert_eq!(c.ask_line(&format!("md s I C{}\r\n", v + 1)), "EX");
    assert_eq!(c.get("s").unwrap(), b"hi");
    assert_eq!(c.ask_line(&format!("md s I T30 C{v}\r\n")), "HD");
    // The first fetcher wins the recache; the others get the stale value.
    let r = meta(&mut c, "mg s v t f c\r\n");
    assert_eq!((r.data.as_deref(), r.flag('f'), r.order.as_str()), (Some(&b"hi"[..]), "3", "tfcXW"), "{r:?}");
    assert!((25..=30).contains(&r.num('t')));
    assert_ne!(r.num('c'), v, "invalidation gives the copy a new cas");
    assert_eq!(meta(&mut c, "mg s v\r\n").order, "ZX");
    // The cache itself no longer holds the value.
    assert_eq!(c.get("s"), None);
    // md I again re-opens the race; a plain md drops the copy.
    assert_eq!(c.ask_line("md s I\r\n"), "HD");
    assert_eq!(meta(&mut c, "mg s v\r\n").order, "XW");
    assert_eq!(c.ask_line("md s\r\n"), "HD");
    assert_eq!(c.ask_line("mg s v\r\n"), "EN");
    // The recache replaces the stale copy.
    assert_eq!(c.ask_line("ms t 1\r\n1\r\nmd t I\r\n"), "HD");
    assert_eq!(c.line(), "HD");
    assert_eq!(c.ask_line("ms t 1\r\n2\r\n"), "HD");
    let r = meta(&mut c, "mg t v\r\n");
    assert_eq!((r.data.as_deref(), r.order.as_str()), (Some(&b"2"[..]), ""));
    // Then the value's delete leaves nothing behind (not the old stale copy).
    assert_eq!(c.ask_line("delete t\r\n"), "DELETED");
    assert_eq!(c.ask_line("mg t v\r\n"), "EN");
    // flush_all forgets held copies too.
    assert_eq!(c.ask_line("ms u 1\r\n1\r\nmd u I\r\n"), "HD");
    assert_eq!(c.line(), "HD");
    assert_eq!(c.ask_line("flush_all\r\n"), "OK");
    assert_eq!(c.ask_line("mg u v\r\n"), "EN");
    // ms I with a cas older than the item's stores the data as a stale copy;
    // a cas not older is EX, a missing item NF.
    let v = meta(&mut c, "ms m 2 c\r\nv1\r\n").num('c');
    assert_eq!(c.ask_line(&format!("ms m 2 I C{}\r\nv0\r\n", v + 1)), "EX");
    assert_eq!(c.ask_line("ms nom 2 I C1\r\nv0\r\n"), "NF");
    assert_eq!(c.ask_line(&format!("ms m 2 I C{}\r\nv0\r\n", v - 1)), "HD");
    let r = meta(&mut c, "mg m v\r\n");
    assert_eq!((r.data.as_deref(), r.order.as_str()), (Some(&b"v0"[..]), "XW"));
    // Over a held stale copy: an older cas replaces it (still stale, its win kept).
    let held = meta(&mut c, "mg m c\r\n").num('c');
    assert_eq!(c.ask_line(&format!("ms m 2 I C{held}\r\nno\r\n")), "EX");
    assert_eq!(c.ask_line(&format!("ms m 2 I C{}\r\nv9\r\n", held - 1)), "HD");
    let r = meta(&mut c, "mg m v\r\n");
    assert_eq!((r.data.as_deref(), r.order.as_str()), (Some(&b"v9"[..]), "ZX"));
    // The recache winner writes back with the held copy's cas: stored.
    let r = meta(&mut c, "mg lease N30 c v\r\n");
    assert_eq!(r.order, "cW");
    let lease = r.num('c');
    assert!(lease <= i64::from(u32::MAX), "clients read cas tokens as 32-bit numbers");
    assert_eq!(c.ask_line(&format!("ms lease 4 C{}\r\nlate\r\n", lease + 1)), "NF");
    assert_eq!(c.ask_line(&format!("ms lease 4 C{lease}\r\nfill\r\n")), "HD");
    assert_eq!(c.get("lease").unwrap(), b"fill");
    // Stubs and stale copies live in the server's memory: after a restart,
    // and after kill -9, they are misses, never values read back from disk.
    assert_eq!(c.ask_line("ms w 1\r\n1\r\nmd w I\r\n"), "HD");
    assert_eq!(c.line(), "HD");
    assert_eq!(meta(&mut c, "mg stub N0 v\r\n").order, "W");
    server.stop();
    let server = Server::start(&path, &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("mg w v\r\n"), "EN");
    assert_eq!(c.ask_line("mg stub v\r\n"), "EN");
    assert_eq!(c.ask_line("ms x 1\r\n1\r\nmd x I\r\n"), "HD");
    assert_eq!(c.line(), "HD");
    assert_eq!(meta(&mut c, "mg stub2 N0 v\r\n").order, "W");
    server.kill9();
    let server = Server::start(&path, &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("mg x v\r\n"), "EN");
    assert_eq!(c.ask_line("mg stub2 v\r\n"), "EN");
    server.stop();
}

#[test]
fn meta_get_reports_hit_before_and_last_access() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("c"), &[]);
    let mut c = server.client();
    assert_eq!(c.ask_line("ms k 1\r\nv\r\n"), "HD");
    assert_eq!(c.ask_line("mg k h l\r\n"), "HD h0 l0");
    assert_eq!(c.ask_line("mg k l h\r\n"), "HD l0 h1");
    // A write makes a new item, not fetched yet; u looks without counting.
    assert_eq!(c.ask_line("set k 0 0 1\r\nw\r\n"), "STORED");
    assert_eq!(c.ask_line("mg k h u\r\n"), "HD h0");
    assert_eq!(c.ask_line("mg k h\r\n"), "HD h0");
    assert_eq!(c.ask_line("mg k h\r\n"), "HD h1");
    assert_eq!(c.ask_line("mg nokey h l\r\n"), "EN");
    // me: the same, for people.
    let cas = meta(&mut c, "mg k c\r\n").num('c');
    assert_eq!(c.ask_line("me k\r\n"), format!("ME k exp=-1 la=0 cas={cas} fetch=yes cls=1 size=2"));
    assert_eq!(c.ask_line("me aw== b\r\n"), format!("ME aw== exp=-1 la=0 cas={cas} fetch=yes cls=1 size=2"));
    assert_eq!(c.ask_line("me nokey\r\n"), "EN");
    assert_eq!(c.ask_line("me\r\n"), "ERROR");
    server.stop();
}
