//! Service-level timers through crashes: complaints are routed under a
//! policy whose acknowledgement target is a few seconds; half are
//! acknowledged in time. Before the others fall due, the router and then
//! nats-server are killed with SIGKILL and stay down past the due time. Once
//! both are back, every complaint left unacknowledged has exactly one
//! `sla_breached` event and none acknowledged in time has any: the timers
//! outlived both processes and fired once.

use std::time::{Duration, Instant};

use plaint_domain::RoutingPolicy;
use plaint_domain::event::{ComplaintEvent, EventPayload};
use plaint_proto::intake as ipb;
use plaint_proto::router as rpb;

use crate::checker::figures;
use crate::harness::{Options, System, complaint, eventually, ticket_id};

/// Complaints submitted; the even ones are acknowledged in time.
const COMPLAINTS: u64 = 24;
/// The acknowledgement target of the test's policy.
const ACKNOWLEDGE_WITHIN: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_due_while_router_and_nats_are_down_fire_once_after() {
    let mut sys = System::start(Options::default()).await;
    let started = Instant::now();
    let mut policy = RoutingPolicy::default();
    let secs = u32::try_from(ACKNOWLEDGE_WITHIN.as_secs()).unwrap_or(u32::MAX);
    for targets in [
        &mut policy.sla.ceo,
        &mut policy.sla.frontline.p1,
        &mut policy.sla.frontline.p2,
        &mut policy.sla.frontline.p3,
        &mut policy.sla.frontline.p4,
        &mut policy.sla.reverse_logistics,
    ] {
        targets.acknowledge_secs = secs;
    }
    sys.admin_client()
        .publish_policy(rpb::PublishPolicyRequest {
            policy_json: policy.to_json(),
            ..Default::default()
        })
        .await
        .expect("published");

    let mut client = sys.intake_client();
    let ids: Vec<_> = (0..COMPLAINTS)
        .map(|n| ticket_id("sla", &format!("T-{n}")))
        .collect();
    for n in 0..COMPLAINTS {
        client
            .submit_complaint(complaint("sla", &format!("T-{n}"), n))
            .await
            .expect("submitted");
    }
    let routed_at = Instant::now();
    for id in &ids {
        eventually(
            "the complaint routed",
            Duration::from_secs(30),
            async || {
                let events = sys.log.read_subject(&sys.names.complaint(id)).await.ok()?;
                (events.len() >= 2).then_some(())
            },
        )
        .await;
    }
    for id in ids.iter().step_by(2) {
        client
            .acknowledge(ipb::AcknowledgeRequest {
                header: Some(ipb::CommandHeader {
                    complaint_id: id.to_string(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                }),
                by: "agent".to_owned(),
            })
            .await
            .expect("acknowledged in time");
    }
    let acknowledged_in = routed_at.elapsed();
    assert!(
        acknowledged_in < ACKNOWLEDGE_WITHIN,
        "the acknowledgements came after the target ({acknowledged_in:?}): the test proves nothing"
    );

    // Every clock has its timer in NATS (two per complaint) before the
    // kills: what fires afterwards is what the server kept.
    let js = sys.js();
    eventually("every timer armed", Duration::from_secs(30), async || {
        let mut stream = js.get_stream(sys.names.timer_stream()).await.ok()?;
        let armed = stream.info().await.ok()?.state.messages;
        (armed >= 2 * COMPLAINTS).then_some(())
    })
    .await;

    // Both down before anything falls due, and until well past it.
    sys.router.kill();
    sys.nats.kill();
    let killed_after = routed_at.elapsed();
    assert!(
        killed_after < ACKNOWLEDGE_WITHIN,
        "killed after the due time ({killed_after:?}): the test proves nothing"
    );
    tokio::time::sleep(ACKNOWLEDGE_WITHIN + Duration::from_secs(2) - killed_after).await;
    sys.nats.restart();
    let back = Instant::now();
    sys.router.start().await;

    let breaches_of = async |id| -> Vec<i64> {
        sys.log
            .read_subject(&sys.names.complaint(id))
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match &e.envelope.payload {
                EventPayload::Complaint(ComplaintEvent::SlaBreached { late_by_ms, .. }) => {
                    Some(*late_by_ms)
                }
                _ => None,
            })
            .collect()
    };
    let mut latest = Vec::new();
    for id in ids.iter().skip(1).step_by(2) {
        let late = eventually(
            "the breach after the restarts",
            Duration::from_secs(60),
            async || {
                let late = breaches_of(id).await;
                (!late.is_empty()).then_some(late)
            },
        )
        .await;
        latest.extend(late);
    }
    let recorded_in = back.elapsed();
    // Time for a second firing or a redelivery to show.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (n, id) in ids.iter().enumerate() {
        let breaches = breaches_of(id).await.len();
        let expected = usize::from(n % 2 == 1);
        assert_eq!(
            breaches,
            expected,
            "complaint {n} ({}acknowledged in time) has {breaches} breaches",
            if expected == 0 { "" } else { "not " }
        );
    }
    sys.router.assert_no_panic();
    let max_late = latest.iter().copied().max().unwrap_or(0);
    figures(
        "sla_timers",
        &[
            format!(
                "{COMPLAINTS} complaints, target {} s, {} acknowledged in time; router and \
                 nats-server killed {:.1} s after routing, back {:.1} s later",
                ACKNOWLEDGE_WITHIN.as_secs(),
                COMPLAINTS / 2,
                killed_after.as_secs_f64(),
                (ACKNOWLEDGE_WITHIN + Duration::from_secs(2) - killed_after).as_secs_f64()
            ),
            format!(
                "every breach recorded {:.2} s after nats-server was back; latest {:.2} s past \
                 its due time; no second breach, none for a complaint acknowledged in time",
                recorded_in.as_secs_f64(),
                max_late as f64 / 1000.0
            ),
            format!("{:.1} s in all", started.elapsed().as_secs_f64()),
        ],
    );
}
