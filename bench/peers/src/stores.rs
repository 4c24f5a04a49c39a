//! One adapter per store, each configured for cache use in its fastest mode
//! that keeps the promise of the keg mode it is compared with (see
//! [`CONFIGS`], printed with every table).

use std::path::Path;
use std::sync::Arc;

/// What a write must survive when `set` returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// keg's default (`Durability::Flushed`); peers in their default or
    /// fastest non-fsyncing mode. An explicit `sync` makes everything durable.
    Normal,
    /// Every set is on stable storage (fsynced) before it returns.
    Synced,
}

pub type Res<T> = Result<T, String>;

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

/// The operations every workload uses.
pub trait Store: Send + Sync {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()>;
    /// Many sets; stores whose fastest bulk path is a transaction override it.
    fn set_batch(&self, items: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        for (k, v) in items {
            self.set(k, v)?;
        }
        Ok(())
    }
    /// Calls `f` with the value when the key is present; returns whether it was.
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool>;
    /// A reader for a read-only phase (redb: one read transaction per thread).
    fn reader(&self) -> Res<Box<dyn Reader + '_>>;
    /// Makes every acknowledged write durable (fsync).
    fn sync(&self) -> Res<()>;
    /// Hands buffered writes to the OS (what `keg::Cache::flush` does).
    fn flush(&self) -> Res<()>;
    fn close(self: Box<Self>) -> Res<()>;
}

pub trait Reader: Sync {
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool>;
}

struct Plain<'a, S: Store + ?Sized>(&'a S);
impl<S: Store + ?Sized> Reader for Plain<'_, S> {
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        self.0.get(key, f)
    }
}

pub const STORES: [&str; 6] = ["keg", "sled", "redb", "fjall", "cacache", "foyer"];

/// Stores run only when `--stores` names them: `keg-set` is keg loading
/// with a loop of single `set` calls where `keg` uses `set_many` (its bulk
/// path, as redb's is a transaction), to show what the batch saves.
pub const EXTRA: [&str; 1] = ["keg-set"];

/// How each store is configured, and the promise it keeps in each mode.
pub const CONFIGS: [(&str, &str, &str); 7] = [
    (
        "keg",
        "keg 0.1 (this tree), 1 GiB cap (4 GiB for 4 KiB fills and 1 M+ reopens), other settings default; loads (fills, and the set-up of the other workloads) in `set_many` calls of 1000 entries, as redb's transactions",
        "Normal: `Durability::Flushed` (kill -9 loses nothing acknowledged). Synced: `Durability::Synced` (group commit).",
    ),
    (
        "keg-set",
        "keg as above, loading with a loop of single `set` calls",
        "as keg",
    ),
    (
        "sled",
        "sled 0.34.7, default config (1 GiB page cache, flush every 500 ms)",
        "Normal: default (kill -9 may lose the last 500 ms: weaker than keg). Synced: `insert` then `flush()`, which waits on `sync_file_range` (seen with `strace -f -c`: 11 986 calls for 11 989 writes, and 13 `fdatasync` in the whole run): it neither flushes the disk's write cache nor writes the file's metadata, so it does not survive a power cut on a disk with a volatile cache (this VM's: `write back`): weaker than keg's `Synced`, which fdatasyncs.",
    ),
    (
        "redb",
        "redb 4.6.0, default 1 GiB cache; fills in transactions of 1000 sets; one read transaction per reader thread in the get phase, one per get in the mixed phase",
        "Normal: `Durability::None` commits (a crash rolls back to the last durable commit: weaker than keg), `Immediate` for sync. Synced: one `Immediate` transaction per set.",
    ),
    (
        "fjall",
        "fjall 3.1.13, one keyspace, 256 MiB block cache, other settings default",
        "Normal: default (each write handed to the OS: same promise as keg). Synced: `insert` then `persist(SyncData)`.",
    ),
    (
        "cacache",
        "cacache 13.1.0, sync API, default SHA-256 integrity",
        "Normal: each write is a file written and renamed (kill -9 safe, never fsynced). Synced: not offered (cacache never fsyncs).",
    ),
    (
        "foyer",
        "foyer 0.22.6 hybrid cache, WriteOnInsertion, 64 MiB memory tier, block engine on a file device of 1.5x the entries' 4 KiB-rounded slots (at least 4x the data) with a 256 MiB flush buffer (default 16 MiB; a full buffer drops inserts) and a 512 MiB submit queue, RecoverMode::Quiet, own tokio runtime",
        "Normal: inserts reach disk asynchronously and may be dropped (a lossy cache: weaker than keg). Synced: not offered.",
    ),
];

/// Opens (creating if needed) `kind` in `dir`. `data_bytes` and `entries`
/// size the stores that need a capacity up front.
pub fn open(kind: &str, dir: &Path, mode: Mode, data_bytes: u64, entries: u64) -> Res<Box<dyn Store>> {
    match kind {
        "keg" => Keg::open(dir, mode, data_bytes, true),
        "keg-set" => Keg::open(dir, mode, data_bytes, false),
        "sled" => Sled::open(dir, mode),
        "redb" => Redb::open(dir, mode),
        "fjall" => Fjall::open(dir, mode),
        "cacache" => Cacache::open(dir, mode),
        "foyer" => Foyer::open(dir, mode, data_bytes, entries),
        _ => Err(format!("unknown store {kind}")),
    }
}

