//! The benchmark behind `plaint-ctl bench`: in one run on loopback, the raw
//! limits of this machine (calibration), then the whole system — both
//! services as separate processes, with their own NATS server and a fresh
//! database — every figure also as a ratio to the calibration, and a
//! correctness gate: a run counts only if every complaint intake accepted was
//! routed once and projected once.
//!
//! All of that runs once per fsync mode ([`Mode`]): with an fsync after
//! every write, as production runs NATS, and with NATS's default; each mode
//! with its own server, database, services and calibration, since the raw
//! limits differ by orders of magnitude between the two.
//!
//! It speaks to the services only as a client does: it starts their binaries
//! and talks gRPC to them, reads the event log through the bus, and measures
//! PostgreSQL on a table of its own; it links no service code.
//!
//! On a shared, noisy machine an absolute number means little; the ratio to
//! the raw limits measured minutes earlier on the same machine means a lot.

mod calibration;
mod ceiling;
mod database;
pub mod generate;
mod mode;
mod observe;
mod procs;
mod report;
mod reports;
mod scale;
mod sealing;
mod stats;
mod system;
mod targets;
mod timers;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use plaint_bus::{EventLog, Names, StreamSettings};
use serde_json::Value;

pub use calibration::complaints_table_sql;
pub use mode::{FsyncArg, Mode};
pub use report::Report;
pub use reports::Reports;
pub use scale::ScaleReport;
pub use timers::TimersReport;

use calibration::Calibration;
use database::BenchDatabase;
use observe::{Probe, audit};
use system::{Driver, Services};

/// Settings of `plaint-ctl bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Small counts and short phases (seconds): checks the correctness gate,
    /// not speed. What CI runs.
    #[arg(long)]
    pub quick: bool,
    /// Also write the results as JSON to this file (the global `--json`
    /// prints them to stdout instead of the table).
    #[arg(long, value_name = "PATH")]
    pub json_out: Option<PathBuf>,
    /// Directory holding the plaint-intake and plaint-router binaries.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// A PostgreSQL database URL with the right to create databases; the bench
    /// creates a fresh database beside it and drops it afterwards.
    #[arg(
        long,
        env = "PLAINT_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// The nats-server binary the bench starts its own server from.
    #[arg(long, env = "PLAINT_NATS_SERVER", default_value = "nats-server")]
    pub nats_server: PathBuf,
    /// Name prefix of the bench's database (`<prefix>_<hex>`).
    #[arg(long, default_value = "plaint_bench")]
    pub db_prefix: String,
    /// Run both services with mutual TLS (a CA made for the run) and drive
    /// them over https, so that the CPU per 1,000 complaints shows what TLS
    /// costs beside a run without it.
    #[arg(long, env = "PLAINT_BENCH_TLS")]
    pub tls: bool,
    /// Which fsync settings of nats-server to run the bench with, one after
    /// the other: `durable` (an fsync after every write, as production),
    /// `fast` (NATS's default), or `both` [default: both; with --scale,
    /// durable, and `both` is refused].
    #[arg(long, value_enum)]
    pub fsync: Option<FsyncArg>,
    /// Instead of the bench, the scale phase (not in CI): load this many
    /// complaints through the real services, a share of them walked through
    /// their lifecycle, and measure the queries, a policy simulation, a
    /// rebuild, memory and bytes per complaint at 10,000 complaints, at
    /// 100,000 and 300,000 when below it, and at this count. One fsync mode;
    /// `--fsync fast` loads sooner (no disk flush per append) and measures
    /// the same history.
    #[arg(long, value_name = "COMPLAINTS", conflicts_with = "timers")]
    pub scale: Option<u64>,
    /// Instead of the bench, the timers phase (not in CI): arm this many
    /// service-level timers (NATS scheduled messages) on a nats-server of
    /// its own; a quarter (at most 10,000) fall due over 10 s, another
    /// quarter (likewise) at one instant, the rest stay pending; report how
    /// late each fires after its due time (p50, p99, max) and the burst's
    /// firing rate. One fsync mode, durable unless `--fsync fast`.
    #[arg(long, value_name = "TIMERS")]
    pub timers: Option<u64>,
}

