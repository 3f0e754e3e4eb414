//! One complaint's life: commands are checked against the current state by
//! [`decide`], which answers with events or a typed refusal; [`apply`] folds an
//! event into the state. Replaying a complaint's events through `apply` gives
//! back the state that `decide` saw.

mod decide;
mod state;

pub use decide::{Command, DomainError, decide};
pub use state::{
    Complaint, FulfilmentProgress, FulfilmentStep, InvalidHistory, Status, apply, first_clocks,
    replay,
};
