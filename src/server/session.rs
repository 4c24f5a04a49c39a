//! [`Session`]: one client connection without a socket. Bytes go in, the
//! replies the server would send come out, through the same connection
//! state ([`Conn`]) and request execution as a served connection, so that a
//! store can be driven by the protocol in tests and fuzzing, or over a
//! transport of the embedder's own.

use std::io;
use std::sync::Arc;

use super::conn::Conn;
use super::exec::Shared;
use super::store::Store;
use super::{Config, Log};

/// One client connection without a socket: feed it what a client sends, and
/// it appends what the server would answer.
///
/// Its limits are those of the [`Config`] it is made with (line, item and
/// output limits; the listen addresses and connection limits play no part).
/// Replies are taken as soon as they are written, so a session is never
/// throttled, but a long multi-key get is still answered in pieces of
/// [`Config::max_output_bytes`], as on a socket.
///
/// ```
/// use std::sync::Arc;
/// use keg::server::{Config, MemoryStore, Session};
/// let mut session = Session::new(Arc::new(MemoryStore::new(1 << 20)), Config::default()).unwrap();
/// let mut replies = Vec::new();
/// session.send(b"set k 0 0 2\r\nhi\r\nget ", &mut replies);
/// assert_eq!(replies, b"STORED\r\n"); // the get is not whole yet
/// session.send(b"k\r\n", &mut replies);
/// assert_eq!(replies, b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
/// ```
pub struct Session<S: Store> {
    shared: Shared<S>,
    conn: Conn,
}

impl<S: Store> Session<S> {
    /// A session on `store` with `config`'s limits; fails, as
    /// [`Server::bind`](super::Server::bind) does, on a config out of bounds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keg::server::{Config, MemoryStore, Session};
    /// let store = Arc::new(MemoryStore::new(1 << 20));
    /// let bad = Config { max_output_bytes: 0, ..Config::default() };
    /// assert!(Session::new(Arc::clone(&store), bad).is_err());
    /// assert!(Session::new(store, Config::default()).is_ok());
    /// ```
    pub fn new(store: Arc<S>, config: Config) -> io::Result<Session<S>> {
        config.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = Conn::new(config.limits, config.max_output_bytes);
        Ok(Session { shared: Shared::new(store, config, Log::off()), conn })
    }

    /// Takes `input` (any bytes, in any pieces: a request may be split
    /// anywhere), carries out every whole request and appends the replies to
    /// `replies`. Returns how many bytes of `input` were taken, as a server
    /// reads them from its socket: all of them while the connection is open
    /// (what follows a `quit` in the same call is taken and dropped), none
    /// once it has ended.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keg::server::{Config, MemoryStore, Session};
    /// let mut session = Session::new(Arc::new(MemoryStore::new(1 << 20)), Config::default()).unwrap();
    /// let mut replies = Vec::new();
    /// assert_eq!(session.send(b"version\r\nquit\r\nversion\r\n", &mut replies), 24);
    /// assert!(session.is_closed());
    /// assert_eq!(replies.iter().filter(|&&b| b == b'\n').count(), 1); // one VERSION line
    /// assert_eq!(session.send(b"version\r\n", &mut replies), 0);
    /// ```
    pub fn send(&mut self, mut input: &[u8], replies: &mut Vec<u8>) -> usize {
        let total = input.len();
        loop {
            self.carry_out(replies);
            if input.is_empty() || self.conn.finished() || !self.conn.wants_read() {
                break;
            }
            let space = self.conn.read_space();
            let n = space.len().min(input.len());
            space[..n].copy_from_slice(&input[..n]);
            self.conn.filled(n);
            input = &input[n..];
        }
        total - input.len()
    }

    /// The client closes its side: the whole requests already sent are
    /// answered (appended to `replies`), a partial one is dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keg::server::{Config, MemoryStore, Session};
    /// let mut session = Session::new(Arc::new(MemoryStore::new(1 << 20)), Config::default()).unwrap();
    /// let mut replies = Vec::new();
    /// session.send(b"set k 0 0 5\r\nhel", &mut replies);
    /// session.close(&mut replies);
    /// assert!(replies.is_empty() && session.is_closed()); // nothing stored
    /// ```
    pub fn close(&mut self, replies: &mut Vec<u8>) {
        self.conn.close_read();
        self.carry_out(replies);
    }

    /// Whether the connection has ended (`quit`, or [`Session::close`]):
    /// it takes no more bytes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keg::server::{Config, MemoryStore, Session};
    /// let mut session = Session::new(Arc::new(MemoryStore::new(1 << 20)), Config::default()).unwrap();
    /// assert!(!session.is_closed());
    /// session.send(b"quit\r\n", &mut Vec::new());
    /// assert!(session.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.conn.finished()
    }

    /// Carries out what the input holds, taking each reply as it is
    /// written, until nothing more can be done without more input.
    fn carry_out(&mut self, replies: &mut Vec<u8>) {
        loop {
            self.conn.process(&self.shared);
            let out = self.conn.output();
            if out.is_empty() {
                return;
            }
            replies.extend_from_slice(out);
            let n = out.len();
            self.conn.wrote(n);
        }
    }
}

impl<S: Store> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("closed", &self.is_closed()).finish_non_exhaustive()
    }
}
