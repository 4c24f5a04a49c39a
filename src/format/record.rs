//! One entry record: a value or a tombstone, framed and checksummed.
//!
//! ```text
//! offset  width  field
//!      0      4  crc32      CRC-32 of bytes [4, 28 + key_len + value_len)
//!      4      2  key_len    1 ..= 65535
//!      6      1  kind       1 = value, 2 = tombstone, 3 = invalidation
//!      7      1  flags      bit 0: user flags; bit 1: tag list; bit 2: namespaced key; other bits 0
//!      8      4  value_len  0 for a tombstone or invalidation; includes user flags and tag list
//!     12      8  seq        write sequence number, unique per logical write
//!     20      8  expires_ms absolute expiry, Unix milliseconds; 0 = never
//!     28  key_len  key
//!      …  value_len value area: [u32 user flags, if bit 0] [tag list, if bit 1] [the value]
//! ```
//!
//! User flags (the 32-bit word memcached clients keep their serialisation
//! format in) take 4 bytes only in records that have non-zero flags; a
//! record without bit 0 has user flags 0. Segment format version 1 never has
//! bit 0, 1 or 2 set, nor kind 3.
//!
//! The tag list (bit 1, value records only) is a `u8` count (1 ..= 8), then
//! per tag a `u8` length (1 ..= 250) and the tag's bytes. A namespaced key
//! (bit 2, value records only) is a `u8` namespace length n (1 ..= 250), the
//! namespace's n bytes, then the caller's key (at least 1 byte).
//!
//! An invalidation record (kind 3) has flags 0, value_len 0, expires_ms 0,
//! and a key of a scope byte (1 = tag, 2 = namespace) and the name (1 ..=
//! 250 bytes): every value record carrying that tag (or in that namespace)
//! with a sequence number below the invalidation's is gone. [`decode`]
//! reports it as [`DecodeError::Invalid`] (it is no entry of a key: a
//! scanner steps over it like an unknown record); [`decode_invalidation`]
//! reads it.
//!
//! A record never spans two segments. Decoding checks the frame against the
//! bytes available before it computes the checksum, so a torn tail reads as
//! [`DecodeError::Truncated`] and a damaged record as
//! [`DecodeError::ChecksumMismatch`]; neither ever reads past the slice.

use super::{crc, u16_at, u32_at, u64_at, DecodeError};

/// Bytes in a record header (everything before the key).
pub const HEADER_LEN: usize = 28;

/// Record `flags` bit: the value begins with the item's 32-bit user flags
/// (little-endian), and [`Record::value`] is what follows them.
///
/// ```
/// use keg::format::record::{self, Kind, FLAG_USER_FLAGS};
/// let mut buf = Vec::new();
/// record::encode_with_flags(&mut buf, Kind::Value, 1, 0, b"k", 0xdead_beef, b"v").unwrap();
/// assert_eq!(buf[7], FLAG_USER_FLAGS);
/// ```
pub const FLAG_USER_FLAGS: u8 = 1;

/// Record `flags` bit: a tag list follows the user flags (if any) in the
/// value area (see the module docs for its bytes), and [`Record::value`] is
/// what follows it.
///
/// ```
/// use keg::format::record::{self, Kind, FLAG_TAGS};
/// let mut buf = Vec::new();
/// let tags = record::encode_tags(&[&b"author:7"[..]]).unwrap();
/// record::encode_full(&mut buf, Kind::Value, 1, 0, b"k", 0, &tags, false, b"v").unwrap();
/// assert_eq!(buf[7], FLAG_TAGS);
/// let rec = record::decode(&buf).unwrap();
/// assert_eq!(rec.value, b"v");
/// assert_eq!(record::tags(rec.tags).collect::<Vec<_>>(), vec![&b"author:7"[..]]);
/// ```
pub const FLAG_TAGS: u8 = 2;

/// Record `flags` bit: the key is namespaced: a `u8` namespace length n, the
/// namespace's n bytes, then the caller's key (see [`namespace_of`]).
///
/// ```
/// use keg::format::record::{self, Kind, FLAG_NAMESPACED};
/// let mut buf = Vec::new();
/// record::encode_full(&mut buf, Kind::Value, 1, 0, b"\x02nsk", 0, &[], true, b"v").unwrap();
/// assert_eq!(buf[7], FLAG_NAMESPACED);
/// assert_eq!(record::namespace_of(record::decode(&buf).unwrap().key), Some(&b"ns"[..]));
/// ```
pub const FLAG_NAMESPACED: u8 = 4;

