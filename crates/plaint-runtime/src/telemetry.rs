//! One telemetry set-up for every binary: JSON logs to stdout, filtered by
//! `RUST_LOG` (default `info`), initialised once.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

static INIT: Once = Once::new();

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for machines.
    Json,
    /// Human-readable lines, for terminals.
    Pretty,
}

impl LogFormat {
    /// `json` or `pretty`; anything else is JSON.
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("pretty") {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        }
    }
}

/// Installs the global subscriber; later calls do nothing.
pub fn init(service: &'static str, format: LogFormat) {
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(true);
        // A second global subscriber (another library's) is not fatal.
        let _ = match format {
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .try_init(),
            LogFormat::Pretty => builder.try_init(),
        };
        tracing::info!(service, "telemetry initialised");
    });
}