// ---------------------------------------------------------------- keg

/// The cache, and whether loads go through `set_many`.
struct Keg(keg::Cache, bool);

impl Keg {
    fn open(dir: &Path, mode: Mode, data_bytes: u64, batches: bool) -> Res<Box<dyn Store>> {
        let cap: u64 = if data_bytes * 3 > 1 << 30 { 4 << 30 } else { 1 << 30 };
        let d = match mode {
            Mode::Normal => keg::Durability::Flushed,
            Mode::Synced => keg::Durability::Synced,
        };
        let c = keg::Cache::builder().max_bytes(cap).durability(d).open(dir).map_err(e)?;
        Ok(Box::new(Keg(c, batches)))
    }
}

impl Store for Keg {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()> {
        self.0.set(key, val, None).map_err(e)
    }
    fn set_batch(&self, items: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        if self.1 {
            self.0.set_many(items, &keg::SetOptions::new()).map_err(e)
        } else {
            items.iter().try_for_each(|(k, v)| self.set(k, v))
        }
    }
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        match self.0.get(key).map_err(e)? {
            Some(v) => {
                f(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(Plain(self)))
    }
    fn sync(&self) -> Res<()> {
        self.0.sync().map_err(e)
    }
    fn flush(&self) -> Res<()> {
        self.0.flush().map_err(e)
    }
    fn close(self: Box<Self>) -> Res<()> {
        self.0.close().map_err(e)
    }
}

// ---------------------------------------------------------------- sled

struct Sled {
    db: sled::Db,
    mode: Mode,
}

impl Sled {
    fn open(dir: &Path, mode: Mode) -> Res<Box<dyn Store>> {
        let db = sled::Config::new().path(dir).open().map_err(e)?;
        Ok(Box::new(Sled { db, mode }))
    }
}

impl Store for Sled {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()> {
        self.db.insert(key, val).map_err(e)?;
        if self.mode == Mode::Synced {
            self.db.flush().map_err(e)?;
        }
        Ok(())
    }
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        match self.db.get(key).map_err(e)? {
            Some(v) => {
                f(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(Plain(self)))
    }
    fn sync(&self) -> Res<()> {
        self.db.flush().map(|_| ()).map_err(e)
    }
    fn flush(&self) -> Res<()> {
        self.sync()
    }
    fn close(self: Box<Self>) -> Res<()> {
        self.db.flush().map_err(e)?;
        drop(self);
        Ok(())
    }
}

// ---------------------------------------------------------------- redb

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");

struct Redb {
    db: redb::Database,
    mode: Mode,
}

impl Redb {
    fn open(dir: &Path, mode: Mode) -> Res<Box<dyn Store>> {
        std::fs::create_dir_all(dir).map_err(e)?;
        let db = redb::Database::create(dir.join("db.redb")).map_err(e)?;
        let s = Redb { db, mode };
        // Create the table so that readers of an empty store see a miss.
        s.write(&[], redb::Durability::Immediate)?;
        Ok(Box::new(s))
    }

