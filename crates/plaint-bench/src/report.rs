//! The bench's report: the machine, the calibration, the system's figures,
//! each with its ratio to the calibration and, where the issue sets one, its
//! target and whether it was met.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Gate;
use crate::calibration::{BATCH, Calibration};
use crate::ceiling::Ceiling;
use crate::mode::Mode;
use crate::procs::Usage;
use crate::stats::{Latency, finite};
use crate::system::{ClosedLoop, Drain, OpenLoop, Rebuild, Throughput, secs};
use crate::targets;

/// Where the run ran.
#[derive(Debug, Clone, Default)]
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
    pub(crate) ram_gib: f64,
    pub(crate) kernel: String,
}

impl Machine {
    pub(crate) fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|v| v.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let ram_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            ram_gib: ram_kib / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}

/// Everything a run measured, in one mode.
#[derive(Debug, Clone)]
pub struct Report {
    /// How its nats-server synced to disk.
    pub(crate) mode: Mode,
    /// The filesystem the nats-server's store was on (a store in memory
    /// would make the durable mode's fsyncs free).
    pub(crate) store_fs: String,
    pub(crate) quick: bool,
    /// Whether the services spoke mutual TLS.
    pub(crate) tls: bool,
    pub(crate) machine: Machine,
    pub(crate) calibration: Calibration,
    pub(crate) sealing: crate::sealing::Sealing,
    pub(crate) c1: ClosedLoop,
    pub(crate) c64: ClosedLoop,
    pub(crate) throughput: Throughput,
    pub(crate) visible: OpenLoop,
    pub(crate) low: OpenLoop,
    pub(crate) drain: Drain,
    pub(crate) rebuild: Rebuild,
    pub(crate) router_after: Usage,
    /// The correctness gate.
    pub gate: Gate,
    pub(crate) elapsed: Duration,
}

/// CPU seconds per 1,000 complaints between two readings.
fn cpu_per_1k(before: Usage, after: Usage, complaints: u64) -> f64 {
    (after.cpu_seconds - before.cpu_seconds) / complaints.max(1) as f64 * 1000.0
}

/// `v` as a multiple of `base`, or a dash when either is not a number.
pub(crate) fn ratio(v: f64, base: f64) -> String {
    if v.is_finite() && base.is_finite() && base > 0.0 {
        format!("{:.3}×", v / base)
    } else {
        "—".to_owned()
    }
}

impl Report {
    /// The mode it ran in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the correctness gate passed (the run counts).
    pub fn gate_passed(&self) -> bool {
        self.gate.passed()
    }

    /// The publish round trip plus the gRPC round trip at concurrency 1: the
    /// least one submission can take.
    fn floor_p50(&self) -> f64 {
        self.calibration.rt.p50 + self.calibration.grpc_c1.p50
    }
    pub(crate) fn floor_p99(&self) -> f64 {
        self.calibration.rt.p99 + self.calibration.grpc_c1.p99
    }

    /// The system's end-to-end rate, complaints/s.
    pub(crate) fn e2e(&self) -> f64 {
        self.throughput.rate()
    }

    /// The ceiling of the layout, from this run's calibration.
    pub(crate) fn ceiling(&self) -> Ceiling {
        Ceiling::of(&self.calibration)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        self.write_calibration(&mut out);
        self.write_sealing(&mut out);
        let _ = writeln!(out, "\nSystem");
        for (k, v, r) in self.system_rows() {
            let _ = writeln!(out, "  {k:<48} {v}");
            if !r.is_empty() {
                let _ = writeln!(out, "  {:<48}   ratio: {r}", "");
            }
        }
        self.write_ceiling(&mut out);
        self.write_targets(&mut out);
        self.write_gate(&mut out);
        out
    }

    fn write_header(&self, out: &mut String) {
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\nplaint bench{}{} — {} × {}, {:.1} GiB RAM, kernel {}; {:.0} s",
            if self.quick { " --quick" } else { "" },
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
    }

