//! A cursor over fuzzer bytes that never fails: past the end it reads zeros.
//!
//! Structured targets draw their choices from it, so that every byte string is
//! a valid input and a short one simply means "stop early".

/// Reads integers and slices from the front of the fuzzer's input.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps `bytes`.
    pub fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    /// True once every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next byte, or 0 past the end.
    pub fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        self.u32() as u64 | (self.u32() as u64) << 32
    }

    /// A number in `0..n` (`n` at most 256) from one byte.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!((1..=256).contains(&n));
        self.u8() as usize % n
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    /// A slice whose length is the next byte (or, when `long`, the next two bytes).
    pub fn chunk(&mut self, long: bool) -> &'a [u8] {
        let n = if long { self.u16() as usize } else { self.u8() as usize };
        self.take(n)
    }
}

/// Whether `KEG_FUZZ_TRACE` is set: the structured targets then describe
/// what an input does on stderr (to read a crashing input).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("KEG_FUZZ_TRACE").is_some())
}

/// Prints to stderr when [`tracing`] is on.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::input::tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// A fresh directory for one run: on tmpfs when there is one (fsync is cheap
/// there), else in the system temp dir.
pub fn scratch_dir() -> tempfile::TempDir {
    let builder = tempfile::Builder::new().prefix("keg-fuzz-").to_owned();
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("create a scratch directory")
}

/// Where a directory target keeps its cache's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In the simulator's memory (`keg::sim::FaultFs::in_memory`): what the
    /// fuzz targets run on, tens of microseconds an open.
    Memory,
    /// Real files in a scratch directory, through the simulator
    /// (`FaultFs::new`): the corpus replay runs every input on both.
    Files,
}

/// The storage and directory of one run.
pub struct Disk {
    fs: keg::sim::FaultFs,
    dir: std::path::PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

impl Disk {
    /// An empty directory on `backend`.
    pub fn new(backend: Backend) -> Disk {
        match backend {
            Backend::Memory => Disk {
                fs: keg::sim::FaultFs::in_memory(),
                dir: std::path::PathBuf::from("/keg-fuzz/cache"),
                _scratch: None,
            },
            Backend::Files => {
                let scratch = scratch_dir();
                Disk { fs: keg::sim::FaultFs::new(), dir: scratch.path().to_owned(), _scratch: Some(scratch) }
            }
        }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The storage (pass it to `Builder::storage`).
    pub fn fs(&self) -> &keg::sim::FaultFs {
        &self.fs
    }

    /// Puts a file holding `bytes` in the directory.
    pub fn put_file(&self, name: &str, bytes: &[u8]) {
        self.fs.put_file(&self.dir, name, bytes).expect("write an input file");
    }

    /// Puts an empty directory named `name` in the directory.
    pub fn put_dir(&self, name: &str) {
        self.fs.put_dir(&self.dir, name).expect("create an input directory");
    }

    /// Every entry of the directory with its bytes (`None` for a directory).
    pub fn files(&self) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
        self.fs.files(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zeros_past_the_end() {
        let mut i = Input::new(&[1, 2, 3]);
        assert_eq!(i.u16(), 0x0201);
        assert_eq!(i.u32(), 3);
        assert_eq!(i.take(5), b"");
        assert!(i.is_empty());
    }
}
