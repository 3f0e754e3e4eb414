//! The intake service: both doors, deduplication, the lifecycle rules, bad
//! input, dead letters, restarts, health, reflection and shutdown.

mod concurrency;
mod dedup;
mod grpc_validation;
mod helpdesk;
mod lifecycle;
mod operations;
mod redelivery;
mod refusals;