const KNOWN_FLAGS: u8 = FLAG_USER_FLAGS | FLAG_TAGS | FLAG_NAMESPACED;

/// At most this many tags per item.
///
/// ```
/// assert_eq!(keg::format::record::MAX_TAGS, 8);
/// ```
pub const MAX_TAGS: usize = 8;

/// A tag, a namespace name, or an invalidation's name is 1 to this many bytes.
///
/// ```
/// assert_eq!(keg::format::record::MAX_NAME_LEN, 250);
/// ```
pub const MAX_NAME_LEN: usize = 250;

/// The scope byte of an invalidation record's key: what the name names.
///
/// ```
/// use keg::format::record::Scope;
/// assert_eq!(Scope::from_code(1), Some(Scope::Tag));
/// assert_eq!(Scope::Namespace.code(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Items carrying the tag.
    Tag,
    /// Items in the namespace.
    Namespace,
}

impl Scope {
    /// The byte that stands for it.
    ///
    /// ```
    /// assert_eq!(keg::format::record::Scope::Tag.code(), 1);
    /// ```
    pub fn code(self) -> u8 {
        match self {
            Scope::Tag => 1,
            Scope::Namespace => 2,
        }
    }

    /// The scope a byte stands for, if any.
    ///
    /// ```
    /// assert_eq!(keg::format::record::Scope::from_code(3), None);
    /// ```
    pub fn from_code(code: u8) -> Option<Scope> {
        match code {
            1 => Some(Scope::Tag),
            2 => Some(Scope::Namespace),
            _ => None,
        }
    }
}

/// A decoded invalidation record (kind 3): every value record in `scope`
/// `name` with a sequence number below `seq` is gone.
///
/// ```
/// use keg::format::record::{self, Kind, Scope};
/// let mut buf = Vec::new();
/// record::encode_full(&mut buf, Kind::Invalidation, 5, 0, &[1, b't'], 0, &[], false, b"").unwrap();
/// let inv = record::decode_invalidation(&buf).unwrap();
/// assert_eq!((inv.scope, inv.name, inv.key, inv.len), (Scope::Tag, &b"t"[..], &[1, b't'][..], 30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalidation<'a> {
    /// What `name` names.
    pub scope: Scope,
    /// The tag or namespace.
    pub name: &'a [u8],
    /// The record's sequence number.
    pub seq: u64,
    /// The whole key (scope byte and name).
    pub key: &'a [u8],
    /// Bytes the record occupies.
    pub len: u64,
}

/// The key of an invalidation record of `scope` `name`.
///
/// ```
/// use keg::format::record::{self, Scope};
/// assert_eq!(record::invalidation_key(Scope::Tag, b"t"), vec![1, b't']);
/// ```
pub fn invalidation_key(scope: Scope, name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(scope.code());
    key.extend_from_slice(name);
    key
}

/// Encodes a tag list (count, then length-prefixed tags); an empty list
/// encodes as no bytes. Refuses more than [`MAX_TAGS`] tags, an empty tag or
/// one over [`MAX_NAME_LEN`] bytes.
///
/// ```
/// use keg::format::record;
/// assert_eq!(record::encode_tags(&[&b"a"[..], b"bc"]).unwrap(), vec![2, 1, b'a', 2, b'b', b'c']);
/// assert!(record::encode_tags(&[&b""[..]]).is_err());
/// ```
pub fn encode_tags<T: AsRef<[u8]>>(tags: &[T]) -> Result<Vec<u8>, EncodeError> {
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    if tags.len() > MAX_TAGS {
        return Err(EncodeError("more than 8 tags"));
    }
    let mut out = vec![tags.len() as u8];
    for t in tags {
        let t = t.as_ref();
        if t.is_empty() || t.len() > MAX_NAME_LEN {
            return Err(EncodeError("a tag must be 1 to 250 bytes"));
        }
        out.push(t.len() as u8);
        out.extend_from_slice(t);
    }
    Ok(out)
}

