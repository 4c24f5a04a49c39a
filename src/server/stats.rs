//! The server's own counters, and the `stats` and `stats settings` replies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::reply;
use super::Config;

/// Counters of what the server did since it started (memcached's names).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections open now.
    pub curr_connections: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Threads serving connections now: those kept ready, those waiting
    /// inside a store call, and spares (at most `max_threads`).
    pub threads: AtomicU64,
    /// Connections refused over `max_connections`.
    pub rejected_connections: AtomicU64,
    /// Connections closed by the idle timeout.
    pub idle_kicks: AtomicU64,
    /// Times a connection stopped reading because its client did not read replies.
    pub conn_throttled: AtomicU64,
    /// Keys asked for by retrieval commands.
    pub cmd_get: AtomicU64,
    /// Storage commands.
    pub cmd_set: AtomicU64,
    /// `flush_all` commands.
    pub cmd_flush: AtomicU64,
    /// `touch`, `gat` and `gats` keys.
    pub cmd_touch: AtomicU64,
    /// Retrieval keys found.
    pub get_hits: AtomicU64,
    /// Retrieval keys not found.
    pub get_misses: AtomicU64,
    /// `delete` that removed an item.
    pub delete_hits: AtomicU64,
    /// `delete` of a missing key.
    pub delete_misses: AtomicU64,
    /// `incr` that changed an item.
    pub incr_hits: AtomicU64,
    /// `incr` of a missing key.
    pub incr_misses: AtomicU64,
    /// `decr` that changed an item.
    pub decr_hits: AtomicU64,
    /// `decr` of a missing key.
    pub decr_misses: AtomicU64,
    /// `cas` that stored.
    pub cas_hits: AtomicU64,
    /// `cas` of a missing key.
    pub cas_misses: AtomicU64,
    /// `cas` whose version did not match.
    pub cas_badval: AtomicU64,
    /// `touch`/`gat`/`gats` that found the key.
    pub touch_hits: AtomicU64,
    /// `touch`/`gat`/`gats` of a missing key.
    pub touch_misses: AtomicU64,
    /// Items stored since start.
    pub total_items: AtomicU64,
    /// Bytes read from clients.
    pub bytes_read: AtomicU64,
    /// Bytes written to clients.
    pub bytes_written: AtomicU64,
    /// Replies `CLIENT_ERROR` or `ERROR` (malformed requests).
    pub keg_client_errors: AtomicU64,
    /// Replies `SERVER_ERROR`.
    pub keg_server_errors: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// The current Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
            c.store(0, Ordering::Relaxed);
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
        s(out, "curr_connections", get(&self.curr_connections));
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
        // Threads serving connections now (memcached counts its workers).
        s(out, "threads", get(&self.threads));
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
    reply::stat(out, "num_threads", config.threads);
    reply::stat(out, "keg_max_threads", config.max_threads);
    reply::stat(out, "item_size_max", config.limits.max_item_size);
    reply::stat(out, "idle_time", config.idle_timeout.map_or(0, |d| d.as_secs()));
    reply::stat(out, "umask", format!("{:o}", 0o777 & !config.unix_mode));
    reply::stat(out, "keg_unix_mode", format!("{:o}", config.unix_mode));
    reply::stat(out, "keg_max_line", config.limits.max_line);
    reply::stat(out, "keg_max_retrieval_line", config.limits.max_retrieval_line);
    reply::stat(out, "keg_max_output_bytes", config.max_output_bytes);
    reply::stat(out, "keg_shutdown_grace_ms", config.shutdown_grace.as_millis());
}
