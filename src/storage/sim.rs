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
//!   dropped, or torn; each file created, renamed or removed since the last
//!   directory fsync either changed or not — in the manner of LevelDB's and
//!   redb's test file systems.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Event, Op};

/// The error an injected fault returns.
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
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    nodes: HashMap<u64, Node>,
}

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
                                let (off, end) = (*off as usize, *off as usize + keep);
                                if content.len() < end {
                                    content.resize(end, 0);
                                }
                                content[off..end].copy_from_slice(&data[..keep]);
                            }
                        }
                    }
                    std::fs::write(&path, &content)?;
                    survivors.insert(path, content);
                }
            }
        }
        // The disk now holds exactly what was chosen: all of it is durable.
        st.names.clear();
        st.durable_names.clear();
        st.nodes.clear();
        for (path, content) in survivors {
            let id = st.next_node;
            st.next_node += 1;
            st.nodes.insert(id, Node { durable: content, ..Node::default() });
            st.names.insert(path.clone(), id);
            st.durable_names.insert(path, id);
        }
        st.power_out = false;
        st.power_cut_at = None;
        Ok(lost)
    }

    /// Starts tracking the files already in `dir` as durable.
    pub(crate) fn adopt_dir(&self, dir: &Path) {
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

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("FaultFs").field("ops", &st.ops).field("injected", &st.injected).finish()
    }
}
