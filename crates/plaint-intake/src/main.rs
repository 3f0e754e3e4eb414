//! The intake service binary.

use clap::Parser;
use plaint_intake::{Application, Config};
use plaint_runtime::{shutdown::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(
        "plaint-intake",
        telemetry::LogFormat::parse(&config.log_format),
    );
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "intake listening");
    app.run_until_stopped(shutdown_signal()).await
}
