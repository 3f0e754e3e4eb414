//! Part 2: the system — both services as separate processes with their real
//! configuration, driven over gRPC, observed through the log, the projection
//! and `/proc`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use plaint_access::api_key::NewKey;
use plaint_access::settings::{ADMIN_KEY_ENV, KeyText};
use plaint_bus::{EventLog, Names, StreamSettings};
use plaint_client::{Authed, Bearer, ClientSettings};
use plaint_proto::events::Route;
use plaint_proto::intake::SubmitComplaintRequest;
use plaint_proto::intake::intake_client::IntakeClient;
use plaint_proto::router::admin_client::AdminClient;
use plaint_proto::router::query_client::QueryClient;
use plaint_proto::router::{
    Consistency, GetQueueStatsRequest, ListComplaintsRequest, RebuildProjectionsRequest,
    WatchComplaintsRequest,
};
use tokio::task::JoinSet;
use tonic::transport::Endpoint;

use crate::generate::generate;
use crate::observe::{Probe, ProbeSample};
use crate::procs::{self, Proc, Usage, free_port};
use crate::stats::{Latency, ms};

/// Milliseconds since the Unix epoch, as the services stamp events.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How long the projection may take to catch up after a phase.
const CATCH_UP: Duration = Duration::from_secs(90);
/// Interval of the lag sampler.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Everything the run started, and how to reach it.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) dir: PathBuf,
    bin_dir: PathBuf,
    nats_url: String,
    prefix: String,
    stream: String,
    database_url: String,
    intake_port: u16,
    router_port: u16,
    /// Where the services serve `/metrics` (plain HTTP on loopback).
    intake_metrics_port: u16,
    router_metrics_port: u16,
    /// The run's bootstrap admin key: the services take it from their
    /// environment, the driver presents it.
    admin_key: Bearer,
    admin_key_text: KeyText,
    /// How the driver reaches the services: over mutual TLS with the run's
    /// own CA, or plaintext.
    client: ClientSettings,
    /// The services' transport settings.
    transport_env: Vec<(&'static str, String)>,
    pub(crate) intake: Option<Proc>,
    pub(crate) router: Option<Proc>,
}

impl Services {
    pub(crate) fn new(
        dir: PathBuf,
        bin_dir: PathBuf,
        nats_url: String,
        prefix: String,
        database_url: String,
        tls: bool,
    ) -> anyhow::Result<Self> {
        let key = NewKey::generate().context("cannot make the run's admin key")?;
        let (client, transport_env) = if tls {
            transport_tls(&dir.join("tls"))?
        } else {
            (
                ClientSettings::default(),
                vec![("PLAINT_INSECURE_PLAINTEXT", "true".to_owned())],
            )
        };
        Ok(Self {
            client,
            transport_env,
            admin_key: Bearer::token(&key.text)?,
            admin_key_text: KeyText::new(key.text),
            dir,
            bin_dir,
            nats_url,
            stream: format!("{}_LOG", prefix.to_uppercase()),
            prefix,
            database_url,
            intake_port: free_port()?,
            router_port: free_port()?,
            intake_metrics_port: free_port()?,
            router_metrics_port: free_port()?,
            intake: None,
            router: None,
        })
    }

    /// The service on `port`, over TLS when the run uses it.
    fn endpoint(&self, port: u16) -> anyhow::Result<Endpoint> {
        let scheme = if self.transport_env.iter().any(|(k, _)| *k == CERT_ENV) {
            "https"
        } else {
            "http"
        };
        self.client
            .endpoint(&format!("{scheme}://127.0.0.1:{port}"))
    }

    /// A channel to the service on `port` that presents the run's admin key.
    async fn authed(&self, port: u16) -> anyhow::Result<Authed> {
        Ok(plaint_client::authed(
            procs::connect(self.endpoint(port)?).await?,
            self.admin_key.clone(),
        ))
    }

    /// A channel to the router whose calls may take up to `timeout`: a
    /// policy simulation over a long history outlasts the usual limit.
    pub(crate) async fn router_long(&self, timeout: Duration) -> anyhow::Result<Authed> {
        Ok(plaint_client::authed(
            procs::connect_with_timeout(self.endpoint(self.router_port)?, timeout).await?,
            self.admin_key.clone(),
        ))
    }

