//! The memcached text protocol's requests: a pure parser.
//!
//! [`parse`] looks at the start of a connection's input buffer and says what
//! is there: a whole request (and how many bytes it took), a malformed one
//! (the error to answer and how many bytes to drop), a line too long, or not
//! enough bytes yet.
//! It does no I/O, allocates nothing, and never panics, whatever the bytes:
//! the `protocol_parse` fuzz target holds it to that.
//!
//! ```
//! use keg::server::protocol::{parse, Limits, Parsed, Request};
//! let limits = Limits::default();
//! let input = b"set greeting 5 0 2\r\nhi\r\nget greeting\r\n";
//! let Parsed::Request { len, request } = parse(input, &limits) else { panic!() };
//! assert!(matches!(request, Request::Store { key: b"greeting", flags: 5, data: b"hi", .. }));
//! let Parsed::Request { request, .. } = parse(&input[len..], &limits) else { panic!() };
//! assert!(matches!(request, Request::Retrieve { .. }));
//! assert!(matches!(parse(b"get gree", &limits), Parsed::Incomplete { .. }));
//! ```

use std::fmt;

/// Longest key, in bytes, as memcached.
pub const MAX_KEY_LEN: usize = 250;
/// Default longest request line, in bytes, counting its `\r\n` (memcached's 2048).
pub const DEFAULT_MAX_LINE: usize = 2048;
/// Default longest `get`/`gets`/`gat`/`gats` line: a multi-key get may be
/// longer than other lines (memcached accepts long ones too), up to this.
pub const DEFAULT_MAX_RETRIEVAL_LINE: usize = 256 << 10;
/// Default largest value a storage command may carry (memcached's 1 MiB).
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1 << 20;
/// Largest data block length accepted at all, as memcached (a signed 32-bit
/// length less the `\r\n`); a longer one is a malformed line, not an
/// oversized item.
pub const MAX_DECLARED_LEN: u64 = i32::MAX as u64 - 2;
/// Most tokens on a line other than a retrieval line (memcached's 24).
const MAX_TOKENS: usize = 24;

/// The parser's limits.
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, Request};
/// let limits = Limits { max_item_size: 4, ..Limits::default() };
/// let Parsed::Request { request, .. } = parse(b"set k 0 0 5\r\nhello\r\n", &limits) else { panic!() };
/// assert!(matches!(request, Request::TooLarge { skip: 7, .. })); // the 5 bytes and their \r\n are dropped
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, including `\r\n`.
    pub max_line: usize,
    /// Longest retrieval (`get`, `gets`, `gat`, `gats`) line, including `\r\n`.
    pub max_retrieval_line: usize,
    /// Largest data block of a storage command.
    pub max_item_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: DEFAULT_MAX_LINE,
            max_retrieval_line: DEFAULT_MAX_RETRIEVAL_LINE,
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
        }
    }
}

impl Limits {
    /// The most bytes one request can need in the input buffer: a longest
    /// line, or a storage line with a largest data block and its `\r\n`.
    ///
    /// ```
    /// use keg::server::protocol::Limits;
    /// assert_eq!(Limits::default().max_request(), 2048 + (1 << 20) + 2);
    /// ```
    pub fn max_request(&self) -> usize {
        self.max_retrieval_line.max(self.max_line.saturating_add(self.max_item_size).saturating_add(2))
    }
}

/// The six storage commands.
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, Request, StoreKind};
/// let Parsed::Request { request, .. } = parse(b"cas k 0 0 1 99\r\nx\r\n", &Limits::default()) else { panic!() };
/// assert!(matches!(request, Request::Store { kind: StoreKind::Cas, cas: 99, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `set`: store.
    Set,
    /// `add`: store if the key has no value.
    Add,
    /// `replace`: store if the key has a value.
    Replace,
    /// `append`: add the data after the existing value.
    Append,
    /// `prepend`: add the data before the existing value.
    Prepend,
    /// `cas`: store if the value's version is the one given.
    Cas,
}

/// The four retrieval commands.
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, Request, RetrieveKind};
/// let Parsed::Request { request, .. } = parse(b"gat 60 a b\r\n", &Limits::default()) else { panic!() };
/// assert!(matches!(request, Request::Retrieve { kind: RetrieveKind::Gat, exptime: 60, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrieveKind {
    /// `get <key>*`
    Get,
    /// `gets <key>*`: with each item's cas unique.
    Gets,
    /// `gat <exptime> <key>*`: get and touch.
    Gat,
    /// `gats <exptime> <key>*`: get and touch, with cas uniques.
    Gats,
}

impl RetrieveKind {
    /// Whether the reply carries cas uniques.
    ///
    /// ```
    /// use keg::server::protocol::RetrieveKind;
    /// assert!(RetrieveKind::Gats.with_cas() && !RetrieveKind::Get.with_cas());
    /// ```
    pub fn with_cas(self) -> bool {
        matches!(self, RetrieveKind::Gets | RetrieveKind::Gats)
    }

    /// Whether the command also sets the items' expiry.
    ///
    /// ```
    /// use keg::server::protocol::RetrieveKind;
    /// assert!(RetrieveKind::Gat.touches() && !RetrieveKind::Gets.touches());
    /// ```
    pub fn touches(self) -> bool {
        matches!(self, RetrieveKind::Gat | RetrieveKind::Gats)
    }
}

/// The keys of a retrieval line, in order (see [`Request::Retrieve`]).
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, Request};
/// let Parsed::Request { request: Request::Retrieve { keys, .. }, .. } = parse(b"get a  bb c\r\n", &Limits::default()) else { panic!() };
/// assert_eq!(keys.collect::<Vec<_>>(), [&b"a"[..], b"bb", b"c"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a> {
    rest: &'a [u8],
}

impl<'a> Keys<'a> {
    /// The keys not yet taken, as the raw text of the line.
    ///
    /// ```
    /// use keg::server::protocol::{parse, Limits, Parsed, Request};
    /// let Parsed::Request { request: Request::Retrieve { mut keys, .. }, .. } = parse(b"get a b\r\n", &Limits::default()) else { panic!() };
    /// keys.next();
    /// assert_eq!(keys.as_bytes(), b" b");
    /// ```
    pub fn as_bytes(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (token, rest) = next_token(self.rest)?;
        self.rest = rest;
        Some(token)
    }
}

