//! The life of one complaint, as a specification.
//!
//! Each test reads *given* the events a complaint has had, *when* a command
//! arrives, *then* these events are recorded (and the complaint is now so), or
//! the command is refused with this reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{a_complaint, decision, label, minutes_later, reach, replay, satisfaction, text};
use plaint_domain::event::ItemOutcome;
use plaint_domain::facts::Visibility;
use plaint_domain::lifecycle::{FulfilmentStep, InvalidHistory};
use plaint_domain::routing::{Decision, FulfilmentKind, Route};
use plaint_domain::{
    Command, Complaint, ComplaintEvent, ComplaintId, DomainError, Status, apply, decide,
};

// ---------------------------------------------------------------------------
// given / when / then

/// A complaint as its past events made it (or no complaint at all).
struct Given {
    id: ComplaintId,
    state: Option<Complaint>,
    events_so_far: i64,
}

/// The answer `decide` gave to a command.
struct When {
    given: Given,
    command: Command,
    outcome: Result<Vec<ComplaintEvent>, DomainError>,
}

/// The complaint these events make.
fn given(events: impl IntoIterator<Item = ComplaintEvent>) -> Given {
    let events: Vec<ComplaintEvent> = events.into_iter().collect();
    let id = a_complaint().id();
    let state = replay(id, &events).expect("the given history is valid");
    Given {
        id,
        state,
        events_so_far: i64::try_from(events.len()).unwrap(),
    }
}

/// No complaint with the id exists yet.
fn no_complaint() -> Given {
    given([])
}

impl Given {
    fn when(self, command: Command) -> When {
        let outcome = decide(self.state.as_ref(), &command);
        When {
            given: self,
            command,
            outcome,
        }
    }
}

impl When {
    /// The command is accepted with exactly these events, which apply cleanly;
    /// returns the complaint they make.
    #[track_caller]
    fn then(self, expected: impl IntoIterator<Item = ComplaintEvent>) -> Complaint {
        let expected: Vec<ComplaintEvent> = expected.into_iter().collect();
        let events = match self.outcome {
            Ok(events) => events,
            Err(e) => panic!("{} was refused: {e:?}", self.command.name()),
        };
        assert_eq!(events, expected, "events for {}", self.command.name());
        let mut state = self.given.state;
        for (i, event) in (self.given.events_so_far..).zip(&events) {
            state = Some(
                apply(state, self.given.id, event, minutes_later(i))
                    .expect("decide's events apply"),
            );
        }
        state.expect("a complaint exists after an accepted command")
    }

    /// The command is refused with exactly this reason.
    #[track_caller]
    fn then_refused(self, expected: DomainError) {
        match self.outcome {
            Ok(events) => panic!(
                "{} was accepted with {events:?}, expected {expected:?}",
                self.command.name()
            ),
            Err(e) => assert_eq!(e, expected, "refusal of {}", self.command.name()),
        }
    }
}

// ---------------------------------------------------------------------------
// decisions, commands and events

fn frontline() -> Decision {
    decision(Route::Frontline, None)
}

fn ceo() -> Decision {
    decision(Route::Ceo, None)
}

fn reverse_logistics(kind: FulfilmentKind) -> Decision {
    decision(Route::ReverseLogistics, Some(kind))
}

fn ceo_with(kind: FulfilmentKind) -> Decision {
    decision(Route::Ceo, Some(kind))
}

fn submit() -> Command {
    Command::Submit(Box::new(a_complaint().facts))
}
fn received() -> ComplaintEvent {
    ComplaintEvent::Received(Box::new(a_complaint().facts))
}

fn record(decision: Decision) -> Command {
    Command::RecordDecision(Box::new(decision))
}
fn routed(decision: Decision) -> ComplaintEvent {
    ComplaintEvent::Routed(Box::new(decision))
}
fn rerouted(decision: Decision, previous: Route) -> ComplaintEvent {
    ComplaintEvent::Rerouted {
        decision: Box::new(decision),
        previous,
    }
}

