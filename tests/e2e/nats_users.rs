//! NATS with the shipped configuration (`deploy/nats/secured.conf`): every
//! process and integration signs in as its own nkey user. The services do
//! their whole work with their least-privilege users; an integration can only
//! publish to its own subject, and one that floods it is refused while the
//! others keep flowing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use plaint_access::settings::KeyText;
use plaint_bus::{EventLog, NatsAccess};
use plaint_proto::access::{self as apb, access_client::AccessClient};
use plaint_proto::events::Climate;
use plaint_proto::intake::{
    self as ipb, intake_admin_client::IntakeAdminClient, intake_client::IntakeClient,
};
use plaint_proto::router::{
    GetComplaintRequest, SetClimateRequest, admin_client::AdminClient, query_client::QueryClient,
};
use plaint_runtime::binary::Service as _;
use plaint_testkit::{NatsServer, TestDb};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::helpers::{eventually, follow_up, submit_json, ticket_id, within};

/// The names the shipped configuration is written for.
const PREFIX: &str = "plaint";
const STREAM: &str = "COMPLAINTS";
/// Every user the shipped configuration names.
const USERS: [&str; 4] = ["intake", "router", "acme", "globex"];

/// A `nats-server` running the shipped configuration, with a fresh nkey
/// pair per user: the public keys in its environment, the seeds in files.
struct SecuredNats {
    server: NatsServer,
    seeds: TempDir,
}

impl SecuredNats {
    fn start() -> Self {
        let seeds = tempfile::tempdir().expect("a directory for the seeds");
        let mut env = Vec::new();
        for user in USERS {
            let pair = nkeys::KeyPair::new_user();
            std::fs::write(seeds.path().join(user), pair.seed().expect("seed")).expect("seed file");
            env.push((
                format!("PLAINT_NKEY_{}", user.to_uppercase()),
                pair.public_key(),
            ));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/secured.conf");
        Self {
            server: NatsServer::start_with_config_file(&config, &env),
            seeds,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// How `user` connects: its seed file, and for an integration its own
    /// inbox prefix (the only replies it may hear).
    fn access(&self, user: &str) -> NatsAccess {
        let inbox = match user {
            "intake" | "router" => plaint_bus::DEFAULT_INBOX_PREFIX.to_owned(),
            integration => format!("_INBOX_{integration}"),
        };
        NatsAccess::nkey(self.seeds.path().join(user), &inbox)
    }

    /// `user`'s client, with every error the server sent it kept in `errors`
    /// (permission violations come that way, not as failed calls).
    async fn client(&self, user: &str) -> (async_nats::Client, ServerErrors) {
        let errors = ServerErrors::default();
        let seen = errors.clone();
        let client = self
            .access(user)
            .options(user)
            .await
            .expect("options")
            .request_timeout(Some(Duration::from_millis(500)))
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        seen.0.lock().expect("lock").push(e.to_string());
                    }
                }
            })
            .connect(self.url())
            .await
            .expect("connect");
        (client, errors)
    }

    /// Lines of the server log that report a permission violation.
    fn violations(&self) -> Vec<String> {
        std::fs::read_to_string(self.server.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Violation"))
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Clone, Default)]
struct ServerErrors(Arc<Mutex<Vec<String>>>);

impl ServerErrors {
    /// Waits until the server reported a violation naming `subject`.
    async fn wait_for(&self, subject: &str) {
        eventually(
            &format!("a permissions violation on {subject}"),
            async || {
                let errors = self.0.lock().expect("lock");
                errors
                    .iter()
                    .any(|e| e.contains("Permissions Violation") && e.contains(subject))
                    .then_some(())
            },
        )
        .await;
    }
}

/// A service running in this process until stopped.
struct Running {
    addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Builds and runs `$app` with `$config` (a macro: the services' run
/// futures are opaque types that a generic function cannot spawn).
macro_rules! start {
    ($app:ty, $config:expr) => {{
        plaint_testkit::init_test_tracing();
        let app = within("the service builds", <$app>::build($config))
            .await
            .expect("the service builds");
        let addr = app.local_addr();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }};
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            within("the service stops", t)
                .await
                .expect("join")
                .expect("the service ran");
        }
    }
}

fn intake_config(nats: &SecuredNats) -> plaint_intake::Config {
    let mut config = plaint_intake::Config::for_tests(&nats.url(), PREFIX);
    config.log.stream = STREAM.to_owned();
    config.log.access = nats.access("intake");
    config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    config
}

fn router_config(nats: &SecuredNats, database_url: &str) -> plaint_router::Config {
    let mut config = plaint_router::Config::for_tests(&nats.url(), PREFIX, database_url);
    config.log.stream = STREAM.to_owned();
    config.log.access = nats.access("router");
    config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    config
}

