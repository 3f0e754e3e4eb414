//! Every customer's last CEO engagement, for the cooldown rule.
//!
//! Each decision used to read its customer's engagement subject: one request
//! to the log per complaint, nearly always answered "none". Engagements are
//! rare (the CEO budget caps them), so the routing workers of a process keep
//! the last one of every customer instead. The shared read of the company
//! inputs brings them up to date every 200 ms: it asks for what any
//! engagement subject received since the previous read, one request per
//! message found and one more to find there is nothing after them.
//!
//! A first decision takes the cooldown from here, so its cooldown gate may
//! miss an engagement of the last 200 ms; its route cannot, since the CEO
//! route is always decided again with the customer's subject read afresh
//! (`routing`). After a start, the engagements already in the log are read
//! a batch per refresh, and until they all are, decisions read the subjects.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use plaint_bus::{BusError, EventLog};
use plaint_domain::{ComplaintId, Timestamp};

/// Customers kept before giving up on keeping them: beyond this every
/// decision reads its customer's subject again, as before. A few MiB.
pub const MAX_CUSTOMERS: usize = 50_000;
/// Messages read per refresh at most, so that catching up after a start
/// never holds the shared read for long.
const READ_BATCH: usize = 256;

/// A customer's last CEO engagement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engagement {
    /// The complaint the CEO engaged with.
    pub complaint_id: Option<ComplaintId>,
    /// When.
    pub at: Timestamp,
}

/// What is known of one customer's engagements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The last engagement, or none ever.
    Last(Option<Engagement>),
    /// Not kept here: read the customer's subject.
    ReadTheSubject,
}

/// The last engagement of every customer, as of a read of the log; cheap to
/// clone (the maps are shared until an engagement changes them).
#[derive(Debug, Clone, Default)]
pub struct Engagements {
    /// Engagement subject → its last engagement.
    last: Arc<HashMap<String, Engagement>>,
    /// Subjects whose last message cannot be decoded: their customers are
    /// read one by one, which reports the damage as before.
    unreadable: Arc<HashSet<String>>,
    /// Every engagement up to this stream sequence has been read.
    read_to: u64,
    /// More customers than [`MAX_CUSTOMERS`]: none are kept.
    overflowed: bool,
    /// A read found every engagement there was: until then none are used.
    caught_up: bool,
}

impl Engagements {
    /// Reads what the engagement subjects received since the last read, at
    /// most [`READ_BATCH`] messages. `known` is a stream sequence that
    /// existed before this call: once a read finds nothing more, everything
    /// up to it has been read, and the next read starts from there (the
    /// server looks for a wildcard match message by message from where a
    /// read starts).
    pub async fn refresh(&mut self, log: &EventLog, known: u64) -> Result<(), BusError> {
        if self.overflowed {
            return Ok(());
        }
        let items = log
            .read_matching_after(&log.names().all_ceo_customers(), self.read_to, READ_BATCH)
            .await?;
        let complete = items.len() < READ_BATCH;
        for item in items {
            self.read_to = item.sequence;
            match item.event {
                Ok(stored) => {
                    Arc::make_mut(&mut self.unreadable).remove(&item.subject);
                    let engagement = Engagement {
                        complaint_id: stored.envelope.complaint_id,
                        at: stored.envelope.occurred_at,
                    };
                    Arc::make_mut(&mut self.last).insert(item.subject, engagement);
                }
                Err(e) => {
                    tracing::warn!(subject = %item.subject, error = %e,
                        "an engagement cannot be decoded; its customer is read on each decision");
                    Arc::make_mut(&mut self.last).remove(&item.subject);
                    Arc::make_mut(&mut self.unreadable).insert(item.subject);
                }
            }
            if self.last.len() + self.unreadable.len() > MAX_CUSTOMERS {
                tracing::warn!(
                    limit = MAX_CUSTOMERS,
                    "too many customers with CEO engagements to keep; each decision reads its customer's"
                );
                *self = Engagements {
                    overflowed: true,
                    ..Engagements::default()
                };
                return Ok(());
            }
        }
        if complete {
            self.read_to = self.read_to.max(known);
            self.caught_up = true;
        }
        Ok(())
    }

    /// What is known of the customer whose engagement subject is `subject`.
    pub fn of(&self, subject: &str) -> Known {
        if !self.caught_up || self.overflowed || self.unreadable.contains(subject) {
            return Known::ReadTheSubject;
        }
        Known::Last(self.last.get(subject).copied())
    }
}
