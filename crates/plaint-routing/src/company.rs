//! The company's settings in force (policy, climate, stance), folded from the
//! company subject of the log. Nothing here lives only in process memory: a
//! view is a cache of the log, refreshed before it is used.

use plaint_bus::{BusError, EventLog, StoredEvent};
use plaint_domain::event::{CompanyEvent, EventPayload};
use plaint_domain::{Climate, RoutingPolicy, StanceAlignment, Timestamp};

/// One published policy version.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedPolicy {
    /// The routing rules of this version.
    pub policy: RoutingPolicy,
    /// When it was published.
    pub published_at: Timestamp,
    /// Who published it.
    pub published_by: String,
}

/// The settings in force, as of a log sequence.
#[derive(Debug, Clone, Default)]
pub struct CompanyView {
    /// Every published policy, oldest first. Empty means the default policy (version 1).
    pub policies: Vec<PublishedPolicy>,
    /// The climate in force.
    pub climate: Climate,
    /// The stance alignment in force.
    pub stance: StanceAlignment,
    /// The last sequence of the company subject folded in.
    pub sequence: u64,
}

impl CompanyView {
    /// The policy in force.
    pub fn policy(&self) -> RoutingPolicy {
        self.policies
            .last()
            .map_or_else(RoutingPolicy::default, |p| p.policy.clone())
    }

    /// The version the next publication gets.
    pub fn next_version(&self) -> u32 {
        self.policies.last().map_or(2, |p| p.policy.version + 1)
    }

    /// Folds in what the log holds beyond what this view has seen.
    pub async fn refresh(&mut self, log: &EventLog) -> Result<(), BusError> {
        let subject = log.names().company();
        let events = log.read_subject_after(&subject, self.sequence).await?;
        for e in &events {
            self.fold(e);
        }
        Ok(())
    }

    fn fold(&mut self, e: &StoredEvent) {
        if let EventPayload::Company(c) = &e.envelope.payload {
            match c {
                CompanyEvent::PolicyPublished {
                    policy,
                    published_by,
                } => {
                    self.policies.push(PublishedPolicy {
                        policy: (**policy).clone(),
                        published_at: e.envelope.occurred_at,
                        published_by: published_by.to_string(),
                    });
                }
                CompanyEvent::ClimateSet { climate, .. } => self.climate = *climate,
                CompanyEvent::CustomerErased { .. } => {}
                CompanyEvent::StanceAlignmentSet { alignment, .. } => self.stance = *alignment,
                CompanyEvent::CeoSlotReserved(_) => {}
            }
        }
        self.sequence = self.sequence.max(e.sequence);
    }
}
