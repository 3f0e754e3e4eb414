//! Complaints: one in detail, pages of a list, a customer's history, and the
//! range a policy simulation replays.

use std::fmt;

use futures::stream::{BoxStream, StreamExt};
use plaint_domain::event::ComplaintEvent;
use plaint_domain::lifecycle::{Complaint, Status};
use plaint_domain::values::CustomerRef;
use plaint_domain::{Channel, ComplaintId, Decision, Route, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use uuid::Uuid;

use super::{
    ComplaintRow, DEFAULT_PAGE_SIZE, MAX_HISTORY, MAX_PAGE_SIZE, Store, StoreError, checkpoint_in,
    from_db_seq, name_of, parse_name,
};

/// The columns [`complaint_row`] reads, in a `&'static str` for `concat!`.
macro_rules! complaint_columns {
    () => {
        "complaint_id, source_system, external_ticket_id, customer_id, segment, channel, \
         category, status, route, fulfilment, fulfilment_step, priority, assignee, satisfaction, \
         received_at, routed_at, resolved_at, ceo_engaged_at, last_sequence"
    };
}

/// One entry of a complaint's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    /// Its log sequence.
    pub sequence: u64,
    /// The event's id in the log (its `Nats-Msg-Id`).
    pub event_id: Uuid,
    /// The event's type name.
    pub event_type: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The event payload as JSON text.
    pub detail_json: String,
}

/// Most complaints one export holds.
pub const MAX_EXPORT_COMPLAINTS: usize = 10_000;

/// What the read models hold about one customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerData {
    /// Each complaint's state (JSON text) and timeline, oldest first.
    pub complaints: Vec<(String, Vec<TimelineRow>)>,
    /// More complaints than [`MAX_EXPORT_COMPLAINTS`] exist.
    pub truncated: bool,
}

/// One routing decision of a complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    /// Its log sequence.
    pub sequence: u64,
    /// The decision with its explanation.
    pub decision: Decision,
}

/// A complaint with everything that happened to it.
#[derive(Debug, Clone)]
pub struct ComplaintDetail {
    /// The current row.
    pub complaint: ComplaintRow,
    /// Every event, oldest first.
    pub timeline: Vec<TimelineRow>,
    /// Every decision, oldest first; the last is in force.
    pub decisions: Vec<DecisionRow>,
    /// The checkpoint in the same snapshot.
    pub projected_sequence: u64,
}

/// Where a page of a list ends: the last complaint returned, newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Its received time.
    pub received_at: i64,
    /// Its id.
    pub complaint_id: Uuid,
}

impl Cursor {
    /// Parses the `<received_at>:<uuid>` form written by `Display`.
    pub fn parse(raw: &str) -> Option<Cursor> {
        let (at, id) = raw.split_once(':')?;
        Some(Cursor {
            received_at: at.parse().ok()?,
            complaint_id: Uuid::try_parse(id).ok()?,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.received_at, self.complaint_id)
    }
}

/// The filters of a complaint list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Route in force.
    pub route: Option<Route>,
    /// Only complaints in this status.
    pub status: Option<Status>,
    /// Only complaints that came through this channel.
    pub channel: Option<Channel>,
    /// Customer, by pseudonym.
    pub customer_ref: Option<String>,
    /// Received at or after.
    pub received_from: Option<Timestamp>,
    /// Received at or before.
    pub received_to: Option<Timestamp>,
    /// Page size; 0 means [`DEFAULT_PAGE_SIZE`], capped at [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// Continue after this complaint.
    pub after: Option<Cursor>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The complaints, newest first.
    pub complaints: Vec<ComplaintRow>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
    /// The checkpoint in the same snapshot.
    pub projected_sequence: u64,
}

/// A customer's complaints and CEO engagements.
#[derive(Debug, Clone, Default)]
pub struct CustomerHistory {
    /// Their complaints, newest first, at most [`MAX_HISTORY`].
    pub complaints: Vec<ComplaintRow>,
    /// How many of all their complaints the CEO engaged with.
    pub ceo_engagements: u32,
    /// The latest of those engagements.
    pub last_ceo_engagement: Option<Timestamp>,
}

