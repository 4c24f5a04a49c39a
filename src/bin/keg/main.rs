//! `keg`: look inside, check, and operate keg cache directories.
//!
//! Each subcommand lives in its own file; `common.rs` holds what they share.
//! `dump`, `verify`, `stats`, `get` and `export` never take the directory's
//! lock or write a byte; `set`, `delete`, `compact`, `clear` and `load` take the
//! lock like any writer, and so does `serve` (feature `server`), which serves
//! the cache over memcached's text protocol until stopped.

mod clear;
mod common;
mod compact;
mod delete;
mod dump;
mod export;
mod get;
mod load;
mod rows;
#[cfg(feature = "server")]
mod serve;
mod set;
mod stats;
mod time;
mod units;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

const EXIT_CODES: &str = "\
EXIT STATUS:
  0  success
  1  the answer is no: verify found corruption; get found no live value
  2  usage error, I/O error, or any other failure
  3  a writing command found the cache locked by another process

Data goes to stdout, diagnostics to stderr. Sizes take units: 4096, 64MiB, 10GB.
Durations: 30s, 15m, 1h, 1d, 1h30m.";

/// Look inside, check, and operate keg cache directories.
///
/// dump, verify, stats, get and export read a cache without taking its lock
/// and never write to it, so they work while an application has it open.
/// set, delete, compact, clear and load take the lock, and so does serve,
/// which serves the cache to memcached clients until stopped.
#[derive(Debug, Parser)]
#[command(name = "keg", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Dump(dump::Args),
    Verify(verify::Args),
    Stats(stats::Args),
    Get(get::Args),
    Set(set::Args),
    Delete(delete::Args),
    Compact(compact::Args),
    Clear(clear::Args),
    Load(load::Args),
    Export(export::Args),
    #[cfg(feature = "server")]
    Serve(serve::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Dump(a) => dump::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Get(a) => get::run(a),
        Command::Set(a) => set::run(a),
        Command::Delete(a) => delete::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Clear(a) => clear::run(a),
        Command::Load(a) => load::run(a),
        Command::Export(a) => export::run(a),
        #[cfg(feature = "server")]
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                common::note(&f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Prints a command-line error with the usage line (clap leaves it out of
/// some errors, such as an invalid value) and returns exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let _ = e.print();
    if !e.render().to_string().contains("Usage:") {
        let mut cmd = Cli::command();
        cmd.build();
        let sub = std::env::args().nth(1);
        let usage = match sub.as_deref().and_then(|s| cmd.find_subcommand_mut(s)) {
            Some(sc) => sc.render_usage().to_string(),
            None => cmd.render_usage().to_string(),
        };
        eprintln!("\n{usage}");
    }
    ExitCode::from(common::EXIT_ERROR)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
