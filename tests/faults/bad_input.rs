//! Bad input through both doors: oversized messages (5 MiB, a 2 MiB text
//! field), invalid enum values, truncated protobuf, invalid UTF-8, empty ids,
//! future-dated and negative values. Over gRPC each gets its documented error
//! (INVALID_ARGUMENT naming the field, or the transport's size limit); on the
//! helpdesk door each is dead-lettered with its bytes and a reason (or, past
//! NATS's own payload limit, refused at publish). Nothing is stored, nothing
//! panics, and the service's memory stays flat over repeated bursts.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;
use plaint_client::Authed;
use plaint_proto::intake as ipb;
use plaint_proto::router as rpb;
use prost::Message;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};

use crate::raw_codec::RawCodec;
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::checker::{History, figures, observe, stream_last_sequence, wait_converged};
use crate::harness::{Options, System, complaint, eventually, ticket_id};

/// Bursts of bad input whose memory is measured.
const BURSTS: usize = 4;
/// Rounds of every bad gRPC request in one burst.
const GRPC_ROUNDS: usize = 10;
/// Rounds of every bad helpdesk message in one burst.
const HELPDESK_ROUNDS: usize = 5;
/// Allowed RSS growth from the end of the first burst to the end of the last.
const RSS_GROWTH_LIMIT_KIB: u64 = 32 * 1024;

const MIB: usize = 1024 * 1024;

// --- raw gRPC: bytes in, bytes out ------------------------------------------

