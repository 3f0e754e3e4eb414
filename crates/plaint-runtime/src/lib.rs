//! Process plumbing shared by both services.

pub mod shutdown;
pub mod telemetry;
