//! `plaint-ctl demo`: submit, walk through the lifecycle, report.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use plaint_client::Authed;
use plaint_proto::events::{Climate, FulfilmentKind, ItemOutcome, Route, StanceAlignment};
use plaint_proto::intake::intake_client::IntakeClient;
use plaint_proto::intake::{
    AcknowledgeRequest, AuthorizeReturnRequest, CommandHeader, ProcessItemRequest,
    ReceiveItemRequest, ResolveRequest, ShipBackRequest, WriteResult,
};
use plaint_proto::router::admin_client::AdminClient;
use plaint_proto::router::query_client::QueryClient;
use plaint_proto::router::{
    ComplaintSummary, Consistency, GetComplaintRequest, GetQueueStatsRequest, SetClimateRequest,
    SetStanceRequest,
};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::DemoArgs;
use crate::report;
use plaint_bench::generate::{Complaint, Lifecycle, generate};

/// Clients of both services.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    pub(crate) intake: IntakeClient<Authed>,
    pub(crate) query: QueryClient<Authed>,
    pub(crate) admin: AdminClient<Authed>,
}

async fn connect(
    client: &plaint_client::ClientSettings,
    what: &str,
    url: &str,
) -> anyhow::Result<Channel> {
    client
        .endpoint(url)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot connect to the {what} at {url} (is it running?)"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Counts and prints progress every 500 items.
#[derive(Debug, Default)]
struct Progress {
    done: AtomicUsize,
}

impl Progress {
    fn tick(&self, what: &str, total: usize) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done.is_multiple_of(500) || done == total {
            eprintln!("  {what}: {done}/{total}");
        }
    }
}

/// What the submission and lifecycle phases did.
#[derive(Debug, Default)]
pub(crate) struct RunStats {
    pub(crate) grpc_submitted: usize,
    pub(crate) grpc_duplicates: usize,
    pub(crate) helpdesk_published: usize,
    pub(crate) lifecycle_planned: usize,
    pub(crate) lifecycle_resolved: usize,
    pub(crate) lifecycle_skipped: usize,
    pub(crate) lifecycle_errors: usize,
    pub(crate) first_lifecycle_error: Option<String>,
    pub(crate) started_at_ms: i64,
    /// Highest log sequence any of the demo's gRPC writes produced.
    pub(crate) max_sequence: u64,
    pub(crate) elapsed_submit: Duration,
}

