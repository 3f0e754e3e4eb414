//! Part 1: the raw limits of this machine, measured in the same run, each the
//! median of three short runs.

mod nats;
mod postgres;

pub use postgres::complaints_table_sql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::Profile;
use crate::stats::{Latency, finite, median};
use nats::Calibrator;
use postgres::upsert_complaints;

/// The raw limits.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calibration {
    /// Size of the calibration messages, bytes.
    pub(crate) message_bytes: usize,
    /// Pipelined publish, window 256, msgs/s.
    pub(crate) r_pub: f64,
    /// Publish-and-await, one in flight: rate (msgs/s) and latency.
    pub(crate) rt_rate: f64,
    pub(crate) rt: Latency,
    /// Pipelined publish with a message id and the expected last subject
    /// sequence, round-robin over 10k subjects, msgs/s.
    pub(crate) r_els: f64,
    /// Atomic batch publish, [`BATCH`] messages a batch, one batch in
    /// flight, msgs/s; `None` when the server or client refused (then
    /// `r_batch_error` says why).
    pub(crate) r_batch: Option<f64>,
    /// Why there is no `r_batch`.
    pub(crate) r_batch_error: Option<String>,
    /// Pull fetch of a backlog with acks, msgs/s.
    pub(crate) r_fetch: f64,
    /// The same fetch with `AckPolicy::None`, msgs/s: beside `r_fetch`, what
    /// per-message acks cost at most.
    pub(crate) r_fetch_no_ack: f64,
    /// Batched upsert of complaint rows, 100 per transaction, rows/s.
    pub(crate) r_pg_b: f64,
    /// One complaint row per transaction, rows/s.
    pub(crate) r_pg_1: f64,
    /// gRPC unary round trips at concurrency 64, calls/s.
    pub(crate) r_grpc: f64,
    /// gRPC unary latency at concurrency 1.
    pub(crate) grpc_c1: Latency,
    /// Every single run, for the JSON.
    pub(crate) runs: Value,
}

/// Messages in one atomic batch of the R_batch calibration: a batch the size
/// of the projector's and the upsert calibration's.
pub(crate) const BATCH: u64 = 100;

/// Medians of three runs of `run`, which returns one figure per run.
async fn three<F, Fut>(what: &str, mut run: F) -> anyhow::Result<(f64, Vec<f64>)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<f64>>,
{
    let mut values = Vec::with_capacity(3);
    for _ in 0..3 {
        values.push(run().await.with_context(|| format!("calibrating {what}"))?);
    }
    Ok((median(values.clone()), values))
}