fn went_viral() -> Visibility {
    Visibility {
        audience_reach: reach(2_000_000),
        shares: reach(50_000),
        media_attention: true,
    }
}
fn change_visibility(v: Visibility) -> Command {
    Command::ChangeVisibility(v)
}
fn visibility_changed(v: Visibility) -> ComplaintEvent {
    ComplaintEvent::VisibilityChanged(v)
}

fn acknowledge() -> Command {
    Command::Acknowledge { by: label("alice") }
}
fn acknowledged() -> ComplaintEvent {
    ComplaintEvent::Acknowledged { by: label("alice") }
}

fn assign(who: &str) -> Command {
    Command::Assign {
        assignee: label(who),
    }
}
fn assigned(who: &str) -> ComplaintEvent {
    ComplaintEvent::Assigned {
        assignee: label(who),
    }
}

fn follow_up() -> Command {
    Command::RecordFollowUp {
        text: text("Any news?"),
    }
}
fn followed_up() -> ComplaintEvent {
    ComplaintEvent::CustomerFollowedUp {
        text: text("Any news?"),
    }
}

fn authorize_return() -> Command {
    Command::AuthorizeReturn {
        rma: label("RMA-1"),
    }
}
fn return_authorized() -> ComplaintEvent {
    ComplaintEvent::ReturnAuthorized {
        rma: label("RMA-1"),
    }
}

fn receive_item() -> Command {
    Command::ReceiveItem
}
fn item_received() -> ComplaintEvent {
    ComplaintEvent::ItemReceived
}

fn process_item(outcome: ItemOutcome) -> Command {
    Command::ProcessItem { outcome }
}
fn item_processed(outcome: ItemOutcome) -> ComplaintEvent {
    ComplaintEvent::ItemProcessed { outcome }
}

fn ship_back() -> Command {
    Command::ShipBack {
        tracking: label("1Z999"),
    }
}
fn shipped_back() -> ComplaintEvent {
    ComplaintEvent::ItemShippedBack {
        tracking: label("1Z999"),
    }
}

fn resolve(score: u32) -> Command {
    Command::Resolve {
        satisfaction: satisfaction(score),
        note: text("done"),
    }
}
fn resolved(score: u32) -> ComplaintEvent {
    ComplaintEvent::Resolved {
        satisfaction: satisfaction(score),
        note: text("done"),
    }
}

fn reopen() -> Command {
    Command::Reopen {
        reason: text("it broke again"),
    }
}
fn reopened() -> ComplaintEvent {
    ComplaintEvent::Reopened {
        reason: text("it broke again"),
    }
}

fn withdraw() -> Command {
    Command::Withdraw {
        reason: text("sorted it out myself"),
    }
}
fn withdrawn() -> ComplaintEvent {
    ComplaintEvent::Withdrawn {
        reason: text("sorted it out myself"),
    }
}

/// Every command except `Submit`.
fn every_command_but_submit() -> Vec<Command> {
    vec![
        record(frontline()),
        change_visibility(went_viral()),
        acknowledge(),
        assign("bob"),
        follow_up(),
        authorize_return(),
        receive_item(),
        process_item(ItemOutcome::Repaired),
        ship_back(),
        resolve(10),
        reopen(),
        withdraw(),
    ]
}

/// A repair by reverse logistics, taken through the steps listed.
fn repair_history(steps: &[ComplaintEvent]) -> Vec<ComplaintEvent> {
    let mut events = vec![
        received(),
        routed(reverse_logistics(FulfilmentKind::Repair)),
    ];
    events.extend_from_slice(steps);
    events
}

fn step_of(complaint: &Complaint) -> FulfilmentStep {
    complaint
        .fulfilment
        .expect("the complaint has a fulfilment")
        .step
}

// ---------------------------------------------------------------------------
// submit

