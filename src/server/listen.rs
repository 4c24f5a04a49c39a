//! Listening sockets (TCP and unix) and the accept loops.
//!
//! A unix socket path that already exists is taken over only if it is a
//! socket nobody listens on (a stale one from a crashed run): a live socket,
//! or any other kind of file, is refused. The socket file gets the
//! permission mode of [`super::Config::unix_mode`] from the moment it exists
//! (it is created under a matching umask), and is removed on shutdown if it
//! is still the one this server made.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::exec::Shared;
use super::reply::TOO_MANY_CONNECTIONS;
use super::stats::bump;
use super::store::Store;
use super::threads::{self, Socket, StopSignal};

/// Where the server listens: `HOST:PORT` (TCP) or `unix:PATH`.
///
/// ```
/// use keg::server::ListenAddr;
/// let tcp: ListenAddr = "127.0.0.1:11211".parse().unwrap();
/// assert_eq!(tcp.to_string(), "127.0.0.1:11211");
/// let unix: ListenAddr = "unix:/run/keg.sock".parse().unwrap();
/// assert_eq!(unix, ListenAddr::Unix("/run/keg.sock".into()));
/// assert!("no port".parse::<ListenAddr>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address (port 0: any free port).
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/keg.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let mut addrs =
            s.to_socket_addrs().map_err(|e| format!("{s:?} is not a listen address (HOST:PORT or unix:PATH): {e}"))?;
        addrs.next().map(ListenAddr::Tcp).ok_or_else(|| format!("{s:?} resolves to no address"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound listening socket (std's, until the runtime takes it).
pub(crate) enum Bound {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener, SocketFile),
}

/// A unix socket file this server created; removed on drop if it is still that file.
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.dev() == self.dev && m.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl Bound {
    /// Binds `addr`; a unix socket gets permission mode `unix_mode`.
    pub(crate) fn bind(addr: &ListenAddr, unix_mode: u32) -> io::Result<Bound> {
        match addr {
            ListenAddr::Tcp(a) => {
                let l = std::net::TcpListener::bind(a)?;
                l.set_nonblocking(true)?;
                Ok(Bound::Tcp(l))
            }
            ListenAddr::Unix(path) => bind_unix(path, unix_mode),
        }
    }

    /// The address actually bound (a TCP port 0 becomes the port chosen).
    pub(crate) fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Bound::Unix(_, f) => Ok(ListenAddr::Unix(f.path.clone())),
        }
    }
}

fn bind_unix(path: &Path, mode: u32) -> io::Result<Bound> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another server is listening on this socket", path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                // Stale: left by a server that did not shut down cleanly.
                std::fs::remove_file(path)?;
            }
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("{}: cannot check the socket: {e}", path.display())))
            }
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket; refusing to replace it", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The socket file is created with the mode the umask leaves: set the umask
    // so that it never has more permissions than asked for, then chmod to
    // exactly the mode. (The umask is process-wide; the server binds before
    // it opens the cache or starts serving, so no other file is being made.)
    // SAFETY: umask only swaps the process's file creation mask.
    let old = unsafe { libc::umask((!mode & 0o777) as libc::mode_t) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    listener.set_nonblocking(true)?;
    let m = std::fs::symlink_metadata(path)?;
    Ok(Bound::Unix(listener, SocketFile { path: path.to_owned(), dev: m.dev(), ino: m.ino() }))
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// The next connection, detached from the runtime (its own thread serves it).
    async fn accept(&self) -> io::Result<Socket> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                // Replies are written whole; waiting for more to coalesce only adds latency.
                let _ = s.set_nodelay(true);
                Ok(Socket::Tcp(s.into_std()?))
            }
            Listener::Unix(l) => Ok(Socket::Unix(l.accept().await?.0.into_std()?)),
        }
    }
}

/// Accepts connections on `bound` until `stop` says stop; each is served by
/// its own thread (counted in `curr_connections` while it runs).
pub(crate) async fn accept_loop<S: Store>(
    bound: Bound,
    shared: Arc<Shared<S>>,
    stop_signal: Arc<StopSignal>,
    mut stop: watch::Receiver<bool>,
) {
    let (listener, _socket_file) = match bound {
        Bound::Tcp(l) => (tokio::net::TcpListener::from_std(l).map(Listener::Tcp), None),
        Bound::Unix(l, f) => (tokio::net::UnixListener::from_std(l).map(Listener::Unix), Some(f)),
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            shared.log.error(format_args!("cannot listen: {e}"));
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                shared.log.error(format_args!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let c = &shared.counters;
        if c.curr_connections.load(Ordering::Relaxed) >= shared.config.max_connections as u64 {
            bump(&c.rejected_connections);
            shared.log.debug(format_args!(
                "refused a connection: {} open, the limit (--max-connections)",
                shared.config.max_connections
            ));
            refuse(stream);
            continue;
        }
        bump(&c.total_connections);
        c.curr_connections.fetch_add(1, Ordering::Relaxed);
        threads::spawn(stream, shared.clone(), stop_signal.clone());
    }
}

/// Tells a connection over the limit why it is closed, then closes it. A
/// new socket's send buffer is empty, so the line goes out without waiting.
fn refuse(mut stream: Socket) {
    let _ = stream.write(format!("{TOO_MANY_CONNECTIONS}\r\n").as_bytes());
}
