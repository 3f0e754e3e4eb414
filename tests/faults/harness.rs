//! The process harness for fault injection: the real `plaint-intake` and
//! `plaint-router` binaries as child processes (so they can be killed with
//! SIGKILL or stopped with SIGTERM), each test with a `nats-server` and a
//! PostgreSQL of its own ([`plaint_testkit::NatsServer`],
//! [`plaint_testkit::PgServer`]), a load generator that records every attempt
//! and acknowledgement in a [`History`], and bounded waits.
//!
//! Only processes this harness started are ever signalled, by their own pids.
//! Every guard cleans up on drop, and prints the end of the service logs when
//! the test is panicking.
//!
//! The binaries: `PLAINT_SERVICE_BIN_DIR` when set (scripts/test.sh builds
//! them and sets it); otherwise the harness runs
//! `cargo build -p plaint-intake -p plaint-router --bins` once per test
//! process (a no-op when they are fresh) and uses the target directory the
//! test binary itself runs from.

use std::fs::{self, OpenOptions};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use plaint_bus::{EventLog, Names, StreamSettings};
use plaint_client::{Authed, ClientSettings};
use plaint_domain::values::{ExternalTicketId, SourceSystem};
use plaint_domain::{ComplaintId, EventId};
use plaint_proto::events as epb;
use plaint_proto::intake::{self as ipb, intake_client::IntakeClient};
use plaint_proto::router::{admin_client::AdminClient, query_client::QueryClient};
use plaint_testkit::{NatsServer, PgServer, TlsFiles};
use tempfile::TempDir;
use tokio::task::JoinSet;
use tonic::transport::Endpoint;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

use crate::checker::{Door, History};

/// How long a service may take to start serving.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a bounded wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// Lines of a service log shown when a test fails.
const LOG_TAIL_LINES: usize = 60;
/// The intake's gRPC service name, for health checks.
pub(crate) const INTAKE_SERVICE: &str = "plaint.intake.v1.Intake";
/// The router's query service name, for health checks.
pub(crate) const QUERY_SERVICE: &str = "plaint.router.v1.Query";

// ---------------------------------------------------------------------------
// Bounded waits
// ---------------------------------------------------------------------------

/// Polls `probe` until it returns `Some`, for at most `limit`; panics naming
/// `what` when time runs out.
pub(crate) async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Awaits `f` for at most `limit`.
pub(crate) async fn within<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

// ---------------------------------------------------------------------------
// The service binaries
// ---------------------------------------------------------------------------

/// Where the service binaries are.
#[derive(Debug)]
pub(crate) struct Binaries {
    pub(crate) intake: PathBuf,
    pub(crate) router: PathBuf,
}

/// The binaries, built once per test process when `PLAINT_SERVICE_BIN_DIR` is unset.
pub(crate) fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let dir = match std::env::var_os("PLAINT_SERVICE_BIN_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => build_binaries(),
        };
        let bins = Binaries {
            intake: dir.join("plaint-intake"),
            router: dir.join("plaint-router"),
        };
        for bin in [&bins.intake, &bins.router] {
            assert!(
                bin.is_file(),
                "{} is missing: build it with `cargo build -p plaint-intake -p plaint-router`",
                bin.display()
            );
        }
        bins
    })
}

/// Runs `cargo build` for both services into the target directory this test
/// binary runs from (`<target>/<profile>/deps/faults-…`); returns `<target>/<profile>`.
fn build_binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "plaint-intake",
            "-p",
            "plaint-router",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    let mut child = cmd.stdin(Stdio::null()).spawn().expect("cargo runs");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match child.try_wait().expect("waiting for cargo") {
            Some(status) => {
                assert!(status.success(), "building the service binaries failed");
                return profile_dir;
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("building the service binaries took longer than 15 minutes");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A watch of `health_service`'s health at `service`, once it has said SERVING.
pub(crate) async fn watch_serving(
    service: &Service,
    health_service: &str,
) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let channel = service.endpoint().connect().await.expect("connect");
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: health_service.to_owned(),
        })
        .await
        .expect("Health.Watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("a status");
    assert_eq!(
        first.status,
        ServingStatus::Serving as i32,
        "{health_service}"
    );
    watch
}

