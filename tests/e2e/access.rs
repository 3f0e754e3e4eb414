//! Who may call what: every RPC of both services against every kind of
//! credential (API keys and the identity provider's JWTs), with the status
//! each must get; keys created, revoked and expired through the API, seen by
//! a second replica; and an audit entry for every administrative change.

use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use plaint_access::api_key::NewKey;
use plaint_access::method::METHOD_SCOPES;
use plaint_access::settings::KeyText;
use plaint_domain::access::Scope;
use plaint_proto::access::{self as apb, access_client::AccessClient};
use plaint_runtime::binary::Service as _;
use plaint_testkit::jwt::Issuer;
use prost::Message;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::helpers::within;
use crate::raw_codec::RawCodec;

/// The services whose every method must have a row in the matrix.
const SERVICES: [&str; 5] = [
    "plaint.intake.v1.Intake",
    "plaint.intake.v1.IntakeAdmin",
    "plaint.router.v1.Query",
    "plaint.router.v1.Admin",
    "plaint.access.v1.Access",
];

/// One row of the matrix: the credential's kind, the authorization header
/// it sends, and whether a status is the one it must get.
type Row = (&'static str, Option<String>, fn(Code) -> bool);

/// One method, as the descriptors describe it.
#[derive(Debug, Clone)]
struct Method {
    path: String,
    server_streaming: bool,
}

/// Every method of [`SERVICES`], from the descriptor set the servers reflect.
fn methods() -> Vec<Method> {
    let set = prost_types::FileDescriptorSet::decode(plaint_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut out = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let name = format!("{}.{}", file.package(), service.name());
            if SERVICES.contains(&name.as_str()) {
                out.extend(service.method.iter().map(|m| Method {
                    path: format!("/{name}/{}", m.name()),
                    server_streaming: m.server_streaming(),
                }));
            }
        }
    }
    out
}

