//! What the scale phase measures at a checkpoint: the router's queries as a
//! client sees them, a policy simulation over the whole history, memory of
//! every process, the bytes a complaint takes in PostgreSQL and in the log,
//! and the services' gauges once the work is done.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use plaint_client::Authed;
use plaint_proto::router::admin_client::AdminClient;
use plaint_proto::router::query_client::QueryClient;
use plaint_proto::router::{
    GetCeoBudgetRequest, GetComplaintRequest, GetCustomerHistoryRequest, GetGoodwillRequest,
    GetPolicyRequest, GetQueueStatsRequest, ListComplaintsRequest, SimulatePolicyRequest,
};
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
// The stream adaptor through tonic's re-export: a direct `futures` dependency
// would change the lock file, which other work in this checkout owns.
use tonic::codegen::tokio_stream::StreamExt;

use crate::generate::Rng;
use crate::procs::Usage;
use crate::scale::load::Loader;
use crate::stats::{Latency, median};
use crate::system::now_ms;

/// Timed calls of each query in a round, after [`WARMUP`] untimed ones;
/// [`ROUNDS`] rounds, each query in turn, and the median of the rounds'
/// percentiles: a burst of other work on a shared machine spoils one round's
/// tail, not the figure.
pub(crate) const CALLS: usize = 200;
pub(crate) const ROUNDS: usize = 3;
const WARMUP: usize = 20;
/// Pages the deep list goes down.
pub(crate) const DEEP_PAGES: u32 = 100;
const DAY_MS: i64 = 86_400_000;
/// How long the gauges may take to settle: both are refreshed every 2 s.
const GAUGES_SETTLE: Duration = Duration::from_secs(12);

/// One query's latency at a checkpoint, or why it could not be measured.
#[derive(Debug, Clone)]
pub(crate) struct QueryFigure {
    pub(crate) key: &'static str,
    pub(crate) name: &'static str,
    pub(crate) latency: Result<Latency, String>,
    /// What was asked, when it varies between checkpoints (the deep page's
    /// depth).
    pub(crate) note: String,
    /// Each round's p99, ms.
    pub(crate) round_p99s: Vec<f64>,
}

/// What the queries are asked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListFilter {
    pub(crate) route: i32,
    pub(crate) status: i32,
}

/// `n` sequential calls of `f` (after the warm-up); the latency of each.
async fn time_calls<F, Fut>(n: usize, mut f: F) -> anyhow::Result<Latency>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for i in 0..WARMUP {
        f(i).await?;
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(WARMUP + i).await?;
        samples.push(t.elapsed());
    }
    Ok(Latency::of(&samples))
}

/// Picks `n` complaint indexes with an accepted id, uniformly.
fn sample_indexes(loader: &Loader, rng: &mut Rng, n: usize) -> Vec<usize> {
    let len = loader.len() as u64;
    let mut out = Vec::with_capacity(n);
    // Bounded: a failed submission leaves a hole; there are few.
    for _ in 0..n * 4 {
        if out.len() >= n || len == 0 {
            break;
        }
        let i = usize::try_from(rng.range(0, len - 1)).unwrap_or(0);
        if loader.id(i).is_some() {
            out.push(i);
        }
    }
    out
}

/// Every query of the set, [`ROUNDS`] rounds of each in turn; each
/// percentile is the median of the rounds'.
pub(crate) async fn queries(
    query: &QueryClient<Authed>,
    loader: &Loader,
    filter: ListFilter,
    seed: u64,
) -> Vec<QueryFigure> {
    let mut rounds = Vec::with_capacity(ROUNDS);
    for r in 0..ROUNDS {
        rounds.push(round(query, loader, filter, seed ^ ((r as u64) << 32)).await);
    }
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(k, q)| {
            let of_rounds: Result<Vec<Latency>, String> = rounds
                .iter()
                .map(|r| {
                    r.get(k)
                        .map_or(Err("missing".to_owned()), |x| x.latency.clone())
                })
                .collect();
            let round_p99s = of_rounds
                .as_ref()
                .map(|l| l.iter().map(|x| x.p99).collect())
                .unwrap_or_default();
            QueryFigure {
                key: q.key,
                name: q.name,
                latency: of_rounds.map(|l| Latency {
                    count: l.iter().map(|x| x.count).sum(),
                    p50: median(l.iter().map(|x| x.p50).collect()),
                    p99: median(l.iter().map(|x| x.p99).collect()),
                    p999: median(l.iter().map(|x| x.p999).collect()),
                    max: l.iter().map(|x| x.max).fold(0.0, f64::max),
                }),
                note: q.note.clone(),
                round_p99s,
            }
        })
        .collect()
}