/// The event log, read as the intake user.
async fn log_as_intake(nats: &SecuredNats) -> EventLog {
    plaint_bus::open(&intake_config(nats).log, "plaint-tests")
        .await
        .expect("open the log as intake")
        .1
}

async fn connect(addr: std::net::SocketAddr) -> plaint_client::Authed {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the service");
    plaint_testkit::authed(channel)
}

fn inbound(integration: &str) -> String {
    format!("{PREFIX}.helpdesk.inbound.{integration}")
}

/// Publishes to the inbound stream and waits for its PubAck.
async fn publish(js: &jetstream::Context, subject: String, payload: String) -> Result<u64, String> {
    let ack = js
        .publish(subject, payload.into())
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
}

/// Publishing to `subject` is refused, and the server says so to the client.
async fn assert_refused(
    js: &jetstream::Context,
    errors: &ServerErrors,
    subject: String,
    who: &str,
) {
    assert!(
        publish(js, subject.clone(), submit_json("acme", "A-2"))
            .await
            .is_err(),
        "{who} published to {subject}"
    );
    errors.wait_for(&subject).await;
}

#[tokio::test]
async fn a_helpdesk_integration_can_publish_to_its_own_subject_and_nothing_else() {
    let nats = SecuredNats::start();
    // Provisioned by intake, which does not consume here: what acme stores stays.
    let mut config = intake_config(&nats);
    config.helpdesk = false;
    let intake = start!(plaint_intake::Application, config);
    let log = log_as_intake(&nats).await;

    let (acme, errors) = nats.client("acme").await;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(500))
        .build(acme.clone());
    publish(&js, inbound("acme"), submit_json("acme", "A-1"))
        .await
        .expect("acme publishes to its own subject");

    // Another integration's subject, and the log itself: not stored.
    let forged = log
        .names()
        .complaint_of_kind(&ticket_id("acme", "A-2"), "received");
    for subject in [inbound("globex"), forged.clone()] {
        assert_refused(&js, &errors, subject, "acme").await;
    }
    assert!(log.read_subject(&forged).await.expect("read").is_empty());

    // Decisions are the router's alone; complaint events other than decisions
    // come through intake.
    let other = ticket_id("acme", "A-3");
    for (user, kind) in [
        ("intake", "routed"),
        ("intake", "rerouted"),
        ("router", "received"),
        ("router", "resolved"),
    ] {
        let (client, errors) = nats.client(user).await;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_millis(500))
            .build(client);
        let subject = log.names().complaint_of_kind(&other, kind);
        assert_refused(&js, &errors, subject, user).await;
    }
    let all_of_it = log.names().complaint(&other);
    assert!(log.read_subject(&all_of_it).await.expect("read").is_empty());

    // No JetStream API: neither stream information nor a direct read.
    for api in [
        format!("$JS.API.STREAM.INFO.{STREAM}"),
        format!("$JS.API.DIRECT.GET.{STREAM}.{forged}"),
        format!("$JS.API.CONSUMER.CREATE.{STREAM}_INBOUND.peek"),
        // Another integration's outbound messages.
        format!("$JS.API.CONSUMER.INFO.{STREAM}_OUTBOUND.globex"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}_OUTBOUND.globex"),
        format!("$JS.API.CONSUMER.CREATE.{STREAM}_OUTBOUND.peek"),
    ] {
        assert!(
            acme.request(api.clone(), "{}".into()).await.is_err(),
            "acme called {api}"
        );
        errors.wait_for(&api).await;
    }
    // No reading the log's subjects or another client's replies either.
    for subject in [format!("{PREFIX}.>"), "_INBOX.>".to_owned()] {
        let _ignored = acme.subscribe(subject.clone()).await.expect("sent");
        errors.wait_for(&subject).await;
    }

    // The one message acme was allowed is all the inbound stream holds.
    let js_intake = jetstream::new(
        plaint_bus::connect_with(&nats.url(), &nats.access("intake"), "t")
            .await
            .expect("intake connects"),
    );
    let mut stream = js_intake
        .get_stream(log.names().inbound_stream())
        .await
        .expect("inbound stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
    intake.stop().await;
}

