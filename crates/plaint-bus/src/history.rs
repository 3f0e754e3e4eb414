//! A complaint's history read back from the log and folded into its state.

use plaint_domain::event::EventPayload;
use plaint_domain::{Complaint, ComplaintId, lifecycle};

use crate::error::BusError;
use crate::log::{EventLog, StoredEvent};

/// A complaint as the log holds it now.
#[derive(Debug, Clone)]
pub struct History {
    /// Every event on the complaint's subject, oldest first.
    pub events: Vec<StoredEvent>,
    /// The state they make; `None` when the subject is empty.
    pub state: Option<Complaint>,
    /// The subject's last sequence (0 when empty): the condition for the next append.
    pub last_sequence: u64,
}

impl EventLog {
    /// Reads and folds one complaint's history.
    pub async fn history(&self, id: ComplaintId) -> Result<History, BusError> {
        let events = self.read_subject(&self.names().complaint(&id)).await?;
        let last_sequence = events.last().map_or(0, |e| e.sequence);
        let state = fold(id, &events, last_sequence)?;
        Ok(History {
            events,
            state,
            last_sequence,
        })
    }
}

impl History {
    /// The complaint as it stood just after the event at `sequence` (and
    /// before any later one); `None` when it had no event yet.
    pub fn state_at(&self, sequence: u64) -> Result<Option<Complaint>, BusError> {
        let Some(id) = self.state.as_ref().map(|c| c.id) else {
            return Ok(None);
        };
        let upto = self.events.partition_point(|e| e.sequence <= sequence);
        fold(id, &self.events[..upto], sequence)
    }
}

fn fold(id: ComplaintId, events: &[StoredEvent], at: u64) -> Result<Option<Complaint>, BusError> {
    lifecycle::replay(
        id,
        events.iter().filter_map(|e| match &e.envelope.payload {
            EventPayload::Complaint(c) => Some((c, e.envelope.occurred_at)),
            EventPayload::Company(_) | EventPayload::Access(_) => None,
        }),
    )
    .map_err(|h| BusError::Corrupt {
        sequence: at,
        reason: h.to_string(),
    })
}
