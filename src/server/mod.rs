//! `keg::server`: memcached's text protocol in front of a keg cache (feature
//! `server`; the `keg serve` command runs it).
//!
//! Any memcached client (Django's `PyMemcacheCache`, pymemcache, libmemcached,
//! ...) talks to it unchanged over TCP or a unix socket. The protocol is the
//! one memcached's `doc/protocol.txt` describes: `set`, `add`, `replace`,
//! `append`, `prepend`, `cas`, `get`, `gets`, `gat`, `gats`, `delete`,
//! `incr`, `decr`, `touch`, `flush_all [delay] [noreply]`, `version`,
//! `verbosity`, `stats` (`settings`, `reset`, and the empty `items`, `slabs`,
//! `sizes`, `conns`), `quit`, and the meta commands `mg`, `ms`, `md`, `ma`,
//! `me` and `mn` (docs/serve.md lists the meta flags served, with the recache
//! flows: win tokens, stubs and stale copies, held in the server's memory). `noreply` suppresses every reply of a well-formed
//! command, errors included; a malformed line is always answered (memcached
//! cannot parse `noreply` reliably from it either); a meta command's `q`
//! drops only its common outcome's reply.
//!
//! # Limits
//!
//! Every resource a client can make the server spend is bounded:
//!
//! | what | default | a client over it gets |
//! |---|---|---|
//! | open connections ([`Config::max_connections`]) | 1024 | `SERVER_ERROR too many open connections`, then the connection is closed |
//! | key length | 250 bytes, no spaces or control characters | `CLIENT_ERROR bad command line format` |
//! | request line ([`Limits::max_line`]) | 2048 bytes | `CLIENT_ERROR line too long`; the rest of the line is read and dropped up to its end, and the connection goes on |
//! | `get`/`gets`/`gat`/`gats` line ([`Limits::max_retrieval_line`]) | 256 KiB | as for other lines |
//! | item size ([`Limits::max_item_size`]) | 1 MiB | `SERVER_ERROR object too large for cache`; the data block is read and dropped (never buffered), the connection stays usable, and for `set`, `replace` and `cas` the key's old value is deleted so nobody reads a stale one |
//! | declared data length | 2^31 - 3 bytes | `CLIENT_ERROR bad command line format` |
//! | meta flags on one line | 24 | `CLIENT_ERROR bad command line format` |
//! | meta opaque token (`O`) | 32 bytes | `CLIENT_ERROR opaque token too long` |
//! | keys with a win token, stub or stale copy held (`mg N`/`R`, `md I`) | 65,536 | some are dropped: another client may win again, a dropped stale copy reads as a miss |
//! | bytes of stale copies held (`md I`) | 64 MiB | as above |
//! | `mg`'s `h`/`l` hints | a fixed table of 65,536 slots (512 KiB) | a key whose slot another key took reads as not hit before |
//! | data block not ending in `\r\n` | | `CLIENT_ERROR bad data chunk` |
//! | input buffered per connection | one request: max(retrieval line, line + item + 2) | (a request never needs more) |
//! | unsent replies per connection ([`Config::max_output_bytes`]) | 1 MiB | the connection stops reading and carrying out requests until its client reads (one reply may pass the mark by one item; a multi-key get pauses between keys) |
//! | a stalled request ([`Config::stall_timeout`]): part of a request received, or replies unsent, and no byte moving | 60 s | the connection is closed |
//! | an idle connection ([`Config::idle_timeout`]) | none (as memcached: clients such as pymemcache keep connections open between requests and take a closed one as an error) | the connection is closed |
//! | shutdown ([`Config::shutdown_grace`]) | 5 s to answer the requests already read | then connections are closed |
//! | threads | one per open connection (so at most `max_connections`), plus one that accepts connections and handles signals; each has a 512 KiB stack reservation, of which an idle connection touches a few KiB | a connection the system cannot start a thread for gets `SERVER_ERROR out of resources: ...` and is closed |
//!
//! So the memory a server's connections can hold is at most
//! `max_connections × (input bound + max_output_bytes + one item + one
//! thread's stack)`.
//!
//! # Threads
//!
//! Each connection is served by a thread of its own that sleeps in poll(2)
//! until its client sends: a store call that waits (an fsync in synced
//! durability) holds up only its own connection, and the kernel shares the
//! CPUs between connections. BENCHMARKS.md §8 has the measurements that
//! chose this over an async runtime with a worker per CPU.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//! use keg::server::{Config, ListenAddr, MemoryStore, Server};
//!
//! let config = Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() };
//! let server = Server::bind(config).unwrap();
//! let ListenAddr::Tcp(addr) = server.local_addrs()[0].clone() else { unreachable!() };
//! let shutdown = server.shutdown_handle();
//! let running = std::thread::spawn(move || server.run(Arc::new(MemoryStore::new(1 << 20))));
//!
//! let mut client = std::net::TcpStream::connect(addr).unwrap();
//! client.write_all(b"set greeting 0 0 5\r\nhello\r\nget greeting\r\nquit\r\n").unwrap();
//! let mut replies = String::new();
//! client.read_to_string(&mut replies).unwrap();
//! assert_eq!(replies, "STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n");
//!
//! // The meta commands, on the same items.
//! let mut client = std::net::TcpStream::connect(addr).unwrap();
//! client.write_all(b"mg greeting v f k\r\nma hits N0 J41 v\r\nma hits v\r\nquit\r\n").unwrap();
//! let mut replies = String::new();
//! client.read_to_string(&mut replies).unwrap();
//! assert_eq!(replies, "VA 5 f0 kgreeting\r\nhello\r\nVA 2\r\n41\r\nVA 2\r\n42\r\n");
//!
//! shutdown.graceful();
//! assert!(matches!(running.join().unwrap(), keg::server::Stopped::Graceful { .. }));
//! ```

