//! The scale phase's load: complaints submitted over gRPC at high
//! concurrency, then a share of them walked through their lifecycle through
//! intake's lifecycle RPCs, so that goodwill, queue statistics and the
//! timeline hold what a long-lived system's do.
//!
//! Memory stays small whatever the count: the accepted ids as 16-byte UUIDs
//! (16 MB at a million), and everything else derived from a complaint's
//! index (its customer, its lifecycle plan), never stored.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use plaint_client::Authed;
use plaint_proto::events::ItemOutcome;
use plaint_proto::intake::intake_client::IntakeClient;
use plaint_proto::intake::{
    AcknowledgeRequest, AuthorizeReturnRequest, CommandHeader, ProcessItemRequest,
    ReceiveItemRequest, ReopenRequest, ResolveRequest, SubmitComplaintRequest, WithdrawRequest,
};
use tokio::task::JoinSet;
use tonic::Code;
use uuid::Uuid;

use crate::generate::{Rng, generate};
use crate::stats::Latency;
use crate::system::{Driver, Services};

/// Submissions in flight at once, as the bench's closed loop.
const CONCURRENCY: usize = 64;
/// Complaints submitted before the lifecycle of the previous chunk is walked:
/// by then the router has decided on that chunk, so its walks seldom wait.
const CHUNK: usize = 5_000;
/// Most routing-consumer backlog (messages) the load runs ahead of: beyond
/// it the next chunk waits, so the walks find their complaints routed and
/// the backlog stays bounded however long the load.
const ROUTING_AHEAD: u64 = CHUNK as u64;
/// Most projection lag (events) the load runs ahead of, for the same reason.
const PROJECTION_AHEAD: u64 = 30_000;
/// How long the router may stay behind those bounds before the load gives up.
const PACE_TIMEOUT: Duration = Duration::from_secs(600);
/// Attempts of a call that failed retryably (UNAVAILABLE, ABORTED).
const RETRIES: u64 = 3;
/// How long a walk waits for its complaint to be routed, in 100 ms steps.
const NOT_ROUTED_STEPS: u32 = 100;
/// Source system of the load's complaints; ticket ids are `S<index>`.
const SOURCE: &str = "bench-scale";

/// What happens to a complaint after it is routed, by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Left as routed.
    None,
    /// Acknowledged and resolved with this satisfaction (item handled first
    /// when its decision asks for it).
    Resolve(u32),
    /// Resolved, then reopened.
    ResolveReopen(u32),
    /// Withdrawn by the customer before anyone acknowledged it.
    Withdraw,
}

