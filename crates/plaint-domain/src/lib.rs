//! The pure core of the complaint router.
//!
//! Everything here is a function of its inputs: no I/O, no async, no clock.
//! Time and ids come in as arguments, so a replay of the log under the same
//! policy reproduces every decision exactly.
//!
//! - [`values`]: parsed newtypes with their limits as named constants;
//! - [`facts`]: what a complaint says about the customer, channel and item;
//! - [`access`]: scopes, API keys and the audit trail, as facts in the log;
//! - [`event`]: the facts stored in the log, and their envelope;
//! - [`lifecycle`]: commands, `decide` and `apply` for one complaint;
//! - [`routing`]: the versioned policy and `decide_route`;
//! - [`sla`]: service-level targets, their clocks and breaches;
//! - [`goodwill`]: satisfaction figures over resolved complaints;
//! - [`personal`]: erasure of a customer's personal data.

pub mod access;
pub mod event;
pub mod facts;
pub mod goodwill;
pub mod lifecycle;
pub mod personal;
pub mod routing;
pub mod sla;
pub mod time;
pub mod values;

pub use event::{CompanyEvent, ComplaintEvent, Envelope, EventPayload, SCHEMA_VERSION};
pub use facts::{Category, Channel, ComplaintFacts, Customer, CustomerTier, Visibility};
pub use lifecycle::{Command, Complaint, DomainError, Status, apply, decide};
pub use routing::{
    Climate, Decision, FulfilmentKind, Priority, Route, RoutingContext, RoutingFacts,
    RoutingPolicy, StanceAlignment, decide_route,
};
pub use time::Timestamp;
pub use values::{ComplaintId, EventId, Problem, ValidationError};