mod access;
mod cache_store;
mod conn;
mod exec;
mod listen;
mod memory;
pub mod protocol;
mod recache;
pub mod reply;
mod session;
mod stats;
mod store;
mod threads;

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use exec::RELATIVE_EXPTIME_MAX;
pub use listen::ListenAddr;
pub use memory::MemoryStore;
pub use protocol::Limits;
pub use session::Session;
pub use store::{Applied, CasResult, Change, Item, Store, StoreError, StoreResult, Ttl};

/// The memcached version the server reports first in `version` and `stats`
/// (tools pick their checks from it); keg's own version follows it.
pub const MEMCACHED_VERSION: &str = "1.6.0";
/// Default [`Config::max_connections`], memcached's.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default [`Config::max_output_bytes`].
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Default [`Config::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Config::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default [`Config::unix_mode`]: owner only, as memcached's.
pub const DEFAULT_UNIX_MODE: u32 = 0o700;
/// The default listen address, memcached's port on the loopback interface.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:11211";

/// How much the server writes to stderr, one line per event.
///
/// ```
/// use keg::server::{Config, LogLevel};
/// assert!(LogLevel::Errors < LogLevel::Info); // each level logs what the ones before it do, and more
/// let quiet = Config { log: LogLevel::Errors, ..Config::default() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Errors,
    /// Start, stop and errors.
    #[default]
    Info,
    /// Also every connection opened, closed, refused or timed out.
    Debug,
}

/// The server's log: lines on stderr, `keg serve: <event>`.
///
/// ```
/// use keg::server::{Log, LogLevel};
/// let log = Log::new(LogLevel::Errors);
/// log.error(format_args!("disk full")); // printed: keg serve: disk full
/// log.info(format_args!("listening")); // not printed at this level
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    level: LogLevel,
}

impl Log {
    /// A log at `level`.
    ///
    /// ```
    /// let log = keg::server::Log::new(keg::server::LogLevel::Debug);
    /// log.debug(format_args!("connection from 127.0.0.1:50000"));
    /// ```
    pub fn new(level: LogLevel) -> Log {
        Log { level }
    }

    /// A log that writes nothing.
    ///
    /// ```
    /// keg::server::Log::off().error(format_args!("never printed"));
    /// ```
    pub fn off() -> Log {
        Log { level: LogLevel::Off }
    }

    fn at(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        if level <= self.level {
            eprintln!("keg serve: {args}");
        }
    }