/// A stable 64-bit mix of `seed` and `i` (SplitMix64's finaliser).
fn mix(seed: u64, i: u64) -> u64 {
    Rng::new(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

/// 20% of complaints are resolved (a tenth of those reopened), 2%
/// withdrawn; satisfaction 5..=10, skewed high as the demo's.
pub(crate) fn plan_of(seed: u64, i: u64) -> Plan {
    let h = mix(seed, i);
    let roll = h % 100;
    let satisfaction = 5 + u32::try_from(((h >> 8) % 6).max((h >> 16) % 6)).unwrap_or(5);
    match roll {
        0..=1 => Plan::ResolveReopen(satisfaction),
        2..=19 => Plan::Resolve(satisfaction),
        20..=21 => Plan::Withdraw,
        _ => Plan::None,
    }
}

/// Counts of the load so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadStats {
    /// Submissions tried.
    pub(crate) submitted: u64,
    /// Acknowledged as new.
    pub(crate) accepted: u64,
    /// Acknowledged as duplicates (none expected: every ticket id is new).
    pub(crate) duplicates: u64,
    /// Submissions that failed.
    pub(crate) failures: u64,
    pub(crate) first_failure: Option<String>,
    /// Lifecycle walks done: resolved, of those through the item steps,
    /// reopened, and withdrawn.
    pub(crate) resolved: u64,
    pub(crate) item_handled: u64,
    pub(crate) reopened: u64,
    pub(crate) withdrawn: u64,
    /// Lifecycle RPCs that stored an event.
    pub(crate) lifecycle_events: u64,
    /// Walks that failed.
    pub(crate) lifecycle_failures: u64,
    pub(crate) first_lifecycle_failure: Option<String>,
    /// Time spent submitting, walking, and waiting for the router.
    pub(crate) submitting: Duration,
    pub(crate) walking: Duration,
    pub(crate) pacing: Duration,
}

/// Every call's latency by method, as the load's client saw it.
#[derive(Debug, Default)]
pub(crate) struct Timings(Mutex<BTreeMap<&'static str, Vec<f64>>>);

impl Timings {
    fn record(&self, what: &'static str, took: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.entry(what).or_default().push(took.as_secs_f64() * 1e3);
    }

    /// The latencies since the last take, by method.
    pub(crate) fn take(&self) -> Vec<(&'static str, Latency)> {
        let taken = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        taken
            .into_iter()
            .map(|(what, ms)| (what, Latency::of_ms(ms)))
            .collect()
    }
}

/// The load generator and what it has loaded.
#[derive(Debug)]
pub(crate) struct Loader {
    intake: IntakeClient<Authed>,
    templates: Arc<Vec<SubmitComplaintRequest>>,
    seed: u64,
    /// Accepted ids by complaint index; nil where the submission failed.
    ids: Vec<Uuid>,
    /// Complaints whose lifecycle has been walked: `0..walked`.
    walked: usize,
    pub(crate) stats: LoadStats,
    pub(crate) timings: Arc<Timings>,
}

/// One walk's outcome.
#[derive(Debug, Default)]
struct Walked {
    resolved: bool,
    item_handled: bool,
    reopened: bool,
    withdrawn: bool,
    events: u64,
}

impl Loader {
    pub(crate) fn new(intake: IntakeClient<Authed>, seed: u64) -> Self {
        let templates = generate(seed, 5000)
            .iter()
            .map(crate::generate::Complaint::to_request)
            .collect();
        Self {
            intake,
            templates: Arc::new(templates),
            seed,
            ids: Vec::new(),
            walked: 0,
            stats: LoadStats::default(),
            timings: Arc::default(),
        }
    }

    /// Complaints submitted so far (accepted or not).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The id of complaint `i`, if it was accepted.
    pub(crate) fn id(&self, i: usize) -> Option<Uuid> {
        self.ids.get(i).copied().filter(|u| !u.is_nil())
    }

    /// The customer of complaint `i`: drawn from the customers seen so far
    /// and about a third as many new ones, so the oldest customers gather
    /// the longest histories (about 3 × ln(n/3) complaints) while the mean
    /// stays about three, however many complaints there are.
    pub(crate) fn customer_id(&self, i: usize) -> String {
        customer_of(self.seed, i as u64).0
    }

    /// Loads complaints `len()..target`, walking each chunk's lifecycle once
    /// the next is submitted, and every remaining one at the end (when the
    /// router has routed them all).
    pub(crate) async fn load_to(
        &mut self,
        target: usize,
        driver: &Driver,
        services: &mut Services,
    ) -> anyhow::Result<()> {
        while self.ids.len() < target {
            let start = self.ids.len();
            let end = (start + CHUNK).min(target);
            let started = Instant::now();
            self.submit_range(start, end).await?;
            self.stats.submitting += started.elapsed();
            let paced = Instant::now();
            pace(driver, services, ROUTING_AHEAD, PROJECTION_AHEAD).await?;
            self.stats.pacing += paced.elapsed();
            // Up to the chunk just submitted: routed by now.
            self.walk_until(start).await?;
            eprint!(
                "\r    {} complaints submitted, {} walked ({:.0} s)   ",
                self.ids.len(),
                self.walked,
                (self.stats.submitting + self.stats.walking + self.stats.pacing).as_secs_f64()
            );
        }
        let paced = Instant::now();
        pace(driver, services, 0, PROJECTION_AHEAD).await?;
        self.stats.pacing += paced.elapsed();
        self.walk_until(self.ids.len()).await?;
        eprintln!();
        Ok(())
    }

    /// Submits complaints `from..to` at [`CONCURRENCY`] and books their ids.
    async fn submit_range(&mut self, from: usize, to: usize) -> anyhow::Result<()> {
        let next = Arc::new(AtomicUsize::new(from));
        let mut tasks = JoinSet::new();
        for _ in 0..CONCURRENCY {
            let next = Arc::clone(&next);
            let intake = self.intake.clone();
            let templates = Arc::clone(&self.templates);
            let timings = Arc::clone(&self.timings);
            let seed = self.seed;
            tasks.spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        break;
                    }
                    let request = request_of(&templates, seed, i as u64);
                    let t = Instant::now();
                    let result = submit(intake.clone(), request).await;
                    timings.record("SubmitComplaint", t.elapsed());
                    out.push((i, result));
                }
                out
            });
        }
        let mut ids = vec![Uuid::nil(); to - from];
        while let Some(r) = tasks.join_next().await {
            for (i, result) in r.context("a submitter task failed")? {
                self.stats.submitted += 1;
                match result {
                    Ok(Some(id)) => {
                        self.stats.accepted += 1;
                        ids[i - from] = id;
                    }
                    Ok(None) => self.stats.duplicates += 1,
                    Err(e) => {
                        self.stats.failures += 1;
                        self.stats.first_failure.get_or_insert(e);
                    }
                }
            }
        }
        self.ids.extend(ids);
        if self.stats.failures > self.stats.submitted / 100 + 10 {
            bail!(
                "{} of {} submissions failed; the first: {}",
                self.stats.failures,
                self.stats.submitted,
                self.stats.first_failure.as_deref().unwrap_or("?")
            );
        }
        Ok(())
    }

    /// Walks the lifecycle of every planned complaint in `walked..end`.
    async fn walk_until(&mut self, end: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let work: Vec<(Uuid, Plan)> = (self.walked..end)
            .filter_map(|i| {
                let plan = plan_of(self.seed, i as u64);
                (plan != Plan::None)
                    .then(|| self.id(i).map(|id| (id, plan)))
                    .flatten()
            })
            .collect();
        self.walked = self.walked.max(end);
        let work = Arc::new(work);
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..CONCURRENCY {
            let work = Arc::clone(&work);
            let next = Arc::clone(&next);
            let intake = self.intake.clone();
            let timings = Arc::clone(&self.timings);
            tasks.spawn(async move {
                let mut out = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(id, plan)) = work.get(k) else {
                        break;
                    };
                    out.push(walk(&timings, intake.clone(), id, plan).await);
                }
                out
            });
        }
        while let Some(r) = tasks.join_next().await {
            for result in r.context("a lifecycle task failed")? {
                match result {
                    Ok(w) => {
                        self.stats.resolved += u64::from(w.resolved);
                        self.stats.item_handled += u64::from(w.item_handled);
                        self.stats.reopened += u64::from(w.reopened);
                        self.stats.withdrawn += u64::from(w.withdrawn);
                        self.stats.lifecycle_events += w.events;
                    }
                    Err(e) => {
                        self.stats.lifecycle_failures += 1;
                        self.stats
                            .first_lifecycle_failure
                            .get_or_insert(format!("{e:#}"));
                    }
                }
            }
        }
        self.stats.walking += started.elapsed();
        Ok(())
    }
}

