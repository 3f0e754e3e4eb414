//! The harness: the real intake in-process on port 0 under a unique prefix,
//! gRPC clients to it, the event log read back through `plaint_bus`, a plain
//! NATS publisher for the helpdesk door, and bounded waits.

use plaint_access::settings::KeyText;
use plaint_runtime::binary::Service as _;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use plaint_bus::{EventLog, Helpdesk, StoredEvent, StreamSettings};
use plaint_client::Authed;
use plaint_domain::values::{ExternalTicketId, SourceSystem};
use plaint_domain::{ComplaintEvent, ComplaintId, EventPayload};
use plaint_intake::{Application, Config};
use plaint_proto::events as epb;
use plaint_proto::intake as pb;
use plaint_proto::intake::intake_admin_client::IntakeAdminClient;
use plaint_proto::intake::intake_client::IntakeClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The longest any test waits for something to happen.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// How often a bounded wait looks again.
const POLL: Duration = Duration::from_millis(25);

/// Polls `probe` until it returns `Some`, for at most [`WAIT`]; panics naming
/// `what` when time runs out.
pub(crate) async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Awaits `f` for at most [`WAIT`].
pub(crate) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {WAIT:?}"))
}

/// A config for a test: everything as `Config::for_tests`, under a fresh prefix.
pub(crate) fn test_config(nats_url: &str) -> Config {
    Config::for_tests(nats_url, &plaint_testkit::unique_prefix())
}

/// A running intake service and everything a test needs to talk to it.
pub(crate) struct TestIntake {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Where its metrics endpoint listens.
    pub(crate) metrics_addr: SocketAddr,
    /// The `Intake` client.
    pub(crate) client: IntakeClient<Authed>,
    /// The `IntakeAdmin` client.
    pub(crate) admin: IntakeAdminClient<Authed>,
    /// The channel both clients use (for health and reflection clients).
    pub(crate) channel: Authed,
    /// The subject prefix.
    pub(crate) prefix: String,
    /// The event log, opened with the service's names.
    pub(crate) log: EventLog,
    /// The helpdesk streams, opened with the service's names.
    pub(crate) helpdesk: Helpdesk,
    /// A plain NATS publisher onto the helpdesk door.
    pub(crate) inbound: Inbound,
    nats_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the intake on `nats_url` under a fresh prefix.
pub(crate) async fn spawn_intake(nats_url: &str) -> TestIntake {
    spawn_intake_with(test_config(nats_url)).await
}

/// Starts the intake with `config` (its `grpc_addr` should be port 0).
pub(crate) async fn spawn_intake_with(config: Config) -> TestIntake {
    spawn_intake_over(config, None).await
}

/// Starts the intake with `config`; its clients call it over TLS verified
/// with `tls` when given (`https://`), else in plaintext.
pub(crate) async fn spawn_intake_over(
    mut config: Config,
    tls: Option<&plaint_client::ClientSettings>,
) -> TestIntake {
    plaint_testkit::init_test_tracing();
    config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    let prefix = config.log.prefix.clone();
    let nats_url = config.log.nats_url.clone();
    let settings = config.log.clone();
    // The same limits as the service: opening the streams applies them.
    let streams = StreamSettings {
        inbound_pending_per_integration: config.helpdesk_max_pending,
        ..StreamSettings::default()
    };
    let app = within("Application::build", Application::build(config))
        .await
        .expect("intake builds");
    let (addr, metrics_addr) = (app.local_addr(), app.metrics_addr());
    let (shutdown, stopped) = oneshot::channel::<()>();
    // A dropped sender (a test that panicked) stops the service as well.
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let endpoint = match tls {
        Some(tls) => tls.endpoint(&format!("https://{addr}")),
        None => plaint_client::ClientSettings::default().endpoint(&format!("http://{addr}")),
    }
    .expect("valid endpoint");
    let channel = within("connecting to intake", endpoint.connect())
        .await
        .expect("connect to intake");
    let channel = plaint_testkit::authed(channel);
    let client = IntakeClient::new(channel.clone());
    let admin = IntakeAdminClient::new(channel.clone());

    let (_, log) = plaint_bus::open(&settings, "plaint-tests")
        .await
        .expect("open the event log");
    let helpdesk = Helpdesk::open(log.clone(), &streams)
        .await
        .expect("open the helpdesk streams");
    let inbound = Inbound::connect(&nats_url, &prefix).await;
    TestIntake {
        addr,
        metrics_addr,
        client,
        admin,
        channel,
        prefix,
        log,
        helpdesk,
        inbound,
        nats_url,
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

impl TestIntake {
    /// Resolves the shutdown future and waits (at most [`WAIT`]) until
    /// `run_until_stopped` returned; asserts it returned `Ok`. Returns how long
    /// the service took to stop. Stopping twice is harmless; the log and helpdesk handles stay usable.
    pub(crate) async fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            within("run_until_stopped after shutdown", task)
                .await
                .expect("the intake task did not panic")
                .expect("run_until_stopped returned Ok");
        }
        started.elapsed()
    }

    /// Stops the service and deletes its streams, so the shared NATS server does
    /// not collect one set of streams per test run.
    pub(crate) async fn finish(mut self) {
        self.stop().await;
        let client = async_nats::connect(&self.nats_url)
            .await
            .expect("connect to NATS");
        let js = jetstream::new(client);
        let names = self.log.names();
        for stream in [
            names.stream().to_owned(),
            names.inbound_stream(),
            names.dead_letter_stream(),
        ] {
            let _ = js.delete_stream(&stream).await;
        }
    }

    /// Every event of a complaint, oldest first.
    pub(crate) async fn events(&self, id: &ComplaintId) -> Vec<StoredEvent> {
        self.log
            .read_subject(&self.log.names().complaint(id))
            .await
            .expect("read the complaint's subject")
    }

    /// Waits until a complaint has at least one event; returns its events.
    pub(crate) async fn wait_for_complaint(&self, id: &ComplaintId) -> Vec<StoredEvent> {
        eventually(&format!("complaint {id} to be stored"), async || {
            Some(self.events(id).await).filter(|e| !e.is_empty())
        })
        .await
    }

    /// Waits until intake has taken every helpdesk message off the inbound
    /// stream (a work queue: a message leaves it when acked, i.e. once stored or
    /// dead-lettered).
    pub(crate) async fn wait_inbound_drained(&self) {
        eventually("the inbound stream to drain", async || {
            let pending = self.helpdesk.inbound_pending().await.expect("inbound info");
            (pending == 0).then_some(())
        })
        .await;
    }

    /// Every dead letter, oldest first, through `IntakeAdmin.ListDeadLetters`.
    pub(crate) async fn dead_letters(&self) -> Vec<pb::DeadLetter> {
        let mut admin = self.admin.clone();
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = admin
                .list_dead_letters(pb::ListDeadLettersRequest {
                    after_sequence: after,
                    limit: 0,
                })
                .await
                .expect("ListDeadLetters")
                .into_inner();
            out.extend(page.letters);
            if page.next_after_sequence == 0 {
                return out;
            }
            after = page.next_after_sequence;
        }
    }

