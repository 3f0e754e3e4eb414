//! The ceiling of the event log's current layout: the operations one
//! complaint costs, each at the rate the calibration measured for it, as if
//! all of them ran one after another on this machine. The system cannot do
//! better than that without doing less per complaint (or spreading it over
//! more machines), so its end-to-end rate as a share of the ceiling says how
//! much is lost between the parts rather than inside them.

use serde_json::{Value, json};

use crate::calibration::Calibration;
use crate::stats::finite;

/// One kind of operation a complaint costs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Op {
    /// What it is, in the layout's terms.
    pub(crate) what: &'static str,
    /// How many of it one complaint costs.
    pub(crate) count: f64,
    /// The calibrated rate it runs at, and that rate's name.
    pub(crate) rate_name: &'static str,
    pub(crate) rate: f64,
}

impl Op {
    /// Seconds of it per complaint.
    pub(crate) fn seconds(&self) -> f64 {
        self.count / self.rate
    }
}

/// The composition and the rate it allows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ceiling {
    pub(crate) ops: Vec<Op>,
}

impl Ceiling {
    /// One complaint in the current layout: intake appends
    /// `complaint_received` with an expected-subject-sequence check, the
    /// routing consumer fetches and acks it, the router appends
    /// `complaint_routed` (checked as well), the projector reads both events
    /// (ordered reads, taken at the fetch rate) and upserts the row in a
    /// batch.
    pub(crate) fn of(c: &Calibration) -> Self {
        let op = |what, count, rate_name, rate| Op {
            what,
            count,
            rate_name,
            rate,
        };
        Self {
            ops: vec![
                op("intake: append complaint_received", 1.0, "R_els", c.r_els),
                op("routing consumer: fetch + ack", 1.0, "R_fetch", c.r_fetch),
                op("router: append complaint_routed", 1.0, "R_els", c.r_els),
                op("projector: read both events", 2.0, "R_fetch", c.r_fetch),
                op("projector: upsert the row, batched", 1.0, "R_pgB", c.r_pg_b),
            ],
        }
    }

    /// Seconds of work per complaint, all operations in sequence.
    fn seconds(&self) -> f64 {
        self.ops.iter().map(Op::seconds).sum()
    }

    /// Complaints per second the operations allow, done one after another.
    pub(crate) fn per_s(&self) -> f64 {
        1.0 / self.seconds()
    }

    /// The share of a complaint's time an operation takes.
    pub(crate) fn share(&self, op: &Op) -> f64 {
        op.seconds() / self.seconds()
    }

    /// The JSON form, with the system's end-to-end rate as a share of it.
    pub(crate) fn to_json(&self, e2e: f64) -> Value {
        json!({
            "per_s": finite(self.per_s()),
            "e2e_ratio": finite(e2e / self.per_s()),
            "ops": self.ops.iter().map(|o| json!({
                "op": o.what,
                "count": o.count,
                "rate": o.rate_name,
                "rate_per_s": finite(o.rate),
                "us_per_complaint": finite(o.seconds() * 1e6),
                "share": finite(self.share(o)),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_adds_the_times_of_the_operations() {
        let c = Calibration {
            r_els: 1000.0,
            r_fetch: 3000.0,
            r_pg_b: 10_000.0,
            ..Calibration::default()
        };
        let ceiling = Ceiling::of(&c);
        // 2/1000 + 3/3000 + 1/10000 = 0.0031 s per complaint.
        assert!((ceiling.per_s() - 1.0 / 0.0031).abs() < 1e-6);
        let shares: f64 = ceiling.ops.iter().map(|o| ceiling.share(o)).sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }
}
