//! The `Query` gRPC service: reads over the projections, each able to wait
//! (bounded) until the projection has applied the sequence a write returned.
//!
//! One module per group of RPCs: complaints (get, list, customer
//! history), reports (queue statistics, CEO budget, goodwill), the policy
//! simulation and the watch stream.

mod as_of;
mod complaints;
mod error;
mod reports;
mod simulate;
mod watch;
mod wire;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use plaint_domain::Timestamp;
use plaint_domain::values::{AtField, CustomerId, CustomerRef};
use plaint_proto::router::{self as pb, query_server::Query};
use plaint_vault::Pseudonyms;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

pub(crate) use error::QueryError;
use plaint_projection::store::{ComplaintChange, Store};
pub(crate) use watch::WatchStream;
pub(crate) use wire::summary;

/// The `Query` service.
#[derive(Debug, Clone)]
pub struct QueryService {
    store: Store,
    updates: broadcast::Sender<ComplaintChange>,
    max_wait: Duration,
    stop: CancellationToken,
    pseudonyms: Arc<Pseudonyms>,
    max_simulated: u64,
    /// The log, opened, for answers as of a past point.
    log: Option<plaint_bus::EventLog>,
}

impl QueryService {
    /// A service over `store`, streaming `updates` to watchers and waiting at
    /// most `max_wait` for a `min_sequence`.
    pub fn new(
        store: Store,
        updates: broadcast::Sender<ComplaintChange>,
        max_wait: Duration,
        pseudonyms: Arc<Pseudonyms>,
    ) -> Self {
        Self {
            store,
            updates,
            max_wait,
            stop: CancellationToken::new(),
            pseudonyms,
            max_simulated: simulate::MAX_SIMULATED,
            log: None,
        }
    }

    /// Answers `GetComplaint` as of a past point from `log` (read opened:
    /// the answer holds the personal fields the projections hold).
    pub fn with_log(mut self, log: plaint_bus::EventLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Refuses simulations of spans holding more than `complaints`
    /// (default 2,000,000).
    pub fn with_max_simulated(mut self, complaints: u64) -> Self {
        self.max_simulated = complaints;
        self
    }

    /// The pseudonym of the customer id a request names.
    fn customer_ref(&self, raw: &str) -> Result<CustomerRef, QueryError> {
        Ok(self.pseudonyms.of(&customer_id(raw)?))
    }

    /// Ends every watch stream when `stop` is cancelled, so a graceful
    /// shutdown does not wait on watchers.
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// Waits until the projection has applied the sequence asked for.
    async fn consistent(&self, consistency: Option<&pb::Consistency>) -> Result<(), QueryError> {
        let Some(c) = consistency.filter(|c| c.min_sequence > 0) else {
            return Ok(());
        };
        let timeout = match c.timeout_ms {
            0 => self.max_wait,
            ms => Duration::from_millis(ms.into()).min(self.max_wait),
        };
        if self
            .store
            .wait_for_sequence(c.min_sequence, timeout)
            .await?
        {
            return Ok(());
        }
        Err(QueryError::NotYet {
            min_sequence: c.min_sequence,
            projected: self.store.projected_sequence().await?,
        })
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

fn customer_id(raw: &str) -> Result<CustomerId, QueryError> {
    Ok(CustomerId::parse(raw).at("customer_id")?)
}

// A refused call (not found, a bad argument) is the caller's business, so
// the spans record errors at debug; what fails on the server's side is logged
// where the error becomes a status (`error.rs`).
#[tonic::async_trait]
impl Query for QueryService {
    #[tracing::instrument(skip_all, fields(complaint_id = %request.get_ref().complaint_id), err(level = "debug"))]
    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::GetComplaintResponse>, Status> {
        Ok(Response::new(self.complaint(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn get_queue_stats(
        &self,
        request: Request<pb::GetQueueStatsRequest>,
    ) -> Result<Response<pb::GetQueueStatsResponse>, Status> {
        Ok(Response::new(self.queue_stats(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(at_ms = request.get_ref().at_ms), err(level = "debug"))]
    async fn get_ceo_budget(
        &self,
        request: Request<pb::GetCeoBudgetRequest>,
    ) -> Result<Response<pb::GetCeoBudgetResponse>, Status> {
        Ok(Response::new(self.ceo_budget(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn get_goodwill(
        &self,
        request: Request<pb::GetGoodwillRequest>,
    ) -> Result<Response<pb::GetGoodwillResponse>, Status> {
        Ok(Response::new(self.goodwill(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn get_customer_history(
        &self,
        request: Request<pb::GetCustomerHistoryRequest>,
    ) -> Result<Response<pb::GetCustomerHistoryResponse>, Status> {
        Ok(Response::new(self.history(request.into_inner()).await?))
    }

    type WatchComplaintsStream = WatchStream;

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn watch_complaints(
        &self,
        request: Request<pb::WatchComplaintsRequest>,
    ) -> Result<Response<Self::WatchComplaintsStream>, Status> {
        let filter = watch::Filter::parse(&request.into_inner())?;
        Ok(Response::new(watch::spawn(
            self.updates.subscribe(),
            filter,
            self.stop.clone(),
        )))
    }

    #[tracing::instrument(
        skip_all,
        fields(from_ms = request.get_ref().from_ms, to_ms = request.get_ref().to_ms),
        err(level = "debug")
    )]
    async fn simulate_policy(
        &self,
        request: Request<pb::SimulatePolicyRequest>,
    ) -> Result<Response<pb::SimulatePolicyResponse>, Status> {
        Ok(Response::new(self.simulate(request.into_inner()).await?))
    }
}
