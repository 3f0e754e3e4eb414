//! The company-side inputs of a decision that every complaint reads alike:
//! the settings in force, the window's CEO budget and the customers' last
//! CEO engagements.
//!
//! A decision must see the settings and the budget as the log held them at
//! some moment after the decision began, never older. Read one by one, that
//! is two requests to the log per complaint, almost always answered "nothing
//! new". The routing workers of one process share them instead: a worker
//! asks for inputs read after a given instant, and workers asking at the
//! same time share one read. While a read is in flight, every worker that
//! asked after it began waits for the next one, so each read serves everyone
//! who queued during the previous. The budget's compare-and-set still guards
//! every reservation. The engagements are brought up to date by every read
//! at most every [`ENGAGEMENTS_REFRESH`] (see [`crate::engagements`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use plaint_bus::{BusError, EventLog};
use plaint_domain::event::{CeoSlot, CompanyEvent, EventPayload};
use plaint_domain::{RoutingPolicy, Timestamp};

use crate::company::CompanyView;
use crate::engagements::Engagements;

/// The inputs as one read found them.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The company's settings.
    pub company: CompanyView,
    /// The policy in force, taken from `company`.
    pub policy: RoutingPolicy,
    /// The budget window `budget` belongs to.
    pub window_start: Timestamp,
    /// The CEO budget of that window.
    pub budget: BudgetState,
    /// Every customer's last CEO engagement.
    pub engagements: Engagements,
    /// When the read of `engagements` began.
    engagements_began: Instant,
    /// When the read began.
    read_began: Instant,
}

/// The CEO budget as the window's subject holds it.
#[derive(Debug, Clone, Default)]
pub struct BudgetState {
    /// The slots taken, oldest first.
    pub slots: Vec<CeoSlot>,
    /// The budget subject's last sequence read; 0 when it is empty.
    pub last_sequence: u64,
}

/// How often the engagements are read (see [`crate::engagements`]).
pub const ENGAGEMENTS_REFRESH: Duration = Duration::from_millis(200);

/// Inputs shared by the routing workers of one process; cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedInputs {
    log: EventLog,
    latest: Arc<Mutex<Option<Arc<Inputs>>>>,
    /// Held by the one worker reading for everyone.
    reading: Arc<tokio::sync::Mutex<()>>,
    /// The highest stream sequence the workers have seen.
    seen: Arc<AtomicU64>,
}

impl SharedInputs {
    /// Inputs read from `log`, none read yet.
    pub fn new(log: EventLog) -> Self {
        Self {
            log,
            latest: Arc::default(),
            reading: Arc::default(),
            seen: Arc::default(),
        }
    }

    /// Records that the log has reached `sequence` (a delivery's), which
    /// lets the reads of the engagements start from there.
    pub fn saw(&self, sequence: u64) {
        self.seen.fetch_max(sequence, Ordering::Relaxed);
    }

    /// Inputs read entirely after `since`, for the budget window of `now`
    /// (`now` being read after `since`); the engagements as of a read at
    /// most [`ENGAGEMENTS_REFRESH`] older.
    pub async fn read_after(
        &self,
        since: Instant,
        now: impl Fn() -> Timestamp,
    ) -> Result<Arc<Inputs>, BusError> {
        if let Some(inputs) = self.latest_after(since) {
            return Ok(inputs);
        }
        let _turn = self.reading.lock().await;
        // Whoever held the turn before may have read for us too.
        if let Some(inputs) = self.latest_after(since) {
            return Ok(inputs);
        }
        let began = Instant::now();
        let seen = self.seen.load(Ordering::Relaxed);
        let previous = self.latest();
        let mut company = previous
            .as_ref()
            .map(|p| p.company.clone())
            .unwrap_or_default();
        company.refresh(&self.log).await?;
        let policy = company.policy();
        let window_start = now().window_start(policy.window_ms());
        // The subject is append-only: what was read before plus what came
        // since equals reading it whole.
        let mut budget = previous
            .as_ref()
            .filter(|p| p.window_start == window_start)
            .map(|p| p.budget.clone())
            .unwrap_or_default();
        let events = self
            .log
            .read_subject_after(&self.log.names().budget(window_start), budget.last_sequence)
            .await?;
        if let Some(last) = events.last() {
            budget.last_sequence = last.sequence;
        }
        budget
            .slots
            .extend(events.into_iter().filter_map(|e| match e.envelope.payload {
                EventPayload::Company(CompanyEvent::CeoSlotReserved(slot)) => Some(slot),
                _ => None,
            }));
        let (mut engagements, mut engagements_began) = previous
            .as_ref()
            .map(|p| (p.engagements.clone(), p.engagements_began))
            .unwrap_or_else(|| (Engagements::default(), began));
        let due =
            previous.is_none() || began.duration_since(engagements_began) >= ENGAGEMENTS_REFRESH;
        if due {
            engagements.refresh(&self.log, seen).await?;
            engagements_began = began;
        }
        let inputs = Arc::new(Inputs {
            company,
            policy,
            window_start,
            budget,
            engagements,
            engagements_began,
            read_began: began,
        });
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&inputs));
        Ok(inputs)
    }

    fn latest(&self) -> Option<Arc<Inputs>> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn latest_after(&self, since: Instant) -> Option<Arc<Inputs>> {
        self.latest().filter(|i| i.read_began >= since)
    }
}
