//! The scale phase's report: one row per figure, a column per checkpoint,
//! the ratio of N to the first checkpoint, the target and whether it was
//! met; notes on what sets the figures; the same as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::load::LoadStats;
use super::measure::{DEEP_PAGES, ListFilter};
use super::{Checkpoint, FIRST};
use crate::mode::Mode;
use crate::report::Machine;
use crate::stats::finite;
use crate::system::secs;

/// Every query's p99 at N must be at most this, ms.
const QUERY_P99_MS: f64 = 20.0;
/// ... and at most this multiple of its figure at the first checkpoint.
const QUERY_GROWTH: f64 = 2.0;
/// SimulatePolicy's rate at N, complaints/s, and the router's memory meanwhile, MiB.
const SIMULATE_RATE: f64 = 100_000.0;
const SIMULATE_MIB: f64 = 128.0;
/// The rebuild rate at N, as a share of the first checkpoint's.
const REBUILD_SHARE: f64 = 0.8;
/// A service's memory at N, as a multiple of the first checkpoint's: flat.
const FLAT: f64 = 1.25;

/// One process's memory rows.
struct MemoryFigure {
    name: &'static str,
    rest_key: &'static str,
    peak_key: &'static str,
    of: fn(super::Memory) -> f64,
    /// Held to flat with history (the services).
    flat: bool,
}

const MEMORY_FIGURES: [MemoryFigure; 4] = [
    MemoryFigure {
        name: "plaint-intake",
        rest_key: "rest_intake_mib",
        peak_key: "peak_intake_mib",
        of: |m| m.intake,
        flat: true,
    },
    MemoryFigure {
        name: "plaint-router",
        rest_key: "rest_router_mib",
        peak_key: "peak_router_mib",
        of: |m| m.router,
        flat: true,
    },
    MemoryFigure {
        name: "nats-server",
        rest_key: "rest_nats_mib",
        peak_key: "peak_nats_mib",
        of: |m| m.nats,
        flat: false,
    },
    MemoryFigure {
        name: "PostgreSQL (PSS)",
        rest_key: "rest_postgres_mib",
        peak_key: "peak_postgres_mib",
        of: |m| m.postgres,
        flat: false,
    },
];

/// The scale phase's results.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    pub(crate) mode: Mode,
    /// Complaints asked for (`--scale`).
    pub(crate) target: u64,
    pub(crate) tls: bool,
    pub(crate) machine: Machine,
    pub(crate) store_fs: String,
    /// PostgreSQL's `shared_buffers`, which sets most of its memory.
    pub(crate) shared_buffers: String,
    /// The list queries' filter.
    pub(crate) filter: Option<ListFilter>,
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// The gate's counts at the end: complaints intake accepted (the load's
    /// and the open loops'), in the projection, and of those not routed.
    pub(crate) accepted: u64,
    pub(crate) projected: u64,
    pub(crate) unrouted: u64,
    pub(crate) load: LoadStats,
    pub(crate) elapsed: Duration,
    /// Why the run stopped early, if it did.
    pub(crate) error: Option<String>,
}

/// One figure across the checkpoints.
#[derive(Debug, Clone)]
struct Row {
    key: &'static str,
    name: String,
    values: Vec<Option<f64>>,
    decimals: usize,
    target: String,
    /// Whether the target was met; `None` when there is none (or no figure).
    met: Option<bool>,
    /// Whether its aim was met, where it has one beyond the limit.
    aim_met: Option<bool>,
}

impl Row {
    fn info(
        key: &'static str,
        name: impl Into<String>,
        values: Vec<Option<f64>>,
        d: usize,
    ) -> Self {
        Self {
            key,
            name: name.into(),
            values,
            decimals: d,
            target: String::new(),
            met: None,
            aim_met: None,
        }
    }

    fn first(&self) -> Option<f64> {
        self.values.first().copied().flatten()
    }

    fn last(&self) -> Option<f64> {
        self.values.last().copied().flatten()
    }

