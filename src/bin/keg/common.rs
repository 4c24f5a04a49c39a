//! What the subcommands share: errors and exit codes, output, writer options,
//! and how keys and values appear in text.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use keg::{Cache, Durability};

use crate::units::{human_bytes, parse_size};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the answer is "no" (verify found corruption; get found no value).
pub const EXIT_NO: u8 = 1;
/// Exit status: usage or I/O error (clap uses 2 for usage errors too).
pub const EXIT_ERROR: u8 = 2;
/// Exit status: another process holds the cache directory's lock.
pub const EXIT_LOCKED: u8 = 3;

/// A subcommand's failure: a message for stderr and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    /// An I/O error while doing `what`. A closed pipe on stdout (`keg dump | head`)
    /// is not an error: it ends the command quietly.
    pub fn io(what: impl fmt::Display, e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Failure::new(EXIT_OK, "");
        }
        Failure::new(EXIT_ERROR, format!("{what}: {e}"))
    }

    /// A library error while doing `what`; a held lock gets its own status and advice.
    pub fn keg(what: impl fmt::Display, e: keg::Error) -> Failure {
        match e {
            keg::Error::Locked { path } => Failure::new(
                EXIT_LOCKED,
                format!(
                    "cannot {what}: the cache directory {} is locked by another process (an application has it open). \
                     Stop that process first; dump, stats, verify, get and export work while it runs",
                    path.display()
                ),
            ),
            e => Failure::new(EXIT_ERROR, format!("cannot {what}: {e}")),
        }
    }
}

pub type CmdResult = Result<ExitCode, Failure>;

/// Buffered stdout; flush it with [`finish`].
pub fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(64 << 10, io::stdout().lock())
}

/// Flushes buffered output, mapping errors (a closed pipe ends quietly).
pub fn finish(mut out: impl Write) -> Result<(), Failure> {
    out.flush().map_err(|e| Failure::io("writing output", e))
}

/// Prints a diagnostic line on stderr.
pub fn note(msg: impl fmt::Display) {
    eprintln!("keg: {msg}");
}

/// The bytes of a command-line argument (keys may be any bytes on Unix).
pub fn arg_bytes(arg: &OsString) -> &[u8] {
    arg.as_bytes()
}

/// Output format of dump and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    Jsonl,
}

/// Puts `bytes` in a JSON object as `name` (a string) when they are UTF-8,
/// otherwise as `<name>_b64` (standard base64 with padding).
pub fn put_bytes(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => obj.insert(name.to_owned(), s.into()),
        Err(_) => obj.insert(format!("{name}_b64"), base64::engine::general_purpose::STANDARD.encode(bytes).into()),
    };
}

/// `bytes` in standard base64 (RFC 4648, with padding).
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64.
pub fn from_b64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

/// Reads `name` or `<name>_b64` back from a JSON object.
pub fn get_bytes(obj: &serde_json::Map<String, serde_json::Value>, name: &str) -> Result<Vec<u8>, String> {
    let b64 = format!("{name}_b64");
    match (obj.get(name), obj.get(&b64)) {
        (Some(_), Some(_)) => Err(format!("both \"{name}\" and \"{b64}\" are present")),
        (Some(serde_json::Value::String(s)), None) => Ok(s.as_bytes().to_vec()),
        (Some(_), None) => Err(format!("\"{name}\" must be a string")),
        (None, Some(serde_json::Value::String(s))) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("\"{b64}\" is not valid base64: {e}")),
        (None, Some(_)) => Err(format!("\"{b64}\" must be a string")),
        (None, None) => Err(format!("missing \"{name}\" (or \"{b64}\")")),
    }
}

/// Bytes for a table cell: printable ASCII as is; space, backslash and
/// everything else escaped as `\xNN` (backslash as `\\`), so a cell never
/// contains whitespace.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x21..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Whether stderr is a terminal (progress bars only then).
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

pub fn parse_durability(s: &str) -> Result<Durability, String> {
    Durability::parse(s).ok_or_else(|| format!("{s:?} is not a durability mode: use flushed, synced or buffered"))
}

