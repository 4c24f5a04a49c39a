//! The meta protocol's recache coordination: win tokens (`W`/`Z`), the stubs
//! `mg N` creates on a miss, and the stale copies `md I` leaves behind.
//!
//! memcached keeps these as bits and items in its memory; keg serve keeps
//! them here, in the server's memory, and never in the cache's files. So
//! the cache on disk only ever holds values clients wrote: after a restart
//! a stub or a stale copy is simply gone (a miss, as after a memcached
//! restart), never a value read back as a real one. Lost win tokens only
//! let a client win a recache again.
//!
//! A stub or a stale copy is served only by `mg`, and only while the cache
//! has no value for the key; every write of the key through the server
//! forgets what is held for it. Bounded: at most [`MAX_ENTRIES`] keys and
//! [`MAX_HELD_BYTES`] bytes of stale values; past either, some entries are
//! dropped (a dropped stub lets another client win; a dropped stale copy
//! reads as a miss). `tests/serve/meta.rs` shows each flow as clients see it.
//!
//! Its mutex is a leaf lock: taken with no other lock held (the store's
//! calls come before or after, never under it), and nothing is called
//! while it is held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Most keys with a win token, stub or stale copy held at once.
pub const MAX_ENTRIES: usize = 65_536;
/// Most bytes of stale values held at once.
pub const MAX_HELD_BYTES: usize = 64 << 20;
/// Cas uniques of held items: the last 2^24 numbers below 2^32, in turn. Below
/// 2^32 because clients in use read cas tokens as 32-bit numbers
/// (meta-memcache 4.3.0 drops a larger one, and with it the lease's cas);
/// a held item's cas is only compared while the cache has no item for the
/// key, so it cannot be taken for a cache item's.
const HELD_CAS_BASE: u64 = (1 << 32) - (1 << 24);
/// How many held cas uniques there are before they repeat.
const HELD_CAS_SPAN: u64 = 1 << 24;

/// A win flag of an `mg` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Win {
    /// None to report.
    None,
    /// `W`: this client won the recache.
    Won,
    /// `Z`: another client has won it.
    Taken,
}

/// An item held here instead of in the cache: a stub (empty, from `mg N`) or
/// a stale copy (from `md I`).
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) value: Vec<u8>,
    pub(crate) flags: u32,
    pub(crate) cas: u64,
    /// Unix ms; 0 never.
    pub(crate) expires_at_ms: u64,
    /// `X`: a stale copy.
    pub(crate) stale: bool,
    won: bool,
}