    /// The ports of intake's and the router's `/metrics`.
    pub(crate) fn metrics_ports(&self) -> (u16, u16) {
        (self.intake_metrics_port, self.router_metrics_port)
    }

    /// The subject prefix of the run.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The event log's stream of the run.
    pub(crate) fn stream(&self) -> &str {
        &self.stream
    }

    /// The run's secret files for personal data.
    pub(crate) fn personal(&self) -> anyhow::Result<plaint_bus::PersonalDataSettings> {
        Ok(plaint_bus::PersonalDataSettings::for_tests(&self.prefix)?)
    }

    fn common_env(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let personal = self.personal()?;
        let path = |p: &std::path::Path| p.display().to_string();
        let mut env = vec![
            ("PLAINT_MASTER_KEY_FILE", path(&personal.master_key_file)),
            (
                "PLAINT_PSEUDONYM_SECRET_FILE",
                path(&personal.pseudonym_secret_file),
            ),
            ("NATS_URL", self.nats_url.clone()),
            ("PLAINT_PREFIX", self.prefix.clone()),
            ("PLAINT_STREAM", self.stream.clone()),
            ("PLAINT_STREAM_REPLICAS", "1".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            (ADMIN_KEY_ENV, self.admin_key_text.expose().to_owned()),
            // The bench is one caller offering the whole load: it measures
            // the system, not the quotas that would hold such a caller back.
            ("PLAINT_QUOTA_PER_SEC", "0".to_owned()),
            ("PLAINT_MAX_CALLS_PER_CALLER", "0".to_owned()),
            ("PLAINT_MAX_CALLS", "0".to_owned()),
        ];
        env.extend(self.transport_env.iter().cloned());
        Ok(env)
    }

    fn binary(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.bin_dir.join(name);
        if !path.is_file() {
            bail!(
                "{} not found: build it first (cargo build --release -p {name}) or pass --bin-dir",
                path.display()
            );
        }
        Ok(path)
    }

    pub(crate) async fn start_intake(&mut self) -> anyhow::Result<()> {
        let mut env = self.common_env()?;
        env.push((
            "INTAKE_GRPC_ADDR",
            format!("127.0.0.1:{}", self.intake_port),
        ));
        env.push((
            "INTAKE_METRICS_ADDR",
            format!("127.0.0.1:{}", self.intake_metrics_port),
        ));
        let bin = self.binary("plaint-intake")?;
        let mut proc = Proc::spawn("plaint-intake", &bin, &[], &env, &self.dir)?;
        procs::wait_serving(&mut proc, self.endpoint(self.intake_port)?).await?;
        self.intake = Some(proc);
        Ok(())
    }

    /// Starts the router; returns when it was spawned (it works before it
    /// reports SERVING, which this also waits for).
    pub(crate) async fn start_router(&mut self) -> anyhow::Result<Instant> {
        let mut env = self.common_env()?;
        env.push((
            "ROUTER_GRPC_ADDR",
            format!("127.0.0.1:{}", self.router_port),
        ));
        env.push((
            "ROUTER_METRICS_ADDR",
            format!("127.0.0.1:{}", self.router_metrics_port),
        ));
        env.push(("DATABASE_URL", self.database_url.clone()));
        let bin = self.binary("plaint-router")?;
        let spawned = Instant::now();
        let mut proc = Proc::spawn("plaint-router", &bin, &[], &env, &self.dir)?;
        procs::wait_serving(&mut proc, self.endpoint(self.router_port)?).await?;
        self.router = Some(proc);
        Ok(spawned)
    }

    pub(crate) async fn stop_all(&mut self) {
        for proc in [self.intake.take(), self.router.take()]
            .into_iter()
            .flatten()
        {
            let name = proc.name;
            if let Err(e) = proc.stop().await {
                eprintln!("  warning: stopping {name}: {e:#}");
            }
        }
    }

    fn usage(&self) -> (Usage, Usage) {
        (
            self.intake.as_ref().map(Proc::usage).unwrap_or_default(),
            self.router.as_ref().map(Proc::usage).unwrap_or_default(),
        )
    }

    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        for proc in [self.intake.as_mut(), self.router.as_mut()]
            .into_iter()
            .flatten()
        {
            proc.check_alive()?;
        }
        Ok(())
    }
}