/// One round: each query [`CALLS`] times, one after the other.
async fn round(
    query: &QueryClient<Authed>,
    loader: &Loader,
    filter: ListFilter,
    seed: u64,
) -> Vec<QueryFigure> {
    let mut rng = Rng::new(seed ^ loader.len() as u64);
    let n = CALLS + WARMUP;
    let ids: Vec<String> = sample_indexes(loader, &mut rng, n)
        .into_iter()
        .filter_map(|i| loader.id(i).map(|u| u.to_string()))
        .collect();
    let customers: Vec<String> = sample_indexes(loader, &mut rng, n)
        .into_iter()
        .map(|i| loader.customer_id(i))
        .collect();
    let mut out = Vec::new();
    let figure = |key, name, latency: anyhow::Result<Latency>, note: String| QueryFigure {
        key,
        name,
        latency: latency.map_err(|e| format!("{e:#}")),
        note,
        round_p99s: Vec::new(),
    };

    let latency = time_calls(CALLS, |i| {
        let mut q = query.clone();
        let id = ids.get(i % ids.len().max(1)).cloned().unwrap_or_default();
        async move {
            q.get_complaint(GetComplaintRequest {
                complaint_id: id,
                consistency: None,
                ..Default::default()
            })
            .await
            .context("GetComplaint")?;
            Ok(())
        }
    })
    .await;
    out.push(figure(
        "get_complaint",
        "GetComplaint",
        latency,
        String::new(),
    ));

    let latency = time_calls(CALLS, |i| {
        let mut q = query.clone();
        let customer = customers
            .get(i % customers.len().max(1))
            .cloned()
            .unwrap_or_default();
        async move {
            q.get_customer_history(GetCustomerHistoryRequest {
                customer_id: customer,
                consistency: None,
            })
            .await
            .context("GetCustomerHistory")?;
            Ok(())
        }
    })
    .await;
    out.push(figure(
        "get_customer_history",
        "GetCustomerHistory",
        latency,
        String::new(),
    ));

    let list = |token: String| ListComplaintsRequest {
        route: filter.route,
        status: filter.status,
        page_token: token,
        ..ListComplaintsRequest::default()
    };
    let latency = time_calls(CALLS, |_| {
        let mut q = query.clone();
        let request = list(String::new());
        async move {
            q.list_complaints(request).await.context("ListComplaints")?;
            Ok(())
        }
    })
    .await;
    out.push(figure(
        "list_first_page",
        "ListComplaints, first page",
        latency,
        String::new(),
    ));

    let (latency, note) = match deep_token(query, &list).await {
        Ok((page, token)) => {
            let latency = time_calls(CALLS, |_| {
                let mut q = query.clone();
                let request = list(token.clone());
                async move {
                    q.list_complaints(request).await.context("ListComplaints")?;
                    Ok(())
                }
            })
            .await;
            (latency, format!("page {page}"))
        }
        Err(e) => (Err(e), String::new()),
    };
    out.push(figure(
        "list_page_100",
        "ListComplaints, page 100",
        latency,
        note,
    ));

    let goodwill = |from_ms, to_ms| GetGoodwillRequest {
        from_ms,
        to_ms,
        ..GetGoodwillRequest::default()
    };
    let latency = time_calls(CALLS, |_| {
        let mut q = query.clone();
        async move {
            q.get_goodwill(goodwill(0, 0))
                .await
                .context("GetGoodwill")?;
            Ok(())
        }
    })
    .await;
    out.push(figure(
        "goodwill_all_time",
        "GetGoodwill, all time",
        latency,
        String::new(),
    ));

    // A week ending now: not aligned to midnight at either end, so its
    // first and last partial days are read from the complaints themselves.
    let to = now_ms();
    let from = to - 7 * DAY_MS;
    let latency = time_calls(CALLS, |_| {
        let mut q = query.clone();
        async move {
            q.get_goodwill(goodwill(from, to))
                .await
                .context("GetGoodwill")?;
            Ok(())
        }
    })
    .await;
    out.push(figure(
        "goodwill_week",
        "GetGoodwill, one week to now",
        latency,
        String::new(),
    ));

    let latency = time_calls(CALLS, |_| {
        let mut q = query.clone();
        async move {
            q.get_ceo_budget(GetCeoBudgetRequest::default())
                .await
                .context("GetCeoBudget")?;
            Ok(())
        }
    })
    .await;
    out.push(figure("ceo_budget", "GetCeoBudget", latency, String::new()));

    let latency = time_calls(CALLS, |_| {
        let mut q = query.clone();
        async move {
            q.get_queue_stats(GetQueueStatsRequest::default())
                .await
                .context("GetQueueStats")?;
            Ok(())
        }
    })
    .await;
    out.push(figure(
        "queue_stats",
        "GetQueueStats",
        latency,
        String::new(),
    ));
    out
}