/// Calls `method` with an empty request and `authorization`; the status it
/// gets (OK when a stream opened).
async fn call(channel: &Channel, method: &Method, authorization: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    within("the channel is ready", grpc.ready())
        .await
        .expect("ready");
    let mut request = tonic::Request::new(Bytes::new());
    if let Some(a) = authorization {
        request
            .metadata_mut()
            .insert("authorization", a.parse().expect("an ASCII header"));
    }
    let path = http::uri::PathAndQuery::from_str(&method.path).expect("a path");
    let outcome = if method.server_streaming {
        within(&method.path, grpc.server_streaming(request, path, RawCodec))
            .await
            .map(|_| ())
    } else {
        within(&method.path, grpc.unary(request, path, RawCodec))
            .await
            .map(|_| ())
    };
    match outcome {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Both services, in-process, with the test admin key and trusting the test
/// identity provider, under one prefix.
struct Services {
    intake: Channel,
    router: Channel,
    stops: Vec<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
    _db: plaint_testkit::TestDb,
    prefix: String,
    idp: Issuer,
}

async fn connect(addr: std::net::SocketAddr) -> Channel {
    within(
        "connecting",
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect(),
    )
    .await
    .expect("connect")
}

fn run<S: plaint_runtime::binary::Service + 'static>(
    app: S,
) -> (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

impl Services {
    async fn start() -> Self {
        plaint_testkit::init_test_tracing();
        let nats = plaint_testkit::shared_nats_url();
        let prefix = plaint_testkit::unique_prefix();
        let db = plaint_testkit::TestDb::create().await;
        let idp = Issuer::es256();
        let mut intake = plaint_intake::Config::for_tests(&nats, &prefix);
        intake.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
        intake.access.jwt = idp.settings();
        let intake = within("intake builds", plaint_intake::Application::build(intake))
            .await
            .expect("intake builds");
        let intake_addr = intake.local_addr();
        let mut services = Self {
            intake: connect(intake_addr).await,
            router: connect(intake_addr).await,
            stops: vec![run(intake)],
            _db: db,
            prefix,
            idp,
        };
        let router = services.start_router().await;
        services.router = connect(router).await;
        services
    }

    /// Starts a router (another replica after the first) and returns its address.
    async fn start_router(&mut self) -> std::net::SocketAddr {
        let mut config = plaint_router::Config::for_tests(
            &plaint_testkit::shared_nats_url(),
            &self.prefix,
            self._db.url(),
        );
        config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
        config.access.jwt = self.idp.settings();
        let router = within("router builds", plaint_router::Application::build(config))
            .await
            .expect("router builds");
        let addr = router.local_addr();
        self.stops.push(run(router));
        addr
    }

    fn channel_for(&self, method: &Method) -> &Channel {
        if method.path.starts_with("/plaint.intake.") {
            &self.intake
        } else {
            &self.router
        }
    }

    fn keys(
        &self,
        channel: &Channel,
        bearer: &str,
    ) -> AccessClient<
        tonic::service::interceptor::InterceptedService<
            Channel,
            impl tonic::service::Interceptor + use<>,
        >,
    > {
        let header: tonic::metadata::MetadataValue<_> =
            format!("Bearer {bearer}").parse().expect("ASCII");
        AccessClient::with_interceptor(channel.clone(), move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", header.clone());
            Ok(r)
        })
    }

    async fn stop(self) {
        for (stop, task) in self.stops {
            let _ = stop.send(());
            within("a service stops", task)
                .await
                .expect("join")
                .expect("the service ran");
        }
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Creates a key with `scopes` through the API and returns its secret.
async fn create_key(services: &Services, name: &str, scopes: &[Scope]) -> String {
    services
        .keys(&services.router, plaint_testkit::admin_key())
        .create_key(apb::CreateKeyRequest {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            ttl_secs: 0,
        })
        .await
        .expect("CreateKey")
        .into_inner()
        .secret
}

fn key_id_of(secret: &str) -> String {
    plaint_access::api_key::PresentedKey::parse(secret)
        .expect("a key")
        .key_id()
        .to_string()
}

/// Waits (at most 5 s) until a call with `secret` to `method` on `channel` gets `code`.
async fn until_code(channel: &Channel, method: &Method, secret: &str, code: Code) -> Duration {
    let started = Instant::now();
    loop {
        if call(channel, method, Some(&bearer(secret))).await == code {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} never answered {code:?}",
            method.path
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls `method` with `jwt` until it gets `key` (what the right API key got),
/// for at most 5 s: a call the key admitted may still be at work (a rebuild
/// refuses a second one meanwhile). A refusal is final.
async fn same_as_key(channel: &Channel, method: &Method, jwt: &str, key: Code) -> Code {
    let started = Instant::now();
    loop {
        let code = call(channel, method, Some(&bearer(jwt))).await;
        let refused = matches!(code, Code::Unauthenticated | Code::PermissionDenied);
        if code == key || refused || started.elapsed() > Duration::from_secs(5) {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_rpc_answers_every_credential_as_the_matrix_says() {
    let services = Services::start().await;
    let methods = methods();
    let unmapped: Vec<_> = methods
        .iter()
        .filter(|m| !METHOD_SCOPES.iter().any(|(p, _)| *p == m.path))
        .map(|m| m.path.clone())
        .collect();
    assert!(
        unmapped.is_empty(),
        "RPCs without a scope in the matrix: {unmapped:?}"
    );
    assert_eq!(
        methods.len(),
        METHOD_SCOPES.len(),
        "the matrix names RPCs that do not exist"
    );

    let everything = Scope::ALL;
    let expired = create_key(&services, "expired", &everything).await;
    let revoked = create_key(&services, "revoked", &everything).await;
    let mut admin = services.keys(&services.router, plaint_testkit::admin_key());
    admin
        .expire_key(apb::ExpireKeyRequest {
            key_id: key_id_of(&expired),
            expires_at_ms: 0,
        })
        .await
        .expect("ExpireKey");
    admin
        .revoke_key(apb::RevokeKeyRequest {
            key_id: key_id_of(&revoked),
        })
        .await
        .expect("RevokeKey");
    let mut only = std::collections::HashMap::new();
    let mut all_but = std::collections::HashMap::new();
    for scope in everything {
        only.insert(scope, create_key(&services, "only", &[scope]).await);
        let others: Vec<_> = everything.into_iter().filter(|s| *s != scope).collect();
        all_but.insert(scope, create_key(&services, "all-but", &others).await);
    }
    // The intake learns of the keys from the log; wait until it has all: the
    // last one made (it keeps `complaints:write`, which the probe needs).
    let last_scope = everything.last().expect("a scope");
    assert_ne!(*last_scope, Scope::ComplaintsWrite);
    let last = all_but[last_scope].clone();
    let probe = methods
        .iter()
        .find(|m| m.path == "/plaint.intake.v1.Intake/SubmitComplaint")
        .expect("SubmitComplaint");
    until_code(&services.intake, probe, &last, Code::InvalidArgument).await;

    let unknown = NewKey::generate().expect("a key").text;
    let idp = &services.idp;
    let all_names: Vec<_> = everything.iter().map(|s| s.as_str()).collect();
    let mut claims = idp.claims("elsewhere", &all_names);
    claims.aud = "another-service".into();
    let jwt_wrong_audience = idp.mint(&claims);
    let mut claims = idp.claims("late", &all_names);
    claims.exp = plaint_testkit::jwt::now() - 3600;
    let jwt_expired = idp.mint(&claims);
    let mut cells = 0;
    let mut wrong = Vec::new();
    for method in &methods {
        let scope = METHOD_SCOPES
            .iter()
            .find(|(p, _)| *p == method.path)
            .map(|(_, s)| *s)
            .expect("mapped");
        let channel = services.channel_for(method);
        let rows: Vec<Row> = vec![
            ("no credential", None, |c| c == Code::Unauthenticated),
            ("malformed", Some("Basic dXNlcjpwYXNz".into()), |c| {
                c == Code::Unauthenticated
            }),
            ("unknown key", Some(bearer(&unknown)), |c| {
                c == Code::Unauthenticated
            }),
            ("expired key", Some(bearer(&expired)), |c| {
                c == Code::Unauthenticated
            }),
            ("revoked key", Some(bearer(&revoked)), |c| {
                c == Code::Unauthenticated
            }),
            ("wrong scope", Some(bearer(&all_but[&scope])), |c| {
                c == Code::PermissionDenied
            }),
            ("right scope", Some(bearer(&only[&scope])), |c| {
                c != Code::Unauthenticated && c != Code::PermissionDenied
            }),
            (
                "JWT wrong audience",
                Some(bearer(&jwt_wrong_audience)),
                |c| c == Code::Unauthenticated,
            ),
            ("JWT expired", Some(bearer(&jwt_expired)), |c| {
                c == Code::Unauthenticated
            }),
        ];
        let mut key = Code::Unknown;
        for (row, authorization, expected) in rows {
            let code = call(channel, method, authorization.as_deref()).await;
            cells += 1;
            if !expected(code) {
                wrong.push(format!("{} × {row}: {code:?}", method.path));
            }
            if row == "right scope" {
                key = code;
            }
        }
        // A JWT with the method's scope gets what the right key got; one
        // with every other scope is denied.
        let name = scope.as_str();
        let others: Vec<_> = all_names.iter().copied().filter(|s| *s != name).collect();
        let jwt = idp.token(&format!("only-{name}"), &[name]);
        let jwt = same_as_key(channel, method, &jwt, key).await;
        let denied = idp.token(&format!("all-but-{name}"), &others);
        let denied = call(channel, method, Some(&bearer(&denied))).await;
        cells += 2;
        if jwt != key {
            wrong.push(format!(
                "{} × JWT right scope: {jwt:?}, the key got {key:?}",
                method.path
            ));
        }
        if denied != Code::PermissionDenied {
            wrong.push(format!("{} × JWT wrong scope: {denied:?}", method.path));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!(
        "authorization matrix: {} RPCs × 11 credentials = {cells} cells",
        methods.len()
    );

    // Health stays open; reflection needs a credential of any scope.
    let health = Method {
        path: "/grpc.health.v1.Health/Check".into(),
        server_streaming: false,
    };
    assert_eq!(call(&services.router, &health, None).await, Code::Ok);
    services.stop().await;
}

#[tokio::test]
async fn a_revocation_reaches_a_second_replica_within_a_second() {
    let mut services = Services::start().await;
    let second = services.start_router().await;
    let second = connect(second).await;
    let secret = create_key(&services, "to-revoke", &[Scope::ComplaintsRead]).await;
    let stats = Method {
        path: "/plaint.router.v1.Query/GetQueueStats".into(),
        server_streaming: false,
    };
    // The second replica learns of the new key from the log.
    until_code(&second, &stats, &secret, Code::Ok).await;

    services
        .keys(&services.router, plaint_testkit::admin_key())
        .revoke_key(apb::RevokeKeyRequest {
            key_id: key_id_of(&secret),
        })
        .await
        .expect("RevokeKey");
    let took = until_code(&second, &stats, &secret, Code::Unauthenticated).await;
    assert!(
        took < Duration::from_secs(1),
        "the second replica took {took:?}"
    );
    services.stop().await;
}

#[tokio::test]
async fn every_admin_change_leaves_an_audit_entry_naming_its_caller() {
    let services = Services::start().await;
    let admin_secret = create_key(&services, "ops", &Scope::ALL).await;
    let ops = format!("key:{}", key_id_of(&admin_secret));
    let header: tonic::metadata::MetadataValue<_> = bearer(&admin_secret).parse().expect("ASCII");
    let auth = move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", header.clone());
        Ok(r)
    };
    let mut router_admin = plaint_proto::router::admin_client::AdminClient::with_interceptor(
        services.router.clone(),
        auth.clone(),
    );
    router_admin
        .set_climate(plaint_proto::router::SetClimateRequest {
            climate: plaint_proto::events::Climate::Bad as i32,
            ..Default::default()
        })
        .await
        .expect("SetClimate");
    router_admin
        .set_stance(plaint_proto::router::SetStanceRequest {
            alignment: plaint_proto::events::StanceAlignment::Misaligned as i32,
            ..Default::default()
        })
        .await
        .expect("SetStance");
    router_admin
        .publish_policy(plaint_proto::router::PublishPolicyRequest {
            policy_json: plaint_domain::RoutingPolicy::default().to_json(),
            ..Default::default()
        })
        .await
        .expect("PublishPolicy");
    let mut rebuild = router_admin
        .rebuild_projections(plaint_proto::router::RebuildProjectionsRequest::default())
        .await
        .expect("RebuildProjections")
        .into_inner();
    while let Some(progress) = within("the rebuild", rebuild.message())
        .await
        .expect("progress")
    {
        if progress.done {
            break;
        }
    }
    let mut keys = AccessClient::with_interceptor(services.router.clone(), auth);
    let made = keys
        .create_key(apb::CreateKeyRequest {
            name: "short-lived".into(),
            scopes: vec!["complaints:read".into()],
            ttl_secs: 3600,
        })
        .await
        .expect("CreateKey")
        .into_inner();
    let made_id = made.key.expect("a key").key_id;
    keys.expire_key(apb::ExpireKeyRequest {
        key_id: made_id.clone(),
        expires_at_ms: 0,
    })
    .await
    .expect("ExpireKey");
    keys.revoke_key(apb::RevokeKeyRequest {
        key_id: made_id.clone(),
    })
    .await
    .expect("RevokeKey");

    // A JWT caller is named by its subject.
    let header: tonic::metadata::MetadataValue<_> =
        bearer(&services.idp.token("ops-robot", &["settings:write"]))
            .parse()
            .expect("ASCII");
    plaint_proto::router::admin_client::AdminClient::with_interceptor(
        services.router.clone(),
        move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", header.clone());
            Ok(r)
        },
    )
    .set_climate(plaint_proto::router::SetClimateRequest {
        climate: plaint_proto::events::Climate::Good as i32,
        ..Default::default()
    })
    .await
    .expect("SetClimate with a JWT");

    let trail = keys
        .list_audit(apb::ListAuditRequest {
            after_sequence: 0,
            page_size: 0,
        })
        .await
        .expect("ListAudit")
        .into_inner()
        .entries;
    let by_ops: Vec<_> = trail.iter().filter(|e| e.actor == ops).collect();
    let actions: Vec<_> = by_ops.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "SetClimate",
            "SetStance",
            "PublishPolicy",
            "RebuildProjections",
            "CreateKey",
            "ExpireKey",
            "RevokeKey"
        ],
        "{trail:?}"
    );
    let climate = by_ops[0];
    assert_eq!(
        (climate.before.as_str(), climate.after.as_str()),
        ("\"NEUTRAL\"", "\"BAD\"")
    );
    assert_eq!(by_ops[1].after, "\"MISALIGNED\"");
    assert!(by_ops[2].after.contains("\"version\":2"), "{:?}", by_ops[2]);
    assert!(
        by_ops[4].after.contains("complaints:read"),
        "{:?}",
        by_ops[4]
    );
    assert_eq!(by_ops[5].target, made_id);
    assert_eq!(by_ops[6].after, "{\"revoked\":true}");
    assert!(
        trail
            .iter()
            .any(|e| e.actor == "jwt:ops-robot" && e.action == "SetClimate"),
        "{trail:?}"
    );
    // The bootstrap key's own changes (the ops key's creation) are in the trail too.
    assert!(
        trail
            .iter()
            .any(|e| e.actor.starts_with("bootstrap:") && e.action == "CreateKey")
    );
    services.stop().await;
}
