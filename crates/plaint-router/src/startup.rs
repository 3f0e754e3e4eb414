//! Building and running the router: bind first (so port 0 works), serve until
//! the shutdown future resolves, then finish the work in hand and exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use plaint_access::Access;
use plaint_bus::{DeadLetters, EventLog, Leases, Outbound, Reading, RetryPolicy, Timers};
use plaint_proto::access::access_server::AccessServer;
use plaint_proto::router::{admin_server::AdminServer, query_server::QueryServer};
use plaint_runtime::WireErrorsLayer;
use plaint_runtime::binary::Service;
use plaint_runtime::server::{GrpcServer, Listeners};
use plaint_runtime::tasks::Tasks;
use plaint_runtime::tls::TlsSettings;
use tokio::sync::broadcast;
use tonic::transport::ServerTlsConfig;

use crate::admin::AdminService;
use crate::config::Config;
use crate::query::QueryService;

use plaint_projection::store::Store;
use plaint_projection::{pairing, projector, relay};

/// Updates buffered for watchers before the slowest is told it missed some.
const WATCH_BUFFER: usize = 1024;
/// The lease whose holder runs the projector.
pub const PROJECTOR_LEASE: &str = "projector";

/// How this replica names itself as a lease holder, unique among running
/// replicas: `ROUTER_REPLICA_NAME`, else the host name when it is a
/// container's (kept across restarts of the container, so a restarted
/// replica takes its lease back at once), else the host and the process.
fn replica_name(configured: Option<&str>) -> String {
    if let Some(name) = configured.filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() && std::path::Path::new("/.dockerenv").exists() => host,
        Ok(host) if !host.is_empty() => format!("{host}-{}", std::process::id()),
        _ => format!("router-{}", std::process::id()),
    }
}

/// A built, not yet running, router.
#[derive(Debug)]
pub struct Application {
    listeners: Listeners,
    client: plaint_bus::Client,
    log: EventLog,
    dead_letters: DeadLetters,
    store: Store,
    leases: Leases,
    outbound: Outbound,
    timers: Timers,
    access: Access,
    tls: Option<ServerTlsConfig>,
    config: Config,
}

impl Service for Application {
    type Config = Config;
    const NAME: &'static str = "plaint-router";
    const HEALTH_SERVICE: &'static str = "plaint.router.v1.Query";

    fn basics(config: &Config) -> (SocketAddr, &str) {
        (config.grpc_addr, &config.log_format)
    }

    fn tls(config: &Config) -> &TlsSettings {
        &config.tls
    }

    fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// Connects to NATS and PostgreSQL (running migrations), provisions the
    /// streams and binds the listeners.
    async fn build(config: Config) -> anyhow::Result<Self> {
        // Boxed: the built future is large, and every caller would carry it
        // inline (test threads have small stacks in debug builds).
        Box::pin(Self::assemble(config)).await
    }

