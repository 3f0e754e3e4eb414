//! Personal data end to end: sealed before it reaches the log, erasable by
//! deleting the customer's key, exportable, and routing unchanged by either.

use plaint_client::Authed;
use plaint_proto::access::{self as apb, access_client::AccessClient};
use plaint_proto::events as epb;
use plaint_proto::intake as ipb;
use plaint_proto::router::{self as rpb, query_client::QueryClient};
use plaint_runtime::binary::Service as _;
use tonic::Code;

use crate::helpers::{follow_up, header, spawn_intake, submit_request, written_id};
use crate::router::{TestRouter, decided, rebuilt, spawn_router};

/// Everything personal a test submits, to look for where it must not be.
struct Secrets {
    alice: String,
    bob: String,
    texts: Vec<String>,
}

impl Secrets {
    fn of_alice(&self) -> Vec<String> {
        let mut all = vec![self.alice.clone()];
        all.extend(self.texts.iter().filter(|t| t.contains("alice")).cloned());
        all
    }

    fn all(&self) -> Vec<String> {
        let mut all = vec![self.alice.clone(), self.bob.clone()];
        all.extend(self.texts.iter().cloned());
        all
    }
}

fn complaint(
    source: &str,
    ticket: &str,
    customer: &str,
    summary: &str,
    viral: bool,
) -> ipb::SubmitComplaintRequest {
    let mut r = submit_request(source, ticket);
    if let Some(c) = r.customer.as_mut() {
        c.customer_id = customer.to_owned();
    }
    r.summary = summary.to_owned();
    // A service complaint: no item to handle, so it can be resolved at once.
    r.category = epb::Category::Service as i32;
    if viral {
        r.channel = epb::Channel::PublicSocial as i32;
        r.category = epb::Category::Service as i32;
        r.visibility = Some(epb::Visibility {
            audience_reach: 2_000_000,
            shares: 50_000,
            media_attention: true,
        });
    }
    r
}

async fn complaint_at(
    query: &mut QueryClient<Authed>,
    id: &str,
    sequence: u64,
) -> rpb::GetComplaintResponse {
    query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: id.to_owned(),
            consistency: Some(rpb::Consistency {
                min_sequence: sequence,
                timeout_ms: 10_000,
            }),
            ..Default::default()
        })
        .await
        .expect("GetComplaint")
        .into_inner()
}

/// Every message of the stream `stream`, as stored: subject, headers, payload.
async fn raw_stream(nats_url: &str, stream: &str) -> Vec<u8> {
    let client = async_nats::connect(nats_url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.expect("the stream");
    let last = s.info().await.expect("stream info").state.last_sequence;
    let mut all = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = s.get_raw_message(seq).await {
            all.extend_from_slice(m.subject.as_bytes());
            for (name, values) in m.headers.iter() {
                all.extend_from_slice(name.to_string().as_bytes());
                for v in values {
                    all.extend_from_slice(v.as_str().as_bytes());
                }
            }
            all.extend_from_slice(&m.payload);
        }
    }
    all
}

fn assert_absent(bytes: &[u8], secrets: &[String], where_: &str) {
    for s in secrets {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "{where_} holds {s:?}"
        );
    }
}

fn text_of(r: &rpb::GetComplaintResponse) -> String {
    let mut all = format!("{:?}", r.complaint);
    for t in &r.timeline {
        all.push_str(&t.detail_json);
    }
    all
}

/// A simulation's outcome: routes, changes, peak, each change's decision.
type Replay = (
    Vec<rpb::RouteCount>,
    u64,
    u32,
    Vec<(String, Option<epb::Decision>)>,
);

/// What must not change when personal data goes: routes, figures, replays.
#[derive(Debug, PartialEq)]
struct Facts {
    routes: Vec<(String, i32, u32)>,
    goodwill: Option<rpb::GoodwillRow>,
    simulated: Replay,
    history: (usize, u32, i64),
}