/// Follows the list's page tokens down to page [`DEEP_PAGES`] (or its last
/// page, when it has fewer); returns that page's number and token.
async fn deep_token(
    query: &QueryClient<Authed>,
    list: &impl Fn(String) -> ListComplaintsRequest,
) -> anyhow::Result<(u32, String)> {
    let mut token = String::new();
    let mut page = 1;
    while page < DEEP_PAGES {
        let next = query
            .clone()
            .list_complaints(list(token.clone()))
            .await
            .context("ListComplaints")?
            .into_inner()
            .next_page_token;
        if next.is_empty() {
            break;
        }
        token = next;
        page += 1;
    }
    Ok((page, token))
}

/// The route whose routed complaints are the most, by the queue statistics:
/// the list filter that has the most pages.
pub(crate) async fn busiest_route(query: &QueryClient<Authed>) -> anyhow::Result<ListFilter> {
    let status = plaint_proto::router::Status::Routed as i32;
    let stats = query
        .clone()
        .get_queue_stats(GetQueueStatsRequest::default())
        .await
        .context("GetQueueStats")?
        .into_inner();
    let mut by_route: std::collections::BTreeMap<i32, u64> = Default::default();
    for s in stats.stats.iter().filter(|s| s.status == status) {
        *by_route.entry(s.route).or_default() += s.count;
    }
    let route = by_route
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| r)
        .context("no routed complaints to list")?;
    Ok(ListFilter { route, status })
}

/// Complaints in the projection, and of those not routed, by the queue
/// statistics.
pub(crate) async fn projected_complaints(
    query: &QueryClient<Authed>,
) -> anyhow::Result<(u64, u64)> {
    let stats = query
        .clone()
        .get_queue_stats(GetQueueStatsRequest::default())
        .await
        .context("GetQueueStats")?
        .into_inner();
    let total = stats.stats.iter().map(|q| q.count).sum();
    let unrouted = stats
        .stats
        .iter()
        .filter(|q| q.route == plaint_proto::events::Route::Unspecified as i32)
        .map(|q| q.count)
        .sum();
    Ok((total, unrouted))
}

/// The router's resident memory at its highest while `work` ran, MiB:
/// sampled every 20 ms, and exact whenever the work set a new high for the
/// process (its `VmHWM` rose).
pub(crate) async fn peak_during<T>(pid: u32, work: impl Future<Output = T>) -> (T, f64) {
    let before = Usage::of(pid).peak_rss_mib;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut peak = 0.0f64;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(Usage::of(pid).rss_mib);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.await.unwrap_or(0.0);
    let after = Usage::of(pid).peak_rss_mib;
    let peak = if after > before {
        sampled.max(after)
    } else {
        sampled
    };
    (out, peak)
}

/// A policy simulation over the whole history.
#[derive(Debug, Clone, Default)]
pub(crate) struct Simulated {
    pub(crate) elapsed: Duration,
    /// Complaints it replayed.
    pub(crate) complaints: u64,
    /// Complaints in the projection when it was asked.
    pub(crate) expected: u64,
    pub(crate) changed_total: u64,
    pub(crate) engagements_before: u64,
    /// The router's resident memory at its highest meanwhile, MiB.
    pub(crate) router_peak_mib: f64,
}

