//! Figures over all complaints, kept as the projector goes: each batch
//! writes what it changed in them, in its own transaction, so reading them
//! costs a few rows however many complaints there are.

use std::collections::HashMap;

use plaint_domain::facts::Channel;
use plaint_domain::lifecycle::{Complaint, Status};
use plaint_domain::sla::SlaTarget;
use plaint_domain::{Priority, Route};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::apply::Folded;
use super::name_of;

/// The goodwill key of a complaint without a route.
pub(super) const UNROUTED: &str = "UNROUTED";
/// A satisfaction score from which a complaint counts as recovered.
const RECOVERED_FROM: u32 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct QueueKey {
    route: Option<Route>,
    status: Status,
    priority: Option<Priority>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GoodwillKey {
    day: i64,
    route: Option<Route>,
    channel: Channel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SlaKey {
    /// The UTC day the complaint was received (days since the epoch).
    day: i64,
    route: Route,
    priority: Priority,
    target: SlaTarget,
}

/// What one complaint adds to the figures.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    queue: QueueKey,
    to_route_ms: Option<i64>,
    to_resolve_ms: Option<i64>,
    goodwill: Option<(GoodwillKey, u32)>,
    /// Per target: whether it was met, once known.
    sla: [Option<(SlaKey, bool)>; 2],
}

/// Whether the complaint met each target, once known: missed when a breach
/// of it was recorded, met when what meets it happened without one.
fn sla_outcomes(c: &Complaint) -> [Option<(SlaKey, bool)>; 2] {
    let Some(d) = c.decision.as_ref().filter(|d| d.sla.is_some()) else {
        return [None, None];
    };
    let key = |target| SlaKey {
        day: c.received_at.epoch_day(),
        route: d.route,
        priority: d.priority,
        target,
    };
    let outcome = |missed: bool, met: bool| {
        if missed {
            Some(false)
        } else if met {
            Some(true)
        } else {
            None
        }
    };
    let acknowledged = c.acknowledged_at.is_some() || c.closed_at.is_some();
    [
        outcome(c.missed.acknowledge, acknowledged).map(|m| (key(SlaTarget::Acknowledge), m)),
        outcome(c.missed.resolve, c.closed_at.is_some()).map(|m| (key(SlaTarget::Resolve), m)),
    ]
}

impl Share {
    pub(super) fn of(c: &Complaint) -> Self {
        let received = c.received_at.as_millis();
        let goodwill = match (c.status, c.resolved_at, c.satisfaction) {
            (Status::Resolved, Some(at), Some(score)) => Some((
                GoodwillKey {
                    day: at.epoch_day(),
                    route: c.route(),
                    channel: c.facts.channel,
                },
                score.get(),
            )),
            _ => None,
        };
        Self {
            queue: QueueKey {
                route: c.route(),
                status: c.status,
                priority: c.priority(),
            },
            to_route_ms: c.routed_at.map(|t| t.as_millis().saturating_sub(received)),
            to_resolve_ms: c
                .resolved_at
                .map(|t| t.as_millis().saturating_sub(received)),
            goodwill,
            sla: sla_outcomes(c),
        }
    }
}

/// The shares of the complaints a batch is about to change, as they stand.
pub(super) fn shares_before(folded: &HashMap<Uuid, Folded>) -> HashMap<Uuid, Share> {
    folded
        .iter()
        .filter_map(|(id, f)| f.state.as_ref().map(|s| (*id, Share::of(s))))
        .collect()
}

/// What a batch changed in the figures.
#[derive(Debug, Default)]
pub(super) struct Deltas {
    queue: HashMap<QueueKey, i64>,
    /// (total ms, complaints) to route and to resolve.
    to_route: (i64, i64),
    to_resolve: (i64, i64),
    /// (resolved, satisfaction sum, recovered).
    goodwill: HashMap<GoodwillKey, (i64, i64, i64)>,
    /// (met, missed).
    sla: HashMap<SlaKey, (i64, i64)>,
}

impl Deltas {
    /// The change from `before` to the states the batch left in `folded`.
    pub(super) fn of_batch(before: &HashMap<Uuid, Share>, folded: &HashMap<Uuid, Folded>) -> Self {
        let mut d = Self::default();
        for (id, f) in folded.iter().filter(|(_, f)| f.dirty) {
            if let Some(old) = before.get(id) {
                d.add(old, -1);
            }
            if let Some(state) = &f.state {
                d.add(&Share::of(state), 1);
            }
        }
        d
    }

    fn add(&mut self, s: &Share, sign: i64) {
        *self.queue.entry(s.queue).or_default() += sign;
        if let Some(ms) = s.to_route_ms {
            self.to_route.0 += sign * ms;
            self.to_route.1 += sign;
        }
        if let Some(ms) = s.to_resolve_ms {
            self.to_resolve.0 += sign * ms;
            self.to_resolve.1 += sign;
        }
        if let Some((key, score)) = s.goodwill {
            let g = self.goodwill.entry(key).or_default();
            g.0 += sign;
            g.1 += sign * i64::from(score);
            g.2 += sign * i64::from(score >= RECOVERED_FROM);
        }
        for (key, met) in s.sla.iter().flatten() {
            let a = self.sla.entry(*key).or_default();
            if *met {
                a.0 += sign;
            } else {
                a.1 += sign;
            }
        }
    }

    /// Adds the changes to the summary tables.
    pub(super) async fn write(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), StoreError> {
        let queue: Vec<_> = self.queue.iter().filter(|(_, n)| **n != 0).collect();
        if !queue.is_empty() {
            let name = |v: Option<String>| v.unwrap_or_default();
            sqlx::query(
                "INSERT INTO queue_counts (route, status, priority, complaints) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (route, status, priority) \
                 DO UPDATE SET complaints = queue_counts.complaints + EXCLUDED.complaints",
            )
            .bind(
                queue
                    .iter()
                    .map(|(k, _)| name(k.route.as_ref().map(name_of)))
                    .collect::<Vec<_>>(),
            )
            .bind(
                queue
                    .iter()
                    .map(|(k, _)| name_of(&k.status))
                    .collect::<Vec<_>>(),
            )
            .bind(
                queue
                    .iter()
                    .map(|(k, _)| name(k.priority.as_ref().map(name_of)))
                    .collect::<Vec<_>>(),
            )
            .bind(queue.iter().map(|(_, n)| **n).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
            // An emptied group goes, so the table holds the same rows
            // however the log was cut into batches (a rebuild cuts it
            // differently). It has a row per group in use: a few dozen.
            if queue.iter().any(|(_, n)| **n < 0) {
                sqlx::query("DELETE FROM queue_counts WHERE complaints = 0")
                    .execute(&mut **tx)
                    .await?;
            }
        }
        for (kind, (total, n)) in [("route", self.to_route), ("resolve", self.to_resolve)] {
            if n == 0 && total == 0 {
                continue;
            }
            sqlx::query(
                "INSERT INTO complaint_durations (kind, total_ms, complaints) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind) DO UPDATE SET \
                   total_ms = complaint_durations.total_ms + EXCLUDED.total_ms, \
                   complaints = complaint_durations.complaints + EXCLUDED.complaints",
            )
            .bind(kind)
            .bind(total)
            .bind(n)
            .execute(&mut **tx)
            .await?;
            if n < 0 {
                sqlx::query(
                    "DELETE FROM complaint_durations \
                     WHERE kind = $1 AND complaints = 0 AND total_ms = 0",
                )
                .bind(kind)
                .execute(&mut **tx)
                .await?;
            }
        }
        let goodwill: Vec<_> = self
            .goodwill
            .iter()
            .filter(|(_, v)| **v != (0, 0, 0))
            .collect();
        if !goodwill.is_empty() {
            sqlx::query(
                "INSERT INTO goodwill_days \
                   (day, route, channel, resolved, satisfaction_sum, recovered) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], \
                                      $5::bigint[], $6::bigint[]) \
                 ON CONFLICT (day, route, channel) DO UPDATE SET \
                   resolved = goodwill_days.resolved + EXCLUDED.resolved, \
                   satisfaction_sum = goodwill_days.satisfaction_sum + EXCLUDED.satisfaction_sum, \
                   recovered = goodwill_days.recovered + EXCLUDED.recovered",
            )
            .bind(goodwill.iter().map(|(k, _)| k.day).collect::<Vec<_>>())
            .bind(
                goodwill
                    .iter()
                    .map(|(k, _)| {
                        k.route
                            .as_ref()
                            .map_or_else(|| UNROUTED.to_owned(), name_of)
                    })
                    .collect::<Vec<_>>(),
            )
            .bind(
                goodwill
                    .iter()
                    .map(|(k, _)| name_of(&k.channel))
                    .collect::<Vec<_>>(),
            )
            .bind(goodwill.iter().map(|(_, v)| v.0).collect::<Vec<_>>())
            .bind(goodwill.iter().map(|(_, v)| v.1).collect::<Vec<_>>())
            .bind(goodwill.iter().map(|(_, v)| v.2).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
            let emptied: Vec<i64> = goodwill
                .iter()
                .filter(|(_, v)| v.0 < 0)
                .map(|(k, _)| k.day)
                .collect();
            if !emptied.is_empty() {
                sqlx::query("DELETE FROM goodwill_days WHERE day = ANY($1) AND resolved = 0")
                    .bind(emptied)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        self.write_sla(tx).await
    }

    async fn write_sla(&self, tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        let sla: Vec<_> = self.sla.iter().filter(|(_, v)| **v != (0, 0)).collect();
        if sla.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO sla_attainment (route, priority, target, met, missed, day) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], \
                                  $6::bigint[]) \
             ON CONFLICT (day, route, priority, target) DO UPDATE SET \
               met = sla_attainment.met + EXCLUDED.met, \
               missed = sla_attainment.missed + EXCLUDED.missed",
        )
        .bind(
            sla.iter()
                .map(|(k, _)| name_of(&k.route))
                .collect::<Vec<_>>(),
        )
        .bind(
            sla.iter()
                .map(|(k, _)| name_of(&k.priority))
                .collect::<Vec<_>>(),
        )
        .bind(
            sla.iter()
                .map(|(k, _)| name_of(&k.target))
                .collect::<Vec<_>>(),
        )
        .bind(sla.iter().map(|(_, v)| v.0).collect::<Vec<_>>())
        .bind(sla.iter().map(|(_, v)| v.1).collect::<Vec<_>>())
        .bind(sla.iter().map(|(k, _)| k.day).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        if sla.iter().any(|(_, v)| v.0 < 0 || v.1 < 0) {
            sqlx::query("DELETE FROM sla_attainment WHERE met = 0 AND missed = 0")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
