//! Large zeroed buffers that go back to the system when dropped.
//!
//! glibc's malloc serves a large allocation from its own heap once a free of
//! a similar size has raised its mmap threshold, and then keeps that memory
//! after it is freed. For the index tables (which grow by replacement) and
//! the hint files built when segments are sealed, that left tens of bytes
//! per entry of freed memory in the process at 10 million entries. Buffers of
//! [`MAP_MIN_BYTES`] and more therefore get an anonymous memory map of their
//! own: zero pages until touched, unmapped on drop.

/// Buffers at least this large get their own memory map (smaller ones come from the heap).
pub(crate) const MAP_MIN_BYTES: usize = 64 << 10;

/// `len` zero bytes: an anonymous map when large, else a heap allocation.
pub(crate) enum ZeroedBuf {
    Heap(Vec<u8>),
    Map(memmap2::MmapMut),
}

impl ZeroedBuf {
    /// `len` zero bytes.
    pub(crate) fn new(len: usize) -> ZeroedBuf {
        if len >= MAP_MIN_BYTES {
            if let Ok(map) = memmap2::MmapMut::map_anon(len) {
                return ZeroedBuf::Map(map);
            }
        }
        ZeroedBuf::Heap(vec![0; len])
    }
}

impl std::ops::Deref for ZeroedBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            ZeroedBuf::Heap(v) => v,
            ZeroedBuf::Map(m) => m,
        }
    }
}

impl std::ops::DerefMut for ZeroedBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            ZeroedBuf::Heap(v) => v,
            ZeroedBuf::Map(m) => m,
        }
    }
}
