//! Reading and writing the `checkpoint` file (the format is in `format::checkpoint`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::checkpoint::Checkpoint;
use crate::format::{DecodeError, MAX_SEQ};
use crate::storage::Storage;

/// Name of the checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";

/// Reads the checkpoint; `None` when missing or damaged (recovery then assumes less).
pub(crate) fn read_checkpoint(storage: &Storage, dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    if storage.stat(&path, true).is_err() {
        return Ok(None);
    }
    match Checkpoint::decode(&storage.read_file(&path)?) {
        Ok(c)
            if c.durable_seq <= MAX_SEQ
                && c.seq_mark <= MAX_SEQ
                && c.void_ranges.iter().all(|&(a, b)| a <= MAX_SEQ && b <= MAX_SEQ) =>
        {
            Ok(Some(c))
        }
        Ok(_) => Ok(None),
        Err(DecodeError::UnsupportedVersion { found, supported }) => {
            Err(Error::UnsupportedVersion { path, found, supported })
        }
        Err(_) => Ok(None),
    }
}

/// Replaces the checkpoint file durably.
pub(crate) fn write_checkpoint(storage: &Storage, dir: &Path, c: &Checkpoint) -> Result<()> {
    storage.write_file_atomic(&dir.join(CHECKPOINT_FILE), &c.encode())?;
    storage.sync_dir(dir)
}