const CERT_ENV: &str = "PLAINT_TLS_CERT_FILE";

/// A CA of the run's own in `dir`: the services serve its server certificate
/// and require client certificates (mutual TLS, as `scripts/demo.sh` runs
/// them); the driver trusts the CA and presents its client certificate.
fn transport_tls(
    dir: &std::path::Path,
) -> anyhow::Result<(ClientSettings, Vec<(&'static str, String)>)> {
    let files = plaint_certs::LocalSet::new(&[])?.write(dir, false)?;
    let path = |p: &std::path::Path| p.display().to_string();
    let env = vec![
        (CERT_ENV, path(&files.server_cert)),
        ("PLAINT_TLS_KEY_FILE", path(&files.server_key)),
        ("PLAINT_TLS_CLIENT_CA_FILE", path(&files.ca_cert)),
    ];
    let client = ClientSettings {
        tls_ca_file: Some(files.ca_cert),
        tls_client_cert_file: Some(files.client_cert),
        tls_client_key_file: Some(files.client_key),
        ..ClientSettings::default()
    };
    Ok((client, env))
}

/// The complaint ids intake acknowledged, and what went wrong.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) accepted: Vec<String>,
    pub(crate) duplicates: u64,
    pub(crate) failures: u64,
    pub(crate) first_failure: Option<String>,
}

/// Seeded, realistic complaints, each with a ticket id of its own.
#[derive(Debug)]
struct Tickets {
    pool: Vec<SubmitComplaintRequest>,
    next: AtomicU64,
}

impl Tickets {
    fn new(seed: u64) -> Self {
        let pool = generate(seed, 5000)
            .iter()
            .map(|c| {
                let mut r = c.to_request();
                r.source_system = "bench".to_owned();
                r
            })
            .collect();
        Self {
            pool,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> SubmitComplaintRequest {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let len = self.pool.len() as u64;
        let mut r = self.pool[usize::try_from(i % len).unwrap_or(0)].clone();
        r.external_ticket_id = format!("B{i:09}");
        r
    }
}

/// The clients and shared state of a run's system part.
#[derive(Debug, Clone)]
pub(crate) struct Driver {
    intake: IntakeClient<Authed>,
    query: QueryClient<Authed>,
    admin: AdminClient<Authed>,
    probe: Probe,
    tickets: Arc<Tickets>,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    /// Submissions are held back while the backlog is above this (0: never).
    admit_below: Arc<AtomicU64>,
    /// The last backlog sampled.
    backlog: Arc<AtomicU64>,
}

/// Where the log, the routing consumer and the projection stand.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) log: ProbeSample,
    pub(crate) projected: u64,
}

impl Sample {
    /// Messages not yet through: the routing consumer's backlog plus the
    /// projection's distance from the log's end.
    fn backlog(&self) -> u64 {
        self.log.consumer_backlog + self.log.last_sequence.saturating_sub(self.projected)
    }
    pub(crate) fn projection_lag(&self) -> u64 {
        self.log.last_sequence.saturating_sub(self.projected)
    }
}

/// A closed-loop phase's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClosedLoop {
    pub(crate) submitted: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latency: Latency,
}