#[test]
fn submitting_a_new_complaint_records_that_it_was_received() {
    let complaint = no_complaint().when(submit()).then([received()]);
    assert_eq!(complaint.status, Status::Received);
    assert_eq!(complaint.facts, a_complaint().facts);
    assert_eq!(complaint.visibility, a_complaint().facts.visibility);
    assert_eq!(complaint.received_at, minutes_later(0));
    assert_eq!(complaint.decision, None);
    assert_eq!(complaint.version, 1);
}

#[test]
fn submitting_the_same_complaint_twice_is_refused_as_already_submitted() {
    given([received()])
        .when(submit())
        .then_refused(DomainError::AlreadySubmitted);
}

#[test]
fn submitting_a_withdrawn_complaint_again_is_still_already_submitted() {
    given([received(), withdrawn()])
        .when(submit())
        .then_refused(DomainError::AlreadySubmitted);
}

#[test]
fn every_other_command_on_a_missing_complaint_is_refused_as_not_found() {
    for command in every_command_but_submit() {
        no_complaint()
            .when(command)
            .then_refused(DomainError::NotFound);
    }
}

// ---------------------------------------------------------------------------
// acknowledge

#[test]
fn acknowledging_before_routing_is_refused_as_not_routed() {
    given([received()])
        .when(acknowledge())
        .then_refused(DomainError::NotRouted {
            command: "acknowledge",
        });
}

#[test]
fn acknowledging_a_routed_complaint_records_who_acknowledged_it() {
    let complaint = given([received(), routed(frontline())])
        .when(acknowledge())
        .then([acknowledged()]);
    assert_eq!(complaint.status, Status::Acknowledged);
}

#[test]
fn acknowledging_twice_is_an_invalid_transition() {
    given([received(), routed(frontline()), acknowledged()])
        .when(acknowledge())
        .then_refused(DomainError::InvalidTransition {
            command: "acknowledge",
            status: Status::Acknowledged,
        });
}

#[test]
fn acknowledging_an_assigned_complaint_is_an_invalid_transition() {
    given([received(), routed(frontline()), assigned("bob")])
        .when(acknowledge())
        .then_refused(DomainError::InvalidTransition {
            command: "acknowledge",
            status: Status::Assigned,
        });
}

#[test]
fn acknowledging_a_reopened_complaint_is_an_invalid_transition() {
    given([received(), routed(frontline()), resolved(6), reopened()])
        .when(acknowledge())
        .then_refused(DomainError::InvalidTransition {
            command: "acknowledge",
            status: Status::Reopened,
        });
}

#[test]
fn acknowledging_a_resolved_complaint_is_refused_as_already_resolved() {
    given([received(), routed(frontline()), resolved(9)])
        .when(acknowledge())
        .then_refused(DomainError::AlreadyResolved {
            command: "acknowledge",
        });
}

// ---------------------------------------------------------------------------
// assign

#[test]
fn assigning_before_routing_is_refused_as_not_routed() {
    given([received()])
        .when(assign("bob"))
        .then_refused(DomainError::NotRouted { command: "assign" });
}

#[test]
fn assigning_a_routed_complaint_gives_it_an_owner() {
    let complaint = given([received(), routed(frontline())])
        .when(assign("bob"))
        .then([assigned("bob")]);
    assert_eq!(complaint.status, Status::Assigned);
    assert_eq!(complaint.assignee, Some(label("bob")));
}

#[test]
fn assigning_an_acknowledged_complaint_gives_it_an_owner() {
    let complaint = given([received(), routed(frontline()), acknowledged()])
        .when(assign("bob"))
        .then([assigned("bob")]);
    assert_eq!(complaint.status, Status::Assigned);
}

#[test]
fn reassigning_an_assigned_complaint_changes_its_owner() {
    let complaint = given([received(), routed(frontline()), assigned("bob")])
        .when(assign("carol"))
        .then([assigned("carol")]);
    assert_eq!(complaint.status, Status::Assigned);
    assert_eq!(complaint.assignee, Some(label("carol")));
}

