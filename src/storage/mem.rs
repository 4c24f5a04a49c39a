//! In-memory file contents for the simulator's memory mode: a file's bytes
//! and the read-only mappings of it that segments hold.
//!
//! A mapping is a fixed buffer of the length asked for, like an `mmap` of a
//! file at a length past its end: every write to the file lands in its
//! mappings too (as with `MAP_SHARED`), so a segment mapped at its capacity
//! before it is written reads what is appended later. Readers touch only
//! bytes written before they were published (the contract `log::segment`
//! keeps with the real mapping), so a write never changes bytes a reader
//! reads at the same time.

use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Weak};

/// A buffer that stands in for a memory mapping. Its address never moves.
pub(crate) struct MapBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain bytes owned by this value; concurrent access
// follows the mapping contract above (writers and readers touch disjoint
// bytes), exactly as with a shared `mmap`.
unsafe impl Send for MapBuf {}
// SAFETY: as for `Send`.
unsafe impl Sync for MapBuf {}

impl MapBuf {
    fn new(len: usize) -> MapBuf {
        let boxed: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let ptr = NonNull::new(Box::into_raw(boxed) as *mut u8).unwrap_or(NonNull::dangling());
        MapBuf { ptr, len }
    }

    /// The start of the buffer (valid for `len` bytes while `self` lives).
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` to `off`, clipped to the buffer.
    fn write(&self, off: usize, bytes: &[u8]) {
        if off >= self.len {
            return;
        }
        let n = bytes.len().min(self.len - off);
        // SAFETY: `off + n <= len`, the buffer is live, and no reader reads
        // these bytes now (the mapping contract in the module comment).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(off), n) };
    }

    /// Zeroes the bytes from `off` to the end (a truncated file's tail).
    fn zero_from(&self, off: usize) {
        if off < self.len {
            // SAFETY: as in `write`: in bounds, and no reader reads past the
            // end of a file.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(off), 0, self.len - off) };
        }
    }
}

impl Drop for MapBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` came from `Box::into_raw` of a boxed slice
        // of this length in `new`, and are freed only here.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len)) });
    }
}

/// A file's current bytes (what reads see) and its live mappings.
#[derive(Default)]
pub(crate) struct MemFile {
    bytes: Vec<u8>,
    maps: Vec<Weak<MapBuf>>,
}

impl MemFile {
    /// A file holding `bytes`.
    pub(crate) fn with(bytes: Vec<u8>) -> MemFile {
        MemFile { bytes, maps: Vec::new() }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Writes `buf` at `off`, extending the file (with zeros) as needed.
    pub(crate) fn write_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        let off = usize::try_from(off).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let end = off.checked_add(buf.len()).ok_or(io::ErrorKind::InvalidInput)?;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[off..end].copy_from_slice(buf);
        self.maps.retain(|m| match m.upgrade() {
            Some(m) => {
                m.write(off, buf);
                true
            }
            None => false,
        });
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `off`.
    pub(crate) fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let src = usize::try_from(off)
            .ok()
            .and_then(|o| self.bytes.get(o..o.checked_add(buf.len())?))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Cuts or extends the file to `len` bytes.
    pub(crate) fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let old = self.bytes.len();
        self.bytes.resize(len, 0);
        if len < old {
            self.maps.retain(|m| m.upgrade().map(|m| m.zero_from(len)).is_some());
        }
        Ok(())
    }

    /// A mapping of `len` bytes (zeros past the end of the file).
    pub(crate) fn map(&mut self, len: usize) -> Arc<MapBuf> {
        let map = Arc::new(MapBuf::new(len));
        map.write(0, &self.bytes);
        self.maps.retain(|m| m.strong_count() > 0);
        self.maps.push(Arc::downgrade(&map));
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(m: &MapBuf) -> &[u8] {
        // SAFETY: no writer runs during these single-threaded tests.
        unsafe { std::slice::from_raw_parts(m.as_ptr(), m.len()) }
    }

    #[test]
    fn a_mapping_sees_later_writes_and_truncation() {
        let mut f = MemFile::with(b"head".to_vec());
        let map = f.map(8);
        assert_eq!(view(&map), b"head\0\0\0\0");
        f.write_at(b"tail-and-more", 4).unwrap();
        assert_eq!(view(&map), b"headtail");
        assert_eq!(f.len(), 17);
        f.set_len(2).unwrap();
        assert_eq!(view(&map), b"he\0\0\0\0\0\0");
        let mut buf = [0u8; 2];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"he");
        assert_eq!(f.read_at(&mut buf, 1).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        drop(map);
        f.write_at(b"x", 0).unwrap();
        assert!(f.maps.is_empty());
    }
}
