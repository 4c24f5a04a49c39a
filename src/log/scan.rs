//! Walking the records of a segment's bytes in order.

use crate::format::record::{self, Record};
use crate::format::{segment, DecodeError};

/// One step of a scan.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    /// An intact record at `offset`.
    Record { offset: u64, record: Record<'a> },
    /// An intact record (its checksum matched) that this version does not
    /// understand; the scan steps over it.
    Unknown {
        offset: u64,
        len: u64,
        #[allow(dead_code)] // for tools that report why
        why: &'static str,
    },
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The bytes ended exactly after the last record.
    Clean,
    /// Bytes after `offset` do not form a record: a torn tail or damage.
    Bad { offset: u64, error: DecodeError },
}

/// Iterates over the records in `bytes`, a whole segment including its header.
///
/// Stops at the first record that does not decode; [`Scanner::end`] then says
/// why. It never reads past `bytes` and never resynchronises past damage: bytes
/// after a bad record could be the inside of a value, so only a hint file (which
/// lists record offsets under its own checksum) may reach beyond it.
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: u64,
    end: Option<End>,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Scanner<'a> {
        Scanner::starting_at(bytes, segment::HEADER_LEN as u64)
    }

    /// A scanner whose first record starts at `pos` (a record boundary).
    pub(crate) fn starting_at(bytes: &'a [u8], pos: u64) -> Scanner<'a> {
        Scanner { bytes, pos, end: None }
    }

    /// Where the next record would start: after a scan, the valid length.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Why the scan stopped (None until it has).
    pub(crate) fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.end.is_some() {
            return None;
        }
        let rest = self.bytes.get(self.pos as usize..).unwrap_or(&[]);
        if rest.is_empty() {
            self.end = Some(End::Clean);
            return None;
        }
        let offset = self.pos;
        match record::decode(rest) {
            Ok(record) => {
                self.pos += record.len();
                Some(Item::Record { offset, record })
            }
            Err(DecodeError::Invalid(why)) => {
                // The checksum matched, so the header's lengths are trustworthy.
                let len = record::decode_header(rest).map(|h| h.record_len()).unwrap_or(0);
                self.pos += len;
                Some(Item::Unknown { offset, len, why })
            }
            Err(error) => {
                self.end = Some(End::Bad { offset, error });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::Kind;

    fn segment_bytes(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; segment::HEADER_LEN];
        for (i, (k, v)) in records.iter().enumerate() {
            record::encode(&mut b, Kind::Value, i as u64 + 1, 0, k, v).unwrap();
        }
        b
    }

    #[test]
    fn scans_all_then_ends_clean() {
        let b = segment_bytes(&[(b"a", b"1"), (b"bb", b"22")]);
        let mut s = Scanner::new(&b);
        assert_eq!(s.by_ref().count(), 2);
        assert_eq!(s.end(), Some(&End::Clean));
        assert_eq!(s.position(), b.len() as u64);
    }

    #[test]
    fn torn_tail_stops_at_last_good_record() {
        let b = segment_bytes(&[(b"a", b"1"), (b"bb", b"22")]);
        for cut in segment::HEADER_LEN + 1..b.len() {
            let mut s = Scanner::new(&b[..cut]);
            let n = s.by_ref().count();
            let boundary = (segment::HEADER_LEN + record::HEADER_LEN + 2) as u64;
            assert_eq!(n, if cut as u64 >= boundary { 1 } else { 0 });
            if cut as u64 == boundary {
                assert_eq!(s.end(), Some(&End::Clean));
            } else {
                assert!(matches!(s.end(), Some(End::Bad { .. })), "cut {cut}");
            }
        }
    }
}
