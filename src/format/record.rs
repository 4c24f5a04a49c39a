//! One entry record: a value or a tombstone, framed and checksummed.
//!
//! ```text
//! offset  width  field
//!      0      4  crc32      CRC-32 of bytes [4, 28 + key_len + value_len)
//!      4      2  key_len    1 ..= 65535
//!      6      1  kind       1 = value, 2 = tombstone
//!      7      1  flags      bit 0: user flags follow the key; other bits 0
//!      8      4  value_len  0 for a tombstone; includes the 4 user-flag bytes
//!     12      8  seq        write sequence number, unique per logical write
//!     20      8  expires_ms absolute expiry, Unix milliseconds; 0 = never
//!     28  key_len  key
//!      …  value_len value: with flag bit 0, a u32 of user flags, then the data
//! ```
//!
//! User flags (the 32-bit word memcached clients keep their serialisation
//! format in) take 4 bytes only in records that have non-zero flags; a
//! record without bit 0 has user flags 0. Segment format version 1 never has
//! bit 0 set.
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

/// What a record says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The key maps to the record's value.
    Value,
    /// The key is deleted (as of the record's sequence number).
    Tombstone,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Value => 1,
            Kind::Tombstone => 2,
        }
    }
}

/// The fixed-size part of a record, decoded.
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
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + self.key_len as u64 + self.value_len as u64
    }

    /// The record kind, or `None` for a code version 1 does not define.
    pub fn kind(&self) -> Option<Kind> {
        match self.kind_code {
            1 => Some(Kind::Value),
            2 => Some(Kind::Tombstone),
            _ => None,
        }
    }
}

/// A decoded, checksum-verified record borrowing its key and value.
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
}

impl Record<'_> {
    /// Total bytes the record occupies on disk.
    pub fn len(&self) -> u64 {
        self.header.record_len()
    }

    /// Never true: a record always has at least a header and a key.
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
    let flagged = user_flags != 0;
    if key.is_empty() {
        return Err(EncodeError("empty key"));
    }
    if key.len() > u16::MAX as usize {
        return Err(EncodeError("key over 65535 bytes"));
    }
    let stored_len = value.len() + if flagged { 4 } else { 0 };
    if stored_len > u32::MAX as usize {
        return Err(EncodeError("value over 4 GiB"));
    }
    if kind == Kind::Tombstone && (!value.is_empty() || flagged) {
        return Err(EncodeError("tombstone with a value"));
    }
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.push(kind.code());
    out.push(if flagged { FLAG_USER_FLAGS } else { 0 });
    out.extend_from_slice(&(stored_len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&expires_ms.to_le_bytes());
    out.extend_from_slice(key);
    if flagged {
        out.extend_from_slice(&user_flags.to_le_bytes());
    }
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
    Ok(Record { header, kind, key: &buf[HEADER_LEN..key_end], value: &buf[value_start..total], user_flags })
}

/// Field checks that apply once the checksum has matched.
pub fn validate(header: &Header) -> Result<Kind, DecodeError> {
    if header.key_len == 0 {
        return Err(DecodeError::Invalid("key_len is 0"));
    }
    if header.flags & !FLAG_USER_FLAGS != 0 {
        return Err(DecodeError::Invalid("unknown record flags"));
    }
    if header.flags & FLAG_USER_FLAGS != 0 && (header.value_len < 4 || header.kind() != Some(Kind::Value)) {
        return Err(DecodeError::Invalid("user flags in a record with no room for them"));
    }
    match header.kind() {
        None => Err(DecodeError::Invalid("unknown record kind")),
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