    /// Serves until `shutdown` resolves: then reports NOT_SERVING, stops
    /// taking work, finishes the decisions and the projection batch in hand,
    /// and flushes NATS. `Err` when the routing consumer or the projector
    /// failed (see [`plaint_runtime::server::GrpcServer::run`]).
    async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (updates, _) = broadcast::channel(WATCH_BUFFER);
        let retry = RetryPolicy::default().with_budget(self.config.supervision.retry_budget());
        let mut tasks = Tasks::new();
        self.access.follow(&mut tasks, self.log.clone(), retry);
        if self.config.routing {
            let names = self.log.names();
            let settings = plaint_routing::consumer_settings(
                names,
                names.consumer(&self.config.routing_consumer),
            );
            let (log, durable, stop) = (
                self.log.clone(),
                settings.durable.clone(),
                tasks.stop_token(),
            );
            tasks.spawn("routing backlog", async move {
                plaint_routing::measure_backlog(log, durable, "plaint_routing_pending", stop).await;
                Ok(())
            });
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
        if self.config.helpdesk_updates {
            // The integration's own ticket id is sealed in the log (it may
            // lead to a person); the integration gets it back in clear.
            let (leases, log, outbound, stop) = (
                self.leases.clone(),
                self.log.clone().reading(Reading::Opened),
                self.outbound.clone(),
                tasks.stop_token(),
            );
            let (pending, pending_stop) = (self.outbound.clone(), tasks.stop_token());
            tasks.spawn("outbound pending", async move {
                crate::helpdesk_updates::measure_pending(pending, pending_stop).await;
                Ok(())
            });
            let holder = replica_name(self.config.replica_name.as_deref());
            tasks.spawn("helpdesk updates", async move {
                plaint_bus::run_while_held(
                    &leases,
                    crate::helpdesk_updates::HELPDESK_UPDATES_LEASE,
                    &holder,
                    &stop,
                    |mine| crate::helpdesk_updates::run(log.clone(), outbound.clone(), retry, mine),
                )
                .await?;
                Ok(())
            });
        }
        if self.config.sla_timers {
            let (log, timers, stop) = (self.log.clone(), self.timers.clone(), tasks.stop_token());
            tasks.spawn("service-level clocks", async move {
                crate::sla::clocks::run(log, timers, retry, stop).await?;
                Ok(())
            });
            let (log, timers, stop) = (self.log.clone(), self.timers.clone(), tasks.stop_token());
            tasks.spawn("service-level timers", async move {
                crate::sla::breaches::run(log, timers, retry, stop).await?;
                Ok(())
            });
            let (log, stop) = (self.log.clone(), tasks.stop_token());
            let durable = crate::sla::clocks::consumer_settings(log.names()).durable;
            tasks.spawn("clocks backlog", async move {
                plaint_routing::measure_backlog(log, durable, "plaint_sla_clocks_pending", stop)
                    .await;
                Ok(())
            });
            let (timers, stop) = (self.timers.clone(), tasks.stop_token());
            tasks.spawn("timers pending", async move {
                crate::sla::breaches::measure_pending(timers, stop).await;
                Ok(())
            });
        }
        // The read models hold personal fields: they read them opened.
        let opened = self.log.clone().reading(Reading::Opened);
        // Whether this replica runs the projector now (it holds the lease).
        let projecting = Arc::new(AtomicBool::new(false));
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
            // One replica projects at a time (a lease); the others serve
            // queries from the same tables and take over within the lease's
            // time to live when it dies.
            let (leases, store, batch, stop) = (
                self.leases.clone(),
                self.store.clone(),
                self.config.projection_batch,
                tasks.stop_token(),
            );
            let holder = replica_name(self.config.replica_name.as_deref());
            let (opened, updates, projecting) =
                (opened.clone(), updates.clone(), projecting.clone());
            tasks.spawn("projector", async move {
                plaint_bus::run_while_held(&leases, PROJECTOR_LEASE, &holder, &stop, |mine| {
                    let projecting = projecting.clone();
                    let run = projector::run(
                        opened.clone(),
                        store.clone(),
                        batch,
                        hold,
                        retry,
                        updates.clone(),
                        mine,
                    );
                    async move {
                        projecting.store(true, Ordering::Relaxed);
                        let ran = run.await;
                        projecting.store(false, Ordering::Relaxed);
                        ran
                    }
                })
                .await
            });
        }
        // While another replica projects, this one's watchers hear its work
        // from the tables.
        let checkpoint = self.store.projected_sequence().await.ok();
        tasks.spawn(
            "watch relay",
            relay::relay(
                self.store.clone(),
                updates.clone(),
                projecting,
                checkpoint,
                tasks.stop_token(),
            ),
        );

        let max = self.config.max_message_bytes;
        let query = QueryServer::new(
            QueryService::new(
                self.store.clone(),
                updates,
                Duration::from_millis(self.config.max_consistency_wait_ms),
                self.log.data_keys().shared_pseudonyms(),
            )
            .with_log(opened.clone())
            .with_stop(tasks.stop_token()),
        )
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let admin = AdminServer::new(AdminService::new(opened).with_store(self.store.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);

        let keys = AccessServer::new(crate::keys::AccessService::new(
            self.log.clone(),
            self.access.ring().clone(),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);

        let client = self.client;
        GrpcServer::new(
            Self::NAME,
            plaint_proto::FILE_DESCRIPTOR_SET,
            WireErrorsLayer::without_hints(max),
            self.access.gate(),
        )
        .tls(self.tls)
        .limits(self.access.limits())
        .serve(query)
        .serve(admin)
        .serve(keys)
        .run(
            self.listeners,
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

impl Application {
    /// Connects to NATS and PostgreSQL (running migrations), provisions the
    /// streams and binds the listeners.
    async fn assemble(config: Config) -> anyhow::Result<Self> {
        let tls = config.tls.server_config(config.grpc_addr)?;
        let (client, log) = plaint_bus::open(&config.log, Self::NAME).await?;
        let dead_letters = DeadLetters::open(log.clone(), &config.log.stream_settings())
            .await
            .context("provisioning the dead-letter stream")?;
        let store = Store::connect_with(
            &config.database_url,
            config.db_max_connections,
            config.projection_async_commit,
        )
        .await
        .context("connecting to PostgreSQL and migrating")?;
        let leases = log
            .leases(plaint_bus::lease::DEFAULT_TTL)
            .await
            .context("provisioning the leases")?;
        let outbound = Outbound::open(log.clone(), config.log.outbound_settings())
            .await
            .context("provisioning the outbound helpdesk stream")?;
        let timers = Timers::open(log.clone(), plaint_bus::timers::DEFAULT_FIRED_KEPT)
            .await
            .context("provisioning the service-level timers")?;
        let access = Access::load(&config.access, &log).await?;
        let listeners = Listeners::bind(config.grpc_addr, config.metrics_addr).await?;
        Ok(Self {
            listeners,
            client,
            log,
            outbound,
            timers,
            dead_letters,
            store,
            leases,
            access,
            tls,
            config,
        })
    }
}