    /// Logs an error.
    ///
    /// ```
    /// keg::server::Log::default().error(format_args!("cannot accept: {}", "EMFILE"));
    /// ```
    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.at(LogLevel::Errors, args);
    }

    /// Logs a start or stop event.
    ///
    /// ```
    /// keg::server::Log::default().info(format_args!("stopped"));
    /// ```
    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.at(LogLevel::Info, args);
    }

    /// Logs a connection event (printed only at [`LogLevel::Debug`]).
    ///
    /// ```
    /// keg::server::Log::default().debug(format_args!("not printed at the default level"));
    /// ```
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        self.at(LogLevel::Debug, args);
    }
}

/// The server's settings; see the module documentation for what each limit
/// protects and the answer a client over it gets.
///
/// ```
/// use std::time::Duration;
/// use keg::server::{Config, Server};
/// let config = Config {
///     listen: vec!["127.0.0.1:0".parse().unwrap(), "unix:/tmp/keg-config-example.sock".parse().unwrap()],
///     max_connections: 64,
///     idle_timeout: Some(Duration::from_secs(300)),
///     ..Config::default()
/// };
/// # let _ = std::fs::remove_file("/tmp/keg-config-example.sock");
/// let server = Server::bind(config).unwrap();
/// assert_eq!(server.local_addrs().len(), 2);
/// # drop(server);
/// # let _ = std::fs::remove_file("/tmp/keg-config-example.sock");
/// // A setting out of its bounds is refused, with the reason:
/// let bad = Config { max_connections: 0, ..Config::default() };
/// assert!(Server::bind(bad).unwrap_err().to_string().contains("max_connections"));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (at least one). Default: `127.0.0.1:11211`.
    pub listen: Vec<ListenAddr>,
    /// Line and item limits of the protocol.
    pub limits: Limits,
    /// Most connections open at once; more are refused.
    pub max_connections: usize,
    /// Unsent reply bytes past which a connection stops reading.
    pub max_output_bytes: usize,
    /// Closes a connection with nothing pending after this long without a
    /// byte moving (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Closes a connection with a request half received, or replies unsent,
    /// after this long without a byte moving.
    pub stall_timeout: Duration,
    /// How long a graceful shutdown lets connections answer what they read.
    pub shutdown_grace: Duration,
    /// Permission mode of unix sockets (e.g. `0o770` for a group).
    pub unix_mode: u32,
    /// Whether SIGINT and SIGTERM stop the server (the first gracefully, a
    /// second at once). Off by default, for embedding; `keg serve` turns it on.
    pub handle_signals: bool,
    /// What to log.
    pub log: LogLevel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![ListenAddr::Tcp(DEFAULT_LISTEN.parse().expect("a valid socket address"))],
            limits: Limits::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            idle_timeout: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            unix_mode: DEFAULT_UNIX_MODE,
            handle_signals: false,
            log: LogLevel::Off,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), String> {
        let l = &self.limits;
        if self.listen.is_empty() {
            return Err("no listen address".into());
        }
        if l.max_line < 64 || l.max_retrieval_line < l.max_line {
            return Err("max_line must be at least 64 and max_retrieval_line at least max_line".into());
        }
        if self.max_connections == 0 || self.max_output_bytes == 0 {
            return Err("max_connections and max_output_bytes must be at least 1".into());
        }
        if self.unix_mode > 0o777 {
            return Err(format!("unix_mode {:o} is not a permission mode (at most 777)", self.unix_mode));
        }
        Ok(())
    }
}

/// How [`Server::run`] ended.
///
/// ```
/// use std::sync::Arc;
/// use keg::server::{Config, MemoryStore, Server, Stopped};
/// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
/// server.shutdown_handle().now(); // stopped before it starts: `run` returns at once
/// assert_eq!(server.run(Arc::new(MemoryStore::new(1 << 20))), Stopped::Forced);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A graceful stop: listeners closed, connections answered what they had
    /// read; `unfinished` connections were still open when the grace period
    /// ran out. The store is no longer used.
    Graceful {
        /// Connections cut off by the grace period.
        unfinished: u64,
    },
    /// A stop at once (a second signal, or [`Shutdown::now`]): connections
    /// were dropped where they were, and a store call may still be running
    /// on a connection's thread; exit the process rather than close the store.
    Forced,
}

