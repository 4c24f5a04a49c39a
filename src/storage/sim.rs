//! A fault-injecting, power-cut-simulating wrapper around the real file system.
//!
//! Files stay real files (so memory maps work as in production); beside them
//! the simulator keeps, per file, the bytes known durable and the writes made
//! since the file's last fsync, and, for the directory, the names as of its
//! last fsync. That is enough to:
//!
//! - fail the n-th operation of a kind (or every one from the n-th on, like
//!   a full disk), optionally after writing part of the bytes;
//! - cut the power after n operations: later operations fail and do nothing;
//! - [`FaultFs::crash`]: rewrite the directory to a state a disk could hold
//!   after that power loss — fsynced bytes intact; each later write kept,
//!   dropped, or torn (its first or its last bytes kept: over a synced
//!   segment's preallocated zeros, either leaves zeros beside the part
//!   that landed); each file created, renamed or removed since the last
//!   directory fsync either changed or not — in the manner of LevelDB's and
//!   redb's test file systems.
//!
//! [`FaultFs::in_memory`] makes a simulator whose files live in memory only
//! (`src/storage/mem.rs`): the same bookkeeping, with each file's current
//! bytes beside its durable ones, directories as a set of paths, and the
//! directory lock as a set of locked paths. The fuzz targets and the model
//! tests run on it, a hundred times faster than on real files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::mem::{MapBuf, MemFile};
use super::{Event, Op};

/// The error an injected fault returns.
///
/// ```
/// use keg::sim::{FaultError, FaultFs, Op};
/// let fs = FaultFs::in_memory();
/// let cache = keg::Cache::builder().storage(fs.clone()).open("/cache").unwrap();
/// fs.fail(Some(Op::Write), 1, FaultError::NoSpace, true); // the disk is full from now on
/// assert!(cache.set(b"k", b"v", None).and_then(|_| cache.sync()).is_err());
/// fs.heal();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// `ENOSPC`: no space left on device.
    NoSpace,
    /// `EIO`: an I/O error.
    Io,
}

impl FaultError {
    fn to_io(self) -> io::Error {
        match self {
            FaultError::NoSpace => io::Error::from_raw_os_error(28),
            FaultError::Io => io::Error::from_raw_os_error(5),
        }
    }
}

struct Fault {
    op: Option<Op>,
    nth: u64,
    seen: u64,
    error: FaultError,
    sticky: bool,
}

enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Default)]
struct Node {
    durable: Vec<u8>,
    pending: Vec<Pending>,
    /// Writes whose fsync failed in fsyncgate mode: the kernel may have thrown
    /// them away, and no later fsync makes them durable (only rewriting does).
    doomed: Vec<(u64, Vec<u8>)>,
    /// Memory mode: the bytes reads see (durable, pending and doomed writes).
    mem: MemFile,
}

impl Node {
    /// Applies a write or truncation made durable: it supersedes what doomed
    /// writes said about the same bytes.
    fn make_durable(&mut self, p: Pending) {
        match p {
            Pending::SetLen(len) => {
                self.durable.resize(len as usize, 0);
                for (off, data) in &mut self.doomed {
                    data.truncate(len.saturating_sub(*off) as usize);
                }
            }
            Pending::Write(off, data) => {
                let end = off as usize + data.len();
                if self.durable.len() < end {
                    self.durable.resize(end, 0);
                }
                self.durable[off as usize..end].copy_from_slice(&data);
                let (a, b) = (off, end as u64);
                let mut kept = Vec::new();
                for (o, d) in self.doomed.drain(..) {
                    let e = o + d.len() as u64;
                    if e <= a || o >= b {
                        kept.push((o, d));
                        continue;
                    }
                    if o < a {
                        kept.push((o, d[..(a - o) as usize].to_vec()));
                    }
                    if e > b {
                        kept.push((b, d[(b - o) as usize..].to_vec()));
                    }
                }
                self.doomed = kept;
            }
        }
        self.doomed.retain(|(_, d)| !d.is_empty());
    }
}

