//! `keg set`: store one value.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::common::{arg_bytes, CmdResult, Failure, WriterOpts, EXIT_ERROR};
use crate::units::parse_duration;

/// Store VALUE under KEY, replacing any value it had.
///
/// Takes the cache directory's lock (and creates the cache if the directory
/// does not exist); fails with exit status 3 when another process has the
/// cache open.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// The key (its bytes as given).
    key: OsString,
    /// The value (its bytes as given), or - to read it from stdin.
    value: OsString,
    /// Time to live, e.g. 30s, 15m, 1h, 1d, 1h30m [default: no expiry].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// User flags stored with the value (a number below 2^32), as memcached
    /// clients keep their serialisation format there.
    #[arg(long, value_name = "N", default_value_t = 0)]
    flags: u32,
    #[command(flatten)]
    writer: WriterOpts,
}

pub fn run(args: Args) -> CmdResult {
    if args.ttl == Some(Duration::ZERO) {
        return Err(Failure::new(EXIT_ERROR, "--ttl must be longer than zero (use `keg delete` to delete)"));
    }
    let value = if args.value == "-" {
        // Bounded read: a value over the limit is refused without holding all of stdin.
        let limit = args.writer.max_value_len.unwrap_or(keg::DEFAULT_MAX_VALUE_LEN as u64);
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| Failure::io("reading stdin", e))?;
        if buf.len() as u64 > limit {
            return Err(Failure::new(
                EXIT_ERROR,
                format!("the value on stdin is over {limit} bytes, the largest value allowed (see --max-value-len)"),
            ));
        }
        buf
    } else {
        arg_bytes(&args.value).to_vec()
    };
    let cache = args.writer.open(&args.dir, "open the cache for writing", true)?;
    let opts = keg::SetOptions::new().ttl(args.ttl).flags(args.flags);
    cache.set_with(arg_bytes(&args.key), &value, &opts).map_err(|e| Failure::keg("store the value", e))?;
    cache.close().map_err(|e| Failure::keg("close the cache", e))?;
    Ok(ExitCode::SUCCESS)
}
