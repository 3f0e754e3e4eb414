//! gRPC over TLS: a service with certificates answers TLS clients that trust
//! its CA, and only them; under mutual TLS only clients with a certificate
//! from the configured CA; and no service starts in plaintext unless told
//! to, on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use plaint_client::ClientSettings;
use plaint_runtime::binary::Service as _;
use plaint_runtime::tls::TlsSettings;
use plaint_testkit::TlsFiles;
use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{spawn_intake_over, submit_request, test_config, written_id};

const INTAKE: &str = "plaint.intake.v1.Intake";

/// A client that trusts `certs`' CA and, with `identity`, presents its
/// client certificate.
fn client(certs: &TlsFiles, identity: bool) -> ClientSettings {
    ClientSettings {
        tls_ca_file: Some(certs.files.ca_cert.clone()),
        tls_client_cert_file: identity.then(|| certs.files.client_cert.clone()),
        tls_client_key_file: identity.then(|| certs.files.client_key.clone()),
        ..ClientSettings::default()
    }
}

/// Whether a health check over `endpoint` gets an answer: a refused
/// handshake fails the connection or, under TLS 1.3 (the client certificate
/// is checked after the client finished), the first call.
async fn health_answers(endpoint: Endpoint) -> bool {
    let endpoint = endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: INTAKE.to_owned(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
}

fn https(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

#[tokio::test]
async fn a_tls_client_that_trusts_the_ca_is_served_and_a_plaintext_one_is_not() {
    let certs = TlsFiles::new();
    let mut config = test_config(&plaint_testkit::shared_nats_url());
    config.tls = TlsSettings::from_dir(certs.dir(), false);
    let trusting = client(&certs, false);
    let mut intake = spawn_intake_over(config, Some(&trusting)).await;

    assert!(health_answers(trusting.endpoint(&https(intake.addr)).unwrap()).await);
    let written = intake
        .client
        .submit_complaint(submit_request("tls", "T-1"))
        .await
        .expect("an authenticated call over TLS")
        .into_inner();
    intake.wait_for_complaint(&written_id(&written)).await;

    let plaintext = Endpoint::from_shared(format!("http://{}", intake.addr)).unwrap();
    assert!(!health_answers(plaintext).await, "plaintext was served");
    let other = TlsFiles::new();
    let stranger = client(&other, false);
    assert!(
        !health_answers(stranger.endpoint(&https(intake.addr)).unwrap()).await,
        "a client trusting another CA accepted the server"
    );
    intake.finish().await;
}

#[tokio::test]
async fn under_mutual_tls_only_clients_with_a_certificate_from_the_ca_are_served() {
    let certs = TlsFiles::new();
    let mut config = test_config(&plaint_testkit::shared_nats_url());
    config.tls = TlsSettings::from_dir(certs.dir(), true);
    let tls = config.tls.clone();
    let presenting = client(&certs, true);
    let mut intake = spawn_intake_over(config, Some(&presenting)).await;
    let url = https(intake.addr);

    assert!(health_answers(presenting.endpoint(&url).unwrap()).await);
    intake
        .client
        .submit_complaint(submit_request("mtls", "T-1"))
        .await
        .expect("an authenticated call over mutual TLS");

    let without = client(&certs, false);
    assert!(
        !health_answers(without.endpoint(&url).unwrap()).await,
        "a client without a certificate was served"
    );
    let other = TlsFiles::new();
    let foreign = ClientSettings {
        tls_client_cert_file: Some(other.files.client_cert.clone()),
        tls_client_key_file: Some(other.files.client_key.clone()),
        ..client(&certs, false)
    };
    assert!(
        !health_answers(foreign.endpoint(&url).unwrap()).await,
        "a client certificate from another CA was accepted"
    );

    // The container health check: the service's own settings suffice.
    plaint_runtime::health::check(intake.addr, INTAKE, &tls)
        .await
        .expect("the healthcheck passes under mutual TLS");
    let impostor = TlsSettings::from_dir(other.dir(), true);
    let err = plaint_runtime::health::check(intake.addr, INTAKE, &impostor)
        .await
        .expect_err("a healthcheck expecting another certificate fails");
    assert!(err.contains("another certificate"), "{err}");
    intake.finish().await;
}

#[tokio::test]
async fn neither_service_starts_in_plaintext_unless_told_to_and_only_on_loopback() {
    let nats = plaint_testkit::shared_nats_url();
    let prefix = plaint_testkit::unique_prefix();
    let wildcard = SocketAddr::from(([0, 0, 0, 0], 0));

    let mut intake = plaint_intake::Config::for_tests(&nats, &prefix);
    intake.tls = TlsSettings::default();
    let err = plaint_intake::Application::build(intake.clone())
        .await
        .expect_err("intake refuses plaintext by default")
        .to_string();
    assert!(
        err.contains("PLAINT_TLS_CERT_FILE") && err.contains("PLAINT_INSECURE_PLAINTEXT"),
        "{err}"
    );
    intake.tls = TlsSettings::insecure_plaintext();
    intake.grpc_addr = wildcard;
    let err = plaint_intake::Application::build(intake)
        .await
        .expect_err("intake refuses plaintext on 0.0.0.0")
        .to_string();
    assert!(
        err.contains("0.0.0.0:0") && err.contains("loopback"),
        "{err}"
    );

    // The router checks before it connects anywhere: no database needed.
    let mut router =
        plaint_router::Config::for_tests(&nats, &prefix, "postgres://nobody@127.0.0.1:1/none");
    router.tls = TlsSettings::default();
    let err = plaint_router::Application::build(router.clone())
        .await
        .expect_err("the router refuses plaintext by default")
        .to_string();
    assert!(err.contains("PLAINT_INSECURE_PLAINTEXT"), "{err}");
    router.tls = TlsSettings::insecure_plaintext();
    router.grpc_addr = wildcard;
    let err = plaint_router::Application::build(router)
        .await
        .expect_err("the router refuses plaintext on 0.0.0.0")
        .to_string();
    assert!(err.contains("loopback"), "{err}");
}
