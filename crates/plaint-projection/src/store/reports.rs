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
        // Kept by the projector (see `summaries`), not counted here.
        let groups = sqlx::query_as::<_, (Option<String>, String, Option<String>, i64)>(
            "SELECT NULLIF(route, ''), status, NULLIF(priority, ''), complaints \
             FROM queue_counts WHERE complaints > 0 \
             ORDER BY NULLIF(route, ''), status, NULLIF(priority, '')",
        )
        .fetch_all(&mut *tx)
        .await?;
        let durations = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT kind, total_ms, complaints FROM complaint_durations",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mean = |kind: &str| {
            durations
                .iter()
                .find(|(k, _, n)| k == kind && *n > 0)
                .map(|(_, total, n)| *total as f64 / *n as f64)
        };
        let (to_route, to_resolve) = (mean("route"), mean("resolve"));
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
        let lo = from.map_or(i64::MIN, Timestamp::as_millis);
        let hi = to.map_or(i64::MAX, Timestamp::as_millis);
        let days = WholeDays::within(lo, hi);
        // Whole days come from the summary the projector keeps; the parts of
        // a day at either end of the period from those days' complaints.
        let rows = sqlx::query_as::<_, (String, i64, i64, i64)>(
            "WITH parts AS ( \
               SELECT day, route, channel, resolved, satisfaction_sum, recovered \
               FROM goodwill_days WHERE day >= $4 AND day < $5 \
               UNION ALL \
               SELECT floor(resolved_at / 86400000.0)::bigint, coalesce(route, 'UNROUTED'), \
                      channel, 1, satisfaction, (satisfaction >= 9)::int \
               FROM complaints \
               WHERE status = 'RESOLVED' AND satisfaction IS NOT NULL \
                 AND ((resolved_at >= $2 AND resolved_at < $6) \
                   OR (resolved_at >= $7 AND resolved_at <= $3)) \
             ) \
             SELECT CASE $1 WHEN 'route' THEN route WHEN 'channel' THEN channel \
                      ELSE day::text END AS key, \
                    sum(resolved)::bigint, sum(satisfaction_sum)::bigint, sum(recovered)::bigint \
             FROM parts GROUP BY 1",
        )
        .bind(match group {
            GoodwillGroup::Route => "route",
            GoodwillGroup::Channel => "channel",
            GoodwillGroup::Day => "day",
        })
        .bind(lo)
        .bind(hi)
        .bind(days.first)
        .bind(days.end)
        .bind(days.head_end)
        .bind(days.tail_start)
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

/// One row of service-level attainment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaAttainment {
    /// The route the complaints were decided to.
    pub route: String,
    /// The priority they were decided at.
    pub priority: String,
    /// `ACKNOWLEDGE` or `RESOLVE`.
    pub target: String,
    /// Complaints that met it.
    pub met: u64,
    /// Complaints that missed it.
    pub missed: u64,
}

impl Store {
    /// Service-level attainment of the complaints received on the UTC days
    /// from `from` to `to` (each end's whole day; unbounded where `None`),
    /// per route, priority and target, sorted.
    pub async fn sla_attainment(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<SlaAttainment>, StoreError> {
        let rows = sqlx::query_as::<_, (String, String, String, i64, i64)>(
            "SELECT route, priority, target, sum(met)::bigint, sum(missed)::bigint \
             FROM sla_attainment WHERE day >= $1 AND day <= $2 \
             GROUP BY route, priority, target \
             HAVING sum(met) + sum(missed) > 0 \
             ORDER BY route, priority, target",
        )
        .bind(from.map_or(i64::MIN, Timestamp::epoch_day))
        .bind(to.map_or(i64::MAX, Timestamp::epoch_day))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(route, priority, target, met, missed)| SlaAttainment {
                route,
                priority,
                target,
                met: u64::try_from(met).unwrap_or(0),
                missed: u64::try_from(missed).unwrap_or(0),
            })
            .collect())
    }
}

/// The whole UTC days within a period, and the parts of days around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WholeDays {
    /// The first whole day (days since the epoch).
    first: i64,
    /// The day after the last whole one; `first == end`: none.
    end: i64,
    /// Before the whole days: `[lo, head_end)`.
    head_end: i64,
    /// After them: `[tail_start, hi]`.
    tail_start: i64,
}

impl WholeDays {
    /// Of the period `[lo, hi]` (milliseconds, both ends included).
    fn within(lo: i64, hi: i64) -> Self {
        let day = i128::from(DAY_MS);
        let (lo_w, hi_w) = (i128::from(lo), i128::from(hi));
        // The first midnight at or after `lo`; the last midnight at or before `hi + 1`.
        let first = (lo_w + day - 1).div_euclid(day);
        let end = (hi_w + 1).div_euclid(day);
        let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        if first >= end {
            // No whole day: the whole period is read from the complaints.
            return Self {
                first: 0,
                end: 0,
                head_end: clamp(hi_w + 1),
                tail_start: i64::MAX,
            };
        }
        Self {
            first: clamp(first),
            end: clamp(end),
            head_end: clamp(first * day),
            tail_start: clamp(end * day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_of_whole_days_reads_no_complaint() {
        let d = WholeDays::within(2 * DAY_MS, 5 * DAY_MS - 1);
        assert_eq!((d.first, d.end), (2, 5));
        assert_eq!((d.head_end, d.tail_start), (2 * DAY_MS, 5 * DAY_MS));
    }

    #[test]
    fn parts_of_days_at_either_end_are_read_from_complaints() {
        let d = WholeDays::within(2 * DAY_MS + 10, 5 * DAY_MS + 10);
        assert_eq!((d.first, d.end), (3, 5));
        assert_eq!(d.head_end, 3 * DAY_MS);
        assert_eq!(d.tail_start, 5 * DAY_MS);
    }

    #[test]
    fn a_period_inside_one_day_is_read_from_complaints_alone() {
        let d = WholeDays::within(2 * DAY_MS + 10, 2 * DAY_MS + 20);
        assert_eq!(d.first, d.end);
        assert_eq!(d.head_end, 2 * DAY_MS + 21);
        assert_eq!(d.tail_start, i64::MAX);
    }

    #[test]
    fn all_time_is_every_day_and_no_part() {
        let d = WholeDays::within(i64::MIN, i64::MAX);
        assert!(d.first < -1_000_000 && d.end > 1_000_000);
        assert!(d.head_end <= i64::MIN / 2 && d.tail_start >= i64::MAX / 2);
    }
}
