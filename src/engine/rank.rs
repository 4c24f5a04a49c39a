//! Lock ranks, checked in debug builds: a thread holding a lock of rank r
//! takes only locks of a rank above r (the table is in the engine's module
//! docs). A violation is a potential deadlock even when no test deadlocks, so
//! debug builds panic at the first acquisition out of order.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

/// The rank of each engine lock (see the table in `engine/mod.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    Maintenance = 1,
    Writer = 2,
    Group = 3,
    Checkpoint = 4,
    Removals = 5,
    Ghost = 6,
    Tags = 7,
}

thread_local! {
    /// The ranks this thread holds, in the order it took them.
    static HELD: RefCell<Vec<Rank>> = const { RefCell::new(Vec::new()) };
}

/// Proof that this thread noted `rank` as held; forgets it when dropped.
pub(crate) struct Held {
    #[cfg(debug_assertions)]
    rank: Rank,
}

impl Held {
    /// Notes that this thread is about to take a lock of `rank`, checking
    /// (in debug builds) that it holds none of the same or a higher rank.
    pub(crate) fn enter(rank: Rank) -> Held {
        #[cfg(debug_assertions)]
        {
            HELD.with(|held| {
                let mut held = held.borrow_mut();
                if let Some(top) = held.iter().max() {
                    assert!(*top < rank, "lock order: taking {rank:?} while holding {top:?} (held: {held:?})");
                }
                held.push(rank);
            });
            Held { rank }
        }
        #[cfg(not(debug_assertions))]
        {
            let _ = rank;
            Held {}
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(i) = held.iter().rposition(|&r| r == self.rank) {
                held.remove(i);
            }
        });
    }
}

/// A mutex guard whose lock rank is noted while it is held.
pub(crate) struct Ranked<'a, T> {
    // (Field order: the guard is released before the rank is forgotten.)
    guard: MutexGuard<'a, T>,
    _held: Held,
}

/// Takes `mutex`, which has `rank`, checking the order in debug builds. A
/// poisoned lock is taken anyway: every engine lock guards state that stays
/// consistent at each point a panic could unwind from.
pub(crate) fn lock<T>(mutex: &Mutex<T>, rank: Rank) -> Ranked<'_, T> {
    let held = Held::enter(rank);
    Ranked { guard: mutex.lock().unwrap_or_else(|e| e.into_inner()), _held: held }
}

impl<T> Deref for Ranked<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Ranked<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_in_rank_order_are_accepted_and_forgotten_when_released() {
        let (a, b) = (Mutex::new(1), Mutex::new(2));
        {
            let _w = lock(&a, Rank::Writer);
            let _c = lock(&b, Rank::Checkpoint);
        }
        // Both released: a lower rank may be taken again.
        let _m = lock(&a, Rank::Maintenance);
    }

    /// The rank tables in the engine's module docs and the crate docs list
    /// each lock with the number this enum gives it.
    #[test]
    fn the_documented_rank_tables_match_the_ranks() {
        let ranks = [
            (Rank::Maintenance, "maint"),
            (Rank::Writer, "writer"),
            (Rank::Group, "group"),
            (Rank::Checkpoint, "checkpoint"),
            (Rank::Removals, "removed_unsynced"),
            (Rank::Ghost, "ghost"),
            (Rank::Tags, "tags"),
        ];
        for (file, docs) in [("src/engine/mod.rs", include_str!("mod.rs")), ("src/lib.rs", include_str!("../lib.rs"))] {
            for (rank, field) in ranks {
                let row = format!("//! | {} | `Engine::{field}` |", rank as u8);
                assert!(docs.contains(&row), "{file} lacks the row {row:?}");
            }
            let last = format!("//! | {} | index shards, `Segments` map |", ranks.len() + 1);
            assert!(docs.contains(&last), "{file} lacks the row {last:?}");
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    fn a_lower_rank_under_a_higher_one_panics_in_debug_builds() {
        let (a, b) = (Mutex::new(1), Mutex::new(2));
        let out = std::panic::catch_unwind(|| {
            let _c = lock(&b, Rank::Checkpoint);
            let _w = lock(&a, Rank::Writer);
        });
        assert!(out.is_err());
    }
}