/// A whole, well-formed request.
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, Request};
/// let Parsed::Request { request, len } = parse(b"incr hits 5 noreply\r\nversion\r\n", &Limits::default()) else { panic!() };
/// assert_eq!(request, Request::Arith { incr: true, key: b"hits", delta: 5, noreply: true });
/// assert_eq!(len, 21); // the next request starts after it
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// A storage command with its data block.
    Store {
        /// Which one.
        kind: StoreKind,
        /// The key (checked by [`check_key`]).
        key: &'a [u8],
        /// The client's flags.
        flags: u32,
        /// Expiration time as sent: 0 never, negative already expired, up to
        /// 30 days seconds from now, beyond that a Unix time.
        exptime: i64,
        /// The data block, without its `\r\n`.
        data: &'a [u8],
        /// The cas unique (`cas` only; 0 otherwise).
        cas: u64,
        /// No reply wanted.
        noreply: bool,
    },
    /// A storage command whose data block is over the item size limit: the
    /// block (`skip` bytes, its `\r\n` included) is to be read and dropped,
    /// and the answer is `SERVER_ERROR object too large for cache`.
    TooLarge {
        /// Which command.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// No reply wanted.
        noreply: bool,
        /// Bytes after the line to drop.
        skip: u64,
    },
    /// `get`, `gets`, `gat`, `gats`. The keys are checked one by one as they
    /// are served (a bad one ends the reply with an error, as in memcached).
    Retrieve {
        /// Which one.
        kind: RetrieveKind,
        /// The expiry to set (`gat`/`gats`; 0 otherwise).
        exptime: i64,
        /// One or more keys.
        keys: Keys<'a>,
    },
    /// `delete <key> [noreply]`
    Delete {
        /// The key.
        key: &'a [u8],
        /// No reply wanted.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta> [noreply]`
    Arith {
        /// `incr` (true) or `decr`.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiration time.
        exptime: i64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`
    FlushAll {
        /// Seconds from now (or a Unix time past 30 days); 0 now.
        delay: i64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `version`
    Version,
    /// `verbosity <level> [noreply]`
    Verbosity {
        /// The level asked for.
        level: u32,
        /// No reply wanted.
        noreply: bool,
    },
    /// `quit`: close the connection.
    Quit,
    /// `stats [group]`
    Stats {
        /// What follows `stats` (empty for the general statistics).
        group: &'a [u8],
    },
    /// `mn`: the meta no-op, answered `MN`.
    MetaNoop,
    /// A meta command: `mg`, `ms` (with its data block), `md` or `ma`.
    Meta {
        /// Which one.
        command: MetaCommand,
        /// The key as sent (base64 text with the `b` flag; decoded when served).
        key: &'a [u8],
        /// The flags.
        flags: MetaFlags<'a>,
        /// The data block of `ms`, without its `\r\n` (empty for the others).
        data: &'a [u8],
    },
    /// An `ms` whose data block is over the item size limit: as
    /// [`Request::TooLarge`] (the block is dropped, the answer is
    /// `SERVER_ERROR object too large for cache`, and in the default mode
    /// the key's old value is deleted).
    MetaTooLarge {
        /// The key as sent.
        key: &'a [u8],
        /// The flags.
        flags: MetaFlags<'a>,
        /// Bytes after the line to drop.
        skip: u64,
    },
}

/// The meta commands that take a key.
///
/// ```
/// use keg::server::protocol::{parse, Limits, MetaCommand, Parsed, Request};
/// let Parsed::Request { request, .. } = parse(b"md session:9 q\r\n", &Limits::default()) else { panic!() };
/// let Request::Meta { command, flags, .. } = request else { panic!() };
/// assert_eq!(command, MetaCommand::Delete);
/// assert!(flags.quiet);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCommand {
    /// `mg <key> <flags>*`: get.
    Get,
    /// `ms <key> <datalen> <flags>*`: set, in one of five modes.
    Set,
    /// `md <key> <flags>*`: delete.
    Delete,
    /// `ma <key> <flags>*`: increment or decrement.
    Arith,
    /// `me <key> [b]`: what the server knows of the item, for people.
    Debug,
}

/// `ms`'s modes (flag `M`).
///
/// ```
/// use keg::server::protocol::{parse, Limits, MetaMode, Parsed, Request};
/// let Parsed::Request { request: Request::Meta { flags, .. }, .. } = parse(b"ms k 1 ME\r\nx\r\n", &Limits::default()) else { panic!() };
/// assert_eq!(flags.mode, MetaMode::Add);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaMode {
    /// `MS` (the default): store.
    Set,
    /// `ME`: store if the key has no value ("add").
    Add,
    /// `MR`: store if the key has a value ("replace").
    Replace,
    /// `MA`: add the data after the value ("append").
    Append,
    /// `MP`: add the data before the value ("prepend").
    Prepend,
}

/// Most return flags one meta request can ask for (`c f h k l s t O`, each at most once).
const MAX_RETURN_FLAGS: usize = 8;
/// Longest opaque token (`O`), as memcached.
pub const MAX_OPAQUE_LEN: usize = 32;

/// The flags of a meta request, checked by the parser: each flag at most
/// once, tokens well-formed, and only flags its command takes (see
/// docs/serve.md for the flags keg serves and the few it refuses).
///
/// ```
/// use keg::server::protocol::{parse, Limits, MetaCommand, MetaMode, Parsed, Request};
/// let Parsed::Request { request, .. } = parse(b"ms k 2 MA C7 k O1\r\nhi\r\n", &Limits::default()) else { panic!() };
/// let Request::Meta { command, key, flags, data } = request else { panic!() };
/// assert_eq!((command, key, data), (MetaCommand::Set, &b"k"[..], &b"hi"[..]));
/// assert_eq!((flags.mode, flags.compare), (MetaMode::Append, Some(7)));
/// assert_eq!(flags.returns(), b"kO"); // the reply's flags, in this order
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    returns: [u8; MAX_RETURN_FLAGS],
    returns_len: u8,
    /// `b`: the key is base64; a returned key is too.
    pub base64: bool,
    /// `q`: no reply for the common outcome (`EN` for `mg`, `HD` for the others).
    pub quiet: bool,
    /// `v`: return the value (`mg`) or the new number (`ma`).
    pub value: bool,
    /// `u` of `mg`: this access does not count as one (for `h` and `l`).
    pub peek: bool,
    /// `O`: a token copied into the reply.
    pub opaque: Option<&'a [u8]>,
    /// `T`: a new expiration time (as a storage command's exptime).
    pub ttl: Option<i64>,
    /// `F`: the client flags to store (`ms`; 0 if absent).
    pub client_flags: Option<u32>,
    /// `C`: act only if the item's cas unique is this.
    pub compare: Option<u64>,
    /// `M` of `ms`: the mode (default [`MetaMode::Set`]).
    pub mode: MetaMode,
    /// `M` of `ma`: decrement (`MD`, `M-`) instead of increment.
    pub decrement: bool,
    /// `D` of `ma`: the amount (default 1).
    pub delta: u64,
    /// `N` of `ma` and `mg`: create a missing key with this expiration time
    /// (`mg`: an empty stub, and the caller wins its recache).
    pub vivify: Option<i64>,
    /// `R` of `mg`: win the recache of an item with fewer seconds than this left.
    pub recache: Option<u64>,
    /// `I` of `md`: keep the item as a stale copy instead of deleting it; of
    /// `ms` with `C`: store the data as a stale copy when `C` is older than
    /// the item's cas.
    pub invalidate: bool,
    /// `J` of `ma`: the number a created key starts at (default 0).
    pub initial: u64,
}

