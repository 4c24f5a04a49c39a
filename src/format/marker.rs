//! The `KEG` file: marks a directory as a keg cache (FORMAT.md, section 1).
//!
//! ```text
//! offset  width  field
//!      0      8  magic   8B 4B 45 47 44 49 52 0A  ("\x8bKEGDIR\n")
//!      8      9  format  the ASCII line "format 1\n"
//! ```
//!
//! 17 bytes in all. Written once, when keg creates the cache in an empty or
//! missing directory (or adopts a directory an older keg wrote without one),
//! through `KEG.tmp`, fsync and rename, then a directory fsync; never
//! rewritten after that.

use super::DecodeError;

/// Name of the marker file in a cache directory.
pub const FILE_NAME: &str = "KEG";
/// Magic bytes at the start of the marker.
pub const MAGIC: [u8; 8] = *b"\x8bKEGDIR\n";
/// The directory format this build writes and reads (the line after the magic).
pub const DIR_FORMAT: u16 = 1;
/// Longest marker a reader looks at: anything longer is not a marker.
pub const MAX_LEN: usize = 64;

/// The marker's bytes.
///
/// ```
/// assert_eq!(keg::format::marker::encode(), b"\x8bKEGDIR\nformat 1\n");
/// ```
pub fn encode() -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(format!("format {DIR_FORMAT}\n").as_bytes());
    b
}

/// Checks a marker; returns the directory format it names.
///
/// A marker naming another format is [`DecodeError::UnsupportedVersion`];
/// anything else that is not exactly the marker this build writes is refused.
///
/// ```
/// use keg::format::{marker, DecodeError};
/// assert_eq!(marker::decode(&marker::encode()), Ok(1));
/// assert!(matches!(marker::decode(b"\x8bKEGDIR\nformat 2\n"), Err(DecodeError::UnsupportedVersion { found: 2, .. })));
/// assert!(matches!(marker::decode(b"KEG"), Err(DecodeError::Truncated { .. })));
/// ```
pub fn decode(b: &[u8]) -> Result<u16, DecodeError> {
    if b.len() < MAGIC.len() {
        return Err(DecodeError::Truncated { needed: MAGIC.len() as u64, available: b.len() as u64 });
    }
    if b[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::BadMagic { what: "cache directory marker" });
    }
    let rest = &b[MAGIC.len()..];
    let line = rest.iter().position(|&c| c == b'\n').map(|end| &rest[..end]);
    let digits = line.and_then(|l| l.strip_prefix(b"format ")).ok_or(DecodeError::Invalid("marker format line"))?;
    let found = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) && !d.starts_with('0'))
        .and_then(|d| d.parse::<u16>().ok())
        .ok_or(DecodeError::Invalid("marker format line"))?;
    if found != DIR_FORMAT {
        return Err(DecodeError::UnsupportedVersion { found, supported: DIR_FORMAT });
    }
    if rest.len() != digits.len() + "format \n".len() {
        return Err(DecodeError::Invalid("bytes after the marker's format line"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_marker_decodes() {
        let good = encode();
        assert_eq!(good.len(), 17);
        assert_eq!(decode(&good), Ok(DIR_FORMAT));
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(decode(&bad), Ok(DIR_FORMAT), "bit {bit}");
        }
        let mut longer = good.clone();
        longer.push(b'x');
        assert!(decode(&longer).is_err());
        for bad in [&b"\x8bKEGDIR\nformat 01\n"[..], b"\x8bKEGDIR\nformat \n", b"\x8bKEGDIR\nformat 99999999\n"] {
            assert!(matches!(decode(bad), Err(DecodeError::Invalid(_))), "{bad:?}");
        }
    }
}
