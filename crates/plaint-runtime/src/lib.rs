//! Process plumbing shared by both services.

pub mod allocator;
pub mod binary;
pub mod gate;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
pub mod wire_errors;

pub use wire_errors::WireErrorsLayer;