impl BenchArgs {
    /// The modes the bench runs, in order.
    fn modes(&self) -> &'static [Mode] {
        self.fsync.unwrap_or_default().modes()
    }

    /// The one mode the scale phase runs: durable unless `--fsync fast`.
    fn scale_mode(&self) -> anyhow::Result<Mode> {
        match self.fsync {
            None | Some(FsyncArg::Durable) => Ok(Mode::Durable),
            Some(FsyncArg::Fast) => Ok(Mode::Fast),
            Some(FsyncArg::Both) => bail!(
                "--scale runs one fsync mode (loading the history twice would double an hour's \
                 run): pass --fsync durable (the default) or --fsync fast"
            ),
        }
    }
}

/// Counts and durations of one kind of run.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// Length of one calibration run.
    pub(crate) calibration_run: Duration,
    /// Messages in the backlog a fetch calibration drains.
    pub(crate) fetch_backlog: u64,
    warmup: u64,
    c1: Duration,
    c64: Duration,
    throughput: Duration,
    /// Most messages waiting for the router while the throughput phase submits.
    backlog_bound: u64,
    open_loop: Duration,
    /// Most offered rate of the open-loop latency phase, whatever the mode's
    /// share of R_pub or e2e comes to.
    open_cap: f64,
    low_rate: f64,
    low_rate_for: Duration,
    /// Complaints in the drain phase's backlog: this many seconds of the
    /// measured end-to-end rate, within these bounds.
    drain_secs: f64,
    drain_bounds: (u64, u64),
}

impl Profile {
    fn full() -> Self {
        Self {
            calibration_run: Duration::from_secs(1),
            fetch_backlog: 20_000,
            warmup: 500,
            c1: Duration::from_secs(2),
            c64: Duration::from_secs(3),
            throughput: Duration::from_secs(6),
            backlog_bound: 2_000,
            open_loop: Duration::from_secs(5),
            open_cap: f64::INFINITY,
            low_rate: 100.0,
            low_rate_for: Duration::from_secs(10),
            drain_secs: 4.0,
            drain_bounds: (2_000, 30_000),
        }
    }

    fn quick() -> Self {
        Self {
            calibration_run: Duration::from_millis(60),
            fetch_backlog: 300,
            warmup: 20,
            c1: Duration::from_millis(200),
            c64: Duration::from_millis(300),
            throughput: Duration::from_millis(500),
            backlog_bound: 500,
            open_loop: Duration::from_millis(500),
            open_cap: 200.0,
            low_rate: 100.0,
            low_rate_for: Duration::from_millis(300),
            drain_secs: 0.0,
            drain_bounds: (200, 200),
        }
    }
}

/// The correctness gate's counts.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Complaints intake acknowledged as new.
    pub accepted: u64,
    /// Of those, complaints with a decision in the log.
    pub routed: u64,
    /// Of those, complaints the projection lists as routed.
    pub projected: u64,
    /// Accepted complaints missing a decision or a routed projection row.
    pub lost: u64,
    /// Complaints received or decided more than once, listed twice, or
    /// acknowledged as duplicates of a fresh ticket.
    pub duplicates: u64,
    /// Complaints in the log or the projection that intake never acknowledged.
    pub unexpected: u64,
    /// Submissions that failed (not acknowledged).
    pub submit_failures: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Log messages that could not be decoded.
    pub undecodable: u64,
    /// Messages in the log.
    pub log_messages: u64,
    /// Mean encoded size of a complaint event, bytes.
    pub mean_event_bytes: f64,
    /// Deliveries the routing consumer made over the whole run.
    pub routing_deliveries: u64,
    /// Events of the kinds it decides on: it should have been delivered
    /// these, once each, and none of its own decisions.
    pub decision_triggers: u64,
}