impl Simulated {
    pub(crate) fn rate(&self) -> f64 {
        self.complaints as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the policy in force over every complaint (no span given), through
/// `long`, a channel that allows a long call.
pub(crate) async fn simulate(
    long: Authed,
    admin: &AdminClient<Authed>,
    router_pid: u32,
    expected: u64,
) -> anyhow::Result<Simulated> {
    let policy = admin
        .clone()
        .get_policy(GetPolicyRequest { version: 0 })
        .await
        .context("Admin.GetPolicy")?
        .into_inner()
        .policy_json;
    let mut query = QueryClient::new(long);
    let started = Instant::now();
    let (response, peak) = peak_during(router_pid, async {
        query
            .simulate_policy(SimulatePolicyRequest {
                policy_json: policy,
                ..SimulatePolicyRequest::default()
            })
            .await
    })
    .await;
    let elapsed = started.elapsed();
    let r = response.context("Query.SimulatePolicy")?.into_inner();
    Ok(Simulated {
        elapsed,
        complaints: r.complaints,
        expected,
        changed_total: r.changed_total,
        engagements_before: r.engagements_before,
        router_peak_mib: peak,
    })
}

/// Resident memory of each process, MiB. PostgreSQL's is the proportional
/// set size (PSS, from `/proc/<pid>/smaps_rollup`) summed over the
/// postmaster and its children: the shared buffers every backend maps are
/// counted once, not once per process as RSS would.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    pub(crate) intake: f64,
    pub(crate) router: f64,
    pub(crate) nats: f64,
    pub(crate) postgres: f64,
}

impl Memory {
    fn max(self, o: Memory) -> Memory {
        Memory {
            intake: self.intake.max(o.intake),
            router: self.router.max(o.router),
            nats: self.nats.max(o.nats),
            postgres: self.postgres.max(o.postgres),
        }
    }
}

/// The processes whose memory is watched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pids {
    pub(crate) intake: u32,
    pub(crate) router: u32,
    pub(crate) nats: u32,
    pub(crate) postmaster: Option<u32>,
}

/// `(pid, parent pid)` of every process, from `/proc/<pid>/stat`.
fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name's ')': state, then the parent's pid.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            Some((pid, ppid.parse().ok()?))
        })
        .collect()
}

/// A `kB` field of `/proc/<pid>/smaps_rollup`, MiB.
fn smaps_mib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// PostgreSQL's memory now: PSS and RSS summed over the postmaster and its
/// children, MiB, and how many processes that is.
pub(crate) fn postgres_memory(postmaster: u32) -> (f64, f64, usize) {
    let pids: Vec<u32> = processes()
        .into_iter()
        .filter(|(pid, ppid)| *pid == postmaster || *ppid == postmaster)
        .map(|(pid, _)| pid)
        .collect();
    let pss = pids.iter().map(|p| smaps_mib(*p, "Pss:")).sum();
    let rss = pids.iter().map(|p| smaps_mib(*p, "Rss:")).sum();
    (pss, rss, pids.len())
}

impl Pids {
    pub(crate) fn now(&self) -> Memory {
        Memory {
            intake: Usage::of(self.intake).rss_mib,
            router: Usage::of(self.router).rss_mib,
            nats: Usage::of(self.nats).rss_mib,
            postgres: self.postmaster.map_or(0.0, |p| postgres_memory(p).0),
        }
    }

    /// Each service's and nats-server's CPU seconds so far (PostgreSQL: 0;
    /// its backends come and go).
    pub(crate) fn cpu(&self) -> Memory {
        Memory {
            intake: Usage::of(self.intake).cpu_seconds,
            router: Usage::of(self.router).cpu_seconds,
            nats: Usage::of(self.nats).cpu_seconds,
            postgres: 0.0,
        }
    }

    /// Each process's `VmHWM` (PostgreSQL: none, 0).
    fn high_water(&self) -> Memory {
        Memory {
            intake: Usage::of(self.intake).peak_rss_mib,
            router: Usage::of(self.router).peak_rss_mib,
            nats: Usage::of(self.nats).peak_rss_mib,
            postgres: 0.0,
        }
    }
}

/// Samples every process's memory in the background: the services every
/// 250 ms, PostgreSQL (a walk of `/proc`) every second; [`take`] hands over
/// the highest since the last take.
///
/// [`take`]: MemoryWatch::take
#[derive(Debug)]
pub(crate) struct MemoryWatch {
    pids: Pids,
    peaks: Arc<Mutex<Memory>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    high_water: Memory,
}

