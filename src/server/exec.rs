//! Carrying out one parsed request against the store, and its reply.

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::access::{Access, Seen};
use super::protocol::{check_key, MetaCommand, MetaFlags, MetaMode, ProtocolError, Request, RetrieveKind, StoreKind};
use super::recache::{Recache, Win};
use super::reply::{self, DELETED, END, EXISTS, MN, NOT_FOUND, NOT_STORED, OK, RESET, STORED, TOO_LARGE, TOUCHED};
use super::stats::{add, bump, unix_now, unix_now_ms, write_settings, Counters};
use super::store::{Applied, CasResult, Change, Store, StoreError, StoreResult, Ttl};
use super::{Config, Log, MEMCACHED_VERSION};
use crate::item::expiry_after;
use crate::stripe::Counter;

/// Expiration times above this many seconds are Unix times (memcached's 30 days).
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use keg::server::{Config, ListenAddr, MemoryStore, Server, RELATIVE_EXPTIME_MAX};
/// let server = Server::bind(Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }).unwrap();
/// let ListenAddr::Tcp(addr) = server.local_addrs()[0].clone() else { unreachable!() };
/// let shutdown = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run(Arc::new(MemoryStore::new(1 << 20))));
/// let mut client = std::net::TcpStream::connect(addr).unwrap();
/// let (days, past) = (RELATIVE_EXPTIME_MAX, RELATIVE_EXPTIME_MAX + 1); // 30 days from now; a Unix time in 1970
/// write!(client, "set a 0 {days} 1\r\na\r\nset b 0 {past} 1\r\nb\r\nget a b\r\nquit\r\n").unwrap();
/// let mut replies = String::new();
/// client.read_to_string(&mut replies).unwrap();
/// assert_eq!(replies, "STORED\r\nSTORED\r\nVALUE a 0 1\r\na\r\nEND\r\n"); // b expired at once
/// shutdown.graceful();
/// running.join().unwrap();
/// ```
pub const RELATIVE_EXPTIME_MAX: i64 = 60 * 60 * 24 * 30;

/// What every connection of one server shares.
pub(crate) struct Shared<S> {
    pub(crate) store: Arc<S>,
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    started: Instant,
    pub(crate) log: Log,
    verbosity: AtomicU32,
    /// Unix time (s) of a pending delayed `flush_all`; 0: none.
    flush_at: AtomicU64,
    /// Unix time (s) of the last store failure logged, to log at most one a second.
    last_failure_log: AtomicU64,
    /// The meta commands' win tokens, stubs and stale copies.
    recache: Recache,
    /// `mg`'s hit-before and last-access hints.
    access: Access,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered; go on with the next request.
    Done,
    /// Answered; drop this many bytes of input after it (an oversized item's data).
    Skip(u64),
    /// A retrieval stopped because the output buffer is full: this many of
    /// its keys are answered; carry on from there once the client has read.
    Partial(usize),
    /// Answered (if at all); close the connection.
    Close,
}

/// The time to live an expiration time means at Unix time `now` (seconds):
/// 0 never (`None`); negative already expired (`Some(ZERO)`); up to 30 days
/// that many seconds; beyond, a Unix time (one already past: expired).
pub(crate) fn ttl_of(exptime: i64, now: u64) -> Ttl {
    match exptime {
        0 => None,
        e if e < 0 => Some(Duration::ZERO),
        e if e <= RELATIVE_EXPTIME_MAX => Some(Duration::from_secs(e as u64)),
        e => Some(Duration::from_secs((e as u64).saturating_sub(now))),
    }
}

impl<S: Store> Shared<S> {
    pub(crate) fn new(store: Arc<S>, config: Config, log: Log) -> Shared<S> {
        Shared {
            config,
            counters: Counters::default(),
            started: Instant::now(),
            log,
            verbosity: AtomicU32::new(0),
            flush_at: AtomicU64::new(0),
            last_failure_log: AtomicU64::new(0),
            recache: Recache::default(),
            access: Access::default(),
            store,
        }
    }

    /// Answers a request the parser refused.
    pub(crate) fn refuse(&self, error: ProtocolError, out: &mut Vec<u8>) {
        bump(&self.counters.keg_client_errors);
        reply::line(out, error.reply());
    }