#[test]
fn a_reopened_complaint_can_be_assigned() {
    let complaint = given([received(), routed(frontline()), resolved(5), reopened()])
        .when(assign("carol"))
        .then([assigned("carol")]);
    assert_eq!(complaint.status, Status::Assigned);
}

#[test]
fn assigning_a_resolved_complaint_is_refused_as_already_resolved() {
    given([received(), routed(frontline()), resolved(9)])
        .when(assign("bob"))
        .then_refused(DomainError::AlreadyResolved { command: "assign" });
}

// ---------------------------------------------------------------------------
// follow-up

#[test]
fn a_customer_can_follow_up_before_the_complaint_is_routed() {
    let complaint = given([received()]).when(follow_up()).then([followed_up()]);
    assert_eq!(complaint.status, Status::Received);
}

#[test]
fn a_customer_can_follow_up_while_the_complaint_is_handled() {
    let complaint = given([received(), routed(frontline()), assigned("bob")])
        .when(follow_up())
        .then([followed_up()]);
    assert_eq!(complaint.status, Status::Assigned);
}

#[test]
fn a_customer_can_follow_up_after_resolution_without_reopening_it() {
    let complaint = given([received(), routed(frontline()), resolved(9)])
        .when(follow_up())
        .then([followed_up()]);
    assert_eq!(complaint.status, Status::Resolved);
}

#[test]
fn a_follow_up_on_a_withdrawn_complaint_is_refused() {
    given([received(), withdrawn()])
        .when(follow_up())
        .then_refused(DomainError::Withdrawn {
            command: "record_follow_up",
        });
}

// ---------------------------------------------------------------------------
// visibility

#[test]
fn a_visibility_change_becomes_the_complaints_current_visibility() {
    let complaint = given([received(), routed(frontline())])
        .when(change_visibility(went_viral()))
        .then([visibility_changed(went_viral())]);
    assert_eq!(complaint.visibility, went_viral());
    assert_eq!(
        complaint.facts.visibility,
        Visibility::default(),
        "the facts keep what was stated at intake"
    );
}

#[test]
fn a_visibility_change_alone_does_not_reroute_the_complaint() {
    let complaint = given([received(), routed(frontline()), acknowledged()])
        .when(change_visibility(went_viral()))
        .then([visibility_changed(went_viral())]);
    assert_eq!(complaint.status, Status::Acknowledged);
    assert_eq!(complaint.route(), Some(Route::Frontline));
}

#[test]
fn visibility_can_change_before_routing_and_after_resolution() {
    given([received()])
        .when(change_visibility(went_viral()))
        .then([visibility_changed(went_viral())]);
    given([received(), routed(frontline()), resolved(8)])
        .when(change_visibility(went_viral()))
        .then([visibility_changed(went_viral())]);
}

// ---------------------------------------------------------------------------
// record_decision

#[test]
fn the_first_decision_routes_the_complaint() {
    let complaint = given([received()])
        .when(record(frontline()))
        .then([routed(frontline())]);
    assert_eq!(complaint.status, Status::Routed);
    assert_eq!(complaint.route(), Some(Route::Frontline));
    assert_eq!(complaint.decision, Some(frontline()));
    assert_eq!(complaint.routed_at, Some(minutes_later(1)));
    assert_eq!(complaint.fulfilment, None);
}

#[test]
fn a_decision_with_a_fulfilment_starts_the_item_handling_as_pending() {
    let complaint = given([received()])
        .when(record(reverse_logistics(FulfilmentKind::Repair)))
        .then([routed(reverse_logistics(FulfilmentKind::Repair))]);
    let fulfilment = complaint.fulfilment.unwrap();
    assert_eq!(fulfilment.kind, FulfilmentKind::Repair);
    assert_eq!(fulfilment.step, FulfilmentStep::Pending);
    assert_eq!(fulfilment.outcome, None);
}