impl MemoryWatch {
    pub(crate) fn start(pids: Pids) -> Self {
        let peaks = Arc::new(Mutex::new(Memory::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (peaks, stop) = (Arc::clone(&peaks), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut tick = 0u64;
                let mut postgres = 0.0;
                while !stop.load(Ordering::Relaxed) {
                    if tick.is_multiple_of(4) {
                        postgres = pids.postmaster.map_or(0.0, |p| postgres_memory(p).0);
                    }
                    let now = Memory {
                        postgres,
                        ..Pids {
                            postmaster: None,
                            ..pids
                        }
                        .now()
                    };
                    {
                        let mut p = peaks.lock().unwrap_or_else(|e| e.into_inner());
                        *p = p.max(now);
                    }
                    tick += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        Self {
            high_water: pids.high_water(),
            pids,
            peaks,
            stop,
            task,
        }
    }

    /// The highest memory of each process since the last take: sampled, and
    /// the process's own high-water mark when it rose meanwhile (exact).
    pub(crate) fn take(&mut self) -> Memory {
        let sampled = {
            let mut p = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
        };
        let hw = self.pids.high_water();
        let rose = |now: f64, before: f64| if now > before { now } else { 0.0 };
        let exact = Memory {
            intake: rose(hw.intake, self.high_water.intake),
            router: rose(hw.router, self.high_water.router),
            nats: rose(hw.nats, self.high_water.nats),
            postgres: 0.0,
        };
        self.high_water = hw;
        sampled.max(exact)
    }

    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// The postmaster of the server behind `url`: the parent of the backend
/// serving a connection.
pub(crate) async fn postmaster_of(url: &str) -> anyhow::Result<(u32, String)> {
    let mut conn = PgConnection::connect(url).await?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    let shared_buffers: String = sqlx::query_scalar("SELECT current_setting('shared_buffers')")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    let backend = u32::try_from(backend)?;
    let Some((_, postmaster)) = processes().into_iter().find(|(p, _)| *p == backend) else {
        bail!(
            "the PostgreSQL backend {backend} is not in this machine's /proc (a server elsewhere)"
        );
    };
    Ok((postmaster, shared_buffers))
}

/// What the history takes on disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Storage {
    /// `pg_database_size` of the bench's database.
    pub(crate) pg_database: u64,
    /// `pg_total_relation_size` (heap, TOAST, indexes) of every table, largest first.
    pub(crate) pg_tables: Vec<(String, u64)>,
    /// The event log's stream: bytes, messages, subjects.
    pub(crate) log_bytes: u64,
    pub(crate) log_messages: u64,
    pub(crate) log_subjects: u64,
    /// The run's other streams (data keys, inbound, leases...): name, bytes, messages.
    pub(crate) other_streams: Vec<(String, u64, u64)>,
}

impl Storage {
    pub(crate) fn pg_tables_total(&self) -> u64 {
        self.pg_tables.iter().map(|(_, b)| b).sum()
    }
}

/// Reads the database's and the streams' sizes.
pub(crate) async fn storage(
    db_url: &str,
    client: &plaint_bus::Client,
    log_stream: &str,
) -> anyhow::Result<Storage> {
    let mut conn = PgConnection::connect(db_url).await?;
    let pg_database: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    let tables: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg_toast%' \
         ORDER BY 2 DESC",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;

    let js = jetstream::new(client.clone());
    let mut out = Storage {
        pg_database: u64::try_from(pg_database).unwrap_or(0),
        pg_tables: tables
            .into_iter()
            .map(|(n, b)| (n, u64::try_from(b).unwrap_or(0)))
            .collect(),
        ..Storage::default()
    };
    let mut streams = js.streams();
    // Bounded by the server's list of streams: the run made a handful.
    while let Some(info) = streams.next().await {
        let info = info.map_err(|e| anyhow::anyhow!("listing the streams: {e}"))?;
        if info.config.name == log_stream {
            out.log_bytes = info.state.bytes;
            out.log_messages = info.state.messages;
            out.log_subjects = info.state.subjects_count;
        } else {
            out.other_streams
                .push((info.config.name, info.state.bytes, info.state.messages));
        }
    }
    if out.log_messages == 0 {
        bail!("the event log's stream {log_stream} was not listed");
    }
    Ok(out)
}

/// One gauge series a service exports, and the value it rests at when
/// there is no work, if it has one.
#[derive(Debug, Clone)]
pub(crate) struct Gauge {
    pub(crate) service: &'static str,
    pub(crate) series: String,
    pub(crate) value: f64,
    pub(crate) idle: Option<f64>,
}

impl Gauge {
    pub(crate) fn at_idle(&self) -> bool {
        self.idle.is_none_or(|v| (self.value - v).abs() < 1e-9)
    }
}

/// The idle value of a gauge, by its name: work waiting (a backlog, a lag,
/// calls in flight) rests at 0; positions and holdings have none. Timers
/// armed and not yet due are a holding: they wait for their time, not for
/// the services.
fn idle_value(name: &str) -> Option<f64> {
    if name.contains("timers_pending") {
        return None;
    }
    [
        "pending",
        "lag",
        "in_flight",
        "inflight",
        "backlog",
        "queue",
        "waiting",
    ]
    .iter()
    .any(|w| name.contains(w))
    .then_some(0.0)
}

/// The gauges of a Prometheus text exposition.
fn parse_gauges(service: &'static str, text: &str) -> Vec<Gauge> {
    let gauges: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" gauge"))
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            gauges.contains(name).then(|| Gauge {
                service,
                series: series.to_owned(),
                value: value.parse().unwrap_or(f64::NAN),
                idle: idle_value(name),
            })
        })
        .collect()
}

