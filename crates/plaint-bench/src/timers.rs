//! The timers phase (`plaint-ctl bench --timers N`, not in CI): how exactly
//! NATS's scheduled messages, the service-level timers' mechanism, fire with
//! many pending. On its own nats-server in one fsync mode, N timers are armed
//! through the bus as the router arms them: most due in an hour (pending
//! throughout), then a steady stream (up to 10,000 falling due over 10 s,
//! 1,000 a second: several times what a busy deployment's clocks ask), then
//! a burst (up to 10,000 due at the same instant: what fires at once after
//! an outage). A durable consumer like the router's reads them as they fire
//! and records how late each came after its due time; the burst also gives
//! the rate at which the server fires.
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

/// Most timers of the steady stream, and of the burst.
const MAX_PART: u64 = 10_000;
/// Over how long the steady stream falls due.
const SPREAD: Duration = Duration::from_secs(10);
/// Timers armed first, to learn how fast arming goes.
const PROBE: u64 = 500;
/// Seconds between the last arm and the first timer due, beyond the time
/// arming is expected to take, for 100,000 timers (fewer settle sooner).
const SETTLE_SECS: f64 = 15.0;
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
    held: u64,
    steady: Part,
    burst: Part,
    /// The burst's timers read per second, from its due time to the last.
    burst_rate: f64,
    nats_peak_rss_mib: f64,
}

/// What one part (steady or burst) measured.
#[derive(Debug, Clone, Default)]
struct Part {
    due: u64,
    fired: u64,
    early: u64,
    delay: Latency,
}

impl Part {
    fn json(&self) -> Value {
        json!({"due": self.due, "fired": self.fired, "early": self.early, "delay": self.delay.to_json()})
    }
}

impl TimersReport {
    /// Timers that fell due during the phase.
    pub fn due(&self) -> u64 {
        self.steady.due + self.burst.due
    }

    /// Of those, timers read as fired.
    pub fn fired(&self) -> u64 {
        self.steady.fired + self.burst.fired
    }

    /// Whether every timer that fell due fired, none before its time.
    pub fn passed(&self) -> bool {
        self.fired() == self.due() && self.steady.early + self.burst.early == 0
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\ntimers (fsync {}): {} armed in {:.1} s ({:.0}/s), {} pending after arming, {} of \
             them due in an hour",
            self.mode.name(),
            self.armed,
            self.arm_secs,
            self.armed as f64 / self.arm_secs.max(1e-9),
            self.pending_after_arming,
            self.held
        );
        for (what, part) in [
            (
                format!(
                    "steady, {} due over {} s",
                    self.steady.due,
                    SPREAD.as_secs()
                ),
                &self.steady,
            ),
            (
                format!("burst, {} due at once", self.burst.due),
                &self.burst,
            ),
        ] {
            let _ = writeln!(
                out,
                "  {what}: {} fired ({} early); late by p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                part.fired, part.early, part.delay.p50, part.delay.p99, part.delay.max
            );
        }
        let _ = writeln!(
            out,
            "  the burst fired at {:.0} timers/s; target: within 1 s of the due time",
            self.burst_rate
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
            "held": self.held,
            "spread_secs": SPREAD.as_secs(),
            "steady": self.steady.json(),
            "burst": self.burst.json(),
            "burst_fired_per_sec": finite(self.burst_rate),
            "nats_peak_rss_mib": finite(self.nats_peak_rss_mib),
            "passed": self.passed(),
        })
    }
}

