//! `keg delete`: remove one key.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::common::{arg_bytes, note, CmdResult, Failure, WriterOpts};

/// Delete KEY. Says on stderr whether a live value was removed; deleting a
/// missing key is not an error.
///
/// Takes the cache directory's lock; fails with exit status 3 when another
/// process has the cache open.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// The key (its bytes as given).
    key: OsString,
    #[command(flatten)]
    writer: WriterOpts,
}

pub fn run(args: Args) -> CmdResult {
    let cache = args.writer.open(&args.dir, "open the cache for writing", false)?;
    let removed = cache.delete(arg_bytes(&args.key)).map_err(|e| Failure::keg("delete the key", e))?;
    cache.close().map_err(|e| Failure::keg("close the cache", e))?;
    note(if removed { "deleted" } else { "no live value for that key; nothing deleted" });
    Ok(ExitCode::SUCCESS)
}