/// `GET /metrics` on `127.0.0.1:<port>` (plain HTTP/1.0, read to the end).
async fn scrape(port: u16) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let body = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .context("scraping /metrics timed out")?
        .with_context(|| format!("cannot scrape 127.0.0.1:{port}/metrics"))?;
    let text = String::from_utf8_lossy(&body);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("127.0.0.1:{port}/metrics answered no HTTP body");
    };
    if !head.starts_with("HTTP/1.") || !head.contains(" 200") {
        bail!(
            "127.0.0.1:{port}/metrics answered {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body.to_owned())
}

/// The services' gauges once the work is done.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauges {
    pub(crate) gauges: Vec<Gauge>,
    /// Every gauge with an idle value was at it.
    pub(crate) at_idle: bool,
    /// How long they took to get there (or the whole wait, if they did not).
    pub(crate) waited: Duration,
}

/// Scrapes both services until every gauge with an idle value is at it, for
/// at most [`GAUGES_SETTLE`].
pub(crate) async fn gauges(intake_port: u16, router_port: u16) -> anyhow::Result<Gauges> {
    let started = Instant::now();
    loop {
        let mut gauges = parse_gauges("plaint-intake", &scrape(intake_port).await?);
        gauges.extend(parse_gauges("plaint-router", &scrape(router_port).await?));
        let at_idle = gauges.iter().all(Gauge::at_idle);
        if at_idle || started.elapsed() >= GAUGES_SETTLE {
            return Ok(Gauges {
                gauges,
                at_idle,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_read_with_their_idle_values() {
        let text = "# HELP plaint_routing_pending x\n# TYPE plaint_routing_pending gauge\n\
                    plaint_routing_pending 3\n# TYPE plaint_lease_held gauge\n\
                    plaint_lease_held{lease=\"projector\"} 1\n\
                    # TYPE plaint_grpc_requests_total counter\nplaint_grpc_requests_total 9\n";
        let g = parse_gauges("plaint-router", text);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].series, "plaint_routing_pending");
        assert_eq!((g[0].value, g[0].idle), (3.0, Some(0.0)));
        assert!(!g[0].at_idle());
        assert_eq!(g[1].series, "plaint_lease_held{lease=\"projector\"}");
        assert!(g[1].idle.is_none() && g[1].at_idle());
        assert_eq!(idle_value("plaint_projection_lag_events"), Some(0.0));
        assert_eq!(idle_value("plaint_projection_checkpoint"), None);
        assert_eq!(idle_value("plaint_sla_clocks_pending"), Some(0.0));
        assert_eq!(idle_value("plaint_sla_timers_pending"), None);
    }

    #[test]
    fn this_process_is_found_with_its_parent() {
        let me = std::process::id();
        assert!(processes().iter().any(|(p, _)| *p == me));
        assert!(smaps_mib(me, "Rss:") > 0.0);
    }
}