/// Stops a running server from another thread (or a signal).
///
/// ```
/// use std::sync::Arc;
/// use keg::server::{Config, MemoryStore, Server, Stopped};
/// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
/// let shutdown = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run(Arc::new(MemoryStore::new(1 << 20))));
/// shutdown.graceful();
/// assert_eq!(running.join().unwrap(), Stopped::Graceful { unfinished: 0 });
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    state: Arc<watch::Sender<u8>>,
}

const RUNNING: u8 = 0;
const GRACEFUL: u8 = 1;
const NOW: u8 = 2;

impl Shutdown {
    fn new() -> Shutdown {
        Shutdown { state: Arc::new(watch::channel(RUNNING).0) }
    }

    /// Stops accepting, answers what was read, then returns from [`Server::run`].
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use keg::server::{Config, ListenAddr, MemoryStore, Server};
    /// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
    /// let ListenAddr::Tcp(addr) = server.local_addrs()[0].clone() else { unreachable!() };
    /// let shutdown = server.shutdown_handle();
    /// let running = std::thread::spawn(move || server.run(Arc::new(MemoryStore::new(1 << 20))));
    /// let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// client.write_all(b"version\r\n").unwrap();
    /// let mut reply = [0u8; 8];
    /// client.read_exact(&mut reply).unwrap(); // "VERSION "
    /// shutdown.graceful(); // the open connection is closed once it has nothing left to answer
    /// running.join().unwrap();
    /// ```
    pub fn graceful(&self) {
        self.state.send_if_modified(|s| {
            let was = *s;
            *s = (*s).max(GRACEFUL);
            was != *s
        });
    }

    /// Returns from [`Server::run`] at once.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keg::server::{Config, MemoryStore, Server, Stopped};
    /// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
    /// let shutdown = server.shutdown_handle();
    /// let running = std::thread::spawn(move || server.run(Arc::new(MemoryStore::new(1 << 20))));
    /// shutdown.graceful();
    /// shutdown.now(); // a second request, as a second signal: no grace period
    /// running.join().unwrap();
    /// ```
    pub fn now(&self) {
        self.state.send_replace(NOW);
    }
}

/// A server with its listening sockets bound, ready to [`run`](Server::run).
///
/// ```no_run
/// use std::sync::Arc;
/// use keg::server::{Config, Server};
/// // What `keg serve --dir /var/cache/keg` does, less its flags:
/// let cache = keg::Cache::open("/var/cache/keg").unwrap();
/// let config = Config { handle_signals: true, ..Config::default() }; // 127.0.0.1:11211
/// let stopped = Server::bind(config).unwrap().run(Arc::new(cache)); // until SIGINT or SIGTERM
/// ```
pub struct Server {
    config: Config,
    bound: Vec<listen::Bound>,
    addrs: Vec<ListenAddr>,
    runtime: tokio::runtime::Runtime,
    shutdown: Shutdown,
    /// SIGINT and SIGTERM, caught from `bind` on (with `handle_signals`).
    signals: Option<Signals>,
}