/// Runs the demo.
pub(crate) async fn run(args: DemoArgs, target: &crate::ops::Target) -> anyhow::Result<()> {
    let concurrency = args.concurrency.max(1);
    let bearer = target.client.bearer()?;
    let intake = plaint_client::authed(
        connect(&target.client, "intake service", &target.intake).await?,
        bearer.clone(),
    );
    let router = plaint_client::authed(
        connect(&target.client, "router service", &target.router).await?,
        bearer,
    );
    let mut clients = Clients {
        intake: IntakeClient::new(intake),
        query: QueryClient::new(router.clone()),
        admin: AdminClient::new(router),
    };

    eprintln!("plaint demo: seed {}, {} complaints", args.seed, args.count);
    clients
        .admin
        .set_climate(SetClimateRequest {
            climate: Climate::Good as i32,
            ..Default::default()
        })
        .await
        .context("router Admin.SetClimate(GOOD) failed")?;
    clients
        .admin
        .set_stance(SetStanceRequest {
            alignment: StanceAlignment::Aligned as i32,
            ..Default::default()
        })
        .await
        .context("router Admin.SetStance(ALIGNED) failed")?;
    eprintln!("  climate GOOD, stance ALIGNED");

    let baseline = queue_total(&mut clients.query).await?;
    let mut stats = RunStats {
        started_at_ms: now_ms() - 1_000,
        ..RunStats::default()
    };
    let complaints = generate(args.seed, args.count);
    let (helpdesk, grpc): (Vec<Complaint>, Vec<Complaint>) =
        complaints.into_iter().partition(|c| c.via_helpdesk);

    // Both doors at once.
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let total = grpc.len() + helpdesk.len();
    let publisher = tokio::spawn(publish_helpdesk(
        args.clone(),
        helpdesk,
        Arc::clone(&progress),
        total,
    ));
    let submitted = submit_grpc(&clients, grpc, concurrency, &progress, total).await;
    let published = publisher
        .await
        .context("the helpdesk publisher task failed")?;
    let submitted = submitted?;
    stats.helpdesk_published = published?;
    stats.grpc_submitted = submitted.len();
    stats.grpc_duplicates = submitted.iter().filter(|(_, w)| w.duplicate).count();
    stats.max_sequence = submitted.iter().map(|(_, w)| w.sequence).max().unwrap_or(0);
    stats.elapsed_submit = started.elapsed();
    eprintln!(
        "  submitted {} over gRPC ({} duplicates) and {} over the helpdesk in {:.1} s",
        stats.grpc_submitted,
        stats.grpc_duplicates,
        stats.helpdesk_published,
        stats.elapsed_submit.as_secs_f64()
    );

    lifecycle_phase(&clients, submitted, concurrency, &mut stats).await;

    let expected_new = stats.grpc_submitted - stats.grpc_duplicates + stats.helpdesk_published;
    wait_until_routed(&mut clients.query, baseline + expected_new as u64).await?;

    let summary = report::collect(&mut clients, &stats).await?;
    // The integration reads what it was told: a receipt per message, the
    // decisions of its complaints.
    let heard = if stats.helpdesk_published > 0 {
        Some(crate::heard_back::read(&args, stats.helpdesk_published).await?)
    } else {
        None
    };
    // Counted after the report, so that its figures are the load's alone.
    let escalation = if args.sla_breach_secs > 0 {
        Some(crate::escalation::show(&mut clients, args.sla_breach_secs).await?)
    } else {
        None
    };
    if target.json {
        let mut json = report::to_json(&summary, &stats, &args);
        if let (Some(heard), Some(object)) = (&heard, json.as_object_mut()) {
            object.insert("heard_back".to_owned(), heard.to_json());
        }
        if let (Some(e), Some(object)) = (&escalation, json.as_object_mut()) {
            object.insert("escalation".to_owned(), e.to_json());
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        report::print(&summary, &stats, &args);
        if let Some(heard) = &heard {
            heard.print(&args.integration);
        }
        if let Some(e) = &escalation {
            e.print();
        }
    }
    Ok(())
}

fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Aborted
    )
}

async fn submit_one(
    mut intake: IntakeClient<Authed>,
    complaint: &Complaint,
) -> anyhow::Result<WriteResult> {
    let mut attempt = 0;
    loop {
        match intake.submit_complaint(complaint.to_request()).await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if retryable(&status) && attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(status) => {
                return Err(anyhow::Error::new(status).context(format!(
                    "intake SubmitComplaint for ticket {} failed",
                    complaint.external_ticket_id
                )));
            }
        }
    }
}

async fn submit_grpc(
    clients: &Clients,
    grpc: Vec<Complaint>,
    concurrency: usize,
    progress: &Progress,
    total: usize,
) -> anyhow::Result<Vec<(Complaint, WriteResult)>> {
    let mut out = Vec::with_capacity(grpc.len());
    let mut tasks = JoinSet::new();
    for complaint in grpc {
        while tasks.len() >= concurrency {
            out.push(join_submit(&mut tasks).await?);
            progress.tick("submitted", total);
        }
        let intake = clients.intake.clone();
        tasks.spawn(async move {
            let result = submit_one(intake, &complaint).await;
            result.map(|w| (complaint, w))
        });
    }
    while !tasks.is_empty() {
        out.push(join_submit(&mut tasks).await?);
        progress.tick("submitted", total);
    }
    Ok(out)
}

async fn join_submit(
    tasks: &mut JoinSet<anyhow::Result<(Complaint, WriteResult)>>,
) -> anyhow::Result<(Complaint, WriteResult)> {
    match tasks.join_next().await {
        Some(joined) => joined.context("a submission task failed")?,
        None => bail!("no submission task left"),
    }
}

