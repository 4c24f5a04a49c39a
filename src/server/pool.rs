//! Connections served by a small pool of poller threads.
//!
//! Every open connection is registered, one-shot, in one epoll set. A
//! poller thread takes the next connection that has something to do, reads
//! what its client sent, carries out every whole request, sends the
//! replies, and arms the connection again; then it takes the next. While
//! the pollers are busy, new requests queue in the epoll set and the next
//! free poller picks them up without sleeping, so under load a request
//! costs no thread wake-up; and no connection belongs to a thread while it
//! waits, so a thread the scheduler preempts holds up only the connection
//! it is serving. BENCHMARKS.md §8 has the measurements that chose this over
//! a thread per connection and over an async runtime.
//!
//! The pool keeps `threads` pollers (one per CPU by default) ready to take
//! work. A thread that waits inside a store call (a synced write waiting for
//! its fsync, which `blocking::section` announces; or any call found still
//! running after [`STUCK_AFTER`], such as a read faulting in a page from
//! disk) does not count, and a spare thread takes its place, up to
//! `max_threads` threads in all. When it returns, the surplus thread parks as
//! a spare, and a spare parked for [`SPARE_IDLE`] ends.
//!
//! A monitor thread counts the stuck threads, and closes connections whose
//! idle or stall timeout has passed (checked every [`SWEEP_EVERY`]), and,
//! after a graceful stop's grace period, the connections still open. It
//! closes a connection by shutting its socket down, which wakes the poller
//! that next takes it.
//!
//! Locks: `conns` (the registry) and `spares` are leaves, never held
//! together or across a store call; a connection's own `state` mutex is held
//! by the one poller serving it (the epoll registration is one-shot, so no
//! other poller can take it meanwhile) and across its store calls.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::blocking;
use super::conn::Conn;
use super::exec::Shared;
use super::socket::Socket;
use super::stats::bump;
use super::store::Store;

/// Stack of a pool thread: a request's deepest path (a set that evicts to
/// make room) needs far less; only the pages touched count towards memory.
const THREAD_STACK: usize = 512 << 10;
/// A store call still running after this long counts as waiting, and a
/// spare thread polls in its place.
pub(crate) const STUCK_AFTER: Duration = Duration::from_millis(2);
/// How often the monitor looks at timeouts.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// A spare parked this long, beyond the pollers the pool keeps, ends.
pub(crate) const SPARE_IDLE: Duration = Duration::from_secs(10);
/// The epoll token of the signal that ends the pool (a connection's token
/// is its slot's address, never 0).
const EXIT_TOKEN: u64 = 0;

/// Why the monitor shut a connection down.
const KICK_NONE: u8 = 0;
const KICK_TIMEOUT: u8 = 1;
const KICK_GRACE: u8 = 2;

/// One open connection.
struct Slot {
    socket: Socket,
    /// Held by the poller serving the connection.
    state: Mutex<Conn>,
    /// Milliseconds since the pool started when a byte last moved.
    last_progress: AtomicU64,
    /// A request half received or replies unsent (the stall timeout applies).
    pending: AtomicBool,
    /// Set by the monitor before it shuts the socket down.
    kicked: AtomicU8,
    /// The server's stop has been applied to this connection.
    stopped: AtomicBool,
}

/// The pool's thread accounting.
struct Workers {
    /// Pollers to keep ready.
    target: usize,
    /// Threads alive (pollers, threads serving, spares).
    live: AtomicUsize,
    /// Threads inside a `blocking::section`.
    blocked: AtomicUsize,
    /// Threads the monitor last found in one step for over `STUCK_AFTER`.
    stuck: AtomicUsize,
    /// Per thread number: when its current step began (ms since start + 1), or 0.
    busy_since: Box<[AtomicU64]>,
    /// Thread numbers not in use.
    free: Mutex<Vec<usize>>,
    /// Spares parked, and wake-ups handed to them.
    spares: Mutex<Spares>,
    spare_cv: Condvar,
}