/// The signals a server stops on, caught from the moment it binds, so that
/// a signal sent once the server listens is never the default (fatal) one.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl Server {
    /// Checks `config` and binds every listen address (a TCP port 0 gets a
    /// free port: see [`Server::local_addrs`]). Fails if any address is taken,
    /// or a unix socket path is another server's live socket or not a socket.
    ///
    /// ```
    /// use keg::server::{Config, Server};
    /// let first = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
    /// let taken = first.local_addrs()[0].clone();
    /// let err = Server::bind(Config { listen: vec![taken], ..Config::default() }).unwrap_err();
    /// assert!(err.to_string().starts_with("cannot listen on 127.0.0.1:"));
    /// ```
    pub fn bind(config: Config) -> io::Result<Server> {
        config.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut bound = Vec::new();
        let mut addrs = Vec::new();
        for addr in &config.listen {
            let b = listen::Bound::bind(addr, config.unix_mode)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            addrs.push(b.local_addr()?);
            bound.push(b);
        }
        // The accept loops, signals and the shutdown sequence run on this
        // runtime, in the thread that calls `run`; each connection runs on a
        // thread of its own (see `threads`).
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let signals = if config.handle_signals {
            use tokio::signal::unix::{signal, SignalKind};
            let _in_runtime = runtime.enter();
            Some(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
        } else {
            None
        };
        Ok(Server { config, bound, addrs, runtime, shutdown: Shutdown::new(), signals })
    }

    /// The addresses bound, in the order of [`Config::listen`].
    ///
    /// ```
    /// use keg::server::{Config, ListenAddr, Server};
    /// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
    /// let ListenAddr::Tcp(addr) = &server.local_addrs()[0] else { unreachable!() };
    /// assert_ne!(addr.port(), 0); // the port the system chose
    /// ```
    pub fn local_addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// A handle that stops [`Server::run`] (see [`Shutdown`]).
    ///
    /// ```
    /// use keg::server::{Config, Server};
    /// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
    /// let for_another_thread = server.shutdown_handle();
    /// ```
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves `store` until stopped (by the [`Shutdown`] handle, or a signal
    /// with [`Config::handle_signals`]).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use keg::server::{Config, ListenAddr, Server};
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = Arc::new(keg::Cache::open(dir.path()).unwrap());
    /// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
    /// let ListenAddr::Tcp(addr) = server.local_addrs()[0].clone() else { unreachable!() };
    /// let shutdown = server.shutdown_handle();
    /// let served = Arc::clone(&cache);
    /// let running = std::thread::spawn(move || server.run(served));
    /// let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// client.write_all(b"set k 0 0 2\r\nhi\r\nquit\r\n").unwrap();
    /// client.read_to_end(&mut Vec::new()).unwrap();
    /// shutdown.graceful();
    /// running.join().unwrap();
    /// assert_eq!(&cache.get(b"k").unwrap().unwrap()[..], b"hi"); // what the client stored, in the cache's files
    /// ```
    pub fn run<S: Store>(self, store: Arc<S>) -> Stopped {
        let Server { config, bound, runtime, shutdown, signals, .. } = self;
        let log = Log::new(config.log);
        let grace = config.shutdown_grace;
        let shared = Arc::new(exec::Shared::new(store, config, log));
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_signal = match threads::StopSignal::new() {
            Ok(s) => Arc::new(s),
            Err(e) => {
                log.error(format_args!("cannot make the stop signal: {e}"));
                return Stopped::Graceful { unfinished: 0 };
            }
        };
        let stopped = runtime.block_on(async {
            let mut state = shutdown.state.subscribe();
            if let Some(signals) = signals {
                watch_signals(signals, shutdown.clone(), log);
            }
            for b in bound {
                tokio::spawn(listen::accept_loop(b, shared.clone(), stop_signal.clone(), stop_rx.clone()));
            }
            let _ = state.wait_for(|&s| s != RUNNING).await;
            let _ = stop_tx.send(true);
            stop_signal.raise();
            if *state.borrow() == NOW {
                return Stopped::Forced;
            }
            let open = || shared.counters.curr_connections.load(Ordering::Relaxed);
            if open() > 0 {
                log.info(format_args!("stopping: answering what {} open connections sent", open()));
            }
            // Connections give up by themselves after the grace period; a
            // little more covers one that is inside a store call then.
            let deadline = tokio::time::Instant::now() + grace + Duration::from_millis(500);
            while open() > 0 && tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    _ = state.wait_for(|&s| s == NOW) => return Stopped::Forced,
                }
            }
            Stopped::Graceful { unfinished: open() }
        });
        match stopped {
            Stopped::Forced => runtime.shutdown_background(),
            Stopped::Graceful { .. } => runtime.shutdown_timeout(Duration::from_millis(500)),
        }
        stopped
    }
}

/// The first SIGINT or SIGTERM stops gracefully; a second, at once.
fn watch_signals(signals: Signals, shutdown: Shutdown, log: Log) {
    let Signals { mut int, mut term } = signals;
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if first {
                log.info(format_args!("{name}: stopping gracefully (send it again to exit at once)"));
                shutdown.graceful();
                first = false;
            } else {
                log.info(format_args!("{name} again: exiting at once"));
                shutdown.now();
            }
        }
    });
}