/// The customer of complaint `i`: `(id, template index)`.
fn customer_of(seed: u64, i: u64) -> (String, usize) {
    let k = mix(seed ^ 0xC057, i) % (i / 3 + 1);
    (
        format!("scale-{seed:x}-c{k:07}"),
        usize::try_from(k % 5000).unwrap_or(0),
    )
}

/// Complaint `i`: a generated complaint's facts, the customer of index `i`
/// (with the segment, tier and value of the template its id maps to, so a
/// customer is the same in each of their complaints), a ticket id of its own.
fn request_of(templates: &[SubmitComplaintRequest], seed: u64, i: u64) -> SubmitComplaintRequest {
    let len = templates.len().max(1);
    let mut r = templates[usize::try_from(i).unwrap_or(0) % len].clone();
    let (customer_id, template) = customer_of(seed, i);
    let mut customer = templates[template % len]
        .customer
        .clone()
        .unwrap_or_default();
    customer.customer_id = customer_id;
    r.customer = Some(customer);
    r.source_system = SOURCE.to_owned();
    r.external_ticket_id = format!("S{i:09}");
    r
}

fn retryable(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Aborted)
}

/// Submits one complaint; `Ok(None)` for a duplicate.
async fn submit(
    mut intake: IntakeClient<Authed>,
    request: SubmitComplaintRequest,
) -> Result<Option<Uuid>, String> {
    let mut attempt = 0u64;
    loop {
        match intake.submit_complaint(request.clone()).await {
            Ok(r) => {
                let w = r.into_inner();
                if w.duplicate {
                    return Ok(None);
                }
                return Uuid::try_parse(&w.complaint_id)
                    .map(Some)
                    .map_err(|e| format!("SubmitComplaint answered a bad id: {e}"));
            }
            Err(s) if retryable(&s) && attempt < RETRIES => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(s) => return Err(format!("SubmitComplaint: {s}")),
        }
    }
}

