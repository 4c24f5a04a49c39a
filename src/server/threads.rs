//! Connections served by threads: each open connection has a thread of its
//! own, which waits for its socket with poll(2) and carries out its requests.
//!
//! A request is read, carried out and answered by the thread that the
//! kernel woke for that socket: no hand-off between threads, and a store
//! call that waits (an fsync in synced durability, a lock held by
//! maintenance) holds up only its own connection. BENCHMARKS.md §8 has the
//! measurements that chose this over an async runtime.
//!
//! Every connection thread also watches one shared stop signal (an
//! eventfd): a graceful stop wakes all of them at once, each carries out
//! the requests it already read, sends the replies, and closes.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::exec::Shared;
use super::reply::OUT_OF_THREADS;
use super::stats::bump;
use super::store::Store;

/// Stack of a connection thread: a request's deepest path (a set that
/// evicts to make room) needs far less; only the pages touched count
/// towards memory.
const CONN_STACK: usize = 512 << 10;

/// A connected socket, TCP or unix, in nonblocking mode.
pub(crate) enum Socket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Socket {
    fn fd(&self) -> RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_nonblocking(true),
            Socket::Unix(s) => s.set_nonblocking(true),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }

    /// Writes what the socket takes now (a refused connection's one line).
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }
}

/// The signal that tells every connection thread the server is stopping.
pub(crate) struct StopSignal {
    fd: OwnedFd,
}

impl StopSignal {
    pub(crate) fn new() -> io::Result<StopSignal> {
        // SAFETY: eventfd takes no pointers; a valid descriptor or -1 comes back.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        Ok(StopSignal { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Wakes every connection thread; the signal stays raised.
    pub(crate) fn raise(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// Starts a thread that serves `socket` (already counted in
/// `curr_connections`) to its end. If no thread can be started, the client
/// is told so and the connection closed.
pub(crate) fn spawn<S: Store>(mut socket: Socket, shared: Arc<Shared<S>>, stop: Arc<StopSignal>) {
    // The socket moves to the thread once the thread exists, so that a
    // failure to start one leaves it here to answer on.
    let (hand, take) = std::sync::mpsc::sync_channel::<Socket>(1);
    let owner = shared.clone();
    let started = std::thread::Builder::new().name("keg-conn".into()).stack_size(CONN_STACK).spawn(move || {
        if let Ok(socket) = take.recv() {
            serve(socket, &owner, &stop);
        }
        owner.counters.curr_connections.fetch_sub(1, Ordering::Relaxed);
    });
    match started {
        Ok(_) => {
            let _ = hand.send(socket);
        }
        Err(e) => {
            shared.log.error(format_args!("cannot start a thread for a connection: {e}"));
            let _ = socket.write(format!("{OUT_OF_THREADS}\r\n").as_bytes());
            shared.counters.curr_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Serves one connection until it is done, fails, idles out, or the server stops.
fn serve<S: Store>(mut socket: Socket, shared: &Shared<S>, stop: &StopSignal) {
    let config = &shared.config;
    if socket.set_nonblocking().is_err() {
        return;
    }
    shared.log.debug(format_args!("connection opened"));
    let mut conn = Conn::new(config.limits, config.max_output_bytes);
    let mut last_progress = Instant::now();
    let mut stop_by: Option<Instant> = None;
    let mut readable = false;
    loop {
        if readable && conn.wants_read() {
            match socket.read(conn.read_space()) {
                Ok(0) => conn.close_read(),
                Ok(n) => {
                    shared.traffic(n, 0);
                    conn.filled(n);
                    last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        conn.process(shared);
        if conn.finished() {
            break;
        }
        if !conn.output().is_empty() {
            match socket.write(conn.output()) {
                Ok(n) => {
                    shared.traffic(0, n);
                    conn.wrote(n);
                    last_progress = Instant::now();
                    // Room in the output: requests already read may go on.
                    readable = false;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // A half-received request or unsent replies may wait `stall_timeout`
        // for a byte to move; a connection with nothing pending, `idle_timeout`.
        let timeout = if conn.pending() { Some(config.stall_timeout) } else { config.idle_timeout };
        let deadline = match (timeout.map(|t| last_progress + t), stop_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut events: libc::c_short = 0;
        if !conn.output().is_empty() {
            events |= libc::POLLOUT;
        }
        if conn.wants_read() {
            events |= libc::POLLIN;
        }
        if events == 0 {
            break;
        }
        let mut fds = [
            libc::pollfd { fd: socket.fd(), events, revents: 0 },
            libc::pollfd { fd: stop.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        let watched = if stop_by.is_none() { 2 } else { 1 };
        let wait_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Rounded up, so that the deadline has passed when poll returns.
                left.as_millis().min(i32::MAX as u128) as i32 + i32::from(left > Duration::ZERO)
            }
        };
        // SAFETY: `fds` is a live array of `watched` (<= 2) pollfd structs.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), watched, wait_ms) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if watched == 2 && fds[1].revents != 0 {
            // Answer what was read, then close; give up after the grace period.
            conn.close_read();
            stop_by = Some(Instant::now() + config.shutdown_grace);
        }
        let socket_events = fds[0].revents;
        if socket_events & (libc::POLLERR | libc::POLLNVAL) != 0 {
            break;
        }
        // POLLHUP: the peer is gone; a read tells (0 or an error).
        readable = socket_events & (libc::POLLIN | libc::POLLHUP) != 0;
        if ready == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            if stop_by.is_none() {
                bump(&shared.counters.idle_kicks);
                let what = if conn.pending() { "stalled" } else { "idle" };
                shared.log.debug(format_args!("closing a connection {what} for {:?}", timeout.unwrap_or_default()));
            }
            break;
        }
    }
    shared.log.debug(format_args!("connection closed"));
}
