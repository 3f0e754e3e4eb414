//! The complaint states this process last wrote, so that a batch folds its
//! events onto them instead of reading each state back from its row.
//!
//! A live complaint's events arrive a few milliseconds apart (received, then
//! routed), so the state its second batch needs is almost always here. An
//! entry is used only when its sequence equals the row's `last_sequence`:
//! another replica's projector may have moved the row on meanwhile. And the
//! whole cache is dropped when the `complaints` table itself changes (a
//! rebuild, here or in another replica, swaps in a new one whose rows may
//! differ at the same sequences: that is what a rebuild is for).

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
    entries: Mutex<Entries>,
}

#[derive(Debug)]
struct Entries {
    /// The `complaints` table (its oid) the states were written to.
    table: i64,
    states: LruCache<Uuid, Cached>,
}

impl Default for StateCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Entries {
                table: 0,
                states: LruCache::new(CAPACITY),
            }),
        }
    }
}

impl StateCache {
    /// Forgets every state if they were written to another table than
    /// `table` (the oid of `complaints` as the current transaction sees it).
    pub(super) fn use_table(&self, table: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.table != table {
            entries.states.clear();
            entries.table = table;
        }
    }

    /// Takes the state of `id` if it is the one at `last_sequence`. It is
    /// put back (or replaced) once the batch folding onto it has committed.
    pub(super) fn take(&self, id: &Uuid, last_sequence: u64) -> Option<Cached> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .states
            .pop(id)
            .filter(|c| c.last_sequence == last_sequence)
    }

    /// Forgets every state.
    pub(super) fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.states.clear();
    }

    /// Remembers committed states.
    pub(super) fn put_all(&self, states: impl IntoIterator<Item = (Uuid, Cached)>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, cached) in states {
            entries.states.put(id, cached);
        }
    }
}
