//! The router: the decision and read side of the complaint router.
//!
//! - [`routing`]: a durable consumer that decides each new complaint's route
//!   (and re-routes on visibility changes) and appends the decision, exactly
//!   once per complaint, with the CEO budget enforced through the log;
//! - [`company`]: the policy, climate and stance in force, read from the log;
//! - [`projector`] and [`store`]: PostgreSQL projections built from every event,
//!   each batch and its checkpoint in one transaction;
//! - [`query`] and [`admin`]: the gRPC APIs.

pub mod admin;
pub mod company;
pub mod config;
pub mod engagements;
pub mod pairing;
pub mod projector;
pub mod query;
pub mod rebuild;
pub mod routing;
pub mod shared_inputs;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::Application;
