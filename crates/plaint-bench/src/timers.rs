//! The timers phase (`plaint-ctl bench --timers N`, not in CI): how exactly
//! NATS's scheduled messages, the service-level timers' mechanism, fire with
//! many pending. On its own nats-server in one fsync mode: N timers armed
//! through the bus as the router arms them (a thousand of them due in an
//! hour, so they stay pending throughout), the rest due one after the other
//! over a spread of seconds once all are armed; a durable consumer like the
//! router's reads them as they fire and records how late each came after its
//! due time.
//!
//! What it leaves out: the router's work per fired timer (reading the
//! complaint, appending the breach), which the end-to-end figures cover.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt as _;
use plaint_bus::{EventLog, Names, StreamSettings, Timers};
use plaint_domain::Timestamp;
use serde_json::{Value, json};

use crate::BenchArgs;
use crate::mode::Mode;
use crate::procs;
use crate::stats::{Latency, finite};

/// Timers due an hour later: pending throughout the phase.
const HELD: u64 = 1_000;
/// Over how long the others fall due.
const SPREAD: Duration = Duration::from_secs(10);
/// Arms in flight at once.
const IN_FLIGHT: usize = 256;
/// How long after the last due time the phase waits for stragglers.
const GRACE: Duration = Duration::from_secs(60);

/// What the timers phase measured.
#[derive(Debug, Clone)]
pub struct TimersReport {
    mode: Mode,
    armed: u64,
    arm_secs: f64,
    pending_after_arming: u64,
    due: u64,
    fired: u64,
    early: u64,
    delay: Latency,
    nats_peak_rss_mib: f64,
}

impl TimersReport {
    /// Timers that fell due during the phase.
    pub fn due(&self) -> u64 {
        self.due
    }

    /// Of those, timers read as fired.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    /// Whether every timer that fell due fired, none before its time.
    pub fn passed(&self) -> bool {
        self.fired == self.due && self.early == 0
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\ntimers (fsync {}): {} armed in {:.1} s ({:.0}/s), {} pending after arming",
            self.mode.name(),
            self.armed,
            self.arm_secs,
            self.armed as f64 / self.arm_secs.max(1e-9),
            self.pending_after_arming
        );
        let _ = writeln!(
            out,
            "  {} due over {} s: {} fired ({} before their due time); delay after the due time \
             p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target: within 1 s)",
            self.due,
            SPREAD.as_secs(),
            self.fired,
            self.early,
            self.delay.p50,
            self.delay.p99,
            self.delay.max
        );
        let _ = writeln!(
            out,
            "  nats-server peak RSS {:.0} MiB",
            self.nats_peak_rss_mib
        );
        out
    }

    /// The report as JSON (the key `timers` of the bench's output).
    pub fn to_json(&self) -> Value {
        json!({
            "mode": self.mode.name(),
            "armed": self.armed,
            "arm_secs": finite(self.arm_secs),
            "pending_after_arming": self.pending_after_arming,
            "due": self.due,
            "spread_secs": SPREAD.as_secs(),
            "fired": self.fired,
            "early": self.early,
            "delay": self.delay.to_json(),
            "nats_peak_rss_mib": finite(self.nats_peak_rss_mib),
            "passed": self.passed(),
        })
    }
}