/// A command header with a request id derived from the complaint and the
/// step, so a retried call is answered as a duplicate, never stored twice.
fn header(id: Uuid, step: &str) -> Option<CommandHeader> {
    let request_id = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("plaint-bench-scale/{id}/{step}").as_bytes(),
    );
    Some(CommandHeader {
        complaint_id: id.to_string(),
        request_id: request_id.to_string(),
    })
}

/// Why a lifecycle call failed, when it failed for good.
enum CallError {
    /// The complaint is not routed yet.
    NotRouted,
    /// Its item is not handled yet.
    ItemPending,
    Other(tonic::Status),
}

/// One lifecycle call, retried when retryable; tells the refusals a walk
/// reacts to apart from the rest.
async fn call<T, F, Fut>(
    timings: &Timings,
    what: &'static str,
    mut f: F,
) -> anyhow::Result<Result<T, CallError>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempt = 0u64;
    loop {
        let t = Instant::now();
        let result = f().await;
        timings.record(what, t.elapsed());
        match result {
            Ok(r) => return Ok(Ok(r.into_inner())),
            Err(s) if retryable(&s) && attempt < RETRIES => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            // The domain's refusals, told apart by their words (the status
            // carries no code of its own for them).
            Err(s)
                if s.code() == Code::FailedPrecondition && s.message().contains("not routed") =>
            {
                return Ok(Err(CallError::NotRouted));
            }
            Err(s)
                if s.code() == Code::FailedPrecondition
                    && s.message().contains("not handled yet") =>
            {
                return Ok(Err(CallError::ItemPending));
            }
            Err(s) => return Ok(Err(CallError::Other(s))),
        }
    }
}

fn fail<T>(what: &str, id: Uuid, e: CallError) -> anyhow::Result<T> {
    match e {
        CallError::NotRouted => bail!("{what} {id}: not routed after {NOT_ROUTED_STEPS} tries"),
        CallError::ItemPending => bail!("{what} {id}: the item is still pending"),
        CallError::Other(s) => bail!("{what} {id}: {s}"),
    }
}

/// Walks one complaint through its plan.
async fn walk(
    timings: &Timings,
    intake: IntakeClient<Authed>,
    id: Uuid,
    plan: Plan,
) -> anyhow::Result<Walked> {
    let mut out = Walked::default();
    let satisfaction = match plan {
        Plan::None => return Ok(out),
        Plan::Withdraw => {
            routed_then(timings, id, "Withdraw", || {
                let mut c = intake.clone();
                async move {
                    c.withdraw(WithdrawRequest {
                        header: header(id, "withdraw"),
                        reason: "sorted it out myself".to_owned(),
                    })
                    .await
                }
            })
            .await?;
            out.withdrawn = true;
            out.events = 1;
            return Ok(out);
        }
        Plan::Resolve(s) | Plan::ResolveReopen(s) => s,
    };
    routed_then(timings, id, "Acknowledge", || {
        let mut c = intake.clone();
        async move {
            c.acknowledge(AcknowledgeRequest {
                header: header(id, "ack"),
                by: "bench-agent".to_owned(),
            })
            .await
        }
    })
    .await?;
    out.events += 1;
    let resolve = || {
        let mut c = intake.clone();
        async move {
            c.resolve(ResolveRequest {
                header: header(id, "resolve"),
                satisfaction,
                note: "sorted out".to_owned(),
            })
            .await
        }
    };
    match call(timings, "Resolve", &resolve).await? {
        Ok(_) => {}
        Err(CallError::ItemPending) => {
            // Its decision asked for the item back: refund it, then resolve.
            let rma = format!("RMA-{}", &id.simple().to_string()[..8]);
            let authorize = || {
                let (mut c, rma) = (intake.clone(), rma.clone());
                async move {
                    c.authorize_return(AuthorizeReturnRequest {
                        header: header(id, "rma"),
                        rma,
                    })
                    .await
                }
            };
            if let Err(e) = call(timings, "AuthorizeReturn", authorize).await? {
                return fail("AuthorizeReturn", id, e);
            }
            let receive = || {
                let mut c = intake.clone();
                async move {
                    c.receive_item(ReceiveItemRequest {
                        header: header(id, "receive"),
                    })
                    .await
                }
            };
            if let Err(e) = call(timings, "ReceiveItem", receive).await? {
                return fail("ReceiveItem", id, e);
            }
            let process = || {
                let mut c = intake.clone();
                async move {
                    c.process_item(ProcessItemRequest {
                        header: header(id, "process"),
                        outcome: ItemOutcome::Refunded as i32,
                    })
                    .await
                }
            };
            if let Err(e) = call(timings, "ProcessItem", process).await? {
                return fail("ProcessItem", id, e);
            }
            if let Err(e) = call(timings, "Resolve", &resolve).await? {
                return fail("Resolve", id, e);
            }
            out.item_handled = true;
            out.events += 3;
        }
        Err(e) => return fail("Resolve", id, e),
    }
    out.resolved = true;
    out.events += 1;
    if matches!(plan, Plan::ResolveReopen(_)) {
        let reopen = || {
            let mut c = intake.clone();
            async move {
                c.reopen(ReopenRequest {
                    header: header(id, "reopen"),
                    reason: "it broke again".to_owned(),
                })
                .await
            }
        };
        if let Err(e) = call(timings, "Reopen", reopen).await? {
            return fail("Reopen", id, e);
        }
        out.reopened = true;
        out.events += 1;
    }
    Ok(out)
}

