//! `GetComplaint`, `ListComplaints` and `GetCustomerHistory`.

use plaint_domain::{Channel, Route, Timestamp};
use plaint_proto::convert::{decision_to_wire, optional_enum};
use plaint_proto::router as pb;

use plaint_vault::Pseudonyms;

use super::{QueryError, QueryService, customer_id, summary, wire};
use plaint_projection::store::{Cursor, ListFilter};

impl QueryService {
    pub(super) async fn complaint(
        &self,
        req: pb::GetComplaintRequest,
    ) -> Result<pb::GetComplaintResponse, QueryError> {
        let id = wire::complaint_id(&req.complaint_id, "complaint_id")?;
        if let Some(as_of) = super::as_of::AsOf::of(&req)? {
            return self.complaint_as_of(id, as_of).await;
        }
        self.consistent(req.consistency.as_ref()).await?;
        let detail = self
            .store
            .get_complaint(id)
            .await?
            .ok_or_else(|| QueryError::NotFound(id.to_string()))?;
        Ok(pb::GetComplaintResponse {
            complaint: Some(summary(&detail.complaint)),
            timeline: detail
                .timeline
                .into_iter()
                .map(wire::timeline_entry)
                .collect(),
            decisions: detail
                .decisions
                .iter()
                .map(|d| decision_to_wire(&d.decision))
                .collect(),
            projected_sequence: detail.projected_sequence,
        })
    }

    pub(super) async fn list(
        &self,
        req: pb::ListComplaintsRequest,
    ) -> Result<pb::ListComplaintsResponse, QueryError> {
        let filter = list_filter(&req, &self.pseudonyms)?;
        self.consistent(req.consistency.as_ref()).await?;
        let page = self.store.list_complaints(&filter).await?;
        Ok(pb::ListComplaintsResponse {
            complaints: page.complaints.iter().map(summary).collect(),
            next_page_token: page.next.map(|c| c.to_string()).unwrap_or_default(),
            projected_sequence: page.projected_sequence,
        })
    }

    pub(super) async fn history(
        &self,
        req: pb::GetCustomerHistoryRequest,
    ) -> Result<pb::GetCustomerHistoryResponse, QueryError> {
        let customer = self.customer_ref(&req.customer_id)?;
        self.consistent(req.consistency.as_ref()).await?;
        let history = self.store.customer_history(&customer).await?;
        Ok(pb::GetCustomerHistoryResponse {
            complaints: history.complaints.iter().map(summary).collect(),
            last_ceo_engagement_ms: history.last_ceo_engagement.map_or(0, Timestamp::as_millis),
            ceo_engagements: history.ceo_engagements,
        })
    }
}

/// The filters of a list request, parsed.
fn list_filter(
    req: &pb::ListComplaintsRequest,
    pseudonyms: &Pseudonyms,
) -> Result<ListFilter, QueryError> {
    let after = match req.page_token.trim() {
        "" => None,
        token => Some(Cursor::parse(token).ok_or_else(|| {
            wire::malformed("page_token", "a page token from a previous response")
        })?),
    };
    Ok(ListFilter {
        route: optional_enum::<Route>(req.route, "route")?,
        status: wire::status_filter(req.status)?,
        channel: optional_enum::<Channel>(req.channel, "channel")?,
        customer_ref: match req.customer_id.trim() {
            "" => None,
            raw => Some(pseudonyms.of(&customer_id(raw)?).to_string()),
        },
        received_from: wire::bound(req.received_from_ms),
        received_to: wire::bound(req.received_to_ms),
        page_size: req.page_size,
        after,
    })
}