#[test]
fn a_ceo_engagement_can_carry_a_reverse_logistics_fulfilment() {
    let complaint = given([received()])
        .when(record(ceo_with(FulfilmentKind::Repair)))
        .then([routed(ceo_with(FulfilmentKind::Repair))]);
    assert_eq!(complaint.route(), Some(Route::Ceo));
    assert_eq!(step_of(&complaint), FulfilmentStep::Pending);
}

#[test]
fn a_decision_with_another_route_reroutes_and_names_the_previous_route() {
    let complaint = given([received(), routed(frontline())])
        .when(record(ceo()))
        .then([rerouted(ceo(), Route::Frontline)]);
    assert_eq!(complaint.route(), Some(Route::Ceo));
    assert_eq!(complaint.decision, Some(ceo()));
}

#[test]
fn rerouting_keeps_the_status_and_the_time_of_first_routing() {
    let complaint = given([
        received(),
        routed(frontline()),
        acknowledged(),
        visibility_changed(went_viral()),
    ])
    .when(record(ceo()))
    .then([rerouted(ceo(), Route::Frontline)]);
    assert_eq!(complaint.status, Status::Acknowledged);
    assert_eq!(complaint.routed_at, Some(minutes_later(1)));
}

#[test]
fn rerouting_keeps_the_item_handling_already_under_way() {
    let complaint = given(repair_history(&[return_authorized()]))
        .when(record(ceo_with(FulfilmentKind::Repair)))
        .then([rerouted(
            ceo_with(FulfilmentKind::Repair),
            Route::ReverseLogistics,
        )]);
    assert_eq!(step_of(&complaint), FulfilmentStep::Authorized);
}

#[test]
fn a_decision_with_the_same_route_is_refused_as_route_unchanged() {
    given([received(), routed(frontline())])
        .when(record(frontline()))
        .then_refused(DomainError::RouteUnchanged {
            route: Route::Frontline,
        });
}

#[test]
fn a_decision_for_a_resolved_complaint_is_refused_as_already_resolved() {
    given([received(), routed(frontline()), resolved(9)])
        .when(record(ceo()))
        .then_refused(DomainError::AlreadyResolved {
            command: "record_decision",
        });
}

#[test]
fn a_reopened_complaint_can_be_rerouted() {
    let complaint = given([received(), routed(frontline()), resolved(3), reopened()])
        .when(record(ceo()))
        .then([rerouted(ceo(), Route::Frontline)]);
    assert_eq!(complaint.status, Status::Reopened);
}

// ---------------------------------------------------------------------------
// reverse logistics

#[test]
fn the_item_steps_run_in_order_authorize_receive_process_ship_back() {
    let mut history = repair_history(&[]);
    let steps = [
        (
            authorize_return(),
            return_authorized(),
            FulfilmentStep::Authorized,
        ),
        (
            receive_item(),
            item_received(),
            FulfilmentStep::ItemReceived,
        ),
        (
            process_item(ItemOutcome::Repaired),
            item_processed(ItemOutcome::Repaired),
            FulfilmentStep::Processed,
        ),
        (ship_back(), shipped_back(), FulfilmentStep::ShippedBack),
    ];
    for (command, event, step) in steps {
        let complaint = given(history.clone()).when(command).then([event.clone()]);
        assert_eq!(step_of(&complaint), step);
        history.push(event);
    }
    let complaint = replay(a_complaint().id(), &history).unwrap().unwrap();
    let fulfilment = complaint.fulfilment.unwrap();
    assert!(fulfilment.is_complete());
    assert_eq!(fulfilment.outcome, Some(ItemOutcome::Repaired));
}

#[test]
fn receiving_an_item_before_authorizing_the_return_is_out_of_order() {
    given(repair_history(&[]))
        .when(receive_item())
        .then_refused(DomainError::StepOutOfOrder {
            command: "receive_item",
            step: FulfilmentStep::Pending,
        });
}

