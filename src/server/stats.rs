//! The server's own counters, and the `stats` and `stats settings` replies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::reply;
use super::Config;
use crate::stripe::Counter;

/// Counters of what the server did since it started (memcached's names).
/// Each counter is striped per thread ([`Counter`]): the pool's threads
/// count every request without passing a cache line between cores; the two
/// gauges are plain atomics.
#[derive(Default)]
pub(crate) struct Counters {
    /// Connections open now.
    pub(crate) curr_connections: AtomicU64,
    /// Connections accepted since start.
    pub(crate) total_connections: Counter,
    /// Connections refused over `max_connections`.
    pub(crate) rejected_connections: Counter,
    /// Connections closed by the idle timeout.
    pub(crate) idle_kicks: Counter,
    /// Times a connection stopped reading because its client did not read replies.
    pub(crate) conn_throttled: Counter,
    /// Keys asked for by retrieval commands.
    pub(crate) cmd_get: Counter,
    /// Storage commands.
    pub(crate) cmd_set: Counter,
    /// `flush_all` commands.
    pub(crate) cmd_flush: Counter,
    /// `touch`, `gat` and `gats` keys.
    pub(crate) cmd_touch: Counter,
    /// Retrieval keys found.
    pub(crate) get_hits: Counter,
    /// Retrieval keys not found.
    pub(crate) get_misses: Counter,
    /// `delete` that removed an item.
    pub(crate) delete_hits: Counter,
    /// `delete` of a missing key.
    pub(crate) delete_misses: Counter,
    /// `incr` that changed an item.
    pub(crate) incr_hits: Counter,
    /// `incr` of a missing key.
    pub(crate) incr_misses: Counter,
    /// `decr` that changed an item.
    pub(crate) decr_hits: Counter,
    /// `decr` of a missing key.
    pub(crate) decr_misses: Counter,
    /// `cas` that stored.
    pub(crate) cas_hits: Counter,
    /// `cas` of a missing key.
    pub(crate) cas_misses: Counter,
    /// `cas` whose version did not match.
    pub(crate) cas_badval: Counter,
    /// `touch`/`gat`/`gats` that found the key.
    pub(crate) touch_hits: Counter,
    /// `touch`/`gat`/`gats` of a missing key.
    pub(crate) touch_misses: Counter,
    /// Items stored since start.
    pub(crate) total_items: Counter,
    /// Bytes read from clients.
    pub(crate) bytes_read: Counter,
    /// Bytes written to clients.
    pub(crate) bytes_written: Counter,
    /// Replies `CLIENT_ERROR` or `ERROR` (malformed requests).
    pub(crate) keg_client_errors: Counter,
    /// Replies `SERVER_ERROR`.
    pub(crate) keg_server_errors: Counter,
}

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(c: &Counter) {
    c.add(1);
}

/// Adds `n` to a counter.
#[inline]
pub(crate) fn add(c: &Counter, n: u64) {
    c.add(n);
}

fn get(c: &Counter) -> u64 {
    c.load()
}