impl Gate {
    /// accepted = routed = projected, nothing lost, duplicated or unexpected.
    pub fn passed(&self) -> bool {
        self.accepted > 0
            && self.accepted == self.routed
            && self.accepted == self.projected
            && self.lost == 0
            && self.duplicates == 0
            && self.unexpected == 0
            && self.undecodable == 0
    }
}

/// Size of the calibration messages: the mean encoded complaint event of
/// the log after a bench run (a `complaint_received` of about 230 bytes and a
/// `complaint_routed` with its explanation of about 890), so the raw limits
/// are measured with messages the size of the log's. The gate reports the
/// mean of each run.
const MESSAGE_BYTES: usize = 560;

/// Runs the bench once per mode `args.fsync` names, one after the other;
/// each report says whether its gate passed.
pub async fn run_bench(args: &BenchArgs) -> anyhow::Result<Reports> {
    let mut reports = Reports::default();
    for &mode in args.modes() {
        reports.insert(run_mode(args, mode).await?);
    }
    Ok(reports)
}

/// What one run stands on: its work directory, its own nats-server and
/// database, and the services (started by the phases).
pub(crate) struct System {
    pub(crate) dir: PathBuf,
    pub(crate) nats: procs::Proc,
    pub(crate) nats_url: String,
    pub(crate) db: BenchDatabase,
    pub(crate) services: Services,
}

impl System {
    /// A work directory, a nats-server in `mode` and an empty database for
    /// one run; `what` names the run in the first line it prints.
    pub(crate) async fn start(args: &BenchArgs, mode: Mode, what: &str) -> anyhow::Result<Self> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("b{}", &token[..10]);
        let dir = std::env::temp_dir().join(format!("plaint-bench-{prefix}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        eprintln!(
            "plaint {what}{}, fsync {}: prefix {prefix}, work directory {}",
            if args.tls { " (mutual TLS)" } else { "" },
            mode.name(),
            dir.display()
        );
        let config = mode.write_nats_config(&dir)?;
        let (nats, nats_url) =
            procs::start_nats(&args.nats_server, &dir, config.as_deref()).await?;
        let db = match BenchDatabase::create(&args.database_url, &args.db_prefix).await {
            Ok(db) => db,
            Err(e) => {
                let _ = nats.stop().await;
                return Err(e).context(format!(
                    "cannot create the bench database via {}",
                    args.database_url
                ));
            }
        };
        let services = Services::new(
            dir.clone(),
            args.bin_dir.clone(),
            nats_url.clone(),
            prefix,
            db.url().to_owned(),
            args.tls,
        );
        let services = match services {
            Ok(s) => s,
            Err(e) => {
                let _ = nats.stop().await;
                let _ = db.drop_db().await;
                return Err(e);
            }
        };
        Ok(Self {
            dir,
            nats,
            nats_url,
            db,
            services,
        })
    }

    /// Stops everything the run started and drops its database; keeps the
    /// work directory (the services' logs) unless the run `succeeded`.
    pub(crate) async fn stop(mut self, succeeded: bool) {
        self.services.stop_all().await;
        if let Err(e) = self.nats.stop().await {
            eprintln!("  warning: stopping nats-server: {e:#}");
        }
        let db_name = self.db.name().to_owned();
        if let Err(e) = self.db.drop_db().await {
            eprintln!("  warning: cannot drop database {db_name}: {e}");
        }
        if succeeded {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("  logs kept in {}", self.dir.display());
        }
    }
}

/// One whole run in `mode`: its own nats-server, database, services and
/// calibration, all stopped or dropped afterwards.
async fn run_mode(args: &BenchArgs, mode: Mode) -> anyhow::Result<Report> {
    let profile = if args.quick {
        Profile::quick()
    } else {
        Profile::full()
    };
    let what = if args.quick { "bench (quick)" } else { "bench" };
    let mut system = System::start(args, mode, what).await?;
    let run = Run {
        args,
        profile: &profile,
        mode,
        nats_url: &system.nats_url,
        nats_pid: system.nats.pid,
    };
    let result = run_phases(&run, &system.db, &mut system.services).await;
    system.stop(result.is_ok()).await;
    result
}