    /// Carries out `request`, appending its reply to `out` (nothing with
    /// `noreply`). `resume`: keys of a retrieval already answered;
    /// `out_limit`: the output size past which a retrieval pauses.
    pub(crate) fn execute(&self, request: Request<'_>, out: &mut Vec<u8>, resume: usize, out_limit: usize) -> Outcome {
        self.run_due_flush();
        let mark = out.len();
        let (outcome, noreply) = match request {
            Request::Retrieve { kind, exptime, keys } => {
                return self.retrieve(kind, exptime, keys, out, resume, out_limit);
            }
            Request::Store { kind, key, flags, exptime, data, cas, noreply } => {
                if self.store(kind, key, flags, exptime, data, cas, out) {
                    self.wrote(key);
                }
                (Outcome::Done, noreply)
            }
            Request::TooLarge { kind, key, noreply, skip } => {
                let overwrite = matches!(kind, StoreKind::Set | StoreKind::Replace | StoreKind::Cas);
                self.too_large(overwrite.then_some(key), out);
                (Outcome::Skip(skip), noreply)
            }
            Request::Delete { key, noreply } => {
                let c = &self.counters;
                let found = self.store.delete(key);
                self.wrote(key);
                self.found_or_not(found, (&c.delete_hits, DELETED), &c.delete_misses, out);
                (Outcome::Done, noreply)
            }
            Request::Arith { incr, key, delta, noreply } => {
                if self.arith(incr, key, delta, out) {
                    self.wrote(key);
                }
                (Outcome::Done, noreply)
            }
            Request::Touch { key, exptime, noreply } => {
                let c = &self.counters;
                bump(&c.cmd_touch);
                let found = self.store.touch(key, ttl_of(exptime, unix_now()));
                self.found_or_not(found, (&c.touch_hits, TOUCHED), &c.touch_misses, out);
                (Outcome::Done, noreply)
            }
            Request::FlushAll { delay, noreply } => {
                self.flush_all(delay, out);
                (Outcome::Done, noreply)
            }
            Request::Version => {
                reply::line(out, &format!("VERSION {MEMCACHED_VERSION} keg-{}", env!("CARGO_PKG_VERSION")));
                (Outcome::Done, false)
            }
            Request::Verbosity { level, noreply } => {
                self.verbosity.store(level, Ordering::Relaxed);
                reply::line(out, OK);
                (Outcome::Done, noreply)
            }
            Request::Quit => (Outcome::Close, false),
            Request::Stats { group } => {
                self.stats(group, out);
                (Outcome::Done, false)
            }
            Request::MetaNoop => {
                reply::line(out, MN);
                (Outcome::Done, false)
            }
            Request::Meta { command, key, flags, data } => {
                self.meta(command, key, &flags, data, out);
                (Outcome::Done, false)
            }
            Request::MetaTooLarge { key, flags, skip } => {
                let mut buf = [0; MAX_KEY_BUF];
                let key = meta_key(key, &flags, &mut buf).filter(|_| flags.mode == MetaMode::Set);
                self.too_large(key, out);
                (Outcome::Skip(skip), false)
            }
        };
        if noreply {
            out.truncate(mark);
        }
        outcome
    }

