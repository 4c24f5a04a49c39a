//! The error type: every way a keg call can fail, with what to do about it.

use std::io;
use std::path::PathBuf;

/// Result alias for keg operations.
///
/// ```
/// fn cached_len(cache: &keg::Cache, key: &[u8]) -> keg::Result<usize> {
///     Ok(cache.get(key)?.map_or(0, |v| v.len()))
/// }
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(cached_len(&keg::Cache::open(dir.path()).unwrap(), b"absent").unwrap(), 0);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a keg call.
///
/// Each message names the limit or file involved and says what to do.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// let err = cache.set(b"", b"value", None).unwrap_err();
/// assert!(matches!(err, keg::Error::EmptyKey));
/// println!("{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is empty.
    #[error("key is empty: keys must be 1 or more bytes long")]
    EmptyKey,
    /// A tag or namespace name is empty or longer than 250 bytes.
    #[error("{what} is {len} bytes: tags and namespaces must be 1 to {max} bytes")]
    BadName {
        /// "a tag" or "a namespace".
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An item was given more tags than one item may carry.
    #[error("{count} tags on one item, over the limit of {max}")]
    TooManyTags {
        /// How many were given.
        count: usize,
        /// The limit (8).
        max: usize,
    },
    /// The key is longer than the cache's `max_key_len`.
    #[error("key is {len} bytes, over this cache's limit of {max} bytes (set a larger max_key_len, up to 65535, or hash long keys to a digest)")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The value is larger than the cache can hold.
    #[error("value is {len} bytes, over this cache's limit of {max} bytes (set a larger max_value_len; a value must also fit in one segment)")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// Another `Cache` (in this or another process) holds the directory's lock.
    #[error("cache directory {} is locked: another process or another Cache in this process has it open; close that one, or open this one read-only", path.display())]
    Locked {
        /// The cache directory.
        path: PathBuf,
    },
    /// A file was written by a keg format version this build cannot read.
    #[error("{}: written in keg format version {found}, but this build reads only version {supported}; open it with a matching keg release, or clear the directory", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The path is not a keg cache directory or file: missing (a read-only
    /// open), not a directory, or a directory holding files keg does not
    /// write; `reason` names the first such file and what to do (FORMAT.md,
    /// section 1.2).
    #[error("{}: {reason}", path.display())]
    NotACache {
        /// The path.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("I/O error: {op} {}: {source}", path.display())]
    Io {
        /// What keg was doing: "open", "write", "fsync", ...
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The cache was opened read-only and the call would write.
    #[error("the cache at {} is open read-only; open it with Cache::open or Cache::builder().open to write", path.display())]
    ReadOnly {
        /// The cache directory.
        path: PathBuf,
    },
    /// A builder setting is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A write failed in a way that leaves its durability unknown, so writes stay off.
    #[error("writes are disabled after a failed {op} on {}: {reason}; reads still work; close and reopen the cache to recover", path.display())]
    WritesDisabled {
        /// The operation that failed.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// A write would need more space than the size cap allows even after eviction.
    #[error("no space: the write needs {needed} bytes but the cache's max_bytes cap of {cap} bytes cannot make room within {waited_ms} ms; raise max_bytes or write less")]
    NoSpace {
        /// Bytes the write needs.
        needed: u64,
        /// The configured cap.
        cap: u64,
        /// How long the writer waited for eviction.
        waited_ms: u64,
    },
    /// The next record would need a sequence number above the highest one
    /// open accepts (2^62): a file in the directory claims a number near it,
    /// which no cache reaches by writing (it would take 2^62 writes), only a
    /// damaged or hand-made file whose checksum matches. Reads still work;
    /// writing again takes a new, empty directory.
    #[error("{}: sequence numbers are exhausted (a record in this cache claims a number near 2^62, which only a damaged file reaches); reads still work; to write again, move the directory aside (or delete it) and start an empty cache", path.display())]
    SequenceExhausted {
        /// The cache directory.
        path: PathBuf,
    },
    /// `incr` or `decr` found a value that is not an unsigned decimal number
    /// (ASCII digits, at most 20, at most `u64::MAX`, trailing spaces allowed).
    #[error("the value of this key is not an unsigned 64-bit decimal number (incr and decr need ASCII digits, at most 20 of them); set it to a number first")]
    NotANumber,
    /// keg refused to write a record the format cannot hold (an empty key,
    /// say). Its own writes never ask for one; only bytes read off a damaged
    /// disk that some check failed to set aside could. Nothing was written.
    #[error("{0}; nothing was written and the stored data is unchanged; this is a bug in keg's handling of a damaged directory: please report it (keg verify DIR shows the damage)")]
    Unencodable(#[from] crate::format::record::EncodeError),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }
}
