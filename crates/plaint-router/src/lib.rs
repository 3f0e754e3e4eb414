//! The router service: the decision and read side of the complaint router.
//!
//! It runs the routing consumer ([`plaint_routing`]) and the projector
//! ([`plaint_projection`]) as supervised tasks, and serves:
//! - [`query`]: reads over the projections, read-your-writes, watch streams
//!   and policy simulation;
//! - [`admin`]: policy versions, climate and stance (events in the log),
//!   and projection rebuilds.

mod admin;
mod config;
mod customers;
pub mod helpdesk_updates;
mod keys;
mod query;
pub mod sla;
mod startup;

pub use config::Config;
pub use query::QueryService;
pub use startup::{Application, PROJECTOR_LEASE};
