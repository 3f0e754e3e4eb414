//! End-to-end scenarios: the real intake service in-process, against a real
//! `nats-server`, asserting what reached the event log.
//!
//! Tests that only need isolation use the shared NATS server under a unique
//! prefix each, so they run in parallel; tests that stop things, or need
//! special stream settings, start a `nats-server` of their own. Every wait is
//! bounded (see [`helpers::eventually`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod as_of;
mod bench;
#[path = "../shared/ceo_route.rs"]
mod ceo_route;
mod compose;
mod ctl;
mod helpers;
mod intake;
mod leases;
mod limits;
mod nats_tls;
mod nats_users;
mod operability;
mod outbound;
mod personal;
#[path = "../shared/raw_codec.rs"]
mod raw_codec;
mod router;
#[path = "../shared/scrape.rs"]
mod scrape;
mod sla;
mod tls;
