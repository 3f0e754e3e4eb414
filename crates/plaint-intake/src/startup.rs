//! Building and running the service: bind first (so port 0 works), serve until
//! the shutdown future resolves, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use plaint_bus::{ConsumerSettings, EventLog, Helpdesk, Names, StreamSettings};
use plaint_proto::intake::{intake_admin_server::IntakeAdminServer, intake_server::IntakeServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::config::Config;
use crate::grpc::{AdminService, IntakeService};
use crate::helpdesk::{self, HelpdeskSettings};
use crate::service::Intake;

/// How long in-flight work may take after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A built, not yet running, intake service.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_listener: TcpListener,
    client: plaint_bus::Client,
    core: Intake,
    helpdesk: Helpdesk,
    config: Config,
}

impl Application {
    /// Connects to NATS, provisions the streams and binds the gRPC listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let names = Names::new(&config.prefix, &config.stream).map_err(anyhow::Error::msg)?;
        let client = plaint_bus::connect(&config.nats_url, "plaint-intake")
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
        let helpdesk = Helpdesk::open(log.clone(), &settings)
            .await
            .context("provisioning the helpdesk streams")?;
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
            core: Intake::new(log, config.conflict_retries),
            helpdesk,
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

    /// Serves until `shutdown` resolves: then reports NOT_SERVING, stops taking
    /// work, finishes in-flight requests and the helpdesk message in hand, and
    /// flushes NATS.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<IntakeServer<IntakeService>>().await;
        health
            .set_serving::<IntakeAdminServer<AdminService>>()
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(plaint_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(plaint_proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let max = self.config.max_message_bytes;
        let intake = IntakeServer::new(IntakeService::new(self.core.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let admin = IntakeAdminServer::new(AdminService::new(self.helpdesk.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max.max(crate::grpc::MAX_ADMIN_RESPONSE_BYTES));

        let helpdesk_consumer = self.helpdesk_consumer_name();
        let stop = CancellationToken::new();
        let metrics_stop = stop.clone();
        let metrics_server = tokio::spawn(plaint_runtime::metrics::serve(
            self.metrics_listener,
            async move { metrics_stop.cancelled().await },
        ));
        let helpdesk_task = self.config.helpdesk.then(|| {
            let mut consumer = ConsumerSettings::new(
                helpdesk_consumer,
                format!("{}.helpdesk.inbound.>", self.config.prefix),
            );
            consumer.max_deliver = self.config.helpdesk_max_deliver;
            consumer.batch = 64;
            let settings = HelpdeskSettings {
                consumer,
                max_payload_bytes: self.config.max_inbound_bytes,
            };
            tokio::spawn(helpdesk::run(
                self.core.clone(),
                self.helpdesk.clone(),
                settings,
                stop.clone(),
            ))
        });

        let signalled = CancellationToken::new();
        let server_shutdown = {
            let signalled = signalled.clone();
            let health = health.clone();
            async move {
                shutdown.await;
                health
                    .set_not_serving::<IntakeServer<IntakeService>>()
                    .await;
                health
                    .set_not_serving::<IntakeAdminServer<AdminService>>()
                    .await;
                signalled.cancel();
            }
        };
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let server = tonic::transport::Server::builder()
            .layer(plaint_runtime::metrics::GrpcMetricsLayer)
            .layer(crate::size_hints::wire_errors_layer(max))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(intake)
            .add_service(admin)
            .serve_with_incoming_shutdown(incoming, server_shutdown);
        let server = tokio::spawn(server);

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
            if let Some(task) = helpdesk_task {
                let _ = task.await;
            }
            let served = server.await;
            let _ = metrics_server.await;
            let _ = self.client.flush().await;
            served
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, drain).await {
            Ok(Ok(Ok(()))) => tracing::info!("intake stopped cleanly"),
            Ok(Ok(Err(e))) => return Err(e).context("gRPC server failed"),
            Ok(Err(e)) => return Err(e).context("gRPC server task failed"),
            Err(_) => tracing::warn!("in-flight work did not finish within the grace period"),
        }
        Ok(())
    }

    fn helpdesk_consumer_name(&self) -> String {
        format!("{}_helpdesk", self.config.stream)
    }
}
