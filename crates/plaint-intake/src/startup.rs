//! Building and running the service: bind first (so port 0 works), serve until
//! the shutdown future resolves, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use plaint_bus::{ConsumerSettings, EventLog, Helpdesk, Names, RetryPolicy, StreamSettings};
use plaint_proto::intake::{intake_admin_server::IntakeAdminServer, intake_server::IntakeServer};
use plaint_runtime::server::{GrpcServer, Listeners};
use plaint_runtime::tasks::Tasks;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::grpc::{AdminService, IntakeService};
use crate::helpdesk::{self, HelpdeskSettings};
use crate::service::Intake;

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
        plaint_runtime::server::bound_addr(&self.metrics_listener)
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves: then reports NOT_SERVING, stops taking
    /// work, finishes in-flight requests and the helpdesk message in hand, and
    /// flushes NATS. `Err` when the helpdesk consumer failed (see
    /// [`plaint_runtime::server::GrpcServer::run`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let max = self.config.max_message_bytes;
        let intake = IntakeServer::new(IntakeService::new(self.core.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let admin = IntakeAdminServer::new(AdminService::new(self.helpdesk.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max.max(crate::grpc::MAX_ADMIN_RESPONSE_BYTES));

        let mut tasks = Tasks::new();
        if self.config.helpdesk {
            let mut consumer = ConsumerSettings::new(
                self.helpdesk_consumer_name(),
                format!("{}.helpdesk.inbound.>", self.config.prefix),
            );
            consumer.max_deliver = self.config.helpdesk_max_deliver;
            consumer.batch = 64;
            let settings = HelpdeskSettings {
                consumer,
                max_payload_bytes: self.config.max_inbound_bytes,
                retry: RetryPolicy::default().with_budget(self.config.supervision.retry_budget()),
            };
            let (core, helpdesk, stop) =
                (self.core.clone(), self.helpdesk.clone(), tasks.stop_token());
            tasks.spawn("helpdesk consumer", async move {
                helpdesk::run(core, helpdesk, settings, stop).await?;
                Ok(())
            });
        }

        let listeners = Listeners {
            grpc: self.listener,
            metrics: self.metrics_listener,
        };
        let client = self.client;
        GrpcServer::new(
            "plaint-intake",
            plaint_proto::FILE_DESCRIPTOR_SET,
            crate::size_hints::wire_errors_layer(max),
        )
        .serve(intake)
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

    fn helpdesk_consumer_name(&self) -> String {
        format!("{}_helpdesk", self.config.stream)
    }
}