/// The tags of an encoded tag list (as [`Record::tags`] holds it; empty:
/// none). The list must be one [`decode`] accepted or [`encode_tags`] made;
/// iteration stops at the first malformed entry of anything else.
///
/// ```
/// let list = keg::format::record::encode_tags(&["x", "y"]).unwrap();
/// assert_eq!(keg::format::record::tags(&list).count(), 2);
/// ```
pub fn tags(list: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = list.get(1..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let (&len, tail) = rest.split_first()?;
        let tag = tail.get(..len as usize)?;
        rest = &tail[len as usize..];
        Some(tag)
    })
}

/// Length of the well-formed tag list at the start of `area`, if there is one.
fn tag_list_len(area: &[u8]) -> Option<usize> {
    let (&count, mut rest) = area.split_first()?;
    if count == 0 || count as usize > MAX_TAGS {
        return None;
    }
    let mut len = 1;
    for _ in 0..count {
        let (&n, tail) = rest.split_first()?;
        if n == 0 || n as usize > MAX_NAME_LEN || tail.len() < n as usize {
            return None;
        }
        rest = &tail[n as usize..];
        len += 1 + n as usize;
    }
    Some(len)
}

/// The namespace of a namespaced key (one whose record has
/// [`FLAG_NAMESPACED`]): its bytes after the length byte; `None` if the key
/// is not well formed as one.
///
/// ```
/// assert_eq!(keg::format::record::namespace_of(b"\x01ak"), Some(&b"a"[..]));
/// assert_eq!(keg::format::record::namespace_of(b"\x05a"), None);
/// ```
pub fn namespace_of(key: &[u8]) -> Option<&[u8]> {
    let (&n, rest) = key.split_first()?;
    (n >= 1 && n as usize <= MAX_NAME_LEN && rest.len() > n as usize).then(|| &rest[..n as usize])
}

/// What a record says about its key.
///
/// ```
/// use keg::format::record::{self, Kind};
/// let mut buf = Vec::new();
/// record::encode(&mut buf, Kind::Tombstone, 3, 0, b"gone", b"").unwrap();
/// assert_eq!(record::decode(&buf).unwrap().kind, Kind::Tombstone);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The key maps to the record's value.
    Value,
    /// The key is deleted (as of the record's sequence number).
    Tombstone,
    /// Every value record in a tag or namespace (the key: a [`Scope`] byte
    /// and the name) older than the record is gone. [`decode`] never
    /// returns one (see [`decode_invalidation`]).
    Invalidation,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Value => 1,
            Kind::Tombstone => 2,
            Kind::Invalidation => 3,
        }
    }
}

/// The fixed-size part of a record, decoded.
///
/// ```
/// use keg::format::record::{self, Kind};
/// let mut buf = Vec::new();
/// record::encode(&mut buf, Kind::Value, 42, 1_700_000_000_000, b"k", b"v").unwrap();
/// let h = record::decode_header(&buf).unwrap();
/// assert_eq!((h.seq, h.expires_ms, h.key_len, h.value_len), (42, 1_700_000_000_000, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The stored checksum.
    pub crc: u32,
    /// Key length in bytes.
    pub key_len: u16,
    /// Raw kind byte (see [`Kind`]); kept raw so that a scanner can report unknown kinds.
    pub kind_code: u8,
    /// Raw flags byte.
    pub flags: u8,
    /// Value length in bytes.
    pub value_len: u32,
    /// Sequence number.
    pub seq: u64,
    /// Absolute expiry in Unix milliseconds, 0 for none.
    pub expires_ms: u64,
}

impl Header {
    /// Total record length: header, key and value.
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, Kind::Value, 1, 0, b"key", b"value").unwrap();
    /// assert_eq!(record::decode_header(&buf).unwrap().record_len(), buf.len() as u64);
    /// ```
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + self.key_len as u64 + self.value_len as u64
    }

    /// The record kind, or `None` for a code version 1 does not define.
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, Kind::Value, 1, 0, b"k", b"v").unwrap();
    /// let mut h = record::decode_header(&buf).unwrap();
    /// assert_eq!(h.kind(), Some(Kind::Value));
    /// h.kind_code = 9;
    /// assert_eq!(h.kind(), None);
    /// ```
    pub fn kind(&self) -> Option<Kind> {
        match self.kind_code {
            1 => Some(Kind::Value),
            2 => Some(Kind::Tombstone),
            3 => Some(Kind::Invalidation),
            _ => None,
        }
    }
}

