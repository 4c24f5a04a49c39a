//! Key hashing: xxh3-64 in production, any function in tests that need collisions.

use std::fmt;
use std::sync::Arc;

/// Hasher id recorded in hint files for xxh3-64 with seed 0.
pub(crate) const XXH3_ID: u8 = 1;
/// Hasher id recorded in hint files written under a custom hasher.
pub(crate) const CUSTOM_ID: u8 = 255;

/// A key-hash function.
pub(crate) type HashFn = dyn Fn(&[u8]) -> u64 + Send + Sync;

/// How keys are hashed for the index.
#[derive(Clone)]
pub(crate) enum KeyHasher {
    Xxh3,
    Custom(Arc<HashFn>),
}

impl KeyHasher {
    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        match self {
            KeyHasher::Xxh3 => xxhash_rust::xxh3::xxh3_64(key),
            KeyHasher::Custom(f) => f(key),
        }
    }

    pub(crate) fn id(&self) -> u8 {
        match self {
            KeyHasher::Xxh3 => XXH3_ID,
            KeyHasher::Custom(_) => CUSTOM_ID,
        }
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyHasher::Xxh3 => "xxh3-64",
            KeyHasher::Custom(_) => "custom",
        })
    }
}