fn gauge(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// The current Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The current Unix time in milliseconds.
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Counters {
    /// Sets the resettable counters (not the connection gauges) back to 0: `stats reset`.
    pub(crate) fn reset(&self) {
        for c in [
            &self.total_connections,
            &self.rejected_connections,
            &self.idle_kicks,
            &self.conn_throttled,
            &self.cmd_get,
            &self.cmd_set,
            &self.cmd_flush,
            &self.cmd_touch,
            &self.get_hits,
            &self.get_misses,
            &self.delete_hits,
            &self.delete_misses,
            &self.incr_hits,
            &self.incr_misses,
            &self.decr_hits,
            &self.decr_misses,
            &self.cas_hits,
            &self.cas_misses,
            &self.cas_badval,
            &self.touch_hits,
            &self.touch_misses,
            &self.total_items,
            &self.bytes_read,
            &self.bytes_written,
            &self.keg_client_errors,
            &self.keg_server_errors,
        ] {
            c.reset();
        }
    }

    /// Appends the general `stats` reply (without `END`).
    pub(crate) fn write_stats(&self, out: &mut Vec<u8>, started: Instant, config: &Config, store: &crate::Stats) {
        let s = |out: &mut Vec<u8>, name: &str, v: u64| reply::stat(out, name, v);
        s(out, "pid", u64::from(std::process::id()));
        s(out, "uptime", started.elapsed().as_secs());
        s(out, "time", unix_now());
        reply::stat(out, "version", super::MEMCACHED_VERSION);
        reply::stat(out, "keg_version", env!("CARGO_PKG_VERSION"));
        s(out, "pointer_size", usize::BITS.into());
        s(out, "max_connections", config.max_connections as u64);
        s(out, "curr_connections", gauge(&self.curr_connections));
        s(out, "total_connections", get(&self.total_connections));
        s(out, "rejected_connections", get(&self.rejected_connections));
        s(out, "idle_kicks", get(&self.idle_kicks));
        s(out, "cmd_get", get(&self.cmd_get));
        s(out, "cmd_set", get(&self.cmd_set));
        s(out, "cmd_flush", get(&self.cmd_flush));
        s(out, "cmd_touch", get(&self.cmd_touch));
        s(out, "get_hits", get(&self.get_hits));
        s(out, "get_misses", get(&self.get_misses));
        s(out, "get_expired", store.expired_reads);
        s(out, "delete_hits", get(&self.delete_hits));
        s(out, "delete_misses", get(&self.delete_misses));
        s(out, "incr_hits", get(&self.incr_hits));
        s(out, "incr_misses", get(&self.incr_misses));
        s(out, "decr_hits", get(&self.decr_hits));
        s(out, "decr_misses", get(&self.decr_misses));
        s(out, "cas_hits", get(&self.cas_hits));
        s(out, "cas_misses", get(&self.cas_misses));
        s(out, "cas_badval", get(&self.cas_badval));
        s(out, "touch_hits", get(&self.touch_hits));
        s(out, "touch_misses", get(&self.touch_misses));
        s(out, "bytes_read", get(&self.bytes_read));
        s(out, "bytes_written", get(&self.bytes_written));
        s(out, "limit_maxbytes", store.max_bytes);
        // A thread per connection (memcached counts its worker threads here).
        s(out, "threads", gauge(&self.curr_connections));
        s(out, "curr_items", store.entries);
        s(out, "total_items", get(&self.total_items));
        s(out, "bytes", store.live_bytes);
        s(out, "evictions", store.evictions);
        // keg cannot tell whether an expired entry was ever fetched: this is
        // every expired entry dropped when its segment was reclaimed.
        s(out, "expired_unfetched", store.expirations_reclaimed);
        s(out, "keg_conn_throttled", get(&self.conn_throttled));
        s(out, "keg_client_errors", get(&self.keg_client_errors));
        s(out, "keg_server_errors", get(&self.keg_server_errors));
        for (name, v) in [
            ("keg_hits", store.hits),
            ("keg_misses", store.misses),
            ("keg_sets", store.sets),
            ("keg_deletes", store.deletes),
            ("keg_expired_reads", store.expired_reads),
            ("keg_corrupt_reads", store.corrupt_reads),
            ("keg_entries", store.entries),
            ("keg_live_bytes", store.live_bytes),
            ("keg_dead_bytes", store.dead_bytes),
            ("keg_disk_bytes", store.disk_bytes),
            ("keg_max_bytes", store.max_bytes),
            ("keg_segments", store.segments),
            ("keg_evictions", store.evictions),
            ("keg_expirations_reclaimed", store.expirations_reclaimed),
            ("keg_segments_reclaimed", store.segments_reclaimed),
            ("keg_compactions", store.compactions),
            ("keg_bytes_rewritten", store.bytes_rewritten),
            ("keg_index_bytes", store.index_bytes),
            ("keg_appends", store.appends),
            ("keg_bytes_appended", store.bytes_appended),
            ("keg_maintenance_errors", store.maintenance_errors),
            ("keg_sync_rounds", store.sync_rounds),
            ("keg_hint_bytes_pending", store.hint_bytes_pending),
            ("keg_bytes_reinserted", store.bytes_reinserted),
            ("keg_reinsertions_skipped", store.reinsertions_skipped),
        ] {
            s(out, name, v);
        }
        // The library's own get and set times (sampled, power-of-two upper
        // bounds): a slow reply with fast store calls is the network's or
        // the scheduler's doing, not the store's.
        for (op, h) in [("get", &store.get_latency), ("set", &store.set_latency)] {
            for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
                s(out, &format!("keg_{op}_{label}_ns"), h.quantile_ns(q));
            }
        }
    }
}

/// Appends the `stats settings` reply (without `END`).
pub(crate) fn write_settings(out: &mut Vec<u8>, config: &Config, store: &crate::Stats, verbosity: u32) {
    reply::stat(out, "maxbytes", store.max_bytes);
    reply::stat(out, "maxconns", config.max_connections);
    let listen: Vec<String> = config.listen.iter().map(|l| l.to_string()).collect();
    reply::stat(out, "inter", if listen.is_empty() { "-".to_string() } else { listen.join(",") });
    reply::stat(out, "verbosity", verbosity);
    reply::stat(out, "evictions", "on");
    reply::stat(out, "cas_enabled", "yes");
    reply::stat(out, "num_threads", "one per connection");
    reply::stat(out, "item_size_max", config.limits.max_item_size);
    reply::stat(out, "idle_time", config.idle_timeout.map_or(0, |d| d.as_secs()));
    reply::stat(out, "umask", format!("{:o}", 0o777 & !config.unix_mode));
    reply::stat(out, "keg_unix_mode", format!("{:o}", config.unix_mode));
    reply::stat(out, "keg_max_line", config.limits.max_line);
    reply::stat(out, "keg_max_retrieval_line", config.limits.max_retrieval_line);
    reply::stat(out, "keg_max_output_bytes", config.max_output_bytes);
    reply::stat(out, "keg_shutdown_grace_ms", config.shutdown_grace.as_millis());
}
