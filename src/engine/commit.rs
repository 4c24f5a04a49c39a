//! Durability: group commit (one thread fsyncs for every writer waiting on
//! it) and the fsync round itself.
//!
//! Group commit shares an fsync only between writes whose records are
//! appended before the round is planned. Two writers taking turns would
//! otherwise each pay their own: while one's fsync runs, the other appends
//! and waits; the first returns, and the second, woken, plans its round
//! before the first (busy in its caller) has appended its next record. So
//! a leader that finds fewer writers waiting than the last round covered
//! first waits for the missing ones to arrive, for at most half the time
//! the last fsync took ([`GATHER_MAX`] at most): a write that arrives in
//! that time saves a whole fsync; a writer that stopped costs the next
//! round that wait once (the round after expects only those who came).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::rank::{Held, Rank};
use super::Engine;
use crate::config::Durability;
use crate::error::Result;
use crate::stats::bump;

/// The longest a group-commit leader waits for writers to join its round.
const GATHER_MAX: Duration = Duration::from_millis(2);

/// Group commit: one thread fsyncs for every writer waiting on it.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<GroupState>,
    /// A round ended (followers wait on it).
    done: Condvar,
    /// A writer arrived while the leader gathers its round.
    joined: Condvar,
}

#[derive(Default)]
struct GroupState {
    durable_seq: u64,
    /// A leader is gathering or running a round.
    syncing: bool,
    /// The leader is waiting for writers to join its round.
    gathering: bool,
    /// Writers that have come to wait for their records so far (each
    /// record appended before it came).
    arrived: u64,
    /// `arrived` when the last round was planned.
    planned: u64,
    /// Writers the last round covered.
    last_round: u64,
    /// Threads waiting on `done` (no wake-up is sent when there are none).
    waiting: usize,
    /// How long the last round's fsyncs took.
    last_sync: Duration,
}

impl GroupCommit {
    /// Group commit state for a cache whose records up to `durable_seq` are durable.
    pub(crate) fn new(durable_seq: u64) -> GroupCommit {
        GroupCommit {
            state: Mutex::new(GroupState { durable_seq, ..GroupState::default() }),
            done: Condvar::new(),
            joined: Condvar::new(),
        }
    }
}

impl Engine {
    /// Waits until `seq` is durable, in synced mode; returns at once otherwise.
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<()> {
        if self.config.durability == Durability::Synced {
            self.sync_to(seq)
        } else {
            Ok(())
        }
    }

    /// Makes every record up to `seq` durable, sharing the fsync with every
    /// other thread that waits at the same time.
    pub(crate) fn sync_to(&self, seq: u64) -> Result<()> {
        let g = &self.group;
        let lock = || (Held::enter(Rank::Group), g.state.lock().unwrap_or_else(|e| e.into_inner()));
        let (mut held, mut st) = lock();
        if st.durable_seq >= seq {
            return Ok(());
        }
        st.arrived += 1;
        if st.gathering {
            g.joined.notify_one();
        }
        loop {
            if st.durable_seq >= seq {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                let expected = st.planned + st.last_round;
                if st.arrived < expected {
                    let budget = (st.last_sync / 2).min(GATHER_MAX);
                    st.gathering = true;
                    st = g
                        .joined
                        .wait_timeout_while(st, budget, |s| s.arrived < expected)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    st.gathering = false;
                }
                // Every writer that has arrived appended its record first: the round covers them.
                st.last_round = st.arrived - st.planned;
                st.planned = st.arrived;
                drop(st);
                drop(held);
                let started = Instant::now();
                let result = self.sync_now();
                (held, st) = lock();
                st.syncing = false;
                st.last_sync = started.elapsed();
                if st.waiting > 0 {
                    g.done.notify_all();
                }
                match result {
                    Ok(done) => st.durable_seq = st.durable_seq.max(done),
                    Err(e) => return Err(e),
                }
                continue;
            }
            st.waiting += 1;
            st = g.done.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiting -= 1;
            if !st.syncing && st.durable_seq < seq {
                // The leader failed; a disabled writer reports why. (The
                // writer lock ranks below this one: let go of it first.)
                drop(st);
                drop(held);
                self.lock_writer().check_enabled()?;
                (held, st) = lock();
            }
        }
    }

    /// One fsync round: flushes buffers, fsyncs every file with unsynced bytes.
    /// Returns the sequence number everything up to which is now durable.
    /// A failed fsync disables writes: the kernel may have dropped the data.
    pub(crate) fn sync_now(&self) -> Result<u64> {
        let plan = {
            let mut w = self.lock_writer();
            w.check_enabled()?;
            w.plan_sync()?
        };
        bump(&self.counters.sync_rounds);
        match plan.run(&self.storage, &self.dir) {
            Ok(()) => Ok(plan.seq),
            Err(e) => {
                let mut w = self.lock_writer();
                w.sync_failed(&plan);
                Err(w.disable(e))
            }
        }
    }
}