impl<'a> MetaFlags<'a> {
    fn new() -> MetaFlags<'a> {
        MetaFlags {
            returns: [0; MAX_RETURN_FLAGS],
            returns_len: 0,
            base64: false,
            quiet: false,
            value: false,
            peek: false,
            opaque: None,
            ttl: None,
            client_flags: None,
            compare: None,
            mode: MetaMode::Set,
            decrement: false,
            delta: 1,
            vivify: None,
            recache: None,
            invalidate: false,
            initial: 0,
        }
    }

    /// The flags that return something (`c f h k l s t O`), in the order the
    /// request gave them, which is the order of the reply.
    ///
    /// ```
    /// use keg::server::protocol::{parse, Limits, Parsed, Request};
    /// let Parsed::Request { request: Request::Meta { flags, .. }, .. } = parse(b"mg k t v c f\r\n", &Limits::default()) else { panic!() };
    /// assert_eq!(flags.returns(), b"tcf"); // `v` returns the value, not a flag
    /// ```
    pub fn returns(&self) -> &[u8] {
        &self.returns[..usize::from(self.returns_len)]
    }
}

/// A request the parser refused, and the line that carried it.
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, ProtocolError};
/// let Parsed::Invalid { error, .. } = parse(b"incr k lots\r\n", &Limits::default()) else { panic!() };
/// assert_eq!(error, ProtocolError::InvalidDelta);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// An unknown command (or an empty line): `ERROR`.
    UnknownCommand,
    /// A malformed line (a missing or bad field, a bad key).
    BadFormat,
    /// `delete` with an argument other than `noreply` (or memcached's legacy `0`).
    BadDeleteFormat,
    /// `incr`/`decr` with a delta that is not an unsigned 64-bit decimal.
    InvalidDelta,
    /// `touch`/`gat`/`gats` with an expiration time that is not a number.
    InvalidExptime,
    /// A data block not followed by `\r\n`.
    BadDataChunk,
    /// A line over the line limit.
    LineTooLong,
    /// A meta flag the command does not take.
    MetaInvalidFlag,
    /// A meta flag given twice.
    MetaDuplicateFlag,
    /// A meta flag whose token is missing or malformed.
    MetaBadToken,
    /// An opaque token over [`MAX_OPAQUE_LEN`] bytes.
    MetaOpaqueTooLong,
    /// An `M` token that is not a mode of `ms`.
    MetaBadSetMode,
    /// An `M` token that is not a mode of `ma`.
    MetaBadArithMode,
    /// A meta flag memcached has and keg serve does not (`E`, `x`): see
    /// docs/serve.md.
    MetaUnsupportedFlag,
    /// A base64 key (`b`) that does not decode to a key.
    MetaBadKey,
}

impl ProtocolError {
    /// The reply line, without `\r\n`.
    ///
    /// ```
    /// use keg::server::protocol::ProtocolError;
    /// assert_eq!(ProtocolError::UnknownCommand.reply(), "ERROR");
    /// assert_eq!(ProtocolError::LineTooLong.reply(), "CLIENT_ERROR line too long");
    /// ```
    pub fn reply(self) -> &'static str {
        match self {
            ProtocolError::UnknownCommand => "ERROR",
            ProtocolError::BadFormat => "CLIENT_ERROR bad command line format",
            ProtocolError::BadDeleteFormat => "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            ProtocolError::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            ProtocolError::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            ProtocolError::BadDataChunk => "CLIENT_ERROR bad data chunk",
            ProtocolError::LineTooLong => "CLIENT_ERROR line too long",
            ProtocolError::MetaInvalidFlag => "CLIENT_ERROR invalid flag",
            ProtocolError::MetaDuplicateFlag => "CLIENT_ERROR duplicate flag",
            ProtocolError::MetaBadToken => "CLIENT_ERROR bad token in command line format",
            ProtocolError::MetaOpaqueTooLong => "CLIENT_ERROR opaque token too long",
            ProtocolError::MetaBadSetMode => "CLIENT_ERROR invalid mode for ms M token",
            ProtocolError::MetaBadArithMode => "CLIENT_ERROR invalid mode for ma M token",
            ProtocolError::MetaUnsupportedFlag => {
                "CLIENT_ERROR flag not supported by keg serve (E, x; see docs/serve.md)"
            }
            ProtocolError::MetaBadKey => "CLIENT_ERROR error decoding key",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reply())
    }
}

/// What the start of an input buffer holds.
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed};
/// let limits = Limits::default();
/// // The line has come, its data block not yet: the buffer must reach 20 bytes.
/// assert_eq!(parse(b"set k 0 0 5\r\nhel", &limits), Parsed::Incomplete { needed: Some(20) });
/// // A bad line takes its data block with it (dropped, not read as a command).
/// assert!(matches!(parse(b"set k x 0 5\r\nhello\r\n", &limits), Parsed::Invalid { len: 13, skip: 7, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole request yet: read more. `needed`, when known, is how long
    /// the buffer must be for the request to be whole (a storage command
    /// whose line has arrived but not all of its data block).
    Incomplete {
        /// Total buffer length the request needs, if known.
        needed: Option<usize>,
    },
    /// A request, taking the first `len` bytes.
    Request {
        /// Bytes the request took.
        len: usize,
        /// The request.
        request: Request<'a>,
    },
    /// A malformed request taking the first `len` bytes: answer `error` and
    /// go on with the bytes after it; then drop `skip` more bytes (the data
    /// block of a storage command whose line was bad), which may not have
    /// arrived yet.
    Invalid {
        /// Bytes the bad request took.
        len: usize,
        /// What to answer.
        error: ProtocolError,
        /// Bytes after `len` to drop.
        skip: u64,
    },
    /// No line end within the line limit: answer
    /// [`ProtocolError::LineTooLong`], drop the first `len` bytes, and then
    /// every byte up to and including the next `\n` (the rest of the line),
    /// which may not have arrived yet.
    LineTooLong {
        /// Bytes of the line seen so far.
        len: usize,
    },
}