#[derive(Default)]
struct State {
    ops: u64,
    injected: u64,
    faults: Vec<Fault>,
    short_writes: bool,
    power_out: bool,
    power_cut_at: Option<u64>,
    fsyncgate: bool,
    faults_log: Vec<(Op, PathBuf)>,
    counts: HashMap<Op, u64>,
    next_node: u64,
    // (Hashed, not ordered: a lookup by path is then one hash and one
    // comparison of bytes instead of a tree walk comparing paths component
    // by component, which was an eighth of `ops_model`'s time. What lists
    // names sorts them.)
    names: HashMap<PathBuf, u64>,
    durable_names: HashMap<PathBuf, u64>,
    nodes: HashMap<u64, Node>,
    /// Memory mode: the directories (always durable).
    dirs: BTreeSet<PathBuf>,
    /// Memory mode: the directories whose lock is held.
    locks: BTreeSet<PathBuf>,
}

impl State {
    fn new_node(&mut self, node: Node) -> u64 {
        let id = self.next_node;
        self.next_node += 1;
        self.nodes.insert(id, node);
        id
    }

    fn node(&mut self, id: u64) -> io::Result<&mut Node> {
        self.nodes.get_mut(&id).ok_or_else(|| io::Error::from_raw_os_error(EBADF))
    }

