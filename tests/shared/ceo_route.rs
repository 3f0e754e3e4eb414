//! Opening the CEO route for tests of the budget and the cooldown; shared by
//! the e2e and fault test binaries.

use plaint_client::Authed;
use plaint_domain::RoutingPolicy;
use plaint_proto::events as epb;
use plaint_proto::router::{self as rpb, admin_client::AdminClient};

/// Publishes a policy with `budget` CEO engagements a window and no segment
/// share limit, and sets the climate to good: viral complaints reach the CEO.
pub(crate) async fn open_the_ceo_route(admin: &mut AdminClient<Authed>, budget: u32) {
    let mut policy = RoutingPolicy::default();
    policy.budget.per_window = budget;
    policy.max_segment_share_pct = 100;
    admin
        .publish_policy(rpb::PublishPolicyRequest {
            policy_json: policy.to_json(),
            ..Default::default()
        })
        .await
        .expect("policy published");
    admin
        .set_climate(rpb::SetClimateRequest {
            climate: epb::Climate::Good as i32,
            ..Default::default()
        })
        .await
        .expect("climate set");
}