/// Publishes `complaints` as the integration `args.integration`, on its own
/// subject and as its own source system (intake refuses any other).
async fn publish_helpdesk(
    args: DemoArgs,
    complaints: Vec<Complaint>,
    progress: Arc<Progress>,
    total: usize,
) -> anyhow::Result<usize> {
    if complaints.is_empty() {
        return Ok(0);
    }
    let subject = format!("{}.helpdesk.inbound.{}", args.prefix, args.integration);
    let client = plaint_bus::connect_with(&args.nats, &args.nats_access, "plaint-ctl")
        .await
        .with_context(|| format!("cannot connect to NATS at {}", args.nats))?;
    let publisher = plaint_bus::RawPublisher::new(client);
    let payloads = complaints
        .iter()
        .map(|c| {
            let mut message = c.to_helpdesk_json();
            message["source_system"] = args.integration.clone().into();
            serde_json::to_vec(&message).map(bytes::Bytes::from)
        })
        .collect::<Result<Vec<_>, _>>()?;
    publisher
        .publish_all(&subject, None, payloads, 256, || {
            progress.tick("submitted", total)
        })
        .await
        .with_context(|| {
            format!(
                "NATS did not store a message on {subject} \
                 (is intake running with its helpdesk stream?)"
            )
        })
}

/// Total complaints in the router's projection, and how many are not routed yet.
async fn queue_counts(query: &mut QueryClient<Authed>) -> anyhow::Result<(u64, u64)> {
    let stats = query
        .get_queue_stats(GetQueueStatsRequest { consistency: None })
        .await
        .context("router Query.GetQueueStats failed")?
        .into_inner();
    let total = stats.stats.iter().map(|s| s.count).sum();
    let unrouted = stats
        .stats
        .iter()
        .filter(|s| s.route == Route::Unspecified as i32)
        .map(|s| s.count)
        .sum();
    Ok((total, unrouted))
}

async fn queue_total(query: &mut QueryClient<Authed>) -> anyhow::Result<u64> {
    Ok(queue_counts(query).await?.0)
}