    /// Waits until the inbound stream is drained and at least `n` dead letters
    /// exist; returns them all.
    pub(crate) async fn wait_for_dead_letters(&self, n: usize) -> Vec<pb::DeadLetter> {
        eventually(&format!("{n} dead letters"), async || {
            if self.helpdesk.inbound_pending().await.ok()? > 0 {
                return None;
            }
            Some(self.dead_letters().await).filter(|l| l.len() >= n)
        })
        .await
    }
}

/// Publishes helpdesk messages the way an integration does: plain NATS, onto
/// `<prefix>.helpdesk.inbound.<kind>`, waiting for the stream's ack.
#[derive(Clone)]
pub(crate) struct Inbound {
    js: jetstream::Context,
    prefix: String,
}

impl Inbound {
    /// A publisher for the deployment under `prefix`.
    pub(crate) async fn connect(nats_url: &str, prefix: &str) -> Self {
        let client = async_nats::connect(nats_url)
            .await
            .expect("connect to NATS");
        Self {
            js: jetstream::new(client),
            prefix: prefix.to_owned(),
        }
    }

    /// The subject for messages of `kind`.
    pub(crate) fn subject(&self, kind: &str) -> String {
        format!("{}.helpdesk.inbound.{kind}", self.prefix)
    }

    /// Publishes `payload` on `<prefix>.helpdesk.inbound.<kind>`; returns when
    /// the inbound stream has stored it.
    pub(crate) async fn publish(&self, kind: &str, payload: impl Into<bytes::Bytes>) {
        self.js
            .publish(self.subject(kind), payload.into())
            .await
            .expect("publish")
            .await
            .expect("the inbound stream stored the message");
    }

