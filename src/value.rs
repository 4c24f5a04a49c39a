//! The value handle `get` returns.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::log::SegmentRef;

/// A cached value, borrowed straight from the segment's memory map.
///
/// `Value` dereferences to `&[u8]` without copying. It keeps its segment's
/// mapping alive, so the bytes stay valid even if compaction or eviction
/// removes the segment file while the handle is held. Holding many handles to
/// removed segments keeps their disk space allocated until they are dropped.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// cache.set(b"greeting", b"hello", None).unwrap();
/// let v: keg::Value = cache.get(b"greeting").unwrap().unwrap();
/// assert_eq!(&*v, b"hello");
/// assert_eq!(v.len(), 5);
/// ```
#[derive(Clone)]
pub struct Value {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Mapped {
        seg: SegmentRef,
        start: usize,
        len: usize,
    },
    /// A copy, for the rare value that is not in any file: acknowledged in
    /// buffered mode but never written because the write failed.
    Owned(Arc<[u8]>),
}

impl Value {
    pub(crate) fn mapped(seg: SegmentRef, start: usize, len: usize) -> Value {
        Value { repr: Repr::Mapped { seg, start, len } }
    }

    pub(crate) fn owned(bytes: &[u8]) -> Value {
        Value { repr: Repr::Owned(bytes.into()) }
    }

    /// Copies the value into a `Vec`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// assert_eq!(cache.get(b"k").unwrap().unwrap().to_vec(), b"v".to_vec());
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        self.deref().to_vec()
    }
}

impl Deref for Value {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Mapped { seg, start, len } => seg.slice(*start, *len),
            Repr::Owned(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        self.deref() == other
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        self.deref() == *other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Value {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.deref() == &other[..]
    }
}

impl PartialEq<Vec<u8>> for Value {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.deref() == &other[..]
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: &[u8] = self;
        match std::str::from_utf8(bytes) {
            Ok(s) if s.len() <= 64 => write!(f, "Value({s:?})"),
            _ => write!(f, "Value({} bytes)", bytes.len()),
        }
    }
}
