//! One client connection's state: its buffers and the order of its replies
//! (the thread that moves bytes between them and the socket is in
//! `threads`).
//!
//! Bounds, per connection:
//! - input: at most [`Limits::max_request`] bytes (one longest request); the
//!   buffer starts at 16 KiB and grows only while one request needs it;
//! - output: requests are carried out only while less than
//!   `max_output_bytes` of replies wait to be sent, so a client that sends
//!   without reading stops being read (TCP's window then holds it back): it
//!   is throttled, never buffered without bound. One reply can take the
//!   output past the mark by at most one item; a multi-key get pauses
//!   between keys.
//!
//! Requests are carried out in the order they arrive and their replies are
//! sent in that order: any number may arrive in one packet (pipelining).

use super::exec::{Outcome, Shared};
use super::protocol::{parse, Limits, Parsed, ProtocolError};
use super::stats::bump;
use super::store::Store;

/// Size of a new connection's input buffer.
const INITIAL_INPUT: usize = 16 << 10;
/// An empty output buffer larger than this is given back to the allocator.
const KEEP_OUTPUT: usize = 256 << 10;

/// A connection's state, apart from its socket.
pub(crate) struct Conn {
    limits: Limits,
    out_limit: usize,
    /// Input bytes: `buf[start..end]` are read and not yet taken by a request.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Buffer length the request at `start` needs, when known.
    need: usize,
    /// Bytes still to drop (an oversized or malformed item's data block).
    skip: u64,
    /// Dropping the rest of a line that was too long, up to its `\n`.
    skip_line: bool,
    /// Keys of the retrieval at `start` already answered.
    resume: usize,
    output: Vec<u8>,
    sent: usize,
    /// No more bytes will be read (the client closed its side, or the server is stopping).
    read_closed: bool,
    /// No more requests will be carried out: send what is left, then close.
    closing: bool,
    throttled: bool,
}

impl Conn {
    pub(crate) fn new(limits: Limits, out_limit: usize) -> Conn {
        Conn {
            limits,
            out_limit,
            buf: vec![0; INITIAL_INPUT.min(limits.max_request())],
            start: 0,
            end: 0,
            need: 0,
            skip: 0,
            skip_line: false,
            resume: 0,
            output: Vec::new(),
            sent: 0,
            read_closed: false,
            closing: false,
            throttled: false,
        }
    }