/// Measures every raw limit against the bench's own NATS server and database.
pub(crate) async fn calibrate(
    nats_url: &str,
    prefix: &str,
    database_url: &str,
    message_bytes: usize,
    p: &Profile,
) -> anyhow::Result<Calibration> {
    let client = plaint_bus::connect(nats_url, "plaint-ctl-bench-calibration").await?;
    let cal = Calibrator::new(client.clone(), &format!("{}_CAL", prefix.to_uppercase()));
    let mut c = Calibration {
        message_bytes,
        ..Calibration::default()
    };
    let d = p.calibration_run;

    eprintln!("  NATS pipelined publish (window 256)");
    let (r_pub, pub_runs) = three("R_pub", || async {
        Ok(cal
            .publish_pipelined(message_bytes, 256, d, u64::MAX)
            .await?
            .rate())
    })
    .await?;
    c.r_pub = r_pub;

    eprintln!("  NATS publish-and-await (one in flight)");
    let mut rt_runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let samples = cal
            .publish_round_trips(message_bytes, d / 2, u64::MAX)
            .await
            .context("calibrating the publish round trip")?;
        let rate = samples.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
        rt_runs.push((rate, Latency::of(&samples)));
    }
    c.rt_rate = median(rt_runs.iter().map(|r| r.0).collect());
    c.rt = Latency {
        count: rt_runs.iter().map(|r| r.1.count).sum(),
        p50: median(rt_runs.iter().map(|r| r.1.p50).collect()),
        p99: median(rt_runs.iter().map(|r| r.1.p99).collect()),
        p999: median(rt_runs.iter().map(|r| r.1.p999).collect()),
        max: rt_runs.iter().map(|r| r.1.max).fold(0.0, f64::max),
    };

    eprintln!("  NATS pipelined publish with expected subject sequence (10k subjects)");
    let (r_els, els_runs) = three("R_els", || async {
        Ok(cal
            .publish_expected(message_bytes, 256, 10_000, d, u64::MAX)
            .await?
            .rate())
    })
    .await?;
    c.r_els = r_els;

    eprintln!("  NATS atomic batch publish (batches of {BATCH}, one in flight)");
    let batch_runs = r_batch(&cal, &mut c, message_bytes, d).await;

    eprintln!("  NATS pull fetch of a backlog with acks");
    let (r_fetch, fetch_runs) = three("R_fetch", || async {
        Ok(cal
            .fetch_backlog(message_bytes, p.fetch_backlog)
            .await?
            .rate())
    })
    .await?;
    c.r_fetch = r_fetch;
    eprintln!("  NATS pull fetch of the same backlog without acks (AckPolicy::None)");
    let (r_fetch_no_ack, fetch_no_ack_runs) = three("R_fetch without acks", || async {
        Ok(cal
            .fetch_backlog_no_ack(message_bytes, p.fetch_backlog)
            .await?
            .rate())
    })
    .await?;
    c.r_fetch_no_ack = r_fetch_no_ack;
    client.flush().await.ok();
    drop(client);

    eprintln!("  PostgreSQL upserts of complaint rows (batch 100, one connection)");
    let (r_pg_b, pg_b_runs) = three("R_pgB", || async {
        Ok(upsert_complaints(database_url, 100, d, u64::MAX)
            .await?
            .rate())
    })
    .await?;
    c.r_pg_b = r_pg_b;
    eprintln!("  PostgreSQL one complaint row per transaction");
    let (r_pg_1, pg_1_runs) = three("R_pg1", || async {
        Ok(upsert_complaints(database_url, 1, d, u64::MAX)
            .await?
            .rate())
    })
    .await?;
    c.r_pg_1 = r_pg_1;

    eprintln!("  gRPC unary round trips (in-process health service)");
    let (grpc_rate, grpc_c1, grpc_runs) = grpc(d).await?;
    c.r_grpc = grpc_rate;
    c.grpc_c1 = grpc_c1;

    c.runs = json!({
        "r_pub": pub_runs,
        "round_trip": rt_runs.iter().map(|(rate, l)| json!({
            "rate": finite(*rate), "p50_ms": finite(l.p50), "p99_ms": finite(l.p99)
        })).collect::<Vec<_>>(),
        "r_els": els_runs,
        "r_batch": batch_runs,
        "r_fetch": fetch_runs,
        "r_fetch_no_ack": fetch_no_ack_runs,
        "r_pg_b": pg_b_runs,
        "r_pg_1": pg_1_runs,
        "r_grpc": grpc_runs,
    });
    Ok(c)
}

/// Measures R_batch into `c`; a refusal (a server without atomic batches,
/// or one that rejects them) is recorded as its error text, not as a figure,
/// and the calibration goes on. Returns the single runs.
async fn r_batch(cal: &Calibrator, c: &mut Calibration, bytes: usize, d: Duration) -> Vec<f64> {
    let measured = three("R_batch", || async {
        Ok(cal
            .publish_atomic_batches(bytes, BATCH, d, u64::MAX)
            .await?
            .rate())
    })
    .await;
    match measured {
        Ok((rate, runs)) => {
            c.r_batch = Some(rate);
            runs
        }
        Err(e) => {
            eprintln!("    unavailable: {e:#}");
            c.r_batch_error = Some(format!("{e:#}"));
            Vec::new()
        }
    }
}