/// Waits (at most 30 s) until the projection holds `expected` complaints, all routed,
/// or (helpdesk resubmissions are duplicates the demo cannot see) until every complaint
/// is routed and the count has stood still for 2 s.
async fn wait_until_routed(query: &mut QueryClient<Authed>, expected: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_total = None;
    let mut still_since = Instant::now();
    loop {
        let (total, unrouted) = queue_counts(query).await?;
        if unrouted == 0 && (total >= expected || still_since.elapsed() >= Duration::from_secs(2)) {
            return Ok(());
        }
        if last_total != Some(total) {
            last_total = Some(total);
            still_since = Instant::now();
        }
        if Instant::now() >= deadline {
            eprintln!(
                "  warning: after 30 s the router shows {total} complaints ({unrouted} not routed), \
                 expected {expected}; reporting what is there"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The complaint once the router has decided, or `None` after 5 s.
async fn routed(
    query: &mut QueryClient<Authed>,
    complaint_id: &str,
    sequence: u64,
) -> Option<ComplaintSummary> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut consistency = Some(Consistency {
        min_sequence: sequence,
        timeout_ms: 5_000,
    });
    loop {
        let response = query
            .get_complaint(GetComplaintRequest {
                complaint_id: complaint_id.to_owned(),
                consistency: consistency.take(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        if let Some(summary) = response.complaint
            && summary.route != Route::Unspecified as i32
        {
            return Some(summary);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header(complaint_id: &str, step: &str) -> Option<CommandHeader> {
    // Deterministic per complaint and step, so a retry is answered as a duplicate.
    let request_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("plaint-ctl-demo/{complaint_id}/{step}").as_bytes(),
    );
    Some(CommandHeader {
        complaint_id: complaint_id.to_owned(),
        request_id: request_id.to_string(),
    })
}

/// Outcome of one lifecycle walk.
enum Walk {
    /// Resolved; the sequence of the resolution.
    Resolved(u64),
    Skipped,
}

async fn walk(clients: &mut Clients, write: &WriteResult, plan: Lifecycle) -> anyhow::Result<Walk> {
    let id = write.complaint_id.as_str();
    let Some(summary) = routed(&mut clients.query, id, write.sequence).await else {
        return Ok(Walk::Skipped);
    };
    let route = Route::try_from(summary.route).unwrap_or(Route::Unspecified);
    let intake = &mut clients.intake;
    intake
        .acknowledge(AcknowledgeRequest {
            header: header(id, "ack"),
            by: "demo-agent".to_owned(),
        })
        .await
        .with_context(|| format!("Acknowledge {id} ({})", route.as_str_name()))?;
    let fulfilment = FulfilmentKind::try_from(summary.fulfilment).unwrap_or_default();
    if fulfilment != FulfilmentKind::None {
        let outcome = match fulfilment {
            FulfilmentKind::Replace => ItemOutcome::Replaced,
            FulfilmentKind::Refund => ItemOutcome::Refunded,
            _ => ItemOutcome::Repaired,
        };
        let rma = format!("RMA-{}", &id[..8.min(id.len())]);
        intake
            .authorize_return(AuthorizeReturnRequest {
                header: header(id, "rma"),
                rma,
            })
            .await
            .with_context(|| format!("AuthorizeReturn {id}"))?;
        intake
            .receive_item(ReceiveItemRequest {
                header: header(id, "receive"),
            })
            .await
            .with_context(|| format!("ReceiveItem {id}"))?;
        intake
            .process_item(ProcessItemRequest {
                header: header(id, "process"),
                outcome: outcome as i32,
            })
            .await
            .with_context(|| format!("ProcessItem {id} ({})", outcome.as_str_name()))?;
        if outcome != ItemOutcome::Refunded {
            intake
                .ship_back(ShipBackRequest {
                    header: header(id, "ship"),
                    tracking: format!("1Z{}", &id[..8.min(id.len())]),
                })
                .await
                .with_context(|| format!("ShipBack {id}"))?;
        }
    }
    let (satisfaction, note) = match route {
        Route::Ceo => (
            plan.ceo_satisfaction,
            "the CEO called the customer personally",
        ),
        Route::ReverseLogistics => (plan.satisfaction, "item handled and back with the customer"),
        _ => (plan.satisfaction, "sorted out by the frontline"),
    };
    let resolved = intake
        .resolve(ResolveRequest {
            header: header(id, "resolve"),
            satisfaction,
            note: note.to_owned(),
        })
        .await
        .with_context(|| format!("Resolve {id}"))?;
    Ok(Walk::Resolved(resolved.into_inner().sequence))
}

async fn lifecycle_phase(
    clients: &Clients,
    submitted: Vec<(Complaint, WriteResult)>,
    concurrency: usize,
    stats: &mut RunStats,
) {
    let planned: Vec<(Lifecycle, WriteResult)> = submitted
        .into_iter()
        .filter(|(_, w)| !w.duplicate)
        .filter_map(|(c, w)| c.lifecycle.map(|plan| (plan, w)))
        .collect();
    stats.lifecycle_planned = planned.len();
    eprintln!(
        "  walking {} complaints through their lifecycle",
        planned.len()
    );
    let progress = Progress::default();
    let total = planned.len();
    let mut tasks = JoinSet::new();
    let mut planned = planned.into_iter();
    loop {
        while tasks.len() < concurrency {
            let Some((plan, write)) = planned.next() else {
                break;
            };
            let mut clients = clients.clone();
            tasks.spawn(async move { walk(&mut clients, &write, plan).await });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        progress.tick("lifecycle", total);
        match joined {
            Ok(Ok(Walk::Resolved(sequence))) => {
                stats.lifecycle_resolved += 1;
                stats.max_sequence = stats.max_sequence.max(sequence);
            }
            Ok(Ok(Walk::Skipped)) => stats.lifecycle_skipped += 1,
            Ok(Err(err)) => {
                stats.lifecycle_errors += 1;
                stats
                    .first_lifecycle_error
                    .get_or_insert_with(|| format!("{err:#}"));
            }
            Err(err) => {
                stats.lifecycle_errors += 1;
                stats
                    .first_lifecycle_error
                    .get_or_insert_with(|| format!("task failed: {err}"));
            }
        }
    }
}
