//! The admin API: policy versions, climate and stance, all appended to the
//! company subject of the log, so every decision can name what was in force.

use plaint_access::audit::{self, Change};
use plaint_bus::{AppendError, EventLog, Expect};
use plaint_domain::event::{CompanyEvent, Envelope, EventPayload};
use plaint_domain::routing::PolicyError;
use plaint_domain::values::{Label, ValidationError};
use plaint_domain::{Climate, EventId, RoutingPolicy, SCHEMA_VERSION, StanceAlignment};
use plaint_proto::convert::FromWire;
use plaint_proto::router::{self as pb, admin_server::Admin};
use plaint_runtime::gate::{Caller, caller_of};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use plaint_projection::rebuild::{Progress, rebuild};
use plaint_projection::store::Store;
use plaint_routing::company::CompanyView;
use plaint_routing::now;

/// The `Admin` gRPC service.
#[derive(Debug, Clone)]
pub(crate) struct AdminService {
    log: EventLog,
    store: Option<Store>,
    rebuilding: Arc<tokio::sync::Mutex<()>>,
}

impl AdminService {
    /// The service over `log`.
    pub(crate) fn new(log: EventLog) -> Self {
        Self {
            log,
            store: None,
            rebuilding: Arc::default(),
        }
    }

    /// Lets the service rebuild the projections in `store`.
    pub(crate) fn with_store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    async fn view(&self) -> Result<CompanyView, Status> {
        let mut view = CompanyView::default();
        view.refresh(&self.log).await.map_err(unavailable)?;
        Ok(view)
    }

    /// Appends a company event expecting the subject unchanged since `view`.
    async fn append(&self, view: &CompanyView, event: CompanyEvent) -> Result<u64, Status> {
        let envelope = operator_envelope(event);
        let expect = if view.sequence == 0 {
            Expect::Empty
        } else {
            Expect::LastSubjectSequence(view.sequence)
        };
        match self
            .log
            .append(&self.log.names().company(), &envelope, expect, None)
            .await
        {
            Ok(a) => Ok(a.sequence),
            Err(AppendError::WrongLastSequence) => Err(Status::aborted(
                "company settings changed concurrently; retry",
            )),
            Err(AppendError::Bus(e)) => Err(unavailable(e)),
        }
    }
}

/// A company event an operator's call makes now, caused by nothing in the log.
pub(crate) fn operator_envelope(event: CompanyEvent) -> Envelope {
    Envelope {
        event_id: EventId::from_uuid(Uuid::new_v4()),
        complaint_id: None,
        occurred_at: now(),
        schema_version: SCHEMA_VERSION,
        causation_id: None,
        correlation_id: None,
        payload: EventPayload::Company(event),
    }
}

pub(crate) fn unavailable(e: plaint_bus::BusError) -> Status {
    tracing::warn!(error = %e, "event log unavailable");
    Status::unavailable("the event log is unavailable")
}

fn invalid(field: &str, message: String) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// A refused request value: the message reads "<field> <problem>", as the
/// other services' do.
pub(crate) fn invalid_value(v: ValidationError) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        v.to_string(),
        ErrorDetails::with_bad_request_violation(v.field.clone(), v.problem.to_string()),
    )
}