#[derive(Default)]
struct State {
    /// Keys whose cache item (of this version) has had a win handed out.
    wins: HashMap<Vec<u8>, u64>,
    held: HashMap<Vec<u8>, Held>,
    held_bytes: usize,
    next_cas: u64,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Recache {
    state: Mutex<State>,
    /// Whether anything is held: requests skip the lock while nothing is.
    active: AtomicBool,
}

impl Recache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anything may be held (a request that does not ask for a win
    /// skips the lock when not).
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    fn activate(&self) {
        self.active.store(true, Ordering::Release);
    }

    /// An `mg` hit of the cache item of `key` at `version`: `Z` if a win was
    /// handed out for this version; else, when `claim` (an `R` whose time
    /// has come), `W` and the win is recorded.
    pub(crate) fn on_hit(&self, key: &[u8], version: u64, claim: bool) -> Win {
        if !claim && !self.is_active() {
            return Win::None;
        }
        let mut s = self.lock();
        match s.wins.get(key) {
            Some(&v) if v == version => Win::Taken,
            _ if claim => {
                s.make_room(0);
                s.wins.insert(key.to_vec(), version);
                self.activate();
                Win::Won
            }
            _ => Win::None,
        }
    }

    /// An `mg` miss of the cache: the item held for `key` (a stub or a stale
    /// copy) with its win flag, the first caller winning; else, with
    /// `vivify` (the stub's expiry, Unix ms, 0 never), a new stub, won by
    /// this caller. `touch`: a new expiry for a held item (`mg T`).
    pub(crate) fn on_miss(
        &self,
        key: &[u8],
        vivify: Option<u64>,
        touch: Option<u64>,
        now_ms: u64,
    ) -> Option<(Held, Win)> {
        if vivify.is_none() && !self.is_active() {
            return None;
        }
        let mut s = self.lock();
        if s.live_held(key, now_ms).is_some() {
            if let Some(h) = s.held.get_mut(key) {
                if let Some(at) = touch {
                    h.expires_at_ms = at;
                }
                let win = if h.won { Win::Taken } else { Win::Won };
                h.won = true;
                return Some((h.clone(), win));
            }
        }
        let Some(expires_at_ms) = vivify else {
            self.settle(&s);
            return None;
        };
        let cas = s.new_cas();
        let stub = Held { value: Vec::new(), flags: 0, cas, expires_at_ms, stale: false, won: true };
        s.insert(key, stub.clone());
        self.activate();
        Some((stub, Win::Won))
    }

    /// Holds a stale copy of `key`'s item (`md I`); returns its new cas. A
    /// value over [`MAX_HELD_BYTES`] is not held (the key reads as a miss).
    pub(crate) fn hold_stale(&self, key: &[u8], value: &[u8], flags: u32, expires_at_ms: u64) -> u64 {
        let mut s = self.lock();
        let cas = s.new_cas();
        if value.len() <= MAX_HELD_BYTES {
            s.insert(key, Held { value: value.to_vec(), flags, cas, expires_at_ms, stale: true, won: false });
            self.activate();
        }
        cas
    }

    /// Forgets what is held for `key` (its cache item changed).
    pub(crate) fn forget(&self, key: &[u8]) {
        if self.is_active() {
            let mut s = self.lock();
            s.forget(key);
            self.settle(&s);
        }
    }

    /// An `md` that found no cache item: deletes the live item held for
    /// `key` if there is one and its cas is `compare` (when given). `None`:
    /// nothing held; `Some(false)`: held with another cas, kept.
    pub(crate) fn take(&self, key: &[u8], compare: Option<u64>, now_ms: u64) -> Option<bool> {
        if !self.is_active() {
            return None;
        }
        let mut s = self.lock();
        let held = s.live_held(key, now_ms)?;
        if compare.is_some_and(|c| c != held.cas) {
            return Some(false);
        }
        s.forget(key);
        self.settle(&s);
        Some(true)
    }

    /// An `md I` that found no cache item: marks the live item held for
    /// `key` stale again (a new cas, its win open again, and the expiry
    /// `expires_at_ms` if given). Answers as [`Recache::take`].
    pub(crate) fn restale(
        &self,
        key: &[u8],
        compare: Option<u64>,
        expires_at_ms: Option<u64>,
        now_ms: u64,
    ) -> Option<bool> {
        if !self.is_active() {
            return None;
        }
        let mut s = self.lock();
        let cas = s.live_held(key, now_ms)?.cas;
        if compare.is_some_and(|c| c != cas) {
            return Some(false);
        }
        let cas = s.new_cas();
        let held = s.held.get_mut(key)?;
        held.cas = cas;
        held.stale = true;
        held.won = false;
        if let Some(at) = expires_at_ms {
            held.expires_at_ms = at;
        }
        Some(true)
    }

    /// An `ms I C<cas>` that found no cache item: if `compare` is older than
    /// the live held item's cas, `value` replaces the held copy as a stale
    /// one (its win state kept, a new cas). Answers as [`Recache::take`].
    pub(crate) fn replace_stale(
        &self,
        key: &[u8],
        compare: u64,
        value: &[u8],
        flags: u32,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Option<bool> {
        if !self.is_active() {
            return None;
        }
        let mut s = self.lock();
        let held = s.live_held(key, now_ms)?;
        if compare >= held.cas {
            return Some(false);
        }
        let won = held.won;
        let cas = s.new_cas();
        s.insert(key, Held { value: value.to_vec(), flags, cas, expires_at_ms, stale: true, won });
        Some(true)
    }

    /// A copy of the live item held for `key`, if any (for `me`).
    pub(crate) fn held(&self, key: &[u8], now_ms: u64) -> Option<Held> {
        if !self.is_active() {
            return None;
        }
        self.lock().live_held(key, now_ms).cloned()
    }

    /// The cas of the live item held for `key`, if any.
    pub(crate) fn held_cas(&self, key: &[u8], now_ms: u64) -> Option<u64> {
        if !self.is_active() {
            return None;
        }
        self.lock().live_held(key, now_ms).map(|h| h.cas)
    }

    /// Forgets `key`'s held item if it is still the one of cas `cas`.
    pub(crate) fn forget_held(&self, key: &[u8], cas: u64) {
        let mut s = self.lock();
        if s.held.get(key).is_some_and(|h| h.cas == cas) {
            s.forget(key);
        }
        self.settle(&s);
    }

    /// Forgets everything (`flush_all`).
    pub(crate) fn clear(&self) {
        if self.is_active() {
            let mut s = self.lock();
            let next_cas = s.next_cas;
            *s = State { next_cas, ..State::default() };
            self.settle(&s);
        }
    }

    /// Marks the state inactive once nothing is held (under the lock).
    fn settle(&self, s: &State) {
        if s.wins.is_empty() && s.held.is_empty() {
            self.active.store(false, Ordering::Release);
        }
    }

    /// Keys and bytes held now.
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let s = self.lock();
        (s.wins.len() + s.held.len(), s.held_bytes)
    }
}

impl State {
    fn new_cas(&mut self) -> u64 {
        self.next_cas = (self.next_cas + 1) % HELD_CAS_SPAN;
        HELD_CAS_BASE + self.next_cas
    }

