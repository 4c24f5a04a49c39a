//! The signal that wakes the background maintenance thread: writers raise
//! it when the cache nears its cap, close raises it with "stop". Its mutex is
//! a leaf: nothing else is locked while it is held.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Wakes the background thread.
#[derive(Default)]
pub(crate) struct Wake {
    state: Mutex<(bool, bool)>, // (work pending, stop)
    cv: Condvar,
}

impl Wake {
    /// Asks for a round of work (and, with `stop`, for the thread to end).
    pub(crate) fn signal(&self, stop: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 = true;
        st.1 |= stop;
        self.cv.notify_one();
    }

    /// Waits for a signal or `timeout`; returns true when asked to stop.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut st, _) = self.cv.wait_timeout_while(st, timeout, |s| !s.0).unwrap_or_else(|e| e.into_inner());
        st.0 = false;
        st.1
    }
}
