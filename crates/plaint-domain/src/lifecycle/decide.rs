//! Commands and `decide`: the rules of a complaint's life.

use serde::{Deserialize, Serialize};

use super::state::{Complaint, FulfilmentStep, Status};
use crate::event::{ComplaintEvent, ItemOutcome};
use crate::facts::{ComplaintFacts, Visibility};
use crate::routing::{Decision, Priority, Route};
use crate::sla::{SlaTarget, Timer};
use crate::time::Timestamp;
use crate::values::{FreeText, Label, Satisfaction};

/// Something a caller asks to happen to a complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Register a new complaint.
    Submit(Box<ComplaintFacts>),
    /// Record the router's decision: the first routing, or a re-routing.
    RecordDecision(Box<Decision>),
    /// The complaint's visibility changed.
    ChangeVisibility(Visibility),
    /// The handler confirms receipt.
    Acknowledge {
        /// Who.
        by: Label,
    },
    /// Give it an owner.
    Assign {
        /// The new owner.
        assignee: Label,
    },
    /// The customer added something.
    RecordFollowUp {
        /// What they said.
        text: FreeText,
    },
    /// Issue a return merchandise authorization.
    AuthorizeReturn {
        /// The RMA number.
        rma: Label,
    },
    /// The item arrived.
    ReceiveItem,
    /// The item was repaired, replaced or refunded.
    ProcessItem {
        /// Which.
        outcome: ItemOutcome,
    },
    /// The item goes back to the customer.
    ShipBack {
        /// Carrier tracking number.
        tracking: Label,
    },
    /// Resolve with the customer's rating.
    Resolve {
        /// 1..=10.
        satisfaction: Satisfaction,
        /// Handler's note.
        note: FreeText,
    },
    /// Open a resolved complaint again.
    Reopen {
        /// Why.
        reason: FreeText,
    },
    /// Withdraw it. Terminal.
    Withdraw {
        /// Why.
        reason: FreeText,
    },
    /// Record a decision made again that leaves the route in force.
    RecordReevaluation(Box<Decision>),
    /// Record that a service-level target passed unmet, as its timer says.
    RecordSlaBreach {
        /// The clock the timer watched.
        timer: Timer,
        /// Now.
        at: Timestamp,
        /// Whether the policy raises the priority on a breach.
        raise_priority: bool,
    },
}

impl Command {
    /// The stable command name used in errors and logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Command::Submit(_) => "submit",
            Command::RecordDecision(_) => "record_decision",
            Command::ChangeVisibility(_) => "change_visibility",
            Command::Acknowledge { .. } => "acknowledge",
            Command::Assign { .. } => "assign",
            Command::RecordFollowUp { .. } => "record_follow_up",
            Command::AuthorizeReturn { .. } => "authorize_return",
            Command::ReceiveItem => "receive_item",
            Command::ProcessItem { .. } => "process_item",
            Command::ShipBack { .. } => "ship_back",
            Command::Resolve { .. } => "resolve",
            Command::Reopen { .. } => "reopen",
            Command::Withdraw { .. } => "withdraw",
            Command::RecordSlaBreach { .. } => "record_sla_breach",
            Command::RecordReevaluation(_) => "record_reevaluation",
        }
    }
}

