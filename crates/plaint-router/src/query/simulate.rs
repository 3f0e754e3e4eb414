//! `SimulatePolicy`: past complaints streamed from the projections through
//! the domain's [`Simulation`].

use futures::StreamExt;
use plaint_domain::routing::simulate::Simulation;
use plaint_domain::{RoutingPolicy, Timestamp};
use plaint_proto::ToWire;
use plaint_proto::convert::decision_to_wire;
use plaint_proto::router as pb;

use super::{QueryError, wire};

/// Most complaints one simulation replays: a longer span is refused, never
/// cut. Memory does not grow with it (complaints stream through), time does.
pub(crate) const MAX_SIMULATED: u64 = 2_000_000;
/// How often a long simulation logs its progress, in complaints.
const PROGRESS_EVERY: u64 = 100_000;

impl super::QueryService {
    /// Replays every complaint received in the span under the candidate,
    /// its counters started from the CEO engagements before the span;
    /// appends nothing.
    pub(super) async fn simulate(
        &self,
        req: pb::SimulatePolicyRequest,
    ) -> Result<pb::SimulatePolicyResponse, QueryError> {
        let policy = RoutingPolicy::from_json(&req.policy_json)?;
        let from = wire::bound(req.from_ms).unwrap_or(Timestamp::from_millis(i64::MIN));
        let to = wire::bound(req.to_ms).unwrap_or(Timestamp::from_millis(i64::MAX));
        let in_span = self.store.count_received(from, to).await?;
        if in_span > self.max_simulated {
            return Err(QueryError::SpanTooLarge {
                complaints: in_span,
                limit: self.max_simulated,
            });
        }
        let mut sim = Simulation::new(policy, req.max_changes).as_of(plaint_routing::now());
        let mut before = self
            .store
            .ceo_engagements_between(sim.history_from(from), from);
        while let Some(engagement) = before.next().await {
            let (at, segment, customer_ref) = engagement?;
            sim.engaged_before(at, &segment, &customer_ref);
        }
        drop(before);
        let started = std::time::Instant::now();
        let mut rows = self
            .store
            .complaints_in_range(from, to, in_span.saturating_add(1));
        while let Some(row) = rows.next().await {
            let (complaint, actual) = row?;
            sim.add(complaint, actual);
            if sim.complaints.is_multiple_of(PROGRESS_EVERY) {
                tracing::info!(
                    replayed = sim.complaints,
                    of = in_span,
                    "simulating a policy"
                );
            }
        }
        tracing::info!(
            replayed = sim.complaints,
            engagements_before = sim.engagements_before,
            seconds = started.elapsed().as_secs_f64(),
            "policy simulated"
        );
        Ok(pb::SimulatePolicyResponse {
            complaints: sim.complaints,
            distribution: sim
                .distribution
                .iter()
                .map(|(route, (actual, simulated))| pb::RouteCount {
                    route: route.to_wire(),
                    actual: *actual,
                    simulated: *simulated,
                })
                .collect(),
            changes: sim
                .changes
                .iter()
                .map(|c| pb::SimulatedChange {
                    complaint_id: c.complaint.id.to_string(),
                    customer_id: c.complaint.facts.customer.id.to_string(),
                    actual: Some(decision_to_wire(&c.actual)),
                    simulated: Some(decision_to_wire(&c.simulated)),
                })
                .collect(),
            changed_total: sim.changed_total,
            peak_window_ceo: sim.peak_window_ceo,
            budget: sim.budget(),
            engagements_before: sim.engagements_before,
            missed_acknowledge: Some(missed(sim.missed_acknowledge)),
            missed_resolve: Some(missed(sim.missed_resolve)),
            missed_any: Some(missed(sim.missed_any)),
        })
    }
}

fn missed((actual, simulated): (u64, u64)) -> pb::SlaMissed {
    pb::SlaMissed { actual, simulated }
}
