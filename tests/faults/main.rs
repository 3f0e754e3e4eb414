//! Fault scenarios: the services under failure — crashes, poison messages,
//! racing replicas, a NATS cluster losing a node — checked against the
//! invariants the architecture promises (nothing lost, exactly one decision
//! per complaint, the CEO budget holds, no consumer stalls).
//!
//! Every wait is bounded; RELIABILITY.md describes each scenario, its fault,
//! its invariant and the figures of the last run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod baseline;
#[path = "../shared/ceo_route.rs"]
mod ceo_route;
mod checker;
mod cluster;
mod crash_intake;
mod crash_nats;
mod crash_postgres;
mod crash_router;
mod dead_letter_pages;
mod duplicates;
mod harness;
mod poison;
mod projector_failover;
mod racing;
#[path = "../shared/raw_codec.rs"]
mod raw_codec;
#[path = "../shared/scrape.rs"]
mod scrape;
mod shutdown;
mod sla_timers;
mod supervision;
