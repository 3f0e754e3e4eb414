//! Folding a batch of log events into the projections, in one transaction with
//! the checkpoint.
//!
//! The checkpoint row is locked first, so two projectors (replicas, or a
//! redelivery after a crash) serialize on it, and every event at or below the
//! checkpoint is skipped: applying a batch twice changes nothing. Complaint
//! rows additionally change only when the incoming sequence is newer, which
//! lets a batch carry a complaint's later events ahead of the checkpoint
//! (see [`Span`]): read again from the checkpoint, they are skipped.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use plaint_bus::TailItem;
use plaint_domain::event::{CompanyEvent, ComplaintEvent, EventPayload};
use plaint_domain::lifecycle::{Complaint, apply};
use plaint_domain::{ComplaintId, Route, Timestamp};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::rows::Writes;
use super::states::{Cached, StateCache};
use super::summaries;
use super::{CHECKPOINT, ComplaintRow, Store, StoreError, from_db_seq, parse_state, to_db_seq};

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct AppliedBatch {
    /// The checkpoint after the batch.
    pub checkpoint: u64,
    /// Events applied now.
    pub applied: usize,
    /// Events skipped because an earlier batch had applied them.
    pub skipped: usize,
    /// Events that could not be decoded (skipped, checkpoint still advanced).
    pub undecodable: usize,
    /// Every complaint event applied, in log order, with the row it left.
    pub changes: Vec<ComplaintChange>,
}

/// One complaint event applied, and the complaint it left.
#[derive(Debug, Clone)]
pub struct ComplaintChange {
    /// The event's log sequence.
    pub sequence: u64,
    /// The event's type name.
    pub event_type: std::borrow::Cow<'static, str>,
    /// The complaint after the event.
    pub complaint: ComplaintRow,
}

/// Whether a batch reports each complaint event it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// Fill [`AppliedBatch::changes`] (someone is watching).
    Collect,
    /// Leave it empty: building each row costs a few allocations an event.
    Skip,
}

/// A stretch of the log to apply in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    /// The events to apply: the stretch's own, in log order, then later
    /// complaint events taken ahead of the rest of the log (in log order
    /// too, and never ahead of an earlier event of their complaint). An
    /// event the stretch covers may be missing from it because an earlier
    /// span took it ahead.
    pub items: &'a [TailItem],
    /// The first and last sequences the stretch covers: the checkpoint moves
    /// to the last. `None`: it covers none, only events taken ahead.
    pub stretch: Option<(u64, u64)>,
}

impl<'a> Span<'a> {
    /// A stretch made of `items` exactly (in log order, none taken ahead).
    pub fn of(items: &'a [TailItem]) -> Self {
        Self {
            items,
            stretch: items
                .first()
                .zip(items.last())
                .map(|(f, l)| (f.sequence, l.sequence)),
        }
    }
}

