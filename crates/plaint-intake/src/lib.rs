//! The intake service: the write side of the complaint router.
//!
//! Internal systems call [`grpc`]; helpdesk integrations publish onto NATS and
//! [`helpdesk`] consumes what they publish. Both doors lead to [`service`],
//! which checks each command against the complaint's history and appends the
//! resulting events with optimistic concurrency.

mod commands;
mod config;
mod error;
mod grpc;
pub mod helpdesk;
mod service;
mod size_hints;
mod startup;

pub use commands::Parsed;
pub use config::Config;
pub use service::{Intake, now};
pub use startup::Application;
