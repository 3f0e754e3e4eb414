//! The targets of each mode: a limit a run must meet and an aim it should,
//! each relative to the calibration of the same run where it can be, so a
//! slow or busy machine does not fail a run that a fast one would pass.

use serde_json::{Value, json};

use crate::mode::Mode;
use crate::report::Report;
use crate::stats::finite;

/// Peak resident memory a service may reach, and the one it should, MiB.
const RSS_LIMIT_MIB: f64 = 64.0;
const RSS_AIM_MIB: f64 = 32.0;

/// One target: met or missed.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) figure: f64,
    pub(crate) limit: f64,
    /// Where the figure should be; beyond the limit in the same direction.
    pub(crate) aim: f64,
    /// `true`: the figure must be at least the limit; `false`: at most.
    pub(crate) at_least: bool,
    /// The rule, with its aim.
    pub(crate) rule: String,
}

impl Target {
    fn reaches(&self, bound: f64) -> bool {
        if self.at_least {
            self.figure >= bound
        } else {
            self.figure <= bound
        }
    }

    /// Whether the figure is within the limit (NaN never is).
    pub(crate) fn met(&self) -> bool {
        self.reaches(self.limit)
    }

    /// Whether the figure is within the aim.
    pub(crate) fn aim_met(&self) -> bool {
        self.reaches(self.aim)
    }

    /// `pass` or `MISS`.
    pub(crate) fn verdict(&self) -> &'static str {
        if self.met() { "pass" } else { "MISS" }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "name": self.name, "figure": finite(self.figure), "limit": finite(self.limit),
            "aim": finite(self.aim), "rule": self.rule, "met": self.met(),
            "aim_met": self.aim_met(),
        })
    }
}

/// A target of at least `limit_share × base` (aim `aim_share × base`).
fn at_least(name: &str, figure: f64, base: (&str, f64), limit_share: f64, aim: f64) -> Target {
    Target {
        name: name.to_owned(),
        figure,
        limit: limit_share * base.1,
        aim: aim * base.1,
        at_least: true,
        rule: format!("≥ {limit_share:?}×{0} (aim ≥ {aim:?}×{0})", base.0),
    }
}

/// A target of at most `limit` milliseconds (aim `aim`).
fn at_most_ms(name: &str, figure: f64, limit: f64, aim: f64) -> Target {
    Target {
        name: name.to_owned(),
        figure,
        limit,
        aim,
        at_least: false,
        rule: format!("≤ {limit} ms (aim ≤ {aim} ms)"),
    }
}

/// The peak RSS targets of both services.
fn rss(r: &Report) -> [Target; 2] {
    let t = &r.throughput;
    let target = |name: &str, figure: f64| Target {
        name: name.to_owned(),
        figure,
        limit: RSS_LIMIT_MIB,
        aim: RSS_AIM_MIB,
        at_least: false,
        rule: format!("≤ {RSS_LIMIT_MIB} MiB (aim ≤ {RSS_AIM_MIB} MiB)"),
    };
    [
        target("intake peak RSS", t.intake.1.peak_rss_mib),
        target(
            "router peak RSS",
            t.router.1.peak_rss_mib.max(r.router_after.peak_rss_mib),
        ),
    ]
}

/// With an fsync after every write the log's appends are the bottleneck:
/// the system is held to R_pub, the rate the same server appends at.
fn durable(r: &Report) -> Vec<Target> {
    let c = &r.calibration;
    let r_pub = ("R_pub", c.r_pub);
    let mut out = vec![
        at_least(
            "end-to-end throughput",
            r.throughput.rate(),
            r_pub,
            0.4,
            1.0,
        ),
        at_least("router drain", r.drain.rate(), r_pub, 0.6, 2.0),
        at_most_ms("submit→visible p99 at 100/s", r.low.visible.p99, 25.0, 10.0),
    ];
    out.extend(rss(r));
    out
}

/// Without the fsync the raw rates are far beyond what a complaint's work
/// allows, so the targets are smaller shares of them.
fn fast(r: &Report) -> Vec<Target> {
    let c = &r.calibration;
    let floor = r.floor_p99();
    let mut out = vec![
        at_least(
            "end-to-end throughput",
            r.throughput.rate(),
            ("R_pub", c.r_pub),
            0.045,
            0.08,
        ),
        at_least(
            "router drain",
            r.drain.rate(),
            ("R_fetch", c.r_fetch),
            0.08,
            0.12,
        ),
        at_most_ms(
            &format!("submit→visible p99 at {}", r.mode.open_rate().label()),
            r.visible.visible.p99,
            100.0,
            30.0,
        ),
        at_most_ms("submit→visible p99 at 100/s", r.low.visible.p99, 20.0, 10.0),
        at_least(
            "projection rebuild",
            r.rebuild.rate(),
            ("min(R_fetch, R_pgB)", c.r_fetch.min(c.r_pg_b)),
            0.6,
            0.8,
        ),
        Target {
            name: "submit latency c=1 p99".to_owned(),
            figure: r.c1.latency.p99,
            limit: 3.0 * floor,
            aim: 2.0 * floor,
            at_least: false,
            rule: "≤ 3×(gRPC c=1 p99 + publish round trip p99) (aim ≤ 2×)".to_owned(),
        },
    ];
    out.extend(rss(r));
    out
}

/// The targets of the report's mode.
pub(crate) fn of(r: &Report) -> Vec<Target> {
    match r.mode {
        Mode::Durable => durable(r),
        Mode::Fast => fast(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_passes_within_its_limit_and_says_when_it_reaches_its_aim() {
        let t = at_least("x", 50.0, ("R_pub", 100.0), 0.4, 1.0);
        assert!(t.met() && !t.aim_met());
        assert_eq!(t.rule, "≥ 0.4×R_pub (aim ≥ 1.0×R_pub)");
        let l = at_most_ms("y", 12.0, 25.0, 10.0);
        assert!(l.met() && !l.aim_met());
        assert!(!at_most_ms("z", f64::NAN, 25.0, 10.0).met());
    }
}