/// Runs the phase with `n` timers in `mode`.
pub(crate) async fn run(args: &BenchArgs, mode: Mode, n: u64) -> anyhow::Result<TimersReport> {
    anyhow::ensure!(
        n > HELD,
        "--timers needs more than {HELD} timers ({HELD} of them stay pending)"
    );
    let token = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("t{}", &token[..10]);
    let dir = std::env::temp_dir().join(format!("plaint-bench-{prefix}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    eprintln!(
        "plaint timers phase, fsync {}: {n} timers, work directory {}",
        mode.name(),
        dir.display()
    );
    let config = mode.write_nats_config(&dir)?;
    let (nats, url) = procs::start_nats(&args.nats_server, &dir, config.as_deref()).await?;
    let measured = measure(&url, &prefix, mode, n).await;
    let peak = nats.usage().peak_rss_mib;
    if let Err(e) = nats.stop().await {
        eprintln!("  warning: stopping nats-server: {e:#}");
    }
    let mut report = measured?;
    report.nats_peak_rss_mib = peak;
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(report)
}

async fn measure(url: &str, prefix: &str, mode: Mode, n: u64) -> anyhow::Result<TimersReport> {
    let client = plaint_bus::connect(url, "plaint-bench-timers").await?;
    let names = Names::new(prefix, &format!("{}_LOG", prefix.to_uppercase()))
        .map_err(anyhow::Error::msg)?;
    let personal = plaint_bus::PersonalDataSettings::for_tests(prefix)?;
    let log = EventLog::open(client, names, &StreamSettings::default(), &personal).await?;
    let timers = Timers::open(log.clone(), plaint_bus::timers::DEFAULT_FIRED_KEPT).await?;

    // The held ones first, which also tells how fast arming goes, so the
    // others can be given due times after the last of them is armed.
    let started = Instant::now();
    let hour = now().plus_millis(3_600_000);
    arm(&timers, (0..HELD).map(|i| (format!("held.{i}"), hour))).await?;
    let rate = HELD as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let due = n - HELD;
    let lead = Duration::from_secs_f64(due as f64 / rate * 1.5 + 5.0);
    let first_due = now().plus_millis(i64::try_from(lead.as_millis()).unwrap_or(i64::MAX));
    let step_ms = SPREAD.as_millis() as f64 / due as f64;
    arm(
        &timers,
        (0..due).map(|i| {
            let at = first_due.plus_millis((i as f64 * step_ms) as i64);
            (format!("due.{i}"), at)
        }),
    )
    .await?;
    let arm_secs = started.elapsed().as_secs_f64();
    let pending_after_arming = timers.pending().await?;
    let armed_late = now() > first_due;
    anyhow::ensure!(
        !armed_late,
        "arming took longer than foreseen: the first timers fell due before the last was armed"
    );

    let settings = timers.fired_consumer(log.names().consumer("bench_timers"));
    let mut fired = timers.consume(&settings).await?;
    let deadline = Instant::now() + lead + SPREAD + GRACE;
    let (mut delays, mut early) = (Vec::with_capacity(due as usize), 0_u64);
    while (delays.len() as u64) < due && Instant::now() < deadline {
        let next = tokio::time::timeout(Duration::from_secs(1), fired.next()).await;
        let Ok(Some(delivery)) = next else { continue };
        let d = delivery?;
        let received = now();
        let due_at: i64 = std::str::from_utf8(d.payload())
            .ok()
            .and_then(|t| t.parse().ok())
            .context("a fired timer without its due time")?;
        let late = received.as_millis() - due_at;
        if late < 0 {
            early += 1;
        }
        delays.push(late as f64);
        d.ack().await?;
    }
    Ok(TimersReport {
        mode,
        armed: n,
        arm_secs,
        pending_after_arming,
        due,
        fired: delays.len() as u64,
        early,
        delay: Latency::of_ms(delays),
        nats_peak_rss_mib: f64::NAN,
    })
}

/// Arms every `(key, due_at)`, a bounded number at a time; each carries
/// its due time so the reader can tell how late it came.
async fn arm(
    timers: &Timers,
    all: impl Iterator<Item = (String, Timestamp)>,
) -> anyhow::Result<()> {
    let mut arms = futures::stream::iter(all.map(|(key, at)| async move {
        let body = Bytes::from(at.as_millis().to_string());
        timers.arm(&key, at, body).await
    }))
    .buffer_unordered(IN_FLIGHT);
    while let Some(armed) = arms.next().await {
        armed?;
    }
    Ok(())
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