    /// `mg`, `ms`, `md`, `ma`, `me`. Errors are always answered; `q` drops only
    /// the common outcome's line (`EN` of `mg`, `HD` of the others).
    fn meta(&self, command: MetaCommand, sent_key: &[u8], flags: &MetaFlags<'_>, data: &[u8], out: &mut Vec<u8>) {
        let mut buf = [0; MAX_KEY_BUF];
        let Some(key) = meta_key(sent_key, flags, &mut buf) else {
            self.refuse(ProtocolError::MetaBadKey, out);
            return;
        };
        let c = &self.counters;
        let now = unix_now();
        if command == MetaCommand::Get {
            return self.meta_get(key, sent_key, flags, out);
        }
        if command == MetaCommand::Debug {
            return self.meta_debug(key, sent_key, out);
        }
        if command == MetaCommand::Delete && flags.invalidate {
            return self.invalidate(key, sent_key, flags, out);
        }
        let change = match command {
            MetaCommand::Set => {
                bump(&c.cmd_set);
                let ttl = ttl_of(flags.ttl.unwrap_or(0), now);
                Change::Store { mode: flags.mode, data, flags: flags.client_flags.unwrap_or(0), ttl }
            }
            MetaCommand::Delete => Change::Delete,
            _ => Change::Arith {
                decrement: flags.decrement,
                delta: flags.delta,
                ttl: flags.ttl.map(|t| ttl_of(t, now)),
                vivify: flags.vivify.map(|t| (flags.initial, ttl_of(t, now))),
            },
        };
        let mut applied = self.store.apply(key, &change, flags.compare);
        if let (MetaCommand::Set, Some(compare)) = (command, flags.compare) {
            match applied {
                // With I, a cas older than the item's (or the held copy's)
                // stores the data as a stale copy.
                Ok(Applied::Exists | Applied::NotFound) if flags.invalidate => {
                    return self.store_stale(key, sent_key, flags, &change, compare, out);
                }
                // The cas of a stub or stale copy the server holds: the
                // recache winner writing back. Stored if the cache still has
                // no value (an add), as memcached stores over its own stub.
                Ok(Applied::NotFound)
                    if flags.mode == MetaMode::Set && self.recache.held_cas(key, unix_now_ms()) == Some(compare) =>
                {
                    if let Change::Store { data, flags: client_flags, ttl, .. } = change {
                        let add = Change::Store { mode: MetaMode::Add, data, flags: client_flags, ttl };
                        applied = match self.store.apply(key, &add, None) {
                            Ok(Applied::NotStored) => Ok(Applied::Exists),
                            other => other,
                        };
                    }
                }
                _ => {}
            }
        }
        // A write that changed the item (or may have: an I/O error) makes
        // what was held for the key stale; one that changed nothing leaves
        // it (a late writer with a wrong cas does not take the winner's stub
        // away). An md that finds no cache item deletes a held one.
        let changed = match &applied {
            Ok(applied) => matches!(applied, Applied::Done { .. }),
            Err(e) => may_have_written(e),
        };
        let held = match (command, &applied) {
            (MetaCommand::Delete, Ok(Applied::NotFound)) => self.recache.take(key, flags.compare, unix_now_ms()),
            _ if changed => {
                self.wrote(key);
                None
            }
            _ => None,
        };
        let applied = match (applied, held) {
            (Ok(Applied::NotFound), Some(true)) => Ok(Applied::Done { version: 0, number: None, expires_at_ms: 0 }),
            (Ok(Applied::NotFound), Some(false)) => Ok(Applied::Exists),
            (applied, _) => applied,
        };
        let applied = match applied {
            Ok(applied) => applied,
            Err(e) => return self.error_reply(&e, out),
        };
        self.count_meta(command, flags, applied);
        match applied {
            Applied::Done { version, number, expires_at_ms } => {
                let info =
                    Info { cas: version, flags: 0, size: 0, expires_at_ms, stale: false, win: Win::None, seen: None };
                match number {
                    Some(n) if flags.value => {
                        let text = n.to_string();
                        meta_reply(out, Some(text.as_bytes()), sent_key, flags, Some(&info));
                    }
                    _ if flags.quiet => {}
                    _ => meta_reply(out, None, sent_key, flags, Some(&info)),
                }
            }
            Applied::NotStored => meta_code(out, "NS", sent_key, flags),
            Applied::Exists => meta_code(out, "EX", sent_key, flags),
            Applied::NotFound => meta_code(out, "NF", sent_key, flags),
        }
    }

    /// A storage command over the item size limit: answered, and the old
    /// value of `overwritten` (a set, replace or cas; `ms` in set mode)
    /// deleted, as memcached does: the client meant to overwrite it, so it
    /// must not stay readable.
    fn too_large(&self, overwritten: Option<&[u8]>, out: &mut Vec<u8>) {
        bump(&self.counters.cmd_set);
        if let Some(key) = overwritten {
            if let Err(e) = self.store.delete(key) {
                self.failed(&e);
            }
            self.wrote(key);
        }
        bump(&self.counters.keg_server_errors);
        reply::line(out, TOO_LARGE);
    }

    /// A write of `key` went to the store: what the server holds for the key's
    /// old item (win tokens, stubs, stale copies, fetch hints) is dropped.
    fn wrote(&self, key: &[u8]) {
        self.recache.forget(key);
        self.access.written(key);
    }