/// A decoded, checksum-verified record borrowing its key and value.
///
/// ```
/// use keg::format::record::{self, Kind};
/// let mut buf = Vec::new();
/// record::encode(&mut buf, Kind::Value, 7, 0, b"user:1", b"alice").unwrap();
/// let r = record::decode(&buf).unwrap();
/// assert_eq!((r.key, r.value, r.header.seq), (&b"user:1"[..], &b"alice"[..], 7));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The decoded header.
    pub header: Header,
    /// Value or tombstone.
    pub kind: Kind,
    /// The key bytes.
    pub key: &'a [u8],
    /// The value bytes (empty for a tombstone), without the user flags.
    pub value: &'a [u8],
    /// The user flags (0 when the record carries none).
    pub user_flags: u32,
    /// The encoded tag list (empty when the record carries none; see [`tags`]).
    pub tags: &'a [u8],
}

impl Record<'_> {
    /// Whether the key is namespaced ([`FLAG_NAMESPACED`]).
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, Kind::Value, 1, 0, b"\x01nk", b"v").unwrap();
    /// assert!(!record::decode(&buf).unwrap().namespaced()); // (the same bytes, as a plain key)
    /// ```
    pub fn namespaced(&self) -> bool {
        self.header.flags & FLAG_NAMESPACED != 0
    }
}

impl Record<'_> {
    /// Total bytes the record occupies on disk.
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, Kind::Value, 1, 0, b"k", b"v").unwrap();
    /// buf.extend_from_slice(b"the next record starts here");
    /// assert_eq!(record::decode(&buf).unwrap().len(), record::encoded_len(1, 1) as u64);
    /// ```
    pub fn len(&self) -> u64 {
        self.header.record_len()
    }

    /// Never true: a record always has at least a header and a key.
    ///
    /// ```
    /// use keg::format::record::{self, Kind};
    /// let mut buf = Vec::new();
    /// record::encode(&mut buf, Kind::Tombstone, 1, 0, b"k", b"").unwrap();
    /// assert!(!record::decode(&buf).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Total on-disk length of a record with these key and value lengths.
///
/// ```
/// assert_eq!(keg::format::record::encoded_len(3, 5), 36);
/// ```
pub fn encoded_len(key_len: usize, value_len: usize) -> usize {
    HEADER_LEN + key_len + value_len
}

/// Appends the encoding of one record to `out`.
///
/// Refuses, writing nothing, a record the format cannot hold or a reader
/// would reject: an empty key or one over 65535 bytes, a value over
/// `u32::MAX` bytes, a tombstone with a value. keg's own writes never ask for
/// one (the API checks keys and values, and what the engine copies it took
/// from records that decoded); a refusal is reported as an error, never a
/// panic, so that no bytes read off a damaged disk can take the process down.
///
/// ```
/// use keg::format::record::{self, Kind};
/// let mut buf = Vec::new();
/// record::encode(&mut buf, Kind::Value, 7, 0, b"k", b"v").unwrap();
/// let rec = record::decode(&buf).unwrap();
/// assert_eq!((rec.key, rec.value, rec.header.seq), (&b"k"[..], &b"v"[..], 7));
/// assert!(record::encode(&mut buf, Kind::Tombstone, 8, 0, b"", b"").is_err());
/// ```
pub fn encode(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u64,
    expires_ms: u64,
    key: &[u8],
    value: &[u8],
) -> Result<(), EncodeError> {
    encode_with_flags(out, kind, seq, expires_ms, key, 0, value)
}

/// [`encode`] with user flags: a value record whose `user_flags` are not 0
/// stores them in 4 bytes before the value (see [`FLAG_USER_FLAGS`]); with
/// flags 0 the bytes are exactly [`encode`]'s.
///
/// ```
/// use keg::format::record::{self, Kind};
/// let mut buf = Vec::new();
/// record::encode_with_flags(&mut buf, Kind::Value, 3, 0, b"k", 42, b"data").unwrap();
/// let rec = record::decode(&buf).unwrap();
/// assert_eq!((rec.user_flags, rec.value), (42, &b"data"[..]));
/// assert_eq!(buf.len(), record::encoded_len(1, 4) + 4);
/// ```
pub fn encode_with_flags(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u64,
    expires_ms: u64,
    key: &[u8],
    user_flags: u32,
    value: &[u8],
) -> Result<(), EncodeError> {
    encode_full(out, kind, seq, expires_ms, key, user_flags, &[], false, value)
}