/// What the phases of one mode's run share.
struct Run<'a> {
    args: &'a BenchArgs,
    profile: &'a Profile,
    mode: Mode,
    nats_url: &'a str,
    nats_pid: u32,
}

async fn run_phases(
    run: &Run<'_>,
    db: &BenchDatabase,
    services: &mut Services,
) -> anyhow::Result<Report> {
    let (args, p, nats_url, nats_pid) = (run.args, run.profile, run.nats_url, run.nats_pid);
    let started = Instant::now();
    eprintln!("calibration (median of 3 runs each)");
    let cal: Calibration =
        calibration::calibrate(nats_url, services.prefix(), db.url(), MESSAGE_BYTES, p).await?;

    eprintln!("sealing personal data, in process (median of 5 runs)");
    let sealing = sealing::measure()?;

    eprintln!("system: starting plaint-intake and plaint-router");
    services.start_intake().await?;
    services.start_router().await?;
    let (mut driver, client) = Driver::connect(services, 7).await?;

    eprintln!("  warm-up: {} complaints", p.warmup);
    driver
        .closed_loop(16, Duration::from_secs(60), p.warmup)
        .await?;
    driver.wait_caught_up(services).await?;

    eprintln!("  submit latency, concurrency 1");
    let c1 = driver.closed_loop(1, p.c1, u64::MAX).await?;
    driver.wait_caught_up(services).await?;
    eprintln!("  submit latency, concurrency 64");
    let c64 = driver.closed_loop(64, p.c64, u64::MAX).await?;
    driver.wait_caught_up(services).await?;

    eprintln!(
        "  end-to-end throughput (concurrency 64, backlog held under {})",
        p.backlog_bound
    );
    let throughput = driver
        .throughput(services, nats_pid, p.throughput, p.backlog_bound)
        .await?;

    let open_rate = run.mode.open_rate();
    let offered = open_rate.rate(cal.r_pub, throughput.rate()).min(p.open_cap);
    eprintln!(
        "  submit -> visible at {} = {offered:.0}/s (open loop)",
        open_rate.label()
    );
    let visible = driver.open_loop(services, offered, p.open_loop).await?;
    driver.wait_caught_up(services).await?;
    eprintln!("  submit -> visible at {:.0}/s (open loop)", p.low_rate);
    let low = driver
        .open_loop(services, p.low_rate, p.low_rate_for)
        .await?;
    driver.wait_caught_up(services).await?;

    let drain_n =
        ((throughput.rate() * p.drain_secs) as u64).clamp(p.drain_bounds.0, p.drain_bounds.1);
    eprintln!("  router drain of {drain_n} complaints (intake stopped, router restarted)");
    let drain = driver.drain(services, drain_n).await?;

    eprintln!("  projection rebuild from sequence 1");
    let rebuild = driver.rebuild().await?;
    let router_after = services
        .router
        .as_ref()
        .map(procs::Proc::usage)
        .unwrap_or_default();

    eprintln!("correctness gate");
    let gate = gate(&driver, &client, services).await?;
    driver.reconnect_router(services).await.ok();

    Ok(Report {
        mode: run.mode,
        store_fs: report::filesystem_of(&services.dir),
        quick: args.quick,
        tls: args.tls,
        machine: report::Machine::read(),
        calibration: cal,
        sealing,
        c1,
        c64,
        throughput,
        visible,
        low,
        drain,
        rebuild,
        router_after,
        gate,
        elapsed: started.elapsed(),
    })
}

