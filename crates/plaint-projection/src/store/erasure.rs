//! A customer's erasure, applied to the read models: every personal field
//! of their complaints and timelines is replaced by the erased marker, in
//! the batch's transaction. Routes, lifecycle and figures stay.

use plaint_domain::event::ComplaintEvent;
use plaint_domain::personal::ERASED;
use plaint_domain::values::CustomerRef;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{StoreError, parse_state};

/// Erases the customer's personal fields from `complaints` and `timeline`,
/// as the log stood at the erasure (`sequence`): a complaint received after
/// it, and any event after it, was sealed with the customer's new key and
/// stays readable, even when the same batch wrote it; returns the
/// complaints it touched.
pub(super) async fn erase_customer(
    tx: &mut Transaction<'static, Postgres>,
    customer: &CustomerRef,
    sequence: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT c.complaint_id, c.state FROM complaints c \
         WHERE c.customer_ref = $1 AND EXISTS ( \
             SELECT 1 FROM timeline t WHERE t.complaint_id = c.complaint_id \
             AND t.event_type = 'complaint_received' AND t.sequence < $2)",
    )
    .bind(customer.as_str())
    .bind(sequence)
    .fetch_all(&mut **tx)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for (id, raw) in rows {
        let mut state = parse_state(&raw)?;
        state.erase_personal();
        let state =
            serde_json::to_string(&state).map_err(|e| StoreError::corrupt("complaint state", e))?;
        sqlx::query(
            "UPDATE complaints SET state = $2, customer_id = $3, external_ticket_id = $3, \
                 assignee = CASE WHEN assignee IS NULL THEN NULL ELSE $3 END \
             WHERE complaint_id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(ERASED)
        .execute(&mut **tx)
        .await?;
        ids.push(id);
    }
    let entries: Vec<(i64, String)> = sqlx::query_as(
        "SELECT sequence, detail FROM timeline WHERE complaint_id = ANY($1) AND sequence < $2",
    )
    .bind(&ids)
    .bind(sequence)
    .fetch_all(&mut **tx)
    .await?;
    for (sequence, raw) in entries {
        let mut event: ComplaintEvent =
            serde_json::from_str(&raw).map_err(|e| StoreError::corrupt("timeline entry", e))?;
        let before = event.clone();
        event.erase_personal();
        if event == before {
            continue;
        }
        let detail =
            serde_json::to_string(&event).map_err(|e| StoreError::corrupt("timeline entry", e))?;
        sqlx::query("UPDATE timeline SET detail = $2 WHERE sequence = $1")
            .bind(sequence)
            .bind(detail)
            .execute(&mut **tx)
            .await?;
    }
    Ok(ids)
}