    fn write(&self, items: &[(&[u8], &[u8])], d: redb::Durability) -> Res<()> {
        let mut tx = self.db.begin_write().map_err(e)?;
        tx.set_durability(d).map_err(e)?;
        {
            let mut t = tx.open_table(REDB_TABLE).map_err(e)?;
            for (k, v) in items {
                t.insert(*k, *v).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn durability(&self) -> redb::Durability {
        match self.mode {
            Mode::Normal => redb::Durability::None,
            Mode::Synced => redb::Durability::Immediate,
        }
    }
}

struct RedbReader(redb::ReadOnlyTable<&'static [u8], &'static [u8]>);

impl Reader for RedbReader {
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        match self.0.get(key).map_err(e)? {
            Some(v) => {
                f(v.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Store for Redb {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()> {
        self.write(&[(key, val)], self.durability())
    }
    fn set_batch(&self, items: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        let refs: Vec<(&[u8], &[u8])> = items.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        self.write(&refs, self.durability())
    }
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        self.reader()?.get(key, f)
    }
    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(REDB_TABLE).map_err(e)?;
        Ok(Box::new(RedbReader(t)))
    }
    fn sync(&self) -> Res<()> {
        self.write(&[], redb::Durability::Immediate)
    }
    fn flush(&self) -> Res<()> {
        self.sync()
    }
    fn close(self: Box<Self>) -> Res<()> {
        self.sync()?;
        drop(self);
        Ok(())
    }
}

// ---------------------------------------------------------------- fjall

struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
    mode: Mode,
}

impl Fjall {
    fn open(dir: &Path, mode: Mode) -> Res<Box<dyn Store>> {
        let db = fjall::Database::builder(dir).cache_size(256 << 20).open().map_err(e)?;
        let ks = db.keyspace("kv", fjall::KeyspaceCreateOptions::default).map_err(e)?;
        Ok(Box::new(Fjall { db, ks, mode }))
    }
}

impl Store for Fjall {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()> {
        self.ks.insert(key, val).map_err(e)?;
        if self.mode == Mode::Synced {
            self.db.persist(fjall::PersistMode::SyncData).map_err(e)?;
        }
        Ok(())
    }
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        match self.ks.get(key).map_err(e)? {
            Some(v) => {
                f(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(Plain(self)))
    }
    fn sync(&self) -> Res<()> {
        self.db.persist(fjall::PersistMode::SyncAll).map_err(e)
    }
    fn flush(&self) -> Res<()> {
        self.db.persist(fjall::PersistMode::Buffer).map_err(e)
    }
    fn close(self: Box<Self>) -> Res<()> {
        self.sync()?;
        drop(self);
        Ok(())
    }
}

// ---------------------------------------------------------------- cacache

struct Cacache {
    dir: std::path::PathBuf,
}

impl Cacache {
    fn open(dir: &Path, mode: Mode) -> Res<Box<dyn Store>> {
        if mode == Mode::Synced {
            return Err("not offered: cacache never fsyncs".into());
        }
        std::fs::create_dir_all(dir).map_err(e)?;
        Ok(Box::new(Cacache { dir: dir.to_path_buf() }))
    }
}

fn key_str(key: &[u8]) -> &str {
    // Every key the harness writes is ASCII.
    std::str::from_utf8(key).unwrap_or("non-utf8-key")
}

impl Store for Cacache {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()> {
        cacache::write_sync(&self.dir, key_str(key), val).map(|_| ()).map_err(e)
    }
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        match cacache::read_sync(&self.dir, key_str(key)) {
            Ok(v) => {
                f(&v);
                Ok(true)
            }
            Err(cacache::Error::EntryNotFound(..)) => Ok(false),
            Err(x) => Err(e(x)),
        }
    }
    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(Plain(self)))
    }
    fn sync(&self) -> Res<()> {
        // cacache offers no fsync; its writes are already with the OS.
        Ok(())
    }
    fn flush(&self) -> Res<()> {
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- foyer

/// foyer's flush buffer (its default is 16 MiB).
const FOYER_BUFFER_BYTES: usize = 256 << 20;

struct Foyer {
    rt: Arc<tokio::runtime::Runtime>,
    cache: foyer::HybridCache<Vec<u8>, Vec<u8>>,
}

impl Foyer {
    fn open(dir: &Path, mode: Mode, data_bytes: u64, entries: u64) -> Res<Box<dyn Store>> {
        use foyer::{BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCacheBuilder};
        if mode == Mode::Synced {
            return Err("not offered: foyer has no per-write durability".into());
        }
        let rt =
            Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(e)?);
        std::fs::create_dir_all(dir).map_err(e)?;
        // foyer's block engine gives every entry a slot rounded up to 4 KiB,
        // so the device is sized per entry: 1.5x the slots the data needs.
        let per_entry = (data_bytes / entries.max(1) + 64).div_ceil(4096) * 4096;
        let capacity = (entries * per_entry * 3 / 2).max(data_bytes * 4).max(256 << 20) as usize;
        let device = FsDeviceBuilder::new(dir).with_capacity(capacity).build().map_err(e)?;
        let cache = rt
            .block_on(
                HybridCacheBuilder::new()
                    .with_policy(foyer::HybridCachePolicy::WriteOnInsertion)
                    .memory(64 << 20)
                    .with_weighter(|k: &Vec<u8>, v: &Vec<u8>| k.len() + v.len())
                    .storage()
                    // foyer ignores inserts once its flush buffer (16 MiB by
                    // default) is full; sized to the data, it keeps them.
                    .with_engine_config(
                        BlockEngineConfig::new(device)
                            .with_buffer_pool_size(FOYER_BUFFER_BYTES)
                            .with_submit_queue_size_threshold(2 * FOYER_BUFFER_BYTES),
                    )
                    .with_recover_mode(foyer::RecoverMode::Quiet)
                    .build(),
            )
            .map_err(e)?;
        Ok(Box::new(Foyer { rt, cache }))
    }
}

impl Store for Foyer {
    fn set(&self, key: &[u8], val: &[u8]) -> Res<()> {
        let _g = self.rt.enter();
        self.cache.insert(key.to_vec(), val.to_vec());
        Ok(())
    }
    fn get(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Res<bool> {
        let k = key.to_vec();
        match self.rt.block_on(self.cache.get(&k)).map_err(e)? {
            Some(v) => {
                f(v.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(Plain(self)))
    }
    fn sync(&self) -> Res<()> {
        // No durability call: wait until the disk tier has written what it
        // was given (its flush queue drained).
        self.rt.block_on(self.cache.storage().wait());
        Ok(())
    }
    fn flush(&self) -> Res<()> {
        self.sync()
    }
    fn close(self: Box<Self>) -> Res<()> {
        let r = self.rt.block_on(self.cache.close()).map_err(e);
        drop(self);
        r
    }
}
