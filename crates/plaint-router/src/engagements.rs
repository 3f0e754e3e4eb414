//! Every customer's last CEO engagement, for the cooldown rule.
//!
//! Each decision used to read its customer's engagement subject: one request
//! to the log per complaint, nearly always answered "none". Engagements are
//! rare (the CEO budget caps them), so the routing workers of a process keep
//! the last one of every customer instead. The shared read of the company
//! inputs brings them up to date with one more request (whatever was
//! appended to any engagement subject since the previous read): every
//! 200 ms, and whenever a decision that may engage the CEO asks for them
//! (`shared_inputs::Freshness`). Any other decision's cooldown gate may
//! miss an engagement of the last 200 ms; its route cannot, since a
//! cooldown only ever closes the CEO route.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use plaint_bus::{BusError, EventLog};
use plaint_domain::{ComplaintId, Timestamp};

/// Customers kept before giving up on keeping them: beyond this every
/// decision reads its customer's subject again, as before. A few MiB.
pub const MAX_CUSTOMERS: usize = 50_000;
/// Messages asked for per request while catching up.
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
}

impl Engagements {
    /// Reads what the engagement subjects received since the last read.
    /// `known` is a stream sequence that existed before this call: once
    /// the read finds nothing more, everything up to it has been read, and
    /// the next read starts from there (the server looks for a wildcard
    /// match message by message from where a read starts).
    pub async fn refresh(&mut self, log: &EventLog, known: u64) -> Result<(), BusError> {
        let filter = log.names().all_ceo_customers();
        while !self.overflowed {
            let items = log
                .read_matching_after(&filter, self.read_to, READ_BATCH)
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
                }
            }
            if complete {
                self.read_to = self.read_to.max(known);
                break;
            }
        }
        Ok(())
    }

    /// What is known of the customer whose engagement subject is `subject`.
    pub fn of(&self, subject: &str) -> Known {
        if self.overflowed || self.unreadable.contains(subject) {
            return Known::ReadTheSubject;
        }
        Known::Last(self.last.get(subject).copied())
    }
}
