//! Configuration: one documented struct, from flags or the environment.

use std::net::SocketAddr;

/// Every setting of the intake service.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "plaint-intake",
    version,
    about = "Complaint intake: gRPC and helpdesk doors into the event log"
)]
pub struct Config {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "INTAKE_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus endpoint (`GET /metrics`; port 0 picks a free port).
    #[arg(long, env = "INTAKE_METRICS_ADDR", default_value = "127.0.0.1:9101")]
    pub metrics_addr: SocketAddr,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "INTAKE_MAX_MESSAGE_BYTES", default_value_t = 256 * 1024)]
    pub max_message_bytes: usize,
    /// Largest helpdesk message accepted, in bytes; larger ones are dead-lettered.
    #[arg(long, env = "INTAKE_MAX_INBOUND_BYTES", default_value_t = 64 * 1024)]
    pub max_inbound_bytes: usize,
    /// Times a command is retried when another writer changed the complaint first.
    #[arg(long, env = "INTAKE_CONFLICT_RETRIES", default_value_t = 5)]
    pub conflict_retries: u32,
    /// Consume helpdesk messages from NATS.
    #[arg(long, env = "INTAKE_HELPDESK", default_value_t = true, action = clap::ArgAction::Set)]
    pub helpdesk: bool,
    /// Deliveries of a helpdesk message that keeps failing before it is dead-lettered.
    #[arg(long, env = "INTAKE_HELPDESK_MAX_DELIVER", default_value_t = 5)]
    pub helpdesk_max_deliver: i64,
    /// Helpdesk messages one integration may have waiting for intake; past
    /// it, NATS refuses that integration's publishes (and only its).
    #[arg(long, env = "INTAKE_HELPDESK_MAX_PENDING", default_value_t = plaint_bus::DEFAULT_INBOUND_PENDING_PER_INTEGRATION)]
    pub helpdesk_max_pending: i64,
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
    /// Defaults for tests and tools: everything as documented, listening on `addr`.
    pub fn for_tests(nats_url: &str, prefix: &str) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_message_bytes: 256 * 1024,
            max_inbound_bytes: 64 * 1024,
            conflict_retries: 5,
            helpdesk: true,
            helpdesk_max_deliver: 5,
            helpdesk_max_pending: plaint_bus::DEFAULT_INBOUND_PENDING_PER_INTEGRATION,
            log_format: "pretty".to_owned(),
            log: plaint_bus::LogSettings::for_tests(nats_url, prefix),
            supervision: Default::default(),
            access: Default::default(),
            tls: plaint_runtime::tls::TlsSettings::insecure_plaintext(),
        }
    }
}
