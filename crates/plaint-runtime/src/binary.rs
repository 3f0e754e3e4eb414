//! The `main` of both service binaries: `<binary> healthcheck` asks a running
//! instance (configured by the same environment) whether it is serving, for
//! container health checks that need no grpcurl; anything else runs the
//! service until SIGTERM or ctrl-c.

use std::future::Future;
use std::net::SocketAddr;

use crate::server::Listeners;
use crate::tls::TlsSettings;
use crate::{health, shutdown::shutdown_signal, telemetry};

/// A service as its binary (and a test) runs it.
pub trait Service: Sized + Send {
    /// Its settings, from flags and the environment.
    type Config: clap::Parser + Send;
    /// The binary's name, for logs and traces.
    const NAME: &'static str;
    /// The gRPC service the health check asks about.
    const HEALTH_SERVICE: &'static str;

    /// Where `config` says the gRPC server listens, and the log format it
    /// asks for.
    fn basics(config: &Self::Config) -> (SocketAddr, &str);
    /// Its TLS settings, for the health check.
    fn tls(config: &Self::Config) -> &TlsSettings;
    /// Connects, provisions and binds.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;
    /// Where it listens.
    fn listeners(&self) -> &Listeners;
    /// Serves until `shutdown` resolves or a task fails (see
    /// [`GrpcServer::run`](crate::server::GrpcServer::run)).
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// The address the gRPC server listens on.
    fn local_addr(&self) -> SocketAddr {
        self.listeners().grpc_addr()
    }

    /// The address of the Prometheus endpoint.
    fn metrics_addr(&self) -> SocketAddr {
        self.listeners().metrics_addr()
    }
}

/// Runs the binary of `S`.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    crate::allocator::return_freed_memory_promptly();
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let config = <S::Config as clap::Parser>::parse_from([S::NAME]);
        if let Err(e) =
            health::check(S::basics(&config).0, S::HEALTH_SERVICE, S::tls(&config)).await
        {
            eprintln!("unhealthy: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let config = <S::Config as clap::Parser>::parse();
    let _telemetry = telemetry::init(S::NAME, telemetry::LogFormat::parse(S::basics(&config).1));
    let app = S::build(config).await?;
    tracing::info!(
        service = S::NAME,
        addr = %app.local_addr(),
        metrics = %app.metrics_addr(),
        "listening"
    );
    app.run_until_stopped(shutdown_signal()).await
}