impl Store {
    /// A complaint with its timeline and decisions, all from one snapshot.
    pub async fn get_complaint(
        &self,
        id: ComplaintId,
    ) -> Result<Option<ComplaintDetail>, StoreError> {
        let mut tx = self.snapshot().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            complaint_columns!(),
            " FROM complaints WHERE complaint_id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let complaint = complaint_row(&row)?;
        let timeline = timeline_of(&mut tx, id.as_uuid()).await?;
        let decisions = timeline
            .iter()
            .filter(|t| DECISION_EVENTS.contains(&t.event_type.as_str()))
            .map(|t| {
                Ok(DecisionRow {
                    sequence: t.sequence,
                    decision: decision_in(&t.detail_json)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let projected_sequence = checkpoint_in(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(ComplaintDetail {
            complaint,
            timeline,
            decisions,
            projected_sequence,
        }))
    }

    /// A page of complaints, newest first (keyset pagination on received time and id).
    pub async fn list_complaints(&self, filter: &ListFilter) -> Result<ListPage, StoreError> {
        let page_size = page_size(filter.page_size);
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            complaint_columns!(),
            " FROM complaints WHERE TRUE"
        ));
        if let Some(route) = &filter.route {
            q.push(" AND route = ").push_bind(name_of(route));
        }
        if let Some(status) = &filter.status {
            q.push(" AND status = ").push_bind(name_of(status));
        }
        if let Some(channel) = &filter.channel {
            q.push(" AND channel = ").push_bind(name_of(channel));
        }
        if let Some(customer) = &filter.customer_ref {
            q.push(" AND customer_ref = ").push_bind(customer.clone());
        }
        if let Some(from) = filter.received_from {
            q.push(" AND received_at >= ").push_bind(from.as_millis());
        }
        if let Some(to) = filter.received_to {
            q.push(" AND received_at <= ").push_bind(to.as_millis());
        }
        if let Some(after) = filter.after {
            q.push(" AND (received_at, complaint_id) < (")
                .push_bind(after.received_at)
                .push(", ")
                .push_bind(after.complaint_id)
                .push(")");
        }
        q.push(" ORDER BY received_at DESC, complaint_id DESC LIMIT ")
            .push_bind(i64::from(page_size) + 1);

        let mut tx = self.snapshot().await?;
        let rows = q.build().fetch_all(&mut *tx).await?;
        let projected_sequence = checkpoint_in(&mut tx).await?;
        tx.commit().await?;

        let mut complaints = rows
            .iter()
            .map(complaint_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = complaints.len() > page_size as usize;
        complaints.truncate(page_size as usize);
        let next = more
            .then(|| complaints.last())
            .flatten()
            .map(|last| Cursor {
                received_at: last.received_at.as_millis(),
                complaint_id: last.complaint_id.as_uuid(),
            });
        Ok(ListPage {
            complaints,
            next,
            projected_sequence,
        })
    }

    /// Everything held about one customer, in one snapshot.
    pub async fn customer_data(&self, customer: &CustomerRef) -> Result<CustomerData, StoreError> {
        let mut tx = self.snapshot().await?;
        let mut rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT complaint_id, state FROM complaints WHERE customer_ref = $1 \
             ORDER BY received_at, complaint_id LIMIT $2",
        )
        .bind(customer.as_str())
        .bind(i64::try_from(MAX_EXPORT_COMPLAINTS + 1).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let truncated = rows.len() > MAX_EXPORT_COMPLAINTS;
        rows.truncate(MAX_EXPORT_COMPLAINTS);
        let mut complaints = Vec::with_capacity(rows.len());
        for (id, state) in rows {
            let timeline = timeline_of(&mut tx, id).await?;
            complaints.push((state, timeline));
        }
        tx.commit().await?;
        Ok(CustomerData {
            complaints,
            truncated,
        })
    }

    /// A customer's complaints (newest first) and CEO engagements.
    pub async fn customer_history(
        &self,
        customer: &CustomerRef,
    ) -> Result<CustomerHistory, StoreError> {
        let customer_ref = customer.as_str();
        let mut tx = self.snapshot().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            complaint_columns!(),
            " FROM complaints WHERE customer_ref = $1 \
              ORDER BY received_at DESC, complaint_id DESC LIMIT $2"
        ))
        .bind(customer_ref)
        .bind(i64::from(MAX_HISTORY))
        .fetch_all(&mut *tx)
        .await?;
        let (count, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(ceo_engaged_at), max(ceo_engaged_at) FROM complaints WHERE customer_ref = $1",
        )
        .bind(customer_ref)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CustomerHistory {
            complaints: rows
                .iter()
                .map(complaint_row)
                .collect::<Result<Vec<_>, _>>()?,
            ceo_engagements: u32::try_from(count).unwrap_or(u32::MAX),
            last_ceo_engagement: last.map(Timestamp::from_millis),
        })
    }

    /// Routed complaints received in `[from, to]`, oldest first, at most
    /// `limit`, each with its first decision; streamed so a long range is not
    /// held in memory.
    pub fn complaints_in_range(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> BoxStream<'_, Result<(Complaint, Decision), StoreError>> {
        sqlx::query_as::<_, (String, String)>(
            "SELECT c.state, d.detail FROM complaints c \
             CROSS JOIN LATERAL ( \
                 SELECT detail FROM timeline \
                 WHERE timeline.complaint_id = c.complaint_id AND timeline.event_type = ANY($4) \
                 ORDER BY sequence LIMIT 1 \
             ) d \
             WHERE c.received_at >= $1 AND c.received_at <= $2 \
             ORDER BY c.received_at, c.complaint_id LIMIT $3",
        )
        .bind(from.as_millis())
        .bind(to.as_millis())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(&DECISION_EVENTS[..])
        .fetch(&self.pool)
        .map(|row| {
            let (state, detail) = row?;
            Ok((super::parse_state(&state)?, decision_in(&detail)?))
        })
        .boxed()
    }
}