/// [`encode_with_flags`] with a tag list (`tags`, as [`encode_tags`] makes
/// it; empty for none) and the namespaced-key bit; an invalidation record
/// when `kind` is [`Kind::Invalidation`] (then `key` is a scope byte and a
/// name, and there is no value, flags or tags).
///
/// ```
/// use keg::format::record::{self, Kind, Scope};
/// let mut buf = Vec::new();
/// let key = record::invalidation_key(Scope::Tag, b"author:7");
/// record::encode_full(&mut buf, Kind::Invalidation, 9, 0, &key, 0, &[], false, b"").unwrap();
/// let inv = record::decode_invalidation(&buf).unwrap();
/// assert_eq!((inv.scope, inv.name, inv.seq), (Scope::Tag, &b"author:7"[..], 9));
/// assert!(record::decode(&buf).is_err());
/// ```
#[allow(clippy::too_many_arguments)]
pub fn encode_full(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u64,
    expires_ms: u64,
    key: &[u8],
    user_flags: u32,
    tags: &[u8],
    namespaced: bool,
    value: &[u8],
) -> Result<(), EncodeError> {
    let flagged = user_flags != 0;
    if !tags.is_empty() && (kind != Kind::Value || tag_list_len(tags) != Some(tags.len())) {
        return Err(EncodeError("a malformed tag list"));
    }
    if namespaced && (kind != Kind::Value || namespace_of(key).is_none()) {
        return Err(EncodeError("a malformed namespaced key"));
    }
    if kind == Kind::Invalidation && (flagged || !value.is_empty() || expires_ms != 0 || !valid_invalidation_key(key)) {
        return Err(EncodeError("a malformed invalidation record"));
    }
    if key.is_empty() {
        return Err(EncodeError("empty key"));
    }
    if key.len() > u16::MAX as usize {
        return Err(EncodeError("key over 65535 bytes"));
    }
    let stored_len = value.len() + if flagged { 4 } else { 0 } + tags.len();
    if stored_len > u32::MAX as usize {
        return Err(EncodeError("value over 4 GiB"));
    }
    if kind == Kind::Tombstone && (!value.is_empty() || flagged) {
        return Err(EncodeError("tombstone with a value"));
    }
    let mut flags = if flagged { FLAG_USER_FLAGS } else { 0 };
    if !tags.is_empty() {
        flags |= FLAG_TAGS;
    }
    if namespaced {
        flags |= FLAG_NAMESPACED;
    }
    // The header is built in place and the buffer grown once (every set
    // encodes a record: one capacity check instead of one a field).
    let mut header = [0u8; HEADER_LEN];
    header[4..6].copy_from_slice(&(key.len() as u16).to_le_bytes());
    header[6] = kind.code();
    header[7] = flags;
    header[8..12].copy_from_slice(&(stored_len as u32).to_le_bytes());
    header[12..20].copy_from_slice(&seq.to_le_bytes());
    header[20..28].copy_from_slice(&expires_ms.to_le_bytes());
    let start = out.len();
    out.reserve(HEADER_LEN + key.len() + stored_len);
    out.extend_from_slice(&header);
    out.extend_from_slice(key);
    if flagged {
        out.extend_from_slice(&user_flags.to_le_bytes());
    }
    out.extend_from_slice(tags);
    out.extend_from_slice(value);
    let sum = crc(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// Why [`encode`] refused a record: the field that the format cannot hold.
///
/// ```
/// use keg::format::record::{self, Kind};
/// let err = record::encode(&mut Vec::new(), Kind::Value, 1, 0, b"", b"v").unwrap_err();
/// assert_eq!(err.to_string(), "cannot encode a record: empty key");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode a record: {0}")]
pub struct EncodeError(pub &'static str);

/// Decodes the fixed header at the start of `buf` without checking the checksum.
///
/// ```
/// use keg::format::record;
/// let mut buf = Vec::new();
/// record::encode(&mut buf, record::Kind::Tombstone, 9, 0, b"gone", b"").unwrap();
/// assert_eq!(record::decode_header(&buf).unwrap().key_len, 4);
/// ```
pub fn decode_header(buf: &[u8]) -> Result<Header, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { needed: HEADER_LEN as u64, available: buf.len() as u64 });
    }
    Ok(Header {
        crc: u32_at(buf, 0),
        key_len: u16_at(buf, 4),
        kind_code: buf[6],
        flags: buf[7],
        value_len: u32_at(buf, 8),
        seq: u64_at(buf, 12),
        expires_ms: u64_at(buf, 20),
    })
}

