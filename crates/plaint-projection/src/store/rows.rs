//! The rows a batch writes, gathered column by column while folding and
//! written with one multi-row statement per table.

use std::collections::HashMap;

use plaint_domain::event::{CeoSlot, CompanyEvent, ComplaintEvent};
use plaint_domain::lifecycle::Complaint;
use plaint_domain::{ComplaintId, Timestamp};
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::apply::Folded;
use super::{ComplaintRow, StoreError, name_of, to_db_seq};

/// JSON documents written back to back into one buffer: a batch's hundreds
/// of documents cost no allocation each, nor the regrowths of each one's
/// string (together about a tenth of the router's CPU under load).
#[derive(Debug, Default)]
pub(super) struct JsonDocs {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl JsonDocs {
    /// Appends `value`'s JSON.
    pub(super) fn push<T: Serialize>(
        &mut self,
        what: &'static str,
        value: &T,
    ) -> Result<(), StoreError> {
        let start = self.buf.len();
        if let Err(e) = serde_json::to_writer(&mut self.buf, value) {
            self.buf.truncate(start);
            return Err(StoreError::corrupt(what, e));
        }
        self.ends.push(self.buf.len());
        Ok(())
    }

    /// Every document, in order.
    pub(super) fn texts(&self) -> Result<Vec<&str>, StoreError> {
        // serde_json writes UTF-8, so this only fails on a bug; checked
        // rather than trusted, it costs one pass over the buffer.
        let all = std::str::from_utf8(&self.buf).map_err(|e| StoreError::corrupt("json", e))?;
        let mut start = 0;
        let mut out = Vec::with_capacity(self.ends.len());
        for &end in &self.ends {
            out.push(
                all.get(start..end)
                    .ok_or_else(|| StoreError::corrupt("json", "document out of bounds"))?,
            );
            start = end;
        }
        Ok(out)
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Timeline and company rows of a batch, and the buffers its complaint rows
/// are built in. Cleared and used again batch after batch, so their
/// capacity stays (a few megabytes at most: bounded by the batch size).
#[derive(Debug, Default)]
pub(super) struct Writes {
    pub(super) timeline: Timeline,
    pub(super) company: Vec<(u64, i64, CompanyEvent)>,
    complaints: ComplaintColumns,
}

impl Writes {
    /// Bytes the JSON buffers hold on to (the other columns hold a few
    /// words a row).
    pub(super) fn capacity(&self) -> usize {
        self.complaints.state.capacity() + self.timeline.detail.capacity()
    }

    /// Empties every buffer, keeping their capacity.
    pub(super) fn clear(&mut self) {
        self.timeline.clear();
        self.company.clear();
        self.complaints.clear();
    }

    /// Writes everything gathered, complaints first.
    pub(super) async fn write(
        &mut self,
        tx: &mut Transaction<'static, Postgres>,
        folded: &HashMap<Uuid, Folded>,
    ) -> Result<(), StoreError> {
        write_complaints(tx, folded, &mut self.complaints).await?;
        self.timeline.insert(tx).await?;
        for (sequence, at, event) in &self.company {
            write_company_event(tx, *sequence, *at, event).await?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(super) struct Timeline {
    sequence: Vec<i64>,
    complaint_id: Vec<Uuid>,
    event_id: Vec<Uuid>,
    event_type: Vec<&'static str>,
    occurred_at: Vec<i64>,
    /// JSON text, stored as it is (a routed event's detail is also where
    /// its decision is read from).
    detail: JsonDocs,
}

impl Timeline {
    pub(super) fn push(
        &mut self,
        sequence: u64,
        id: ComplaintId,
        event_id: Uuid,
        event: &ComplaintEvent,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.detail.push("event", event)?;
        self.sequence.push(to_db_seq(sequence));
        self.complaint_id.push(id.as_uuid());
        self.event_id.push(event_id);
        self.event_type.push(event.type_name());
        self.occurred_at.push(at.as_millis());
        Ok(())
    }

    fn clear(&mut self) {
        self.sequence.clear();
        self.complaint_id.clear();
        self.event_id.clear();
        self.event_type.clear();
        self.occurred_at.clear();
        self.detail.clear();
    }

    async fn insert(&self, tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        if self.sequence.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO timeline (sequence, complaint_id, event_id, event_type, occurred_at, detail) \
             SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[]) \
             ON CONFLICT (sequence) DO NOTHING",
        )
        .bind(&self.sequence)
        .bind(&self.complaint_id)
        .bind(&self.event_id)
        .bind(&self.event_type)
        .bind(&self.occurred_at)
        .bind(self.detail.texts()?)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The projector's complaint upsert into `table`: one row per complaint from
/// column arrays, changing a row only for a newer sequence. The bench's
/// PostgreSQL calibration (plaint-bench) sends a copy of this statement to a
/// copy of this table, to measure what it costs: change them together.
fn complaint_upsert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} (complaint_id, source_system, external_ticket_id, customer_id, \
             segment, channel, category, status, route, fulfilment, fulfilment_step, priority, \
             assignee, satisfaction, received_at, routed_at, resolved_at, ceo_engaged_at, \
             last_sequence, state, customer_ref) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
             $13::text[], $14::int[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], \
             $19::bigint[], $20::text[], $21::text[]) \
         ON CONFLICT (complaint_id) DO UPDATE SET \
             status = EXCLUDED.status, route = EXCLUDED.route, fulfilment = EXCLUDED.fulfilment, \
             fulfilment_step = EXCLUDED.fulfilment_step, priority = EXCLUDED.priority, \
             assignee = EXCLUDED.assignee, satisfaction = EXCLUDED.satisfaction, \
             routed_at = EXCLUDED.routed_at, resolved_at = EXCLUDED.resolved_at, \
             ceo_engaged_at = EXCLUDED.ceo_engaged_at, last_sequence = EXCLUDED.last_sequence, \
             state = EXCLUDED.state \
         WHERE {table}.last_sequence < EXCLUDED.last_sequence"
    )
}

/// The upsert into the live table, built once.
static COMPLAINTS_UPSERT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| complaint_upsert_sql("complaints"));

/// Upserts every complaint the batch changed, one row each, newer sequences only.
async fn write_complaints(
    tx: &mut Transaction<'static, Postgres>,
    folded: &HashMap<Uuid, Folded>,
    c: &mut ComplaintColumns,
) -> Result<(), StoreError> {
    c.clear();
    for entry in folded.values().filter(|f| f.dirty) {
        if let Some(state) = &entry.state {
            c.push(state, entry.ceo_engaged_at, entry.last_sequence)?;
        }
    }
    if c.complaint_id.is_empty() {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(COMPLAINTS_UPSERT.as_str()))
        .bind(&c.complaint_id)
        .bind(&c.source_system)
        .bind(&c.external_ticket_id)
        .bind(&c.customer_id)
        .bind(&c.segment)
        .bind(&c.channel)
        .bind(&c.category)
        .bind(&c.status)
        .bind(&c.route)
        .bind(&c.fulfilment)
        .bind(&c.fulfilment_step)
        .bind(&c.priority)
        .bind(&c.assignee)
        .bind(&c.satisfaction)
        .bind(&c.received_at)
        .bind(&c.routed_at)
        .bind(&c.resolved_at)
        .bind(&c.ceo_engaged_at)
        .bind(&c.last_sequence)
        .bind(c.state.texts()?)
        .bind(&c.customer_ref)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The complaint rows of a batch, column by column, for one `UNNEST` upsert.
#[derive(Debug, Default)]
struct ComplaintColumns {
    complaint_id: Vec<Uuid>,
    source_system: Vec<String>,
    external_ticket_id: Vec<String>,
    customer_id: Vec<String>,
    customer_ref: Vec<String>,
    segment: Vec<String>,
    channel: Vec<String>,
    category: Vec<String>,
    status: Vec<String>,
    route: Vec<Option<String>>,
    fulfilment: Vec<Option<String>>,
    fulfilment_step: Vec<Option<String>>,
    priority: Vec<Option<String>>,
    assignee: Vec<Option<String>>,
    satisfaction: Vec<Option<i32>>,
    received_at: Vec<i64>,
    routed_at: Vec<Option<i64>>,
    resolved_at: Vec<Option<i64>>,
    ceo_engaged_at: Vec<Option<i64>>,
    last_sequence: Vec<i64>,
    state: JsonDocs,
}

impl ComplaintColumns {
    /// Adds a row; on an error, nothing of it (the state is written first).
    fn push(
        &mut self,
        state: &Complaint,
        ceo_engaged_at: Option<Timestamp>,
        last_sequence: u64,
    ) -> Result<(), StoreError> {
        self.state.push("complaint", state)?;
        let row = ComplaintRow::of(state, ceo_engaged_at, last_sequence);
        self.complaint_id.push(row.complaint_id.as_uuid());
        self.source_system.push(row.source_system);
        self.external_ticket_id.push(row.external_ticket_id);
        self.customer_id.push(row.customer_id);
        self.customer_ref
            .push(state.facts.customer.reference.to_string());
        self.segment.push(row.segment);
        self.channel.push(name_of(&row.channel));
        self.category.push(name_of(&row.category));
        self.status.push(name_of(&row.status));
        self.route.push(row.route.as_ref().map(name_of));
        self.fulfilment.push(row.fulfilment.as_ref().map(name_of));
        self.fulfilment_step
            .push(row.fulfilment_step.as_ref().map(name_of));
        self.priority.push(row.priority.as_ref().map(name_of));
        self.assignee.push(row.assignee);
        self.satisfaction
            .push(row.satisfaction.and_then(|s| i32::try_from(s).ok()));
        self.received_at.push(row.received_at.as_millis());
        self.routed_at.push(row.routed_at.map(Timestamp::as_millis));
        self.resolved_at
            .push(row.resolved_at.map(Timestamp::as_millis));
        self.ceo_engaged_at
            .push(row.ceo_engaged_at.map(Timestamp::as_millis));
        self.last_sequence.push(to_db_seq(last_sequence));
        Ok(())
    }

    fn clear(&mut self) {
        // Only the state buffer is worth keeping: the other columns hold a
        // few words a row.
        let mut state = std::mem::take(&mut self.state);
        state.clear();
        *self = Self {
            state,
            ..Self::default()
        };
    }
}

/// Writes a company event: policies, settings, CEO slots.
async fn write_company_event(
    tx: &mut Transaction<'static, Postgres>,
    sequence: u64,
    at: i64,
    event: &CompanyEvent,
) -> Result<(), StoreError> {
    let seq = to_db_seq(sequence);
    match event {
        CompanyEvent::PolicyPublished {
            policy,
            published_by,
        } => {
            let json =
                serde_json::to_value(policy).map_err(|e| StoreError::corrupt("policy", e))?;
            sqlx::query(
                "INSERT INTO policies (version, policy, published_at, published_by, sequence) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING",
            )
            .bind(i32::try_from(policy.version).unwrap_or(i32::MAX))
            .bind(json)
            .bind(at)
            .bind(published_by.as_str())
            .bind(seq)
            .execute(&mut **tx)
            .await?;
        }
        CompanyEvent::ClimateSet { climate, .. } => {
            set_company(tx, "climate", &name_of(climate), seq).await?;
        }
        CompanyEvent::StanceAlignmentSet { alignment, .. } => {
            set_company(tx, "stance", &name_of(alignment), seq).await?;
        }
        CompanyEvent::CeoSlotReserved(CeoSlot {
            window_start,
            complaint_id,
            customer,
            segment,
            ..
        }) => {
            sqlx::query(
                "INSERT INTO ceo_slots (window_start, complaint_id, customer_ref, segment, sequence) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(window_start.as_millis())
            .bind(complaint_id.as_uuid())
            .bind(customer.as_str())
            .bind(segment.as_str())
            .bind(seq)
            .execute(&mut **tx)
            .await?;
        }
        CompanyEvent::CustomerErased { customer, .. } => {
            super::erasure::erase_customer(tx, customer, seq).await?;
        }
    }
    Ok(())
}

async fn set_company(
    tx: &mut Transaction<'static, Postgres>,
    key: &str,
    value: &str,
    seq: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO company (key, value, sequence) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, sequence = EXCLUDED.sequence \
         WHERE company.sequence < EXCLUDED.sequence",
    )
    .bind(key)
    .bind(value)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::JsonDocs;

    #[test]
    fn documents_come_back_one_by_one_multibyte_text_included() {
        let mut docs = JsonDocs::default();
        docs.push("a", &"queja de ñandú ✓").unwrap();
        docs.push("b", &vec![1, 2]).unwrap();
        docs.push("c", &"").unwrap();
        assert_eq!(
            docs.texts().unwrap(),
            vec!["\"queja de ñandú ✓\"", "[1,2]", "\"\""]
        );
    }

    #[test]
    fn a_document_that_fails_leaves_nothing_behind() {
        let mut docs = JsonDocs::default();
        docs.push("first", &"kept").unwrap();
        // JSON object keys must be strings: this fails halfway through.
        let bad: BTreeMap<Vec<u8>, u8> = BTreeMap::from([(vec![1], 1)]);
        let e = docs.push("bad", &bad).unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
        docs.push("last", &7).unwrap();
        assert_eq!(docs.texts().unwrap(), vec!["\"kept\"", "7"]);
        assert_eq!(docs.texts().unwrap().len(), 2);
    }

    #[test]
    fn cleared_documents_are_gone_and_the_capacity_stays() {
        let mut docs = JsonDocs::default();
        docs.push("a", &"x".repeat(1000)).unwrap();
        let capacity = docs.capacity();
        docs.clear();
        assert!(docs.texts().unwrap().is_empty());
        assert_eq!(docs.capacity(), capacity);
    }
}