/// Whether `key` is one memcached accepts: 1 to 250 bytes, none of them a
/// space or a control character (bytes 0x00-0x20 and 0x7f).
///
/// ```
/// use keg::server::protocol::check_key;
/// assert!(check_key(b"user:42"));
/// assert!(check_key("clé".as_bytes()));
/// assert!(!check_key(b""));
/// assert!(!check_key(b"tab\there"));
/// assert!(!check_key(&[b'k'; 251]));
/// ```
pub fn check_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// Looks at the start of `input`; see [`Parsed`].
///
/// ```
/// use keg::server::protocol::{parse, Limits, Parsed, Request};
/// let limits = Limits::default();
/// let mut input: &[u8] = b"version\r\nmn\r\nbogus\r\nget";
/// let mut seen = Vec::new();
/// loop {
///     match parse(input, &limits) {
///         Parsed::Request { len, request } => (seen.push(format!("{request:?}")), input = &input[len..]),
///         Parsed::Invalid { len, error, .. } => (seen.push(error.to_string()), input = &input[len..]),
///         Parsed::Incomplete { .. } | Parsed::LineTooLong { .. } => break, // read more, or answer and drop the line
///     };
/// }
/// assert_eq!(seen, ["Version", "MetaNoop", "ERROR"]);
/// assert_eq!(input, b"get"); // kept for the next read
/// ```
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let retrieval = is_retrieval_line(input);
    let max_line = if retrieval { limits.max_retrieval_line.max(limits.max_line) } else { limits.max_line };
    let search = &input[..input.len().min(max_line)];
    let Some(nl) = search.iter().position(|&b| b == b'\n') else {
        return if input.len() >= max_line {
            Parsed::LineTooLong { len: search.len() }
        } else {
            Parsed::Incomplete { needed: None }
        };
    };
    let line_len = nl + 1;
    let mut line = &input[..nl];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    match parse_line(line, limits) {
        Line::Done(request) => Parsed::Request { len: line_len, request },
        Line::Bad(error) => Parsed::Invalid { len: line_len, error, skip: 0 },
        Line::BadWithData(error, data_len) => Parsed::Invalid { len: line_len, error, skip: data_len + 2 },
        Line::TooLarge { kind, key, noreply, data_len } => {
            Parsed::Request { len: line_len, request: Request::TooLarge { kind, key, noreply, skip: data_len + 2 } }
        }
        Line::MetaTooLarge { key, flags, data_len } => {
            Parsed::Request { len: line_len, request: Request::MetaTooLarge { key, flags, skip: data_len + 2 } }
        }
        Line::Storage(head) => {
            let data = match data_block(input, line_len, head.data_len) {
                Ok(data) => data,
                Err(parsed) => return parsed,
            };
            let request = Request::Store {
                kind: head.kind,
                key: head.key,
                flags: head.flags,
                exptime: head.exptime,
                data,
                cas: head.cas,
                noreply: head.noreply,
            };
            Parsed::Request { len: line_len + head.data_len + 2, request }
        }
        Line::MetaSet { key, flags, data_len } => {
            let data = match data_block(input, line_len, data_len) {
                Ok(data) => data,
                Err(parsed) => return parsed,
            };
            let request = Request::Meta { command: MetaCommand::Set, key, flags, data };
            Parsed::Request { len: line_len + data_len + 2, request }
        }
    }
}

/// The data block of `data_len` bytes after a storage line of `line_len`
/// bytes, or what to answer when it is not all there or not ended by `\r\n`
/// (the parse's own answer, hence the large error).
#[allow(clippy::result_large_err)]
fn data_block(input: &[u8], line_len: usize, data_len: usize) -> Result<&[u8], Parsed<'static>> {
    // data_len <= max_item_size, so this cannot overflow on any real usize.
    let total = line_len.saturating_add(data_len).saturating_add(2);
    if input.len() < total {
        return Err(Parsed::Incomplete { needed: Some(total) });
    }
    if &input[total - 2..total] != b"\r\n" {
        return Err(Parsed::Invalid { len: total, error: ProtocolError::BadDataChunk, skip: 0 });
    }
    Ok(&input[line_len..line_len + data_len])
}

fn is_retrieval_line(input: &[u8]) -> bool {
    [&b"get "[..], b"gets ", b"gat ", b"gats "].iter().any(|p| input.starts_with(p))
}

/// A storage command's line, before its data block.
struct StorageHead<'a> {
    kind: StoreKind,
    key: &'a [u8],
    flags: u32,
    exptime: i64,
    data_len: usize,
    cas: u64,
    noreply: bool,
}

enum Line<'a> {
    Done(Request<'a>),
    Bad(ProtocolError),
    /// A storage line with a usable length but another bad field: its data
    /// block follows and is dropped.
    BadWithData(ProtocolError, u64),
    TooLarge {
        kind: StoreKind,
        key: &'a [u8],
        noreply: bool,
        data_len: u64,
    },
    Storage(StorageHead<'a>),
    /// An `ms` line; its data block follows.
    MetaSet {
        key: &'a [u8],
        flags: MetaFlags<'a>,
        data_len: usize,
    },
    MetaTooLarge {
        key: &'a [u8],
        flags: MetaFlags<'a>,
        data_len: u64,
    },
}

/// Splits off the next space-separated token (memcached separates by spaces only).
fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b' ')?;
    let s = &s[start..];
    let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// The tokens of a line, up to `N` of them; `None` if there are more.
fn tokens<const N: usize>(line: &[u8]) -> Option<([&[u8]; N], usize)> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    let mut rest = line;
    while let Some((tok, r)) = next_token(rest) {
        if n == N {
            return None;
        }
        out[n] = tok;
        n += 1;
        rest = r;
    }
    Some((out, n))
}

