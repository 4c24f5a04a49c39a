//! `keg clear`: remove everything.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::common::{note, CmdResult, Failure, WriterOpts};

/// Remove every entry and every segment file of the cache.
///
/// Takes the cache directory's lock; fails with exit status 3 when another
/// process has the cache open.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    #[command(flatten)]
    writer: WriterOpts,
}

pub fn run(args: Args) -> CmdResult {
    let cache = args.writer.open(&args.dir, "open the cache for writing", false)?;
    let entries = cache.len();
    cache.clear().map_err(|e| Failure::keg("clear the cache", e))?;
    cache.close().map_err(|e| Failure::keg("close the cache", e))?;
    note(format!("cleared {entries} entries"));
    Ok(ExitCode::SUCCESS)
}
