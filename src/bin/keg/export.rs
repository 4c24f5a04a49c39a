//! `keg export`: every live entry as jsonl.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keg::inspect::{self, Item, LiveEntry};

use crate::common::{self, note, open_read_only, CmdResult, Failure};
use crate::rows::{self, SegCtx};

/// Write every live entry, with its whole value, flags and expiry, to FILE as
/// jsonl: the rows `keg dump --live --values --format jsonl` prints (see
/// `keg dump --help` for the fields), with values never cut. `keg load` reads
/// them back.
///
/// Opens the cache read-only (no lock, no writes) and exports a consistent
/// snapshot as of that moment, even while another process writes to it.
/// Entries come in index order, not log order. FILE is written whole or not
/// at all (through FILE.tmp and a rename).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// Where to write, or - for stdout.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn run(args: Args) -> CmdResult {
    let cache = open_read_only(&args.dir, "open the cache")?;
    let to_stdout = args.file.as_os_str() == "-";
    let walk = if to_stdout {
        let mut out = common::stdout();
        let walk = export(&cache, &mut out).map_err(|e| Failure::io("writing output", e))?;
        common::finish(out)?;
        walk
    } else {
        let tmp = tmp_path(&args.file);
        let written = File::create(&tmp).and_then(|f| {
            let mut out = BufWriter::with_capacity(1 << 20, f);
            let walk = export(&cache, &mut out)?;
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            Ok(walk)
        });
        let walk = written.and_then(|w| std::fs::rename(&tmp, &args.file).map(|_| w)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::io(format!("writing {}", args.file.display()), e)
        })?;
        walk
    };
    let mut msg = format!("exported {} entries", walk.live);
    if walk.expired > 0 {
        msg.push_str(&format!("; skipped {} expired", walk.expired));
    }
    if walk.unreadable > 0 {
        msg.push_str(&format!("; skipped {} unreadable (damaged; run `keg verify`)", walk.unreadable));
    }
    note(msg);
    Ok(ExitCode::SUCCESS)
}

fn export(cache: &keg::Cache, out: &mut impl Write) -> io::Result<inspect::LiveWalk> {
    inspect::for_each_live(cache, |e: &LiveEntry<'_>| {
        let item = Item::Record { offset: e.offset, record: e.record };
        let ctx = SegCtx { id: Some(e.segment), log: Some(e.log) };
        serde_json::to_writer(&mut *out, &rows::json(&item, &ctx, "live", Some(usize::MAX)))?;
        out.write_all(b"\n")
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
