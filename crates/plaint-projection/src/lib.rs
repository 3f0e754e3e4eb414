//! The projections: PostgreSQL tables derived from the event log, rebuildable
//! from sequence 1.
//!
//! - [`projector`]: follows the log from the checkpoint and applies it in
//!   batches, each batch and its checkpoint in one transaction; [`pairing`]
//!   holds a new complaint's first event until its decision follows, so its
//!   row is written once;
//! - [`store`]: the only SQL of the project (its migrations in
//!   `migrations/`): applying batches, and the reads the queries need;
//! - [`rebuild`]: a rebuild from sequence 1 into fresh tables, swapped in
//!   while queries keep being served.

pub mod pairing;
pub mod projector;
pub mod rebuild;
pub mod relay;
pub mod store;
