//! The router service binary.

use clap::Parser;
use plaint_router::{Application, Config};
use plaint_runtime::{shutdown::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(
        "plaint-router",
        telemetry::LogFormat::parse(&config.log_format),
    );
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "router listening");
    app.run_until_stopped(shutdown_signal()).await
}
