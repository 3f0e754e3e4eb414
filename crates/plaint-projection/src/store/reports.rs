//! Figures over all complaints: queue statistics, CEO budget use, goodwill.

use std::collections::BTreeMap;

use plaint_domain::goodwill::GoodwillTally;
use plaint_domain::lifecycle::Status;
use plaint_domain::time::DAY_MS;
use plaint_domain::{ComplaintId, Priority, Route, Timestamp};
use uuid::Uuid;

use super::{Store, StoreError, checkpoint_in, parse_name};

/// Complaints per (route, status, priority).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGroup {
    /// Route in force.
    pub route: Option<Route>,
    /// Where the complaints counted here stand in their life.
    pub status: Status,
    /// Priority of the decision in force.
    pub priority: Option<Priority>,
    /// How many.
    pub count: u64,
}

/// The queues at a glance.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Counts per group.
    pub groups: Vec<QueueGroup>,
    /// Mean time from received to routed, ms (0 when none routed).
    pub mean_time_to_route_ms: f64,
    /// Mean time from received to resolved, ms (0 when none resolved).
    pub mean_time_to_resolve_ms: f64,
    /// The checkpoint in the same snapshot.
    pub projected_sequence: u64,
}

/// CEO engagements reserved in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CeoBudgetUse {
    /// How many.
    pub used: u32,
    /// How many per segment.
    pub by_segment: BTreeMap<String, u32>,
    /// The complaints, in reservation order.
    pub complaint_ids: Vec<ComplaintId>,
}

/// How goodwill figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodwillGroup {
    /// By route in force.
    Route,
    /// By channel.
    Channel,
    /// By UTC day of resolution.
    Day,
}

impl Store {
    /// Complaint counts per route, status and priority, and the mean times to route and resolve.
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let mut tx = self.snapshot().await?;
        let groups = sqlx::query_as::<_, (Option<String>, String, Option<String>, i64)>(
            "SELECT route, status, priority, count(*) FROM complaints \
             GROUP BY route, status, priority ORDER BY route, status, priority",
        )
        .fetch_all(&mut *tx)
        .await?;
        let (to_route, to_resolve): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT avg(routed_at - received_at)::float8, avg(resolved_at - received_at)::float8 \
             FROM complaints",
        )
        .fetch_one(&mut *tx)
        .await?;
        let projected_sequence = checkpoint_in(&mut tx).await?;
        tx.commit().await?;
        let groups = groups
            .into_iter()
            .map(|(route, status, priority, count)| {
                Ok(QueueGroup {
                    route: route.map(|r| parse_name("route", &r)).transpose()?,
                    status: parse_name("status", &status)?,
                    priority: priority.map(|p| parse_name("priority", &p)).transpose()?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(QueueStats {
            groups,
            mean_time_to_route_ms: to_route.unwrap_or(0.0),
            mean_time_to_resolve_ms: to_resolve.unwrap_or(0.0),
            projected_sequence,
        })
    }

    /// CEO engagements reserved in windows starting in `[window_start, window_end)`.
    pub async fn ceo_budget(
        &self,
        window_start: Timestamp,
        window_end: Timestamp,
    ) -> Result<CeoBudgetUse, StoreError> {
        let rows = sqlx::query_as::<_, (Uuid, String)>(
            "SELECT complaint_id, segment FROM ceo_slots \
             WHERE window_start >= $1 AND window_start < $2 ORDER BY sequence",
        )
        .bind(window_start.as_millis())
        .bind(window_end.as_millis())
        .fetch_all(&self.pool)
        .await?;
        let mut out = CeoBudgetUse::default();
        for (id, segment) in rows {
            out.used += 1;
            *out.by_segment.entry(segment).or_default() += 1;
            out.complaint_ids.push(ComplaintId::from_uuid(id));
        }
        Ok(out)
    }

    /// Goodwill tallies of complaints resolved in `[from, to]` (either end
    /// open when `None`), per group, sorted by key.
    pub async fn goodwill(
        &self,
        group: GoodwillGroup,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<(String, GoodwillTally)>, StoreError> {
        let rows = sqlx::query_as::<_, (String, i64, i64, i64)>(
            "SELECT CASE $1 \
                 WHEN 'route' THEN coalesce(route, 'UNROUTED') \
                 WHEN 'channel' THEN channel \
                 ELSE floor(resolved_at / 86400000.0)::bigint::text END AS key, \
               count(*), coalesce(sum(satisfaction), 0)::bigint, \
               count(*) FILTER (WHERE satisfaction >= 9) \
             FROM complaints \
             WHERE status = 'RESOLVED' AND satisfaction IS NOT NULL \
               AND resolved_at >= $2 AND resolved_at <= $3 \
             GROUP BY 1",
        )
        .bind(match group {
            GoodwillGroup::Route => "route",
            GoodwillGroup::Channel => "channel",
            GoodwillGroup::Day => "day",
        })
        .bind(from.map_or(i64::MIN, Timestamp::as_millis))
        .bind(to.map_or(i64::MAX, Timestamp::as_millis))
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for (key, resolved, sum, recovered) in rows {
            let key = if group == GoodwillGroup::Day {
                let day: i64 = key
                    .parse()
                    .map_err(|e| StoreError::corrupt("goodwill day", e))?;
                Timestamp::from_millis(day.saturating_mul(DAY_MS)).day()
            } else {
                key
            };
            let tally = GoodwillTally {
                resolved: u64::try_from(resolved).unwrap_or(0),
                satisfaction_sum: u64::try_from(sum).unwrap_or(0),
                recovered: u64::try_from(recovered).unwrap_or(0),
            };
            out.entry(key)
                .or_insert_with(GoodwillTally::default)
                .merge(tally);
        }
        Ok(out.into_iter().collect())
    }
}
