//! The gRPC door: `Intake` for internal systems and `IntakeAdmin` for operators.

use plaint_access::audit::{self, Change};
use plaint_bus::{DEAD_LETTER_REASON, DEAD_LETTER_SUBJECT, EventLog, Helpdesk, Requeue};
use plaint_domain::personal::ERASED;
use plaint_proto::intake::{self as pb, intake_admin_server::IntakeAdmin, intake_server};
use plaint_runtime::gate::caller_of;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::commands::{self, Parsed};
use crate::error::Error;
use crate::service::{Intake, Origin, Written};

/// Most dead letters one page may hold.
pub(crate) const MAX_DEAD_LETTER_PAGE: u32 = 1000;
/// Most bytes of dead letters one page holds, as `plaint_bus::letter_bytes`
/// counts them (a page always holds at least one letter), so a page fits the
/// 4 MiB a gRPC client accepts by default.
pub(crate) const MAX_DEAD_LETTER_PAGE_BYTES: usize = 3 * 1024 * 1024;
/// Largest `IntakeAdmin` response: requests stay capped by the service's
/// limit, but a page of dead letters (each up to 2 MiB) must fit.
pub(crate) const MAX_ADMIN_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The `Intake` gRPC service.
#[derive(Debug, Clone)]
pub(crate) struct IntakeService {
    core: Intake,
}

impl IntakeService {
    /// The service over `core`.
    pub(crate) fn new(core: Intake) -> Self {
        Self { core }
    }
}

fn origin<T>(req: &Request<T>, request_id: Option<Uuid>) -> Origin {
    Origin {
        request_id,
        traceparent: req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        integration: None,
    }
}

fn reply(w: Written) -> Response<pb::WriteResult> {
    Response::new(pb::WriteResult {
        complaint_id: w.complaint_id.to_string(),
        sequence: w.sequence,
        duplicate: w.duplicate,
        event_id: w.event_id.to_string(),
    })
}

/// Runs a parsed request through the core.
pub(crate) async fn handle(
    core: &Intake,
    parsed: Parsed,
    mut origin: Origin,
) -> Result<Written, Error> {
    match parsed {
        Parsed::Submit {
            facts,
            occurred_at_ms,
        } => core.submit(*facts, occurred_at_ms, &origin).await,
        Parsed::Command {
            complaint_id,
            request_id,
            command,
        } => {
            // The caller's own key wins; else the door's (the helpdesk
            // derives one from the inbound message).
            origin.request_id = request_id.or(origin.request_id);
            core.execute(complaint_id, command, &origin).await
        }
    }
}

/// The `Intake` trait impl, one handler per RPC: parse with the given
/// function, then the shared path. (The attribute must see the expanded
/// methods, so the macro writes the whole impl.)
macro_rules! intake_impl {
    ($($method:ident: $req:ty => $parse:path;)*) => {
        #[tonic::async_trait]
        impl intake_server::Intake for IntakeService {
            $(
                async fn $method(
                    &self,
                    request: Request<$req>,
                ) -> Result<Response<pb::WriteResult>, Status> {
                    let origin = origin(&request, None);
                    let parsed = $parse(request.into_inner()).map_err(Error::from)?;
                    Ok(reply(handle(&self.core, parsed, origin).await?))
                }
            )*
        }
    };
}

intake_impl! {
    submit_complaint: pb::SubmitComplaintRequest => commands::submit;
    record_follow_up: pb::RecordFollowUpRequest => commands::follow_up;
    change_visibility: pb::ChangeVisibilityRequest => commands::change_visibility;
    acknowledge: pb::AcknowledgeRequest => commands::acknowledge;
    assign: pb::AssignRequest => commands::assign;
    authorize_return: pb::AuthorizeReturnRequest => commands::authorize_return;
    receive_item: pb::ReceiveItemRequest => commands::receive_item;
    process_item: pb::ProcessItemRequest => commands::process_item;
    ship_back: pb::ShipBackRequest => commands::ship_back;
    resolve: pb::ResolveRequest => commands::resolve;
    reopen: pb::ReopenRequest => commands::reopen;
    withdraw: pb::WithdrawRequest => commands::withdraw;
}

/// The `IntakeAdmin` gRPC service: dead letters.
#[derive(Debug, Clone)]
pub(crate) struct AdminService {
    helpdesk: Helpdesk,
    log: EventLog,
}

impl AdminService {
    /// The service over the helpdesk streams, auditing into `log`.
    pub(crate) fn new(helpdesk: Helpdesk, log: EventLog) -> Self {
        Self { helpdesk, log }
    }
}

#[tonic::async_trait]
impl IntakeAdmin for AdminService {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 100,
            n => n.min(MAX_DEAD_LETTER_PAGE),
        };
        // Cut by size before any payload is read: dead letters are up to 2 MiB each.
        let page = self
            .helpdesk
            .dead_letter_page(r.after_sequence, limit as usize, MAX_DEAD_LETTER_PAGE_BYTES)
            .await
            .map_err(Error::from)?;
        let mut letters = Vec::with_capacity(page.letters.len());
        for l in page.letters {
            let find = |name: &str| {
                l.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            // A sealed letter is opened with its customer's key; an erased
            // customer's letter reads as erased.
            let payload = self
                .helpdesk
                .letter_bytes(&l.headers, l.payload.clone())
                .await
                .map_err(Error::from)?
                .map_or_else(|| ERASED.as_bytes().to_vec(), |b| b.to_vec());
            letters.push(pb::DeadLetter {
                sequence: l.sequence,
                original_subject: find(DEAD_LETTER_SUBJECT),
                reason: find(DEAD_LETTER_REASON),
                headers: l.headers.iter().cloned().collect(),
                payload,
                dead_lettered_at_ms: 0,
            });
        }
        Ok(Response::new(pb::ListDeadLettersResponse {
            letters,
            next_after_sequence: page.next_after,
        }))
    }

    async fn requeue_dead_letter(
        &self,
        request: Request<pb::RequeueDeadLetterRequest>,
    ) -> Result<Response<pb::RequeueDeadLetterResponse>, Status> {
        let caller = caller_of(&request);
        let seq = request.into_inner().sequence;
        match self.helpdesk.requeue(seq).await.map_err(Error::from)? {
            Requeue::Published(inbound_sequence) => {
                audit::record(
                    &self.log,
                    &caller,
                    crate::now(),
                    Change {
                        action: "RequeueDeadLetter",
                        target: &format!("dead letter {seq}"),
                        before: "",
                        after: &format!("{{\"inbound_sequence\":{inbound_sequence}}}"),
                    },
                )
                .await?;
                Ok(Response::new(pb::RequeueDeadLetterResponse {
                    inbound_sequence,
                }))
            }
            Requeue::Erased => Err(Status::failed_precondition(format!(
                "the dead letter at sequence {seq} belongs to an erased customer; \
                 its bytes cannot be read"
            ))),
            Requeue::NoSuchLetter => Err(Status::not_found(format!(
                "no dead letter at sequence {seq}"
            ))),
            Requeue::NotFromHelpdesk(subject) => Err(Status::failed_precondition(format!(
                "the dead letter at sequence {seq} came from the event log ({subject}), \
                 not from the helpdesk door; it cannot be requeued"
            ))),
        }
    }
}