async fn raw_call(channel: Authed, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(16 * MIB)
        .max_encoding_message_size(16 * MIB);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(body),
        PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

const SUBMIT: &str = "/plaint.intake.v1.Intake/SubmitComplaint";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a bad gRPC request must be answered with.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// INVALID_ARGUMENT with a field violation for this field.
    Field(&'static str),
    /// One of these codes.
    Code(&'static [Code]),
}

/// Over the request cap: tonic refuses it before decoding, and the services
/// answer that as the caller's to fix.
const TOO_LARGE: Expect = Expect::Code(&[Code::InvalidArgument]);
/// Bytes that are not a valid message: the protobuf codec refuses them, and
/// the services answer that as the caller's to fix.
const UNDECODABLE: Expect = Expect::Code(&[Code::InvalidArgument]);

fn check(
    name: &str,
    expect: Expect,
    result: Result<(), Status>,
    seen: &mut BTreeMap<String, String>,
) {
    let status = match result {
        Ok(()) => panic!("{name}: a bad request was accepted"),
        Err(s) => s,
    };
    match expect {
        Expect::Field(field) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
            let bad = status
                .get_details_bad_request()
                .unwrap_or_else(|| panic!("{name}: no field violation in {status:?}"));
            assert!(
                bad.field_violations.iter().any(|v| v.field == field),
                "{name}: no violation for {field} in {:?}",
                bad.field_violations
            );
            seen.insert(name.to_owned(), format!("INVALID_ARGUMENT {field}"));
        }
        Expect::Code(codes) => {
            assert!(codes.contains(&status.code()), "{name}: {status:?}");
            seen.insert(name.to_owned(), format!("{:?}", status.code()));
        }
    }
}

/// One burst of bad gRPC requests; returns what each was answered with.
async fn bad_grpc(sys: &System, existing: &str) -> BTreeMap<String, String> {
    let mut client = sys.intake_client();
    let channel = sys.intake_channel();
    let mut seen = BTreeMap::new();
    let valid = || complaint("bad", "never-stored", 7);
    let header = |complaint_id: &str, request_id: &str| {
        Some(ipb::CommandHeader {
            complaint_id: complaint_id.to_owned(),
            request_id: request_id.to_owned(),
        })
    };
    let unit = |r: Result<tonic::Response<ipb::WriteResult>, Status>| r.map(|_| ());

    let mut r = valid();
    r.summary = "x".repeat(5 * MIB);
    check(
        "grpc 5 MiB message",
        TOO_LARGE,
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let r = ipb::RecordFollowUpRequest {
        header: header(existing, ""),
        text: "y".repeat(2 * MIB),
    };
    check(
        "grpc 2 MiB text field",
        TOO_LARGE,
        unit(client.record_follow_up(r).await),
        &mut seen,
    );
    let mut r = valid();
    r.summary = "z".repeat(9_000);
    check(
        "grpc summary over 8 KiB",
        Expect::Field("summary"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let mut r = valid();
    r.channel = 999;
    check(
        "grpc invalid channel enum",
        Expect::Field("channel"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let mut r = valid();
    if let Some(c) = r.customer.as_mut() {
        c.tier = 77;
    }
    check(
        "grpc invalid tier enum",
        Expect::Field("customer.tier"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let r = ipb::ProcessItemRequest {
        header: header(existing, ""),
        outcome: 42,
    };
    check(
        "grpc invalid outcome enum",
        Expect::Field("outcome"),
        unit(client.process_item(r).await),
        &mut seen,
    );

    let encoded = valid().encode_to_vec();
    // Cut inside the last field: its length prefix promises more than follows.
    let truncated = Bytes::copy_from_slice(&encoded[..encoded.len() - 3]);
    check(
        "grpc truncated protobuf",
        UNDECODABLE,
        raw_call(channel.clone(), SUBMIT, truncated)
            .await
            .map(|_| ()),
        &mut seen,
    );
    // Field 1 (source_system), length-delimited, with bytes that are not UTF-8.
    let mut not_utf8 = vec![0x0a, 0x04, 0xff, 0xfe, 0xc3, 0x28];
    not_utf8.extend_from_slice(&encoded);
    check(
        "grpc invalid UTF-8 string",
        UNDECODABLE,
        raw_call(channel.clone(), SUBMIT, Bytes::from(not_utf8))
            .await
            .map(|_| ()),
        &mut seen,
    );

    let mut r = valid();
    r.source_system = String::new();
    check(
        "grpc empty source_system",
        Expect::Field("source_system"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let mut r = valid();
    r.external_ticket_id = String::new();
    check(
        "grpc empty external_ticket_id",
        Expect::Field("external_ticket_id"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let r = ipb::RecordFollowUpRequest {
        header: header("", ""),
        text: "hello".to_owned(),
    };
    check(
        "grpc empty complaint_id",
        Expect::Field("header.complaint_id"),
        unit(client.record_follow_up(r).await),
        &mut seen,
    );
    let r = ipb::RecordFollowUpRequest {
        header: header(existing, "not-a-uuid"),
        text: "hello".to_owned(),
    };
    check(
        "grpc malformed request_id",
        Expect::Field("header.request_id"),
        unit(client.record_follow_up(r).await),
        &mut seen,
    );
    let mut r = valid();
    r.occurred_at_ms = now_ms() + 86_400_000;
    check(
        "grpc future occurred_at_ms",
        Expect::Field("occurred_at_ms"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let mut r = valid();
    r.occurred_at_ms = -5;
    check(
        "grpc negative occurred_at_ms",
        Expect::Field("occurred_at_ms"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let mut r = valid();
    if let Some(c) = r.customer.as_mut() {
        c.lifetime_value_cents = -100;
    }
    check(
        "grpc negative lifetime value",
        Expect::Field("customer.lifetime_value_cents"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let mut r = valid();
    if let Some(c) = r.customer.as_mut() {
        c.churn_risk_pct = 101;
    }
    check(
        "grpc churn risk over 100",
        Expect::Field("customer.churn_risk_pct"),
        unit(client.submit_complaint(r).await),
        &mut seen,
    );
    let r = ipb::ResolveRequest {
        header: header(existing, ""),
        satisfaction: 0,
        note: String::new(),
    };
    check(
        "grpc satisfaction 0",
        Expect::Field("satisfaction"),
        unit(client.resolve(r).await),
        &mut seen,
    );
    let r = ipb::RecordFollowUpRequest {
        header: header(&Uuid::new_v4().to_string(), ""),
        text: "anyone?".to_owned(),
    };
    check(
        "grpc unknown complaint",
        Expect::Code(&[Code::NotFound]),
        unit(client.record_follow_up(r).await),
        &mut seen,
    );

    // The router's door: its own cap (4 MiB) and field checks.
    let mut query = sys.query_client();
    let r = query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: "not-a-uuid".to_owned(),
            consistency: None,
            ..Default::default()
        })
        .await
        .map(|_| ());
    check(
        "router malformed complaint_id",
        Expect::Code(&[Code::InvalidArgument]),
        r,
        &mut seen,
    );
    let r = query
        .list_complaints(rpb::ListComplaintsRequest {
            customer_id: "c".repeat(5 * MIB),
            ..Default::default()
        })
        .await
        .map(|_| ());
    check("router 5 MiB request", TOO_LARGE, r, &mut seen);
    let r = query
        .list_complaints(rpb::ListComplaintsRequest {
            page_token: "garbage!".to_owned(),
            ..Default::default()
        })
        .await
        .map(|_| ());
    check(
        "router garbage page token",
        Expect::Code(&[Code::InvalidArgument]),
        r,
        &mut seen,
    );
    seen
}

/// Bad helpdesk messages that reach the inbound stream (under NATS's 1 MiB
/// payload limit): each must come back as one dead letter.
fn bad_helpdesk(existing: &str) -> Vec<(&'static str, Option<&'static str>, Vec<u8>)> {
    let valid = |extra: &str| {
        format!(
            r#"{{"type":"submit","source_system":"bad-hd","external_ticket_id":"X-1",
            "customer":{{"customer_id":"c-1","segment":"consumer"}},
            "channel":"EMAIL","category":"BILLING","summary":"s"{extra}}}"#
        )
    };
    let future = now_ms() + 86_400_000;
    let proto = ipb::HelpdeskMessage {
        command: Some(ipb::helpdesk_message::Command::Submit(complaint(
            "bad-hd", "X-2", 3,
        ))),
    }
    .encode_to_vec();
    let mut not_utf8 = valid("").into_bytes();
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    vec![
        ("helpdesk 100 KiB (over the 64 KiB limit)", None, {
            let mut v = valid("").into_bytes();
            v.truncate(v.len() - 1);
            v.extend_from_slice(
                format!(r#","item_sku":"{}"}}"#, "k".repeat(100 * 1024)).as_bytes(),
            );
            v
        }),
        (
            "helpdesk invalid channel",
            None,
            valid("").replace("EMAIL", "SMOKE_SIGNAL").into_bytes(),
        ),
        (
            "helpdesk invalid tier",
            None,
            valid(r#","occurred_at_ms":0"#)
                .replace(
                    r#""segment":"consumer""#,
                    r#""segment":"consumer","tier":"DIAMOND""#,
                )
                .into_bytes(),
        ),
        (
            "helpdesk truncated protobuf",
            Some("application/protobuf"),
            proto[..proto.len() / 2].to_vec(),
        ),
        ("helpdesk invalid UTF-8", None, not_utf8),
        ("helpdesk not JSON", None, b"{{{ not json".to_vec()),
        (
            "helpdesk empty source_system",
            None,
            valid("")
                .replace(r#""source_system":"bad-hd""#, r#""source_system":"""#)
                .into_bytes(),
        ),
        (
            "helpdesk empty complaint_id",
            None,
            br#"{"type":"follow_up","complaint_id":"","text":"hi"}"#.to_vec(),
        ),
        (
            "helpdesk future occurred_at_ms",
            None,
            valid(&format!(r#","occurred_at_ms":{future}"#)).into_bytes(),
        ),
        (
            "helpdesk negative lifetime value",
            None,
            valid("")
                .replace(
                    r#""segment":"consumer""#,
                    r#""segment":"consumer","lifetime_value_cents":-1"#,
                )
                .into_bytes(),
        ),
        (
            "helpdesk negative satisfaction",
            None,
            format!(r#"{{"type":"resolve","complaint_id":"{existing}","satisfaction":-3}}"#)
                .into_bytes(),
        ),
        (
            "helpdesk unknown type",
            None,
            br#"{"type":"explode"}"#.to_vec(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_or_dead_lettered_stores_nothing_and_memory_stays_flat() {
    let sys = System::start(Options::default()).await;
    let history = History::default();
    // A few valid complaints first, so commands have something to aim at.
    for k in 0..5 {
        sys.probe(&history, &format!("valid-{k}"), Duration::from_secs(30))
            .await;
    }
    let existing = ticket_id("probe", "valid-0").to_string();
    wait_converged(&sys, &history, Duration::from_secs(30)).await;
    let log_before = sys.log.last_sequence().await.expect("last sequence");
    let js = sys.js();
    let subject = sys.inbound_subject("bad-hd");
    let dead_stream = sys.names.dead_letter_stream();
    let rss_start = (sys.intake.rss_kib(), sys.router.rss_kib());

    let mut rss = Vec::new();
    let mut grpc_answers = BTreeMap::new();
    let mut refused_at_publish = BTreeMap::new();
    let mut expected_dead = 0;
    let cases = bad_helpdesk(&existing);
    for burst in 0..BURSTS {
        for _ in 0..GRPC_ROUNDS {
            grpc_answers = bad_grpc(&sys, &existing).await;
        }
        // Past NATS's own 1 MiB payload limit: refused to the publisher.
        let oversized = [("helpdesk 5 MiB", 5 * MIB), ("helpdesk 2 MiB", 2 * MIB)];
        for (name, size) in oversized.into_iter().cycle().take(2 * HELPDESK_ROUNDS) {
            let r = async {
                js.publish(subject.clone(), Bytes::from(vec![b'{'; size]))
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            let error = r.expect_err(name);
            refused_at_publish.insert(name.to_owned(), error);
        }
        for (name, content_type, payload) in
            cases.iter().cycle().take(cases.len() * HELPDESK_ROUNDS)
        {
            let mut headers = HeaderMap::new();
            if let Some(ct) = content_type {
                headers.insert("Content-Type", *ct);
            }
            headers.insert("Plaint-Test-Case", *name);
            js.publish_with_headers(subject.clone(), headers, Bytes::from(payload.clone()))
                .await
                .expect("publish")
                .await
                .unwrap_or_else(|e| panic!("{name} reaches the inbound stream: {e}"));
        }
        expected_dead += (cases.len() * HELPDESK_ROUNDS) as u64;
        eventually(
            "every bad message dead-lettered",
            Duration::from_secs(30),
            async || (stream_last_sequence(&js, &dead_stream).await >= expected_dead).then_some(()),
        )
        .await;
        rss.push((burst, sys.intake.rss_kib(), sys.router.rss_kib()));
    }

    // The dead letters: one per bad message, with its bytes and a reason.
    let mut admin =
        plaint_proto::intake::intake_admin_client::IntakeAdminClient::new(sys.intake_channel())
            .max_decoding_message_size(64 * MIB);
    let mut letters = Vec::new();
    let mut after = 0;
    loop {
        let page = admin
            .list_dead_letters(ipb::ListDeadLettersRequest {
                after_sequence: after,
                limit: 1000,
            })
            .await
            .expect("ListDeadLetters")
            .into_inner();
        letters.extend(page.letters);
        if page.next_after_sequence == 0 {
            break;
        }
        after = page.next_after_sequence;
    }
    assert_eq!(
        letters.len() as u64,
        expected_dead,
        "one dead letter per bad message"
    );
    let mut reasons = BTreeMap::new();
    for letter in &letters {
        assert!(!letter.reason.is_empty(), "a dead letter says why");
        let case = letter
            .headers
            .iter()
            .find(|(k, _)| k.ends_with("Plaint-Test-Case"))
            .map(|(_, v)| v.clone())
            .expect("the original headers are kept");
        let (_, _, payload) = cases
            .iter()
            .find(|(n, _, _)| *n == case)
            .expect("a known case");
        assert_eq!(
            &letter.payload, payload,
            "{case}: the original bytes are kept"
        );
        reasons.insert(case, letter.reason.chars().take(90).collect::<String>());
    }

    let log_after = sys.log.last_sequence().await.expect("last sequence");
    assert_eq!(log_after, log_before, "nothing was stored in the log");
    let report = observe(&sys, &history).await;
    report.assert_safe();
    for service in [&sys.intake, &sys.router] {
        service.assert_no_panic();
    }
    assert!(
        sys.intake.pid().is_some() && sys.router.pid().is_some(),
        "both still run"
    );
    sys.probe(&history, "after-bad-input", Duration::from_secs(30))
        .await;

    // Memory: flat from the first burst to the last.
    let first = rss[0];
    let last = rss[rss.len() - 1];
    let growth = |a: Option<u64>, b: Option<u64>| b.unwrap_or(0).saturating_sub(a.unwrap_or(0));
    let intake_growth = growth(first.1, last.1);
    let router_growth = growth(first.2, last.2);
    let total_growth = growth(rss_start.0, last.1);
    assert!(
        total_growth < 2 * RSS_GROWTH_LIMIT_KIB,
        "intake RSS grew {total_growth} KiB from before the first burst: {rss:?}"
    );
    assert!(
        intake_growth < RSS_GROWTH_LIMIT_KIB,
        "intake RSS grew {intake_growth} KiB over {BURSTS} bursts: {rss:?}"
    );
    assert!(
        router_growth < RSS_GROWTH_LIMIT_KIB,
        "router RSS grew {router_growth} KiB over {BURSTS} bursts: {rss:?}"
    );

    let mut lines = vec![format!(
        "RSS KiB (intake, router): before {rss_start:?}; after each burst {rss:?}; growth \
         first→last burst intake {intake_growth} KiB, router {router_growth} KiB"
    )];
    lines.extend(grpc_answers.iter().map(|(k, v)| format!("{k}: {v}")));
    lines.extend(
        refused_at_publish
            .iter()
            .map(|(k, v)| format!("{k}: refused at publish ({v})")),
    );
    lines.extend(
        reasons
            .iter()
            .map(|(k, v)| format!("{k}: dead letter \"{v}\"")),
    );
    lines.push(format!(
        "{} bad requests and {} bad messages per burst, {BURSTS} bursts; {} dead letters; log \
         unchanged at {log_after}",
        grpc_answers.len() * GRPC_ROUNDS,
        (cases.len() + 2) * HELPDESK_ROUNDS,
        letters.len()
    ));
    figures("bad_input", &lines);
}