/// Why a command was refused. Each maps to one gRPC status at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// No complaint with that id exists.
    #[error("no such complaint")]
    NotFound,
    /// The complaint was submitted before.
    #[error("the complaint was already submitted")]
    AlreadySubmitted,
    /// The complaint was withdrawn; nothing may follow.
    #[error("the complaint was withdrawn; {command} is not allowed")]
    Withdrawn {
        /// The refused command.
        command: &'static str,
    },
    /// The complaint was not routed yet.
    #[error("the complaint is not routed yet; {command} must wait")]
    NotRouted {
        /// The refused command.
        command: &'static str,
    },
    /// The complaint is resolved.
    #[error("the complaint is already resolved; {command} is not allowed")]
    AlreadyResolved {
        /// The refused command.
        command: &'static str,
    },
    /// Reopening needs a resolved complaint.
    #[error("only a resolved complaint can be reopened")]
    NotResolved,
    /// The command does not fit the status.
    #[error("{command} is not allowed when the complaint is {}", status.name())]
    InvalidTransition {
        /// The refused command.
        command: &'static str,
        /// The status it met.
        status: Status,
    },
    /// A reverse-logistics step for a complaint whose decision asked for none.
    #[error("the complaint has no reverse-logistics fulfilment; {command} is not allowed")]
    NoFulfilment {
        /// The refused command.
        command: &'static str,
    },
    /// A reverse-logistics step out of order.
    #[error("{command} cannot follow the fulfilment step {}", step.name())]
    StepOutOfOrder {
        /// The refused command.
        command: &'static str,
        /// The last step done.
        step: FulfilmentStep,
    },
    /// Resolution before the item was handled.
    #[error("the item is not handled yet (step {}); resolve after it is shipped back or refunded", step.name())]
    FulfilmentIncomplete {
        /// The last step done.
        step: FulfilmentStep,
    },
    /// The clock a timer watched is met, or was restarted since.
    #[error("the {} target was met or its clock restarted", target.name())]
    SlaMet {
        /// The target.
        target: SlaTarget,
    },
    /// The clock already breached; a clock breaches once.
    #[error("the {} target's breach is already recorded", target.name())]
    SlaAlreadyBreached {
        /// The target.
        target: SlaTarget,
    },
    /// The target is not due yet.
    #[error("the {} target is due at {due_at}, not yet", target.name())]
    SlaNotDue {
        /// The target.
        target: SlaTarget,
        /// When it is due.
        due_at: Timestamp,
    },
    /// A re-evaluation whose decision would change the route: a re-routing.
    #[error("the decision made again routes to {}, not {}: record it as a re-routing", to.name(), from.name())]
    RouteChanges {
        /// The route in force.
        from: Route,
        /// The decision's.
        to: Route,
    },
    /// A re-routing that would not change the route.
    #[error("the complaint is already routed to {}", route.name())]
    RouteUnchanged {
        /// The route in force.
        route: Route,
    },
}

/// Checks a command against the complaint's state and answers with the events
/// that record it, or a typed refusal. Pure: the same inputs give the same answer.
pub fn decide(
    state: Option<&Complaint>,
    command: &Command,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    let name = command.name();
    let c = match (state, command) {
        (None, Command::Submit(facts)) => {
            return Ok(vec![ComplaintEvent::Received(facts.clone())]);
        }
        (Some(_), Command::Submit(_)) => return Err(DomainError::AlreadySubmitted),
        (None, _) => return Err(DomainError::NotFound),
        (Some(c), _) => c,
    };
    if c.status == Status::Withdrawn {
        return Err(DomainError::Withdrawn { command: name });
    }
    let event = match command {
        Command::Submit(_) => return Err(DomainError::AlreadySubmitted),
        Command::RecordDecision(decision) => record_decision(c, decision)?,
        Command::ChangeVisibility(v) => ComplaintEvent::VisibilityChanged(*v),
        Command::RecordFollowUp { text } => {
            ComplaintEvent::CustomerFollowedUp { text: text.clone() }
        }
        Command::Acknowledge { by } => {
            require_open(c, name)?;
            if c.status != Status::Routed {
                return Err(DomainError::InvalidTransition {
                    command: name,
                    status: c.status,
                });
            }
            ComplaintEvent::Acknowledged { by: by.clone() }
        }
        Command::Assign { assignee } => {
            require_open(c, name)?;
            ComplaintEvent::Assigned {
                assignee: assignee.clone(),
            }
        }
        Command::AuthorizeReturn { rma } => {
            require_step(c, name, FulfilmentStep::Pending)?;
            ComplaintEvent::ReturnAuthorized { rma: rma.clone() }
        }
        Command::ReceiveItem => {
            require_step(c, name, FulfilmentStep::Authorized)?;
            ComplaintEvent::ItemReceived
        }
        Command::ProcessItem { outcome } => {
            require_step(c, name, FulfilmentStep::ItemReceived)?;
            ComplaintEvent::ItemProcessed { outcome: *outcome }
        }
        Command::ShipBack { tracking } => {
            require_step(c, name, FulfilmentStep::Processed)?;
            ComplaintEvent::ItemShippedBack {
                tracking: tracking.clone(),
            }
        }
        Command::Resolve { satisfaction, note } => {
            require_open(c, name)?;
            if let Some(f) = c.fulfilment.filter(|f| !f.is_complete()) {
                return Err(DomainError::FulfilmentIncomplete { step: f.step });
            }
            ComplaintEvent::Resolved {
                satisfaction: *satisfaction,
                note: note.clone(),
            }
        }
        Command::Reopen { reason } => {
            if c.status != Status::Resolved {
                return Err(DomainError::NotResolved);
            }
            ComplaintEvent::Reopened {
                reason: reason.clone(),
            }
        }
        Command::RecordReevaluation(decision) => {
            require_open(c, name)?;
            if let Some(route) = c.route().filter(|r| *r != decision.route) {
                return Err(DomainError::RouteChanges {
                    from: route,
                    to: decision.route,
                });
            }
            ComplaintEvent::Reevaluated {
                held_by: decision.first_failed_gate().map(|g| g.kind),
                decision: decision.clone(),
            }
        }
        Command::RecordSlaBreach {
            timer,
            at,
            raise_priority,
        } => sla_breach(c, timer, *at, *raise_priority)?,
        Command::Withdraw { reason } => {
            if c.status == Status::Resolved {
                return Err(DomainError::AlreadyResolved { command: name });
            }
            ComplaintEvent::Withdrawn {
                reason: reason.clone(),
            }
        }
    };
    Ok(vec![event])
}