impl ClosedLoop {
    pub(crate) fn rate(&self) -> f64 {
        self.submitted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The end-to-end throughput phase's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Throughput {
    pub(crate) complaints: u64,
    /// Submission start to the last complaint routed and projected.
    pub(crate) elapsed: Duration,
    pub(crate) submit_rate: f64,
    pub(crate) backlog_bound: u64,
    pub(crate) max_backlog: u64,
    pub(crate) max_projection_lag: u64,
    pub(crate) catch_up: Duration,
    pub(crate) intake: (Usage, Usage),
    pub(crate) router: (Usage, Usage),
    pub(crate) nats: (Usage, Usage),
}

impl Throughput {
    pub(crate) fn rate(&self) -> f64 {
        self.complaints as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// An open-loop phase's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenLoop {
    pub(crate) offered_rate: f64,
    pub(crate) sent: u64,
    pub(crate) achieved_rate: f64,
    /// Intended send time to the submit acknowledgement.
    pub(crate) submit: Latency,
    /// Intended send time to the routed complaint appearing in the projection.
    pub(crate) visible: Latency,
    /// The router's decision time to the projection's update (wall clocks, ms).
    pub(crate) projection_lag_ms: Latency,
    /// Projection lag in messages, sampled.
    pub(crate) lag_msgs_p50: u64,
    pub(crate) lag_msgs_max: u64,
    /// Complaints whose routed update the watcher never saw.
    pub(crate) unobserved: u64,
    pub(crate) missed_updates: u64,
}

/// The drain phase's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    pub(crate) complaints: u64,
    pub(crate) log_messages: u64,
    /// Router spawned to every complaint routed and projected.
    pub(crate) elapsed: Duration,
    /// Router spawned to every complaint routed (the routing consumer's
    /// backlog empty), the projection perhaps still behind.
    pub(crate) routed: Duration,
    pub(crate) startup: Duration,
}

impl Drain {
    pub(crate) fn rate(&self) -> f64 {
        self.complaints as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn routed_rate(&self) -> f64 {
        self.complaints as f64 / self.routed.as_secs_f64().max(1e-9)
    }
}

/// The rebuild phase's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rebuild {
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
    pub(crate) server_rate: f64,
}

impl Rebuild {
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Aborted
    )
}

impl Driver {
    pub(crate) async fn connect(
        services: &Services,
        seed: u64,
    ) -> anyhow::Result<(Self, plaint_bus::Client)> {
        let intake = IntakeClient::new(services.authed(services.intake_port).await?);
        let router = services.authed(services.router_port).await?;
        let client = plaint_bus::connect(&services.nats_url, "plaint-ctl-bench").await?;
        let names = Names::new(&services.prefix, &services.stream).map_err(anyhow::Error::msg)?;
        let durable = names.consumer("router");
        let log = EventLog::open(
            client.clone(),
            names,
            &StreamSettings::default(),
            &services.personal()?,
        )
        .await?;
        let probe = Probe::new(&client, log.names().stream(), &durable).await?;
        Ok((
            Self {
                intake,
                query: QueryClient::new(router.clone()),
                admin: AdminClient::new(router),
                probe,
                tickets: Arc::new(Tickets::new(seed)),
                ledger: Arc::default(),
                admit_below: Arc::default(),
                backlog: Arc::default(),
            },
            client,
        ))
    }

    /// The intake client, for loads of their own.
    pub(crate) fn intake(&self) -> IntakeClient<Authed> {
        self.intake.clone()
    }

    /// The router's query client.
    pub(crate) fn query(&self) -> QueryClient<Authed> {
        self.query.clone()
    }

    /// The router's admin client.
    pub(crate) fn admin(&self) -> AdminClient<Authed> {
        self.admin.clone()
    }

    /// New channels to the router (after a restart).
    pub(crate) async fn reconnect_router(&mut self, services: &Services) -> anyhow::Result<()> {
        let router = services.authed(services.router_port).await?;
        self.query = QueryClient::new(router.clone());
        self.admin = AdminClient::new(router);
        Ok(())
    }