    /// The item held for `key` if it has not expired (an expired one is dropped).
    fn live_held(&mut self, key: &[u8], now_ms: u64) -> Option<&Held> {
        let expired = self.held.get(key).is_some_and(|h| h.expires_at_ms != 0 && h.expires_at_ms <= now_ms);
        if expired {
            self.forget(key);
        }
        self.held.get(key)
    }

    fn forget(&mut self, key: &[u8]) {
        self.wins.remove(key);
        if let Some(h) = self.held.remove(key) {
            self.held_bytes = self.held_bytes.saturating_sub(h.value.len());
        }
    }

    fn insert(&mut self, key: &[u8], held: Held) {
        self.forget(key);
        self.make_room(held.value.len());
        self.held_bytes += held.value.len();
        self.held.insert(key.to_vec(), held);
    }

    /// Drops entries until one more key with `bytes` of value fits the bounds.
    fn make_room(&mut self, bytes: usize) {
        while self.wins.len() + self.held.len() >= MAX_ENTRIES && !self.wins.is_empty() {
            let Some(k) = self.wins.keys().next().cloned() else { break };
            self.wins.remove(&k);
        }
        while (self.wins.len() + self.held.len() >= MAX_ENTRIES || self.held_bytes + bytes > MAX_HELD_BYTES)
            && !self.held.is_empty()
        {
            let Some(k) = self.held.keys().next().cloned() else { break };
            self.forget(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stub_is_won_once_then_taken_and_forgotten_by_a_write() {
        let r = Recache::default();
        assert!(r.on_miss(b"k", None, None, 1000).is_none(), "nothing held, no vivify");
        let (stub, win) = r.on_miss(b"k", Some(31_000), None, 1000).unwrap();
        assert_eq!((stub.value.len(), win, stub.stale), (0, Win::Won, false));
        assert!(stub.cas > HELD_CAS_BASE && stub.cas <= u64::from(u32::MAX));
        let (again, win) = r.on_miss(b"k", Some(31_000), None, 2000).unwrap();
        assert_eq!((again.cas, win), (stub.cas, Win::Taken));
        // Past its expiry it is gone; a vivify makes a new one, won again.
        assert!(r.on_miss(b"k", None, None, 31_000).is_none());
        assert_eq!(r.on_miss(b"k", Some(0), None, 31_000).unwrap().1, Win::Won);
        r.forget(b"k");
        assert!(r.on_miss(b"k", None, None, 32_000).is_none());
    }

    #[test]
    fn a_stale_copy_goes_to_its_first_fetcher_as_a_win() {
        let r = Recache::default();
        let cas = r.hold_stale(b"k", b"old", 7, 0);
        let (held, win) = r.on_miss(b"k", None, Some(5000), 1000).unwrap();
        assert_eq!(
            (held.value.as_slice(), held.flags, held.stale, held.cas, win),
            (&b"old"[..], 7, true, cas, Win::Won)
        );
        assert_eq!(held.expires_at_ms, 5000);
        assert_eq!(r.on_miss(b"k", Some(0), None, 1000).unwrap().1, Win::Taken);
        r.forget_held(b"k", cas + 1);
        assert!(r.on_miss(b"k", None, None, 1000).is_some(), "another cas: kept");
        r.forget_held(b"k", cas);
        assert!(r.on_miss(b"k", None, None, 1000).is_none());
    }

    #[test]
    fn wins_on_hits_follow_the_version() {
        let r = Recache::default();
        assert_eq!(r.on_hit(b"k", 5, false), Win::None);
        assert_eq!(r.on_hit(b"k", 5, true), Win::Won);
        assert_eq!(r.on_hit(b"k", 5, false), Win::Taken);
        assert_eq!(r.on_hit(b"k", 5, true), Win::Taken);
        // A new version of the item: the old win no longer counts.
        assert_eq!(r.on_hit(b"k", 6, false), Win::None);
        assert_eq!(r.on_hit(b"k", 6, true), Win::Won);
    }

    #[test]
    fn entries_and_bytes_stay_within_their_bounds() {
        let r = Recache::default();
        let big = vec![0u8; 1 << 20];
        for i in 0..100u32 {
            r.hold_stale(&i.to_be_bytes(), &big, 0, 0);
        }
        let (_, bytes) = r.len();
        assert!(bytes <= MAX_HELD_BYTES, "{bytes}");
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            r.on_hit(&i.to_be_bytes(), 1, true);
        }
        let (entries, _) = r.len();
        assert!(entries <= MAX_ENTRIES, "{entries}");
        r.clear();
        assert_eq!(r.len(), (0, 0));
    }
}
