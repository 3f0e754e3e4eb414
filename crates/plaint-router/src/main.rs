//! The router service binary. `plaint-router healthcheck` asks a running
//! instance (configured by the same environment) whether it is serving.

use clap::Parser;
use plaint_router::{Application, Config};
use plaint_runtime::{health, shutdown::shutdown_signal, telemetry};

#[global_allocator]
static ALLOCATOR: plaint_runtime::allocator::Allocator = plaint_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plaint_runtime::allocator::return_freed_memory_promptly();
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let config = Config::parse_from(["plaint-router"]);
        if let Err(e) = health::check(config.grpc_addr, "plaint.router.v1.Query").await {
            eprintln!("unhealthy: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let config = Config::parse();
    let _telemetry = telemetry::init(
        "plaint-router",
        telemetry::LogFormat::parse(&config.log_format),
    );
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "router listening");
    app.run_until_stopped(shutdown_signal()).await
}