    /// Memory mode: the node named `path`, or why not.
    fn named(&self, path: &Path) -> io::Result<u64> {
        match self.names.get(path) {
            Some(&id) => Ok(id),
            None if self.dirs.contains(path) => Err(io::Error::from_raw_os_error(EISDIR)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

const EBADF: i32 = 9;
const EEXIST: i32 = 17;
const EISDIR: i32 = 21;

/// A file system for tests that fails on request and survives simulated power cuts.
///
/// Plug it in with `Builder::storage` (feature `fault-injection`). Clones share state.
///
/// ```
/// use keg::sim::{FaultFs, FaultError, Op};
/// let dir = tempfile::tempdir().unwrap();
/// let fs = FaultFs::new();
/// let cache = keg::Cache::builder().storage(fs.clone()).open(dir.path()).unwrap();
/// cache.set(b"k", b"v", None).unwrap();
/// fs.fail(Some(Op::Write), 1, FaultError::NoSpace, false);
/// assert!(cache.set(b"k2", b"v2", None).is_err());
/// assert_eq!(cache.get(b"k").unwrap().unwrap(), b"v");
/// ```
#[derive(Clone, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
    memory: bool,
}

impl FaultFs {
    /// A simulator with no faults armed.
    ///
    /// ```
    /// let fs = keg::sim::FaultFs::new();
    /// assert_eq!(fs.ops(), 0);
    /// ```
    pub fn new() -> FaultFs {
        FaultFs::default()
    }

    /// A simulator whose files live in memory only: nothing touches the
    /// disk, and a path names a file of this simulator (and its clones)
    /// alone. Faults and power cuts work as with [`FaultFs::new`]; the
    /// directory lock is a lock within this simulator.
    ///
    /// ```
    /// let fs = keg::sim::FaultFs::in_memory();
    /// let dir = std::path::Path::new("/keg-in-memory/cache");
    /// let cache = keg::Cache::builder().storage(fs.clone()).open(dir).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.close().unwrap();
    /// assert!(!dir.exists());
    /// assert!(fs.files(dir).contains_key("KEG"));
    /// let cache = keg::Cache::builder().storage(fs).open(dir).unwrap();
    /// assert_eq!(cache.get(b"k").unwrap().unwrap(), b"v");
    /// ```
    pub fn in_memory() -> FaultFs {
        FaultFs { memory: true, ..FaultFs::default() }
    }

    /// Whether the files live in memory ([`FaultFs::in_memory`]).
    ///
    /// ```
    /// assert!(keg::sim::FaultFs::in_memory().is_in_memory());
    /// assert!(!keg::sim::FaultFs::new().is_in_memory());
    /// ```
    pub fn is_in_memory(&self) -> bool {
        self.memory
    }

    /// Memory mode: creates the directory `dir` (and its parents) and puts a
    /// file named `name` in it holding `bytes`, durably (as if written and
    /// fsynced before the test began). With real files, writes the file.
    ///
    /// ```
    /// let fs = keg::sim::FaultFs::in_memory();
    /// let dir = std::path::Path::new("/d");
    /// fs.put_file(dir, "notes.txt", b"hello").unwrap();
    /// assert_eq!(fs.files(dir)["notes.txt"].as_deref(), Some(&b"hello"[..]));
    /// ```
    pub fn put_file(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        if !self.memory {
            std::fs::create_dir_all(dir)?;
            return std::fs::write(dir.join(name), bytes);
        }
        let mut st = self.lock();
        st.mkdirs(dir);
        let path = dir.join(name);
        if st.dirs.contains(&path) {
            return Err(io::Error::from_raw_os_error(EISDIR));
        }
        let id = st.new_node(Node { durable: bytes.to_vec(), mem: MemFile::with(bytes.to_vec()), ..Node::default() });
        st.names.insert(path.clone(), id);
        st.durable_names.insert(path, id);
        Ok(())
    }

    /// Memory mode: creates the directory `name` in `dir` (and `dir` and its
    /// parents). With real files, creates it on disk.
    ///
    /// ```
    /// let fs = keg::sim::FaultFs::in_memory();
    /// fs.put_dir(std::path::Path::new("/d"), "sub").unwrap();
    /// assert_eq!(fs.files(std::path::Path::new("/d"))["sub"], None);
    /// ```
    pub fn put_dir(&self, dir: &Path, name: &str) -> io::Result<()> {
        if !self.memory {
            return std::fs::create_dir_all(dir.join(name));
        }
        let mut st = self.lock();
        let path = dir.join(name);
        if st.names.contains_key(&path) {
            return Err(io::Error::from_raw_os_error(EEXIST));
        }
        st.mkdirs(&path);
        Ok(())
    }

    /// The entries of directory `dir` by name, with each file's current
    /// bytes (`None` for a directory). With real files, reads the disk.
    ///
    /// ```
    /// let fs = keg::sim::FaultFs::in_memory();
    /// assert!(fs.files(std::path::Path::new("/nowhere")).is_empty());
    /// ```
    pub fn files(&self, dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
        if !self.memory {
            let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
            return entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    let bytes = if p.is_dir() { None } else { Some(std::fs::read(&p).unwrap_or_default()) };
                    (e.file_name().to_string_lossy().into_owned(), bytes)
                })
                .collect();
        }
        let st = self.lock();
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let files = st.names.iter().filter(|(p, _)| p.parent() == Some(dir)).filter_map(|(p, id)| {
            let bytes = st.nodes.get(id).map(|n| n.mem.bytes().to_vec());
            Some((name(p)?, bytes))
        });
        let dirs = st.dirs.iter().filter(|p| p.parent() == Some(dir)).filter_map(|p| Some((name(p)?, None)));
        files.chain(dirs).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Storage operations performed (or attempted) so far.
    ///
    /// ```
    /// let fs = keg::sim::FaultFs::new();
    /// let dir = tempfile::tempdir().unwrap();
    /// keg::Cache::builder().storage(fs.clone()).open(dir.path()).unwrap();
    /// assert!(fs.ops() > 0);
    /// ```
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Faults injected so far.
    ///
    /// ```
    /// assert_eq!(keg::sim::FaultFs::new().injected(), 0);
    /// ```
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Storage operations of one kind performed (or attempted) so far.
    ///
    /// ```
    /// use keg::sim::{FaultFs, Op};
    /// let fs = FaultFs::new();
    /// let dir = tempfile::tempdir().unwrap();
    /// keg::Cache::builder().storage(fs.clone()).open(dir.path()).unwrap();
    /// assert!(fs.ops_of(Op::List) >= 1);
    /// ```
    pub fn ops_of(&self, op: Op) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// The kind and file of every fault injected so far, in order.
    ///
    /// ```
    /// assert!(keg::sim::FaultFs::new().injected_faults().is_empty());
    /// ```
    pub fn injected_faults(&self) -> Vec<(Op, PathBuf)> {
        self.lock().faults_log.clone()
    }

    /// "fsyncgate" mode: when an fsync fails, the bytes written to that file
    /// since its last good fsync may already be gone (Linux marks the pages
    /// clean after a failed writeback): reads still see them, but no later
    /// fsync makes them durable, and [`FaultFs::crash`] may drop or tear them.
    /// Only writing the bytes again makes them durable.
    ///
    /// ```
    /// keg::sim::FaultFs::new().set_fsyncgate(true);
    /// ```
    pub fn set_fsyncgate(&self, on: bool) {
        self.lock().fsyncgate = on;
    }

    /// Arms a fault: the `nth` operation of kind `op` (any kind if `None`)
    /// from now on fails with `error`; if `sticky`, so does every later one
    /// of that kind (a disk that stays full).
    ///
    /// ```
    /// use keg::sim::{FaultFs, FaultError, Op};
    /// FaultFs::new().fail(Some(Op::Sync), 2, FaultError::Io, false);
    /// ```
    pub fn fail(&self, op: Option<Op>, nth: u64, error: FaultError, sticky: bool) {
        self.lock().faults.push(Fault { op, nth: nth.max(1), seen: 0, error, sticky });
    }

    /// Makes failing writes land half their bytes first (a short write).
    ///
    /// ```
    /// keg::sim::FaultFs::new().set_short_writes(true);
    /// ```
    pub fn set_short_writes(&self, on: bool) {
        self.lock().short_writes = on;
    }

    /// Disarms every fault (the disk has room again).
    ///
    /// ```
    /// keg::sim::FaultFs::new().heal();
    /// ```
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// After `ops` more operations the power goes out: every later operation
    /// fails with `EIO` and changes nothing. Follow with [`FaultFs::crash`].
    ///
    /// ```
    /// keg::sim::FaultFs::new().cut_power_after(10);
    /// ```
    pub fn cut_power_after(&self, ops: u64) {
        let mut st = self.lock();
        st.power_cut_at = Some(st.ops + ops.max(1));
    }

    /// Cuts the power now (see [`FaultFs::cut_power_after`]).
    ///
    /// ```
    /// keg::sim::FaultFs::new().cut_power_now();
    /// ```
    pub fn cut_power_now(&self) {
        self.lock().power_out = true;
    }

    /// Whether the power is out.
    ///
    /// ```
    /// assert!(!keg::sim::FaultFs::new().power_is_out());
    /// ```
    pub fn power_is_out(&self) -> bool {
        self.lock().power_out
    }

    /// Rewrites the files to a state a disk could be in after losing power
    /// now, chosen by `seed`, then restores power. Close (or abandon) every
    /// cache using these files first. Returns how many unsynced writes and
    /// directory changes were lost or torn.
    ///
    /// ```
    /// use keg::sim::FaultFs;
    /// let dir = tempfile::tempdir().unwrap();
    /// let fs = FaultFs::new();
    /// let cache = keg::Cache::builder().storage(fs.clone()).open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.abandon();
    /// fs.crash(42).unwrap();
    /// let cache = keg::Cache::builder().storage(fs).open(dir.path()).unwrap();
    /// ```
    pub fn crash(&self, seed: u64) -> io::Result<u64> {
        let mut st = self.lock();
        // splitmix64: consecutive draws are independent even for small seeds
        // (a bare xorshift's low bits were correlated, so the choices for two
        // files went together).
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut lost = 0;
        let paths: BTreeSet<PathBuf> = st.names.keys().chain(st.durable_names.keys()).cloned().collect();
        let mut survivors = BTreeMap::new();
        for path in paths {
            let now = st.names.get(&path).copied();
            let then = st.durable_names.get(&path).copied();
            let chosen = if now == then {
                now
            } else {
                lost += 1;
                if next() % 2 == 0 {
                    now
                } else {
                    then
                }
            };
            match chosen {
                None if self.memory => {}
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
                Some(id) => {
                    let node = st.nodes.get(&id).expect("tracked node");
                    let mut content = node.durable.clone();
                    let doomed = node.doomed.iter().map(|(o, d)| Pending::Write(*o, d.clone()));
                    let doomed: Vec<Pending> = doomed.collect();
                    for p in doomed.iter().chain(&node.pending) {
                        let choice = next() % 3;
                        lost += (choice != 1) as u64;
                        match (p, choice) {
                            (_, 0) => {}
                            (Pending::SetLen(len), _) => content.resize(*len as usize, 0),
                            (Pending::Write(off, data), c) => {
                                let keep =
                                    if c == 1 { data.len() } else { (next() % data.len().max(1) as u64) as usize };
                                // A torn write keeps its first bytes or, as
                                // a disk that writes sectors out of order
                                // may, its last ones, with what the file
                                // held before (zeros past its end, or
                                // preallocated zeros) in front of them.
                                let skip = if c == 2 && next() % 2 == 1 { data.len() - keep } else { 0 };
                                let (from, end) = (*off as usize + skip, *off as usize + skip + keep);
                                if content.len() < end {
                                    content.resize(end, 0);
                                }
                                content[from..end].copy_from_slice(&data[skip..skip + keep]);
                            }
                        }
                    }
                    if !self.memory {
                        std::fs::write(&path, &content)?;
                    }
                    survivors.insert(path, content);
                }
            }
        }
        // The disk now holds exactly what was chosen: all of it is durable.
        st.names.clear();
        st.durable_names.clear();
        st.nodes.clear();
        for (path, content) in survivors {
            let mem = if self.memory { MemFile::with(content.clone()) } else { MemFile::default() };
            let id = st.new_node(Node { durable: content, mem, ..Node::default() });
            st.names.insert(path.clone(), id);
            st.durable_names.insert(path, id);
        }
        st.power_out = false;
        st.power_cut_at = None;
        st.locks.clear();
        Ok(lost)
    }

    /// Restores power as if only the process had died (a `kill -9`, the
    /// operating system still up): every write and directory change made so
    /// far stays, fsynced or not. Close (or abandon) every cache using these
    /// files first. A write whose fsync failed in fsyncgate mode stays as
    /// uncertain as it was.
    ///
    /// ```
    /// use keg::sim::FaultFs;
    /// let fs = FaultFs::in_memory();
    /// let dir = std::path::Path::new("/cache");
    /// let cache = keg::Cache::builder().storage(fs.clone()).open(dir).unwrap();
    /// fs.cut_power_after(1);
    /// assert!(cache.set(b"k", b"v", None).is_err());
    /// cache.abandon();
    /// fs.revive();
    /// let cache = keg::Cache::builder().storage(fs).open(dir).unwrap();
    /// ```
    pub fn revive(&self) {
        let mut st = self.lock();
        for node in st.nodes.values_mut() {
            for pending in std::mem::take(&mut node.pending) {
                node.make_durable(pending);
            }
        }
        st.durable_names = st.names.clone();
        st.power_out = false;
        st.power_cut_at = None;
        st.locks.clear();
    }

    /// Starts tracking the files already in `dir` as durable.
    pub(crate) fn adopt_dir(&self, dir: &Path) {
        if self.memory {
            return;
        }
        let mut st = self.lock();
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if st.names.contains_key(&path) || !path.is_file() || path.file_name().is_some_and(|n| n == "LOCK") {
                continue;
            }
            let content = std::fs::read(&path).unwrap_or_default();
            let id = st.next_node;
            st.next_node += 1;
            st.nodes.insert(id, Node { durable: content, ..Node::default() });
            st.names.insert(path.clone(), id);
            st.durable_names.insert(path, id);
        }
    }

    pub(crate) fn short_writes(&self) -> bool {
        self.lock().short_writes
    }

    /// Counts the operation and decides whether it fails.
    pub(crate) fn check(&self, op: Op, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if st.power_out {
            return Err(FaultError::Io.to_io());
        }
        st.ops += 1;
        *st.counts.entry(op).or_default() += 1;
        if st.power_cut_at == Some(st.ops) {
            st.power_out = true;
            return Err(FaultError::Io.to_io());
        }
        let mut fail = None;
        for f in st.faults.iter_mut().filter(|f| f.op.is_none_or(|o| o == op)) {
            f.seen += 1;
            if f.seen == f.nth || (f.sticky && f.seen > f.nth) {
                fail = Some(f.error);
            }
        }
        match fail {
            Some(e) => {
                st.injected += 1;
                st.faults_log.push((op, path.to_owned()));
                if op == Op::Sync && st.fsyncgate {
                    let st = &mut *st;
                    if let Some(node) = st.names.get(path).and_then(|id| st.nodes.get_mut(id)) {
                        for p in std::mem::take(&mut node.pending) {
                            match p {
                                Pending::Write(off, data) => node.doomed.push((off, data)),
                                // A lost truncation: the bytes past it may stay on disk.
                                Pending::SetLen(_) => {}
                            }
                        }
                    }
                }
                Err(e.to_io())
            }
            None => Ok(()),
        }
    }

    /// Records a completed operation.
    pub(crate) fn note(&self, event: Event) {
        let mut st = self.lock();
        let st = &mut *st;
        match event {
            Event::Create(p) => {
                let id = st.next_node;
                st.next_node += 1;
                st.nodes.insert(id, Node::default());
                st.names.insert(p, id);
            }
            Event::Open(p) => {
                if !st.names.contains_key(&p) {
                    let id = st.next_node;
                    st.next_node += 1;
                    st.nodes.insert(id, Node { durable: std::fs::read(&p).unwrap_or_default(), ..Node::default() });
                    st.names.insert(p.clone(), id);
                    st.durable_names.insert(p, id);
                }
            }
            Event::Write(p, off, data) => {
                if let Some(node) = st.names.get(&p).and_then(|id| st.nodes.get_mut(id)) {
                    node.pending.push(Pending::Write(off, data));
                }
            }
            Event::SetLen(p, len) => {
                if let Some(node) = st.names.get(&p).and_then(|id| st.nodes.get_mut(id)) {
                    node.pending.push(Pending::SetLen(len));
                }
            }
            Event::Sync(p) => {
                if let Some(node) = st.names.get(&p).and_then(|id| st.nodes.get_mut(id)) {
                    for pending in std::mem::take(&mut node.pending) {
                        node.make_durable(pending);
                    }
                }
            }
            Event::Rename(from, to) => {
                if let Some(id) = st.names.remove(&from) {
                    st.names.insert(to, id);
                }
            }
            Event::Remove(p) => {
                st.names.remove(&p);
            }
            Event::SyncDir => st.durable_names = st.names.clone(),
        }
    }
}

/// Memory mode: the operations of [`super::Storage`] and [`super::FileRef`]
/// on in-memory files. The caller has counted each with [`FaultFs::check`].
impl FaultFs {
    pub(crate) fn mem_create(&self, path: &Path) -> io::Result<u64> {
        let mut st = self.lock();
        if st.names.contains_key(path) || st.dirs.contains(path) {
            return Err(io::Error::from_raw_os_error(EEXIST));
        }
        if !path.parent().is_some_and(|d| st.dirs.contains(d)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let id = st.new_node(Node::default());
        st.names.insert(path.to_owned(), id);
        Ok(id)
    }

    pub(crate) fn mem_open(&self, path: &Path) -> io::Result<u64> {
        self.lock().named(path)
    }

    pub(crate) fn mem_read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut st = self.lock();
        let id = st.named(path)?;
        Ok(st.node(id)?.mem.bytes().to_vec())
    }

