//! `keg dump`: every record of every segment, in log order.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keg::inspect::{self, Classifier, Item, SegmentData};
use keg::Cache;

use crate::common::{self, arg_bytes, note, open_read_only, CmdResult, Failure, Format, EXIT_ERROR};
use crate::rows::{self, SegCtx};
use crate::units::parse_size;

/// List every record in every segment: key, sizes, expiry, checksum, and
/// whether the index serves it.
///
/// Reads the files with plain reads and opens the cache's index read-only: it
/// takes no lock and writes nothing, so it works on a cache another process
/// has open. Damaged records are listed as such and dumping goes on.
#[derive(Debug, clap::Args)]
#[command(after_long_help = rows::FIELDS_HELP)]
pub struct Args {
    /// A cache directory, or a single segment file (<8 hex digits>.seg).
    #[arg(value_name = "DIR|FILE")]
    path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Include values (the first --max-value-bytes bytes of each).
    #[arg(long)]
    values: bool,
    /// With --values: show at most this many bytes of each value (e.g. 64, 4KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64")]
    max_value_bytes: u64,
    /// Show only live entries (the records get would serve).
    #[arg(long)]
    live: bool,
    /// Show only records of this key (its bytes as given).
    #[arg(long, value_name = "KEY", conflicts_with = "prefix")]
    key: Option<OsString>,
    /// Show only records whose key starts with these bytes.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<OsString>,
    /// Do not read the index: faster, but every value's status is "unindexed".
    #[arg(long, conflicts_with = "live")]
    no_index: bool,
}

pub fn run(args: Args) -> CmdResult {
    let (segments, index_dir) = targets(&args.path)?;
    let cache = match index_dir.filter(|_| !args.no_index) {
        None => None,
        Some(dir) => match open_read_only(&dir, "read the cache's index") {
            Ok(c) => Some(c),
            Err(e) if args.live => return Err(e),
            Err(e) => {
                note(format!("{e}; statuses are shown as \"unindexed\""));
                None
            }
        },
    };
    if args.live && cache.is_none() {
        return Err(Failure::new(
            EXIT_ERROR,
            "--live needs the cache's index, and this segment file is not inside a cache directory",
        ));
    }
    let mut out = common::stdout();
    let summary = dump(&args, &segments, cache.as_ref(), &mut out).map_err(|e| Failure::io("writing output", e))?;
    common::finish(out)?;
    if summary.damaged > 0 {
        note(format!("{} damaged stretch(es) found; run `keg verify` for details", summary.damaged));
    }
    Ok(ExitCode::SUCCESS)
}

/// Segment files to read: the id in the file name (if any) and the path.
type Targets = Vec<(Option<u32>, PathBuf)>;

/// The segment files to read and the cache directory whose index classifies them.
fn targets(path: &Path) -> Result<(Targets, Option<PathBuf>), Failure> {
    let meta = std::fs::metadata(path).map_err(|e| Failure::io(path.display(), e))?;
    if meta.is_dir() {
        let files = inspect::list(path).map_err(|e| Failure::io(format!("listing {}", path.display()), e))?;
        let mut segs = Vec::new();
        for f in files.segments {
            if let Err(e) = &f.header {
                note(format!("{}: bad segment header ({e}); the engine ignores this file", f.path.display()));
            }
            segs.push((Some(f.id), f.path));
        }
        return Ok((segs, Some(path.to_owned())));
    }
    let id = inspect::segment_id(path);
    // A segment file inside a cache directory is classified against that cache's index.
    let dir = id.and_then(|_| path.parent()).map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
    let dir = dir.filter(|d| d.join("checkpoint").exists() || d.join("LOCK").exists()).map(Path::to_owned);
    Ok((vec![(id, path.to_owned())], dir))
}

#[derive(Default)]
struct Summary {
    damaged: u64,
}

fn dump(
    args: &Args,
    segments: &[(Option<u32>, PathBuf)],
    cache: Option<&Cache>,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let classifier = cache.map(Classifier::new);
    let values = args.values.then(|| usize::try_from(args.max_value_bytes).unwrap_or(usize::MAX));
    let key = args.key.as_ref().map(arg_bytes);
    let prefix = args.prefix.as_ref().map(arg_bytes);
    let filtered = key.is_some() || prefix.is_some() || args.live;
    let mut summary = Summary::default();
    if args.format == Format::Table {
        writeln!(out, "{}", rows::table_header(args.values))?;
    }
    for (id, path) in segments {
        let data = match SegmentData::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound && segments.len() > 1 => {
                note(format!("{}: removed while dumping (compacted by the cache's owner)", path.display()));
                continue;
            }
            Err(e) => {
                note(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let header = data.header();
        if id.is_none() {
            if let Err(e) = &header {
                note(format!("{}: bad segment header: {e}", path.display()));
            }
        }
        let ctx = SegCtx { id: id.or(header.as_ref().ok().map(|h| h.id)), log: header.as_ref().ok().map(|h| h.log) };
        for item in data.records() {
            if let Item::Damaged(_) = item {
                summary.damaged += 1;
            }
            if filtered {
                let Item::Record { record, .. } = &item else { continue };
                if key.is_some_and(|k| record.key != k) || prefix.is_some_and(|p| !record.key.starts_with(p)) {
                    continue;
                }
            }
            let status = rows::status_of(&item, &ctx, classifier.as_ref());
            if args.live && status != "live" {
                continue;
            }
            match args.format {
                Format::Table => writeln!(out, "{}", rows::table(&item, &ctx, status, values))?,
                Format::Jsonl => {
                    serde_json::to_writer(&mut *out, &rows::json(&item, &ctx, status, values))?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    Ok(summary)
}