    /// Carries out every whole request in the input, in order, while the
    /// output is under its mark.
    pub(crate) fn process<S: Store>(&mut self, shared: &Shared<S>) {
        while !self.closing {
            if self.output.len() - self.sent >= self.out_limit {
                if !self.throttled {
                    self.throttled = true;
                    bump(&shared.counters.conn_throttled);
                }
                break;
            }
            self.throttled = false;
            if self.skip > 0 {
                let n = self.skip.min((self.end - self.start) as u64);
                self.start += n as usize;
                self.skip -= n;
                if self.skip > 0 {
                    break;
                }
            }
            if self.skip_line {
                match self.buf[self.start..self.end].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.start += i + 1;
                        self.skip_line = false;
                    }
                    None => {
                        self.start = self.end;
                        break;
                    }
                }
            }
            let input = &self.buf[self.start..self.end];
            if input.is_empty() {
                break;
            }
            match parse(input, &self.limits) {
                Parsed::Incomplete { needed } => {
                    self.need = needed.unwrap_or(0);
                    // The client will send no more: the partial request is dropped.
                    self.closing |= self.read_closed;
                    break;
                }
                Parsed::LineTooLong { len } => {
                    shared.refuse(ProtocolError::LineTooLong, &mut self.output);
                    self.start += len;
                    self.skip_line = true;
                }
                Parsed::Invalid { len, error, skip } => {
                    shared.refuse(error, &mut self.output);
                    self.start += len;
                    self.skip = skip;
                }
                Parsed::Request { len, request } => {
                    // The output buffer still holds `sent` bytes already sent.
                    let limit = self.out_limit.saturating_add(self.sent);
                    match shared.execute(request, &mut self.output, self.resume, limit) {
                        Outcome::Done => self.start += len,
                        Outcome::Skip(n) => {
                            self.start += len;
                            self.skip = n;
                        }
                        Outcome::Partial(done) => {
                            self.resume = done;
                            continue;
                        }
                        Outcome::Close => {
                            self.start += len;
                            self.closing = true;
                        }
                    }
                    self.resume = 0;
                    self.need = 0;
                }
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > INITIAL_INPUT {
                self.buf = vec![0; INITIAL_INPUT];
            }
        }
    }

    /// Whether the connection wants bytes from the client now.
    pub(crate) fn wants_read(&self) -> bool {
        !self.closing
            && !self.read_closed
            && self.output.len() - self.sent < self.out_limit
            && self.end - self.start < self.limits.max_request()
    }

    /// Where to read the client's next bytes into (never empty when
    /// [`Conn::wants_read`] says yes).
    pub(crate) fn read_space(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let max = self.limits.max_request();
            let grown = (self.buf.len() * 2).max(self.need).min(max);
            if grown > self.buf.len() {
                self.buf.resize(grown, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Conn::read_space`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The client closed its side (or the server stops reading): carry out
    /// the whole requests already read, send their replies, then close.
    pub(crate) fn close_read(&mut self) {
        self.read_closed = true;
    }

    /// Replies not yet sent.
    pub(crate) fn output(&self) -> &[u8] {
        &self.output[self.sent..]
    }

    /// `n` bytes of [`Conn::output`] were sent.
    pub(crate) fn wrote(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.output.len());
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
            if self.output.capacity() > KEEP_OUTPUT {
                self.output = Vec::new();
            }
        }
    }

    /// Whether the connection is done: nothing more to read or carry out,
    /// and every reply sent.
    pub(crate) fn finished(&self) -> bool {
        (self.closing || (self.read_closed && self.start == self.end)) && self.output.len() == self.sent
    }

    /// Whether a request is half received, or replies wait to be sent.
    pub(crate) fn pending(&self) -> bool {
        self.start < self.end || self.skip > 0 || self.skip_line || self.output.len() > self.sent
    }

    /// Bytes this connection holds in memory (its buffers' capacities).
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.buf.len() + self.output.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Log, MemoryStore};
    use super::*;
    use std::sync::Arc;

    fn shared() -> Shared<MemoryStore> {
        let config = Config::default();
        Shared::new(Arc::new(MemoryStore::new(config.limits.max_item_size)), config, Log::off())
    }

    /// Feeds `input` in pieces of `chunk` bytes, reading replies as they come.
    fn run(shared: &Shared<MemoryStore>, conn: &mut Conn, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut replies = Vec::new();
        for piece in input.chunks(chunk) {
            let mut piece = piece;
            while !piece.is_empty() {
                if conn.finished() {
                    return replies;
                }
                assert!(conn.wants_read());
                let space = conn.read_space();
                let n = space.len().min(piece.len());
                space[..n].copy_from_slice(&piece[..n]);
                conn.filled(n);
                piece = &piece[n..];
                conn.process(shared);
                replies.extend_from_slice(conn.output());
                let n = conn.output().len();
                conn.wrote(n);
            }
        }
        replies
    }

    #[test]
    fn pipelined_requests_answered_in_order_whatever_the_packets() {
        let input = b"set a 1 0 1\r\nA\r\nget a b\r\nset b 2 0 3 noreply\r\nBBB\r\nbogus\r\ngets b\r\ndelete a\r\n";
        let mut want = None;
        for chunk in [1, 2, 3, 7, input.len()] {
            let s = shared();
            let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
            let got = run(&s, &mut conn, input, chunk);
            let text = String::from_utf8(got).unwrap();
            assert!(text.starts_with("STORED\r\nVALUE a 1 1\r\nA\r\nEND\r\nERROR\r\nVALUE b 2 3 "), "{text}");
            assert!(text.ends_with("\r\nBBB\r\nEND\r\nDELETED\r\n"), "{text}");
            let want = want.get_or_insert(text.clone());
            assert_eq!(*want, text, "chunk {chunk}");
        }
    }

    /// The commands a keg build without the library's atomic operations
    /// cannot serve yet (tests/serve/atomic.rs), against the reference store.
    #[test]
    fn atomic_commands_against_the_reference_store() {
        let s = shared();
        let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
        let mut ask = |req: &str| String::from_utf8(run(&s, &mut conn, req.as_bytes(), 4096)).unwrap();
        assert_eq!(ask("add k 5 0 1\r\na\r\nadd k 0 0 1\r\nb\r\n"), "STORED\r\nNOT_STORED\r\n");
        assert_eq!(ask("replace nope 0 0 1\r\nb\r\nreplace k 6 0 1\r\nb\r\n"), "NOT_STORED\r\nSTORED\r\n");
        assert_eq!(ask("append k 0 0 2\r\ncd\r\nprepend k 0 0 1\r\n0\r\n"), "STORED\r\nSTORED\r\n");
        assert_eq!(ask("append nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
        let gets = ask("gets k\r\n");
        assert!(gets.starts_with("VALUE k 6 4 ") && gets.ends_with("\r\n0bcd\r\nEND\r\n"), "{gets}");
        let cas: u64 = gets.lines().next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(ask(&format!("cas k 1 0 1 {}\r\nx\r\n", cas + 1)), "EXISTS\r\n");
        assert_eq!(ask(&format!("cas k 4294967295 0 1 {cas}\r\nx\r\n")), "STORED\r\n");
        assert_eq!(ask("cas nope 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
        assert_eq!(ask("get k\r\n"), "VALUE k 4294967295 1\r\nx\r\nEND\r\n");
        assert_eq!(
            ask("incr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 99\r\n"),
            "NOT_FOUND\r\nSTORED\r\n15\r\n0\r\n"
        );
        assert_eq!(ask("incr k 1\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        assert_eq!(ask("incr n 7 noreply\r\nget n\r\n"), "VALUE n 0 1\r\n7\r\nEND\r\n");
        assert_eq!(ask("touch k 100\r\ntouch nope 1\r\n"), "TOUCHED\r\nNOT_FOUND\r\n");
        assert_eq!(ask("gat 100 k nope\r\n"), "VALUE k 4294967295 1\r\nx\r\nEND\r\n");
        assert!(ask("gats 0 k\r\n").starts_with("VALUE k 4294967295 1 "));
        assert_eq!(ask("gat -1 k\r\nget k\r\n"), "VALUE k 4294967295 1\r\nx\r\nEND\r\nEND\r\n");
        assert_eq!(ask("set neg 0 -1 1\r\nv\r\nget neg\r\n"), "STORED\r\nEND\r\n");
        let c = &s.counters;
        let n = |a: &crate::stripe::Counter| a.load();
        assert_eq!((n(&c.cas_hits), n(&c.cas_badval), n(&c.cas_misses)), (1, 1, 1));
        assert_eq!((n(&c.incr_hits), n(&c.incr_misses), n(&c.decr_hits)), (2, 1, 1));
        assert_eq!((n(&c.touch_hits), n(&c.touch_misses)), (4, 2));
    }

    #[test]
    fn oversized_item_is_dropped_and_the_connection_goes_on() {
        let s = shared();
        let max = s.config.limits.max_item_size;
        let mut input = b"set k 0 0 1\r\nx\r\n".to_vec();
        input.extend_from_slice(format!("set k 0 0 {}\r\n", max + 1).as_bytes());
        input.resize(input.len() + max + 1, b'v');
        input.extend_from_slice(b"\r\nget k\r\n");
        let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
        let got = run(&s, &mut conn, &input, 4096);
        assert_eq!(String::from_utf8(got).unwrap(), "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n");
        assert!(conn.footprint() <= 64 << 10, "an oversized item is not buffered");
    }

    #[test]
    fn a_client_that_does_not_read_is_throttled() {
        let s = shared();
        s.store.set(b"big", &vec![b'x'; 100_000], 0, None).unwrap();
        let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
        let mut sent = 0;
        // Never read replies: the connection stops wanting input.
        for _ in 0..10_000 {
            if !conn.wants_read() {
                break;
            }
            let req = b"get big\r\n";
            let space = conn.read_space();
            let n = space.len().min(req.len());
            space[..n].copy_from_slice(&req[..n]);
            conn.filled(n);
            conn.process(&s);
            sent += 1;
        }
        assert!(!conn.wants_read(), "still reading after {sent} requests");
        let held = conn.output().len();
        assert!(held < s.config.max_output_bytes + 200_000, "{held} bytes of output held");
        assert!(s.counters.conn_throttled.load() >= 1);
        // Once the client reads, the rest is answered.
        let mut replies = 0;
        for _ in 0..10_000 {
            let out = conn.output();
            replies += out.windows(5).filter(|w| w == b"END\r\n").count();
            let n = out.len();
            conn.wrote(n);
            conn.process(&s);
            if conn.output().is_empty() {
                break;
            }
        }
        assert_eq!(replies, sent);
    }

    #[test]
    fn a_long_multi_get_pauses_between_keys() {
        let s = shared();
        let value = vec![b'v'; 60_000];
        let mut line = b"get".to_vec();
        for i in 0..100 {
            s.store.set(format!("k{i}").as_bytes(), &value, 0, None).unwrap();
            line.extend_from_slice(format!(" k{i}").as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
        let space = conn.read_space();
        space[..line.len()].copy_from_slice(&line);
        conn.filled(line.len());
        let mut total = 0;
        let mut most = 0;
        for _ in 0..1000 {
            conn.process(&s);
            let n = conn.output().len();
            most = most.max(n);
            total += conn.output().windows(6).filter(|w| w == b"VALUE ").count();
            conn.wrote(n);
            if n == 0 {
                break;
            }
        }
        assert_eq!(total, 100);
        assert!(most < s.config.max_output_bytes + 70_000, "{most}");
    }

    #[test]
    fn a_line_too_long_is_dropped_to_its_end() {
        let s = shared();
        let mut input = vec![b'z'; 5000];
        input.extend_from_slice(b"\r\nmn\r\n");
        for chunk in [1000, 2048, input.len()] {
            let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
            let got = run(&s, &mut conn, &input, chunk);
            assert_eq!(String::from_utf8(got).unwrap(), "CLIENT_ERROR line too long\r\nMN\r\n", "chunk {chunk}");
            assert!(conn.footprint() <= 64 << 10);
        }
    }

    #[test]
    fn eof_answers_what_was_read() {
        let s = shared();
        let mut conn = Conn::new(s.config.limits, s.config.max_output_bytes);
        let input = b"set k 0 0 1\r\nx\r\nget k\r\nget";
        let space = conn.read_space();
        space[..input.len()].copy_from_slice(input);
        conn.filled(input.len());
        conn.close_read();
        conn.process(&s);
        assert_eq!(conn.output(), b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n");
        let n = conn.output().len();
        conn.wrote(n);
        conn.process(&s);
        assert!(conn.finished());
    }
}
