//! What an SRE meets: the metrics endpoint, and the compose file checked
//! mechanically (no Docker engine runs where the tests do).

use std::net::SocketAddr;

use plaint_intake::{Application, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::helpers::{submit_request, within};

/// `GET /metrics` over a plain connection.
async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("response");
    body
}

#[tokio::test]
async fn the_metrics_endpoint_counts_requests_and_writes() {
    let config = Config::for_tests(
        &plaint_testkit::shared_nats_url(),
        &plaint_testkit::unique_prefix(),
    );
    let app = within("intake builds", Application::build(config))
        .await
        .expect("builds");
    let (grpc, metrics) = (app.local_addr(), app.metrics_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let mut client =
        plaint_proto::intake::intake_client::IntakeClient::connect(format!("http://{grpc}"))
            .await
            .expect("connect");
    client
        .submit_complaint(submit_request("metrics", "M-1"))
        .await
        .expect("submitted");

    let body = within("scrape", scrape(metrics)).await;
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

    let _ = stop.send(());
    within("intake stops", task)
        .await
        .expect("join")
        .expect("ran");
}