/// Decodes and verifies the record at the start of `buf`.
///
/// Checks, in order: enough bytes for the header; enough bytes for the key and
/// value the header declares; the checksum; then the fields (`key_len` ≥ 1,
/// a known kind, zero flags, an empty tombstone value). Only the last group can
/// fail with [`DecodeError::Invalid`]: such a record is intact but not one this
/// version writes, and a scanner may step over it using its length.
///
/// ```
/// use keg::format::{record, DecodeError};
/// let mut buf = Vec::new();
/// record::encode(&mut buf, record::Kind::Value, 1, 0, b"key", b"value").unwrap();
/// buf[30] ^= 1; // damage the key
/// assert!(matches!(record::decode(&buf), Err(DecodeError::ChecksumMismatch { .. })));
/// ```
pub fn decode(buf: &[u8]) -> Result<Record<'_>, DecodeError> {
    let header = decode_header(buf)?;
    let total = header.record_len();
    if total > buf.len() as u64 {
        return Err(DecodeError::Truncated { needed: total, available: buf.len() as u64 });
    }
    let total = total as usize;
    let computed = crc(&buf[4..total]);
    if computed != header.crc {
        return Err(DecodeError::ChecksumMismatch { stored: header.crc, computed });
    }
    let kind = validate(&header)?;
    let key_end = HEADER_LEN + header.key_len as usize;
    let (user_flags, value_start) = if header.flags & FLAG_USER_FLAGS != 0 {
        let flags = u32_at(buf, key_end);
        if flags == 0 {
            // (keg stores flags only when they are not 0: one encoding per record.)
            return Err(DecodeError::Invalid("user flags of 0 stored explicitly"));
        }
        (flags, key_end + 4)
    } else {
        (0, key_end)
    };
    let key = &buf[HEADER_LEN..key_end];
    let (tags, value_start) = if header.flags & FLAG_TAGS != 0 {
        let len = tag_list_len(&buf[value_start..total]).ok_or(DecodeError::Invalid("a malformed tag list"))?;
        (&buf[value_start..value_start + len], value_start + len)
    } else {
        (&buf[..0], value_start)
    };
    if header.flags & FLAG_NAMESPACED != 0 && namespace_of(key).is_none() {
        return Err(DecodeError::Invalid("a malformed namespaced key"));
    }
    Ok(Record { header, kind, key, value: &buf[value_start..total], user_flags, tags })
}

/// What [`decode`] says of an intact invalidation record.
///
/// ```
/// use keg::format::{record::{self, Kind}, DecodeError};
/// let mut buf = Vec::new();
/// record::encode_full(&mut buf, Kind::Invalidation, 5, 0, &[2, b'n'], 0, &[], false, b"").unwrap();
/// assert_eq!(record::decode(&buf), Err(DecodeError::Invalid(record::INVALIDATION_RECORD)));
/// ```
pub const INVALIDATION_RECORD: &str = "an invalidation record (kind 3), not an entry of a key";

fn valid_invalidation_key(key: &[u8]) -> bool {
    key.len() >= 2 && key.len() <= 1 + MAX_NAME_LEN && Scope::from_code(key[0]).is_some()
}

