//! One telemetry set-up for every binary: JSON logs to stdout, filtered by
//! `RUST_LOG` (default `info`), and OpenTelemetry traces exported over OTLP
//! (HTTP) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Initialised once.

use std::collections::HashMap;
use std::sync::Once;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static INIT: Once = Once::new();
/// Whether spans are exported: per-event spans are only worth making then.
static TRACES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether traces are exported (OTLP is configured).
pub fn traces_enabled() -> bool {
    TRACES.load(std::sync::atomic::Ordering::Relaxed)
}

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

/// Keeps the trace exporter alive; dropping it flushes the spans still buffered.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.provider.take().map(|p| p.shutdown()) {
            eprintln!("trace exporter did not shut down cleanly: {e}");
        }
    }
}

fn otlp_provider(service: &'static str) -> Option<SdkTracerProvider> {
    std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.is_empty())?;
    // The exporter reads the endpoint and the other OTEL_* settings itself.
    match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                )
                .build(),
        ),
        Err(e) => {
            eprintln!("OpenTelemetry export disabled: {e}");
            None
        }
    }
}

/// Installs the global subscriber (and the trace exporter when configured);
/// later calls do nothing and return an empty guard.
pub fn init(service: &'static str, format: LogFormat) -> TelemetryGuard {
    let mut guard = TelemetryGuard::default();
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = match format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .boxed(),
            LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        };
        let provider = otlp_provider(service);
        let traces = provider
            .as_ref()
            .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
        // A second global subscriber (another library's) is not fatal.
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(traces)
            .try_init();
        tracing::info!(
            service,
            traces = provider.is_some(),
            "telemetry initialised"
        );
        TRACES.store(provider.is_some(), std::sync::atomic::Ordering::Relaxed);
        guard.provider = provider;
    });
    guard
}

/// The W3C `traceparent` of `span`, when traces are recorded.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace a `traceparent` names (from a gRPC call
/// or a message header), so one trace follows a complaint across services.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}
