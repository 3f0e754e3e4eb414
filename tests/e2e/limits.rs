//! One caller cannot use a service up for the others: over its quota it is
//! told to retry later, over its share of concurrent calls it is refused,
//! and a server at its cap sheds calls at once, while health still answers.

use std::time::Duration;

use plaint_client::{Authed, Bearer};
use plaint_domain::access::Scope;
use plaint_proto::access::{self as apb, access_client::AccessClient};
use plaint_proto::router::query_client::QueryClient;
use plaint_proto::router::{GetQueueStatsRequest, WatchComplaintsRequest};
use plaint_runtime::limits::CallLimits;
use tonic::Code;
use tonic::transport::Endpoint;
use tonic_types::StatusExt as _;

use crate::helpers::{eventually, spawn_intake, within};
use crate::router::{TestRouter, spawn_router_with};

/// A second caller: a key with `complaints:read`, made through the API.
async fn second_caller(router: &TestRouter) -> Bearer {
    let secret = AccessClient::new(router.channel.clone())
        .create_key(apb::CreateKeyRequest {
            name: "second-caller".to_owned(),
            scopes: vec![Scope::ComplaintsRead.as_str().to_owned()],
            ttl_secs: 0,
        })
        .await
        .expect("CreateKey")
        .into_inner()
        .secret;
    Bearer::token(&secret).expect("a header value")
}

async fn query_as(router: &TestRouter, bearer: Bearer) -> QueryClient<Authed> {
    let channel = within(
        "connecting",
        Endpoint::from_shared(format!("http://{}", router.addr))
            .expect("endpoint")
            .connect(),
    )
    .await
    .expect("connect");
    QueryClient::new(plaint_client::authed(channel, bearer))
}

async fn stats(query: &mut QueryClient<Authed>) -> Result<(), tonic::Status> {
    query
        .get_queue_stats(GetQueueStatsRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_caller_over_its_quota_is_told_when_to_retry_while_another_is_served() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let router = spawn_router_with(&intake, db.url(), |c| {
        c.access.limits = CallLimits {
            quota_per_sec: 1,
            quota_burst: 5,
            ..CallLimits::none()
        };
    })
    .await;
    // Creating the key spends one call of the admin key's burst of 5.
    let other = second_caller(&router).await;
    let mut admin = router.query.clone();
    for _ in 0..4 {
        stats(&mut admin).await.expect("within the burst");
    }
    let refused = stats(&mut admin).await.expect_err("over the quota");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let wait = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a retry delay");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert!(
        refused.message().contains("PLAINT_QUOTA_PER_SEC"),
        "{refused:?}"
    );

    let mut other = query_as(&router, other).await;
    // The new key reaches the router's key ring through the log.
    eventually("another caller is served", async || {
        stats(&mut other).await.ok()
    })
    .await;

    tokio::time::sleep(wait).await;
    stats(&mut admin)
        .await
        .expect("served again after the delay");
    router.stop().await;
    intake.finish().await;
}

#[tokio::test]
async fn open_streams_count_against_a_callers_share_and_a_full_server_sheds_but_answers_health() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let router = spawn_router_with(&intake, db.url(), |c| {
        c.access.limits = CallLimits {
            max_calls_per_caller: 2,
            max_calls: 3,
            ..CallLimits::none()
        };
    })
    .await;
    let other = second_caller(&router).await;
    let mut admin = router.query.clone();
    let watch = || WatchComplaintsRequest::default();
    let first = admin.watch_complaints(watch()).await.expect("first watch");
    let _second = admin.watch_complaints(watch()).await.expect("second watch");
    let refused = stats(&mut admin).await.expect_err("a third call");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("PLAINT_MAX_CALLS_PER_CALLER"),
        "{refused:?}"
    );

    let mut other = query_as(&router, other).await;
    let _third = eventually("another caller's watch", async || {
        other.watch_complaints(watch()).await.ok()
    })
    .await;
    let shed = stats(&mut other).await.expect_err("the server is full");
    assert_eq!(shed.code(), Code::Unavailable, "{shed:?}");
    assert!(shed.message().contains("PLAINT_MAX_CALLS"), "{shed:?}");
    crate::helpers::assert_health(router.channel.clone(), &["plaint.router.v1.Query"], &[]).await;

    // Closing a stream gives its place back.
    drop(first);
    eventually("a closed stream's place is free", async || {
        stats(&mut admin).await.ok()
    })
    .await;
    router.stop().await;
    intake.finish().await;
}
