//! The server's replies, encoded into a connection's output buffer.
//!
//! ```
//! use keg::server::reply;
//! let mut out = Vec::new();
//! reply::value(&mut out, b"k", 3, b"hi", Some(9));
//! reply::line(&mut out, reply::END);
//! assert_eq!(out, b"VALUE k 3 2 9\r\nhi\r\nEND\r\n");
//! ```

use std::fmt::Display;
use std::io::Write;

/// `STORED`: a storage command stored its data.
pub const STORED: &str = "STORED";
/// `NOT_STORED`: an `add`, `replace`, `append` or `prepend` whose condition failed.
pub const NOT_STORED: &str = "NOT_STORED";
/// `EXISTS`: a `cas` whose item changed since it was read.
pub const EXISTS: &str = "EXISTS";
/// `NOT_FOUND`: the key has no item.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// `DELETED`: `delete` removed the item.
pub const DELETED: &str = "DELETED";
/// `TOUCHED`: `touch` set the item's expiry.
pub const TOUCHED: &str = "TOUCHED";
/// `END`: ends a retrieval or `stats` reply.
pub const END: &str = "END";
/// `OK`: `flush_all` and `verbosity`.
pub const OK: &str = "OK";
/// `RESET`: `stats reset`.
pub const RESET: &str = "RESET";
/// `MN`: the meta no-op.
pub const MN: &str = "MN";
/// The answer to an item over the size limit (its data is dropped).
pub const TOO_LARGE: &str = "SERVER_ERROR object too large for cache";
/// The answer to a connection over `max_connections` (then it is closed).
pub const TOO_MANY_CONNECTIONS: &str = "SERVER_ERROR too many open connections";
/// The answer to a connection the system has no thread for (then it is closed).
pub const OUT_OF_THREADS: &str = "SERVER_ERROR out of resources: cannot start a thread for this connection";

/// Appends `text` and `\r\n`.
///
/// ```
/// let mut out = Vec::new();
/// keg::server::reply::line(&mut out, keg::server::reply::STORED);
/// assert_eq!(out, b"STORED\r\n");
/// ```
pub fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends one item of a retrieval reply: `VALUE <key> <flags> <bytes> [<cas>]`
/// and the data block.
///
/// ```
/// let mut out = Vec::new();
/// keg::server::reply::value(&mut out, b"greeting", 0, b"hello", None); // `get` gives no cas
/// assert_eq!(out, b"VALUE greeting 0 5\r\nhello\r\n");
/// ```
pub fn value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    // Writing to a Vec cannot fail.
    let _ = match cas {
        Some(cas) => write!(out, " {flags} {} {cas}\r\n", data.len()),
        None => write!(out, " {flags} {}\r\n", data.len()),
    };
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number on its own line (the reply to `incr` and `decr`).
///
/// ```
/// let mut out = Vec::new();
/// keg::server::reply::number(&mut out, u64::MAX);
/// assert_eq!(out, b"18446744073709551615\r\n");
/// ```
pub fn number(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}\r\n");
}

/// Appends `CLIENT_ERROR <why>`, on one line whatever `why` holds.
///
/// ```
/// let mut out = Vec::new();
/// keg::server::reply::client_error(&mut out, "bad\r\ndata");
/// assert_eq!(out, b"CLIENT_ERROR bad  data\r\n"); // a client cannot be made to read a second reply
/// ```
pub fn client_error(out: &mut Vec<u8>, why: impl Display) {
    let _ = write!(out, "CLIENT_ERROR {}\r\n", one_line(&why.to_string()));
}

/// Appends `SERVER_ERROR <why>`, on one line of at most 512 bytes of `why`.
///
/// ```
/// let mut out = Vec::new();
/// keg::server::reply::server_error(&mut out, "x".repeat(600));
/// assert_eq!(out.len(), "SERVER_ERROR ".len() + 512 + 2);
/// ```
pub fn server_error(out: &mut Vec<u8>, why: impl Display) {
    let _ = write!(out, "SERVER_ERROR {}\r\n", one_line(&why.to_string()));
}

/// Appends one `STAT <name> <value>` line.
///
/// ```
/// let mut out = Vec::new();
/// keg::server::reply::stat(&mut out, "curr_items", 42);
/// assert_eq!(out, b"STAT curr_items 42\r\n");
/// ```
pub fn stat(out: &mut Vec<u8>, name: &str, value: impl Display) {
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// An error message fit for one reply line: no line breaks, at most 512 bytes.
fn one_line(s: &str) -> String {
    let mut t: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if t.len() > 512 {
        let mut cut = 512;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let mut out = Vec::new();
        value(&mut out, b"k", 0, b"", None);
        number(&mut out, u64::MAX);
        stat(&mut out, "pid", 42);
        server_error(&mut out, "disk\r\nfull");
        client_error(&mut out, "x".repeat(600));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(&lines[..5], &["VALUE k 0 0", "", "18446744073709551615", "STAT pid 42", "SERVER_ERROR disk  full"]);
        assert_eq!(lines[5].len(), "CLIENT_ERROR ".len() + 512);
    }
}
