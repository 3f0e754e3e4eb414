//! The reports of one `plaint-ctl bench`: one per mode run, each printed in
//! full, then side by side.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::calibration::{BATCH, Calibration};
use crate::mode::Mode;
use crate::report::{Report, ratio};
use crate::stats::finite;

/// One report per mode the bench ran; a mode not run is `None`.
#[derive(Debug, Clone, Default)]
pub struct Reports {
    /// With an fsync after every write (production's setting).
    pub durable: Option<Report>,
    /// With NATS's default fsync.
    pub fast: Option<Report>,
    /// The scale phase (`--scale`), which runs instead of the modes.
    pub scale: Option<crate::ScaleReport>,
    /// The timers phase (`--timers`), which runs instead of the modes.
    pub timers: Option<crate::TimersReport>,
}

impl Reports {
    /// Files `report` under its mode.
    pub fn insert(&mut self, report: Report) {
        match report.mode() {
            Mode::Durable => self.durable = Some(report),
            Mode::Fast => self.fast = Some(report),
        }
    }

    /// The reports of the modes run, durable first.
    pub fn iter(&self) -> impl Iterator<Item = &Report> {
        [self.durable.as_ref(), self.fast.as_ref()]
            .into_iter()
            .flatten()
    }

    /// Whether anything ran (a mode or the scale phase) and everything that
    /// ran passed its gate.
    pub fn gates_passed(&self) -> bool {
        (self.iter().next().is_some() || self.scale.is_some() || self.timers.is_some())
            && self.iter().all(Report::gate_passed)
            && self
                .scale
                .as_ref()
                .is_none_or(crate::ScaleReport::gate_passed)
            && self.timers.as_ref().is_none_or(crate::TimersReport::passed)
    }

    /// Each mode's table under a heading, then the main figures side by side.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for r in self.iter() {
            let heading = format!("fsync {}: {}", r.mode().name(), r.mode().describe());
            let _ = writeln!(out, "\n{heading}\n{}", "=".repeat(heading.chars().count()));
            out.push_str(&r.table());
        }
        if self.iter().next().is_some() {
            out.push_str(&self.summary());
        }
        if let Some(s) = &self.scale {
            out.push_str(&s.table());
        }
        if let Some(t) = &self.timers {
            out.push_str(&t.table());
        }
        out
    }

    /// The main figures of each mode run, one column per mode.
    fn summary(&self) -> String {
        let reports: Vec<&Report> = self.iter().collect();
        let mut out = String::from("\nSide by side\n");
        let _ = write!(out, "  {:<44}", "");
        for r in &reports {
            let _ = write!(out, " {:>26}", r.mode().name());
        }
        out.push('\n');
        for (name, cell) in summary_rows() {
            let _ = write!(out, "  {name:<44}");
            for r in &reports {
                let _ = write!(out, " {:>26}", cell(r));
            }
            out.push('\n');
        }
        if let Some(e) = self.fsyncs_per_batch() {
            let _ = writeln!(out, "  {}", e.sentence());
        }
        out
    }

    /// The fsyncs one durable atomic batch costs, if both modes ran.
    fn fsyncs_per_batch(&self) -> Option<FsyncEstimate> {
        fsync_estimate(
            &self.durable.as_ref()?.calibration,
            &self.fast.as_ref()?.calibration,
        )
    }

    /// The JSON form: `durable` and `fast`, each a report or null; with both,
    /// the durable calibration's `r_batch` also holds the fsync estimate.
    pub fn to_json(&self) -> Value {
        let mut durable = self.durable.as_ref().map(Report::to_json);
        if let (Some(e), Some(r_batch)) = (
            self.fsyncs_per_batch(),
            durable
                .as_mut()
                .and_then(|d| d.pointer_mut("/calibration/r_batch"))
                .and_then(Value::as_object_mut),
        ) {
            r_batch.insert(
                "fsyncs_per_batch_estimate".to_owned(),
                json!({
                    "fsyncs": finite(e.fsyncs),
                    "batch_extra_ms": finite(e.batch_extra_s * 1e3),
                    "publish_extra_ms": finite(e.publish_extra_s * 1e3),
                    "how": "(durable − fast) time of a batch / (durable − fast) time of one \
                            pipelined publish",
                }),
            );
        }
        let mut out = json!({
            "durable": durable,
            "fast": self.fast.as_ref().map(Report::to_json),
        });
        if let (Some(s), Some(map)) = (&self.scale, out.as_object_mut()) {
            map.insert("scale".to_owned(), s.to_json());
        }
        if let (Some(t), Some(map)) = (&self.timers, out.as_object_mut()) {
            map.insert("timers".to_owned(), t.to_json());
        }
        out
    }
}