    /// The figure at N over the first checkpoint's.
    fn ratio(&self) -> Option<f64> {
        match (self.first(), self.last()) {
            (Some(a), Some(b)) if a > 0.0 && self.values.len() > 1 => Some(b / a),
            _ => None,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "—",
        }
    }

    fn cell(&self, v: Option<f64>) -> String {
        v.filter(|v| v.is_finite())
            .map_or_else(|| "—".to_owned(), |v| format!("{v:.*}", self.decimals))
    }

    fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "name": self.name,
            "values": self.values.iter().map(|v| v.map_or(Value::Null, finite)).collect::<Vec<_>>(),
            "ratio_n_to_first": self.ratio().map(finite),
            "target": self.target,
            "met": self.met,
            "aim_met": self.aim_met,
        })
    }
}

/// `10k`, `300k`, `1M`, `20.5k`...
fn label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(100_000) {
        format!("{}M", n as f64 / 1e6)
    } else if n >= 1000 && n.is_multiple_of(100) {
        format!("{}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

/// A one-line summary of a checkpoint, for the progress output.
pub(crate) fn checkpoint_line(c: &Checkpoint) -> String {
    let p99 = |k: &str| {
        c.queries
            .iter()
            .find(|q| q.key == k)
            .and_then(|q| q.latency.as_ref().ok())
            .map_or(f64::NAN, |l| l.p99)
    };
    format!(
        "  at {} complaints: GetComplaint p99 {:.2} ms, goodwill week p99 {:.2} ms; \
         SimulatePolicy {}; rebuild {}",
        c.complaints,
        p99("get_complaint"),
        p99("goodwill_week"),
        c.simulate.as_ref().map_or_else(
            |e| format!("failed: {e}"),
            |s| format!("{} in {:.1} s", s.complaints, secs(s.elapsed))
        ),
        c.rebuild.as_ref().map_or_else(
            |e| format!("failed: {e}"),
            |(r, _)| format!("{:.0} events/s", r.rate())
        ),
    )
}

impl ScaleReport {
    pub(crate) fn new(
        mode: Mode,
        target: u64,
        tls: bool,
        machine: Machine,
        store_fs: String,
    ) -> Self {
        Self {
            mode,
            target,
            tls,
            machine,
            store_fs,
            shared_buffers: String::new(),
            filter: None,
            checkpoints: Vec::new(),
            accepted: 0,
            projected: 0,
            unrouted: 0,
            load: LoadStats::default(),
            elapsed: Duration::ZERO,
            error: None,
        }
    }

    /// Why the run does not count, if it does not: it stopped early, a
    /// complaint was lost or left unrouted, a call failed, or a simulation
    /// replayed other than the whole history.
    pub fn failure(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("stopped early: {e}"));
        }
        if self.accepted == 0 || self.projected != self.accepted || self.unrouted > 0 {
            return Some(format!(
                "lost complaints: {} accepted, {} in the projection, {} of them not routed",
                self.accepted, self.projected, self.unrouted
            ));
        }
        if self.load.failures > 0 || self.load.lifecycle_failures > 0 {
            return Some(format!(
                "had failed calls: {} submissions, {} lifecycle walks (first: {})",
                self.load.failures,
                self.load.lifecycle_failures,
                self.load
                    .first_failure
                    .as_deref()
                    .or(self.load.first_lifecycle_failure.as_deref())
                    .unwrap_or("?")
            ));
        }
        None
    }

    /// Whether the run counts: see [`failure`](Self::failure).
    pub fn gate_passed(&self) -> bool {
        self.failure().is_none()
    }

    fn column<T>(&self, f: impl Fn(&Checkpoint) -> Option<T>) -> Vec<Option<T>> {
        self.checkpoints.iter().map(f).collect()
    }

    /// The open loop's limit in this mode: the bench's own.
    fn visible_limit(&self) -> f64 {
        match self.mode {
            Mode::Durable => 25.0,
            Mode::Fast => 20.0,
        }
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        rows.push(Row::info(
            "complaints",
            "complaints in the projection",
            self.column(|c| Some(c.complaints as f64)),
            0,
        ));
        rows.extend(self.query_rows());
        rows.extend(self.simulate_rows());
        rows.extend(self.rebuild_rows());
        rows.extend(self.memory_rows());
        rows.extend(self.storage_rows());
        let mut visible = Row::info(
            "visible_p99_at_100",
            "submit→visible p99 at 100/s, ms",
            self.column(|c| c.visible.as_ref().ok().map(|o| o.visible.p99)),
            2,
        );
        let limit = self.visible_limit();
        visible.target = format!("≤ {limit} ms (the bench's {} limit)", self.mode.name());
        visible.met = visible.last().map(|v| v <= limit);
        rows.push(visible);
        let mut gauges = Row::info(
            "gauges_not_idle",
            "gauges away from idle after the work",
            self.column(|c| {
                c.gauges
                    .as_ref()
                    .ok()
                    .map(|g| g.gauges.iter().filter(|g| !g.at_idle()).count() as f64)
            }),
            0,
        );
        gauges.target = "0 at every checkpoint".to_owned();
        gauges.met = all_some(&gauges.values).map(|v| v.iter().all(|n| *n == 0.0));
        rows.push(gauges);
        rows.push(Row::info(
            "load_rate",
            "load, complaints/s (this stage, walks and catch-up in)",
            self.column(|c| Some(c.added as f64 / c.load_elapsed.as_secs_f64().max(1e-9))),
            0,
        ));
        for (key, name, of) in [
            (
                "load_cpu_intake",
                "plaint-intake",
                (|m| m.intake) as fn(super::Memory) -> f64,
            ),
            ("load_cpu_router", "plaint-router", |m| m.router),
            ("load_cpu_nats", "nats-server", |m| m.nats),
        ] {
            rows.push(Row::info(
                key,
                format!("  {name} CPU-s per 1,000 complaints loaded"),
                self.column(|c| Some(of(c.cpu_per_1k))),
                2,
            ));
        }
        for (key, method) in [
            ("load_submit_p50", "SubmitComplaint"),
            ("load_acknowledge_p50", "Acknowledge"),
            ("load_resolve_p50", "Resolve"),
        ] {
            rows.push(Row::info(
                key,
                format!("  {method} p50 during the load (c=64), ms"),
                self.column(|c| {
                    c.load_calls
                        .iter()
                        .find(|(m, _)| *m == method)
                        .map(|(_, l)| l.p50)
                }),
                2,
            ));
        }
        rows
    }

    fn query_rows(&self) -> Vec<Row> {
        let Some(first) = self.checkpoints.first() else {
            return Vec::new();
        };
        first
            .queries
            .iter()
            .map(|q| {
                let key = q.key;
                let values = self.column(|c| {
                    c.queries
                        .iter()
                        .find(|x| x.key == key)
                        .and_then(|x| x.latency.as_ref().ok())
                        .map(|l| l.p99)
                });
                let mut row = Row::info(key, format!("{} p99, ms", q.name), values, 2);
                let bound = row
                    .first()
                    .map_or(QUERY_P99_MS, |f| QUERY_P99_MS.min(QUERY_GROWTH * f));
                row.target = format!(
                    "≤ {QUERY_P99_MS} ms and ≤ {QUERY_GROWTH}× at {} (≤ {bound:.2})",
                    label(FIRST)
                );
                row.met = row.last().map(|v| v <= bound);
                row
            })
            .collect()
    }

    fn simulate_rows(&self) -> Vec<Row> {
        let sim = |c: &Checkpoint| c.simulate.as_ref().ok().cloned();
        let wall = Row::info(
            "simulate_wall_s",
            "SimulatePolicy, whole history: wall time, s",
            self.column(|c| sim(c).map(|s| secs(s.elapsed))),
            2,
        );
        let mut replayed = Row::info(
            "simulate_replayed",
            "  complaints replayed",
            self.column(|c| sim(c).map(|s| s.complaints as f64)),
            0,
        );
        replayed.target = "= complaints in the projection, at every checkpoint".to_owned();
        replayed.met = self
            .checkpoints
            .iter()
            .map(|c| sim(c).map(|s| s.complaints == s.expected))
            .collect::<Option<Vec<bool>>>()
            .map(|v| v.iter().all(|ok| *ok));
        let mut rate = Row::info(
            "simulate_rate",
            "  complaints/s",
            self.column(|c| sim(c).map(|s| s.rate())),
            0,
        );
        rate.target = format!("≥ {SIMULATE_RATE:.0}/s");
        rate.met = rate.last().map(|v| v >= SIMULATE_RATE);
        let mut memory = Row::info(
            "simulate_router_peak_mib",
            "  router peak RSS meanwhile, MiB",
            self.column(|c| sim(c).map(|s| s.router_peak_mib)),
            1,
        );
        memory.target = format!("≤ {SIMULATE_MIB} MiB");
        memory.met = memory.last().map(|v| v <= SIMULATE_MIB);
        vec![wall, replayed, rate, memory]
    }

    fn rebuild_rows(&self) -> Vec<Row> {
        let mut rate = Row::info(
            "rebuild_rate",
            "rebuild from sequence 1, events/s",
            self.column(|c| c.rebuild.as_ref().ok().map(|(r, _)| r.rate())),
            0,
        );
        rate.target = format!("≥ {REBUILD_SHARE}× at {} (within 20%)", label(FIRST));
        rate.met = match (rate.first(), rate.last()) {
            (Some(a), Some(b)) => Some(b >= REBUILD_SHARE * a),
            _ => None,
        };
        let events = Row::info(
            "rebuild_events",
            "  events",
            self.column(|c| c.rebuild.as_ref().ok().map(|(r, _)| r.events as f64)),
            0,
        );
        let memory = Row::info(
            "rebuild_router_peak_mib",
            "  router peak RSS meanwhile, MiB",
            self.column(|c| c.rebuild.as_ref().ok().map(|(_, m)| *m)),
            1,
        );
        vec![rate, events, memory]
    }

    fn memory_rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for (when, at_rest) in [("at rest", true), ("peak", false)] {
            let pick = |c: &Checkpoint| if at_rest { c.rest } else { c.peak };
            for figure in MEMORY_FIGURES {
                let mut row = Row::info(
                    if at_rest {
                        figure.rest_key
                    } else {
                        figure.peak_key
                    },
                    format!("{} RSS {when}, MiB", figure.name),
                    self.column(|c| Some((figure.of)(pick(c))).filter(|v| *v > 0.0)),
                    1,
                );
                if figure.flat {
                    row.target = format!("≤ {FLAT}× at {} (flat with history)", label(FIRST));
                    row.met = row.ratio().map(|r| r <= FLAT);
                } else {
                    row.target = "reported (see the notes)".to_owned();
                }
                rows.push(row);
            }
        }
        rows
    }

    fn storage_rows(&self) -> Vec<Row> {
        let per = |c: &Checkpoint, f: fn(&super::Storage) -> u64| {
            c.storage
                .as_ref()
                .ok()
                .map(|s| f(s) as f64 / c.complaints.max(1) as f64)
        };
        let log = Row::info(
            "log_bytes_per_complaint",
            "log bytes per complaint (stream state.bytes)",
            self.column(|c| per(c, |s| s.log_bytes)),
            0,
        );
        let mut pg = Row::info(
            "pg_bytes_per_complaint",
            "PostgreSQL bytes per complaint (tables + indexes)",
            self.column(|c| per(c, super::Storage::pg_tables_total)),
            0,
        );
        pg.target = "≤ the log's (aim ≤ ½)".to_owned();
        (pg.met, pg.aim_met) = match (pg.last(), log.last()) {
            (Some(p), Some(l)) => (Some(p <= l), Some(p <= l / 2.0)),
            _ => (None, None),
        };
        let db = Row::info(
            "pg_database_bytes_per_complaint",
            "  pg_database_size per complaint",
            self.column(|c| per(c, |s| s.pg_database)),
            0,
        );
        let messages = Row::info(
            "log_messages_per_complaint",
            "log messages per complaint",
            self.column(|c| {
                c.storage
                    .as_ref()
                    .ok()
                    .map(|s| s.log_messages as f64 / c.complaints.max(1) as f64)
            }),
            2,
        );
        let subjects = Row::info(
            "log_subjects",
            "log subjects (nats-server indexes each)",
            self.column(|c| c.storage.as_ref().ok().map(|s| s.log_subjects as f64)),
            0,
        );
        vec![pg, db, log, messages, subjects]
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\nplaint bench --scale {}{} — {} × {}, {:.1} GiB RAM, kernel {}; {:.0} s",
            self.target,
            if self.tls { " --tls" } else { "" },
            m.nproc,
            m.cpu_model,
            m.ram_gib,
            m.kernel,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "fsync: {} — {}; NATS store on {}",
            self.mode.name(),
            self.mode.describe(),
            self.store_fs
        );
        if self.mode == Mode::Fast {
            let _ = writeln!(
                out,
                "Why fast: with no disk flush per append the history loads sooner (the \
                 bench's closed loop submits about three times faster than durable). The fsync \
                 changes how fast the log appends, not what the history is: the queries, the \
                 simulation, the rebuild, memory and bytes per complaint are measured on the \
                 same tables and log either way; only submit → visible carries the fsync."
            );
        }
        let labels: Vec<String> = self.checkpoints.iter().map(|c| label(c.loaded)).collect();
        let _ = write!(out, "\n  {:<52}", "");
        for l in &labels {
            let _ = write!(out, " {l:>10}");
        }
        let _ = writeln!(
            out,
            " {:>8}  {:<4}  target",
            format!("{}/{}", labels.last().map_or("N", |s| s), label(FIRST)),
            ""
        );
        for row in self.rows() {
            let _ = write!(out, "  {:<52}", row.name);
            for v in &row.values {
                let _ = write!(out, " {:>10}", row.cell(*v));
            }
            let ratio = row
                .ratio()
                .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
            let aim = match row.aim_met {
                Some(true) => " (aim met)",
                Some(false) => " (short of aim)",
                None => "",
            };
            let _ = writeln!(
                out,
                " {ratio:>8}  {:<4}  {}{aim}",
                row.verdict(),
                row.target
            );
        }
        self.write_notes(&mut out);
        out
    }

    fn write_notes(&self, out: &mut String) {
        let _ = writeln!(out, "\nNotes");
        let l = &self.load;
        let _ = writeln!(
            out,
            "  load: {} submitted over gRPC at concurrency 64 ({} accepted, {} failed, {} \
             duplicates); lifecycle walked at concurrency 64 after each chunk was routed: {} \
             resolved ({} through return, receipt and refund first), {} of them reopened, {} \
             withdrawn, {} lifecycle events, {} walks failed; time submitting {:.0} s, walking \
             {:.0} s, waiting for the router {:.0} s",
            l.submitted,
            l.accepted,
            l.failures,
            l.duplicates,
            l.resolved,
            l.item_handled,
            l.reopened,
            l.withdrawn,
            l.lifecycle_events,
            l.lifecycle_failures,
            l.submitting.as_secs_f64(),
            l.walking.as_secs_f64(),
            l.pacing.as_secs_f64()
        );
        for (what, e) in [
            ("submission", &l.first_failure),
            ("lifecycle walk", &l.first_lifecycle_failure),
        ] {
            if let Some(e) = e {
                let _ = writeln!(out, "  first failed {what}: {e}");
            }
        }
        if let Some((route, status)) = self.filter.and_then(|f| super::filter_names(f).ok()) {
            let depths: Vec<String> = self
                .checkpoints
                .iter()
                .filter_map(|c| {
                    let q = c.queries.iter().find(|q| q.key == "list_page_100")?;
                    Some(format!("{} at {}", q.note, label(c.loaded)))
                })
                .collect();
            let _ = writeln!(
                out,
                "  queries: {} rounds of {} calls each after 20 untimed, one at a time, each \
                 percentile the median of the rounds'; ids and customers sampled from those \
                 loaded; lists filtered by route {route} and status {status} \
                 (the largest routed queue), page size default; the deep page is page \
                 {DEEP_PAGES} or the last there is ({}); the goodwill week ends now, so its \
                 partial last day (today: every resolution of the load) is read from the \
                 complaints themselves",
                super::measure::ROUNDS,
                super::measure::CALLS,
                depths.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "  memory: services and nats-server VmRSS from /proc at rest, and their highest \
             since the previous checkpoint (sampled every 250 ms, and VmHWM when it rose); \
             PostgreSQL: PSS summed over the postmaster and its children (shared buffers \
             counted once; the server is shared with other databases), shared_buffers = {}",
            if self.shared_buffers.is_empty() {
                "?"
            } else {
                &self.shared_buffers
            }
        );
        if let Some(c) = self.checkpoints.last() {
            self.write_last_notes(out, c);
        }
        for c in &self.checkpoints {
            let durations: Vec<String> = c
                .durations
                .iter()
                .map(|(what, d)| format!("{what} {:.1} s", d.as_secs_f64()))
                .collect();
            let _ = writeln!(
                out,
                "  durations at {}: {}",
                label(c.loaded),
                durations.join(", ")
            );
            let errors: Vec<String> = c
                .queries
                .iter()
                .filter_map(|q| q.latency.as_ref().err().map(|e| format!("{}: {e}", q.name)))
                .chain(
                    c.simulate
                        .as_ref()
                        .err()
                        .map(|e| format!("SimulatePolicy: {e}")),
                )
                .chain(c.visible.as_ref().err().map(|e| format!("open loop: {e}")))
                .chain(c.rebuild.as_ref().err().map(|e| format!("rebuild: {e}")))
                .chain(c.storage.as_ref().err().map(|e| format!("storage: {e}")))
                .chain(c.gauges.as_ref().err().map(|e| format!("gauges: {e}")))
                .collect();
            for e in errors {
                let _ = writeln!(out, "  failed at {}: {e}", label(c.loaded));
            }
        }
        let _ = writeln!(
            out,
            "\nScale gate: {} — {} accepted, {} in the projection, {} not routed{}",
            if self.gate_passed() { "PASS" } else { "FAIL" },
            self.accepted,
            self.projected,
            self.unrouted,
            self.failure().map(|f| format!("; {f}")).unwrap_or_default()
        );
    }

    /// What sets the memory and the bytes at N.
    fn write_last_notes(&self, out: &mut String, c: &Checkpoint) {
        let n = c.complaints.max(1) as f64;
        let _ = writeln!(
            out,
            "  PostgreSQL at {}: {} processes, RSS summed {:.0} MiB against PSS {:.0} MiB",
            label(c.loaded),
            c.postgres_processes,
            c.postgres_rss_sum,
            c.rest.postgres
        );
        if let Ok(s) = &c.storage {
            let tables: Vec<String> = s
                .pg_tables
                .iter()
                .take(8)
                .map(|(t, b)| format!("{t} {:.0}", *b as f64 / n))
                .collect();
            let _ = writeln!(
                out,
                "  bytes per complaint by table at {}: {}",
                label(c.loaded),
                tables.join(", ")
            );
            let streams: Vec<String> = s
                .other_streams
                .iter()
                .map(|(name, bytes, msgs)| format!("{name} {bytes} bytes in {msgs} msgs"))
                .collect();
            let _ = writeln!(
                out,
                "  nats-server at {}: the log holds {} messages, {} bytes, {} subjects (an index \
                 entry each, kept in memory), other streams: {}",
                label(c.loaded),
                s.log_messages,
                s.log_bytes,
                s.log_subjects,
                streams.join("; ")
            );
        }
        if let Ok(g) = &c.gauges {
            let list: Vec<String> = g
                .gauges
                .iter()
                .map(|x| {
                    format!(
                        "{} {}={}{}",
                        x.service,
                        x.series,
                        x.value,
                        match x.idle {
                            Some(v) if !x.at_idle() => format!(" (idle {v}: NOT at idle)"),
                            Some(_) => " (at idle)".to_owned(),
                            None => String::new(),
                        }
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  gauges at {} after {:.1} s: {}",
                label(c.loaded),
                g.waited.as_secs_f64(),
                list.join(", ")
            );
        }
    }

    /// The JSON form (under `scale` in the bench's JSON).
    pub fn to_json(&self) -> Value {
        let m = &self.machine;
        json!({
            "mode": self.mode.name(),
            "sync_interval": self.mode.sync_interval(),
            "complaints_asked": self.target,
            "tls": self.tls,
            "store_filesystem": self.store_fs,
            "elapsed_s": finite(self.elapsed.as_secs_f64()),
            "machine": {
                "nproc": m.nproc, "cpu_model": m.cpu_model,
                "ram_gib": finite(m.ram_gib), "kernel": m.kernel,
            },
            "checkpoints": self.checkpoints.iter().map(|c| c.loaded).collect::<Vec<_>>(),
            "rows": self.rows().iter().map(Row::to_json).collect::<Vec<_>>(),
            "detail": self.checkpoints.iter().map(checkpoint_json).collect::<Vec<_>>(),
            "list_filter": self.filter.and_then(|f| super::filter_names(f).ok())
                .map(|(route, status)| json!({"route": route, "status": status})),
            "postgres_shared_buffers": self.shared_buffers,
            "load": load_json(&self.load),
            "gate": {
                "passed": self.gate_passed(),
                "failure": self.failure(),
                "accepted": self.accepted,
                "projected": self.projected,
                "unrouted": self.unrouted,
            },
            "error": self.error,
        })
    }
}

/// `Some` of every value when none is missing.
fn all_some(values: &[Option<f64>]) -> Option<Vec<f64>> {
    values.iter().copied().collect()
}

fn load_json(l: &LoadStats) -> Value {
    json!({
        "submitted": l.submitted, "accepted": l.accepted, "duplicates": l.duplicates,
        "failures": l.failures, "first_failure": l.first_failure,
        "resolved": l.resolved, "item_handled": l.item_handled, "reopened": l.reopened,
        "withdrawn": l.withdrawn, "lifecycle_events": l.lifecycle_events,
        "lifecycle_failures": l.lifecycle_failures,
        "first_lifecycle_failure": l.first_lifecycle_failure,
        "submitting_s": finite(l.submitting.as_secs_f64()),
        "walking_s": finite(l.walking.as_secs_f64()),
        "pacing_s": finite(l.pacing.as_secs_f64()),
    })
}

fn memory_json(m: super::Memory) -> Value {
    json!({
        "plaint-intake": finite(m.intake), "plaint-router": finite(m.router),
        "nats-server": finite(m.nats), "postgres_pss": finite(m.postgres),
    })
}

fn err_json(e: &str) -> Value {
    json!({ "error": e })
}

fn checkpoint_json(c: &Checkpoint) -> Value {
    json!({
        "loaded": c.loaded,
        "complaints": c.complaints,
        "added": c.added,
        "load_elapsed_s": finite(c.load_elapsed.as_secs_f64()),
        "load_cpu_s_per_1000": {
            "plaint-intake": finite(c.cpu_per_1k.intake),
            "plaint-router": finite(c.cpu_per_1k.router),
            "nats-server": finite(c.cpu_per_1k.nats),
        },
        "load_calls": c.load_calls.iter()
            .map(|(m, l)| json!({"method": m, "latency": l.to_json()}))
            .collect::<Vec<_>>(),
        "rss_at_rest_mib": memory_json(c.rest),
        "rss_peak_mib": memory_json(c.peak),
        "postgres_processes": c.postgres_processes,
        "postgres_rss_sum_mib": finite(c.postgres_rss_sum),
        "storage": c.storage.as_ref().map_or_else(|e| err_json(e), |s| json!({
            "pg_database_bytes": s.pg_database,
            "pg_tables_bytes": s.pg_tables_total(),
            "pg_tables": s.pg_tables.iter().map(|(t, b)| json!({"table": t, "bytes": b})).collect::<Vec<_>>(),
            "log_bytes": s.log_bytes,
            "log_messages": s.log_messages,
            "log_subjects": s.log_subjects,
            "other_streams": s.other_streams.iter()
                .map(|(n, b, m)| json!({"stream": n, "bytes": b, "messages": m}))
                .collect::<Vec<_>>(),
        })),
        "queries": c.queries.iter().map(|q| json!({
            "key": q.key,
            "name": q.name,
            "note": q.note,
            "round_p99_ms": q.round_p99s.iter().map(|v| finite(*v)).collect::<Vec<_>>(),
            "latency": q.latency.as_ref().map_or_else(|e| err_json(e), |l| l.to_json()),
        })).collect::<Vec<_>>(),
        "simulate": c.simulate.as_ref().map_or_else(|e| err_json(e), |s| json!({
            "elapsed_s": finite(secs(s.elapsed)),
            "complaints": s.complaints,
            "expected": s.expected,
            "per_s": finite(s.rate()),
            "changed_total": s.changed_total,
            "engagements_before": s.engagements_before,
            "router_peak_rss_mib": finite(s.router_peak_mib),
        })),
        "visible_at_100_per_s": c.visible.as_ref().map_or_else(|e| err_json(e), |o| json!({
            "sent": o.sent,
            "achieved_per_s": finite(o.achieved_rate),
            "visible": o.visible.to_json(),
            "submit": o.submit.to_json(),
            "unobserved": o.unobserved,
        })),
        "rebuild": c.rebuild.as_ref().map_or_else(|e| err_json(e), |(r, peak)| json!({
            "events": r.events,
            "elapsed_s": finite(secs(r.elapsed)),
            "per_s": finite(r.rate()),
            "server_reported_per_s": finite(r.server_rate),
            "router_peak_rss_mib": finite(*peak),
        })),
        "gauges": c.gauges.as_ref().map_or_else(|e| err_json(e), |g| json!({
            "at_idle": g.at_idle,
            "waited_s": finite(g.waited.as_secs_f64()),
            "series": g.gauges.iter().map(|x| json!({
                "service": x.service, "series": x.series, "value": finite(x.value),
                "idle": x.idle.map(finite), "at_idle": x.at_idle(),
            })).collect::<Vec<_>>(),
        })),
        "durations_s": c.durations.iter()
            .map(|(w, d)| json!({"what": w, "s": finite(d.as_secs_f64())}))
            .collect::<Vec<_>>(),
        "load_so_far": load_json(&c.stats),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_labelled_short() {
        assert_eq!(label(10_000), "10k");
        assert_eq!(label(1_000_000), "1M");
        assert_eq!(label(300_000), "300k");
        assert_eq!(label(20_500), "20.5k");
        assert_eq!(label(12_345), "12345");
    }

    #[test]
    fn a_row_compares_n_with_the_first_checkpoint() {
        let r = Row::info("x", "x", vec![Some(2.0), None, Some(5.0)], 1);
        assert_eq!(r.ratio(), Some(2.5));
        assert_eq!(r.verdict(), "—");
        assert_eq!(r.cell(None), "—");
        assert!(Row::info("y", "y", vec![Some(1.0)], 0).ratio().is_none());
    }
}