/// Who made a change, as the log records it: the authenticated caller.
pub(crate) fn operator(caller: &Caller) -> Result<Label, Status> {
    Label::parse(caller.id()).map_err(|_| Status::internal("the caller's name is not a label"))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn version_to_wire(v: u32, p: &plaint_routing::company::PublishedPolicy) -> pb::PolicyVersion {
    pb::PolicyVersion {
        version: v,
        policy_json: p.policy.to_json(),
        published_at_ms: p.published_at.as_millis(),
        published_by: p.published_by.clone(),
    }
}

fn progress_to_wire(p: Progress) -> pb::RebuildProgress {
    pb::RebuildProgress {
        applied_sequence: p.applied,
        target_sequence: p.target,
        events_per_second: p.events_per_second,
        done: p.done,
        swapped_at_sequence: if p.done { p.applied } else { 0 },
    }
}

/// Progress updates buffered for a slow client; older ones are dropped.
const PROGRESS_BUFFER: usize = 16;

#[tonic::async_trait]
impl Admin for AdminService {
    type RebuildProjectionsStream =
        Pin<Box<dyn Stream<Item = Result<pb::RebuildProgress, Status>> + Send + 'static>>;

    async fn rebuild_projections(
        &self,
        request: Request<pb::RebuildProjectionsRequest>,
    ) -> Result<Response<Self::RebuildProjectionsStream>, Status> {
        let caller = caller_of(&request);
        let store = self
            .store
            .clone()
            .ok_or_else(|| Status::failed_precondition("this router runs no projections"))?;
        let guard = Arc::clone(&self.rebuilding)
            .try_lock_owned()
            .map_err(|_| Status::failed_precondition("a rebuild is already running"))?;
        audit::record(
            &self.log,
            &caller,
            now(),
            Change {
                action: "RebuildProjections",
                target: "projections",
                before: "",
                after: "",
            },
        )
        .await?;
        let (tx, rx) = mpsc::channel(PROGRESS_BUFFER);
        let log = self.log.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let progress_tx = tx.clone();
            let result = rebuild(&log, &store, |p| {
                // Progress is advisory: a slow reader misses some, never the end.
                let _ = progress_tx.try_send(Ok(progress_to_wire(p)));
            })
            .await;
            let last = match result {
                Ok(p) => Ok(progress_to_wire(p)),
                Err(e) => {
                    // The cause names tables and database errors: the log's business.
                    tracing::error!(error = ?e, "rebuild failed");
                    Err(Status::internal(
                        "the rebuild failed; the live projections are unchanged and the router's log has the cause",
                    ))
                }
            };
            let _ = tx.send(last).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn erase_customer(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<Response<pb::EraseCustomerResponse>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        Ok(Response::new(
            crate::customers::erase(&self.log, &caller, r).await?,
        ))
    }

    async fn export_customer_data(
        &self,
        request: Request<pb::ExportCustomerDataRequest>,
    ) -> Result<Response<pb::ExportCustomerDataResponse>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("this router runs no projections"))?;
        if let Some(c) = r.consistency.filter(|c| c.min_sequence > 0) {
            let wait = std::time::Duration::from_millis(u64::from(c.timeout_ms.clamp(1, 10_000)));
            let reached = store
                .wait_for_sequence(c.min_sequence, wait)
                .await
                .map_err(|_| Status::unavailable("the read models are unavailable"))?;
            if !reached {
                return Err(Status::failed_precondition(format!(
                    "consistency.min_sequence: the read models have not reached {} yet",
                    c.min_sequence
                )));
            }
        }
        Ok(Response::new(
            crate::customers::export(&self.log, store, &caller, &r.customer_id).await?,
        ))
    }

    async fn rewrap_data_keys(
        &self,
        request: Request<pb::RewrapDataKeysRequest>,
    ) -> Result<Response<pb::RewrapDataKeysResponse>, Status> {
        let caller = caller_of(&request);
        Ok(Response::new(
            crate::customers::rewrap(&self.log, &caller).await?,
        ))
    }

    async fn publish_policy(
        &self,
        request: Request<pb::PublishPolicyRequest>,
    ) -> Result<Response<pb::PublishPolicyResponse>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        let policy = RoutingPolicy::from_json(&r.policy_json).map_err(|e| match e {
            PolicyError::Invalid(v) => {
                invalid(&format!("policy_json.{}", v.field), v.problem.to_string())
            }
            PolicyError::Syntax { message, .. } => invalid("policy_json", message),
        })?;
        let by = operator(&caller)?;
        let view = self.view().await?;
        let version = view.next_version();
        let before = view.policy().version;
        let sequence = self
            .append(
                &view,
                CompanyEvent::PolicyPublished {
                    policy: Box::new(policy.with_version(version)),
                    published_by: by,
                },
            )
            .await?;
        audit::record(
            &self.log,
            &caller,
            now(),
            Change {
                action: "PublishPolicy",
                target: "policy",
                before: &format!("{{\"version\":{before}}}"),
                after: &format!("{{\"version\":{version},\"sequence\":{sequence}}}"),
            },
        )
        .await?;
        tracing::info!(version, sequence, "routing policy published");
        Ok(Response::new(pb::PublishPolicyResponse {
            version,
            sequence,
        }))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let wanted = request.into_inner().version;
        let view = self.view().await?;
        if view.policies.is_empty() && wanted <= 1 {
            return Ok(Response::new(pb::PolicyVersion {
                version: 1,
                policy_json: RoutingPolicy::default().to_json(),
                published_at_ms: 0,
                published_by: "default".to_owned(),
            }));
        }
        let found = if wanted == 0 {
            view.policies.last()
        } else {
            view.policies.iter().find(|p| p.policy.version == wanted)
        };
        match found {
            Some(p) => Ok(Response::new(version_to_wire(p.policy.version, p))),
            None => Err(Status::not_found(format!("no policy version {wanted}"))),
        }
    }

    async fn list_policies(
        &self,
        _request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let view = self.view().await?;
        let mut versions = vec![pb::PolicyVersion {
            version: 1,
            policy_json: RoutingPolicy::default().to_json(),
            published_at_ms: 0,
            published_by: "default".to_owned(),
        }];
        versions.extend(
            view.policies
                .iter()
                .map(|p| version_to_wire(p.policy.version, p)),
        );
        Ok(Response::new(pb::ListPoliciesResponse { versions }))
    }

    async fn set_climate(
        &self,
        request: Request<pb::SetClimateRequest>,
    ) -> Result<Response<pb::AdminWriteResult>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        let climate = Climate::from_wire(r.climate, "climate").map_err(invalid_value)?;
        let set_by = operator(&caller)?;
        let view = self.view().await?;
        let sequence = self
            .append(&view, CompanyEvent::ClimateSet { climate, set_by })
            .await?;
        audit::record(
            &self.log,
            &caller,
            now(),
            Change {
                action: "SetClimate",
                target: "climate",
                before: &json(&view.climate),
                after: &json(&climate),
            },
        )
        .await?;
        Ok(Response::new(pb::AdminWriteResult { sequence }))
    }

    async fn set_stance(
        &self,
        request: Request<pb::SetStanceRequest>,
    ) -> Result<Response<pb::AdminWriteResult>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        let alignment =
            StanceAlignment::from_wire(r.alignment, "alignment").map_err(invalid_value)?;
        let set_by = operator(&caller)?;
        let view = self.view().await?;
        let sequence = self
            .append(
                &view,
                CompanyEvent::StanceAlignmentSet { alignment, set_by },
            )
            .await?;
        audit::record(
            &self.log,
            &caller,
            now(),
            Change {
                action: "SetStance",
                target: "stance",
                before: &json(&view.stance),
                after: &json(&alignment),
            },
        )
        .await?;
        Ok(Response::new(pb::AdminWriteResult { sequence }))
    }
}
