//! Fault scenarios: the services under failure — crashes, poison messages,
//! racing replicas, a NATS cluster losing a node — checked against the
//! invariants the architecture promises (nothing lost, exactly one decision
//! per complaint, the CEO budget holds, no consumer stalls).
//!
//! Every wait is bounded; RELIABILITY.md describes each scenario, its fault,
//! its invariant and the figures of the last run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod poison;
mod racing;
mod harness;
mod checker;
mod baseline;
mod crash_router;
mod crash_intake;
mod crash_nats;
mod crash_postgres;
mod duplicates;
mod bad_input;
mod shutdown;
