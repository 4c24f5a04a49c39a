//! Carrying out one parsed request against the store, and its reply.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::{check_key, ProtocolError, Request, RetrieveKind, StoreKind};
use super::reply::{self, DELETED, END, EXISTS, MN, NOT_FOUND, NOT_STORED, OK, RESET, STORED, TOO_LARGE, TOUCHED};
use super::stats::{add, bump, unix_now, write_settings, Counters};
use super::store::{CasResult, Store, StoreError, StoreResult, Ttl};
use super::{Config, Log, MEMCACHED_VERSION};
use crate::stripe::Counter;

/// Expiration times above this many seconds are Unix times (memcached's 30 days).
pub const RELATIVE_EXPTIME_MAX: i64 = 60 * 60 * 24 * 30;

/// What every connection of one server shares.
pub(crate) struct Shared<S> {
    pub(crate) store: Arc<S>,
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    pub(crate) started: Instant,
    pub(crate) log: Log,
    verbosity: AtomicU32,
    /// Unix time (s) of a pending delayed `flush_all`; 0: none.
    flush_at: AtomicU64,
    /// Unix time (s) of the last store failure logged, to log at most one a second.
    last_failure_log: AtomicU64,
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
                self.store(kind, key, flags, exptime, data, cas, out);
                (Outcome::Done, noreply)
            }
            Request::TooLarge { kind, key, noreply, skip } => {
                bump(&self.counters.cmd_set);
                // A failed set must not leave the old value readable (memcached
                // does the same): the client meant to overwrite it.
                if matches!(kind, StoreKind::Set | StoreKind::Replace | StoreKind::Cas) {
                    if let Err(e) = self.store.delete(key) {
                        self.failed(&e);
                    }
                }
                bump(&self.counters.keg_server_errors);
                reply::line(out, TOO_LARGE);
                (Outcome::Skip(skip), noreply)
            }
            Request::Delete { key, noreply } => {
                let c = &self.counters;
                let found = self.store.delete(key);
                self.found_or_not(found, (&c.delete_hits, DELETED), &c.delete_misses, out);
                (Outcome::Done, noreply)
            }
            Request::Arith { incr, key, delta, noreply } => {
                self.arith(incr, key, delta, out);
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
        };
        if noreply {
            out.truncate(mark);
        }
        outcome
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

    #[allow(clippy::too_many_arguments)]
    fn store(&self, kind: StoreKind, key: &[u8], flags: u32, exptime: i64, data: &[u8], cas: u64, out: &mut Vec<u8>) {
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
            }
            Err(e) => self.error_reply(&e, out),
        }
    }

    fn arith(&self, incr: bool, key: &[u8], delta: u64, out: &mut Vec<u8>) {
        let c = &self.counters;
        let result = if incr { self.store.incr(key, delta) } else { self.store.decr(key, delta) };
        let (hits, misses) = if incr { (&c.incr_hits, &c.incr_misses) } else { (&c.decr_hits, &c.decr_misses) };
        match result {
            Ok(Some(n)) => {
                bump(hits);
                reply::number(out, n);
            }
            Ok(None) => {
                bump(misses);
                reply::line(out, NOT_FOUND);
            }
            Err(e) => self.error_reply(&e, out),
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