#[test]
fn processing_an_item_before_it_arrives_is_out_of_order() {
    given(repair_history(&[]))
        .when(process_item(ItemOutcome::Repaired))
        .then_refused(DomainError::StepOutOfOrder {
            command: "process_item",
            step: FulfilmentStep::Pending,
        });
    given(repair_history(&[return_authorized()]))
        .when(process_item(ItemOutcome::Repaired))
        .then_refused(DomainError::StepOutOfOrder {
            command: "process_item",
            step: FulfilmentStep::Authorized,
        });
}

#[test]
fn shipping_back_before_the_item_is_processed_is_out_of_order() {
    for (done, step) in [
        (vec![], FulfilmentStep::Pending),
        (vec![return_authorized()], FulfilmentStep::Authorized),
        (
            vec![return_authorized(), item_received()],
            FulfilmentStep::ItemReceived,
        ),
    ] {
        given(repair_history(&done))
            .when(ship_back())
            .then_refused(DomainError::StepOutOfOrder {
                command: "ship_back",
                step,
            });
    }
}

#[test]
fn no_item_step_can_be_done_twice() {
    given(repair_history(&[return_authorized()]))
        .when(authorize_return())
        .then_refused(DomainError::StepOutOfOrder {
            command: "authorize_return",
            step: FulfilmentStep::Authorized,
        });
    given(repair_history(&[return_authorized(), item_received()]))
        .when(receive_item())
        .then_refused(DomainError::StepOutOfOrder {
            command: "receive_item",
            step: FulfilmentStep::ItemReceived,
        });
    given(repair_history(&[
        return_authorized(),
        item_received(),
        item_processed(ItemOutcome::Repaired),
    ]))
    .when(process_item(ItemOutcome::Replaced))
    .then_refused(DomainError::StepOutOfOrder {
        command: "process_item",
        step: FulfilmentStep::Processed,
    });
    given(repair_history(&[
        return_authorized(),
        item_received(),
        item_processed(ItemOutcome::Repaired),
        shipped_back(),
    ]))
    .when(ship_back())
    .then_refused(DomainError::StepOutOfOrder {
        command: "ship_back",
        step: FulfilmentStep::ShippedBack,
    });
}

#[test]
fn authorizing_a_return_after_the_item_arrived_is_out_of_order() {
    given(repair_history(&[return_authorized(), item_received()]))
        .when(authorize_return())
        .then_refused(DomainError::StepOutOfOrder {
            command: "authorize_return",
            step: FulfilmentStep::ItemReceived,
        });
}

#[test]
fn an_item_step_on_a_complaint_without_fulfilment_is_refused_as_no_fulfilment() {
    for command in [
        authorize_return(),
        receive_item(),
        process_item(ItemOutcome::Repaired),
        ship_back(),
    ] {
        let name = command.name();
        given([received(), routed(frontline())])
            .when(command)
            .then_refused(DomainError::NoFulfilment { command: name });
    }
}

#[test]
fn an_item_step_before_routing_is_refused_as_not_routed() {
    given([received()])
        .when(authorize_return())
        .then_refused(DomainError::NotRouted {
            command: "authorize_return",
        });
}

#[test]
fn a_refund_completes_the_item_handling_without_shipping_back() {
    let complaint = given([
        received(),
        routed(reverse_logistics(FulfilmentKind::Refund)),
        return_authorized(),
        item_received(),
    ])
    .when(process_item(ItemOutcome::Refunded))
    .then([item_processed(ItemOutcome::Refunded)]);
    let fulfilment = complaint.fulfilment.unwrap();
    assert_eq!(fulfilment.step, FulfilmentStep::Refunded);
    assert_eq!(fulfilment.outcome, Some(ItemOutcome::Refunded));
    assert!(fulfilment.is_complete());
}

#[test]
fn a_refunded_complaint_can_be_resolved_at_once() {
    given([
        received(),
        routed(reverse_logistics(FulfilmentKind::Refund)),
        return_authorized(),
        item_received(),
        item_processed(ItemOutcome::Refunded),
    ])
    .when(resolve(9))
    .then([resolved(9)]);
}