fn parse_line<'a>(line: &'a [u8], limits: &Limits) -> Line<'a> {
    let Some((cmd, rest)) = next_token(line) else { return Line::Bad(ProtocolError::UnknownCommand) };
    let store = |kind| parse_storage(kind, rest, limits);
    match cmd {
        b"get" => parse_retrieval(RetrieveKind::Get, rest),
        b"gets" => parse_retrieval(RetrieveKind::Gets, rest),
        b"gat" => parse_retrieval(RetrieveKind::Gat, rest),
        b"gats" => parse_retrieval(RetrieveKind::Gats, rest),
        b"set" => store(StoreKind::Set),
        b"add" => store(StoreKind::Add),
        b"replace" => store(StoreKind::Replace),
        b"append" => store(StoreKind::Append),
        b"prepend" => store(StoreKind::Prepend),
        b"cas" => store(StoreKind::Cas),
        b"mg" => parse_meta(MetaCommand::Get, rest, limits),
        b"ms" => parse_meta(MetaCommand::Set, rest, limits),
        b"md" => parse_meta(MetaCommand::Delete, rest, limits),
        b"ma" => parse_meta(MetaCommand::Arith, rest, limits),
        b"me" => parse_meta(MetaCommand::Debug, rest, limits),
        _ => parse_other(cmd, rest),
    }
}

fn parse_retrieval(kind: RetrieveKind, rest: &[u8]) -> Line<'_> {
    let mut rest = rest;
    let mut exptime = 0;
    if kind.touches() {
        let Some((tok, r)) = next_token(rest) else { return Line::Bad(ProtocolError::UnknownCommand) };
        let Some(t) = parse_i64(tok) else { return Line::Bad(ProtocolError::InvalidExptime) };
        exptime = t;
        rest = r;
    }
    if next_token(rest).is_none() {
        // memcached answers a get without keys as an unknown command.
        return Line::Bad(ProtocolError::UnknownCommand);
    }
    Line::Done(Request::Retrieve { kind, exptime, keys: Keys { rest } })
}

fn parse_storage<'a>(kind: StoreKind, rest: &'a [u8], limits: &Limits) -> Line<'a> {
    let want = if kind == StoreKind::Cas { 5 } else { 4 };
    let Some((t, n)) = tokens::<6>(rest) else { return Line::Bad(ProtocolError::BadFormat) };
    let noreply = n == want + 1 && t[want] == b"noreply";
    if n != want && !noreply {
        return Line::Bad(if n < want { ProtocolError::UnknownCommand } else { ProtocolError::BadFormat });
    }
    let Some(data_len) = parse_u64(t[3]).filter(|&l| l <= MAX_DECLARED_LEN) else {
        return Line::Bad(ProtocolError::BadFormat);
    };
    let key = t[0];
    let flags = parse_u64(t[1]).and_then(|f| u32::try_from(f).ok());
    let exptime = parse_i64(t[2]);
    let cas = if kind == StoreKind::Cas { parse_u64(t[4]) } else { Some(0) };
    let (Some(flags), Some(exptime), Some(cas), true) = (flags, exptime, cas, check_key(key)) else {
        return Line::BadWithData(ProtocolError::BadFormat, data_len);
    };
    if data_len > limits.max_item_size as u64 {
        return Line::TooLarge { kind, key, noreply, data_len };
    }
    // data_len <= max_item_size: a usize.
    let data_len = data_len as usize;
    Line::Storage(StorageHead { kind, key, flags, exptime, data_len, cas, noreply })
}

/// `mg`, `ms`, `md`, `ma`, `me`: the key, `ms`'s data length, then the flags.
fn parse_meta<'a>(command: MetaCommand, rest: &'a [u8], limits: &Limits) -> Line<'a> {
    let Some((key, mut rest)) = next_token(rest) else { return Line::Bad(ProtocolError::UnknownCommand) };
    let mut data_len = 0;
    if command == MetaCommand::Set {
        let Some((len, r)) = next_token(rest) else { return Line::Bad(ProtocolError::BadFormat) };
        let Some(len) = parse_u64(len).filter(|&l| l <= MAX_DECLARED_LEN) else {
            return Line::Bad(ProtocolError::BadFormat);
        };
        data_len = len;
        rest = r;
    }
    // A bad line of `ms` still has its data block, which is dropped.
    let bad = |error| if command == MetaCommand::Set { Line::BadWithData(error, data_len) } else { Line::Bad(error) };
    let flags = match meta_flags(command, rest) {
        Ok(flags) => flags,
        Err(error) => return bad(error),
    };
    // A base64 key is checked when it is decoded; it is no longer than a key either.
    if !(if flags.base64 { !key.is_empty() && key.len() <= MAX_KEY_LEN } else { check_key(key) }) {
        return bad(ProtocolError::BadFormat);
    }
    if command != MetaCommand::Set {
        return Line::Done(Request::Meta { command, key, flags, data: &[] });
    }
    if data_len > limits.max_item_size as u64 {
        return Line::MetaTooLarge { key, flags, data_len };
    }
    // data_len <= max_item_size: a usize.
    Line::MetaSet { key, flags, data_len: data_len as usize }
}

