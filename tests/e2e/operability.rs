//! What an SRE meets: the metrics endpoint and its labels.

use plaint_testkit::shared_nats_url;

use crate::helpers::{spawn_intake, submit_request, within};
use crate::scrape::scrape;

#[tokio::test]
async fn the_metrics_endpoint_counts_requests_and_writes() {
    let intake = spawn_intake(&shared_nats_url()).await;
    intake
        .client
        .clone()
        .submit_complaint(submit_request("metrics", "M-1"))
        .await
        .expect("submitted");

    let body = within("scrape", scrape(intake.metrics_addr)).await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("plaint_intake_writes_total"), "{body}");
    assert!(
        body.contains("plaint_grpc_requests_total{service=\"plaint.intake.v1.Intake\",method=\"SubmitComplaint\",code=\"0\"}"),
        "{body}"
    );
    assert!(
        body.contains("plaint_grpc_request_seconds_bucket"),
        "{body}"
    );
    intake.finish().await;
}

/// A client calling paths the server does not have mints no time series:
/// every such call is labelled `unknown`.
#[tokio::test]
async fn calls_to_unknown_methods_are_labelled_unknown() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut grpc_client = tonic::client::Grpc::new(intake.channel.clone());
    for minted in [
        "/plaint.intake.v1.Intake/MintedMethod7",
        "/minted.Service9/Call",
        "/plaint.router.v1.Query/GetComplaint",
    ] {
        grpc_client.ready().await.expect("ready");
        let answer = grpc_client
            .unary::<_, plaint_proto::intake::ListDeadLettersResponse, _>(
                tonic::Request::new(plaint_proto::intake::ListDeadLettersRequest::default()),
                http::uri::PathAndQuery::from_static(minted),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .expect_err("no such method here");
        assert_eq!(answer.code(), tonic::Code::Unimplemented, "{minted}");
    }

    let body = within("scrape", scrape(intake.metrics_addr)).await;
    assert!(
        body.contains(
            "plaint_grpc_requests_total{service=\"unknown\",method=\"unknown\",code=\"12\"} 3"
        ),
        "{body}"
    );
    for minted in ["MintedMethod7", "minted.Service9", "plaint.router.v1.Query"] {
        assert!(!body.contains(minted), "{minted} became a label:\n{body}");
    }
    intake.finish().await;
}
