//! Everyday operator commands: complaints (submit, get, explain, list,
//! watch), dead letters, policies, climate and stance, and rebuilds.

mod admin;
mod complaints;
mod customers;
mod keys;

use anyhow::Context;
use clap::{Args, Subcommand};
use plaint_client::{Authed, ClientSettings};
use plaint_proto::access::access_client::AccessClient;
use plaint_proto::intake::{intake_admin_client::IntakeAdminClient, intake_client::IntakeClient};
use plaint_proto::router::{admin_client::AdminClient, query_client::QueryClient};

pub use admin::{ClimateArgs, DeadLetterCommand, PolicyCommand, StanceArgs};
pub use complaints::{ListArgs, SubmitArgs, WatchArgs};
pub use customers::CustomerCommand;
pub use keys::KeyCommand;

/// Where the services are, and how to print.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// gRPC endpoint of the intake service.
    #[arg(
        long,
        global = true,
        env = "PLAINT_INTAKE_URL",
        default_value = "https://127.0.0.1:50051"
    )]
    pub intake: String,
    /// gRPC endpoint of the router service.
    #[arg(
        long,
        global = true,
        env = "PLAINT_ROUTER_URL",
        default_value = "https://127.0.0.1:50052"
    )]
    pub router: String,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// The credential every call presents, and how the services' TLS is verified.
    #[command(flatten)]
    pub client: ClientSettings,
}

/// The operator commands.
#[derive(Debug, Subcommand)]
pub enum Ops {
    /// Submit one complaint over gRPC.
    Submit(SubmitArgs),
    /// A complaint's state, timeline and decisions.
    Get {
        /// The complaint id.
        id: String,
        /// Wait until the projection has applied this log sequence.
        #[arg(long, default_value_t = 0)]
        min_sequence: u64,
        /// The complaint as it stood then, read from the log: a log sequence
        /// (`80412`) or a UTC time (`2026-12-01T09:30:00Z`).
        #[arg(long, value_name = "SEQUENCE|TIME")]
        as_of: Option<String>,
    },
    /// Why a complaint went where it went.
    Explain {
        /// The complaint id.
        id: String,
    },
    /// Complaints, newest first, filtered.
    List(ListArgs),
    /// Follow complaint updates as they are projected.
    Watch(WatchArgs),
    /// Helpdesk messages intake could not accept.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Routing policy versions.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Set the economic climate.
    Climate(ClimateArgs),
    /// Set the social-stance alignment.
    Stance(StanceArgs),
    /// Rebuild every projection from sequence 1, with a progress bar.
    Rebuild,
    /// API keys: bootstrap, create, list, expire, revoke.
    #[command(subcommand)]
    Keys(KeyCommand),
    /// A customer's personal data: erase, export; re-wrap the data keys.
    #[command(subcommand)]
    Customers(CustomerCommand),
    /// The audit trail of administrative changes, oldest first.
    Audit {
        /// Entries after this log sequence.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many (the server caps it at 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

async fn channel(t: &Target, url: &str, what: &str) -> anyhow::Result<Authed> {
    t.client.connect(url).await.with_context(|| {
        let hint = if url.starts_with("http://") {
            "; a service that serves TLS needs an https:// URL"
        } else {
            ""
        };
        format!("cannot reach the {what} service (is it running?{hint})")
    })
}

async fn intake(t: &Target) -> anyhow::Result<IntakeClient<Authed>> {
    Ok(IntakeClient::new(channel(t, &t.intake, "intake").await?))
}

async fn intake_admin(t: &Target) -> anyhow::Result<IntakeAdminClient<Authed>> {
    Ok(IntakeAdminClient::new(
        channel(t, &t.intake, "intake").await?,
    ))
}

async fn query(t: &Target) -> anyhow::Result<QueryClient<Authed>> {
    Ok(QueryClient::new(channel(t, &t.router, "router").await?))
}

async fn admin(t: &Target) -> anyhow::Result<AdminClient<Authed>> {
    Ok(AdminClient::new(channel(t, &t.router, "router").await?))
}

async fn access(t: &Target) -> anyhow::Result<AccessClient<Authed>> {
    Ok(AccessClient::new(channel(t, &t.router, "router").await?))
}

/// A gRPC failure as an error a person can act on.
fn rpc(what: &str, status: tonic::Status) -> anyhow::Error {
    // A refused TLS handshake (no or a wrong client certificate) surfaces as
    // "transport error"; the why is in the causes.
    let mut causes = String::new();
    let mut next = std::error::Error::source(&status);
    while let Some(cause) = next {
        causes.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    anyhow::anyhow!(
        "{what} failed: {}{causes} ({:?})",
        status.message(),
        status.code()
    )
}

/// Runs one operator command.
pub async fn run(target: Target, ops: Ops) -> anyhow::Result<()> {
    match ops {
        Ops::Submit(a) => complaints::submit(&target, a).await,
        Ops::Get {
            id,
            min_sequence,
            as_of,
        } => {
            let as_of = as_of.as_deref().map(complaints::parse_as_of).transpose()?;
            complaints::get(&target, &id, min_sequence, as_of, false).await
        }
        Ops::Explain { id } => complaints::get(&target, &id, 0, None, true).await,
        Ops::List(a) => complaints::list(&target, a).await,
        Ops::Watch(a) => complaints::watch(&target, a).await,
        Ops::DeadLetters(c) => admin::dead_letters(&target, c).await,
        Ops::Policy(c) => admin::policy(&target, c).await,
        Ops::Climate(a) => admin::climate(&target, a).await,
        Ops::Stance(a) => admin::stance(&target, a).await,
        Ops::Rebuild => admin::rebuild(&target).await,
        Ops::Keys(c) => keys::keys(&target, c).await,
        Ops::Customers(c) => customers::customers(&target, c).await,
        Ops::Audit { after, limit } => keys::audit(&target, after, limit).await,
    }
}