    /// The first `max` bytes of the file at `path`.
    pub(crate) fn mem_read_head(&self, path: &Path, max: usize) -> io::Result<Vec<u8>> {
        let mut st = self.lock();
        let id = st.named(path)?;
        let bytes = st.node(id)?.mem.bytes();
        Ok(bytes[..bytes.len().min(max)].to_vec())
    }

    pub(crate) fn mem_len(&self, id: u64) -> io::Result<u64> {
        Ok(self.lock().node(id)?.mem.len())
    }

    pub(crate) fn mem_write(&self, id: u64, buf: &[u8], off: u64) -> io::Result<()> {
        let mut st = self.lock();
        let node = st.node(id)?;
        node.mem.write_at(buf, off)?;
        node.pending.push(Pending::Write(off, buf.to_vec()));
        Ok(())
    }

    pub(crate) fn mem_read(&self, id: u64, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.lock().node(id)?.mem.read_at(buf, off)
    }

    pub(crate) fn mem_sync(&self, id: u64) -> io::Result<()> {
        let mut st = self.lock();
        let node = st.node(id)?;
        for pending in std::mem::take(&mut node.pending) {
            node.make_durable(pending);
        }
        Ok(())
    }

    pub(crate) fn mem_set_len(&self, id: u64, len: u64) -> io::Result<()> {
        let mut st = self.lock();
        let node = st.node(id)?;
        node.mem.set_len(len)?;
        node.pending.push(Pending::SetLen(len));
        Ok(())
    }

