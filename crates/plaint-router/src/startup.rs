//! Building and running the router: bind first (so port 0 works), serve until
//! the shutdown future resolves, then finish the work in hand and exit.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use plaint_bus::{ConsumerSettings, DeadLetters, EventLog, Names, RetryPolicy, StreamSettings};
use plaint_proto::router::{admin_server::AdminServer, query_server::QueryServer};
use plaint_runtime::WireErrorsLayer;
use plaint_runtime::server::{GrpcServer, Listeners};
use plaint_runtime::tasks::Tasks;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::admin::AdminService;
use crate::config::Config;
use crate::query::QueryService;

use plaint_projection::store::Store;
use plaint_projection::{pairing, projector};

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
        plaint_runtime::server::bound_addr(&self.metrics_listener)
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves: then reports NOT_SERVING, stops
    /// taking work, finishes the decisions and the projection batch in hand,
    /// and flushes NATS. `Err` when the routing consumer or the projector
    /// failed (see [`plaint_runtime::server::GrpcServer::run`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (updates, _) = broadcast::channel(WATCH_BUFFER);
        let retry = RetryPolicy::default().with_budget(self.config.supervision.retry_budget());
        let mut tasks = Tasks::new();
        if self.config.routing {
            let names = self.log.names();
            let settings = ConsumerSettings::new(
                names.consumer(&self.config.routing_consumer),
                names.all_complaints(),
            );
            let (log, dead_letters, stop) = (
                self.log.clone(),
                self.dead_letters.clone(),
                tasks.stop_token(),
            );
            tasks.spawn("routing consumer", async move {
                plaint_routing::run(log, dead_letters, settings, retry, stop).await?;
                Ok(())
            });
        }
        if self.config.projections {
            tasks.spawn(
                "projection lag",
                projector::measure_lag(self.log.clone(), self.store.clone(), tasks.stop_token()),
            );
            // Nothing to wait for when no decision comes from this process
            // (another one may route, but then not in step).
            let hold = if self.config.routing {
                pairing::HOLD
            } else {
                Duration::ZERO
            };
            tasks.spawn(
                "projector",
                projector::run(
                    self.log.clone(),
                    self.store.clone(),
                    self.config.projection_batch,
                    hold,
                    retry,
                    updates.clone(),
                    tasks.stop_token(),
                ),
            );
        }

        let max = self.config.max_message_bytes;
        let query = QueryServer::new(
            QueryService::new(
                self.store.clone(),
                updates,
                Duration::from_millis(self.config.max_consistency_wait_ms),
            )
            .with_stop(tasks.stop_token()),
        )
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let admin =
            AdminServer::new(AdminService::new(self.log.clone()).with_store(self.store.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);

        let listeners = Listeners {
            grpc: self.listener,
            metrics: self.metrics_listener,
        };
        let client = self.client;
        GrpcServer::new(
            "plaint-router",
            plaint_proto::FILE_DESCRIPTOR_SET,
            WireErrorsLayer::without_hints(max),
        )
        .serve(query)
        .serve(admin)
        .run(
            listeners,
            tasks,
            self.config.supervision,
            shutdown,
            async move {
                let _ = client.flush().await;
            },
        )
        .await
    }
}