    /// `mg`: the cache's item, or an item the recache state holds, or a
    /// miss (`EN`, unless `q`).
    fn meta_get(&self, key: &[u8], sent_key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
        let c = &self.counters;
        let now = unix_now();
        bump(&c.cmd_get);
        let found = match flags.ttl {
            Some(exptime) => {
                bump(&c.cmd_touch);
                self.store.get_and_touch(key, ttl_of(exptime, now))
            }
            None => self.store.get(key),
        };
        let now_ms = unix_now_ms();
        match found {
            Ok(Some(item)) => {
                bump(&c.get_hits);
                if flags.ttl.is_some() {
                    bump(&c.touch_hits);
                }
                // R: win the recache of an item with less time left than asked.
                let claim = flags.recache.is_some_and(|r| {
                    item.expires_at_ms != 0
                        && ttl_left(item.expires_at_ms, now_ms) < i64::try_from(r).unwrap_or(i64::MAX)
                });
                let win = self.recache.on_hit(key, item.cas, claim);
                let seen = Some(self.access.fetch(key, flags.peek));
                let value = item.value.as_ref();
                let info = Info {
                    cas: item.cas,
                    flags: item.flags,
                    size: value.len(),
                    expires_at_ms: item.expires_at_ms,
                    stale: false,
                    win,
                    seen,
                };
                meta_reply(out, flags.value.then_some(value), sent_key, flags, Some(&info));
            }
            Ok(None) => {
                // A stub or a stale copy held for the key, or a new stub (N).
                let at = |exptime| expiry_after(now_ms, ttl_of(exptime, now));
                // (An N with an expiration time already past still makes a stub, as memcached.)
                let vivify = flags.vivify.map(|t| at(t).unwrap_or(now_ms));
                let touch = flags.ttl.map(|t| at(t).unwrap_or(now_ms));
                if let Some((held, win)) = self.recache.on_miss(key, vivify, touch, now_ms) {
                    bump(&c.get_hits);
                    let seen = Some(self.access.fetch(key, flags.peek));
                    let info = Info {
                        cas: held.cas,
                        flags: held.flags,
                        size: held.value.len(),
                        expires_at_ms: held.expires_at_ms,
                        stale: held.stale,
                        win,
                        seen,
                    };
                    meta_reply(out, flags.value.then_some(&held.value), sent_key, flags, Some(&info));
                    return;
                }
                bump(&c.get_misses);
                if flags.ttl.is_some() {
                    bump(&c.touch_misses);
                }
                if !flags.quiet {
                    // With the key and the opaque, so pipelined replies can be matched.
                    meta_code(out, "EN", sent_key, flags);
                }
            }
            Err(e) => self.error_reply(&e, out),
        }
    }

    /// `ms I C<cas>` whose cas is older than the item's: the data becomes a
    /// stale copy held by the server (as `md I` leaves one) and the item
    /// leaves the cache; a cas not older is `EX`, a missing item `NF`.
    fn store_stale(
        &self,
        key: &[u8],
        sent_key: &[u8],
        flags: &MetaFlags<'_>,
        change: &Change<'_>,
        compare: u64,
        out: &mut Vec<u8>,
    ) {
        let Change::Store { data, flags: client_flags, ttl, .. } = *change else { return };
        for _ in 0..4 {
            let item = match self.store.get(key) {
                Ok(Some(item)) => item,
                Ok(None) => {
                    // Over a stale copy the server holds, as memcached over its stale item.
                    let now_ms = unix_now_ms();
                    let expires_at_ms = expiry_after(now_ms, ttl).unwrap_or(now_ms);
                    return match self.recache.replace_stale(key, compare, data, client_flags, expires_at_ms, now_ms) {
                        Some(true) if flags.quiet => {}
                        Some(true) => meta_code(out, "HD", sent_key, flags),
                        Some(false) => meta_code(out, "EX", sent_key, flags),
                        None => meta_code(out, "NF", sent_key, flags),
                    };
                }
                Err(e) => return self.error_reply(&e, out),
            };
            if compare >= item.cas {
                return meta_code(out, "EX", sent_key, flags);
            }
            let now_ms = unix_now_ms();
            let expires_at_ms = expiry_after(now_ms, ttl).unwrap_or(now_ms);
            self.access.written(key);
            match self.hold_instead(key, item.cas, data, client_flags, expires_at_ms) {
                Ok(Some(cas)) => {
                    bump(&self.counters.total_items);
                    return stale_reply(out, sent_key, flags, cas, client_flags, expires_at_ms);
                }
                Ok(None) => {}
                Err(e) => return self.error_reply(&e, out),
            }
        }
        meta_code(out, "EX", sent_key, flags);
    }

    /// Holds a stale copy of `value` for `key` and deletes the cache's item
    /// of version `version`: the copy's cas, or `None` (nothing held) if the
    /// item changed meanwhile.
    fn hold_instead(
        &self,
        key: &[u8],
        version: u64,
        value: &[u8],
        flags: u32,
        expires_at_ms: u64,
    ) -> StoreResult<Option<u64>> {
        let cas = self.recache.hold_stale(key, value, flags, expires_at_ms);
        match self.store.apply(key, &Change::Delete, Some(version)) {
            Ok(Applied::Done { .. }) => Ok(Some(cas)),
            other => {
                self.recache.forget_held(key, cas);
                other.map(|_| None)
            }
        }
    }