#[test]
fn shipping_back_after_a_refund_is_refused() {
    given([
        received(),
        routed(reverse_logistics(FulfilmentKind::Refund)),
        return_authorized(),
        item_received(),
        item_processed(ItemOutcome::Refunded),
    ])
    .when(ship_back())
    .then_refused(DomainError::StepOutOfOrder {
        command: "ship_back",
        step: FulfilmentStep::Refunded,
    });
}

#[test]
fn a_replaced_item_must_still_be_shipped_back() {
    let complaint = given([
        received(),
        routed(reverse_logistics(FulfilmentKind::Replace)),
        return_authorized(),
        item_received(),
    ])
    .when(process_item(ItemOutcome::Replaced))
    .then([item_processed(ItemOutcome::Replaced)]);
    let fulfilment = complaint.fulfilment.unwrap();
    assert_eq!(fulfilment.step, FulfilmentStep::Processed);
    assert!(!fulfilment.is_complete());
}

#[test]
fn an_item_step_on_a_resolved_complaint_is_refused_as_already_resolved() {
    given(repair_history(&[
        return_authorized(),
        item_received(),
        item_processed(ItemOutcome::Repaired),
        shipped_back(),
        resolved(10),
    ]))
    .when(ship_back())
    .then_refused(DomainError::AlreadyResolved {
        command: "ship_back",
    });
}

// ---------------------------------------------------------------------------
// resolve

#[test]
fn resolving_a_routed_complaint_records_the_customers_rating() {
    let complaint = given([received(), routed(frontline()), assigned("bob")])
        .when(resolve(9))
        .then([resolved(9)]);
    assert_eq!(complaint.status, Status::Resolved);
    assert_eq!(complaint.satisfaction, Some(satisfaction(9)));
    assert_eq!(complaint.resolved_at, Some(minutes_later(3)));
}

#[test]
fn resolving_before_routing_is_refused_as_not_routed() {
    given([received()])
        .when(resolve(9))
        .then_refused(DomainError::NotRouted { command: "resolve" });
}

#[test]
fn resolving_before_the_item_is_handled_is_refused_as_fulfilment_incomplete() {
    for (done, step) in [
        (vec![], FulfilmentStep::Pending),
        (vec![return_authorized()], FulfilmentStep::Authorized),
        (
            vec![return_authorized(), item_received()],
            FulfilmentStep::ItemReceived,
        ),
        (
            vec![
                return_authorized(),
                item_received(),
                item_processed(ItemOutcome::Repaired),
            ],
            FulfilmentStep::Processed,
        ),
    ] {
        given(repair_history(&done))
            .when(resolve(9))
            .then_refused(DomainError::FulfilmentIncomplete { step });
    }
}

#[test]
fn a_ceo_engagement_with_a_repair_resolves_only_once_the_item_is_back() {
    let mut history = vec![received(), routed(ceo_with(FulfilmentKind::Repair))];
    given(history.clone())
        .when(resolve(10))
        .then_refused(DomainError::FulfilmentIncomplete {
            step: FulfilmentStep::Pending,
        });
    history.extend([
        return_authorized(),
        item_received(),
        item_processed(ItemOutcome::Repaired),
        shipped_back(),
    ]);
    given(history).when(resolve(10)).then([resolved(10)]);
}

#[test]
fn a_resolved_complaint_cannot_be_resolved_twice() {
    given([received(), routed(frontline()), resolved(9)])
        .when(resolve(10))
        .then_refused(DomainError::AlreadyResolved { command: "resolve" });
}

// ---------------------------------------------------------------------------
// reopen

#[test]
fn reopening_a_resolved_complaint_opens_it_for_work_again() {
    let complaint = given([received(), routed(frontline()), resolved(4)])
        .when(reopen())
        .then([reopened()]);
    assert_eq!(complaint.status, Status::Reopened);
    assert!(complaint.status.is_open_for_work());
}

