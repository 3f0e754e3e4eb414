//! `GetComplaint` as of a past log sequence or time: the complaint's events
//! read from the log up to that point and folded again, so the answer is
//! what a replay gives there, whatever the projections hold now.

use plaint_domain::event::{ComplaintEvent, EventPayload};
use plaint_domain::values::{Problem, ValidationError};
use plaint_domain::{ComplaintId, Route, Timestamp, lifecycle};
use plaint_projection::store::{ComplaintRow, TimelineRow};
use plaint_proto::convert::decision_to_wire;
use plaint_proto::router as pb;

use super::{QueryError, wire};

/// Up to where a past answer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AsOf {
    /// Just after this log sequence.
    Sequence(u64),
    /// Events that occurred at or before this time.
    Time(Timestamp),
}

impl AsOf {
    /// The point a request asks for; `None` for "now".
    pub(super) fn of(req: &pb::GetComplaintRequest) -> Result<Option<Self>, ValidationError> {
        match (req.as_of_sequence, req.as_of_ms) {
            (0, 0) => Ok(None),
            (seq, 0) => Ok(Some(Self::Sequence(seq))),
            (0, ms) if ms > 0 => Ok(Some(Self::Time(Timestamp::from_millis(ms)))),
            (0, ms) => Err(ValidationError::new(
                "as_of_ms",
                Problem::OutOfRange {
                    min: 1,
                    max: i64::MAX.into(),
                    actual: ms.into(),
                },
            )),
            _ => Err(ValidationError::new(
                "as_of_ms",
                Problem::Malformed {
                    expected: "at most one of as_of_sequence and as_of_ms",
                },
            )),
        }
    }

    fn includes(self, sequence: u64, at: Timestamp) -> bool {
        match self {
            Self::Sequence(s) => sequence <= s,
            Self::Time(t) => at <= t,
        }
    }
}

impl super::QueryService {
    pub(super) async fn complaint_as_of(
        &self,
        id: ComplaintId,
        as_of: AsOf,
    ) -> Result<pb::GetComplaintResponse, QueryError> {
        let Some(log) = &self.log else {
            return Err(QueryError::Unavailable(
                "this router does not read the log for past answers".to_owned(),
            ));
        };
        let history = log.history(id).await?;
        let mut state = None;
        let (mut timeline, mut decisions) = (Vec::new(), Vec::new());
        let (mut last, mut ceo_engaged_at) = (0, None);
        for stored in &history.events {
            let EventPayload::Complaint(event) = &stored.envelope.payload else {
                continue;
            };
            let at = stored.envelope.occurred_at;
            if !as_of.includes(stored.sequence, at) {
                break;
            }
            state = Some(lifecycle::apply(state, id, event, at).map_err(|e| {
                QueryError::Log(plaint_bus::BusError::Corrupt {
                    sequence: stored.sequence,
                    reason: e.to_string(),
                })
            })?);
            last = stored.sequence;
            if let ComplaintEvent::Routed(d) | ComplaintEvent::Rerouted { decision: d, .. } = event
            {
                if d.route == Route::Ceo && ceo_engaged_at.is_none() {
                    ceo_engaged_at = Some(d.decided_at);
                }
                decisions.push(decision_to_wire(d));
            }
            timeline.push(wire::timeline_entry(TimelineRow {
                sequence: stored.sequence,
                event_id: stored.envelope.event_id.as_uuid(),
                event_type: event.type_name().to_owned(),
                occurred_at: at,
                detail_json: serde_json::to_string(event).unwrap_or_default(),
            }));
        }
        let Some(state) = state else {
            return Err(QueryError::NotFound(format!("{id} (not received by then)")));
        };
        Ok(pb::GetComplaintResponse {
            complaint: Some(wire::summary(&ComplaintRow::of(
                &state,
                ceo_engaged_at,
                last,
            ))),
            timeline,
            decisions,
            projected_sequence: last,
        })
    }
}