/// The flags of a meta request; see [`MetaFlags`].
fn meta_flags(command: MetaCommand, mut rest: &[u8]) -> Result<MetaFlags<'_>, ProtocolError> {
    use MetaCommand::{Arith, Debug, Delete, Get, Set};
    let mut flags = MetaFlags::new();
    if command == Debug {
        // `me` takes `b` and ignores anything else, as memcached.
        flags.base64 = next_token(rest).is_some_and(|(t, _)| t == b"b");
        return Ok(flags);
    }
    let mut seen = [false; 128];
    let mut count = 0;
    while let Some((token, r)) = next_token(rest) {
        rest = r;
        count += 1;
        if count > MAX_TOKENS {
            return Err(ProtocolError::BadFormat);
        }
        let [flag, arg @ ..] = token else { continue };
        let flag = *flag;
        if !flag.is_ascii() {
            return Err(ProtocolError::MetaInvalidFlag);
        }
        // P and L are hints for proxies, taken by every command and ignored.
        if matches!(flag, b'P' | b'L') {
            continue;
        }
        if std::mem::replace(&mut seen[usize::from(flag)], true) {
            return Err(ProtocolError::MetaDuplicateFlag);
        }
        let number = || parse_u64(arg).ok_or(ProtocolError::MetaBadToken);
        let exptime = || parse_i64(arg).ok_or(ProtocolError::MetaBadToken);
        let returned = match flag {
            b'b' => {
                flags.base64 = true;
                false
            }
            b'q' => {
                flags.quiet = true;
                false
            }
            b'k' | b'c' => true,
            b'O' => {
                if arg.is_empty() {
                    return Err(ProtocolError::MetaBadToken);
                }
                if arg.len() > MAX_OPAQUE_LEN {
                    return Err(ProtocolError::MetaOpaqueTooLong);
                }
                flags.opaque = Some(arg);
                true
            }
            b'f' | b's' | b'h' | b'l' if command == Get => true,
            b't' if matches!(command, Get | Arith) => true,
            b'v' if matches!(command, Get | Arith) => {
                flags.value = true;
                false
            }
            // "Do not bump the item in the LRU": keg's eviction keeps no LRU
            // order, so only the access is not counted for `h` and `l`.
            b'u' if command == Get => {
                flags.peek = true;
                false
            }
            b'T' => {
                flags.ttl = Some(exptime()?);
                false
            }
            b'C' if command != Get => {
                flags.compare = Some(number()?);
                false
            }
            b'F' if command == Set => {
                flags.client_flags = Some(u32::try_from(number()?).map_err(|_| ProtocolError::MetaBadToken)?);
                false
            }
            b'M' if command == Set => {
                flags.mode = match arg {
                    [] => return Err(ProtocolError::MetaBadToken),
                    [b'S' | b's'] => MetaMode::Set,
                    [b'E' | b'e'] => MetaMode::Add,
                    [b'R' | b'r'] => MetaMode::Replace,
                    [b'A' | b'a'] => MetaMode::Append,
                    [b'P' | b'p'] => MetaMode::Prepend,
                    _ => return Err(ProtocolError::MetaBadSetMode),
                };
                false
            }
            b'M' if command == Arith => {
                flags.decrement = match arg {
                    [] => return Err(ProtocolError::MetaBadToken),
                    [b'I' | b'i' | b'+'] => false,
                    [b'D' | b'd' | b'-'] => true,
                    _ => return Err(ProtocolError::MetaBadArithMode),
                };
                false
            }
            b'D' if command == Arith => {
                flags.delta = number()?;
                false
            }
            b'J' if command == Arith => {
                flags.initial = number()?;
                false
            }
            b'N' if matches!(command, Get | Arith) => {
                flags.vivify = Some(exptime()?);
                false
            }
            b'R' if command == Get => {
                flags.recache = Some(number()?);
                false
            }
            b'I' if matches!(command, Delete | Set) => {
                flags.invalidate = true;
                false
            }
            b'E' => return Err(ProtocolError::MetaUnsupportedFlag),
            b'x' if command == Delete => return Err(ProtocolError::MetaUnsupportedFlag),
            _ => return Err(ProtocolError::MetaInvalidFlag),
        };
        if returned {
            // Each return flag comes at most once (checked above), so they fit.
            flags.returns[usize::from(flags.returns_len)] = flag;
            flags.returns_len += 1;
        }
    }
    Ok(flags)
}