    /// `me`: `ME <key> exp=<seconds left, -1 never> la=<seconds since the
    /// last mg> cas=<cas> fetch=<yes|no> cls=1 size=<key and value bytes>`,
    /// or `EN`. Not a fetch itself.
    fn meta_debug(&self, key: &[u8], sent_key: &[u8], out: &mut Vec<u8>) {
        let now_ms = unix_now_ms();
        let (cas, expires_at_ms, len) = match self.store.get(key) {
            Ok(Some(item)) => (item.cas, item.expires_at_ms, item.value.as_ref().len()),
            Ok(None) => match self.recache.held(key, now_ms) {
                Some(held) => (held.cas, held.expires_at_ms, held.value.len()),
                None => return reply::line(out, "EN"),
            },
            Err(e) => return self.error_reply(&e, out),
        };
        let seen = self.access.fetch(key, true);
        out.extend_from_slice(b"ME ");
        out.extend_from_slice(sent_key);
        let _ = write!(
            out,
            " exp={} la={} cas={cas} fetch={} cls=1 size={}\r\n",
            ttl_left(expires_at_ms, now_ms),
            seen.idle_secs,
            if seen.hit_before { "yes" } else { "no" },
            key.len() + len
        );
    }

    /// `md I`: the item becomes a stale copy held by the server (served by
    /// `mg` with `X`, the first fetcher winning its recache) and leaves the
    /// cache, so the files never hold it as a live value. `T` gives the copy
    /// a new expiry; `C` acts only on that version.
    fn invalidate(&self, key: &[u8], sent_key: &[u8], flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
        let c = &self.counters;
        // A write between the read and the delete: read again (a few times).
        for _ in 0..4 {
            let item = match self.store.get(key) {
                Ok(Some(item)) => item,
                Ok(None) => {
                    // A held copy is marked stale again (a new cas, its win open again).
                    let ttl = flags.ttl.map(|t| expiry_after(unix_now_ms(), ttl_of(t, unix_now())).unwrap_or(1));
                    return match self.recache.restale(key, flags.compare, ttl, unix_now_ms()) {
                        Some(true) => {
                            bump(&c.delete_hits);
                            if !flags.quiet {
                                meta_code(out, "HD", sent_key, flags);
                            }
                        }
                        Some(false) => meta_code(out, "EX", sent_key, flags),
                        None => {
                            bump(&c.delete_misses);
                            meta_code(out, "NF", sent_key, flags)
                        }
                    };
                }
                Err(e) => return self.error_reply(&e, out),
            };
            if flags.compare.is_some_and(|v| v != item.cas) {
                bump(&c.cas_badval);
                return meta_code(out, "EX", sent_key, flags);
            }
            let now_ms = unix_now_ms();
            let expires_at_ms = match flags.ttl {
                Some(t) => expiry_after(now_ms, ttl_of(t, unix_now())).unwrap_or(now_ms),
                None => item.expires_at_ms,
            };
            match self.hold_instead(key, item.cas, item.value.as_ref(), item.flags, expires_at_ms) {
                Ok(Some(cas)) => {
                    bump(&c.delete_hits);
                    return stale_reply(out, sent_key, flags, cas, item.flags, expires_at_ms);
                }
                Ok(None) => {}
                Err(e) => return self.error_reply(&e, out),
            }
        }
        meta_code(out, "EX", sent_key, flags);
    }

    /// The `stats` counters of a meta write, as its classic command counts them.
    fn count_meta(&self, command: MetaCommand, flags: &MetaFlags<'_>, applied: Applied) {
        let c = &self.counters;
        let done = matches!(applied, Applied::Done { .. });
        // (An add ignores C, as memcached's.)
        if flags.compare.is_some() && !(command == MetaCommand::Set && flags.mode == MetaMode::Add) {
            bump(match applied {
                Applied::Done { .. } => &c.cas_hits,
                Applied::Exists => &c.cas_badval,
                _ => &c.cas_misses,
            });
        }
        match command {
            MetaCommand::Set if done => bump(&c.total_items),
            MetaCommand::Delete if done => bump(&c.delete_hits),
            MetaCommand::Delete if applied == Applied::NotFound => bump(&c.delete_misses),
            MetaCommand::Arith if done || applied == Applied::NotFound => match (flags.decrement, done) {
                (false, true) => bump(&c.incr_hits),
                (false, false) => bump(&c.incr_misses),
                (true, true) => bump(&c.decr_hits),
                (true, false) => bump(&c.decr_misses),
            },
            _ => {}
        }
    }