/// A complaint being folded within the batch.
#[derive(Debug)]
pub(super) struct Folded {
    pub(super) state: Option<Complaint>,
    pub(super) ceo_engaged_at: Option<Timestamp>,
    pub(super) last_sequence: u64,
    pub(super) dirty: bool,
}
impl Store {
    /// Applies a batch of log events and advances the checkpoint, in one
    /// transaction. Events at or below the checkpoint are skipped; events that
    /// could not be decoded are skipped with a warning but still advance it.
    #[tracing::instrument(
        skip_all,
        fields(
            first_sequence = items.first().map(|i| i.sequence),
            last_sequence = items.last().map(|i| i.sequence),
            applied = tracing::field::Empty,
        ),
        err
    )]
    pub async fn apply_batch(&self, items: &[TailItem]) -> Result<AppliedBatch, StoreError> {
        self.apply_batch_after(items, false, Changes::Collect).await
    }

    /// Like [`Store::apply_batch`]; `allow_gap` accepts a batch that does not
    /// continue from the checkpoint, for the first batch of a reader opened at
    /// the checkpoint (events before the stream's first may have expired).
    pub async fn apply_batch_after(
        &self,
        items: &[TailItem],
        allow_gap: bool,
        changes: Changes,
    ) -> Result<AppliedBatch, StoreError> {
        self.apply_span(Span::of(items), allow_gap, changes).await
    }

    /// Applies a stretch of the log, with the events it carries ahead, and
    /// moves the checkpoint to its end, in one transaction. `allow_gap` as
    /// for [`Store::apply_batch_after`].
    pub async fn apply_span(
        &self,
        span: Span<'_>,
        allow_gap: bool,
        changes: Changes,
    ) -> Result<AppliedBatch, StoreError> {
        let items = span.items;
        let mut tx = self.pool.begin().await?;
        let checkpoint = super::lock_checkpoint(&mut tx).await?;
        // Read again from an older checkpoint, a stretch overlaps what is
        // applied; it must not start after it.
        if let Some((first, _)) = span.stretch
            && checkpoint > 0
            && first > checkpoint + 1
            && !allow_gap
        {
            return Err(StoreError::Gap {
                checkpoint,
                got: first,
            });
        }

        // The table a rebuild swapped in last; the checkpoint lock held by
        // this transaction keeps it from changing until the commit.
        let table: i64 = sqlx::query_scalar("SELECT 'complaints'::regclass::oid::bigint")
            .fetch_one(&mut *tx)
            .await?;
        let before = self.applied_table.swap(table, Ordering::Relaxed);
        if before != 0 && before != table {
            return Err(StoreError::Swapped);
        }
        self.states.use_table(table);
        let mut folded = load_states(&mut tx, &self.states, items, checkpoint).await?;
        let shares = summaries::shares_before(&folded);
        let mut writes = self.spare_writes();
        let out = fold_items(
            items,
            checkpoint,
            span.stretch.map_or(0, |(_, last)| last),
            &mut folded,
            changes,
            &mut writes,
        )?;
        writes.write(&mut tx, &folded).await?;
        summaries::Deltas::of_batch(&shares, &folded)
            .write(&mut tx)
            .await?;
        if out.checkpoint > checkpoint {
            sqlx::query("UPDATE checkpoint SET last_sequence = $2 WHERE name = $1")
                .bind(CHECKPOINT)
                .bind(to_db_seq(out.checkpoint))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        // An erasure rewrote states behind the cache's back: none of them
        // may be folded onto again from memory.
        let erased = writes
            .company
            .iter()
            .any(|(_, _, e)| matches!(e, CompanyEvent::CustomerErased { .. }));
        self.keep_writes(writes);
        if erased {
            self.states.clear();
        } else {
            self.states
                .put_all(folded.into_iter().filter_map(|(id, f)| {
                    let state = f.state?;
                    Some((
                        id,
                        Cached {
                            state,
                            ceo_engaged_at: f.ceo_engaged_at,
                            last_sequence: f.last_sequence,
                        },
                    ))
                }));
        }
        self.observe(out.checkpoint);
        tracing::Span::current().record("applied", out.applied);
        Ok(out)
    }
}

/// Folds the events of `items` after `checkpoint` onto the states in
/// `folded` (which must hold every complaint they touch that has a row),
/// gathering the rows to write into `writes` (cleared first). The
/// checkpoint moves to `through`; an event its complaint's row already has
/// (one carried ahead by an earlier batch) is skipped.
pub(super) fn fold_items(
    items: &[TailItem],
    checkpoint: u64,
    through: u64,
    folded: &mut HashMap<Uuid, Folded>,
    changes: Changes,
    writes: &mut Writes,
) -> Result<AppliedBatch, StoreError> {
    writes.clear();
    let mut out = AppliedBatch {
        checkpoint: checkpoint.max(through),
        ..AppliedBatch::default()
    };
    for item in items {
        if item.sequence <= checkpoint {
            out.skipped += 1;
            continue;
        }
        let stored = match &item.event {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(sequence = item.sequence, subject = %item.subject, error = %e,
                        "skipping an event that cannot be decoded");
                out.undecodable += 1;
                continue;
            }
        };
        let envelope = &stored.envelope;
        let at = envelope.occurred_at;
        match &envelope.payload {
            EventPayload::Complaint(event) => {
                let Some(id) = envelope.complaint_id else {
                    tracing::warn!(
                        sequence = item.sequence,
                        "complaint event without a complaint id"
                    );
                    continue;
                };
                let entry = folded.entry(id.as_uuid()).or_insert(Folded {
                    state: None,
                    ceo_engaged_at: None,
                    last_sequence: 0,
                    dirty: false,
                });
                if !fold(entry, id, event, at, item.sequence)? {
                    out.skipped += 1;
                    // Beyond the checkpoint, the row has it because an
                    // earlier run took it ahead: that run told its own
                    // watchers, which may have been on another replica or
                    // gone with it. Tell this one's (at least once).
                    if let (Some(state), Changes::Collect) = (&entry.state, changes) {
                        out.changes.push(ComplaintChange {
                            sequence: item.sequence,
                            event_type: event.type_name().into(),
                            complaint: ComplaintRow::of(
                                state,
                                entry.ceo_engaged_at,
                                entry.last_sequence,
                            ),
                        });
                    }
                    continue;
                }
                out.applied += 1;
                writes
                    .timeline
                    .push(item.sequence, id, envelope.event_id.as_uuid(), event, at)?;
                if let (Some(state), Changes::Collect) = (&entry.state, changes) {
                    out.changes.push(ComplaintChange {
                        sequence: item.sequence,
                        event_type: event.type_name().into(),
                        complaint: ComplaintRow::of(state, entry.ceo_engaged_at, item.sequence),
                    });
                }
            }
            EventPayload::Company(event) => {
                out.applied += 1;
                writes
                    .company
                    .push((item.sequence, at.as_millis(), event.clone()));
            }
            // Keys and the audit trail are read from the log itself.
            EventPayload::Access(_) => out.applied += 1,
        }
    }

    Ok(out)
}