async fn facts(router: &mut TestRouter, ids: &[String], alice: &str, sequence: u64) -> Facts {
    let mut routes = Vec::new();
    for id in ids {
        let r = complaint_at(&mut router.query, id, sequence).await;
        let c = r.complaint.expect("a complaint");
        routes.push((c.complaint_id, c.route, c.satisfaction));
    }
    let goodwill = router
        .query
        .get_goodwill(rpb::GetGoodwillRequest::default())
        .await
        .expect("GetGoodwill")
        .into_inner()
        .total;
    let sim = router
        .query
        .simulate_policy(rpb::SimulatePolicyRequest {
            policy_json: plaint_domain::RoutingPolicy::default().to_json(),
            max_changes: 1000,
            ..Default::default()
        })
        .await
        .expect("SimulatePolicy")
        .into_inner();
    let mut changes: Vec<_> = sim
        .changes
        .into_iter()
        .map(|c| (c.complaint_id, c.simulated))
        .collect();
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    let h = router
        .query
        .get_customer_history(rpb::GetCustomerHistoryRequest {
            customer_id: alice.to_owned(),
            consistency: None,
        })
        .await
        .expect("GetCustomerHistory")
        .into_inner();
    Facts {
        routes,
        goodwill,
        simulated: (
            sim.distribution,
            sim.changed_total,
            sim.peak_window_ceo,
            changes,
        ),
        history: (
            h.complaints.len(),
            h.ceo_engagements,
            h.last_ceo_engagement_ms,
        ),
    }
}

async fn exported(router: &mut TestRouter, customer_id: &str) -> rpb::ExportCustomerDataResponse {
    router
        .admin
        .export_customer_data(rpb::ExportCustomerDataRequest {
            customer_id: customer_id.to_owned(),
            consistency: None,
        })
        .await
        .expect("ExportCustomerData")
        .into_inner()
}

