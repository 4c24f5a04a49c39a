//! Durability: group commit (one thread fsyncs for every writer waiting on
//! it) and the fsync round itself.

use std::sync::{Condvar, Mutex};

use super::rank::{Held, Rank};
use super::Engine;
use crate::config::Durability;
use crate::error::Result;
use crate::stats::bump;

/// Group commit: one thread fsyncs for every writer waiting on it.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Default)]
struct GroupState {
    durable_seq: u64,
    syncing: bool,
}

impl GroupCommit {
    /// Group commit state for a cache whose records up to `durable_seq` are durable.
    pub(crate) fn new(durable_seq: u64) -> GroupCommit {
        GroupCommit { state: Mutex::new(GroupState { durable_seq, syncing: false }), done: Condvar::new() }
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
        loop {
            if st.durable_seq >= seq {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                drop(st);
                drop(held);
                let result = self.sync_now();
                (held, st) = lock();
                st.syncing = false;
                g.done.notify_all();
                match result {
                    Ok(done) => st.durable_seq = st.durable_seq.max(done),
                    Err(e) => return Err(e),
                }
                continue;
            }
            st = g.done.wait(st).unwrap_or_else(|e| e.into_inner());
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
