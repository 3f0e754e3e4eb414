//! The operator CLI of plaint: `plaint-ctl demo` submits a seeded, realistic load
//! of complaints through both doors (gRPC and the NATS helpdesk), walks part of
//! them through their lifecycle, and reports the routes, the CEO budget, the
//! goodwill stock and a few decisions with their explanations.

pub mod certs;
mod demo;
mod escalation;
mod heard_back;
pub mod nats_user;
pub mod ops;
pub mod personal_keys;
mod render;
mod report;

use clap::{Args, Parser, Subcommand};

/// Command-line interface of `plaint-ctl`.
#[derive(Debug, Parser)]
#[command(name = "plaint-ctl", version, about = "plaint operator CLI")]
pub struct Cli {
    /// Where the services are, and how to print.
    #[command(flatten)]
    pub target: ops::Target,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a seeded load of complaints, drive some through their lifecycle, and report.
    Demo(DemoArgs),
    /// Measure the raw limits of this machine, then the whole system against
    /// them, behind a correctness gate (see BENCHMARKS.md).
    Bench(plaint_bench::BenchArgs),
    /// Certificates for local TLS (a CA, a server and a client certificate).
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Make (or show) a NATS user: an nkey pair, the seed in a file, and the
    /// user's entry for the server configuration (see deploy/nats/README.md).
    NatsUser(nats_user::NatsUserArgs),
    /// The secret files that protect personal data: master key and pseudonym secret.
    #[command(subcommand)]
    PersonalKeys(personal_keys::PersonalKeysCommand),
    /// Everyday operations: complaints, dead letters, policies, climate, stance, rebuilds.
    #[command(flatten)]
    Ops(ops::Ops),
}

/// Settings of `plaint-ctl demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// NATS server URL (for the helpdesk half of the load).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Subject prefix of the deployment.
    #[arg(long, env = "PLAINT_PREFIX", default_value = "plaint")]
    pub prefix: String,
    /// The event log's stream (the integration reads `<stream>_OUTBOUND`).
    #[arg(long, env = "PLAINT_STREAM", default_value = "COMPLAINTS")]
    pub stream: String,
    /// The helpdesk integration the demo publishes as: its inbound subject,
    /// and the source system of its complaints.
    #[arg(long, env = "PLAINT_DEMO_INTEGRATION", default_value = "demo-helpdesk")]
    pub integration: String,
    /// Credentials and TLS of that integration on NATS.
    #[command(flatten)]
    pub nats_access: plaint_bus::NatsAccess,
    /// How many complaints to submit (half over gRPC, half over the helpdesk).
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    /// Seed of the generator; the same seed produces the same tickets (resubmitting
    /// them is answered as duplicates).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Concurrent gRPC requests at most.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Then show one service-level breach: a complaint routed under a
    /// policy whose P4 acknowledgement target is this many seconds (the
    /// policy in force is published again right after), left
    /// unacknowledged until the router records its breach. 0 skips it.
    #[arg(long, default_value_t = 5)]
    pub sla_breach_secs: u32,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        // Boxed: these futures are large, and a caller's stack (a test's
        // thread) need not hold them.
        Command::Demo(args) => Box::pin(demo::run(args, &cli.target)).await,
        Command::Bench(args) => Box::pin(plaint_bench::run(args, cli.target.json)).await,
        Command::Certs(command) => certs::run(command),
        Command::NatsUser(args) => nats_user::run(&args),
        Command::PersonalKeys(command) => personal_keys::run(command),
        Command::Ops(ops) => Box::pin(ops::run(cli.target, ops)).await,
    }
}