#[tokio::test]
async fn personal_data_is_sealed_erasable_and_exportable_and_routing_does_not_notice() {
    let db = plaint_testkit::TestDb::create().await;
    let nats_url = plaint_testkit::shared_nats_url();
    let mut intake = spawn_intake(&nats_url).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let tag = &intake.prefix;
    let secrets = Secrets {
        alice: format!("alice-{tag}@example.org"),
        bob: format!("bob-{tag}@example.org"),
        texts: vec![
            format!("alice summary one {tag}"),
            format!("alice summary two {tag}"),
            format!("alice follow-up {tag}"),
            format!("alice resolution note {tag}"),
            format!("bob summary {tag}"),
        ],
    };

    // Alice complains twice, once loudly enough for the CEO; Bob once.
    let mut ids = Vec::new();
    for (ticket, customer, summary, viral) in [
        ("A-1", &secrets.alice, &secrets.texts[0], true),
        ("A-2", &secrets.alice, &secrets.texts[1], false),
        ("B-1", &secrets.bob, &secrets.texts[4], false),
    ] {
        let w = intake
            .client
            .submit_complaint(complaint("shop", ticket, customer, summary, viral))
            .await
            .expect("submit")
            .into_inner();
        ids.push(written_id(&w).to_string());
    }
    for id in &ids {
        decided(&mut router.query, id).await;
    }
    let a1 = ids[0]
        .parse::<uuid::Uuid>()
        .map(plaint_domain::ComplaintId::from_uuid)
        .unwrap();
    let a2 = ids[1]
        .parse::<uuid::Uuid>()
        .map(plaint_domain::ComplaintId::from_uuid)
        .unwrap();
    intake
        .client
        .record_follow_up(follow_up(&a1, &secrets.texts[2]))
        .await
        .expect("follow-up");
    let resolved = intake
        .client
        .resolve(ipb::ResolveRequest {
            header: header(&a2),
            satisfaction: 9,
            note: secrets.texts[3].clone(),
        })
        .await
        .expect("resolve")
        .into_inner();

    let before = facts(&mut router, &ids, &secrets.alice, resolved.sequence).await;
    assert_eq!(
        before.history.0, 2,
        "both of Alice's complaints are her history"
    );
    let stream = intake.log.names().stream().to_owned();
    let keys_stream = format!("KV_{}", intake.log.names().data_key_bucket());
    assert_absent(
        &raw_stream(&nats_url, &stream).await,
        &secrets.all(),
        "the log",
    );
    assert_absent(
        &raw_stream(&nats_url, &keys_stream).await,
        &secrets.all(),
        "the key store",
    );

    // The projections hold the texts (opened); the export returns them.
    let detail = complaint_at(&mut router.query, &ids[0], resolved.sequence).await;
    assert!(text_of(&detail).contains(&secrets.texts[0]));
    assert!(text_of(&detail).contains(&secrets.texts[2]));
    let export = exported(&mut router, &secrets.alice).await;
    assert_eq!(export.complaints, 2);
    for t in &secrets.texts[..4] {
        assert!(export.json.contains(t.as_str()), "the export lacks {t:?}");
    }
    assert!(
        !export.json.contains(&secrets.bob),
        "Bob is in Alice's export"
    );
    let document: serde_json::Value = serde_json::from_str(&export.json).expect("JSON");
    assert_eq!(document["complaints"].as_array().map(Vec::len), Some(2));

    // Alice is erased.
    let erased = router
        .admin
        .erase_customer(rpb::EraseCustomerRequest {
            customer_id: secrets.alice.clone(),
        })
        .await
        .expect("erase")
        .into_inner();
    assert!(!erased.already_erased);
    let check = async |router: &mut TestRouter, at: u64| {
        for id in &ids[..2] {
            let r = complaint_at(&mut router.query, id, at).await;
            let c = r.complaint.as_ref().expect("a complaint");
            assert_eq!(c.customer_id, "[erased]");
            assert_eq!(c.external_ticket_id, "[erased]");
            assert_absent(
                text_of(&r).as_bytes(),
                &secrets.of_alice(),
                "an erased complaint",
            );
            assert!(text_of(&r).contains("[erased]"));
        }
        let bob = complaint_at(&mut router.query, &ids[2], at).await;
        assert!(
            text_of(&bob).contains(&secrets.texts[4]),
            "Bob was erased too"
        );
        let export = exported(router, &secrets.alice).await;
        assert_absent(
            export
                .json
                .replace(&format!("\"customer_id\":\"{}\"", secrets.alice), "")
                .as_bytes(),
            &secrets.of_alice(),
            "the export",
        );
    };
    check(&mut router, erased.sequence).await;
    let after = facts(&mut router, &ids, &secrets.alice, erased.sequence).await;
    assert_eq!(after, before, "erasure changed routes, figures or replays");
    assert_absent(
        &raw_stream(&nats_url, &stream).await,
        &secrets.all(),
        "the log after erasure",
    );

    // Rebuilt from sequence 1 without the key: nothing of Alice comes back.
    let swapped = rebuilt(&mut router.admin).await.swapped_at_sequence;
    check(&mut router, swapped).await;
    let rebuilt = facts(&mut router, &ids, &secrets.alice, swapped).await;
    assert_eq!(
        rebuilt, before,
        "the rebuild changed routes, figures or replays"
    );

    // Idempotent; a stranger is not found.
    let again = router
        .admin
        .erase_customer(rpb::EraseCustomerRequest {
            customer_id: secrets.alice.clone(),
        })
        .await
        .expect("erase again")
        .into_inner();
    assert!(again.already_erased);
    assert_eq!(again.customer_ref, erased.customer_ref);
    let stranger = router
        .admin
        .erase_customer(rpb::EraseCustomerRequest {
            customer_id: format!("nobody-{tag}"),
        })
        .await
        .expect_err("a customer never seen");
    assert_eq!(stranger.code(), Code::NotFound);

    // Alice comes back: a new key; the new complaint reads, the old stay erased.
    let back = format!("alice returns {tag}");
    let w = intake
        .client
        .submit_complaint(complaint("shop", "A-3", &secrets.alice, &back, false))
        .await
        .expect("submit after erasure")
        .into_inner();
    let a3 = written_id(&w).to_string();
    let r = complaint_at(&mut router.query, &a3, w.sequence).await;
    assert!(text_of(&r).contains(&back), "{}", text_of(&r));
    assert_eq!(
        r.complaint.as_ref().map(|c| c.customer_id.as_str()),
        Some(secrets.alice.as_str())
    );
    for id in &ids[..2] {
        let r = complaint_at(&mut router.query, id, w.sequence).await;
        assert_absent(
            text_of(&r).as_bytes(),
            &secrets.of_alice(),
            "an erased complaint",
        );
    }
    let export = exported(&mut router, &secrets.alice).await;
    assert_eq!(export.complaints, 3);
    assert!(export.json.contains(&back));
    assert_absent(
        export.json.as_bytes(),
        &secrets.texts[..4],
        "the export after her return",
    );

    // The audit trail names the pseudonym, never the customer.
    let trail = AccessClient::new(router.channel.clone())
        .list_audit(apb::ListAuditRequest::default())
        .await
        .expect("ListAudit")
        .into_inner()
        .entries;
    let erasures: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "EraseCustomer")
        .collect();
    assert_eq!(erasures.len(), 2, "{trail:?}");
    assert_eq!(
        erasures[0].target,
        format!("customer:{}", erased.customer_ref)
    );
    assert!(trail.iter().any(|e| e.action == "ExportCustomerData"));
    assert!(!format!("{trail:?}").contains(&secrets.alice));

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_wrong_or_missing_master_key_stops_start_up_with_the_cause() {
    let nats_url = plaint_testkit::shared_nats_url();
    let intake = spawn_intake(&nats_url).await;
    let dir = tempfile::tempdir().unwrap();

    let mut wrong = plaint_intake::Config::for_tests(&nats_url, &intake.prefix);
    let other = dir.path().join("other-master.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    wrong.log.personal.master_key_file = other;
    let Err(e) = plaint_intake::Application::build(wrong).await else {
        panic!("a wrong master key was accepted");
    };
    let message = format!("{e:#}");
    assert!(message.contains("PLAINT_MASTER_KEY_FILE"), "{message}");

    let mut missing = plaint_intake::Config::for_tests(&nats_url, &intake.prefix);
    missing.log.personal.master_key_file = dir.path().join("lost.key");
    let Err(e) = plaint_intake::Application::build(missing).await else {
        panic!("a lost master key was accepted");
    };
    let message = format!("{e:#}");
    assert!(
        message.contains("PLAINT_MASTER_KEY_FILE") && message.contains("lost.key"),
        "{message}"
    );
    intake.finish().await;
}

#[tokio::test]
async fn a_refused_helpdesk_message_that_names_a_customer_is_sealed_and_erased_with_them() {
    let db = plaint_testkit::TestDb::create().await;
    let nats_url = plaint_testkit::shared_nats_url();
    let intake = spawn_intake(&nats_url).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let tag = &intake.prefix;
    let customer = format!("carol-{tag}@example.org");
    let said = format!("carol's words {tag}");
    // Refused (no such channel), but it names its customer.
    let named = format!(
        r#"{{"type":"submit","source_system":"acme","external_ticket_id":"C-1",
            "customer":{{"customer_id":"{customer}","segment":"consumer"}},
            "channel":"CARRIER_PIGEON","category":"SERVICE","summary":"{said}"}}"#
    );
    let anonymous = format!("not a message at all {tag}");
    intake.inbound.publish("acme", named.clone()).await;
    intake.inbound.publish("acme", anonymous.clone()).await;
    let letters = intake.wait_for_dead_letters(2).await;
    assert_eq!(
        letters[0].payload,
        named.as_bytes(),
        "the letter opens for intake"
    );
    assert_eq!(letters[1].payload, anonymous.as_bytes());

    let dead = format!("{}_DEAD", intake.log.names().stream());
    let stored = raw_stream(&nats_url, &dead).await;
    assert_absent(
        &stored,
        &[customer.clone(), said.clone()],
        "the dead letters",
    );
    assert!(
        stored
            .windows(anonymous.len())
            .any(|w| w == anonymous.as_bytes()),
        "a letter naming nobody is kept as it came (for its retention)"
    );
    let info = async_nats::jetstream::new(async_nats::connect(&nats_url).await.unwrap())
        .get_stream(&dead)
        .await
        .unwrap()
        .cached_info()
        .config
        .max_age;
    assert_eq!(
        info.as_secs(),
        30 * 24 * 3600,
        "dead letters are kept 30 days"
    );

    router
        .admin
        .erase_customer(rpb::EraseCustomerRequest {
            customer_id: customer.clone(),
        })
        .await
        .expect("erase the letter's customer");
    let letters = intake.dead_letters().await;
    assert_eq!(letters[0].payload, b"[erased]");
    let refused = intake
        .admin
        .clone()
        .requeue_dead_letter(ipb::RequeueDeadLetterRequest {
            sequence: letters[0].sequence,
        })
        .await
        .expect_err("an erased letter cannot be requeued");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}
