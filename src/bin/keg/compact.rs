//! `keg compact`: rewrite segments with dead bytes now.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::common::{self, disk_bytes, CmdResult, Failure, WriterOpts};
use crate::units::human_bytes;

/// Rewrite every segment that holds dead bytes (overwritten, deleted or
/// expired records), so that disk use comes down to the live data. Prints disk
/// use before and after.
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
    let before = cache.stats();
    cache.compact().map_err(|e| Failure::keg("compact", e))?;
    let entries = cache.len();
    cache.close().map_err(|e| Failure::keg("close the cache", e))?;
    // Measured after close, which writes the new segments' hint files.
    let files = keg::inspect::list(&args.dir).map_err(|e| Failure::io(args.dir.display(), e))?;
    let after = disk_bytes(&args.dir);
    let mut out = common::stdout();
    writeln!(
        out,
        "disk bytes {} -> {after} ({} -> {}), segments {} -> {}, entries {entries}",
        before.disk_bytes,
        human_bytes(before.disk_bytes),
        human_bytes(after),
        before.segments,
        files.segments.len(),
    )
    .map_err(|e| Failure::io("writing output", e))?;
    common::finish(out)?;
    Ok(ExitCode::SUCCESS)
}
