//! `SimulatePolicy`: past complaints streamed from the projections through
//! the domain's [`Simulation`].

use futures::StreamExt;
use plaint_domain::routing::simulate::Simulation;
use plaint_domain::{RoutingPolicy, Timestamp};
use plaint_proto::ToWire;
use plaint_proto::convert::decision_to_wire;
use plaint_proto::router as pb;

use super::{QueryError, wire};

/// Most complaints one simulation replays.
pub(crate) const MAX_SIMULATED: u32 = 100_000;

impl super::QueryService {
    /// Replays the range under the candidate; appends nothing.
    pub(super) async fn simulate(
        &self,
        req: pb::SimulatePolicyRequest,
    ) -> Result<pb::SimulatePolicyResponse, QueryError> {
        let policy = RoutingPolicy::from_json(&req.policy_json)?;
        let from = wire::bound(req.from_ms).unwrap_or(Timestamp::from_millis(i64::MIN));
        let to = wire::bound(req.to_ms).unwrap_or(Timestamp::from_millis(i64::MAX));
        let mut sim = Simulation::new(policy, req.max_changes);
        let mut rows = self.store.complaints_in_range(from, to, MAX_SIMULATED);
        while let Some(row) = rows.next().await {
            let (complaint, actual) = row?;
            sim.add(complaint, actual);
        }
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
        })
    }
}