/// Runs the phase with `n` timers in `mode`.
pub(crate) async fn run(args: &BenchArgs, mode: Mode, n: u64) -> anyhow::Result<TimersReport> {
    anyhow::ensure!(n >= 8, "--timers needs at least 8 timers");
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
    let part = (n / 4).min(MAX_PART);
    let held = n - 2 * part;

    // The held ones first; the first of them tell how fast arming goes, so
    // the others can be given due times after the last of them is armed.
    let started = Instant::now();
    let hour = now().plus_millis(3_600_000);
    let probe = PROBE.min(held);
    arm(
        &timers,
        (0..probe).map(|i| (format!("held.{i}"), hour, 'h')),
    )
    .await?;
    let rate = probe as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let rest = n - probe;
    // The slack lets the server settle after taking the schedules in a few
    // seconds (it is still writing them away for a while): a deployment arms
    // a few hundred a second, never 100,000 at once, and the firing is what
    // this phase measures.
    let settle = 5.0 + (SETTLE_SECS - 5.0) * (n as f64 / 100_000.0).min(1.0);
    let lead = Duration::from_secs_f64(rest as f64 / rate * 1.5 + settle);
    let first_due = now().plus_millis(i64::try_from(lead.as_millis()).unwrap_or(i64::MAX));
    let step_ms = SPREAD.as_millis() as f64 / part.max(1) as f64;
    let burst_at = first_due.plus_millis(i64::try_from(SPREAD.as_millis()).unwrap_or(0) + 2_000);
    let held_rest = (probe..held).map(|i| (format!("held.{i}"), hour, 'h'));
    let steady = (0..part).map(|i| {
        let at = first_due.plus_millis((i as f64 * step_ms) as i64);
        (format!("steady.{i}"), at, 's')
    });
    let burst = (0..part).map(|i| (format!("burst.{i}"), burst_at, 'b'));
    arm(&timers, held_rest.chain(steady).chain(burst)).await?;
    let arm_secs = started.elapsed().as_secs_f64();
    let pending_after_arming = timers.pending().await?;
    anyhow::ensure!(
        now() < first_due,
        "arming took longer than foreseen: the first timers fell due before the last was armed"
    );

    let settings = timers.fired_consumer(log.names().consumer("bench_timers"));
    let mut fired = timers.consume(&settings).await?;
    let deadline = Instant::now() + lead + SPREAD + GRACE;
    let (mut steady_ms, mut burst_ms, mut early) = (Vec::new(), Vec::new(), [0_u64; 2]);
    let mut last_burst = burst_at;
    while ((steady_ms.len() + burst_ms.len()) as u64) < 2 * part && Instant::now() < deadline {
        let next = tokio::time::timeout(Duration::from_secs(1), fired.next()).await;
        let Ok(Some(delivery)) = next else { continue };
        let d = delivery?;
        let received = now();
        let body = std::str::from_utf8(d.payload()).unwrap_or_default();
        let (kind, due_at) = body
            .split_once(':')
            .and_then(|(k, t)| Some((k, t.parse::<i64>().ok()?)))
            .context("a fired timer without its kind and due time")?;
        let late = received.as_millis() - due_at;
        let (samples, slot) = if kind == "b" {
            last_burst = last_burst.max(received);
            (&mut burst_ms, 1)
        } else {
            (&mut steady_ms, 0)
        };
        if late < 0 {
            early[slot] += 1;
        }
        samples.push(late as f64);
        d.ack().await?;
    }
    let burst_span = (last_burst.as_millis() - burst_at.as_millis()).max(1) as f64 / 1000.0;
    let burst_rate = burst_ms.len() as f64 / burst_span;
    let part_of = |samples: Vec<f64>, early: u64| Part {
        due: part,
        fired: samples.len() as u64,
        early,
        delay: Latency::of_ms(samples),
    };
    Ok(TimersReport {
        mode,
        armed: n,
        arm_secs,
        pending_after_arming,
        held,
        steady: part_of(steady_ms, early[0]),
        burst: part_of(burst_ms, early[1]),
        burst_rate,
        nats_peak_rss_mib: f64::NAN,
    })
}

/// Arms every `(key, due_at, kind)`, a bounded number at a time; each
/// carries its kind and due time so the reader can tell how late it came.
async fn arm(
    timers: &Timers,
    all: impl Iterator<Item = (String, Timestamp, char)>,
) -> anyhow::Result<()> {
    let mut arms = futures::stream::iter(all.map(|(key, at, kind)| async move {
        let body = Bytes::from(format!("{kind}:{}", at.as_millis()));
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
