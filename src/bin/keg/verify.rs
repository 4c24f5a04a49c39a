//! `keg verify`: read every byte, check every checksum and header.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keg::format::checkpoint::Checkpoint;
use keg::format::DecodeError;
use keg::inspect::{self, check_hint, HintError, Item, SegmentData};

use crate::common::{self, note, stderr_is_terminal, CmdResult, Failure, EXIT_ERROR, EXIT_NO, EXIT_OK};
use crate::units::human_bytes;

/// Caches smaller than this verify too fast to need a progress bar.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// Check a cache directory: every segment header, every record's checksum,
/// every hint file against its segment, and the checkpoint.
///
/// Prints one line per finding on stdout, `FILE:OFFSET: error: WHAT` or
/// `FILE:OFFSET: warning: WHAT` (OFFSET is a byte offset in FILE; it is left
/// out for findings about a whole file), and a summary on stderr. Errors are
/// damage: the engine would lose or refuse data there. Warnings are leftovers
/// the engine ignores or cleans up itself. Takes no lock and writes nothing,
/// so it works on a cache another process has open. Shows a progress bar on
/// stderr for large caches when stderr is a terminal.
///
/// Exit status: 0 no errors, 1 errors (corruption) found, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A cache directory, or a single segment file.
    #[arg(value_name = "DIR|FILE")]
    path: PathBuf,
    /// Print no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warning,
}

struct Report<W: Write> {
    out: W,
    bar: ProgressBar,
    errors: u64,
    warnings: u64,
    io_errors: u64,
    segments: u64,
    records: u64,
    hints: u64,
    bytes: u64,
}

impl<W: Write> Report<W> {
    fn finding(&mut self, level: Level, path: &Path, offset: Option<u64>, what: impl fmt::Display) -> io::Result<()> {
        let label = match level {
            Level::Error => {
                self.errors += 1;
                "error"
            }
            Level::Warning => {
                self.warnings += 1;
                "warning"
            }
        };
        let at = offset.map_or_else(String::new, |o| format!(":{o}"));
        let line = format!("{}{at}: {label}: {what}\n", path.display());
        let (out, bar) = (&mut self.out, &self.bar);
        if bar.is_hidden() {
            out.write_all(line.as_bytes())
        } else {
            bar.suspend(|| out.write_all(line.as_bytes()).and_then(|_| out.flush()))
        }
    }

    fn io_error(&mut self, path: &Path, e: &io::Error) {
        self.io_errors += 1;
        self.bar.suspend(|| note(format!("{}: {e}", path.display())));
    }
}

pub fn run(args: Args) -> CmdResult {
    let meta = std::fs::metadata(&args.path).map_err(|e| Failure::io(args.path.display(), e))?;
    let mut report = Report {
        out: common::stdout(),
        bar: ProgressBar::hidden(),
        errors: 0,
        warnings: 0,
        io_errors: 0,
        segments: 0,
        records: 0,
        hints: 0,
        bytes: 0,
    };
    let io = |e| Failure::io("writing output", e);
    if meta.is_dir() {
        let files =
            inspect::list(&args.path).map_err(|e| Failure::io(format!("listing {}", args.path.display()), e))?;
        let total: u64 = files.segments.iter().map(|s| s.len + s.hint.as_ref().map_or(0, |h| h.1)).sum();
        if !args.no_progress && stderr_is_terminal() && total >= PROGRESS_MIN_BYTES {
            report.bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}") {
                report.bar.set_style(style.progress_chars("=> "));
            }
        }
        verify_dir(&args.path, &files, &mut report).map_err(io)?;
    } else {
        let id = inspect::segment_id(&args.path);
        verify_segment(&args.path, id, None, true, &mut report).map_err(io)?;
    }
    report.bar.finish_and_clear();
    common::finish(&mut report.out)?;
    if !args.quiet {
        let found = match (report.errors, report.warnings) {
            (0, 0) => "no problems".to_owned(),
            (e, w) => format!("{e} error(s), {w} warning(s)"),
        };
        note(format!(
            "verified {} segment file(s) ({}), {} record(s), {} hint file(s): {found}{}",
            report.segments,
            human_bytes(report.bytes),
            report.records,
            report.hints,
            if report.io_errors > 0 {
                format!("; {} file(s) could not be read", report.io_errors)
            } else {
                String::new()
            }
        ));
    }
    let code = if report.io_errors > 0 {
        EXIT_ERROR
    } else if report.errors > 0 {
        EXIT_NO
    } else {
        EXIT_OK
    };
    Ok(ExitCode::from(code))
}

