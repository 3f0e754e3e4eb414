//! Bad input over gRPC is refused with a status code that names the field,
//! and stores nothing.

use plaint_domain::values::MAX_TEXT_BYTES;
use plaint_proto::intake as pb;
use plaint_testkit::shared_nats_url;
use tonic::Code;

use crate::helpers::{
    assert_invalid_field, header, spawn_intake, submit_request, ticket_id, written_id,
};

#[tokio::test]
async fn bad_grpc_input_is_refused_with_the_field_named_and_nothing_stored() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut client = intake.client.clone();

    // A summary one byte over the limit.
    let mut long = submit_request("crm", "V-1");
    long.summary = "x".repeat(MAX_TEXT_BYTES + 1);
    let status = client.submit_complaint(long).await.unwrap_err();
    assert_invalid_field(&status, "summary");
    assert!(
        status.message().contains(&MAX_TEXT_BYTES.to_string()),
        "the message names the limit: {status:?}"
    );

    // A channel number the schema does not know.
    let mut channel = submit_request("crm", "V-2");
    channel.channel = 99;
    assert_invalid_field(
        &client.submit_complaint(channel).await.unwrap_err(),
        "channel",
    );

    // No source system.
    let mut source = submit_request("crm", "V-3");
    source.source_system = String::new();
    assert_invalid_field(
        &client.submit_complaint(source).await.unwrap_err(),
        "source_system",
    );

    // An hour in the future: beyond any clock skew.
    let mut future = submit_request("crm", "V-4");
    future.occurred_at_ms = plaint_intake::now().as_millis() + 3_600_000;
    assert_invalid_field(
        &client.submit_complaint(future).await.unwrap_err(),
        "occurred_at_ms",
    );

    for ticket in ["V-1", "V-2", "V-4"] {
        let id = ticket_id("crm", ticket);
        assert!(intake.events(&id).await.is_empty(), "{ticket} was stored");
    }

    // A satisfaction score off the scale.
    let ok = client
        .submit_complaint(submit_request("crm", "V-5"))
        .await
        .unwrap()
        .into_inner();
    let id = written_id(&ok);
    let status = client
        .resolve(pb::ResolveRequest {
            header: header(&id),
            satisfaction: 11,
            note: "Refunded.".to_owned(),
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "satisfaction");
    assert_eq!(intake.events(&id).await.len(), 1);
    intake.finish().await;
}

#[tokio::test]
async fn a_request_over_the_size_limit_is_refused_and_stores_nothing() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut client = intake.client.clone();

    let mut huge = submit_request("crm", "BIG-1");
    huge.summary = "x".repeat(5 * 1024 * 1024);
    let status = client.submit_complaint(huge).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(intake.events(&ticket_id("crm", "BIG-1")).await.is_empty());

    // The service goes on serving on the same channel.
    let ok = client
        .submit_complaint(submit_request("crm", "BIG-2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(intake.events(&written_id(&ok)).await.len(), 1);
    intake.finish().await;
}