fn parse_other<'a>(cmd: &[u8], rest: &'a [u8]) -> Line<'a> {
    let Some((t, n)) = tokens::<MAX_TOKENS>(rest) else { return Line::Bad(ProtocolError::BadFormat) };
    let args = &t[..n];
    // A trailing "noreply" and the arguments before it.
    let (args, noreply) = match args.split_last() {
        Some((last, init)) if *last == b"noreply" => (init, true),
        _ => (args, false),
    };
    let keyed = |key: &[u8]| check_key(key);
    let req = match (cmd, args) {
        (b"delete", [key]) | (b"delete", [key, b"0"]) if keyed(key) => Request::Delete { key, noreply },
        (b"delete", [_]) | (b"delete", [_, b"0"]) => return Line::Bad(ProtocolError::BadFormat),
        (b"delete", [_, ..]) => return Line::Bad(ProtocolError::BadDeleteFormat),
        (b"incr" | b"decr", [key, delta]) => {
            if !keyed(key) {
                return Line::Bad(ProtocolError::BadFormat);
            }
            let Some(delta) = parse_u64(delta) else { return Line::Bad(ProtocolError::InvalidDelta) };
            Request::Arith { incr: cmd == b"incr", key, delta, noreply }
        }
        (b"touch", [key, exptime]) => {
            if !keyed(key) {
                return Line::Bad(ProtocolError::BadFormat);
            }
            let Some(exptime) = parse_i64(exptime) else { return Line::Bad(ProtocolError::InvalidExptime) };
            Request::Touch { key, exptime, noreply }
        }
        (b"flush_all", []) => Request::FlushAll { delay: 0, noreply },
        (b"flush_all", [delay]) => match parse_i64(delay).filter(|&d| d >= 0) {
            Some(delay) => Request::FlushAll { delay, noreply },
            None => return Line::Bad(ProtocolError::BadFormat),
        },
        (b"version", []) if !noreply => Request::Version,
        (b"quit", []) if !noreply => Request::Quit,
        (b"verbosity", [level]) => match parse_u64(level).and_then(|l| u32::try_from(l).ok()) {
            Some(level) => Request::Verbosity { level, noreply },
            None => return Line::Bad(ProtocolError::BadFormat),
        },
        (b"stats", _) => Request::Stats { group: trim_spaces(rest) },
        (b"mn", []) if !noreply => Request::MetaNoop,
        (b"delete" | b"incr" | b"decr" | b"touch" | b"flush_all" | b"verbosity", _) => {
            return Line::Bad(ProtocolError::UnknownCommand)
        }
        _ => return Line::Bad(ProtocolError::UnknownCommand),
    };
    Line::Done(req)
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// A decimal unsigned number: digits only, at most 20 of them, no overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|&d| d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A decimal signed number: an optional `-`, then as [`parse_u64`], within i64.
fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.strip_prefix(b"-") {
        Some(digits) => parse_u64(digits).and_then(|n| 0i64.checked_sub_unsigned(n)),
        None => parse_u64(s).and_then(|n| i64::try_from(n).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Parsed<'_> {
        parse(input, &Limits::default())
    }

    fn request(input: &[u8]) -> Request<'_> {
        match one(input) {
            Parsed::Request { len, request } => {
                assert_eq!(len, input.len(), "{:?}", String::from_utf8_lossy(input));
                request
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    fn invalid(input: &[u8]) -> (ProtocolError, u64) {
        match one(input) {
            Parsed::Invalid { len, error, skip } => {
                assert_eq!(len, input.len(), "{:?}", String::from_utf8_lossy(input));
                (error, skip)
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn storage_commands() {
        let r = request(b"set k 4294967295 -1 3\r\nabc\r\n");
        assert_eq!(
            r,
            Request::Store {
                kind: StoreKind::Set,
                key: b"k",
                flags: u32::MAX,
                exptime: -1,
                data: b"abc",
                cas: 0,
                noreply: false
            }
        );
        let r = request(b"cas k 1 2 0 99 noreply\r\n\r\n");
        assert!(matches!(r, Request::Store { kind: StoreKind::Cas, data: b"", cas: 99, noreply: true, .. }));
        for (cmd, kind) in [
            ("add", StoreKind::Add),
            ("replace", StoreKind::Replace),
            ("append", StoreKind::Append),
            ("prepend", StoreKind::Prepend),
        ] {
            let line = format!("{cmd} key 0 0 2\r\n\r\n\r\n");
            assert!(matches!(request(line.as_bytes()), Request::Store { kind: k, data: b"\r\n", .. } if k == kind));
        }
        // A bare \n ends a line too, as in memcached.
        assert!(matches!(request(b"set k 0 0 1\nx\r\n"), Request::Store { data: b"x", .. }));
    }

    #[test]
    fn storage_waits_for_its_data_block() {
        assert_eq!(one(b"set k 0 0 10\r\n"), Parsed::Incomplete { needed: Some(26) });
        assert_eq!(one(b"set k 0 0 10\r\n0123456789\r"), Parsed::Incomplete { needed: Some(26) });
        assert_eq!(one(b"set k 0 0"), Parsed::Incomplete { needed: None });
    }

    #[test]
    fn storage_errors() {
        // The block is taken as long as declared; what follows is the next request.
        assert_eq!(
            one(b"set k 0 0 3\r\nabcde\r\n"),
            Parsed::Invalid { len: 18, error: ProtocolError::BadDataChunk, skip: 0 }
        );
        assert_eq!(invalid(b"set k x 0 3\r\n"), (ProtocolError::BadFormat, 5));
        assert_eq!(invalid(b"set k 4294967296 0 3\r\n"), (ProtocolError::BadFormat, 5));
        assert_eq!(invalid(b"set k 0 zz 3\r\n"), (ProtocolError::BadFormat, 5));
        assert_eq!(invalid(b"set k 0 0 -3\r\n"), (ProtocolError::BadFormat, 0));
        assert_eq!(invalid(b"set k 0 0 99999999999\r\n"), (ProtocolError::BadFormat, 0));
        assert_eq!(invalid(b"set k 0 0\r\n"), (ProtocolError::UnknownCommand, 0));
        assert_eq!(invalid(b"set k 0 0 1 maybe\r\n"), (ProtocolError::BadFormat, 0));
        assert_eq!(invalid(b"cas k 0 0 1\r\n"), (ProtocolError::UnknownCommand, 0));
        let long_key = format!("set {} 0 0 1\r\n", "k".repeat(251));
        assert_eq!(invalid(long_key.as_bytes()), (ProtocolError::BadFormat, 3));
        assert_eq!(invalid(b"set k\x01ey 0 0 1\r\n"), (ProtocolError::BadFormat, 3));
    }

    #[test]
    fn oversized_item_is_skipped() {
        let limits = Limits { max_item_size: 10, ..Limits::default() };
        let r = parse(b"set k 0 0 11 noreply\r\n", &limits);
        assert_eq!(
            r,
            Parsed::Request {
                len: 22,
                request: Request::TooLarge { kind: StoreKind::Set, key: b"k", noreply: true, skip: 13 }
            }
        );
        assert!(matches!(parse(b"set k 0 0 10\r\n", &limits), Parsed::Incomplete { needed: Some(26) }));
    }

    #[test]
    fn retrieval_commands() {
        let Request::Retrieve { kind, exptime, keys } = request(b"get a  bb ccc\r\n") else { panic!() };
        assert_eq!((kind, exptime), (RetrieveKind::Get, 0));
        assert_eq!(keys.collect::<Vec<_>>(), vec![&b"a"[..], b"bb", b"ccc"]);
        let Request::Retrieve { kind, exptime, keys } = request(b"gats -5 k\r\n") else { panic!() };
        assert_eq!((kind, exptime, keys.count()), (RetrieveKind::Gats, -5, 1));
        assert_eq!(invalid(b"get\r\n").0, ProtocolError::UnknownCommand);
        assert_eq!(invalid(b"get  \r\n").0, ProtocolError::UnknownCommand);
        assert_eq!(invalid(b"gat x k\r\n").0, ProtocolError::InvalidExptime);
        assert_eq!(invalid(b"gat 10\r\n").0, ProtocolError::UnknownCommand);
    }

    #[test]
    fn other_commands() {
        assert_eq!(request(b"delete k\r\n"), Request::Delete { key: b"k", noreply: false });
        assert_eq!(request(b"delete k 0 noreply\r\n"), Request::Delete { key: b"k", noreply: true });
        assert_eq!(invalid(b"delete k 5\r\n").0, ProtocolError::BadDeleteFormat);
        assert_eq!(
            request(b"incr k 18446744073709551615\r\n"),
            Request::Arith { incr: true, key: b"k", delta: u64::MAX, noreply: false }
        );
        assert_eq!(invalid(b"decr k 18446744073709551616\r\n").0, ProtocolError::InvalidDelta);
        assert_eq!(invalid(b"incr k -1\r\n").0, ProtocolError::InvalidDelta);
        assert_eq!(request(b"touch k 10 noreply\r\n"), Request::Touch { key: b"k", exptime: 10, noreply: true });
        assert_eq!(invalid(b"touch k soon\r\n").0, ProtocolError::InvalidExptime);
        assert_eq!(request(b"flush_all\r\n"), Request::FlushAll { delay: 0, noreply: false });
        assert_eq!(request(b"flush_all 30 noreply\r\n"), Request::FlushAll { delay: 30, noreply: true });
        assert_eq!(request(b"flush_all noreply\r\n"), Request::FlushAll { delay: 0, noreply: true });
        assert_eq!(invalid(b"flush_all soon\r\n").0, ProtocolError::BadFormat);
        assert_eq!(request(b"version\r\n"), Request::Version);
        assert_eq!(request(b"verbosity 1\r\n"), Request::Verbosity { level: 1, noreply: false });
        assert_eq!(invalid(b"verbosity\r\n").0, ProtocolError::UnknownCommand);
        assert_eq!(request(b"quit\r\n"), Request::Quit);
        assert_eq!(request(b"stats\r\n"), Request::Stats { group: b"" });
        assert_eq!(request(b"stats  settings \r\n"), Request::Stats { group: b"settings" });
        assert_eq!(request(b"mn\r\n"), Request::MetaNoop);
        assert_eq!(invalid(b"\r\n").0, ProtocolError::UnknownCommand);
        assert_eq!(invalid(b"GET k\r\n").0, ProtocolError::UnknownCommand);
        assert_eq!(invalid(b"bogus\r\n").0, ProtocolError::UnknownCommand);
    }

    fn meta(input: &[u8]) -> (MetaCommand, &[u8], MetaFlags<'_>, &[u8]) {
        match request(input) {
            Request::Meta { command, key, flags, data } => (command, key, flags, data),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn meta_commands() {
        let (command, key, flags, data) = meta(b"mg foo t f v c k s O123 q u Pp L\r\n");
        assert_eq!((command, key, data), (MetaCommand::Get, &b"foo"[..], &b""[..]));
        assert_eq!(flags.returns(), b"tfcksO");
        assert!(flags.value && flags.quiet && !flags.base64);
        assert_eq!(flags.opaque, Some(&b"123"[..]));
        let (command, key, flags, data) = meta(b"ms k 3 MA F7 T-1 C99 b c\r\nabc\r\n");
        assert_eq!((command, key, data), (MetaCommand::Set, &b"k"[..], &b"abc"[..]));
        assert_eq!(
            (flags.mode, flags.client_flags, flags.ttl, flags.compare),
            (MetaMode::Append, Some(7), Some(-1), Some(99))
        );
        assert!(flags.base64);
        let (_, _, flags, _) = meta(b"ms k 0\r\n\r\n");
        assert_eq!((flags.mode, flags.client_flags, flags.ttl), (MetaMode::Set, None, None));
        let (command, _, flags, _) = meta(b"ma n N0 J10 D5 M- T30 v t c\r\n");
        assert_eq!(command, MetaCommand::Arith);
        assert_eq!((flags.vivify, flags.initial, flags.delta, flags.decrement), (Some(0), 10, 5, true));
        assert_eq!(flags.returns(), b"tc");
        let (_, _, flags, _) = meta(b"ma n\r\n");
        assert_eq!((flags.delta, flags.decrement, flags.vivify), (1, false, None));
        let (command, _, flags, _) = meta(b"md k C5 q k O1 T30 I\r\n");
        assert_eq!((command, flags.compare, flags.quiet, flags.invalidate), (MetaCommand::Delete, Some(5), true, true));
        let (_, _, flags, _) = meta(b"mg k N30 R10 v\r\n");
        assert_eq!((flags.vivify, flags.recache), (Some(30), Some(10)));
        // ms waits for its data block as a storage command does.
        assert_eq!(one(b"ms k 10 T5\r\n0123"), Parsed::Incomplete { needed: Some(24) });
    }

    #[test]
    fn meta_errors() {
        for (line, error) in [
            (&b"mg\r\n"[..], ProtocolError::UnknownCommand),
            (b"mg k zz\r\n", ProtocolError::MetaInvalidFlag),
            (b"mg k C1\r\n", ProtocolError::MetaInvalidFlag),
            (b"md k v\r\n", ProtocolError::MetaInvalidFlag),
            (b"mg k \xff\r\n", ProtocolError::MetaInvalidFlag),
            (b"mg k v v\r\n", ProtocolError::MetaDuplicateFlag),
            (b"mg k T\r\n", ProtocolError::MetaBadToken),
            (b"mg k T1x\r\n", ProtocolError::MetaBadToken),
            (b"mg k O\r\n", ProtocolError::MetaBadToken),
            (b"ma k J-1\r\n", ProtocolError::MetaBadToken),
            (b"ma k MX\r\n", ProtocolError::MetaBadArithMode),
            (b"mg k O123456789012345678901234567890123\r\n", ProtocolError::MetaOpaqueTooLong),
            (b"mg k E1\r\n", ProtocolError::MetaUnsupportedFlag),
            (b"mg k R-1\r\n", ProtocolError::MetaBadToken),
            (b"ma k I\r\n", ProtocolError::MetaInvalidFlag),
            (b"mg k\x01 v\r\n", ProtocolError::BadFormat),
            (b"ms k\r\n", ProtocolError::BadFormat),
            (b"ms k x\r\n", ProtocolError::BadFormat),
        ] {
            assert_eq!(invalid(line), (error, 0), "{:?}", String::from_utf8_lossy(line));
        }
        // Flags past the token limit.
        let many = format!("mg k{}\r\n", " P".repeat(MAX_TOKENS + 1));
        assert_eq!(invalid(many.as_bytes()).0, ProtocolError::BadFormat);
        // A bad ms line drops its data block.
        assert_eq!(invalid(b"ms k 3 MX\r\n"), (ProtocolError::MetaBadSetMode, 5));
        assert_eq!(invalid(b"ms k 3 F4294967296\r\n"), (ProtocolError::MetaBadToken, 5));
        assert_eq!(invalid(b"ms k 3 x\r\n"), (ProtocolError::MetaInvalidFlag, 5));
        // Over the item size: taken, to be dropped.
        let limits = Limits { max_item_size: 10, ..Limits::default() };
        let Parsed::Request { len: 12, request: Request::MetaTooLarge { key: b"k", skip: 13, .. } } =
            parse(b"ms k 11 MR\r\n", &limits)
        else {
            panic!("{:?}", parse(b"ms k 11 MR\r\n", &limits));
        };
    }

    #[test]
    fn line_limits() {
        let limits = Limits::default();
        let long = vec![b'x'; limits.max_line];
        assert_eq!(one(&long), Parsed::LineTooLong { len: limits.max_line });
        assert_eq!(one(&long[..limits.max_line - 1]), Parsed::Incomplete { needed: None });
        // A multi-key get may be longer than other lines.
        let mut get = b"get".to_vec();
        for i in 0..1000 {
            get.extend_from_slice(format!(" key:{i:06}").as_bytes());
        }
        get.extend_from_slice(b"\r\n");
        assert!(get.len() > limits.max_line);
        let Request::Retrieve { keys, .. } = request(&get) else { panic!() };
        assert_eq!(keys.count(), 1000);
        let mut huge = b"get ".to_vec();
        huge.resize(limits.max_retrieval_line, b'k');
        assert_eq!(one(&huge), Parsed::LineTooLong { len: limits.max_retrieval_line });
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b""[..], b"+1", b" 1", b"1a", b"18446744073709551616", b"000000000000000000001"] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"--1"), None);
    }
}
