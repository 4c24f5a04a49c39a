//! Single flight: of the callers that miss on one key at the same time, one
//! computes the value and the others wait for it (stampede protection for
//! [`Cache::get_or_set_with`](crate::Cache::get_or_set_with)).
//!
//! The table's mutex is a leaf: nothing else is locked while it is held, and
//! it is never held while a value is computed or the cache is called.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// The keys being computed now, each with the flight its waiters wait on.
#[derive(Default)]
pub(crate) struct Flights {
    table: Mutex<HashMap<Vec<u8>, Arc<Flight>>>,
}

#[derive(Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
}

/// What [`Flights::join`] made of the caller.
pub(crate) enum Role<'a> {
    /// Compute the value; the flight lands when this is dropped.
    Leader(Landing<'a>),
    /// Another caller computed (or failed to compute) the value: look again.
    Waited,
}

/// The leader's duty to land its flight, done on drop (so a panicking or
/// failing computation releases its waiters too).
pub(crate) struct Landing<'a> {
    flights: &'a Flights,
    key: Vec<u8>,
    flight: Arc<Flight>,
}

impl Flights {
    /// Joins the flight for `key`: becomes its leader if there is none,
    /// else waits until its leader lands.
    pub(crate) fn join(&self, key: &[u8]) -> Role<'_> {
        let flight = {
            let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
            match table.get(key) {
                Some(flight) => flight.clone(),
                None => {
                    let flight = Arc::new(Flight::default());
                    table.insert(key.to_vec(), flight.clone());
                    return Role::Leader(Landing { flights: self, key: key.to_vec(), flight });
                }
            }
        };
        let mut done = flight.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = flight.landed.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        Role::Waited
    }

    /// Keys being computed now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Callers waiting for the flight of `key` (each holds the flight; so do
    /// the table and the leader's landing).
    #[cfg(test)]
    fn waiters(&self, key: &[u8]) -> usize {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.get(key).map_or(0, |f| Arc::strong_count(f) - 2)
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.flights.table.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
        *self.flight.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.flight.landed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_per_key_and_its_landing_releases_the_waiters() {
        let flights = Arc::new(Flights::default());
        let leader = match flights.join(b"k") {
            Role::Leader(l) => l,
            Role::Waited => panic!("the first caller leads"),
        };
        assert!(matches!(flights.join(b"other"), Role::Leader(_)), "another key has its own flight");
        let f = flights.clone();
        let waiter = std::thread::spawn(move || matches!(f.join(b"k"), Role::Waited));
        // Until the waiter has joined the flight (however late its thread starts).
        while flights.waiters(b"k") == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "a waiter waits while the leader computes");
        assert_eq!(flights.waiters(b"k"), 1);
        drop(leader);
        assert!(waiter.join().unwrap());
        assert_eq!(flights.len(), 0);
    }
}