    /// Submits one complaint (retrying UNAVAILABLE and ABORTED a few times)
    /// and books the answer. Returns the complaint id when accepted.
    async fn submit_one(&self) -> Option<String> {
        let request = self.tickets.next();
        let mut intake = self.intake.clone();
        let mut attempt = 0u64;
        let result = loop {
            match intake.submit_complaint(request.clone()).await {
                Ok(r) => break Ok(r.into_inner()),
                Err(s) if retryable(&s) && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(s) => break Err(s),
            }
        };
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(w) if w.duplicate => {
                ledger.duplicates += 1;
                None
            }
            Ok(w) => {
                ledger.accepted.push(w.complaint_id.clone());
                Some(w.complaint_id)
            }
            Err(s) => {
                ledger.failures += 1;
                ledger
                    .first_failure
                    .get_or_insert_with(|| format!("SubmitComplaint: {s}"));
                None
            }
        }
    }

    pub(crate) fn accepted_count(&self) -> u64 {
        self.ledger
            .lock()
            .map(|l| l.accepted.len() as u64)
            .unwrap_or(0)
    }

    pub(crate) async fn sample(&self) -> anyhow::Result<Sample> {
        let log = self.probe.sample().await?;
        let projected = self
            .query
            .clone()
            .list_complaints(ListComplaintsRequest {
                page_size: 1,
                ..ListComplaintsRequest::default()
            })
            .await
            .context("router Query.ListComplaints")?
            .into_inner()
            .projected_sequence;
        Ok(Sample { log, projected })
    }

    /// Samples every [`SAMPLE_EVERY`] until `stop` is set, publishing the
    /// backlog for admission control.
    fn sampler(&self, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Sample>> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = this.sample().await {
                    this.backlog.store(s.backlog(), Ordering::Relaxed);
                    out.push(s);
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
            out
        })
    }

    /// `concurrency` submitters, each one request at a time, for `duration`
    /// or `max` submissions; returns every submit latency.
    pub(crate) async fn closed_loop(
        &self,
        concurrency: usize,
        duration: Duration,
        max: u64,
    ) -> anyhow::Result<ClosedLoop> {
        let started = Instant::now();
        let issued = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let this = self.clone();
            let issued = Arc::clone(&issued);
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < duration {
                    let bound = this.admit_below.load(Ordering::Relaxed);
                    if bound > 0 && this.backlog.load(Ordering::Relaxed) >= bound {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    if issued.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                    let t = Instant::now();
                    this.submit_one().await;
                    latencies.push(t.elapsed());
                }
                latencies
            });
        }
        let mut latencies = Vec::new();
        while let Some(r) = tasks.join_next().await {
            latencies.extend(r.context("a submitter task failed")?);
        }
        Ok(ClosedLoop {
            submitted: latencies.len() as u64,
            elapsed: started.elapsed(),
            latency: Latency::of(&latencies),
        })
    }

    /// Waits until every accepted complaint is routed and the projection has
    /// applied the whole log; returns when that was first seen.
    pub(crate) async fn wait_caught_up(&self, services: &mut Services) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            services.check_alive()?;
            let s = self.sample().await?;
            let seen = Instant::now();
            if s.log.consumer_backlog == 0 && s.projection_lag() == 0 {
                let stats = self
                    .query
                    .clone()
                    .get_queue_stats(GetQueueStatsRequest { consistency: None })
                    .await
                    .context("router Query.GetQueueStats")?
                    .into_inner();
                let total: u64 = stats.stats.iter().map(|q| q.count).sum();
                let unrouted: u64 = stats
                    .stats
                    .iter()
                    .filter(|q| q.route == Route::Unspecified as i32)
                    .map(|q| q.count)
                    .sum();
                if unrouted == 0 && total >= self.accepted_count() {
                    return Ok(seen);
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the router did not catch up within {CATCH_UP:?}: log at {}, projection at {}, \
                     routing backlog {}",
                    s.log.last_sequence,
                    s.projected,
                    s.log.consumer_backlog
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the log holds a decision for every complaint (at least
    /// `decided_at` messages) and the routing consumer has acked them all.
    async fn wait_routed(
        &self,
        services: &mut Services,
        decided_at: u64,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            services.check_alive()?;
            let s = self.probe.sample().await?;
            let seen = Instant::now();
            if s.consumer_backlog == 0 && s.last_sequence >= decided_at {
                return Ok(seen);
            }
            if seen >= deadline {
                bail!(
                    "the router did not route the backlog within {CATCH_UP:?}: log at {}, \
                     routing backlog {}",
                    s.last_sequence,
                    s.consumer_backlog
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closed loop at concurrency 64 with submissions held back while more
    /// than `bound` messages wait for the router: the end-to-end rate the
    /// system sustains with a bounded lag.
    pub(crate) async fn throughput(
        &self,
        services: &mut Services,
        nats_pid: u32,
        duration: Duration,
        bound: u64,
    ) -> anyhow::Result<Throughput> {
        let before = (services.usage(), Usage::of(nats_pid));
        let accepted_before = self.accepted_count();
        self.admit_below.store(bound, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = self.sampler(Arc::clone(&stop));
        let started = Instant::now();
        let run = self.closed_loop(64, duration, u64::MAX).await;
        let submitted_at = Instant::now();
        let caught_up = self.wait_caught_up(services).await;
        stop.store(true, Ordering::Relaxed);
        self.admit_below.store(0, Ordering::Relaxed);
        let samples = sampler.await.unwrap_or_default();
        let run = run?;
        let done = caught_up?;
        let after = (services.usage(), Usage::of(nats_pid));
        Ok(Throughput {
            complaints: self.accepted_count() - accepted_before,
            elapsed: done - started,
            submit_rate: run.rate(),
            backlog_bound: bound,
            max_backlog: samples.iter().map(Sample::backlog).max().unwrap_or(0),
            max_projection_lag: samples
                .iter()
                .map(Sample::projection_lag)
                .max()
                .unwrap_or(0),
            catch_up: done.saturating_duration_since(submitted_at),
            intake: (before.0.0, after.0.0),
            router: (before.0.1, after.0.1),
            nats: (before.1, after.1),
        })
    }

    /// Submits at `rate` per second for `duration`, each at its intended
    /// time whatever the answers to earlier ones, and measures from the
    /// intended time to the acknowledgement and to the routed complaint in
    /// the projection (seen through `WatchComplaints`).
    pub(crate) async fn open_loop(
        &self,
        services: &mut Services,
        rate: f64,
        duration: Duration,
    ) -> anyhow::Result<OpenLoop> {
        let rate = rate.max(1.0);
        let count = (rate * duration.as_secs_f64()).ceil().max(1.0) as u64;
        let seen: Arc<Mutex<HashMap<String, (Instant, i64)>>> = Arc::default();
        let missed = Arc::new(AtomicU64::new(0));
        let mut updates = self
            .query
            .clone()
            .watch_complaints(WatchComplaintsRequest::default())
            .await
            .context("router Query.WatchComplaints")?
            .into_inner();
        let watcher = {
            let seen = Arc::clone(&seen);
            let missed = Arc::clone(&missed);
            tokio::spawn(async move {
                while let Ok(Some(u)) = updates.message().await {
                    missed.fetch_add(u.missed, Ordering::Relaxed);
                    let Some(c) = u.complaint else { continue };
                    if c.route == Route::Unspecified as i32 {
                        continue;
                    }
                    let now = Instant::now();
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.entry(c.complaint_id)
                        .or_insert((now, now_ms() - c.routed_at_ms));
                }
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = self.sampler(Arc::clone(&stop));

        let t0 = tokio::time::Instant::now() + Duration::from_millis(20);
        let mut tasks = JoinSet::new();
        for i in 0..count {
            let intended = t0 + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(intended).await;
            let this = self.clone();
            let intended = intended.into_std();
            tasks.spawn(async move {
                let id = this.submit_one().await;
                (intended, Instant::now(), id)
            });
        }
        let sent_in = (tokio::time::Instant::now() - t0).as_secs_f64();
        let mut sent = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        while let Some(r) = tasks.join_next().await {
            sent.push(r.context("a submission task failed")?);
        }
        let wanted: Vec<&String> = sent.iter().filter_map(|(_, _, id)| id.as_ref()).collect();
        let deadline = Instant::now() + CATCH_UP;
        loop {
            services.check_alive()?;
            let have = {
                let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                wanted.iter().filter(|id| seen.contains_key(**id)).count()
            };
            if have == wanted.len() || Instant::now() >= deadline {
                break;
            }
            if missed.load(Ordering::Relaxed) > 0 {
                // Some updates were dropped: wait for the router instead.
                self.wait_caught_up(services).await?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let samples = sampler.await.unwrap_or_default();
        watcher.abort();

        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut submit = Vec::new();
        let mut visible = Vec::new();
        let mut lag = Vec::new();
        let mut unobserved = 0;
        for (intended, acked, id) in &sent {
            submit.push(acked.saturating_duration_since(*intended));
            let Some(id) = id else { continue };
            match seen.get(id) {
                Some((at, lag_ms)) => {
                    visible.push(at.saturating_duration_since(*intended));
                    lag.push(*lag_ms as f64);
                }
                None => unobserved += 1,
            }
        }
        let mut lags: Vec<u64> = samples.iter().map(Sample::projection_lag).collect();
        lags.sort_unstable();
        Ok(OpenLoop {
            offered_rate: rate,
            sent: sent.len() as u64,
            achieved_rate: sent.len() as f64 / sent_in.max(1e-9),
            submit: Latency::of(&submit),
            visible: Latency::of(&visible),
            projection_lag_ms: Latency::of_ms(lag),
            lag_msgs_p50: lags.get(lags.len() / 2).copied().unwrap_or(0),
            lag_msgs_max: lags.last().copied().unwrap_or(0),
            unobserved,
            missed_updates: missed.load(Ordering::Relaxed),
        })
    }

    /// Router stopped, `n` complaints submitted, intake stopped, router
    /// started: how fast it works through the backlog.
    pub(crate) async fn drain(&mut self, services: &mut Services, n: u64) -> anyhow::Result<Drain> {
        if let Some(router) = services.router.take() {
            router.stop().await?;
        }
        let log_before = self.probe.sample().await?.last_sequence;
        let filled = self.closed_loop(64, Duration::from_secs(600), n).await?;
        if let Some(intake) = services.intake.take() {
            intake.stop().await?;
        }
        let log_after = self.probe.sample().await?.last_sequence;
        let spawned = services.start_router().await?;
        let serving = Instant::now();
        self.reconnect_router(services).await?;
        // The router was stopped while the backlog filled, so every message
        // of it is a new complaint, and each needs one decision after it.
        let received = log_after - log_before;
        let routed = self.wait_routed(services, log_after + received).await?;
        let done = self.wait_caught_up(services).await?;
        Ok(Drain {
            complaints: filled.submitted,
            log_messages: received,
            elapsed: done - spawned,
            routed: routed - spawned,
            startup: serving - spawned,
        })
    }

    /// Rebuilds the projections from sequence 1 through the router's admin API.
    pub(crate) async fn rebuild(&self) -> anyhow::Result<Rebuild> {
        let started = Instant::now();
        let mut stream = self
            .admin
            .clone()
            .rebuild_projections(RebuildProjectionsRequest {})
            .await
            .context("router Admin.RebuildProjections")?
            .into_inner();
        let mut last = None;
        while let Some(p) = stream
            .message()
            .await
            .context("router Admin.RebuildProjections stream")?
        {
            let done = p.done;
            last = Some(p);
            if done {
                break;
            }
        }
        let elapsed = started.elapsed();
        let Some(p) = last.filter(|p| p.done) else {
            bail!("the rebuild ended without reporting done");
        };
        Ok(Rebuild {
            events: p.swapped_at_sequence.max(p.target_sequence),
            elapsed,
            server_rate: p.events_per_second,
        })
    }

    /// Every complaint in the projection: (id, routed), listed in pages.
    pub(crate) async fn list_all(&self, min_sequence: u64) -> anyhow::Result<Vec<(String, bool)>> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .query
                .clone()
                .list_complaints(ListComplaintsRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                    consistency: Some(Consistency {
                        min_sequence,
                        timeout_ms: 10_000,
                    }),
                    ..ListComplaintsRequest::default()
                })
                .await
                .context("router Query.ListComplaints")?
                .into_inner();
            out.extend(
                page.complaints
                    .into_iter()
                    .map(|c| (c.complaint_id, c.route != Route::Unspecified as i32)),
            );
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }
}

/// Milliseconds of a duration, for reports.
pub(crate) fn secs(d: Duration) -> f64 {
    ms(d) / 1e3
}
