//! Deciding routes: the router's write side.
//!
//! - [`consumer`]: the durable consumer of new complaints and visibility
//!   changes, every delivery ending routed, skipped, dead-lettered or
//!   redelivered;
//! - [`decide`]: one explained decision per complaint, appended exactly once
//!   (expected subject sequence) with the CEO budget taken by compare-and-set
//!   on the log, so it holds across replicas;
//! - [`company`], [`shared_inputs`], [`engagements`]: the policy, climate,
//!   stance, budget and CEO engagements a decision reads from the log.

pub mod company;
pub mod consumer;
pub mod decide;
pub mod engagements;
pub mod shared_inputs;

pub use consumer::{consumer_settings, measure_backlog, run};
pub use decide::{Outcome, Router, RoutingError, now};
