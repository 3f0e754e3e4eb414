//! The one start-up path of both services: a gRPC server with health, server
//! reflection of what it serves, per-call metrics and a graceful drain,
//! beside the process's supervised background tasks and its metrics endpoint.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::gate::{Gate, GateLayer};
use crate::limits::CallLimits;
use crate::metrics::{GrpcMetricsLayer, KnownMethods};
use crate::tasks::Tasks;
use crate::wire_errors::WireErrorsLayer;

/// The services every server answers beside its own.
const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// How long stopping may take: in-flight calls, the work in hand of every
/// task, and the metrics endpoint.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// How long the last writes may take to reach NATS after the drain.
pub const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// A gRPC server being put together: the services it serves and the
/// descriptors that describe them.
#[derive(Debug)]
pub struct GrpcServer {
    service: &'static str,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptors: &'static [u8],
    wire_errors: WireErrorsLayer,
    gate: Arc<dyn Gate>,
    limits: CallLimits,
}

/// Where a server listens.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC listener.
    pub grpc: TcpListener,
    /// The Prometheus endpoint's listener.
    pub metrics: TcpListener,
}

impl Listeners {
    /// Binds both, before anything is served (so port 0 works and a taken
    /// port fails the start).
    pub async fn bind(grpc: SocketAddr, metrics: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            grpc: TcpListener::bind(grpc)
                .await
                .with_context(|| format!("binding {grpc}"))?,
            metrics: TcpListener::bind(metrics)
                .await
                .with_context(|| format!("binding {metrics}"))?,
        })
    }

    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        bound_addr(&self.grpc)
    }

    /// The Prometheus endpoint's address.
    pub fn metrics_addr(&self) -> SocketAddr {
        bound_addr(&self.metrics)
    }
}

/// How the background tasks of a service retry and fail: the same settings
/// in both services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Supervision {
    /// How long a background task (a consumer, the projector) keeps retrying
    /// while NATS or PostgreSQL stays unreachable before it gives up, and the
    /// process reports NOT_SERVING and exits non-zero for its orchestrator to
    /// restart it.
    #[arg(long, env = "PLAINT_RETRY_BUDGET_SECS", default_value_t = 120)]
    pub retry_budget_secs: u64,
    /// How long a process whose task failed keeps answering NOT_SERVING
    /// before it drains and exits, so that health checks see it go.
    #[arg(long, env = "PLAINT_FAILURE_GRACE_MS", default_value_t = 2000)]
    pub failure_grace_ms: u64,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            retry_budget_secs: 120,
            failure_grace_ms: 2000,
        }
    }
}

impl Supervision {
    /// How long a task may keep failing before it gives up.
    pub fn retry_budget(&self) -> Duration {
        Duration::from_secs(self.retry_budget_secs)
    }

    fn failure_grace(&self) -> Duration {
        Duration::from_millis(self.failure_grace_ms)
    }
}

impl GrpcServer {
    /// The server of the process `service` (for logs), whose gRPC services
    /// are described in `descriptors` (an encoded `FileDescriptorSet`), and
    /// whose transport refusals (a request over the size limit, bytes that do
    /// not decode) `wire_errors` words for the caller, and whose every call
    /// `gate` admits or refuses first.
    pub fn new(
        service: &'static str,
        descriptors: &'static [u8],
        wire_errors: WireErrorsLayer,
        gate: Arc<dyn Gate>,
    ) -> Self {
        Self {
            service,
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptors,
            wire_errors,
            gate,
            limits: CallLimits::default(),
        }
    }

    /// Limits every caller's calls, and all of them, to `limits` (the
    /// defaults of [`CallLimits`] otherwise).
    pub fn limits(mut self, limits: &CallLimits) -> Self {
        self.limits = limits.clone();
        self
    }