/// Decodes and verifies the invalidation record (kind 3) at the start of
/// `buf`. Fails as [`decode`] does on short or damaged bytes, and with
/// [`DecodeError::Invalid`] for any other record, or an invalidation record
/// with flags, a value, an expiry, an unknown scope or a bad name length.
///
/// ```
/// use keg::format::record::{self, Kind, Scope};
/// let mut buf = Vec::new();
/// let key = record::invalidation_key(Scope::Namespace, b"blog:v2");
/// record::encode_full(&mut buf, Kind::Invalidation, 4, 0, &key, 0, &[], false, b"").unwrap();
/// assert_eq!(record::decode_invalidation(&buf).unwrap().scope, Scope::Namespace);
/// ```
pub fn decode_invalidation(buf: &[u8]) -> Result<Invalidation<'_>, DecodeError> {
    let header = decode_header(buf)?;
    let total = header.record_len();
    if total > buf.len() as u64 {
        return Err(DecodeError::Truncated { needed: total, available: buf.len() as u64 });
    }
    let computed = crc(&buf[4..total as usize]);
    if computed != header.crc {
        return Err(DecodeError::ChecksumMismatch { stored: header.crc, computed });
    }
    let key = &buf[HEADER_LEN..HEADER_LEN + header.key_len as usize];
    if header.kind() != Some(Kind::Invalidation)
        || header.flags != 0
        || header.value_len != 0
        || header.expires_ms != 0
        || !valid_invalidation_key(key)
    {
        return Err(DecodeError::Invalid("not a well-formed invalidation record"));
    }
    let scope = Scope::from_code(key[0]).expect("checked");
    Ok(Invalidation { scope, name: &key[1..], seq: header.seq, key, len: total })
}

/// Field checks that apply once the checksum has matched.
///
/// ```
/// use keg::format::{record::{self, Kind}, DecodeError};
/// let mut buf = Vec::new();
/// record::encode(&mut buf, Kind::Value, 1, 0, b"k", b"v").unwrap();
/// let mut h = record::decode_header(&buf).unwrap();
/// assert_eq!(record::validate(&h).unwrap(), Kind::Value);
/// h.kind_code = 9;
/// assert!(matches!(record::validate(&h), Err(DecodeError::Invalid(_))));
/// ```
pub fn validate(header: &Header) -> Result<Kind, DecodeError> {
    if header.key_len == 0 {
        return Err(DecodeError::Invalid("key_len is 0"));
    }
    if header.flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::Invalid("unknown record flags"));
    }
    if header.flags & FLAG_USER_FLAGS != 0 && (header.value_len < 4 || header.kind() != Some(Kind::Value)) {
        return Err(DecodeError::Invalid("user flags in a record with no room for them"));
    }
    if header.flags & (FLAG_TAGS | FLAG_NAMESPACED) != 0 && header.kind() != Some(Kind::Value) {
        return Err(DecodeError::Invalid("tags or a namespace on a record that is not a value"));
    }
    match header.kind() {
        None => Err(DecodeError::Invalid("unknown record kind")),
        Some(Kind::Invalidation) => Err(DecodeError::Invalid(INVALIDATION_RECORD)),
        Some(Kind::Tombstone) if header.value_len != 0 => Err(DecodeError::Invalid("tombstone with a value")),
        Some(kind) => Ok(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_value_and_tombstone() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Value, u64::MAX, 1234, b"a", &[7; 300]).unwrap();
        let first = decode(&buf).unwrap().len() as usize;
        encode(&mut buf, Kind::Tombstone, 2, 0, &[0xff; 10], b"").unwrap();
        let a = decode(&buf).unwrap();
        assert_eq!((a.kind, a.header.seq, a.header.expires_ms, a.value.len()), (Kind::Value, u64::MAX, 1234, 300));
        let b = decode(&buf[first..]).unwrap();
        assert_eq!((b.kind, b.key, b.value), (Kind::Tombstone, &[0xff; 10][..], &b""[..]));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Value, 5, 99, b"key", b"value").unwrap();
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Value, 5, 0, b"key", b"value").unwrap();
        for cut in 0..buf.len() {
            assert!(matches!(decode(&buf[..cut]), Err(DecodeError::Truncated { .. })), "cut at {cut}");
        }
    }

    #[test]
    fn zeroed_bytes_are_not_a_record() {
        assert!(matches!(decode(&[0u8; 64]), Err(DecodeError::ChecksumMismatch { .. })));
    }

    #[test]
    fn intact_record_with_unknown_kind_is_invalid_not_corrupt() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Value, 5, 0, b"key", b"value").unwrap();
        buf[6] = 9;
        let sum = crc(&buf[4..]);
        buf[..4].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(decode(&buf), Err(DecodeError::Invalid("unknown record kind")));
    }
}