    fn retrieve<'a>(
        &self,
        kind: RetrieveKind,
        exptime: i64,
        keys: impl Iterator<Item = &'a [u8]>,
        out: &mut Vec<u8>,
        resume: usize,
        out_limit: usize,
    ) -> Outcome {
        let ttl = ttl_of(exptime, unix_now());
        let c = &self.counters;
        for (i, key) in keys.enumerate().skip(resume) {
            if i > resume && out.len() >= out_limit {
                return Outcome::Partial(i);
            }
            if !check_key(key) {
                self.refuse(ProtocolError::BadFormat, out);
                return Outcome::Done;
            }
            bump(&c.cmd_get);
            let found = if kind.touches() {
                bump(&c.cmd_touch);
                self.store.get_and_touch(key, ttl)
            } else {
                self.store.get(key)
            };
            match found {
                Ok(Some(item)) => {
                    bump(&c.get_hits);
                    if kind.touches() {
                        bump(&c.touch_hits);
                    }
                    let cas = kind.with_cas().then_some(item.cas);
                    reply::value(out, key, item.flags, item.value.as_ref(), cas);
                }
                Ok(None) => {
                    bump(&c.get_misses);
                    if kind.touches() {
                        bump(&c.touch_misses);
                    }
                }
                Err(e) => {
                    // memcached ends the reply with the error in place of END.
                    self.error_reply(&e, out);
                    return Outcome::Done;
                }
            }
        }
        reply::line(out, END);
        Outcome::Done
    }

    /// A classic storage command; whether it may have changed the key's item
    /// (false only for a definite "nothing done": `NOT_STORED`, `EXISTS`,
    /// `NOT_FOUND`, or a value refused as too large or not a number).
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        kind: StoreKind,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: &[u8],
        cas: u64,
        out: &mut Vec<u8>,
    ) -> bool {
        let c = &self.counters;
        bump(&c.cmd_set);
        let ttl = ttl_of(exptime, unix_now());
        let s = &*self.store;
        let stored = match kind {
            StoreKind::Set => s.set(key, data, flags, ttl).map(|_| STORED),
            StoreKind::Add => s.add(key, data, flags, ttl).map(|v| if v.is_some() { STORED } else { NOT_STORED }),
            StoreKind::Replace => {
                s.replace(key, data, flags, ttl).map(|v| if v.is_some() { STORED } else { NOT_STORED })
            }
            StoreKind::Append => s.append(key, data).map(|v| if v.is_some() { STORED } else { NOT_STORED }),
            StoreKind::Prepend => s.prepend(key, data).map(|v| if v.is_some() { STORED } else { NOT_STORED }),
            StoreKind::Cas => s.cas(key, data, flags, ttl, cas).map(|r| match r {
                CasResult::Stored(_) => {
                    bump(&c.cas_hits);
                    STORED
                }
                CasResult::Changed => {
                    bump(&c.cas_badval);
                    EXISTS
                }
                CasResult::Missing => {
                    bump(&c.cas_misses);
                    NOT_FOUND
                }
            }),
        };
        match stored {
            Ok(answer) => {
                if answer == STORED {
                    bump(&c.total_items);
                }
                reply::line(out, answer);
                answer == STORED
            }
            Err(e) => {
                self.error_reply(&e, out);
                may_have_written(&e)
            }
        }
    }

    /// `incr`/`decr`; whether it may have changed the key's item.
    fn arith(&self, incr: bool, key: &[u8], delta: u64, out: &mut Vec<u8>) -> bool {
        let c = &self.counters;
        let result = if incr { self.store.incr(key, delta) } else { self.store.decr(key, delta) };
        let (hits, misses) = if incr { (&c.incr_hits, &c.incr_misses) } else { (&c.decr_hits, &c.decr_misses) };
        match result {
            Ok(Some(n)) => {
                bump(hits);
                reply::number(out, n);
                true
            }
            Ok(None) => {
                bump(misses);
                reply::line(out, NOT_FOUND);
                false
            }
            Err(e) => {
                self.error_reply(&e, out);
                may_have_written(&e)
            }
        }
    }

    fn flush_all(&self, delay: i64, out: &mut Vec<u8>) {
        bump(&self.counters.cmd_flush);
        let now = unix_now();
        match ttl_of(delay, now) {
            Some(d) if !d.is_zero() => {
                self.flush_at.store(now + d.as_secs(), Ordering::Relaxed);
                reply::line(out, OK);
            }
            _ => {
                self.flush_at.store(0, Ordering::Relaxed);
                self.recache.clear();
                match self.store.clear() {
                    Ok(()) => reply::line(out, OK),
                    Err(e) => self.error_reply(&e, out),
                }
            }
        }
    }

    /// Clears the store if a delayed `flush_all` has come due (checked before
    /// every request, so nothing stored after the due time is lost to it).
    fn run_due_flush(&self) {
        let at = self.flush_at.load(Ordering::Relaxed);
        if at != 0
            && unix_now() >= at
            && self.flush_at.compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.recache.clear();
            if let Err(e) = self.store.clear() {
                self.failed(&e);
            }
        }
    }

    fn stats(&self, group: &[u8], out: &mut Vec<u8>) {
        match group {
            b"" => {
                let store = self.store.stats();
                self.counters.write_stats(out, self.started, &self.config, &store);
            }
            b"settings" => {
                let store = self.store.stats();
                write_settings(out, &self.config, &store, self.verbosity.load(Ordering::Relaxed));
            }
            b"reset" => {
                self.counters.reset();
                reply::line(out, RESET);
                return;
            }
            // keg has no slab classes and keeps no per-item histograms: these
            // groups exist (tools ask for them) and are empty.
            b"items" | b"slabs" | b"sizes" | b"conns" => {}
            _ => {
                self.refuse(ProtocolError::UnknownCommand, out);
                return;
            }
        }
        reply::line(out, END);
    }

    /// Answers `yes` (counting a hit) or `NOT_FOUND` (counting a miss), or the error.
    fn found_or_not(
        &self,
        found: StoreResult<bool>,
        (hits, yes): (&Counter, &str),
        misses: &Counter,
        out: &mut Vec<u8>,
    ) {
        match found {
            Ok(true) => {
                bump(hits);
                reply::line(out, yes);
            }
            Ok(false) => {
                bump(misses);
                reply::line(out, NOT_FOUND);
            }
            Err(e) => self.error_reply(&e, out),
        }
    }

    /// The reply to a failed store operation.
    fn error_reply(&self, e: &StoreError, out: &mut Vec<u8>) {
        match e {
            StoreError::NotANumber | StoreError::BadKey(_) => {
                bump(&self.counters.keg_client_errors);
                reply::client_error(out, e);
            }
            StoreError::TooLarge => {
                bump(&self.counters.keg_server_errors);
                reply::line(out, TOO_LARGE);
            }
            StoreError::Failed(_) => {
                self.failed(e);
                reply::server_error(out, e);
            }
        }
    }

    /// Counts a store failure and logs it (at most one line a second).
    fn failed(&self, e: &StoreError) {
        bump(&self.counters.keg_server_errors);
        let now = unix_now();
        if self.last_failure_log.swap(now, Ordering::Relaxed) != now {
            self.log.error(format_args!("store error: {e}"));
        }
    }

    /// Counts bytes read and written (for `stats`).
    pub(crate) fn traffic(&self, read: usize, written: usize) {
        // (A counter other threads write too: no add of nothing.)
        if read > 0 {
            add(&self.counters.bytes_read, read as u64);
        }
        if written > 0 {
            add(&self.counters.bytes_written, written as u64);
        }
    }
}