/// Waits at most `limit` for the watch to report NOT_SERVING; `true` if it did.
pub(crate) async fn reports_not_serving(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    limit: Duration,
) -> bool {
    tokio::time::timeout(limit, async {
        while let Ok(Some(m)) = watch.message().await {
            if m.status == ServingStatus::NotServing as i32 {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// A service process
// ---------------------------------------------------------------------------

/// One service binary run as a child process, restartable with the same
/// environment and port. Killed on drop.
pub(crate) struct Service {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    health_service: &'static str,
    port_var: &'static str,
    addr: SocketAddr,
    /// How a client verifies the service and presents its own certificate.
    tls: ClientSettings,
    log_path: PathBuf,
    child: Option<Child>,
    /// How many times the process was started.
    pub(crate) starts: u32,
    /// How many times it was killed with SIGKILL.
    pub(crate) kills: u32,
}

impl Service {
    fn new(
        name: &'static str,
        binary: PathBuf,
        env: Vec<(String, String)>,
        health_service: &'static str,
        port_var: &'static str,
        log_dir: &Path,
        tls: ClientSettings,
    ) -> Self {
        Self {
            name,
            binary,
            env,
            health_service,
            port_var,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
            tls,
            log_path: log_dir.join(format!("{name}.log")),
            child: None,
            starts: 0,
            kills: 0,
        }
    }

    /// Another replica of this service: the same binary and environment
    /// with `extra` added, its own port and log file; not started.
    pub(crate) fn replica(&self, name: &'static str, extra: &[(&str, &str)]) -> Self {
        let mut env = self.env.clone();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let log_dir = self.log_path.parent().unwrap_or(Path::new("."));
        Self::new(
            name,
            self.binary.clone(),
            env,
            self.health_service,
            self.port_var,
            log_dir,
            self.tls.clone(),
        )
    }

    /// An endpoint for the service's address, over mutual TLS.
    pub(crate) fn endpoint(&self) -> Endpoint {
        self.tls
            .endpoint(&format!("https://{}", self.addr))
            .expect("a TLS endpoint")
    }

    /// The process id while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process and waits until its health service says SERVING;
    /// returns how long that took. A first start that fails (e.g. the port
    /// was taken in between) is retried on another port.
    pub(crate) async fn start(&mut self) -> Duration {
        let started = Instant::now();
        for attempt in 0..3 {
            self.spawn();
            match self.wait_serving(READY_TIMEOUT).await {
                Ok(()) => return started.elapsed(),
                Err(e) if attempt < 2 && self.starts == 1 && self.exited() => {
                    eprintln!(
                        "{} did not start ({e}); retrying on another port",
                        self.name
                    );
                    self.child = None;
                    self.starts = 0;
                    self.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
                }
                Err(e) => panic!(
                    "{} did not start: {e}\nend of its log:\n{}",
                    self.name,
                    self.log_tail()
                ),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the service log");
        let err = log.try_clone().expect("clone the log handle");
        let mut cmd = Command::new(&self.binary);
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(self.port_var, self.addr.to_string())
            .env(
                plaint_access::settings::ADMIN_KEY_ENV,
                plaint_testkit::admin_key(),
            )
            // The load comes from one caller, far above a fair share.
            .env("PLAINT_QUOTA_PER_SEC", "0")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.starts += 1;
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(Some(_))))
    }

    /// Waits until the health service reports SERVING.
    pub(crate) async fn wait_serving(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let endpoint = self
            .endpoint()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(2));
        loop {
            if self.exited() {
                return Err(format!("{} exited", self.name));
            }
            if let Ok(channel) = endpoint.connect().await {
                let status = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: self.health_service.to_owned(),
                    })
                    .await
                    .map(|r| r.into_inner().status);
                if status.ok() == Some(ServingStatus::Serving as i32) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("not SERVING within {limit:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILL, as a crash would, and reap it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// Sends SIGTERM (graceful shutdown) to the process.
    pub(crate) fn terminate(&self) {
        let pid = self.pid().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits at most `limit` for the process to exit; its status and how long
    /// that took, or `None` (it still runs).
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Resident set size of the process, KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The most the process's resident set size has ever been, KiB.
    pub(crate) fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The whole log.
    pub(crate) fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// The end of the log.
    pub(crate) fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Asserts the log holds none of `texts` (customers' ids and words).
    pub(crate) fn assert_log_lacks(&self, texts: &[&str]) {
        let log = self.log_text();
        assert!(!log.is_empty(), "{}: no log to search", self.name);
        for text in texts {
            let found: Vec<&str> = log.lines().filter(|l| l.contains(text)).take(3).collect();
            assert!(
                found.is_empty(),
                "{}'s log holds personal data ({text:?}):\n{}",
                self.name,
                found.join("\n")
            );
        }
    }

    /// Asserts the log holds no panic.
    pub(crate) fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(
            !log.contains("panicked"),
            "{} panicked:\n{}",
            self.name,
            log.lines()
                .filter(|l| l.contains("panicked"))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} ({}), end of its log:\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What customers said in the load, as the load phrases it: none of it may
/// reach a service's log.
pub(crate) const LOAD_PERSONAL_TEXTS: &[&str] =
    &[": it broke.", "Helpdesk ticket ", "hd-cust-", "\"cust-"];

/// Reads the whole log opened and returns the sequences of complaint
/// events whose personal fields did not open (their key missing) or that
/// could not be decoded: with keys stored before the first event sealed
/// with them, there are none, whatever crashed.
pub(crate) async fn unreadable_events(log: &EventLog) -> (usize, Vec<u64>) {
    use plaint_domain::event::{ComplaintEvent, EventPayload};
    let last = log.last_sequence().await.expect("the log's last sequence");
    let mut tail = log.tail(1).await.expect("a tail");
    let (mut received, mut unreadable) = (0, Vec::new());
    let mut seen = 0;
    while seen < last {
        let batch = within(
            "reading the log",
            Duration::from_secs(30),
            tail.next_batch(1000, Duration::from_millis(20)),
        )
        .await
        .expect("the tail goes on")
        .expect("a batch");
        for item in batch {
            seen = item.sequence;
            match &item.event {
                Ok(stored) => {
                    if let EventPayload::Complaint(ComplaintEvent::Received(f)) =
                        &stored.envelope.payload
                    {
                        received += 1;
                        if f.summary.as_str() == plaint_domain::personal::ERASED {
                            unreadable.push(item.sequence);
                        }
                    }
                }
                Err(_) => unreadable.push(item.sequence),
            }
        }
    }
    (received, unreadable)
}

// ---------------------------------------------------------------------------
// The whole system
// ---------------------------------------------------------------------------

/// How a [`System`] is set up.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Deduplication window of the streams, seconds.
    pub(crate) duplicate_window_secs: u64,
    /// Extra environment for both services.
    pub(crate) env: Vec<(String, String)>,
    /// nats-server configuration text, if the defaults will not do.
    pub(crate) nats_config: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duplicate_window_secs: 120,
            env: Vec::new(),
            nats_config: None,
        }
    }
}

/// Where the service logs are: removed with the system, or kept
/// (`PLAINT_FAULTS_KEEP_LOGS=1`).
enum Logs {
    Temporary(TempDir),
    Kept(PathBuf),
}

impl Logs {
    fn path(&self) -> &Path {
        match self {
            Logs::Temporary(d) => d.path(),
            Logs::Kept(p) => p,
        }
    }
}

/// A test's own NATS and PostgreSQL, the two services as processes, and the
/// test's own handles on the log.
pub(crate) struct System {
    // Field order is drop order: the services go before the servers they use.
    pub(crate) intake: Service,
    pub(crate) router: Service,
    pub(crate) nats: NatsServer,
    pub(crate) pg: PgServer,
    pub(crate) prefix: String,
    pub(crate) names: Names,
    /// The test's view of the log (its own NATS connection, reconnecting).
    pub(crate) log: EventLog,
    pub(crate) nats_client: async_nats::Client,
    /// The services' certificates, read again at every restart.
    _tls: TlsFiles,
    _dir: Logs,
}

impl System {
    /// Starts NATS, PostgreSQL, intake and the router, and waits until both
    /// services serve.
    pub(crate) async fn start(options: Options) -> Self {
        plaint_testkit::init_test_tracing();
        let bins = binaries();
        let dir = tempfile::Builder::new()
            .prefix("plaint-faults-")
            .tempdir()
            .expect("a temporary directory");
        let dir = if std::env::var_os("PLAINT_FAULTS_KEEP_LOGS").is_some() {
            let kept = dir.keep();
            eprintln!("service logs kept in {}", kept.display());
            Logs::Kept(kept)
        } else {
            Logs::Temporary(dir)
        };
        let nats = NatsServer::start_with_config(options.nats_config);
        let pg = tokio::task::spawn_blocking(PgServer::start)
            .await
            .expect("PgServer::start");
        let prefix = plaint_testkit::unique_prefix();
        let stream = format!("{}_LOG", prefix.to_uppercase());
        let names = Names::new(&prefix, &stream).expect("names");
        // The services run as deployed: mutual TLS, certificates from a CA
        // made for this system.
        let tls = TlsFiles::new();
        let client_tls = ClientSettings {
            tls_ca_file: Some(tls.files.ca_cert.clone()),
            tls_client_cert_file: Some(tls.files.client_cert.clone()),
            tls_client_key_file: Some(tls.files.client_key.clone()),
            ..ClientSettings::default()
        };
        let personal = plaint_bus::PersonalDataSettings::for_tests(&prefix).expect("test secrets");
        let mut common = vec![
            (
                "PLAINT_MASTER_KEY_FILE".to_owned(),
                path_text(&personal.master_key_file),
            ),
            (
                "PLAINT_PSEUDONYM_SECRET_FILE".to_owned(),
                path_text(&personal.pseudonym_secret_file),
            ),
            (
                "PLAINT_TLS_CERT_FILE".to_owned(),
                path_text(&tls.files.server_cert),
            ),
            (
                "PLAINT_TLS_KEY_FILE".to_owned(),
                path_text(&tls.files.server_key),
            ),
            (
                "PLAINT_TLS_CLIENT_CA_FILE".to_owned(),
                path_text(&tls.files.ca_cert),
            ),
            ("NATS_URL".to_owned(), nats.url()),
            ("PLAINT_PREFIX".to_owned(), prefix.clone()),
            ("PLAINT_STREAM".to_owned(), stream.clone()),
            (
                "PLAINT_DUPLICATE_WINDOW_SECS".to_owned(),
                options.duplicate_window_secs.to_string(),
            ),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
            ("INTAKE_METRICS_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("ROUTER_METRICS_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ];
        common.extend(options.env.iter().cloned());
        let mut intake = Service::new(
            "intake",
            bins.intake.clone(),
            common.clone(),
            INTAKE_SERVICE,
            "INTAKE_GRPC_ADDR",
            dir.path(),
            client_tls.clone(),
        );
        let mut router_env = common;
        router_env.push(("DATABASE_URL".to_owned(), pg.url()));
        let mut router = Service::new(
            "router",
            bins.router.clone(),
            router_env,
            QUERY_SERVICE,
            "ROUTER_GRPC_ADDR",
            dir.path(),
            client_tls,
        );
        // Intake first: it provisions the streams with the test's settings.
        intake.start().await;
        router.start().await;
        let nats_client = plaint_bus::connect(&nats.url(), "plaint-faults")
            .await
            .expect("connect to NATS");
        let settings = StreamSettings {
            duplicate_window: Duration::from_secs(options.duplicate_window_secs),
            ..StreamSettings::default()
        };
        // The checker reads what was stored, personal fields included.
        let log = EventLog::open(nats_client.clone(), names.clone(), &settings, &personal)
            .await
            .expect("open the log")
            .reading(plaint_bus::Reading::Opened);
        Self {
            intake,
            router,
            nats,
            pg,
            prefix,
            names,
            log,
            nats_client,
            _tls: tls,
            _dir: dir,
        }
    }

    /// A lazily connecting channel to `service` (reconnects after restarts).
    fn channel(service: &Service) -> Authed {
        plaint_testkit::authed(
            service
                .endpoint()
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(60))
                .connect_lazy(),
        )
    }

    /// An intake client.
    pub(crate) fn intake_client(&self) -> IntakeClient<Authed> {
        IntakeClient::new(Self::channel(&self.intake))
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20)
    }

    /// A channel to intake, for raw calls.
    pub(crate) fn intake_channel(&self) -> Authed {
        Self::channel(&self.intake)
    }

    /// A router query client.
    pub(crate) fn query_client(&self) -> QueryClient<Authed> {
        QueryClient::new(Self::channel(&self.router))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(16 << 20)
    }

    /// A query client of `router`, any replica of it.
    pub(crate) fn query_client_of(router: &Service) -> QueryClient<Authed> {
        QueryClient::new(Self::channel(router)).max_decoding_message_size(64 << 20)
    }

    /// Who holds lease `name` (the routers' replica names), if anyone.
    pub(crate) async fn lease_holder(&self, name: &str) -> Option<String> {
        let bucket = self.names.lease_bucket();
        let store = self.js().get_key_value(&bucket).await.ok()?;
        let entry = store.entry(name).await.ok()??;
        (entry.operation == jetstream::kv::Operation::Put)
            .then(|| String::from_utf8_lossy(&entry.value).into_owned())
    }

    /// A router admin client.
    pub(crate) fn admin_client(&self) -> AdminClient<Authed> {
        AdminClient::new(Self::channel(&self.router)).max_decoding_message_size(64 << 20)
    }

    /// A JetStream context on the test's connection.
    pub(crate) fn js(&self) -> jetstream::Context {
        jetstream::new(self.nats_client.clone())
    }

    /// The subject the helpdesk integration `kind` publishes to; intake
    /// takes it for the source system the integration speaks for.
    pub(crate) fn inbound_subject(&self, kind: &str) -> String {
        format!("{}.helpdesk.inbound.{kind}", self.prefix)
    }

    /// The router's durable consumer name.
    pub(crate) fn router_consumer(&self) -> String {
        self.names.consumer("router")
    }

    /// Intake's helpdesk consumer name.
    pub(crate) fn helpdesk_consumer(&self) -> String {
        format!("{}_helpdesk", self.names.stream())
    }

    /// Sends a complaint and waits (bounded) until it is routed and projected;
    /// returns how long that took. Retries the submit while intake answers
    /// UNAVAILABLE. Used to measure liveness after a fault.
    pub(crate) async fn probe(&self, history: &History, ticket: &str, limit: Duration) -> Duration {
        self.probe_via(self.query_client(), history, ticket, limit)
            .await
    }

    /// [`Self::probe`], looking for the complaint through `query` (a
    /// router replica of the test's choosing).
    pub(crate) async fn probe_via(
        &self,
        mut query: QueryClient<Authed>,
        history: &History,
        ticket: &str,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        let mut client = self.intake_client();
        let request = complaint("probe", ticket, 0);
        history.attempt_submit(ticket_id("probe", ticket), Door::Grpc);
        let written = eventually(
            &format!("probe {ticket} accepted"),
            limit,
            async || match client.submit_complaint(request.clone()).await {
                Ok(r) => Some(r.into_inner()),
                Err(s) if retryable(&s) => None,
                Err(s) => panic!("probe {ticket} refused: {s:?}"),
            },
        )
        .await;
        history.ack_submit(ticket_id("probe", ticket), written.sequence);
        let accepted = started.elapsed();
        let id = written.complaint_id;
        let left = limit.saturating_sub(started.elapsed());
        eventually(
            &format!("probe {ticket} routed and projected"),
            left,
            async || {
                let r = query
                    .get_complaint(plaint_proto::router::GetComplaintRequest {
                        complaint_id: id.clone(),
                        consistency: None,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                (!r.decisions.is_empty()).then_some(())
            },
        )
        .await;
        eprintln!(
            "probe {ticket}: accepted after {accepted:?}, routed and projected after {:?}",
            started.elapsed()
        );
        started.elapsed()
    }

    /// Publishes one helpdesk submit and waits (bounded) until intake stored
    /// it in the log; returns how long that took.
    pub(crate) async fn probe_helpdesk(
        &self,
        history: &History,
        ticket: &str,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        history.attempt_submit(ticket_id("probe-hd", ticket), Door::Helpdesk);
        let js = self.js();
        let subject = self.inbound_subject("probe-hd");
        let payload = Bytes::from(helpdesk_json("probe-hd", ticket, 0));
        eventually(
            &format!("helpdesk probe {ticket} published"),
            limit,
            async || {
                js.publish(subject.clone(), payload.clone())
                    .await
                    .ok()?
                    .await
                    .ok()
            },
        )
        .await;
        let id = ticket_id("probe-hd", ticket);
        history.ack_submit(id, 0);
        let subject = self.names.complaint(&id);
        let left = limit.saturating_sub(started.elapsed());
        eventually(
            &format!("helpdesk probe {ticket} stored"),
            left,
            async || self.log.first_on_subject(&subject).await.ok()?.map(|_| ()),
        )
        .await;
        started.elapsed()
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// The id intake gives the complaint `source` knows as `ticket`.
pub(crate) fn ticket_id(source: &str, ticket: &str) -> ComplaintId {
    ComplaintId::for_ticket(
        &SourceSystem::parse(source).expect("valid source system"),
        &ExternalTicketId::parse(ticket).expect("valid ticket id"),
    )
}

/// The event id intake derives for a follow-up sent with `request_id`.
pub(crate) fn follow_up_event_id(request_id: Uuid) -> EventId {
    EventId::derived(request_id, "record_follow_up", 0)
}

const CHANNELS: [epb::Channel; 6] = [
    epb::Channel::Email,
    epb::Channel::PublicSocial,
    epb::Channel::Phone,
    epb::Channel::Chat,
    epb::Channel::WebForm,
    epb::Channel::PrivateSocial,
];
const CATEGORIES: [epb::Category; 6] = [
    epb::Category::ProductDefect,
    epb::Category::Billing,
    epb::Category::Delivery,
    epb::Category::Service,
    epb::Category::Return,
    epb::Category::RepairRequest,
];

/// A valid complaint, varied by `n` (channel, category, reach, customer) so
/// that every route is taken now and then.
pub(crate) fn complaint(source: &str, ticket: &str, n: u64) -> ipb::SubmitComplaintRequest {
    let i = n as usize;
    ipb::SubmitComplaintRequest {
        source_system: source.to_owned(),
        external_ticket_id: ticket.to_owned(),
        customer: Some(epb::Customer {
            customer_id: format!("cust-{}", n % 997),
            segment: ["consumer", "business", "vip"][i % 3].to_owned(),
            tier: [
                epb::CustomerTier::Standard,
                epb::CustomerTier::Silver,
                epb::CustomerTier::Gold,
                epb::CustomerTier::Platinum,
            ][i % 4] as i32,
            lifetime_value_cents: i64::try_from(n % 50).unwrap_or(0) * 100_000,
            churn_risk_pct: u32::try_from(n % 101).unwrap_or(0),
            customer_ref: String::new(),
        }),
        channel: CHANNELS[i % CHANNELS.len()] as i32,
        category: CATEGORIES[(i / 6) % CATEGORIES.len()] as i32,
        visibility: Some(epb::Visibility {
            audience_reach: [0, 500, 20_000, 2_000_000][(i / 3) % 4],
            shares: [0, 150, 12_000][(i / 5) % 3],
            media_attention: i.is_multiple_of(97),
        }),
        product_idea: i.is_multiple_of(211),
        item_sku: format!("SKU-{}", n % 31),
        summary: format!("Complaint number {n}: it broke."),
        occurred_at_ms: 0,
    }
}

/// A valid helpdesk submit in the JSON format.
pub(crate) fn helpdesk_json(source: &str, ticket: &str, n: u64) -> String {
    let channel = ["EMAIL", "PUBLIC_SOCIAL", "PHONE", "CHAT"][(n % 4) as usize];
    let category = ["PRODUCT_DEFECT", "BILLING", "SERVICE", "RETURN"][((n / 4) % 4) as usize];
    format!(
        r#"{{"type":"submit","source_system":"{source}","external_ticket_id":"{ticket}",
            "customer":{{"customer_id":"hd-cust-{c}","segment":"consumer","tier":"SILVER"}},
            "channel":"{channel}","category":"{category}",
            "visibility":{{"audience_reach":{reach},"shares":0,"media_attention":false}},
            "summary":"Helpdesk ticket {n}."}}"#,
        c = n % 389,
        reach = (n % 5) * 4000,
    )
}

/// A helpdesk follow-up in the JSON format, idempotent by `request_id`.
pub(crate) fn helpdesk_follow_up_json(id: &ComplaintId, request_id: Uuid, text: &str) -> String {
    format!(
        r#"{{"type":"follow_up","complaint_id":"{id}","request_id":"{request_id}","text":"{text}"}}"#
    )
}

/// Publishes a follow-up on `id` with no request id on the helpdesk door
/// `inbound` until the stream acknowledges it (or `deadline` passes: then
/// `false`); `named` ones carry a `Nats-Msg-Id`. The checker knows it by
/// its `text`.
pub(crate) async fn publish_follow_up(
    js: &jetstream::Context,
    inbound: &str,
    history: &History,
    id: ComplaintId,
    text: &str,
    named: bool,
    deadline: Instant,
) -> bool {
    let payload = Bytes::from(format!(
        r#"{{"type":"follow_up","complaint_id":"{id}","text":"{text}"}}"#
    ));
    let mut headers = async_nats::HeaderMap::new();
    if named {
        let message_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, text.as_bytes());
        headers.insert("Nats-Msg-Id", message_id.to_string().as_str());
    }
    loop {
        history.publish_helpdesk_command(text, id, named);
        let sent = async {
            js.publish_with_headers(inbound.to_owned(), headers.clone(), payload.clone())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match sent {
            Ok(_) => {
                history.ack_helpdesk_command(text);
                return true;
            }
            Err(_) => history.error("PublishFailed"),
        }
        if Instant::now() > deadline {
            return false;
        }
        history.retry();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a client should retry a call that ended with `status` (with the
/// same ids): the service or the log was unreachable, or the call was cut.
/// A cut connection can come back as INTERNAL: tonic reports a request that
/// raced a stopping server's GOAWAY as an HTTP/2 error with that code, from
/// the transport rather than the service.
pub(crate) fn retryable(status: &Status) -> bool {
    use std::error::Error as _;
    let from_transport = status
        .source()
        .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some());
    from_transport
        || matches!(
            status.code(),
            Code::Unavailable
                | Code::Unknown
                | Code::Cancelled
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::ResourceExhausted
        )
}

/// A short name for a status code, for histograms.
pub(crate) fn code_name(status: &Status) -> String {
    format!("{:?}", status.code())
}

// ---------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------

/// What a [`Load`] sends.
#[derive(Debug, Clone)]
pub(crate) struct LoadSpec {
    /// Complaints submitted over gRPC.
    pub(crate) grpc: u64,
    /// Complaints published as helpdesk messages (JSON).
    pub(crate) helpdesk: u64,
    /// Follow-ups over gRPC with a request id, on complaints already acknowledged.
    pub(crate) follow_ups: u64,
    /// Follow-ups published on the helpdesk door without a request id, on
    /// complaints already acknowledged; every other one names its message
    /// (`Nats-Msg-Id`).
    pub(crate) helpdesk_follow_ups: u64,
    /// Operations per second, all kinds together.
    pub(crate) rate_per_sec: u64,
    /// Concurrent gRPC callers.
    pub(crate) workers: usize,
    /// How long one operation may keep retrying before it is given up.
    pub(crate) give_up_after: Duration,
    /// Ticket prefix, so several loads in one test do not collide.
    pub(crate) tag: String,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            grpc: 1000,
            helpdesk: 0,
            follow_ups: 0,
            helpdesk_follow_ups: 0,
            rate_per_sec: 200,
            workers: 8,
            give_up_after: Duration::from_secs(90),
            tag: "L".to_owned(),
        }
    }
}

/// The source system of complaints submitted over gRPC by a load.
pub(crate) const GRPC_SOURCE: &str = "grpc-load";
/// The source system of complaints published on the helpdesk door by a load.
pub(crate) const HELPDESK_SOURCE: &str = "helpdesk-load";

#[derive(Debug, Clone)]
enum Job {
    Submit(u64),
    Helpdesk(u64),
    FollowUp(u64),
    HelpdeskFollowUp(u64),
}

/// A load running in the background; [`finish`](Self::finish) waits for it.
pub(crate) struct Load {
    task: tokio::task::JoinHandle<LoadStats>,
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadStats {
    /// Operations issued.
    pub(crate) issued: u64,
    /// Wall time from the first issue to the last answer.
    pub(crate) elapsed: Duration,
    /// Operations given up after `give_up_after` of retries.
    pub(crate) given_up: u64,
}

impl Load {
    /// Starts sending `spec` through `system`'s services, recording into `history`.
    pub(crate) fn start(system: &System, spec: LoadSpec, history: Arc<History>) -> Self {
        let client = system.intake_client();
        let js = system.js();
        // Each integration's subject is added per message (see `run_job`).
        let inbound = system.inbound_subject("");
        let task = tokio::spawn(run_load(client, js, inbound, spec, history));
        Self { task }
    }

    /// Waits (at most `limit`) until every operation was answered or given up.
    pub(crate) async fn finish(self, limit: Duration) -> LoadStats {
        within("the load to finish", limit, self.task)
            .await
            .expect("the load task panicked")
    }
}

async fn run_load(
    client: IntakeClient<Authed>,
    js: jetstream::Context,
    inbound: String,
    spec: LoadSpec,
    history: Arc<History>,
) -> LoadStats {
    let started = Instant::now();
    // Interleave the kinds evenly over the run.
    let total = spec.grpc + spec.helpdesk + spec.follow_ups + spec.helpdesk_follow_ups;
    let mut jobs = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let (mut g, mut h, mut f, mut hf) = (0, 0, 0, 0);
    for k in 0..total {
        // Bresenham-style: each kind gets its share of every prefix.
        let want_h = (k + 1) * spec.helpdesk / total.max(1);
        let want_f = (k + 1) * spec.follow_ups / total.max(1);
        let want_hf = (k + 1) * spec.helpdesk_follow_ups / total.max(1);
        if h < want_h {
            jobs.push(Job::Helpdesk(h));
            h += 1;
        } else if f < want_f && f < g {
            jobs.push(Job::FollowUp(f));
            f += 1;
        } else if hf < want_hf && hf < g {
            jobs.push(Job::HelpdeskFollowUp(hf));
            hf += 1;
        } else if g < spec.grpc {
            jobs.push(Job::Submit(g));
            g += 1;
        } else if f < spec.follow_ups {
            jobs.push(Job::FollowUp(f));
            f += 1;
        } else if hf < spec.helpdesk_follow_ups {
            jobs.push(Job::HelpdeskFollowUp(hf));
            hf += 1;
        } else {
            jobs.push(Job::Helpdesk(h));
            h += 1;
        }
    }
    let (tx, rx) = async_channel(spec.workers * 4);
    let mut workers = JoinSet::new();
    for _ in 0..spec.workers.max(1) {
        let rx = rx.clone();
        let client = client.clone();
        let js = js.clone();
        let inbound = inbound.clone();
        let history = history.clone();
        let spec = spec.clone();
        workers.spawn(async move {
            let mut given_up = 0;
            while let Ok(job) = rx.recv().await {
                if !run_job(&client, &js, &inbound, &spec, &history, job).await {
                    given_up += 1;
                }
            }
            given_up
        });
    }
    drop(rx);
    let period = Duration::from_secs_f64(1.0 / spec.rate_per_sec.max(1) as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut issued = 0;
    for job in jobs {
        ticker.tick().await;
        if tx.send(job).await.is_err() {
            break;
        }
        issued += 1;
    }
    drop(tx);
    let mut given_up = 0;
    while let Some(n) = workers.join_next().await {
        given_up += n.expect("a load worker panicked");
    }
    LoadStats {
        issued,
        elapsed: started.elapsed(),
        given_up,
    }
}

/// A multi-consumer channel from a tokio mutex around an mpsc receiver.
fn async_channel<T: Send + 'static>(
    capacity: usize,
) -> (tokio::sync::mpsc::Sender<T>, SharedReceiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    (tx, SharedReceiver(Arc::new(tokio::sync::Mutex::new(rx))))
}

struct SharedReceiver<T>(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>);

impl<T> Clone for SharedReceiver<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> SharedReceiver<T> {
    async fn recv(&self) -> Result<T, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}

/// Runs one job to an answer, retrying with the same ids; `false` when given up.
async fn run_job(
    client: &IntakeClient<Authed>,
    js: &jetstream::Context,
    inbound: &str,
    spec: &LoadSpec,
    history: &History,
    job: Job,
) -> bool {
    let deadline = Instant::now() + spec.give_up_after;
    let mut client = client.clone();
    match job {
        Job::Submit(n) => {
            let ticket = format!("{}-{n}", spec.tag);
            let id = ticket_id(GRPC_SOURCE, &ticket);
            let request = complaint(GRPC_SOURCE, &ticket, n);
            history.attempt_submit(id, Door::Grpc);
            loop {
                match client.submit_complaint(request.clone()).await {
                    Ok(w) => {
                        let w = w.into_inner();
                        assert_eq!(
                            w.complaint_id,
                            id.to_string(),
                            "the id derives from the ticket"
                        );
                        history.ack_submit(id, w.sequence);
                        return true;
                    }
                    Err(s) => {
                        history.error(&code_name(&s));
                        if !retryable(&s) {
                            history.refused(&format!("submit {ticket}: {s:?}"));
                            return true;
                        }
                    }
                }
                if Instant::now() > deadline {
                    return false;
                }
                history.retry();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Job::FollowUp(n) => {
            // On a complaint submitted earlier by this load: wait until it is acknowledged.
            let ticket = format!("{}-{n}", spec.tag);
            let id = ticket_id(GRPC_SOURCE, &ticket);
            while !history.is_acked(&id) {
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let request_id = Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("follow-up {ticket}").as_bytes(),
            );
            let event_id = follow_up_event_id(request_id);
            let request = ipb::RecordFollowUpRequest {
                header: Some(ipb::CommandHeader {
                    complaint_id: id.to_string(),
                    request_id: request_id.to_string(),
                }),
                text: format!("Any news on {ticket}?"),
            };
            history.attempt_command(event_id, id);
            loop {
                match client.record_follow_up(request.clone()).await {
                    Ok(_) => {
                        history.ack_command(event_id);
                        return true;
                    }
                    Err(s) => {
                        history.error(&code_name(&s));
                        if !retryable(&s) {
                            history.refused(&format!("follow-up {ticket}: {s:?}"));
                            return true;
                        }
                    }
                }
                if Instant::now() > deadline {
                    return false;
                }
                history.retry();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Job::HelpdeskFollowUp(n) => {
            let ticket = format!("{}-{n}", spec.tag);
            let id = ticket_id(GRPC_SOURCE, &ticket);
            while !history.is_acked(&id) {
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let text = format!("Helpdesk follow-up {n} on {ticket}.");
            publish_follow_up(
                js,
                &format!("{inbound}{GRPC_SOURCE}"),
                history,
                id,
                &text,
                n.is_multiple_of(2),
                deadline,
            )
            .await
        }
        Job::Helpdesk(n) => {
            let ticket = format!("{}-{n}", spec.tag);
            let id = ticket_id(HELPDESK_SOURCE, &ticket);
            let payload = Bytes::from(helpdesk_json(HELPDESK_SOURCE, &ticket, n));
            // The message id makes a republish after a lost PubAck a duplicate.
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("hd-{id}").as_str());
            history.attempt_submit(id, Door::Helpdesk);
            let subject = format!("{inbound}{HELPDESK_SOURCE}");
            loop {
                let sent = async {
                    js.publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                        .await
                        .map_err(|e| e.to_string())?
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                match sent {
                    Ok(_) => {
                        history.ack_submit(id, 0);
                        return true;
                    }
                    Err(_) => history.error("PublishFailed"),
                }
                if Instant::now() > deadline {
                    return false;
                }
                history.retry();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