    /// Serves `service`: routed, reported by health, listed by reflection.
    pub fn serve<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.names.push(S::NAME);
        self
    }

    /// Serves until `shutdown` resolves or a task fails, then drains.
    ///
    /// On `shutdown`: NOT_SERVING, no new calls, in-flight calls and every
    /// task's work in hand finished within [`SHUTDOWN_GRACE`]; `Ok`.
    /// On a task's failure: the cause logged, NOT_SERVING for the failure
    /// grace of `supervision`, then the same drain; `Err`, so the process
    /// exits non-zero and its orchestrator restarts it.
    /// Either way `last_writes` (a flush of the NATS connection) ends it,
    /// within [`FLUSH_WAIT`].
    pub async fn run(
        self,
        listeners: Listeners,
        tasks: Tasks,
        supervision: Supervision,
        shutdown: impl Future<Output = ()> + Send + 'static,
        last_writes: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let service = self.service;
        let outcome = self
            .serve_and_drain(listeners, tasks, supervision, shutdown)
            .await;
        if tokio::time::timeout(FLUSH_WAIT, last_writes).await.is_err() {
            tracing::warn!("the last writes did not reach NATS within {FLUSH_WAIT:?}");
        }
        if outcome.is_ok() {
            tracing::info!(service, "stopped cleanly");
        }
        outcome
    }

    async fn serve_and_drain(
        self,
        listeners: Listeners,
        mut tasks: Tasks,
        supervision: Supervision,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        set_status(&health, &self.names, ServingStatus::Serving).await;
        let mut served = self.names.clone();
        served.push(HEALTH);
        served.extend(REFLECTION);
        let (reflection_v1, reflection_v1alpha) = reflection(self.descriptors, &served)?;
        let known = KnownMethods::of(
            &[self.descriptors, tonic_health::pb::FILE_DESCRIPTOR_SET],
            &served,
        );

        let mut routes = self.routes;
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        let metrics_stop = tasks.stop_token();
        tasks.spawn("metrics endpoint", async move {
            crate::metrics::serve(listeners.metrics, metrics_stop.cancelled_owned())
                .await
                .context("serving metrics")
        });

        let drain = CancellationToken::new();
        let incoming = TcpIncoming::from(listeners.grpc).with_nodelay(Some(true));
        let mut server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(GrpcMetricsLayer::new(known))
                // Inside the metrics, so that they count the rewritten code.
                .layer(self.wire_errors)
                .layer(GateLayer::new(self.gate, &self.limits))
                .add_routes(routes.routes())
                .serve_with_incoming_shutdown(incoming, drain.clone().cancelled_owned()),
        );

        let failed = tokio::select! {
            () = shutdown => None,
            failure = tasks.first_failure() => Some(failure),
            ended = &mut server => {
                // The server cannot end before it is told to: it failed.
                let _ = tasks.stop_and_join().await;
                return match ended {
                    Ok(Ok(())) => Err(anyhow::anyhow!("the gRPC server stopped by itself")),
                    Ok(Err(e)) => Err(e).context("gRPC server failed"),
                    Err(e) => Err(e).context("gRPC server task failed"),
                };
            }
        };
        set_status(&health, &self.names, ServingStatus::NotServing).await;
        if let Some(failure) = &failed {
            tracing::error!(
                task = failure.task,
                error = format!("{:#}", failure.cause),
                grace_ms = supervision.failure_grace_ms,
                "a background task failed; the process reports NOT_SERVING and exits"
            );
            tokio::time::sleep(supervision.failure_grace()).await;
        }
        drain.cancel();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            let stopped = tasks.stop_and_join().await;
            (stopped, server.await)
        })
        .await;
        let mut outcome = match failed {
            Some(failure) => Err(anyhow::Error::new(failure)),
            None => Ok(()),
        };
        match drained {
            Ok((stopped, served)) => {
                for f in stopped {
                    tracing::error!(
                        task = f.task,
                        error = format!("{:#}", f.cause),
                        "a background task failed while stopping"
                    );
                    if outcome.is_ok() {
                        outcome = Err(anyhow::Error::new(f));
                    }
                }
                match served {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "gRPC server failed while draining"),
                    Err(e) => tracing::error!(error = %e, "gRPC server task failed while draining"),
                }
            }
            Err(_) => tracing::warn!("in-flight work did not finish within the grace period"),
        }
        outcome
    }
}

/// The reflection services (v1 and v1alpha), listing only `served`.
fn reflection(
    descriptors: &'static [u8],
    served: &[&'static str],
) -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let configure = || {
        served.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(descriptors)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            |builder, name| builder.with_service_name(*name),
        )
    };
    Ok((
        configure().build_v1().context("building reflection v1")?,
        configure()
            .build_v1alpha()
            .context("building reflection v1alpha")?,
    ))
}

async fn set_status(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    // "" is the server as a whole, which generic clients ask for.
    health.set_service_status("", status).await;
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

/// The address a listener is bound to, for logs and tests; the unspecified
/// address when the socket cannot say.
fn bound_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}
