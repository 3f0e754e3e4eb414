//! The intake service binary. `plaint-intake healthcheck` asks a running
//! instance (configured by the same environment) whether it is serving.

use clap::Parser;
use plaint_intake::{Application, Config};
use plaint_runtime::{health, shutdown::shutdown_signal, telemetry};

#[global_allocator]
static ALLOCATOR: plaint_runtime::allocator::Allocator = plaint_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plaint_runtime::allocator::return_freed_memory_promptly();
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let config = Config::parse_from(["plaint-intake"]);
        if let Err(e) = health::check(config.grpc_addr, "plaint.intake.v1.Intake").await {
            eprintln!("unhealthy: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let config = Config::parse();
    let _telemetry = telemetry::init(
        "plaint-intake",
        telemetry::LogFormat::parse(&config.log_format),
    );
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "intake listening");
    app.run_until_stopped(shutdown_signal()).await
}