/// Room for a decoded base64 key: a key token is at most 250 bytes, which
/// decode to at most 187.
const MAX_KEY_BUF: usize = 192;

/// The key a meta request names: as sent, or decoded from base64 (`b`)
/// into `buf`; `None` if it does not decode to a non-empty key.
/// Whether a write that failed with `e` may still have changed its item: a
/// refusal decided before writing did not; any other failure (I/O) may have.
fn may_have_written(e: &StoreError) -> bool {
    !matches!(e, StoreError::NotANumber | StoreError::TooLarge | StoreError::BadKey(_))
}

fn meta_key<'k>(sent: &'k [u8], flags: &MetaFlags<'_>, buf: &'k mut [u8; MAX_KEY_BUF]) -> Option<&'k [u8]> {
    if !flags.base64 {
        return Some(sent);
    }
    use base64::Engine as _;
    let len = base64::engine::general_purpose::STANDARD.decode_slice(sent, buf).ok()?;
    (len > 0).then(|| &buf[..len])
}

/// What the return flags of a meta reply report about an item.
struct Info {
    cas: u64,
    flags: u32,
    size: usize,
    expires_at_ms: u64,
    /// `X`: a stale copy.
    stale: bool,
    /// `W` or `Z`.
    win: Win,
    /// `h` and `l` (asked for by `mg` only).
    seen: Option<Seen>,
}

