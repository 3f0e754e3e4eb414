//! Trace context crosses process boundaries as a W3C `traceparent`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use plaint_runtime::telemetry::{set_parent, traceparent_of};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_span_continues_the_trace_it_was_handed_and_hands_it_on() {
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = tracing::info_span!("handle");
        set_parent(&span, incoming);
        let outgoing = traceparent_of(&span).expect("a traceparent");
        assert!(
            outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{outgoing}"
        );
        assert_ne!(outgoing, incoming, "a new span id for the child");
    });
}

#[test]
fn without_recorded_traces_there_is_no_traceparent() {
    let span = tracing::info_span!("untraced");
    assert_eq!(traceparent_of(&span), None);
}
