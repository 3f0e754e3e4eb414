//! The scale phase (`plaint-ctl bench --scale N`, not in CI): a long history
//! loaded through the real services, and at checkpoints on the way (10,000
//! complaints, 100,000 and 300,000 when below N, and N) what a long-lived
//! system must keep flat: the latency of every query, a policy simulation
//! over the whole history, the rebuild rate, each process's memory, the
//! bytes a complaint takes, submit → visible at 100/s, and the gauges at
//! rest once the work is done.
//!
//! Each checkpoint measures with the load stopped and the router caught up,
//! in one order: memory at rest and storage, the queries (on the tables as
//! the projector grew them), the simulation, the open loop, the rebuild
//! (which leaves fresh tables, so it comes after the queries), the gauges.

mod load;
mod measure;
mod report;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::mode::Mode;
use crate::report::{Machine, filesystem_of};
use crate::stats::Latency;
use crate::system::{Driver, OpenLoop, Rebuild, Services};
use crate::{BenchArgs, System};
use load::{LoadStats, Loader, pace};
use measure::{Gauges, ListFilter, Memory, MemoryWatch, Pids, QueryFigure, Simulated, Storage};

pub use report::ScaleReport;

/// The first checkpoint: the figures every later one is held against.
pub(crate) const FIRST: u64 = 10_000;
/// Checkpoints between the first and N, when below N.
const BETWEEN: [u64; 2] = [100_000, 300_000];
/// Seed of the load (complaints, customers, lifecycle plans, query samples).
const SEED: u64 = 11;
/// The open loop's rate and length: the bench's low-rate phase.
const OPEN_RATE: f64 = 100.0;
const OPEN_FOR: Duration = Duration::from_secs(10);
/// How long a policy simulation or a rebuild over the history may take.
const LONG_CALL: Duration = Duration::from_secs(1800);
/// How long the router may take to catch up at a checkpoint.
const SETTLE: Duration = Duration::from_secs(600);

