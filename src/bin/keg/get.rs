//! `keg get`: print one value.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::common::{self, arg_bytes, note, open_read_only, CmdResult, Failure, EXIT_NO};

/// Print the value stored under KEY, as raw bytes on stdout.
///
/// Opens the cache read-only (no lock, no writes), so it works on a cache
/// another process has open, and sees it as of the moment it opens. When
/// stdout is a terminal a newline follows the value. With --flags it prints
/// the item's user flags instead (a decimal number and a newline).
///
/// Exit status: 0 found, 1 no live value (missing, expired or damaged), 2 error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// The key (its bytes as given).
    key: OsString,
    /// Print the item's user flags (as `keg set --flags` stored them) instead of its value.
    #[arg(long)]
    flags: bool,
}

pub fn run(args: Args) -> CmdResult {
    let cache = open_read_only(&args.dir, "open the cache")?;
    let entry = cache.get_entry(arg_bytes(&args.key)).map_err(|e| Failure::keg("read the key", e))?;
    let Some(entry) = entry else {
        note(format!("no value for key {:?}", args.key));
        return Ok(ExitCode::from(EXIT_NO));
    };
    let mut out = common::stdout();
    let tty = std::io::stdout().is_terminal();
    let written = if args.flags { writeln!(out, "{}", entry.flags) } else { out.write_all(&entry.value) };
    written.map_err(|e| Failure::io("writing output", e))?;
    if tty && !args.flags {
        out.write_all(b"\n").map_err(|e| Failure::io("writing output", e))?;
    }
    common::finish(out)?;
    Ok(ExitCode::SUCCESS)
}
