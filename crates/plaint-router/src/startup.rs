//! Building and running the router: bind first (so port 0 works), serve until
//! the shutdown future resolves, then finish the work in hand and exit.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use plaint_bus::{ConsumerSettings, DeadLetters, EventLog, Names, StreamSettings};
use plaint_proto::router::{admin_server::AdminServer, query_server::QueryServer};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::admin::AdminService;
use crate::config::Config;
use crate::query::QueryService;
use crate::store::Store;
use crate::{pairing, projector, routing};

/// How long in-flight work may take after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// Updates buffered for watchers before the slowest is told it missed some.
const WATCH_BUFFER: usize = 1024;

/// A built, not yet running, router.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_listener: TcpListener,
    client: plaint_bus::Client,
    log: EventLog,
    dead_letters: DeadLetters,
    store: Store,
    config: Config,
}

impl Application {
    /// Connects to NATS and PostgreSQL (running migrations), provisions the
    /// stream and binds the gRPC listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let names = Names::new(&config.prefix, &config.stream).map_err(anyhow::Error::msg)?;
        let client = plaint_bus::connect(&config.nats_url, "plaint-router")
            .await
            .context("connecting to NATS")?;
        let settings = StreamSettings {
            replicas: config.stream_replicas,
            duplicate_window: Duration::from_secs(config.duplicate_window_secs),
            ..StreamSettings::default()
        };
        let log = EventLog::open(client.clone(), names, &settings)
            .await
            .context("provisioning the event log")?;
        let dead_letters = DeadLetters::open(log.clone(), &settings)
            .await
            .context("provisioning the dead-letter stream")?;
        let store = Store::connect_with(
            &config.database_url,
            config.db_max_connections,
            config.projection_async_commit,
        )
        .await
        .context("connecting to PostgreSQL and migrating")?;
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding {}", config.grpc_addr))?;
        let local_addr = listener.local_addr()?;
        let metrics_listener = TcpListener::bind(config.metrics_addr)
            .await
            .with_context(|| format!("binding {}", config.metrics_addr))?;
        Ok(Self {
            listener,
            local_addr,
            metrics_listener,
            client,
            log,
            dead_letters,
            store,
            config,
        })
    }

    /// The address of the Prometheus endpoint.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves: then reports NOT_SERVING, stops
    /// taking work, finishes the decision and the projection batch in hand,
    /// and flushes NATS.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<QueryServer<QueryService>>().await;
        health.set_serving::<AdminServer<AdminService>>().await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(plaint_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(plaint_proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let (updates, _) = broadcast::channel(WATCH_BUFFER);
        let stop = CancellationToken::new();
        let metrics_stop = stop.clone();
        let metrics_server = tokio::spawn(plaint_runtime::metrics::serve(
            self.metrics_listener,
            async move { metrics_stop.cancelled().await },
        ));
        let mut tasks = Vec::new();
        if self.config.routing {
            let names = self.log.names();
            let settings = ConsumerSettings::new(
                names.consumer(&self.config.routing_consumer),
                names.all_complaints(),
            );
            tasks.push(tokio::spawn(routing::run(
                self.log.clone(),
                self.dead_letters.clone(),
                settings,
                stop.clone(),
            )));
        }
        if self.config.projections {
            tasks.push(tokio::spawn(projector::measure_lag(
                self.log.clone(),
                self.store.clone(),
                stop.clone(),
            )));
            tasks.push(tokio::spawn(projector::run(
                self.log.clone(),
                self.store.clone(),
                self.config.projection_batch,
                // Nothing to wait for when no decision comes from this
                // process (another one may route, but then not in step).
                if self.config.routing {
                    pairing::HOLD
                } else {
                    Duration::ZERO
                },
                updates.clone(),
                stop.clone(),
            )));
        }

        let max = self.config.max_message_bytes;
        let query = QueryServer::new(
            QueryService::new(
                self.store.clone(),
                updates,
                Duration::from_millis(self.config.max_consistency_wait_ms),
            )
            .with_stop(stop.clone()),
        )
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let admin =
            AdminServer::new(AdminService::new(self.log.clone()).with_store(self.store.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);

        let signalled = CancellationToken::new();
        let server_shutdown = {
            let signalled = signalled.clone();
            let health = health.clone();
            async move {
                shutdown.await;
                health.set_not_serving::<QueryServer<QueryService>>().await;
                health.set_not_serving::<AdminServer<AdminService>>().await;
                signalled.cancel();
            }
        };
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(plaint_runtime::metrics::GrpcMetricsLayer)
                .layer(plaint_runtime::WireErrorsLayer::without_hints(max))
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(query)
                .add_service(admin)
                .serve_with_incoming_shutdown(incoming, server_shutdown),
        );

        // A server that fails before the signal must not wait for it.
        let mut server = server;
        let early = tokio::select! {
            () = signalled.cancelled() => None,
            result = &mut server => Some(result),
        };
        stop.cancel();
        if let Some(result) = early {
            return match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e).context("gRPC server failed"),
                Err(e) => Err(e).context("gRPC server task failed"),
            };
        }
        let drain = async {
            for task in tasks {
                let _ = task.await;
            }
            let served = server.await;
            let _ = metrics_server.await;
            let _ = self.client.flush().await;
            served
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, drain).await {
            Ok(Ok(Ok(()))) => tracing::info!("router stopped cleanly"),
            Ok(Ok(Err(e))) => return Err(e).context("gRPC server failed"),
            Ok(Err(e)) => return Err(e).context("gRPC server task failed"),
            Err(_) => tracing::warn!("in-flight work did not finish within the grace period"),
        }
        Ok(())
    }
}
