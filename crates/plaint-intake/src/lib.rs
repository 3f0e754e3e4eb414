//! The intake service: the write side of the complaint router.
//!
//! Internal systems call [`grpc`]; helpdesk integrations publish onto NATS and
//! [`helpdesk`] consumes what they publish. Both doors lead to [`service`],
//! which checks each command against the complaint's history and appends the
//! resulting events with optimistic concurrency.

pub mod commands;
pub mod config;
pub mod error;
pub mod grpc;
pub mod helpdesk;
pub mod service;
pub mod size_hints;
pub mod startup;

pub use config::Config;
pub use startup::Application;