    /// As [`publish`](Self::publish), with headers.
    pub(crate) async fn publish_with_headers(
        &self,
        kind: &str,
        headers: async_nats::HeaderMap,
        payload: impl Into<bytes::Bytes>,
    ) {
        self.js
            .publish_with_headers(self.subject(kind), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("the inbound stream stored the message");
    }
}

/// The id intake gives the complaint `source` knows as `ticket`.
pub(crate) fn ticket_id(source: &str, ticket: &str) -> ComplaintId {
    ComplaintId::for_ticket(
        &SourceSystem::parse(source).expect("valid source system"),
        &ExternalTicketId::parse(ticket).expect("valid ticket id"),
    )
}

/// The complaint id a write answered with.
pub(crate) fn written_id(w: &pb::WriteResult) -> ComplaintId {
    ComplaintId::parse(&w.complaint_id).expect("a complaint id")
}

/// A valid submission.
pub(crate) fn submit_request(source: &str, ticket: &str) -> pb::SubmitComplaintRequest {
    pb::SubmitComplaintRequest {
        source_system: source.to_owned(),
        external_ticket_id: ticket.to_owned(),
        customer: Some(epb::Customer {
            customer_id: "cust-1".to_owned(),
            segment: "consumer".to_owned(),
            tier: epb::CustomerTier::Gold as i32,
            lifetime_value_cents: 120_000,
            churn_risk_pct: 20,
            customer_ref: String::new(),
        }),
        channel: epb::Channel::Email as i32,
        category: epb::Category::ProductDefect as i32,
        visibility: None,
        product_idea: false,
        item_sku: "SKU-1".to_owned(),
        summary: "The kettle leaks.".to_owned(),
        occurred_at_ms: 0,
    }
}

/// A valid helpdesk submission in the JSON format.
pub(crate) fn submit_json(source: &str, ticket: &str) -> String {
    format!(
        r#"{{"type":"submit","source_system":"{source}","external_ticket_id":"{ticket}",
            "customer":{{"customer_id":"cust-1","segment":"consumer","tier":"GOLD"}},
            "channel":"EMAIL","category":"PRODUCT_DEFECT","summary":"The kettle leaks."}}"#
    )
}

/// A command header naming `id`.
pub(crate) fn header(id: &ComplaintId) -> Option<pb::CommandHeader> {
    Some(pb::CommandHeader {
        complaint_id: id.to_string(),
        request_id: String::new(),
    })
}

/// A follow-up on `id`.
pub(crate) fn follow_up(id: &ComplaintId, text: &str) -> pb::RecordFollowUpRequest {
    pb::RecordFollowUpRequest {
        header: header(id),
        text: text.to_owned(),
    }
}

/// The complaint event of a stored event.
pub(crate) fn complaint_event(e: &StoredEvent) -> &ComplaintEvent {
    match &e.envelope.payload {
        EventPayload::Complaint(c) => c,
        other => panic!("a company event on a complaint subject: {other:?}"),
    }
}

/// How many events of `type_name` a history holds.
pub(crate) fn count(events: &[StoredEvent], type_name: &str) -> usize {
    events
        .iter()
        .filter(|e| complaint_event(e).type_name() == type_name)
        .count()
}

/// Asserts `status` is `INVALID_ARGUMENT` with a field violation for `field`
/// (in the details and in the message).
pub(crate) fn assert_invalid_field(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "message {:?} does not name {field}",
        status.message()
    );
    let bad = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest details in {status:?}"));
    assert!(
        bad.field_violations.iter().any(|v| v.field == field),
        "no violation for {field} in {:?}",
        bad.field_violations
    );
}

/// The services a server's reflection lists, sorted.
pub(crate) async fn list_services(channel: plaint_client::Authed) -> Vec<String> {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = tokio::time::timeout(WAIT, answers.next())
        .await
        .expect("reflection answered in time")
        .expect("one answer")
        .expect("a list");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

/// What reflection must list for a server of `services`: those, health and
/// reflection itself, sorted.
pub(crate) fn expected_listing(services: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = services
        .iter()
        .chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .map(|s| (*s).to_owned())
        .collect();
    names.sort();
    names
}

/// Health says SERVING for the server as a whole and for each of `served`,
/// and knows nothing of the services served `elsewhere`.
pub(crate) async fn assert_health(
    channel: plaint_client::Authed,
    served: &[&str],
    elsewhere: &[&str],
) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let mut health = HealthClient::new(channel);
    for service in std::iter::once(&"").chain(served) {
        let answer = health
            .check(HealthCheckRequest {
                service: (*service).to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    for service in elsewhere {
        let refused = health
            .check(HealthCheckRequest {
                service: (*service).to_owned(),
            })
            .await
            .expect_err("not served here");
        assert_eq!(refused.code(), tonic::Code::NotFound, "{service}");
    }
}