/// A trivial tonic server (the standard health service) in this process, and
/// unary `Check` calls over one channel: at concurrency 64 for the rate, at
/// concurrency 1 for the latency.
async fn grpc(d: Duration) -> anyhow::Result<(f64, Latency, Vec<f64>)> {
    let (_reporter, service) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    let result = async {
        let channel = crate::procs::channel(port).await?;
        let client = HealthClient::new(channel);
        let mut rates = Vec::new();
        for _ in 0..3 {
            rates.push(grpc_concurrent(&client, 64, d).await?);
        }
        let mut c1 = Vec::new();
        for _ in 0..3 {
            let mut one = client.clone();
            let mut samples = Vec::new();
            let started = Instant::now();
            while started.elapsed() < d / 2 {
                let t = Instant::now();
                one.check(HealthCheckRequest::default()).await?;
                samples.push(t.elapsed());
            }
            c1.push(Latency::of(&samples));
        }
        let latency = Latency {
            count: c1.iter().map(|l| l.count).sum(),
            p50: median(c1.iter().map(|l| l.p50).collect()),
            p99: median(c1.iter().map(|l| l.p99).collect()),
            p999: median(c1.iter().map(|l| l.p999).collect()),
            max: c1.iter().map(|l| l.max).fold(0.0, f64::max),
        };
        Ok::<_, anyhow::Error>((median(rates.clone()), latency, rates))
    }
    .await;
    server.abort();
    result
}

async fn grpc_concurrent(
    client: &HealthClient<tonic::transport::Channel>,
    concurrency: usize,
    d: Duration,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let mut c = client.clone();
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            while started.elapsed() < d {
                c.check(HealthCheckRequest::default()).await?;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<(), tonic::Status>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let calls = done.load(std::sync::atomic::Ordering::Relaxed);
    Ok(calls as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

impl Calibration {
    /// R_batch as a share of R_pub.
    pub(crate) fn batch_ratio(&self) -> Option<f64> {
        self.r_batch.map(|r| r / self.r_pub)
    }

    /// How many pipelined publishes one atomic batch takes the time of
    /// (batch time × R_pub). With an fsync after every write each of those
    /// publishes costs one fsync and more besides, so this bounds the fsyncs
    /// a batch costs from above: about [`BATCH`] if every message of the
    /// batch is synced on its own, far fewer if the batch is synced at once.
    pub(crate) fn publishes_per_batch(&self) -> Option<f64> {
        self.r_batch
            .filter(|r| *r > 0.0)
            .map(|r| BATCH as f64 / r * self.r_pub)
    }

    /// What one per-message ack costs the fetch, µs: the time per message
    /// with acks minus without. `None` when either rate is missing.
    pub(crate) fn ack_cost_us(&self) -> Option<f64> {
        (self.r_fetch > 0.0 && self.r_fetch_no_ack > 0.0)
            .then(|| (1.0 / self.r_fetch - 1.0 / self.r_fetch_no_ack) * 1e6)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "message_bytes": self.message_bytes,
            "r_pub_msgs_per_s": finite(self.r_pub),
            "publish_round_trip": {
                "rate_per_s": finite(self.rt_rate),
                "p50_ms": finite(self.rt.p50),
                "p99_ms": finite(self.rt.p99),
            },
            "r_els_msgs_per_s": finite(self.r_els),
            "r_batch": {
                "msgs_per_s": self.r_batch.map(finite),
                "batch_messages": BATCH,
                "ratio_to_r_pub": self.batch_ratio().map(finite),
                "publishes_per_batch": self.publishes_per_batch().map(finite),
                "error": self.r_batch_error,
            },
            "r_fetch_msgs_per_s": finite(self.r_fetch),
            "r_fetch_no_ack": {
                "msgs_per_s": finite(self.r_fetch_no_ack),
                "ratio_to_r_fetch": finite(self.r_fetch_no_ack / self.r_fetch),
                "ack_cost_us_per_msg": self.ack_cost_us().map(finite),
                "how": "the same backlog and pulls with AckPolicy::None",
            },
            "r_pg_b_rows_per_s": finite(self.r_pg_b),
            "r_pg_1_rows_per_s": finite(self.r_pg_1),
            "r_grpc_calls_per_s": finite(self.r_grpc),
            "grpc_c1": {
                "p50_ms": finite(self.grpc_c1.p50),
                "p99_ms": finite(self.grpc_c1.p99),
            },
            "runs": self.runs,
        })
    }
}