/// Calls `f` until the complaint is routed (bounded), then fails on any
/// other refusal.
async fn routed_then<T, F, Fut>(
    timings: &Timings,
    id: Uuid,
    what: &'static str,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    for _ in 0..NOT_ROUTED_STEPS {
        match call(timings, what, &mut f).await? {
            Ok(r) => return Ok(r),
            Err(CallError::NotRouted) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return fail(what, id, e),
        }
    }
    fail(what, id, CallError::NotRouted)
}

/// Waits (bounded by [`PACE_TIMEOUT`]) until the routing consumer's backlog
/// is at most `routing` messages and the projection at most `projection`
/// events behind the log.
pub(crate) async fn pace(
    driver: &Driver,
    services: &mut Services,
    routing: u64,
    projection: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PACE_TIMEOUT;
    loop {
        services.check_alive()?;
        let s = driver.sample().await?;
        if s.log.consumer_backlog <= routing && s.projection_lag() <= projection {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the router stayed behind for {PACE_TIMEOUT:?}: routing backlog {} (bound {routing}), \
                 projection lag {} (bound {projection})",
                s.log.consumer_backlog,
                s.projection_lag()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_come_in_the_intended_shares() {
        let n = 100_000u64;
        let plans: Vec<Plan> = (0..n).map(|i| plan_of(7, i)).collect();
        let count = |f: fn(&Plan) -> bool| plans.iter().filter(|p| f(p)).count() as f64 / n as f64;
        let resolved = count(|p| matches!(p, Plan::Resolve(_) | Plan::ResolveReopen(_)));
        let reopened = count(|p| matches!(p, Plan::ResolveReopen(_)));
        let withdrawn = count(|p| matches!(p, Plan::Withdraw));
        assert!((resolved - 0.20).abs() < 0.01, "{resolved}");
        assert!((reopened - 0.02).abs() < 0.005, "{reopened}");
        assert!((withdrawn - 0.02).abs() < 0.005, "{withdrawn}");
        assert!(plans.iter().all(|p| match p {
            Plan::Resolve(s) | Plan::ResolveReopen(s) => (5..=10).contains(s),
            _ => true,
        }));
        assert_eq!(plan_of(7, 12), plan_of(7, 12));
    }

    #[test]
    fn customers_average_about_three_complaints_and_stay_the_same() {
        let n = 30_000u64;
        let customers: std::collections::HashSet<String> =
            (0..n).map(|i| customer_of(3, i).0).collect();
        let per_customer = n as f64 / customers.len() as f64;
        assert!((2.0..5.0).contains(&per_customer), "{per_customer}");
        let templates: Vec<SubmitComplaintRequest> =
            generate(3, 5000).iter().map(|c| c.to_request()).collect();
        let a = request_of(&templates, 3, 10);
        assert_eq!(a.external_ticket_id, "S000000010");
        assert_eq!(a, request_of(&templates, 3, 10));
    }
}