/// Loads the state of every complaint the batch's new events touch: from the
/// cache when it holds the row's current state, else from the row.
async fn load_states(
    tx: &mut Transaction<'static, Postgres>,
    cache: &StateCache,
    items: &[TailItem],
    checkpoint: u64,
) -> Result<HashMap<Uuid, Folded>, StoreError> {
    let mut ids: Vec<Uuid> = items
        .iter()
        .filter(|i| i.sequence > checkpoint)
        .filter_map(|i| i.event.as_ref().ok())
        .filter(|e| matches!(e.envelope.payload, EventPayload::Complaint(_)))
        .filter_map(|e| e.envelope.complaint_id.map(|c| c.as_uuid()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut folded = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(folded);
    }
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT complaint_id, last_sequence FROM complaints WHERE complaint_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut missing = Vec::new();
    for (id, last_sequence) in rows {
        match cache.take(&id, from_db_seq(last_sequence)) {
            Some(cached) => {
                folded.insert(
                    id,
                    Folded {
                        state: Some(cached.state),
                        ceo_engaged_at: cached.ceo_engaged_at,
                        last_sequence: cached.last_sequence,
                        dirty: false,
                    },
                );
            }
            None => missing.push(id),
        }
    }
    if missing.is_empty() {
        return Ok(folded);
    }
    let rows: Vec<(Uuid, String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT complaint_id, state, ceo_engaged_at, last_sequence \
         FROM complaints WHERE complaint_id = ANY($1)",
    )
    .bind(&missing)
    .fetch_all(&mut **tx)
    .await?;
    for (id, state, ceo_engaged_at, last_sequence) in rows {
        folded.insert(
            id,
            Folded {
                state: Some(parse_state(&state)?),
                ceo_engaged_at: ceo_engaged_at.map(Timestamp::from_millis),
                last_sequence: from_db_seq(last_sequence),
                dirty: false,
            },
        );
    }
    Ok(folded)
}

/// Folds one event into a complaint; an event its history cannot take is
/// logged and leaves the state as it was. `false` when the complaint has
/// the event already.
fn fold(
    entry: &mut Folded,
    id: ComplaintId,
    event: &ComplaintEvent,
    at: Timestamp,
    sequence: u64,
) -> Result<bool, StoreError> {
    if sequence <= entry.last_sequence {
        return Ok(false);
    }
    match apply(entry.state.clone(), id, event, at) {
        Ok(next) => {
            entry.state = Some(next);
            entry.last_sequence = sequence;
            entry.dirty = true;
            if let ComplaintEvent::Routed(d) | ComplaintEvent::Rerouted { decision: d, .. } = event
                && d.route == Route::Ceo
                && entry.ceo_engaged_at.is_none()
            {
                entry.ceo_engaged_at = Some(d.decided_at);
            }
        }
        Err(e) => {
            tracing::warn!(sequence, complaint_id = %id, error = %e, "event does not fit the complaint's history; state unchanged");
            // Taken all the same, so that reading it again skips it.
            entry.last_sequence = sequence;
            entry.dirty = true;
        }
    }
    Ok(true)
}
