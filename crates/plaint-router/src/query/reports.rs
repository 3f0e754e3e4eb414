//! `GetQueueStats`, `GetCeoBudget` and `GetGoodwill`.

use plaint_domain::RoutingPolicy;
use plaint_domain::goodwill::GoodwillTally;
use plaint_proto::ToWire;
use plaint_proto::convert::not_one_of;
use plaint_proto::router as pb;

use super::{QueryError, QueryService, now, wire};
use plaint_projection::store::GoodwillGroup;

/// The key of the goodwill row over every group.
pub(crate) const GOODWILL_TOTAL_KEY: &str = "TOTAL";

impl QueryService {
    pub(super) async fn queue_stats(
        &self,
        req: pb::GetQueueStatsRequest,
    ) -> Result<pb::GetQueueStatsResponse, QueryError> {
        self.consistent(req.consistency.as_ref()).await?;
        let stats = self.store.queue_stats().await?;
        Ok(pb::GetQueueStatsResponse {
            stats: stats
                .groups
                .iter()
                .map(|g| pb::QueueStat {
                    route: g.route.map_or(0, |r| r.to_wire()),
                    status: ToWire::<i32>::to_wire(&g.status),
                    priority: g.priority.map_or(0, |p| p.to_wire()),
                    count: g.count,
                })
                .collect(),
            projected_sequence: stats.projected_sequence,
            mean_time_to_route_ms: stats.mean_time_to_route_ms,
            mean_time_to_resolve_ms: stats.mean_time_to_resolve_ms,
        })
    }

    /// The budget window containing `at_ms` (0 = now) under the policy in
    /// force at that time: a past window keeps the length and budget it had.
    pub(super) async fn ceo_budget(
        &self,
        req: pb::GetCeoBudgetRequest,
    ) -> Result<pb::GetCeoBudgetResponse, QueryError> {
        self.consistent(req.consistency.as_ref()).await?;
        let at = wire::bound(req.at_ms).unwrap_or_else(now);
        let policy = self
            .store
            .policy_at(at)
            .await?
            .map_or_else(RoutingPolicy::default, |p| p.policy);
        let window_ms = policy.window_ms();
        let start = at.window_start(window_ms);
        let end = start.plus_millis(window_ms);
        let used = self.store.ceo_budget(start, end).await?;
        Ok(pb::GetCeoBudgetResponse {
            window_start_ms: start.as_millis(),
            window_end_ms: end.as_millis(),
            budget: policy.budget.per_window,
            used: used.used,
            used_by_segment: used.by_segment.into_iter().collect(),
            complaint_ids: used.complaint_ids.iter().map(ToString::to_string).collect(),
        })
    }

    /// Goodwill per group (route when unspecified) and in total.
    pub(super) async fn goodwill(
        &self,
        req: pb::GetGoodwillRequest,
    ) -> Result<pb::GetGoodwillResponse, QueryError> {
        let group = match pb::GoodwillGrouping::try_from(req.group_by) {
            Ok(pb::GoodwillGrouping::Unspecified | pb::GoodwillGrouping::Route) => {
                GoodwillGroup::Route
            }
            Ok(pb::GoodwillGrouping::Channel) => GoodwillGroup::Channel,
            Ok(pb::GoodwillGrouping::Day) => GoodwillGroup::Day,
            Err(_) => {
                let accepted = [
                    pb::GoodwillGrouping::Route,
                    pb::GoodwillGrouping::Channel,
                    pb::GoodwillGrouping::Day,
                ]
                .map(|g| format!("{} ({})", g.as_str_name(), g as i32));
                return Err(not_one_of("group_by", accepted).into());
            }
        };
        self.consistent(req.consistency.as_ref()).await?;
        let tallies = self
            .store
            .goodwill(group, wire::bound(req.from_ms), wire::bound(req.to_ms))
            .await?;
        let mut total = GoodwillTally::default();
        let mut rows = Vec::with_capacity(tallies.len());
        for (key, tally) in tallies {
            total.merge(tally);
            rows.push(goodwill_row(key, &tally));
        }
        let sla = self
            .store
            .sla_attainment(wire::bound(req.from_ms), wire::bound(req.to_ms))
            .await?
            .into_iter()
            .map(|a| pb::SlaAttainment {
                met_pct: if a.met + a.missed == 0 {
                    0.0
                } else {
                    100.0 * a.met as f64 / (a.met + a.missed) as f64
                },
                route: a.route,
                priority: a.priority,
                target: a.target,
                met: a.met,
                missed: a.missed,
            })
            .collect();
        Ok(pb::GetGoodwillResponse {
            rows,
            total: Some(goodwill_row(GOODWILL_TOTAL_KEY.to_owned(), &total)),
            sla,
        })
    }
}

fn goodwill_row(key: String, tally: &GoodwillTally) -> pb::GoodwillRow {
    let f = tally.figures();
    pb::GoodwillRow {
        key,
        resolved: f.resolved,
        recovered: f.recovered,
        mean_satisfaction: f.mean_satisfaction,
        recovered_share: f.recovered_share,
    }
}
