//! Prometheus metrics: one process-wide recorder, an HTTP endpoint per
//! service, and a tower layer that counts and times every gRPC call.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use prost::Message;
use tokio::net::TcpListener;

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Batch-size buckets.
const SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder, installed on first use. `None` when another
/// recorder was installed first (metrics are then that recorder's business).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_size".to_owned()), &SIZE_BUCKETS)
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Serves `GET /metrics` in the Prometheus text format until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = handle();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = handle
                .as_ref()
                .map(PrometheusHandle::render)
                .unwrap_or_default();
            async move { body }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The `/<service>/<method>` paths a server answers, so that metric labels
/// come from this fixed set and no caller can mint new time series.
#[derive(Debug, Clone, Default)]
pub struct KnownMethods(Arc<HashSet<String>>);

impl KnownMethods {
    /// The methods of the `services` (full names) described in the encoded
    /// `FileDescriptorSet`s; descriptors that do not decode add nothing.
    pub fn of(descriptor_sets: &[&[u8]], services: &[&str]) -> Self {
        let mut paths = HashSet::new();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                tracing::warn!(
                    "a descriptor set does not decode; its methods are labelled unknown"
                );
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let name = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    if services.contains(&name.as_str()) {
                        paths.extend(
                            service
                                .method
                                .iter()
                                .map(|m| format!("/{name}/{}", m.name())),
                        );
                    }
                }
            }
        }
        Self(Arc::new(paths))
    }

    /// The service and method labels of a request path: its own when known,
    /// `unknown` for both otherwise.
    pub fn labels(&self, path: &str) -> (String, String) {
        if !self.0.contains(path) {
            return ("unknown".to_owned(), "unknown".to_owned());
        }
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default().to_owned();
        let method = parts.next().unwrap_or_default().to_owned();
        (service, method)
    }
}

/// Counts and times every gRPC call: `plaint_grpc_requests_total` by
/// service, method and status code, and `plaint_grpc_request_seconds`.
#[derive(Debug, Clone, Default)]
pub struct GrpcMetricsLayer {
    known: KnownMethods,
}

impl GrpcMetricsLayer {
    /// Labels calls to `known` methods by name, every other call `unknown`.
    pub fn new(known: KnownMethods) -> Self {
        Self { known }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            known: self.known.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around each gRPC service.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    known: KnownMethods,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = self.known.labels(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            // Errors travel as trailers-only responses, with the status in
            // the headers; a call that streamed a body answered OK at first.
            let code = match &result {
                Ok(r) => match r.headers().get("grpc-status").and_then(|v| v.to_str().ok()) {
                    None => "0",
                    // A status code is a small number; anything else is not
                    // worth a series of its own.
                    Some(c) if c.len() <= 2 && c.bytes().all(|b| b.is_ascii_digit()) => c,
                    Some(_) => "invalid",
                }
                .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            metrics::counter!("plaint_grpc_requests_total",
                "service" => service.clone(), "method" => method.clone(), "code" => code)
            .increment(1);
            metrics::histogram!("plaint_grpc_request_seconds",
                "service" => service, "method" => method)
            .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor set with one service `demo.v1.Greeter` and its method `Hello`.
    fn descriptors() -> Vec<u8> {
        use prost_types::{
            FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
        };
        FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("demo.proto".into()),
                package: Some("demo.v1".into()),
                service: vec![ServiceDescriptorProto {
                    name: Some("Greeter".into()),
                    method: vec![MethodDescriptorProto {
                        name: Some("Hello".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn only_methods_of_served_services_keep_their_names() {
        let set = descriptors();
        let known = KnownMethods::of(&[&set], &["demo.v1.Greeter"]);
        assert_eq!(
            known.labels("/demo.v1.Greeter/Hello"),
            ("demo.v1.Greeter".to_owned(), "Hello".to_owned())
        );
        for minted in [
            "/demo.v1.Greeter/Nope",
            "/x/y",
            "/demo.v1.Greeter/Hello/extra",
            "",
            "/",
        ] {
            assert_eq!(
                known.labels(minted),
                ("unknown".to_owned(), "unknown".to_owned()),
                "{minted}"
            );
        }
        // Described but not served: unknown too.
        let not_served = KnownMethods::of(&[&set], &["demo.v1.Other"]);
        assert_eq!(not_served.labels("/demo.v1.Greeter/Hello").0, "unknown");
    }
}
