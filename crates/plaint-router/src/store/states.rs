//! The complaint states this process last wrote, so that a batch folds its
//! events onto them instead of reading each state back from its row.
//!
//! A live complaint's events arrive a few milliseconds apart (received, then
//! routed), so the state its second batch needs is almost always here. An
//! entry is used only when its sequence equals the row's `last_sequence`:
//! another replica's projector may have moved the row on meanwhile.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;
use plaint_domain::Timestamp;
use plaint_domain::lifecycle::Complaint;
use uuid::Uuid;

/// States kept: a few batches' worth, a few megabytes.
const CAPACITY: NonZeroUsize = match NonZeroUsize::new(2048) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// A state as it was written.
#[derive(Debug)]
pub(super) struct Cached {
    pub(super) state: Complaint,
    pub(super) ceo_engaged_at: Option<Timestamp>,
    pub(super) last_sequence: u64,
}

/// Recently written states, least recently used evicted first.
#[derive(Debug)]
pub(super) struct StateCache {
    entries: Mutex<LruCache<Uuid, Cached>>,
}

impl Default for StateCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(LruCache::new(CAPACITY)),
        }
    }
}

impl StateCache {
    /// Takes the state of `id` if it is the one at `last_sequence`. It is
    /// put back (or replaced) once the batch folding onto it has committed.
    pub(super) fn take(&self, id: &Uuid, last_sequence: u64) -> Option<Cached> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.pop(id).filter(|c| c.last_sequence == last_sequence)
    }

    /// Remembers committed states.
    pub(super) fn put_all(&self, states: impl IntoIterator<Item = (Uuid, Cached)>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, cached) in states {
            entries.put(id, cached);
        }
    }
}