    fn write_calibration(&self, out: &mut String) {
        let c = &self.calibration;
        let _ = writeln!(
            out,
            "\nCalibration (median of 3; messages of {} bytes)",
            c.message_bytes
        );
        let cal_rows = [
            (
                "R_pub  pipelined publish, window 256",
                format!("{:.0} msg/s", c.r_pub),
            ),
            (
                "publish-and-await, one in flight",
                format!(
                    "{:.0} msg/s, p50 {:.3} ms, p99 {:.3} ms",
                    c.rt_rate, c.rt.p50, c.rt.p99
                ),
            ),
            (
                "R_els  expected-sequence publish, 10k subjects",
                format!("{:.0} msg/s", c.r_els),
            ),
            (
                "R_batch atomic batch publish, 100 a batch",
                self.batch_row(),
            ),
            (
                "R_fetch pull fetch + ack of a backlog",
                format!("{:.0} msg/s", c.r_fetch),
            ),
            (
                "  the same fetch without acks (AckPolicy::None)",
                format!(
                    "{:.0} msg/s, {} R_fetch; an ack costs {}",
                    c.r_fetch_no_ack,
                    ratio(c.r_fetch_no_ack, c.r_fetch),
                    c.ack_cost_us()
                        .map_or_else(|| "—".to_owned(), |us| format!("{us:.1} µs a message"))
                ),
            ),
            (
                "R_pgB  complaint-row upsert, batch 100",
                format!("{:.0} rows/s", c.r_pg_b),
            ),
            (
                "R_pg1  complaint-row upsert, 1 per tx",
                format!("{:.0} rows/s", c.r_pg_1),
            ),
            (
                "R_grpc unary, concurrency 64",
                format!("{:.0} calls/s", c.r_grpc),
            ),
            (
                "gRPC unary, concurrency 1",
                format!("p50 {:.3} ms, p99 {:.3} ms", c.grpc_c1.p50, c.grpc_c1.p99),
            ),
        ];
        for (k, v) in cal_rows {
            let _ = writeln!(out, "  {k:<48} {v}");
        }
    }

    /// R_batch, its ratio to R_pub, and what a batch costs in round trips —
    /// in the durable mode, in fsyncs; or why it could not be measured.
    fn batch_row(&self) -> String {
        let c = &self.calibration;
        let Some(rate) = c.r_batch else {
            return match &c.r_batch_error {
                Some(e) => format!("unavailable: {e}"),
                None => "not measured".to_owned(),
            };
        };
        let mut row = format!("{rate:.0} msg/s, {} R_pub", ratio(rate, c.r_pub));
        if let Some(n) = c.publishes_per_batch() {
            let _ = write!(
                row,
                "; a batch takes the time of {n:.1} pipelined publishes"
            );
            if self.mode == Mode::Durable {
                // Each durable publish costs one fsync and more, so the
                // batch cannot cost more fsyncs than that.
                let _ = write!(row, ", so ≤ {n:.1} fsyncs per {BATCH}-message batch");
            }
        }
        row
    }

    fn write_sealing(&self, out: &mut String) {
        let _ = writeln!(out, "\nPersonal data, in process (median of 5; one core)");
        let _ = writeln!(
            out,
            "  {:<48} {:.1} CPU-ms per 1,000 complaints",
            "seal + open: a complaint and a follow-up", self.sealing.seal_open_ms
        );
        let _ = writeln!(
            out,
            "  {:<48} {:.1} CPU-ms per 1,000 new customers",
            "make, wrap, unwrap a customer's data key", self.sealing.new_key_ms
        );
    }

    fn system_rows(&self) -> Vec<(String, String, String)> {
        let mut rows = self.submit_rows();
        rows.extend(self.open_loop_rows(&self.mode.open_rate().label(), &self.visible));
        rows.extend(self.open_loop_rows("100/s", &self.low));
        rows.extend(self.drain_rows());
        rows.extend(self.resource_rows());
        rows
    }

    fn lat(l: &Latency) -> String {
        format!("p50 {:.2} / p99 {:.2} ms", l.p50, l.p99)
    }

    /// p50 and p99 as ratios to the least a submission can take.
    fn floor(&self, l: &Latency) -> String {
        format!(
            "{} / {} of (gRPC+publish RT)",
            ratio(l.p50, self.floor_p50()),
            ratio(l.p99, self.floor_p99())
        )
    }