#[test]
fn only_a_resolved_complaint_can_be_reopened() {
    let histories = [
        vec![received()],
        vec![received(), routed(frontline())],
        vec![received(), routed(frontline()), acknowledged()],
        vec![received(), routed(frontline()), assigned("bob")],
        vec![received(), routed(frontline()), resolved(4), reopened()],
    ];
    for history in histories {
        given(history)
            .when(reopen())
            .then_refused(DomainError::NotResolved);
    }
}

#[test]
fn a_reopened_complaint_can_be_resolved_again_with_a_new_rating() {
    let complaint = given([received(), routed(frontline()), resolved(4), reopened()])
        .when(resolve(10))
        .then([resolved(10)]);
    assert_eq!(complaint.status, Status::Resolved);
    assert_eq!(complaint.satisfaction, Some(satisfaction(10)));
    assert_eq!(complaint.resolved_at, Some(minutes_later(4)));
}

// ---------------------------------------------------------------------------
// withdraw

#[test]
fn withdrawing_a_complaint_ends_it() {
    let complaint = given([received(), routed(frontline())])
        .when(withdraw())
        .then([withdrawn()]);
    assert_eq!(complaint.status, Status::Withdrawn);
    assert!(!complaint.status.is_open_for_work());
}

#[test]
fn a_complaint_can_be_withdrawn_before_it_is_routed() {
    given([received()]).when(withdraw()).then([withdrawn()]);
}

#[test]
fn a_reopened_complaint_can_be_withdrawn() {
    given([received(), routed(frontline()), resolved(4), reopened()])
        .when(withdraw())
        .then([withdrawn()]);
}

#[test]
fn after_withdrawal_every_command_is_refused_as_withdrawn() {
    for command in every_command_but_submit() {
        let name = command.name();
        given([received(), routed(frontline()), withdrawn()])
            .when(command)
            .then_refused(DomainError::Withdrawn { command: name });
    }
}

#[test]
fn withdrawing_a_resolved_complaint_is_refused_as_already_resolved() {
    given([received(), routed(frontline()), resolved(9)])
        .when(withdraw())
        .then_refused(DomainError::AlreadyResolved {
            command: "withdraw",
        });
}

// ---------------------------------------------------------------------------
// apply and replay

#[test]
fn a_history_must_start_with_received() {
    let id = a_complaint().id();
    assert_eq!(
        apply(None, id, &routed(frontline()), minutes_later(0)),
        Err(InvalidHistory {
            event: "complaint_routed",
            state: "no complaint".to_owned(),
        })
    );
}

#[test]
fn a_second_received_is_an_invalid_history() {
    assert_eq!(
        replay(a_complaint().id(), &[received(), received()]),
        Err(InvalidHistory {
            event: "complaint_received",
            state: "an existing complaint".to_owned(),
        })
    );
}

#[test]
fn the_version_counts_the_events_that_made_the_complaint() {
    let complaint = replay(
        a_complaint().id(),
        &[
            received(),
            routed(frontline()),
            followed_up(),
            assigned("bob"),
        ],
    )
    .unwrap()
    .unwrap();
    assert_eq!(complaint.version, 4);
    assert_eq!(complaint.id, a_complaint().id());
}

#[test]
fn deciding_does_not_change_the_state_it_reads() {
    let before = replay(a_complaint().id(), &[received(), routed(frontline())])
        .unwrap()
        .unwrap();
    let copy = before.clone();
    let first = decide(Some(&before), &assign("bob"));
    let second = decide(Some(&before), &assign("bob"));
    assert_eq!(before, copy);
    assert_eq!(first, second);
}

#[test]
fn a_refusal_says_which_command_was_refused() {
    let message = DomainError::NotRouted {
        command: "acknowledge",
    }
    .to_string();
    assert!(message.contains("acknowledge"), "{message}");
    let message = DomainError::InvalidTransition {
        command: "acknowledge",
        status: Status::Assigned,
    }
    .to_string();
    assert!(
        message.contains("acknowledge") && message.contains("ASSIGNED"),
        "{message}"
    );
}