impl Store {
    /// How many complaints were received in `[from, to]`.
    pub async fn count_received(&self, from: Timestamp, to: Timestamp) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM complaints WHERE received_at >= $1 AND received_at <= $2",
        )
        .bind(from.as_millis())
        .bind(to.as_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The CEO's first engagements with complaints in `[from, to)`: when,
    /// the customer's segment and pseudonym, oldest first.
    pub fn ceo_engagements_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxStream<'_, Result<(Timestamp, String, String), StoreError>> {
        sqlx::query_as::<_, (i64, String, String)>(
            "SELECT ceo_engaged_at, segment, customer_ref FROM complaints \
             WHERE ceo_engaged_at >= $1 AND ceo_engaged_at < $2 ORDER BY ceo_engaged_at",
        )
        .bind(from.as_millis())
        .bind(to.as_millis())
        .fetch(&self.pool)
        .map(|row| {
            let (at, segment, customer_ref) = row?;
            Ok((Timestamp::from_millis(at), segment, customer_ref))
        })
        .boxed()
    }
}

impl Store {
    /// The complaint events applied after sequence `after`, up to
    /// `through`, at most `limit` of them in log order, each with its
    /// complaint's row as it stands now (not as the event left it: later
    /// events may show in it already).
    pub async fn changes_between(
        &self,
        after: u64,
        through: u64,
        limit: u32,
    ) -> Result<Vec<super::ComplaintChange>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT timeline.sequence, timeline.event_type, ",
            complaint_columns!(),
            " FROM timeline JOIN complaints USING (complaint_id) \
             WHERE timeline.sequence > $1 AND timeline.sequence <= $2 \
             ORDER BY timeline.sequence LIMIT $3"
        ))
        .bind(super::to_db_seq(after))
        .bind(super::to_db_seq(through))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(super::ComplaintChange {
                    sequence: from_db_seq(row.try_get("sequence")?),
                    event_type: row.try_get::<String, _>("event_type")?.into(),
                    complaint: complaint_row(row)?,
                })
            })
            .collect()
    }
}

/// The timeline entries whose detail is a decision.
const DECISION_EVENTS: [&str; 2] = ["complaint_routed", "complaint_rerouted"];

/// The decision in the detail of a [`DECISION_EVENTS`] timeline entry.
fn decision_in(detail: &str) -> Result<Decision, StoreError> {
    match serde_json::from_str(detail).map_err(|e| StoreError::corrupt("timeline detail", e))? {
        ComplaintEvent::Routed(d) | ComplaintEvent::Rerouted { decision: d, .. } => Ok(*d),
        other => Err(StoreError::corrupt(
            "timeline detail",
            format!(
                "a {} event where a decision was expected",
                other.type_name()
            ),
        )),
    }
}

/// The page size asked for, defaulted and capped.
pub(crate) fn page_size(asked: u32) -> u32 {
    match asked {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

/// Reads the [`complaint_columns!`] of a row.
fn complaint_row(row: &PgRow) -> Result<ComplaintRow, StoreError> {
    let ts = |col: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(col)?
            .map(Timestamp::from_millis))
    };
    Ok(ComplaintRow {
        complaint_id: ComplaintId::from_uuid(row.try_get("complaint_id")?),
        source_system: row.try_get("source_system")?,
        external_ticket_id: row.try_get("external_ticket_id")?,
        customer_id: row.try_get("customer_id")?,
        segment: row.try_get("segment")?,
        channel: parse_name("channel", &row.try_get::<String, _>("channel")?)?,
        category: parse_name("category", &row.try_get::<String, _>("category")?)?,
        status: parse_name("status", &row.try_get::<String, _>("status")?)?,
        route: opt_name(row, "route")?,
        fulfilment: opt_name(row, "fulfilment")?,
        fulfilment_step: opt_name(row, "fulfilment_step")?,
        priority: opt_name(row, "priority")?,
        assignee: row.try_get("assignee")?,
        satisfaction: row
            .try_get::<Option<i32>, _>("satisfaction")?
            .and_then(|s| u32::try_from(s).ok()),
        received_at: Timestamp::from_millis(row.try_get("received_at")?),
        routed_at: ts("routed_at")?,
        resolved_at: ts("resolved_at")?,
        ceo_engaged_at: ts("ceo_engaged_at")?,
        last_sequence: from_db_seq(row.try_get("last_sequence")?),
    })
}

/// An optional enum column written by `name_of`.
fn opt_name<T: serde::de::DeserializeOwned>(
    row: &PgRow,
    col: &'static str,
) -> Result<Option<T>, StoreError> {
    let raw: Option<String> = row.try_get(col)?;
    raw.map(|r| parse_name(col, &r)).transpose()
}

/// A complaint's timeline, oldest first.
async fn timeline_of(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
) -> Result<Vec<TimelineRow>, StoreError> {
    Ok(sqlx::query_as::<_, (i64, Uuid, String, i64, String)>(
        "SELECT sequence, event_id, event_type, occurred_at, detail \
         FROM timeline WHERE complaint_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|(seq, event_id, event_type, at, detail_json)| TimelineRow {
        sequence: from_db_seq(seq),
        event_id,
        event_type,
        occurred_at: Timestamp::from_millis(at),
        detail_json,
    })
    .collect())
}