#[derive(Default)]
struct Spares {
    parked: usize,
    wakeups: usize,
}

struct Inner<S: Store> {
    shared: Arc<Shared<S>>,
    epoll: OwnedFd,
    exit_fd: OwnedFd,
    conns: Mutex<HashMap<usize, Arc<Slot>>>,
    workers: Workers,
    start: Instant,
    /// Milliseconds since start when a graceful stop began (+1), or 0.
    stop_at: AtomicU64,
    exit: AtomicBool,
    /// Every thread started (the monitor's first), to wait for at exit.
    handles: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// The poller threads and the connections they serve.
pub(crate) struct Pool<S: Store> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> Clone for Pool<S> {
    fn clone(&self) -> Self {
        Pool { inner: self.inner.clone() }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl<S: Store> Pool<S> {
    /// Starts `threads` pollers (0: one per CPU) and the monitor; at most
    /// `max_threads` threads serve at once.
    pub(crate) fn start(shared: Arc<Shared<S>>, threads: usize, max_threads: usize) -> io::Result<Pool<S>> {
        let target = if threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { threads };
        let max = max_threads.max(target);
        // SAFETY: no pointers; a new descriptor or -1.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let exit_fd = unsafe { OwnedFd::from_raw_fd(cvt(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?) };
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: EXIT_TOKEN };
        // SAFETY: both descriptors are open; `ev` is a live epoll_event.
        cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, exit_fd.as_raw_fd(), &mut ev) })?;
        let workers = Workers {
            target,
            live: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            stuck: AtomicUsize::new(0),
            busy_since: (0..max).map(|_| AtomicU64::new(0)).collect(),
            free: Mutex::new((0..max).rev().collect()),
            spares: Mutex::new(Spares::default()),
            spare_cv: Condvar::new(),
        };
        let inner = Arc::new(Inner {
            shared,
            epoll,
            exit_fd,
            conns: Mutex::new(HashMap::new()),
            workers,
            start: Instant::now(),
            stop_at: AtomicU64::new(0),
            exit: AtomicBool::new(false),
            handles: Mutex::new(Vec::new()),
        });
        let monitor = inner.clone();
        let handle = std::thread::Builder::new().name("keg-monitor".into()).spawn(move || monitor.monitor())?;
        lock(&inner.handles).push(handle);
        let pool = Pool { inner };
        for _ in 0..target {
            if let Err(e) = pool.inner.spawn_worker() {
                pool.exit(Duration::from_secs(1));
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// Serves `socket` (already counted in `curr_connections`).
    pub(crate) fn add(&self, socket: Socket) {
        let inner = &self.inner;
        let shared = &inner.shared;
        if socket.set_nonblocking().is_err() {
            shared.counters.curr_connections.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let config = &shared.config;
        let slot = Arc::new(Slot {
            socket,
            state: Mutex::new(Conn::new(config.limits, config.max_output_bytes)),
            last_progress: AtomicU64::new(inner.now_ms()),
            pending: AtomicBool::new(false),
            kicked: AtomicU8::new(KICK_NONE),
            stopped: AtomicBool::new(false),
        });
        let token = Arc::as_ptr(&slot) as usize;
        let fd = slot.socket.fd();
        lock(&inner.conns).insert(token, slot.clone());
        shared.log.debug(format_args!("connection opened"));
        let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, u64: token as u64 };
        // SAFETY: `fd` is the open socket `slot` owns; `ev` is a live epoll_event.
        if unsafe { libc::epoll_ctl(inner.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            shared.log.error(format_args!("cannot watch a connection: {}", io::Error::last_os_error()));
            lock(&inner.conns).remove(&token);
            shared.counters.curr_connections.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if inner.stop_at.load(Ordering::Acquire) != 0 {
            // Accepted as the server stops: it reads nothing more.
            slot.socket.shutdown(Shutdown::Read);
        }
    }

    /// Begins a graceful stop: every connection answers what it has read
    /// and closes; after `shutdown_grace`, the monitor closes the rest.
    pub(crate) fn stop(&self) {
        let inner = &self.inner;
        inner.stop_at.store(inner.now_ms() + 1, Ordering::Release);
        for slot in inner.slots() {
            // Wakes the connection: its poller applies the stop.
            slot.socket.shutdown(Shutdown::Read);
        }
    }

    /// Ends every thread of the pool and waits up to `wait` for them to go
    /// (a thread inside a store call ends when the call returns). Returns
    /// whether they all ended.
    pub(crate) fn exit(&self, wait: Duration) -> bool {
        let inner = &self.inner;
        inner.exit.store(true, Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd the pool owns.
        unsafe { libc::write(inner.exit_fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        {
            let _spares = lock(&inner.workers.spares);
            inner.workers.spare_cv.notify_all();
        }
        let handles = std::mem::take(&mut *lock(&inner.handles));
        if let Some(monitor) = handles.first() {
            monitor.thread().unpark();
        }
        let deadline = Instant::now() + wait;
        while handles.iter().any(|h| !h.is_finished()) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for h in handles {
            // Waits for the thread's own cleanup too (its hook's hold on the pool).
            let _ = h.join();
        }
        // Connections left open (a forced stop) close with the pool.
        lock(&inner.conns).clear();
        true
    }
}

impl<S: Store> Inner<S> {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.conns).values().cloned().collect()
    }

    /// Starts one more thread, unless `max` are alive; returns whether it did.
    fn spawn_worker(self: &Arc<Self>) -> io::Result<bool> {
        let w = &self.workers;
        let Some(id) = lock(&w.free).pop() else {
            return Ok(false);
        };
        w.live.fetch_add(1, Ordering::AcqRel);
        self.shared.counters.threads.fetch_add(1, Ordering::Relaxed);
        let me = self.clone();
        let started =
            std::thread::Builder::new().name("keg-poller".into()).stack_size(THREAD_STACK).spawn(move || me.worker(id));
        match started {
            Ok(handle) => {
                let mut handles = lock(&self.handles);
                // Threads that ended (spares) need no waiting for.
                handles.retain(|h| !h.is_finished());
                handles.push(handle);
                Ok(true)
            }
            Err(e) => {
                w.live.fetch_sub(1, Ordering::AcqRel);
                self.shared.counters.threads.fetch_sub(1, Ordering::Relaxed);
                lock(&w.free).push(id);
                Err(e)
            }
        }
    }

    /// Pollers ready to take work: threads alive, less parked, waiting or stuck ones.
    fn ready_pollers(&self, parked: usize) -> isize {
        let w = &self.workers;
        w.live.load(Ordering::Acquire) as isize
            - parked as isize
            - w.blocked.load(Ordering::Acquire) as isize
            - w.stuck.load(Ordering::Acquire) as isize
    }

    /// Wakes a spare, or starts a thread, if fewer than `target` pollers are ready.
    fn top_up(self: &Arc<Self>) {
        if self.exit.load(Ordering::Acquire) {
            return;
        }
        let w = &self.workers;
        {
            let mut sp = lock(&w.spares);
            let parked = sp.parked - sp.wakeups;
            if self.ready_pollers(parked) >= w.target as isize {
                return;
            }
            if parked > 0 {
                sp.wakeups += 1;
                w.spare_cv.notify_one();
                return;
            }
        }
        if let Err(e) = self.spawn_worker() {
            self.shared.log.error(format_args!("cannot start a thread to serve connections: {e}"));
        }
    }

    /// Parks the calling thread if the pool has more ready pollers than it
    /// keeps; returns false when the thread should end.
    fn park_if_surplus(&self) -> bool {
        let w = &self.workers;
        // Without spares or waiting threads, there is no surplus: no lock taken.
        let others = w.blocked.load(Ordering::Acquire) + w.stuck.load(Ordering::Acquire);
        if w.live.load(Ordering::Acquire) <= w.target + others {
            return true;
        }
        let mut sp = lock(&w.spares);
        let parked = sp.parked - sp.wakeups;
        if self.ready_pollers(parked) <= w.target as isize {
            return true;
        }
        sp.parked += 1;
        let idle_until = Instant::now() + SPARE_IDLE;
        loop {
            if self.exit.load(Ordering::Acquire) {
                sp.parked -= 1;
                return false;
            }
            if sp.wakeups > 0 {
                sp.wakeups -= 1;
                sp.parked -= 1;
                return true;
            }
            let now = Instant::now();
            if now >= idle_until {
                sp.parked -= 1;
                return false;
            }
            sp = w.spare_cv.wait_timeout(sp, idle_until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// A pool thread: takes connections with work until the pool ends or
    /// the thread is surplus for too long.
    fn worker(self: Arc<Self>, id: usize) {
        let hook_pool = self.clone();
        blocking::install(Arc::new(move |entering| {
            let w = &hook_pool.workers;
            if entering {
                // Counted as blocked, so not as stuck.
                w.busy_since[id].store(0, Ordering::Release);
                w.blocked.fetch_add(1, Ordering::AcqRel);
                hook_pool.top_up();
            } else {
                w.blocked.fetch_sub(1, Ordering::AcqRel);
                w.busy_since[id].store(hook_pool.now_ms() + 1, Ordering::Release);
            }
        }));
        let w = &self.workers;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 1];
        loop {
            // SAFETY: `events` is a live array of one epoll_event.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 1, -1) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.shared.log.error(format_args!("epoll_wait failed: {}", io::Error::last_os_error()));
                break;
            }
            if n == 0 {
                continue;
            }
            let (token, revents) = (events[0].u64, events[0].events);
            if token == EXIT_TOKEN {
                if self.exit.load(Ordering::Acquire) {
                    break;
                }
                continue;
            }
            w.busy_since[id].store(self.now_ms() + 1, Ordering::Release);
            // SAFETY: the token is the address of a slot in `conns`, which
            // keeps it alive until the thread holding its one-shot event (this
            // one) removes it in `close`.
            let slot = unsafe { &*(token as usize as *const Slot) };
            self.serve(slot, token as usize, revents);
            w.busy_since[id].store(0, Ordering::Release);
            if !self.park_if_surplus() {
                break;
            }
        }
        blocking::uninstall();
        lock(&w.free).push(id);
        self.shared.counters.threads.fetch_sub(1, Ordering::Relaxed);
        w.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Serves `slot` until it has nothing more to do now, then arms it again
    /// (or closes it).
    fn serve(&self, slot: &Slot, token: usize, revents: u32) {
        let shared = &*self.shared;
        let mut conn = lock(&slot.state);
        match slot.kicked.load(Ordering::Acquire) {
            KICK_NONE => {}
            why => {
                if why == KICK_TIMEOUT {
                    bump(&shared.counters.idle_kicks);
                    let what = if conn.pending() { "stalled" } else { "idle" };
                    shared.log.debug(format_args!("closing a connection {what} past its timeout"));
                }
                drop(conn);
                return self.close(slot, token);
            }
        }
        if self.stop_at.load(Ordering::Acquire) != 0 && !slot.stopped.swap(true, Ordering::AcqRel) {
            // Answer what was read, then close.
            conn.close_read();
        }
        if revents & libc::EPOLLERR as u32 != 0 {
            drop(conn);
            return self.close(slot, token);
        }
        let mut readable = revents & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32 != 0;
        let mut moved = false;
        let open = loop {
            if readable && conn.wants_read() {
                let space = conn.read_space();
                let asked = space.len();
                match slot.socket.read(space) {
                    Ok(0) => conn.close_read(),
                    Ok(n) => {
                        shared.traffic(n, 0);
                        conn.filled(n);
                        moved = true;
                        // A short read drained the socket; a full one may not have.
                        readable = n == asked;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break false,
                }
            }
            conn.process(shared);
            if conn.finished() {
                break false;
            }
            if !conn.output().is_empty() {
                match slot.socket.write(conn.output()) {
                    Ok(n) => {
                        shared.traffic(0, n);
                        conn.wrote(n);
                        moved = true;
                        if conn.output().is_empty() {
                            // Room in the output: requests already read may go on.
                            continue;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break false,
                }
                // The socket takes no more now: wait until it does.
                break true;
            }
            if !(readable && conn.wants_read()) {
                break true;
            }
        };
        if moved {
            slot.last_progress.store(self.now_ms(), Ordering::Release);
        }
        let mut events = libc::EPOLLONESHOT as u32;
        if !conn.output().is_empty() {
            events |= libc::EPOLLOUT as u32;
        }
        if conn.wants_read() {
            events |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        }
        slot.pending.store(conn.pending(), Ordering::Release);
        drop(conn);
        if !open || events == libc::EPOLLONESHOT as u32 {
            return self.close(slot, token);
        }
        let mut ev = libc::epoll_event { events, u64: token as u64 };
        // SAFETY: the socket is open (its slot is alive); `ev` is a live epoll_event.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_MOD, slot.socket.fd(), &mut ev) } < 0 {
            self.close(slot, token);
        }
    }

    /// Closes the connection this thread holds the one-shot event of.
    fn close(&self, slot: &Slot, token: usize) {
        // SAFETY: the socket is open; a null event is allowed for DEL.
        unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, slot.socket.fd(), std::ptr::null_mut()) };
        let shared = &self.shared;
        shared.log.debug(format_args!("connection closed"));
        shared.counters.curr_connections.fetch_sub(1, Ordering::Relaxed);
        // Last: this may free `slot`.
        lock(&self.conns).remove(&token);
    }

    /// Counts stuck threads (and tops the pollers up), and enforces timeouts
    /// and the stop's grace period, until the pool ends.
    fn monitor(self: Arc<Self>) {
        let w = &self.workers;
        let config = &self.shared.config;
        let mut last_sweep = Instant::now();
        while !self.exit.load(Ordering::Acquire) {
            let now_ms = self.now_ms();
            let stuck_before = now_ms.saturating_sub(STUCK_AFTER.as_millis() as u64) + 1;
            let stuck = w
                .busy_since
                .iter()
                .filter(|b| {
                    let since = b.load(Ordering::Acquire);
                    since != 0 && since <= stuck_before
                })
                .count();
            w.stuck.store(stuck, Ordering::Release);
            let busy = w.busy_since.iter().any(|b| b.load(Ordering::Acquire) != 0);
            if stuck > 0 {
                self.top_up();
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                self.sweep(now_ms, config.idle_timeout, config.stall_timeout, config.shutdown_grace);
            }
            // Look often while connections are being served, seldom when idle.
            std::thread::park_timeout(if busy { STUCK_AFTER } else { SWEEP_EVERY });
        }
    }

    /// Shuts down connections past their timeout, or past the stop's grace.
    fn sweep(&self, now_ms: u64, idle: Option<Duration>, stall: Duration, grace: Duration) {
        let stop_at = self.stop_at.load(Ordering::Acquire);
        let grace_over = stop_at != 0 && now_ms + 1 >= stop_at + grace.as_millis() as u64;
        for slot in self.slots() {
            if slot.kicked.load(Ordering::Acquire) != KICK_NONE {
                continue;
            }
            let why = if grace_over {
                KICK_GRACE
            } else {
                let timeout = if slot.pending.load(Ordering::Acquire) { Some(stall) } else { idle };
                let last = slot.last_progress.load(Ordering::Acquire);
                match timeout {
                    Some(t) if stop_at == 0 && now_ms.saturating_sub(last) >= t.as_millis() as u64 => KICK_TIMEOUT,
                    _ => continue,
                }
            };
            slot.kicked.store(why, Ordering::Release);
            slot.socket.shutdown(Shutdown::Both);
        }
    }
}