#[tokio::test]
async fn the_services_route_a_complaint_from_acme_with_their_own_users() {
    let nats = SecuredNats::start();
    let db = TestDb::create().await;
    let intake = start!(plaint_intake::Application, intake_config(&nats));
    let router = start!(plaint_router::Application, router_config(&nats, db.url()));

    let (acme, _) = nats.client("acme").await;
    let js = jetstream::new(acme);
    publish(&js, inbound("acme"), submit_json("acme", "A-ROUTED"))
        .await
        .expect("acme publishes");

    let router_channel = connect(router.addr).await;
    let mut query = QueryClient::new(router_channel.clone());
    let id = ticket_id("acme", "A-ROUTED").to_string();
    let routed = eventually("acme's complaint routed", async || {
        let r = query
            .get_complaint(GetComplaintRequest {
                complaint_id: id.clone(),
                consistency: None,
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        (!r.decisions.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(
        routed.complaint.expect("the complaint").source_system,
        "acme"
    );
    // Acme reads its receipt and the decision through its own consumer.
    let mine: async_nats::jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream("acme", format!("{STREAM}_OUTBOUND"))
        .await
        .expect("acme's outbound consumer");
    let mut told = Vec::new();
    eventually("acme told of its receipt and decision", async || {
        use futures::StreamExt;
        let mut batch = mine
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .ok()?;
        while let Some(Ok(m)) = batch.next().await {
            m.ack().await.ok()?;
            told.push(m.subject.to_string());
        }
        (told.iter().any(|s| s.ends_with(".acme.receipt"))
            && told.iter().any(|s| s.ends_with(".acme.update")))
        .then_some(())
    })
    .await;

    // The rest of their work: commands over gRPC, company settings, API keys
    // and the audit trail, dead letters listed and requeued.
    let intake_channel = connect(intake.addr).await;
    let mut client = IntakeClient::new(intake_channel.clone());
    client
        .record_follow_up(follow_up(&ticket_id("acme", "A-ROUTED"), "Any news?"))
        .await
        .expect("follow-up over gRPC");
    AdminClient::new(router_channel.clone())
        .set_climate(SetClimateRequest {
            climate: Climate::Good as i32,
            ..Default::default()
        })
        .await
        .expect("SetClimate");
    let mut keys = AccessClient::new(router_channel);
    keys.create_key(apb::CreateKeyRequest {
        name: "acme-reports".to_owned(),
        scopes: vec!["complaints:read".to_owned()],
        ttl_secs: 0,
    })
    .await
    .expect("CreateKey");
    let audit = keys
        .list_audit(apb::ListAuditRequest::default())
        .await
        .expect("ListAudit")
        .into_inner();
    assert!(!audit.entries.is_empty());
    publish(&js, inbound("acme"), "{not json".to_owned())
        .await
        .expect("acme publishes garbage");
    let mut admin = IntakeAdminClient::new(intake_channel);
    let letter = eventually("the garbage dead-lettered", async || {
        let page = admin
            .list_dead_letters(ipb::ListDeadLettersRequest::default())
            .await
            .ok()?
            .into_inner();
        page.letters.into_iter().next()
    })
    .await;
    admin
        .requeue_dead_letter(ipb::RequeueDeadLetterRequest {
            sequence: letter.sequence,
        })
        .await
        .expect("RequeueDeadLetter");
    eventually("the requeued garbage dead-lettered again", async || {
        let page = admin
            .list_dead_letters(ipb::ListDeadLettersRequest::default())
            .await
            .ok()?
            .into_inner();
        (page.letters.len() == 2).then_some(())
    })
    .await;

    router.stop().await;
    intake.stop().await;
    // Neither service was ever refused anything: their users allow their work.
    assert_eq!(nats.violations(), Vec::<String>::new());
    db.drop_db().await;
}

#[tokio::test]
async fn an_integration_flooding_its_subject_is_refused_while_another_keeps_flowing() {
    const LIMIT: i64 = 5;
    let nats = SecuredNats::start();
    let mut config = intake_config(&nats);
    config.helpdesk = false;
    config.helpdesk_max_pending = LIMIT;
    let provisioner = start!(plaint_intake::Application, config);

    let (acme, _) = nats.client("acme").await;
    let acme = jetstream::new(acme);
    for i in 0..LIMIT {
        publish(
            &acme,
            inbound("acme"),
            submit_json("acme", &format!("F-{i}")),
        )
        .await
        .expect("under the limit");
    }
    let refused = publish(&acme, inbound("acme"), submit_json("acme", "F-OVER"))
        .await
        .expect_err("over the limit");
    assert!(
        refused.contains("maximum messages per subject"),
        "{refused}"
    );

    let (globex, _) = nats.client("globex").await;
    let globex = jetstream::new(globex);
    publish(&globex, inbound("globex"), submit_json("globex", "G-1"))
        .await
        .expect("another integration still publishes");
    provisioner.stop().await;

    // Once intake consumes, both are stored and acme may publish again.
    let mut config = intake_config(&nats);
    config.helpdesk_max_pending = LIMIT;
    let intake = start!(plaint_intake::Application, config);
    let log = log_as_intake(&nats).await;
    for id in [ticket_id("globex", "G-1"), ticket_id("acme", "F-4")] {
        eventually(&format!("{id} stored"), async || {
            let events = log.read_subject(&log.names().complaint(&id)).await.ok()?;
            (!events.is_empty()).then_some(())
        })
        .await;
    }
    eventually("acme publishes again once drained", async || {
        publish(&acme, inbound("acme"), submit_json("acme", "F-AFTER"))
            .await
            .ok()
    })
    .await;
    intake.stop().await;
}
