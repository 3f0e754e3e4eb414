//! Service levels kept: every running clock of a complaint has a durable
//! timer, and a timer that fires on a clock still running unmet appends the
//! one `sla_breached` event that clock may have.
//!
//! - [`clocks`]: arms the timers of the clocks that routing, re-routing and
//!   reopening start, read through a durable consumer of those events;
//! - [`breaches`]: handles the timers as they fire, through a durable
//!   consumer every replica shares.
//!
//! Both consumers are shared by every replica (no lease): arming the same
//! clock twice arms one timer (its key names the clock), and the breach is
//! exactly once because its event id is derived from the clock and the
//! append expects the complaint unchanged since it was read.

pub mod breaches;
pub mod clocks;

use plaint_domain::ComplaintId;
use plaint_domain::sla::Timer;
use serde::{Deserialize, Serialize};

/// What a timer carries to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockTimer {
    /// The complaint whose clock it watches.
    pub complaint_id: ComplaintId,
    /// The clock.
    #[serde(flatten)]
    pub timer: Timer,
}

impl ClockTimer {
    /// The timer's key: one per clock, so a restarted clock gets a timer
    /// of its own and the old one finds its clock gone.
    pub fn key(&self) -> String {
        format!(
            "{}.{}.{}",
            self.complaint_id.subject_token(),
            self.timer.target.token(),
            self.timer.since.as_millis()
        )
    }
}