fn verify_dir<W: Write>(dir: &Path, files: &inspect::CacheFiles, r: &mut Report<W>) -> io::Result<()> {
    match &files.checkpoint {
        None if !files.segments.is_empty() => r.finding(
            Level::Warning,
            &dir.join("checkpoint"),
            None,
            "missing; a writer's next open assumes only what the hint files say is durable and writes a new one",
        )?,
        None => {}
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => {
                r.bytes += bytes.len() as u64;
                if let Err(e) = Checkpoint::decode(&bytes) {
                    r.finding(Level::Error, path, Some(0), format!("damaged checkpoint: {e}"))?;
                }
            }
            Err(e) => r.io_error(path, &e),
        },
    }
    for path in &files.other {
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let what = if keg::inspect::is_leftover_tmp(&name) {
            "leftover temporary file of an interrupted write; a writer's next open removes it"
        } else {
            "not a keg file; keg ignores it"
        };
        r.finding(Level::Warning, path, None, what)?;
    }
    for path in &files.orphan_hints {
        r.finding(Level::Warning, path, None, "hint file without its segment; a writer's next open removes it")?;
    }
    let last = files.segments.last().map(|s| s.id);
    for seg in &files.segments {
        let hint = seg.hint.as_ref().map(|h| h.0.as_path());
        verify_segment(&seg.path, Some(seg.id), hint, Some(seg.id) == last, r)?;
        r.bar.inc(seg.len + seg.hint.as_ref().map_or(0, |h| h.1));
    }
    Ok(())
}

/// Checks one segment file (and its hint file). `newest`: the segment a live
/// writer may be appending to, whose torn tail gets a second look.
fn verify_segment<W: Write>(
    path: &Path,
    id: Option<u32>,
    hint: Option<&Path>,
    newest: bool,
    r: &mut Report<W>,
) -> io::Result<()> {
    let mut data = match SegmentData::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound && id.is_some() && !newest => {
            return r.finding(Level::Warning, path, None, "removed while verifying (compacted by a live writer)");
        }
        Err(e) => {
            r.io_error(path, &e);
            return Ok(());
        }
    };
    if newest && torn_tail(&data) {
        // A live writer may have been appending as we read: look again.
        if let Ok(again) = SegmentData::read(path) {
            data = again;
        }
    }
    r.segments += 1;
    r.bytes += data.len();
    match (data.header(), id) {
        (Err(DecodeError::UnsupportedVersion { found, supported }), _) => r.finding(
            Level::Error,
            path,
            Some(0),
            format!(
                "written in format version {found}; this build reads version {supported}, and open refuses the cache"
            ),
        )?,
        (Err(e), _) => r.finding(
            Level::Error,
            path,
            Some(0),
            format!("bad segment header ({e}); the engine ignores this file and a writer's open deletes it"),
        )?,
        (Ok(h), Some(id)) if h.id != id => r.finding(
            Level::Error,
            path,
            Some(0),
            format!("header says segment {} but the file name says {id}; the engine ignores this file", h.id),
        )?,
        (Ok(_), _) => {}
    }
    for item in data.records() {
        match item {
            Item::Record { .. } | Item::Invalidation { .. } => r.records += 1,
            Item::Other { offset, reason, .. } => r.finding(
                Level::Warning,
                path,
                Some(offset),
                format!("intact record that this version does not define ({reason}); the engine skips it"),
            )?,
            Item::Damaged(d) => {
                let what = match d.error {
                    DecodeError::Truncated { needed, available } if !d.resumed => format!(
                        "truncated record: it needs {needed} bytes but the file ends {available} bytes after its start"
                    ),
                    DecodeError::Truncated { needed, .. } => format!(
                        "damaged record: its header declares {needed} bytes, which overruns the next intact record"
                    ),
                    ref e => format!("damaged record: {e}"),
                };
                let tail = if d.resumed {
                    format!("; {} unreadable bytes, the next intact record is at offset {}", d.len, d.offset + d.len)
                } else {
                    format!("; {} unreadable bytes to the end of the file", d.len)
                };
                r.finding(Level::Error, path, Some(d.offset), format!("{what}{tail}"))?;
            }
        }
    }
    if let (Some(hint), Some(id)) = (hint, id) {
        let bytes = match std::fs::read(hint) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                r.io_error(hint, &e);
                return Ok(());
            }
        };
        r.hints += 1;
        r.bytes += bytes.len() as u64;
        match check_hint(&bytes, id, data.bytes()) {
            Ok(h) if h.data_len < data.len() => r.finding(
                Level::Warning,
                path,
                Some(h.data_len),
                format!(
                    "{} bytes after the end of what the hint file covers; the engine ignores them",
                    data.len() - h.data_len
                ),
            )?,
            Ok(_) => {}
            Err(e @ HintError::Decode(_)) => r.finding(Level::Error, hint, Some(0), e)?,
            Err(e @ HintError::Mismatch { entry, .. }) => {
                let at = entry
                    .map_or(0, |i| (keg::format::hint::HEADER_LEN + i as usize * keg::format::hint::ENTRY_LEN) as u64);
                r.finding(Level::Error, hint, Some(at), e)?
            }
        }
    }
    Ok(())
}

/// Whether the file ends in a record cut short (what a reader racing a writer can see).
fn torn_tail(data: &SegmentData) -> bool {
    data.records().last().is_some_and(|i| matches!(i, Item::Damaged(d) if !d.resumed))
}