    fn submit_rows(&self) -> Vec<(String, String, String)> {
        let c = &self.calibration;
        let t = &self.throughput;
        let e2e = t.rate();
        vec![
            (
                "submit latency, c=1".into(),
                format!("{} ({:.0}/s)", Self::lat(&self.c1.latency), self.c1.rate()),
                self.floor(&self.c1.latency),
            ),
            (
                "submit latency, c=64".into(),
                format!(
                    "{} ({:.0}/s)",
                    Self::lat(&self.c64.latency),
                    self.c64.rate()
                ),
                format!(
                    "{}; rate {} R_pub",
                    self.floor(&self.c64.latency),
                    ratio(self.c64.rate(), c.r_pub)
                ),
            ),
            (
                "end-to-end throughput (routed + projected)".into(),
                format!(
                    "{e2e:.0} complaints/s ({} in {:.1} s; submitted {:.0}/s; catch-up {:.2} s)",
                    t.complaints,
                    secs(t.elapsed),
                    t.submit_rate,
                    secs(t.catch_up)
                ),
                format!(
                    "{} R_pub, {} R_els",
                    ratio(e2e, c.r_pub),
                    ratio(e2e, c.r_els)
                ),
            ),
            (
                "  backlog over the run (bound)".into(),
                format!(
                    "max {} msgs waiting (bound {}), projection lag max {} msgs",
                    t.max_backlog, t.backlog_bound, t.max_projection_lag
                ),
                format!(
                    "{:.0} ms of e2e rate",
                    t.max_backlog as f64 / e2e.max(1e-9) * 1e3 / 2.0
                ),
            ),
        ]
    }

    fn open_loop_rows(&self, name: &str, o: &OpenLoop) -> Vec<(String, String, String)> {
        let lat3 = |l: &Latency| {
            format!(
                "p50 {:.2} / p99 {:.2} / p99.9 {:.2} ms",
                l.p50, l.p99, l.p999
            )
        };
        let mut rows = vec![
            (
                format!("submit→visible at {name} ({:.0}/s offered)", o.offered_rate),
                lat3(&o.visible),
                self.floor(&o.visible),
            ),
            (
                "  submit (ack) latency, open loop".into(),
                Self::lat(&o.submit),
                self.floor(&o.submit),
            ),
            (
                "  projection lag".into(),
                format!(
                    "decision→visible p50 {:.1} / p99 {:.1} ms; p50 {} / max {} msgs",
                    o.projection_lag_ms.p50,
                    o.projection_lag_ms.p99,
                    o.lag_msgs_p50,
                    o.lag_msgs_max
                ),
                format!(
                    "max {:.1} ms of R_fetch",
                    o.lag_msgs_max as f64 / self.calibration.r_fetch.max(1e-9) * 1e3
                ),
            ),
        ];
        if o.unobserved > 0 || o.missed_updates > 0 {
            rows.push((
                "  (watch gaps)".into(),
                format!(
                    "{} complaints unobserved, {} updates missed",
                    o.unobserved, o.missed_updates
                ),
                String::new(),
            ));
        }
        rows
    }

    fn drain_rows(&self) -> Vec<(String, String, String)> {
        let c = &self.calibration;
        let d = &self.drain;
        vec![
            (
                "router drain (restart → all routed + projected)".into(),
                format!(
                    "{:.0} complaints/s ({} complaints, {} msgs, {:.2} s; start-up {:.2} s)",
                    d.rate(),
                    d.complaints,
                    d.log_messages,
                    secs(d.elapsed),
                    secs(d.startup)
                ),
                format!(
                    "{} R_fetch, {} R_pub",
                    ratio(d.rate(), c.r_fetch),
                    ratio(d.rate(), c.r_pub)
                ),
            ),
            (
                "  of which: restart → all routed".into(),
                format!(
                    "{:.0} complaints/s ({:.2} s)",
                    d.routed_rate(),
                    secs(d.routed)
                ),
                format!("{} R_fetch", ratio(d.routed_rate(), c.r_fetch)),
            ),
            (
                "projection rebuild from sequence 1".into(),
                format!(
                    "{:.0} events/s ({} events, {:.2} s)",
                    self.rebuild.rate(),
                    self.rebuild.events,
                    secs(self.rebuild.elapsed)
                ),
                format!(
                    "{} min(R_fetch, R_pgB)",
                    ratio(self.rebuild.rate(), c.r_fetch.min(c.r_pg_b))
                ),
            ),
        ]
    }

    fn resource_rows(&self) -> Vec<(String, String, String)> {
        let t = &self.throughput;
        let e2e = t.rate();
        [
            ("plaint-intake", t.intake),
            ("plaint-router", t.router),
            ("nats-server", t.nats),
        ]
        .into_iter()
        .map(|(name, (before, after))| {
            let cpu = cpu_per_1k(before, after, t.complaints);
            (
                format!("{name}: RSS, CPU per 1,000 complaints"),
                format!(
                    "RSS {:.1} MiB (peak {:.1}), {cpu:.3} CPU-s",
                    after.rss_mib, after.peak_rss_mib
                ),
                format!(
                    "{} of 64 MiB; {:.2} cores at the e2e rate",
                    ratio(after.peak_rss_mib, 64.0),
                    cpu * e2e / 1000.0
                ),
            )
        })
        .collect()
    }