/// The fsyncs one durable atomic batch costs, from both modes'
/// calibrations: the time the fsync adds to a batch over the time it adds
/// to one pipelined publish, which costs one fsync. `None` unless both
/// measured R_batch and the durable publish was the slower.
fn fsync_estimate(durable: &Calibration, fast: &Calibration) -> Option<FsyncEstimate> {
    let batch_extra_s = BATCH as f64 / durable.r_batch? - BATCH as f64 / fast.r_batch?;
    let publish_extra_s = 1.0 / durable.r_pub - 1.0 / fast.r_pub;
    (publish_extra_s > 0.0 && batch_extra_s.is_finite()).then_some(FsyncEstimate {
        fsyncs: batch_extra_s / publish_extra_s,
        batch_extra_s,
        publish_extra_s,
    })
}

/// What the fsync costs a durable atomic batch, from both modes.
#[derive(Debug, Clone, Copy)]
struct FsyncEstimate {
    /// Fsyncs per batch.
    fsyncs: f64,
    /// Durable minus fast time of one batch, seconds.
    batch_extra_s: f64,
    /// Durable minus fast time of one pipelined publish, seconds.
    publish_extra_s: f64,
}

impl FsyncEstimate {
    /// The estimate in words; a batch that was no slower with the fsync
    /// (two separate runs on a noisy machine) gives no estimate.
    fn sentence(&self) -> String {
        let how = format!(
            "the fsync adds {:.3} ms to a batch and {:.3} ms to one pipelined publish \
             (durable − fast)",
            self.batch_extra_s * 1e3,
            self.publish_extra_s * 1e3
        );
        if self.fsyncs > 0.0 {
            format!(
                "A durable atomic batch of {BATCH} costs ≈ {:.1} fsyncs: {how}",
                self.fsyncs
            )
        } else {
            format!("Fsyncs per durable atomic batch: not measurable in this run, {how}")
        }
    }
}

/// A row of the side-by-side summary: its name and how to fill a cell.
type Row = (&'static str, fn(&Report) -> String);

fn summary_rows() -> [Row; 9] {
    [
        ("R_pub, msg/s", |r| format!("{:.0}", r.calibration.r_pub)),
        ("R_batch, msg/s (× R_pub)", |r| {
            let c = &r.calibration;
            c.r_batch.map_or_else(
                || "unavailable".to_owned(),
                |b| format!("{b:.0} ({})", ratio(b, c.r_pub)),
            )
        }),
        ("R_els, msg/s", |r| format!("{:.0}", r.calibration.r_els)),
        ("e2e, complaints/s (× R_pub)", |r| {
            format!("{:.0} ({})", r.e2e(), ratio(r.e2e(), r.calibration.r_pub))
        }),
        ("ceiling, complaints/s (e2e share)", |r| {
            let per_s = r.ceiling().per_s();
            format!("{per_s:.0} ({})", ratio(r.e2e(), per_s))
        }),
        ("router drain, complaints/s (× R_pub)", |r| {
            format!(
                "{:.0} ({})",
                r.drain.rate(),
                ratio(r.drain.rate(), r.calibration.r_pub)
            )
        }),
        ("submit→visible p99 at 100/s, ms", |r| {
            format!("{:.2}", r.low.visible.p99)
        }),
        ("submit c=1 p99, ms", |r| format!("{:.2}", r.c1.latency.p99)),
        ("targets met / aims met / all", |r| {
            let t = crate::targets::of(r);
            format!(
                "{} / {} / {}",
                t.iter().filter(|t| t.met()).count(),
                t.iter().filter(|t| t.aim_met()).count(),
                t.len()
            )
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calibration(r_pub: f64, r_batch: Option<f64>) -> Calibration {
        Calibration {
            r_pub,
            r_batch,
            ..Calibration::default()
        }
    }

    #[test]
    fn the_fsyncs_of_a_batch_are_its_extra_time_in_extra_publish_times() {
        // The fsync adds 0.2 ms to a publish (0.25 vs 0.05 ms) and 0.8 ms to
        // a batch of 100 (10 vs 9.2 ms): four fsyncs.
        let e = fsync_estimate(
            &calibration(4_000.0, Some(10_000.0)),
            &calibration(20_000.0, Some(100.0 / 0.0092)),
        )
        .map(|e| e.fsyncs);
        assert!(e.is_some_and(|n| (n - 4.0).abs() < 1e-6), "{e:?}");
        assert!(
            fsync_estimate(
                &calibration(4_000.0, None),
                &calibration(20_000.0, Some(1.0))
            )
            .is_none()
        );
        // No estimate when the fsync did not slow the publish.
        assert!(
            fsync_estimate(
                &calibration(20_000.0, Some(1.0)),
                &calibration(4_000.0, Some(1.0))
            )
            .is_none()
        );
    }
}
