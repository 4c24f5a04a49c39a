//! The server in process, with a store whose calls wait until the test lets
//! them go: a store call that waits (a read, or a write as an fsync makes it
//! wait) holds up only its own connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use keg::server::{
    Applied, CasResult, Change, Config, Item, ListenAddr, MemoryStore, Server, Shutdown, Stopped, Store, StoreResult,
    Ttl,
};

/// A memory store whose `get` of a key starting with `slow`, and `set` of
/// one starting with `slowset`, wait until the gate opens.
struct GatedStore {
    inner: MemoryStore,
    open: Mutex<bool>,
    cv: Condvar,
    waiting: AtomicUsize,
}

impl GatedStore {
    fn new() -> GatedStore {
        GatedStore {
            inner: MemoryStore::new(1 << 20),
            open: Mutex::new(false),
            cv: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    fn wait_if_slow(&self, key: &[u8], prefix: &[u8]) {
        if !key.starts_with(prefix) {
            return;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        drop(open);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits until `n` calls wait at the gate (a minute at most: a pool
    /// that serves fewer at once fails the test).
    fn await_waiting(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.waiting.load(Ordering::SeqCst) < n {
            let now = self.waiting.load(Ordering::SeqCst);
            assert!(std::time::Instant::now() < deadline, "only {now} of {n} calls reached the store at once");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Store for GatedStore {
    type Value = Arc<[u8]>;
    fn get(&self, key: &[u8]) -> StoreResult<Option<Item<Arc<[u8]>>>> {
        self.wait_if_slow(key, b"slow");
        self.inner.get(key)
    }
    fn get_and_touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<Option<Item<Arc<[u8]>>>> {
        self.inner.get_and_touch(key, ttl)
    }
    fn set(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<u64> {
        self.wait_if_slow(key, b"slowset");
        self.inner.set(key, value, flags, ttl)
    }
    fn add(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        self.inner.add(key, value, flags, ttl)
    }
    fn replace(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        self.inner.replace(key, value, flags, ttl)
    }
    fn append(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>> {
        self.inner.append(key, data)
    }
    fn prepend(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>> {
        self.inner.prepend(key, data)
    }
    fn cas(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl, version: u64) -> StoreResult<CasResult> {
        self.inner.cas(key, value, flags, ttl, version)
    }
    fn incr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>> {
        self.inner.incr(key, delta)
    }
    fn decr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>> {
        self.inner.decr(key, delta)
    }
    fn touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<bool> {
        self.inner.touch(key, ttl)
    }
    fn delete(&self, key: &[u8]) -> StoreResult<bool> {
        self.inner.delete(key)
    }
    fn clear(&self) -> StoreResult<()> {
        self.inner.clear()
    }
    fn stats(&self) -> keg::Stats {
        self.inner.stats()
    }
    fn apply(&self, key: &[u8], change: &Change<'_>, if_version: Option<u64>) -> StoreResult<Applied> {
        self.inner.apply(key, change, if_version)
    }
}

struct Running {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: std::thread::JoinHandle<Stopped>,
}

fn start(store: Arc<GatedStore>) -> Running {
    let config = Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() };
    let server = Server::bind(config).unwrap();
    let ListenAddr::Tcp(addr) = server.local_addrs()[0].clone() else { unreachable!() };
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run(store));
    Running { addr, shutdown, thread }
}

/// A client whose reads give up after a minute (a test that hangs fails).
fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).expect("a reply before the read timeout");
    l
}

/// Round trips on fresh connections while other calls wait at the gate.
fn others_are_served(addr: SocketAddr, connections: usize) {
    for c in 0..connections {
        let (mut s, mut r) = connect(addr);
        for i in 0..20 {
            write!(s, "set k{c}-{i} 0 0 3\r\nv{i:02}\r\n").unwrap();
            assert_eq!(line(&mut r), "STORED\r\n");
            write!(s, "get k{c}-{i}\r\n").unwrap();
            assert!(line(&mut r).starts_with("VALUE"));
            assert_eq!(line(&mut r), format!("v{i:02}\r\n"));
            assert_eq!(line(&mut r), "END\r\n");
        }
    }
}

fn stop(running: Running) {
    running.shutdown.graceful();
    assert!(matches!(running.thread.join().unwrap(), Stopped::Graceful { unfinished: 0 }));
}

#[test]
fn a_read_that_waits_holds_up_only_its_own_connection() {
    let store = Arc::new(GatedStore::new());
    let running = start(store.clone());
    let (mut slow, mut slow_r) = connect(running.addr);
    write!(slow, "get slow1\r\n").unwrap();
    store.await_waiting(1);
    others_are_served(running.addr, 4);
    store.release();
    assert_eq!(line(&mut slow_r), "END\r\n");
    stop(running);
}

#[test]
fn writes_that_wait_for_the_disk_let_the_other_connections_through() {
    let store = Arc::new(GatedStore::new());
    let running = start(store.clone());
    let mut slow = Vec::new();
    for i in 0..3 {
        let (mut s, r) = connect(running.addr);
        write!(s, "set slowset{i} 0 0 1\r\nx\r\n").unwrap();
        slow.push((s, r));
    }
    store.await_waiting(3);
    others_are_served(running.addr, 2);
    store.release();
    for (_, r) in &mut slow {
        assert_eq!(line(r), "STORED\r\n");
    }
    stop(running);
}