    pub(crate) fn mem_map(&self, id: u64, len: usize) -> io::Result<Arc<MapBuf>> {
        Ok(self.lock().node(id)?.mem.map(len))
    }

    pub(crate) fn mem_rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        let id = st.named(from)?;
        if st.dirs.contains(to) {
            return Err(io::Error::from_raw_os_error(EISDIR));
        }
        st.names.remove(from);
        st.names.insert(to.to_owned(), id);
        Ok(())
    }

    pub(crate) fn mem_remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.named(path)?;
        st.names.remove(path);
        Ok(())
    }

    pub(crate) fn mem_sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        st.durable_names = st.names.clone();
        Ok(())
    }

    pub(crate) fn mem_create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if dir.ancestors().any(|d| st.names.contains_key(d)) {
            return Err(io::Error::from_raw_os_error(EEXIST));
        }
        st.mkdirs(dir);
        Ok(())
    }

    /// The names of the entries of `dir`, files and directories.
    pub(crate) fn mem_list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let in_dir = |p: &&PathBuf| p.parent() == Some(dir);
        let name = |p: &PathBuf| Some(p.file_name()?.to_str()?.to_owned());
        // Files in name order, then directories (as a walk of sorted names would give).
        let mut files: Vec<String> = st.names.keys().filter(in_dir).filter_map(name).collect();
        files.sort_unstable();
        files.extend(st.dirs.iter().filter(in_dir).filter_map(name));
        Ok(files)
    }

    /// Whether `path` is a directory, or else a file's length.
    pub(crate) fn mem_stat(&self, path: &Path) -> io::Result<Result<u64, ()>> {
        let mut st = self.lock();
        if st.dirs.contains(path) {
            return Ok(Err(()));
        }
        let id = st.named(path)?;
        Ok(Ok(st.node(id)?.mem.len()))
    }

    /// Takes the lock of `dir`; false if it is held.
    pub(crate) fn mem_lock(&self, dir: &Path) -> io::Result<bool> {
        let mut st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(st.locks.insert(dir.to_owned()))
    }

    pub(crate) fn mem_unlock(&self, dir: &Path) {
        self.lock().locks.remove(dir);
    }
}

impl State {
    fn mkdirs(&mut self, dir: &Path) {
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            self.dirs.insert(d.to_owned());
        }
    }
}

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("FaultFs").field("ops", &st.ops).field("injected", &st.injected).finish()
    }
}