/// A meta reply for an item: `VA <size> <flags>*` and the data when `value`
/// is given, else `HD <flags>*`; the return flags in the request's order.
fn meta_reply(out: &mut Vec<u8>, value: Option<&[u8]>, sent_key: &[u8], flags: &MetaFlags<'_>, info: Option<&Info>) {
    match value {
        Some(v) => {
            let _ = write!(out, "VA {}", v.len());
        }
        None => out.extend_from_slice(b"HD"),
    }
    meta_return_flags(out, sent_key, flags, info);
    out.extend_from_slice(b"\r\n");
    if let Some(v) = value {
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
}

/// The `HD` of a write that left a stale copy (`md I`, `ms I`), unless `q`.
fn stale_reply(
    out: &mut Vec<u8>,
    sent_key: &[u8],
    flags: &MetaFlags<'_>,
    cas: u64,
    client_flags: u32,
    expires_at_ms: u64,
) {
    if !flags.quiet {
        let info = Info { cas, flags: client_flags, size: 0, expires_at_ms, stale: false, win: Win::None, seen: None };
        meta_reply(out, None, sent_key, flags, Some(&info));
    }
}

/// A meta reply without an item (`EN`, `NS`, `EX`, `NF`): only the key and the opaque.
fn meta_code(out: &mut Vec<u8>, code: &str, sent_key: &[u8], flags: &MetaFlags<'_>) {
    out.extend_from_slice(code.as_bytes());
    meta_return_flags(out, sent_key, flags, None);
    out.extend_from_slice(b"\r\n");
}

fn meta_return_flags(out: &mut Vec<u8>, sent_key: &[u8], flags: &MetaFlags<'_>, info: Option<&Info>) {
    for &flag in flags.returns() {
        match (flag, info) {
            (b'k', _) => {
                out.extend_from_slice(b" k");
                out.extend_from_slice(sent_key);
                if flags.base64 {
                    out.extend_from_slice(b" b");
                }
            }
            (b'O', _) => {
                out.extend_from_slice(b" O");
                out.extend_from_slice(flags.opaque.unwrap_or_default());
            }
            (b'c', Some(i)) => {
                let _ = write!(out, " c{}", i.cas);
            }
            (b'f', Some(i)) => {
                let _ = write!(out, " f{}", i.flags);
            }
            (b'h', Some(Info { seen: Some(seen), .. })) => {
                let _ = write!(out, " h{}", u8::from(seen.hit_before));
            }
            (b'l', Some(Info { seen: Some(seen), .. })) => {
                let _ = write!(out, " l{}", seen.idle_secs);
            }
            (b's', Some(i)) => {
                let _ = write!(out, " s{}", i.size);
            }
            (b't', Some(i)) => {
                let _ = write!(out, " t{}", ttl_left(i.expires_at_ms, unix_now_ms()));
            }
            _ => {}
        }
    }
    // (In memcached 1.6's order.)
    if let Some(i) = info {
        match (i.win, i.stale) {
            (Win::Won, true) => out.extend_from_slice(b" X W"),
            (Win::Won, false) => out.extend_from_slice(b" W"),
            (Win::Taken, true) => out.extend_from_slice(b" Z X"),
            (Win::Taken, false) => out.extend_from_slice(b" Z"),
            (Win::None, true) => out.extend_from_slice(b" X"),
            (Win::None, false) => {}
        }
    }
}

/// Seconds an item has left, as `mg`'s `t` reports them: -1 for never,
/// else rounded up (an item set with `T30` reports 30).
fn ttl_left(expires_at_ms: u64, now_ms: u64) -> i64 {
    if expires_at_ms == 0 {
        return -1;
    }
    i64::try_from(expires_at_ms.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptimes() {
        let now = 2_000_000_000;
        assert_eq!(ttl_of(0, now), None);
        assert_eq!(ttl_of(-1, now), Some(Duration::ZERO));
        assert_eq!(ttl_of(i64::MIN, now), Some(Duration::ZERO));
        assert_eq!(ttl_of(60, now), Some(Duration::from_secs(60)));
        assert_eq!(ttl_of(RELATIVE_EXPTIME_MAX, now), Some(Duration::from_secs(2_592_000)));
        assert_eq!(ttl_of(now as i64 + 90, now), Some(Duration::from_secs(90)));
        assert_eq!(ttl_of(RELATIVE_EXPTIME_MAX + 1, now), Some(Duration::ZERO));
        assert_eq!(ttl_of(i64::MAX, now), Some(Duration::from_secs(i64::MAX as u64 - now)));
    }
}