/// Compares the ids intake acknowledged with the decisions in the log and the
/// routed rows of the projection.
async fn gate(
    driver: &Driver,
    client: &plaint_bus::Client,
    services: &Services,
) -> anyhow::Result<Gate> {
    let (accepted, mut duplicates, submit_failures, first_failure) = {
        let l = driver.ledger.lock().unwrap_or_else(|e| e.into_inner());
        (
            l.accepted.clone(),
            l.duplicates,
            l.failures,
            l.first_failure.clone(),
        )
    };
    let parse = |s: &str| uuid::Uuid::try_parse(s).ok();
    let mut accepted_set = HashSet::new();
    for id in &accepted {
        match parse(id) {
            Some(u) if accepted_set.insert(u) => {}
            _ => duplicates += 1,
        }
    }
    let log = EventLog::open(
        client.clone(),
        Names::new(services.prefix(), services.stream()).map_err(anyhow::Error::msg)?,
        &StreamSettings::default(),
        &services.personal()?,
    )
    .await?;
    let audit = audit(&log).await?;
    let routing_deliveries = Probe::new(client, services.stream(), &log.names().consumer("router"))
        .await?
        .deliveries()
        .await?;
    let listed = driver.list_all(audit.last_sequence).await?;
    let mut projected: HashMap<uuid::Uuid, bool> = HashMap::new();
    for (id, routed) in &listed {
        let Some(u) = parse(id) else { continue };
        if projected.insert(u, *routed).is_some() {
            duplicates += 1;
        }
    }
    for e in audit.by_complaint.values() {
        if e.received > 1 || e.routed + e.rerouted > 1 {
            duplicates += 1;
        }
    }
    let routed_in_log = |u: &uuid::Uuid| audit.by_complaint.get(u).is_some_and(|e| e.routed >= 1);
    let routed_in_view = |u: &uuid::Uuid| projected.get(u).copied().unwrap_or(false);
    let routed = accepted_set.iter().filter(|u| routed_in_log(u)).count() as u64;
    let projected_n = accepted_set.iter().filter(|u| routed_in_view(u)).count() as u64;
    let lost = accepted_set
        .iter()
        .filter(|u| !routed_in_log(u) || !routed_in_view(u))
        .count() as u64;
    let unexpected = audit
        .by_complaint
        .keys()
        .chain(projected.keys())
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|u| !accepted_set.contains(*u))
        .count() as u64;
    Ok(Gate {
        accepted: accepted_set.len() as u64,
        routed,
        projected: projected_n,
        lost,
        duplicates,
        unexpected,
        submit_failures,
        first_failure,
        undecodable: audit.undecodable,
        log_messages: audit.messages,
        mean_event_bytes: audit.complaint_event_bytes as f64
            / (audit.complaint_events.max(1)) as f64,
        routing_deliveries,
        decision_triggers: audit.decision_triggers,
    })
}

/// The timers phase alone, with `n` timers in `mode`.
pub async fn run_timers(args: &BenchArgs, mode: Mode, n: u64) -> anyhow::Result<TimersReport> {
    timers::run(args, mode, n).await
}

/// `plaint-ctl bench`: runs every mode asked for, prints the tables, writes
/// the JSON, and fails when a correctness gate does.
pub async fn run(args: BenchArgs, json_stdout: bool) -> anyhow::Result<()> {
    let reports = match (args.scale, args.timers) {
        (Some(complaints), _) => Reports {
            scale: Some(scale::run(&args, args.scale_mode()?, complaints).await?),
            ..Reports::default()
        },
        (None, Some(n)) => Reports {
            timers: Some(timers::run(&args, args.scale_mode()?, n).await?),
            ..Reports::default()
        },
        (None, None) => run_bench(&args).await?,
    };
    let json: Value = reports.to_json();
    if json_stdout {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{}", reports.table());
    }
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("JSON written to {}", path.display());
    }
    if let Some(r) = reports.iter().find(|r| !r.gate_passed()) {
        bail!(
            "the correctness gate failed in the {} mode: the run does not count",
            r.mode().name()
        );
    }
    if let Some(t) = &reports.timers
        && !t.passed()
    {
        bail!("the timers phase: not every timer that fell due fired in time, or one fired early");
    }
    if let Some(s) = &reports.scale
        && !s.gate_passed()
    {
        bail!(
            "the scale phase {}: the run does not count",
            s.failure().unwrap_or_else(|| "failed".to_owned())
        );
    }
    Ok(())
}
