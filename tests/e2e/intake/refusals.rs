//! Refusals a client can act on: each names the field and the limit, or the
//! accepted values, in the project's words, whether the handler refused the
//! request or the transport did before any handler saw it.

use bytes::Bytes;
use plaint_domain::values::{MAX_SOURCE_SYSTEM_LEN, MAX_TEXT_BYTES};
use plaint_testkit::shared_nats_url;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};

use crate::helpers::{assert_invalid_field, spawn_intake, submit_json, submit_request, ticket_id};
use crate::raw_codec::RawCodec;

const SUBMIT: &str = "/plaint.intake.v1.Intake/SubmitComplaint";

/// Sends `body` as the request message of `path`; returns the refusal.
async fn send_raw(channel: &plaint_client::Authed, path: &'static str, body: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the channel is ready");
    grpc.unary(
        Request::new(Bytes::from(body)),
        PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .expect_err("the request is refused")
}

fn assert_names(status: &Status, words: &[&str]) {
    for word in words {
        assert!(
            status.message().contains(word),
            "message {:?} does not name {word}",
            status.message()
        );
    }
    assert!(
        !status.message().contains("::"),
        "message {:?} names a code path",
        status.message()
    );
}

#[tokio::test]
async fn an_oversized_submission_names_the_limit_and_the_field_limits() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let limit = 256 * 1024;

    let status = send_raw(&intake.channel, SUBMIT, vec![b'x'; limit + 1]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_names(
        &status,
        &[
            &format!("request is {} bytes", limit + 1),
            &format!("the limit is {limit} bytes"),
            &format!("summary {MAX_TEXT_BYTES} bytes"),
            &format!("source_system {MAX_SOURCE_SYSTEM_LEN} bytes"),
        ],
    );
    assert!(
        !status.message().contains("decoded message length"),
        "{status:?}"
    );
    intake.finish().await;
}

#[tokio::test]
async fn unparsable_protobuf_is_an_invalid_argument() {
    let intake = spawn_intake(&shared_nats_url()).await;

    // Field 1, length-delimited, claiming 255 bytes that never come.
    let status = send_raw(&intake.channel, SUBMIT, vec![0x0a, 0xff, 0x01, 0x12]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_names(
        &status,
        &["request is not a valid protobuf message", SUBMIT],
    );

    // The service goes on serving on the same channel.
    let ok = intake
        .client
        .clone()
        .submit_complaint(submit_request("crm", "RAW-OK"))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    intake.finish().await;
}

#[tokio::test]
async fn an_unknown_enum_number_is_refused_with_the_accepted_names() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut request = submit_request("crm", "ENUM-1");
    request.channel = 99;
    let status = intake
        .client
        .clone()
        .submit_complaint(request)
        .await
        .unwrap_err();
    assert_invalid_field(&status, "channel");
    assert_names(
        &status,
        &["CHANNEL_PUBLIC_SOCIAL (1)", "CHANNEL_LETTER_TO_CEO (8)"],
    );
    assert!(intake.events(&ticket_id("crm", "ENUM-1")).await.is_empty());
    intake.finish().await;
}

#[tokio::test]
async fn an_unknown_helpdesk_name_is_dead_lettered_with_the_accepted_names() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let unknown_channel = submit_json("zendesk", "J-1").replace("\"EMAIL\"", "\"TELEPATHY\"");
    let unknown_type = r#"{"type":"escalate","complaint_id":"x"}"#;
    intake.inbound.publish("zendesk", unknown_channel).await;
    intake.inbound.publish("zendesk", unknown_type).await;

    let letters = intake.wait_for_dead_letters(2).await;
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    let channel = reasons
        .iter()
        .find(|r| r.starts_with("channel"))
        .unwrap_or_else(|| panic!("no channel refusal in {reasons:?}"));
    for name in ["PUBLIC_SOCIAL", "LETTER_TO_CEO", "WEB_FORM"] {
        assert!(channel.contains(name), "{channel:?} does not list {name}");
    }
    assert!(
        !channel.contains("CHANNEL_"),
        "{channel:?} lists wire names"
    );
    let kind = reasons
        .iter()
        .find(|r| r.starts_with("type"))
        .unwrap_or_else(|| panic!("no type refusal in {reasons:?}"));
    for name in ["submit", "follow_up", "withdraw"] {
        assert!(kind.contains(name), "{kind:?} does not list {name}");
    }
    intake.finish().await;
}