/// What one checkpoint measured; a measurement that failed keeps its error.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    /// Complaints the load had submitted.
    pub(crate) loaded: u64,
    /// Complaints in the projection, at rest.
    pub(crate) complaints: u64,
    /// The load's counts so far.
    pub(crate) stats: LoadStats,
    /// This stage's load: complaints added and how long it took.
    pub(crate) added: u64,
    pub(crate) load_elapsed: Duration,
    /// CPU seconds each process spent per 1,000 complaints of this stage's
    /// load (submissions, walks, routing and projecting them); in a
    /// [`Memory`] for its three processes (PostgreSQL 0).
    pub(crate) cpu_per_1k: Memory,
    /// The latency of every intake call of this stage's load, by method, as
    /// its client saw it (at concurrency 64: queueing included).
    pub(crate) load_calls: Vec<(&'static str, Latency)>,
    /// Memory at rest (after catching up, before measuring).
    pub(crate) rest: Memory,
    /// The highest memory since the previous checkpoint (load and measurements).
    pub(crate) peak: Memory,
    /// PostgreSQL's processes and their summed RSS at rest, MiB.
    pub(crate) postgres_processes: usize,
    pub(crate) postgres_rss_sum: f64,
    pub(crate) storage: Result<Storage, String>,
    pub(crate) queries: Vec<QueryFigure>,
    pub(crate) simulate: Result<Simulated, String>,
    pub(crate) visible: Result<OpenLoop, String>,
    /// The rebuild and the router's highest memory during it, MiB.
    pub(crate) rebuild: Result<(Rebuild, f64), String>,
    pub(crate) gauges: Result<Gauges, String>,
    /// How long each measurement took.
    pub(crate) durations: Vec<(&'static str, Duration)>,
}

/// The checkpoints of a run to `n` complaints.
fn checkpoints(n: u64) -> Vec<u64> {
    let mut out = vec![FIRST];
    out.extend(BETWEEN.iter().copied().filter(|&c| c < n));
    out.push(n);
    out
}

/// Runs the scale phase to `n` complaints in `mode`. A failure part-way
/// still gives a report of what was measured, with the failure in it.
pub(crate) async fn run(args: &BenchArgs, mode: Mode, n: u64) -> anyhow::Result<ScaleReport> {
    if n <= FIRST {
        bail!(
            "--scale must be more than {FIRST}, the first checkpoint every later one is held against"
        );
    }
    if args.quick {
        bail!("--scale and --quick do not go together: the scale phase has no reduced form");
    }
    if mode == Mode::Durable {
        eprintln!(
            "  note: with an fsync after every write, submissions run at about a third of \
             the fast mode's rate; --fsync fast loads the same history sooner, and every \
             figure but submit → visible is measured on the same tables and log"
        );
    }
    let mut system = System::start(args, mode, &format!("bench --scale {n}")).await?;
    let started = Instant::now();
    let mut report = ScaleReport::new(
        mode,
        n,
        args.tls,
        Machine::read(),
        filesystem_of(&system.dir),
    );
    let result = phases(&mut system, &mut report, n).await;
    report.elapsed = started.elapsed();
    if let Err(e) = &result {
        eprintln!("  the scale phase stopped: {e:#}");
        report.error = Some(format!("{e:#}"));
    }
    system.stop(result.is_ok()).await;
    Ok(report)
}

async fn phases(system: &mut System, report: &mut ScaleReport, n: u64) -> anyhow::Result<()> {
    let services = &mut system.services;
    eprintln!("system: starting plaint-intake and plaint-router");
    services.start_intake().await?;
    services.start_router().await?;
    let (driver, client) = Driver::connect(services, SEED).await?;
    let postmaster = match measure::postmaster_of(system.db.url()).await {
        Ok((pid, shared_buffers)) => {
            report.shared_buffers = shared_buffers;
            Some(pid)
        }
        Err(e) => {
            eprintln!("  warning: PostgreSQL's memory will not be measured: {e:#}");
            None
        }
    };
    let pids = Pids {
        intake: services.intake.as_ref().map_or(0, |p| p.pid),
        router: services.router.as_ref().map_or(0, |p| p.pid),
        nats: system.nats.pid,
        postmaster,
    };
    let mut watch = MemoryWatch::start(pids);
    let mut loader = Loader::new(driver.intake(), SEED);
    let ctx = Ctx {
        driver: &driver,
        client: &client,
        db_url: system.db.url(),
        pids,
    };
    let result = async {
        for target in checkpoints(n) {
            let c = checkpoint(&ctx, services, &mut loader, &mut watch, report, target).await?;
            report.checkpoints.push(c);
        }
        // The gate's count: every accepted complaint in the projection, routed.
        settle(&driver, services, &loader).await?;
        let (projected, unrouted) = measure::projected_complaints(&driver.query()).await?;
        report.accepted = loader.stats.accepted + driver.accepted_count();
        report.projected = projected;
        report.unrouted = unrouted;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    report.load = loader.stats.clone();
    watch.stop().await;
    result
}

/// What a checkpoint's measurements share.
struct Ctx<'a> {
    driver: &'a Driver,
    client: &'a plaint_bus::Client,
    db_url: &'a str,
    pids: Pids,
}

/// Waits until the router has routed and projected everything the load and
/// the open loops submitted.
async fn settle(driver: &Driver, services: &mut Services, loader: &Loader) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE;
    let want = loader.stats.accepted + driver.accepted_count();
    loop {
        pace(driver, services, 0, 0).await?;
        let (total, unrouted) = measure::projected_complaints(&driver.query()).await?;
        if total >= want && unrouted == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the projection shows {total} complaints ({unrouted} not routed) after {SETTLE:?}, \
                 {want} were accepted"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn checkpoint(
    ctx: &Ctx<'_>,
    services: &mut Services,
    loader: &mut Loader,
    watch: &mut MemoryWatch,
    report: &mut ScaleReport,
    target: u64,
) -> anyhow::Result<Checkpoint> {
    let driver = ctx.driver;
    let before = loader.len() as u64;
    eprintln!("load to {target} complaints");
    let started = Instant::now();
    let cpu_before = ctx.pids.cpu();
    loader
        .load_to(usize::try_from(target)?, driver, services)
        .await?;
    settle(driver, services, loader).await?;
    let load_elapsed = started.elapsed();
    let load_calls = loader.timings.take();
    let cpu_after = ctx.pids.cpu();
    let per_1k = |a: f64, b: f64| (b - a) / (loader.len() as u64 - before).max(1) as f64 * 1e3;
    let cpu_per_1k = Memory {
        intake: per_1k(cpu_before.intake, cpu_after.intake),
        router: per_1k(cpu_before.router, cpu_after.router),
        nats: per_1k(cpu_before.nats, cpu_after.nats),
        postgres: 0.0,
    };
    let mut durations = vec![("load and catch up", load_elapsed)];
    let mut timed = |what: &'static str, since: Instant| durations.push((what, since.elapsed()));

    eprintln!("checkpoint at {target}: memory at rest, storage");
    // A moment for the allocators and the gauges to see the work is done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rest = ctx.pids.now();
    let (_, postgres_rss_sum, postgres_processes) = ctx
        .pids
        .postmaster
        .map_or((0.0, 0.0, 0), measure::postgres_memory);
    let (complaints, _) = measure::projected_complaints(&driver.query()).await?;
    let t = Instant::now();
    let storage = measure::storage(ctx.db_url, ctx.client, services.stream())
        .await
        .map_err(|e| format!("{e:#}"));
    timed("storage", t);

    let filter = match report.filter {
        Some(f) => f,
        None => {
            let f = measure::busiest_route(&driver.query()).await?;
            report.filter = Some(f);
            f
        }
    };
    eprintln!(
        "  queries ({} rounds of {} calls each)",
        measure::ROUNDS,
        measure::CALLS
    );
    let t = Instant::now();
    let queries = measure::queries(&driver.query(), loader, filter, SEED).await;
    timed("queries", t);

    eprintln!("  SimulatePolicy over the whole history ({complaints} complaints)");
    let t = Instant::now();
    let simulate = async {
        let long = services.router_long(LONG_CALL).await?;
        measure::simulate(long, &driver.admin(), ctx.pids.router, complaints).await
    }
    .await
    .map_err(|e| format!("{e:#}"));
    timed("SimulatePolicy", t);

    eprintln!("  submit -> visible at {OPEN_RATE:.0}/s for {OPEN_FOR:?} (open loop)");
    let t = Instant::now();
    let visible = driver
        .open_loop(services, OPEN_RATE, OPEN_FOR)
        .await
        .map_err(|e| format!("{e:#}"));
    settle(driver, services, loader).await?;
    timed("open loop", t);

    eprintln!("  projection rebuild from sequence 1");
    let t = Instant::now();
    let (rebuilt, router_peak) = measure::peak_during(ctx.pids.router, driver.rebuild()).await;
    let rebuild = rebuilt
        .map(|r| (r, router_peak))
        .map_err(|e| format!("{e:#}"));
    settle(driver, services, loader).await?;
    timed("rebuild", t);

    eprintln!("  gauges at rest");
    let t = Instant::now();
    let (intake_metrics, router_metrics) = services.metrics_ports();
    let gauges = measure::gauges(intake_metrics, router_metrics)
        .await
        .map_err(|e| format!("{e:#}"));
    timed("gauges", t);

    let peak = watch.take();
    let c = Checkpoint {
        loaded: loader.len() as u64,
        complaints,
        stats: loader.stats.clone(),
        added: loader.len() as u64 - before,
        load_elapsed,
        cpu_per_1k,
        load_calls,
        rest,
        peak,
        postgres_processes,
        postgres_rss_sum,
        storage,
        queries,
        simulate,
        visible,
        rebuild,
        gauges,
        durations,
    };
    eprintln!("{}", report::checkpoint_line(&c));
    Ok(c)
}

/// Checks a filter was chosen (for the report's notes).
pub(crate) fn filter_names(f: ListFilter) -> anyhow::Result<(String, String)> {
    let route = plaint_proto::events::Route::try_from(f.route)
        .context("the list filter's route")?
        .as_str_name()
        .to_owned();
    let status = plaint_proto::router::Status::try_from(f.status)
        .context("the list filter's status")?
        .as_str_name()
        .to_owned();
    Ok((route, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_the_first_those_between_below_n_and_n() {
        assert_eq!(checkpoints(20_000), [10_000, 20_000]);
        assert_eq!(checkpoints(300_000), [10_000, 100_000, 300_000]);
        assert_eq!(
            checkpoints(1_000_000),
            [10_000, 100_000, 300_000, 1_000_000]
        );
    }
}