    fn write_ceiling(&self, out: &mut String) {
        let ceiling = self.ceiling();
        let _ = writeln!(
            out,
            "\nCeiling of this layout: {:.0} complaints/s if one complaint's operations ran one \
             after another at the calibrated rates; the system reached {} of it",
            ceiling.per_s(),
            ratio(self.e2e(), ceiling.per_s())
        );
        for op in &ceiling.ops {
            let _ = writeln!(
                out,
                "  {:>3} × {:<40} at {:<7} {:>9.0}/s  {:>8.1} µs  {:>5.1} %",
                op.count,
                op.what,
                op.rate_name,
                op.rate,
                op.seconds() * 1e6,
                ceiling.share(op) * 100.0
            );
        }
    }

    fn write_targets(&self, out: &mut String) {
        let _ = writeln!(out, "\nTargets ({})", self.mode.name());
        for t in targets::of(self) {
            let _ = writeln!(
                out,
                "  {:<4} {:<36} {:>10.2} vs {:>10.2}  {:<9} ({})",
                t.verdict(),
                t.name,
                t.figure,
                t.limit,
                if t.aim_met() {
                    "aim met"
                } else {
                    "short of aim"
                },
                t.rule
            );
        }
    }

    fn write_gate(&self, out: &mut String) {
        let g = &self.gate;
        let _ = writeln!(
            out,
            "\nCorrectness gate: {} — accepted {}, routed {}, projected {}, lost {}, duplicates {}, \
             unexpected {}, submit failures {}, log messages {} (mean complaint event {:.0} bytes)",
            if g.passed() { "PASS" } else { "FAIL" },
            g.accepted,
            g.routed,
            g.projected,
            g.lost,
            g.duplicates,
            g.unexpected,
            g.submit_failures,
            g.log_messages,
            g.mean_event_bytes
        );
        if let Some(f) = &g.first_failure {
            let _ = writeln!(out, "  first submit failure: {f}");
        }
        let _ = writeln!(
            out,
            "Routing consumer: {} deliveries for {} events it decides on (received, visibility \
             changed): {}",
            g.routing_deliveries,
            g.decision_triggers,
            match g.routing_deliveries.checked_sub(g.decision_triggers) {
                Some(0) => "one each, nothing else".to_owned(),
                Some(extra) => format!("{extra} more (redeliveries, or events it skips)"),
                None => "fewer (a consumer made anew during the run)".to_owned(),
            }
        );
        if self.quick {
            let _ = writeln!(
                out,
                "  (--quick: tiny counts; only the gate is meaningful, not the speeds)"
            );
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let m = &self.machine;
        let g = &self.gate;
        json!({
            "mode": self.mode.name(),
            "sync_interval": self.mode.sync_interval(),
            "store_filesystem": self.store_fs,
            "quick": self.quick,
            "tls": self.tls,
            "elapsed_s": finite(self.elapsed.as_secs_f64()),
            "machine": {
                "nproc": m.nproc, "cpu_model": m.cpu_model,
                "ram_gib": finite(m.ram_gib), "kernel": m.kernel,
            },
            "calibration": self.calibration.to_json(),
            "sealing": {
                "seal_open_cpu_ms_per_1000_complaints": finite(self.sealing.seal_open_ms),
                "new_key_cpu_ms_per_1000_customers": finite(self.sealing.new_key_ms),
            },
            "system": self.system_json(),
            "ceiling": self.ceiling().to_json(self.e2e()),
            "targets": targets::of(self).iter().map(targets::Target::to_json).collect::<Vec<_>>(),
            "gate": {
                "passed": g.passed(),
                "accepted": g.accepted, "routed": g.routed, "projected": g.projected,
                "lost": g.lost, "duplicates": g.duplicates, "unexpected": g.unexpected,
                "submit_failures": g.submit_failures, "first_failure": g.first_failure,
                "undecodable": g.undecodable, "log_messages": g.log_messages,
                "mean_complaint_event_bytes": finite(g.mean_event_bytes),
                "routing_deliveries": g.routing_deliveries,
                "decision_triggers": g.decision_triggers,
            },
        })
    }

    fn open_json(&self, o: &OpenLoop) -> Value {
        json!({
            "offered_per_s": finite(o.offered_rate),
            "achieved_per_s": finite(o.achieved_rate),
            "sent": o.sent,
            "visible": o.visible.to_json(),
            "submit": o.submit.to_json(),
            "projection_lag_ms": o.projection_lag_ms.to_json(),
            "projection_lag_msgs": {"p50": o.lag_msgs_p50, "max": o.lag_msgs_max},
            "unobserved": o.unobserved,
            "missed_updates": o.missed_updates,
            "ratio_visible_p99_to_floor_p99": finite(o.visible.p99 / self.floor_p99()),
        })
    }

    fn system_json(&self) -> Value {
        let c = &self.calibration;
        let t = &self.throughput;
        let mut system = json!({
            "submit_c1": {
                "rate_per_s": finite(self.c1.rate()),
                "latency": self.c1.latency.to_json(),
                "ratio_p99_to_floor_p99": finite(self.c1.latency.p99 / self.floor_p99()),
            },
            "submit_c64": {
                "rate_per_s": finite(self.c64.rate()),
                "latency": self.c64.latency.to_json(),
                "ratio_rate_to_r_pub": finite(self.c64.rate() / c.r_pub),
            },
            "throughput": {
                "complaints": t.complaints,
                "elapsed_s": finite(secs(t.elapsed)),
                "per_s": finite(t.rate()),
                "submit_per_s": finite(t.submit_rate),
                "backlog_bound_msgs": t.backlog_bound,
                "max_backlog_msgs": t.max_backlog,
                "max_projection_lag_msgs": t.max_projection_lag,
                "catch_up_s": finite(secs(t.catch_up)),
                "ratio_to_r_pub": finite(t.rate() / c.r_pub),
                "ratio_to_r_els": finite(t.rate() / c.r_els),
            },
            "visible_at_100_per_s": self.open_json(&self.low),
            "drain": self.drain_json(),
            "rebuild": {
                "events": self.rebuild.events,
                "elapsed_s": finite(secs(self.rebuild.elapsed)),
                "per_s": finite(self.rebuild.rate()),
                "server_reported_per_s": finite(self.rebuild.server_rate),
                "ratio_to_min_fetch_pgb": finite(self.rebuild.rate() / c.r_fetch.min(c.r_pg_b)),
            },
            "resources": self.resources_json(),
        });
        if let Some(map) = system.as_object_mut() {
            map.insert(
                self.mode.open_rate().json_key(),
                self.open_json(&self.visible),
            );
        }
        system
    }

    fn drain_json(&self) -> Value {
        let c = &self.calibration;
        let d = &self.drain;
        json!({
            "complaints": d.complaints,
            "log_messages": d.log_messages,
            "elapsed_s": finite(secs(d.elapsed)),
            "startup_s": finite(secs(d.startup)),
            "routed_s": finite(secs(d.routed)),
            "routed_per_s": finite(d.routed_rate()),
            "per_s": finite(d.rate()),
            "ratio_to_r_fetch": finite(d.rate() / c.r_fetch),
            "ratio_to_r_pub": finite(d.rate() / c.r_pub),
        })
    }

    fn resources_json(&self) -> Value {
        let t = &self.throughput;
        let usage = |(before, after): (Usage, Usage)| {
            let cpu = cpu_per_1k(before, after, t.complaints);
            json!({
                "rss_mib": finite(after.rss_mib),
                "peak_rss_mib": finite(after.peak_rss_mib),
                "cpu_s_per_1000": finite(cpu),
                "cores_at_e2e_rate": finite(cpu * t.rate() / 1000.0),
            })
        };
        json!({
            "plaint-intake": usage(t.intake),
            "plaint-router": usage(t.router),
            "nats-server": usage(t.nats),
            "plaint-router_after_rebuild": {
                "rss_mib": finite(self.router_after.rss_mib),
                "peak_rss_mib": finite(self.router_after.peak_rss_mib),
            },
        })
    }
}

/// The filesystem `path` is on, from `/proc/mounts`: its type and device,
/// or `unknown`.
pub(crate) fn filesystem_of(path: &std::path::Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next()?))
        })
        .filter(|(_, mount, _)| path.starts_with(mount))
        .max_by_key(|(_, mount, _)| mount.len())
        .map_or_else(
            || "unknown".to_owned(),
            |(device, mount, kind)| format!("{kind} ({device} on {mount})"),
        )
}