fn record_decision(c: &Complaint, decision: &Decision) -> Result<ComplaintEvent, DomainError> {
    let name = "record_decision";
    match (c.status, c.route()) {
        (Status::Received, _) | (_, None) => Ok(ComplaintEvent::Routed(Box::new(decision.clone()))),
        (Status::Resolved, _) => Err(DomainError::AlreadyResolved { command: name }),
        (_, Some(route)) if route == decision.route => Err(DomainError::RouteUnchanged { route }),
        (_, Some(previous)) => Ok(ComplaintEvent::Rerouted {
            decision: Box::new(decision.clone()),
            previous,
        }),
    }
}

/// The breach a timer reports, if its clock still runs unmet and is due.
fn sla_breach(
    c: &Complaint,
    timer: &Timer,
    at: Timestamp,
    raise_priority: bool,
) -> Result<ComplaintEvent, DomainError> {
    let target = timer.target;
    let clock = c
        .sla
        .get(target)
        .filter(|clock| clock.since == timer.since)
        .ok_or(DomainError::SlaMet { target })?;
    if clock.breached {
        return Err(DomainError::SlaAlreadyBreached { target });
    }
    let due_at = clock.due_at();
    if at < due_at {
        return Err(DomainError::SlaNotDue { target, due_at });
    }
    let raised_priority = c
        .priority()
        .filter(|p| raise_priority && *p != Priority::P1)
        .map(crate::sla::raised);
    Ok(ComplaintEvent::SlaBreached {
        target,
        since: clock.since,
        due_at,
        late_by_ms: at.as_millis() - due_at.as_millis(),
        raised_priority,
    })
}

/// The complaint is routed and neither resolved nor withdrawn.
fn require_open(c: &Complaint, command: &'static str) -> Result<(), DomainError> {
    match c.status {
        Status::Received => Err(DomainError::NotRouted { command }),
        Status::Resolved => Err(DomainError::AlreadyResolved { command }),
        Status::Withdrawn => Err(DomainError::Withdrawn { command }),
        _ => Ok(()),
    }
}

/// The complaint is open, has a fulfilment, and its last step is `expected`.
fn require_step(
    c: &Complaint,
    command: &'static str,
    expected: FulfilmentStep,
) -> Result<(), DomainError> {
    require_open(c, command)?;
    let f = c.fulfilment.ok_or(DomainError::NoFulfilment { command })?;
    if f.step != expected {
        return Err(DomainError::StepOutOfOrder {
            command,
            step: f.step,
        });
    }
    Ok(())
}
