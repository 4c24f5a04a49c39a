//! Helpers shared by the `cli_*` tests, which run the built `keg` binary.
#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;

/// A fixed clock start (2023-11-14T22:13:20Z) for exact expiry times.
pub const T0: u64 = 1_700_000_000_000;
/// Bytes in a segment header; the first record starts here.
pub const SEG_HEADER: u64 = 32;

/// The `keg` binary this test run built.
pub fn keg() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_keg"));
    cmd.env_remove("NO_COLOR");
    cmd
}

/// On-disk length of a record.
pub fn rec_len(key: &[u8], value: &[u8]) -> u64 {
    28 + key.len() as u64 + value.len() as u64
}

/// Parses jsonl output.
pub fn jsonl(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .expect("jsonl output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json line {l:?}: {e}")))
        .collect()
}

/// The files of a directory with their sizes and modification times.
pub fn listing(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.file_name().into_string().unwrap(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

/// The path of segment `id` in `dir`.
pub fn seg_path(dir: &Path, id: u32) -> std::path::PathBuf {
    dir.join(format!("{id:08x}.seg"))
}

pub fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

pub fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Serialises the tests of one test binary.
///
/// The engine's directory lock is an `flock` on an open file. A child process
/// spawned by one test thread inherits every open file of this process for
/// the instant between fork and exec, so a cache that another test thread
/// closes and at once reopens (or hands to the binary) in that instant can
/// find its own lock still held and fail with `Locked`. Running the tests of
/// a file one at a time keeps spawns and reopens apart.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
