//! `keg serve`: the memcached text protocol in front of a cache directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keg::server::{Config, ListenAddr, LogLevel, Server, Stopped, DEFAULT_LISTEN};
use keg::{Cache, Durability};

use crate::common::{parse_durability, CmdResult, Failure, EXIT_ERROR};
use crate::units::{human_bytes, parse_duration, parse_size};

/// Serve a cache directory over memcached's text protocol.
///
/// Any memcached client (Django's PyMemcacheCache, pymemcache, libmemcached)
/// can use it unchanged; unlike memcached, the data survives restarts. Takes
/// the directory's lock (creating the cache if the directory does not
/// exist); fails with exit status 3 if another process has it open.
///
/// The first SIGINT or SIGTERM stops it gracefully: no new connections,
/// the requests already read are answered (for up to 5 s), and the cache is
/// closed cleanly so the next start is fast; the exit status is 0. A second
/// signal exits at once, with status 2; acknowledged writes are in the log
/// either way. Logs one line per event on stderr. See docs/serve.md.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// Where to listen: HOST:PORT or unix:PATH; repeat for several
    /// [default: 127.0.0.1:11211].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    listen: Vec<ListenAddr>,
    /// Size cap of the cache's files, e.g. 10GiB (required: the cap is not
    /// stored in the directory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_bytes: u64,
    /// What an acknowledged write survives: flushed (a killed process),
    /// synced (power loss), or buffered (may lose the last moments' writes).
    #[arg(long, value_name = "MODE", value_parser = parse_durability, default_value = "flushed")]
    durability: Durability,
    /// Most client connections open at once; more are refused with
    /// SERVER_ERROR.
    #[arg(long, value_name = "N", default_value_t = keg::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Largest value a client may store; larger ones get
    /// "SERVER_ERROR object too large for cache".
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1MiB")]
    max_item_size: u64,
    /// Close a connection with nothing pending that has sent nothing for
    /// this long, e.g. 10m; 0s: never [default: never, as memcached].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// Permission mode of unix sockets, in octal (770: the owner's group too).
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, default_value = "700")]
    unix_mode: u32,
    /// Log errors only.
    #[arg(long, short, conflicts_with = "verbose")]
    quiet: bool,
    /// Also log every connection opened, closed, refused or timed out.
    #[arg(long, short)]
    verbose: bool,
}

fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    s.parse()
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|&m| m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not a permission mode: use octal digits, e.g. 700, 770 or 777"))
}

pub fn run(args: Args) -> CmdResult {
    let log_level = if args.quiet {
        LogLevel::Errors
    } else if args.verbose {
        LogLevel::Debug
    } else {
        LogLevel::Info
    };
    let log = keg::server::Log::new(log_level);
    let max_item = usize::try_from(args.max_item_size).unwrap_or(usize::MAX);
    let mut config = Config {
        listen: args.listen.clone(),
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout.filter(|d| !d.is_zero()),
        unix_mode: args.unix_mode,
        handle_signals: true,
        log: log_level,
        ..Config::default()
    };
    config.limits.max_item_size = max_item;
    if config.listen.is_empty() {
        config.listen.push(DEFAULT_LISTEN.parse().map_err(|e: String| Failure::new(EXIT_ERROR, e))?);
    }
    // Bind first: a taken address fails before the cache is opened.
    let server = Server::bind(config).map_err(|e| Failure::new(EXIT_ERROR, e.to_string()))?;
    let started = Instant::now();
    let cache = Cache::builder()
        .max_bytes(args.max_bytes)
        .durability(args.durability)
        .max_value_len(max_item)
        .open(&args.dir)
        .map_err(|e| Failure::keg("open the cache", e))?;
    let opened = started.elapsed();
    let stats = cache.stats();
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    log.info(format_args!(
        "listening on {}; cache {}: {} entries, {} on disk, opened in {} ms; max-bytes {}, durability {}; a thread per connection, at most {}",
        addrs.join(", "),
        args.dir.display(),
        stats.entries,
        human_bytes(stats.disk_bytes),
        opened.as_millis(),
        human_bytes(args.max_bytes),
        durability_name(args.durability),
        args.max_connections,
    ));
    let cache = Arc::new(cache);
    match server.run(cache.clone()) {
        Stopped::Forced => {
            log.info(format_args!("exited at once without closing the cache; the next start recovers from the log"));
            // Exit before any destructor waits for a worker still inside a store call.
            std::process::exit(i32::from(EXIT_ERROR));
        }
        Stopped::Graceful { unfinished } => {
            if unfinished > 0 {
                log.info(format_args!("{unfinished} connections were still busy after the grace period; closed them"));
            }
            let closing = Instant::now();
            match Arc::try_unwrap(cache) {
                Ok(cache) => cache.close().map_err(|e| Failure::keg("close the cache", e))?,
                Err(_) => {
                    log.error(format_args!("a request was still using the cache; exiting without a clean close"));
                    std::process::exit(i32::from(EXIT_ERROR));
                }
            }
            log.info(format_args!("stopped; cache closed cleanly in {} ms", closing.elapsed().as_millis()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Synced => "synced",
        Durability::Buffered => "buffered",
        _ => "flushed",
    }
}
