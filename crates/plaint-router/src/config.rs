//! Configuration: one documented struct, from flags or the environment.

use std::net::SocketAddr;

/// Every setting of the router.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "plaint-router",
    version,
    about = "Complaint router: decisions, projections, queries and admin"
)]
pub struct Config {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "ROUTER_GRPC_ADDR", default_value = "127.0.0.1:50052")]
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus endpoint (`GET /metrics`; port 0 picks a free port).
    #[arg(long, env = "ROUTER_METRICS_ADDR", default_value = "127.0.0.1:9102")]
    pub metrics_addr: SocketAddr,
    /// PostgreSQL URL of the projections database.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/plaint"
    )]
    pub database_url: String,
    /// Most database connections.
    #[arg(long, env = "ROUTER_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "ROUTER_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Run the routing consumer (decisions).
    #[arg(long, env = "ROUTER_ROUTING", default_value_t = true, action = clap::ArgAction::Set)]
    pub routing: bool,
    /// Role in the routing consumer's durable name (`<STREAM>_<role>`):
    /// replicas with the same one share the work; a router with another one
    /// sees every event as well (and races the others on each decision).
    #[arg(long, env = "ROUTER_CONSUMER", default_value = "router")]
    pub routing_consumer: String,
    /// Tell helpdesk integrations about their complaints' decisions and
    /// later changes (one replica at a time, by lease).
    #[arg(long, env = "ROUTER_HELPDESK_UPDATES", default_value_t = true, action = clap::ArgAction::Set)]
    pub helpdesk_updates: bool,
    /// Keep the service-level timers: arm one for every clock a decision or
    /// reopening starts, and record the breach when one fires on a clock
    /// still running (every replica shares the work).
    #[arg(long, env = "ROUTER_SLA_TIMERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub sla_timers: bool,
    /// Run the projector (PostgreSQL read models).
    #[arg(long, env = "ROUTER_PROJECTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub projections: bool,
    /// This replica's name among the routers sharing a log, unique among
    /// those running: the holder of the projector's lease. Default: the
    /// container's host name, or the host and the process id.
    #[arg(long, env = "ROUTER_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// Events per projection transaction at most.
    #[arg(long, env = "ROUTER_PROJECTION_BATCH", default_value_t = 500)]
    pub projection_batch: usize,
    /// Commit projection batches without waiting for PostgreSQL's WAL flush
    /// (`synchronous_commit=off` on the router's connections). The tables are
    /// derived from the log and a crash loses only whole batches, which are
    /// applied again (RELIABILITY.md). Set false behind a connection pooler
    /// that refuses startup options.
    #[arg(long, env = "ROUTER_PROJECTION_ASYNC_COMMIT", default_value_t = true, action = clap::ArgAction::Set)]
    pub projection_async_commit: bool,
    /// Longest wait a query may ask for with `min_sequence`, in milliseconds.
    #[arg(long, env = "ROUTER_MAX_CONSISTENCY_WAIT_MS", default_value_t = 10_000)]
    pub max_consistency_wait_ms: u64,
    /// Log format: json or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: plaint_bus::LogSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub supervision: plaint_runtime::server::Supervision,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub access: plaint_access::AccessSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: plaint_runtime::tls::TlsSettings,
}

impl Config {
    /// Defaults for tests and tools, listening on a free port.
    pub fn for_tests(nats_url: &str, prefix: &str, database_url: &str) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            db_max_connections: 4,
            max_message_bytes: 4 * 1024 * 1024,
            routing: true,
            routing_consumer: "router".to_owned(),
            helpdesk_updates: true,
            sla_timers: true,
            projections: true,
            replica_name: None,
            projection_batch: 500,
            projection_async_commit: true,
            max_consistency_wait_ms: 10_000,
            log_format: "pretty".to_owned(),
            log: plaint_bus::LogSettings::for_tests(nats_url, prefix),
            supervision: Default::default(),
            access: Default::default(),
            tls: plaint_runtime::tls::TlsSettings::insecure_plaintext(),
        }
    }
}