/// Options of the subcommands that open a cache for writing, with the
/// library's defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct WriterOpts {
    /// Size cap of the cache's segment and hint files, e.g. 64MiB, 10GB
    /// [default: 1GiB, the library's default]. Use the cap the cache's owner
    /// runs with: a smaller one makes this command evict entries.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_bytes: Option<u64>,
    /// What an acknowledged write survives: flushed (a killed process),
    /// synced (power loss), or buffered (bulk loads).
    #[arg(long, value_name = "MODE", value_parser = parse_durability, default_value = "flushed")]
    pub durability: Durability,
    /// Size of new segment files [default: max-bytes / 64, within 64KiB..64MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub segment_bytes: Option<u64>,
    /// Longest key accepted, in bytes [default: 1024; at most 65535].
    #[arg(long, value_name = "BYTES")]
    pub max_key_len: Option<usize>,
    /// Largest value accepted [default: 1MiB, or less if a segment cannot hold it].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_value_len: Option<u64>,
}

impl WriterOpts {
    /// Opens `dir` for writing (taking its lock). `create`: whether a missing
    /// directory becomes a new cache (set, load) or is an error (everything else).
    pub fn open(&self, dir: &Path, what: &str, create: bool) -> Result<Cache, Failure> {
        if !create && !dir.is_dir() {
            return Err(Failure::new(EXIT_ERROR, format!("cannot {what}: {} is not a directory", dir.display())));
        }
        if self.max_bytes.is_none() && dir.is_dir() {
            // The cap is not stored in the directory. Refuse to open a cache that is
            // already past what the default cap lets it hold: maintenance would
            // evict the owner's data down to the default.
            let used = disk_bytes(dir);
            let limit = keg::DEFAULT_MAX_BYTES - keg::DEFAULT_MAX_BYTES / 64;
            if used > limit {
                return Err(Failure::new(
                    EXIT_ERROR,
                    format!(
                        "cannot {what}: the cache holds {} of files, more than the default cap of {} keeps, \
                         so opening it with that cap would evict entries; pass --max-bytes with the cap its owner uses",
                        human_bytes(used),
                        human_bytes(keg::DEFAULT_MAX_BYTES)
                    ),
                ));
            }
        }
        let mut b = Cache::builder().durability(self.durability).background_maintenance(false);
        if let Some(n) = self.max_bytes {
            b = b.max_bytes(n);
        }
        if let Some(n) = self.segment_bytes {
            b = b.segment_bytes(n);
        }
        if let Some(n) = self.max_key_len {
            b = b.max_key_len(n);
        }
        if let Some(n) = self.max_value_len {
            b = b.max_value_len(usize::try_from(n).unwrap_or(usize::MAX));
        }
        b.open(dir).map_err(|e| Failure::keg(what, e))
    }
}

/// Opens `dir` read-only (no lock, no writes) for commands that only read.
pub fn open_read_only(dir: &Path, what: &str) -> Result<Cache, Failure> {
    if !dir.is_dir() {
        return Err(Failure::new(EXIT_ERROR, format!("cannot {what}: {} is not a directory", dir.display())));
    }
    // Accept every key the format allows: the cache may have been written with a larger limit.
    Cache::builder().max_key_len(keg::MAX_KEY_LEN).open_read_only(dir).map_err(|e| Failure::keg(what, e))
}

/// Bytes of segment and hint files in `dir` (what the size cap counts).
pub fn disk_bytes(dir: &Path) -> u64 {
    keg::inspect::list(dir)
        .map(|f| f.segments.iter().map(|s| s.len + s.hint.as_ref().map_or(0, |h| h.1)).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_cells_free_of_whitespace() {
        assert_eq!(escape(b"user:42"), "user:42");
        assert_eq!(escape(b"a b\\c\n\xff"), "a\\x20b\\\\c\\x0a\\xff");
    }

    #[test]
    fn bytes_round_trip_through_json() {
        for bytes in [&b"plain"[..], b"", b"\xff\xfe binary", "é".as_bytes(), b"nul\0inside"] {
            let mut obj = serde_json::Map::new();
            put_bytes(&mut obj, "key", bytes);
            assert_eq!(obj.contains_key("key"), std::str::from_utf8(bytes).is_ok());
            let line = serde_json::to_string(&obj).unwrap();
            let back: serde_json::Map<_, _> = serde_json::from_str(&line).unwrap();
            assert_eq!(get_bytes(&back, "key").unwrap(), bytes);
        }
        let obj = serde_json::from_str(r#"{"key":"a","key_b64":"YQ=="}"#).unwrap();
        assert!(get_bytes(&obj, "key").is_err());
        let obj = serde_json::from_str(r#"{"key_b64":"!!"}"#).unwrap();
        assert!(get_bytes(&obj, "key").is_err());
    }
}
