//! Building and running the service: bind first (so port 0 works), serve until
//! the shutdown future resolves, then drain.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use plaint_access::Access;
use plaint_bus::{ConsumerSettings, Helpdesk, Outbound, RetryPolicy};
use plaint_proto::intake::{intake_admin_server::IntakeAdminServer, intake_server::IntakeServer};
use plaint_runtime::binary::Service;
use plaint_runtime::server::{GrpcServer, Listeners};
use plaint_runtime::tasks::Tasks;
use plaint_runtime::tls::TlsSettings;
use tonic::transport::ServerTlsConfig;

use crate::config::Config;
use crate::grpc::{AdminService, IntakeService};
use crate::helpdesk::{self, HelpdeskSettings};
use crate::service::Intake;

/// A built, not yet running, intake service.
#[derive(Debug)]
pub struct Application {
    listeners: Listeners,
    client: plaint_bus::Client,
    core: Intake,
    helpdesk: Helpdesk,
    outbound: Outbound,
    access: Access,
    tls: Option<ServerTlsConfig>,
    config: Config,
}

impl Service for Application {
    type Config = Config;
    const NAME: &'static str = "plaint-intake";
    const HEALTH_SERVICE: &'static str = "plaint.intake.v1.Intake";

    fn basics(config: &Config) -> (SocketAddr, &str) {
        (config.grpc_addr, &config.log_format)
    }

    fn tls(config: &Config) -> &TlsSettings {
        &config.tls
    }

    fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// Connects to NATS, provisions the streams and binds the listeners.
    async fn build(config: Config) -> anyhow::Result<Self> {
        // Boxed: the built future is large, and every caller would carry it
        // inline (test threads have small stacks in debug builds).
        Box::pin(Self::assemble(config)).await
    }

    /// Serves until `shutdown` resolves: then reports NOT_SERVING, stops taking
    /// work, finishes in-flight requests and the helpdesk message in hand, and
    /// flushes NATS. `Err` when the helpdesk consumer failed (see
    /// [`plaint_runtime::server::GrpcServer::run`]).
    async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let max = self.config.max_message_bytes;
        let intake = IntakeServer::new(IntakeService::new(self.core.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let admin = IntakeAdminServer::new(AdminService::new(
            self.helpdesk.clone(),
            self.core.log().clone(),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max.max(crate::grpc::MAX_ADMIN_RESPONSE_BYTES));

        let mut tasks = Tasks::new();
        let retry = RetryPolicy::default().with_budget(self.config.supervision.retry_budget());
        self.access
            .follow(&mut tasks, self.core.log().clone(), retry);
        if self.config.helpdesk {
            let mut consumer = ConsumerSettings::new(
                self.helpdesk_consumer_name(),
                format!("{}.helpdesk.inbound.>", self.config.log.prefix),
            );
            consumer.max_deliver = self.config.helpdesk_max_deliver;
            consumer.batch = 64;
            let settings = HelpdeskSettings {
                consumer,
                max_payload_bytes: self.config.max_inbound_bytes,
                retry,
            };
            let (core, helpdesk, outbound, stop) = (
                self.core.clone(),
                self.helpdesk.clone(),
                self.outbound.clone(),
                tasks.stop_token(),
            );
            tasks.spawn("helpdesk consumer", async move {
                helpdesk::run(core, helpdesk, outbound, settings, stop).await?;
                Ok(())
            });
        }

        let client = self.client;
        GrpcServer::new(
            Self::NAME,
            plaint_proto::FILE_DESCRIPTOR_SET,
            crate::size_hints::wire_errors_layer(max),
            self.access.gate(),
        )
        .tls(self.tls)
        .limits(self.access.limits())
        .serve(intake)
        .serve(admin)
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
    fn helpdesk_consumer_name(&self) -> String {
        format!("{}_helpdesk", self.config.log.stream)
    }
}

impl Application {
    /// Connects to NATS, provisions the streams and binds the listeners.
    async fn assemble(config: Config) -> anyhow::Result<Self> {
        let tls = config.tls.server_config(config.grpc_addr)?;
        let (client, log) = plaint_bus::open(&config.log, Self::NAME).await?;
        let streams = plaint_bus::StreamSettings {
            inbound_pending_per_integration: config.helpdesk_max_pending,
            ..config.log.stream_settings()
        };
        let helpdesk = Helpdesk::open(log.clone(), &streams)
            .await
            .context("provisioning the helpdesk streams")?;
        let outbound = Outbound::open(log.clone(), config.log.outbound_settings())
            .await
            .context("provisioning the outbound helpdesk stream")?;
        let access = Access::load(&config.access, &log).await?;
        let listeners = Listeners::bind(config.grpc_addr, config.metrics_addr).await?;
        Ok(Self {
            listeners,
            client,
            core: Intake::new(log, config.conflict_retries),
            helpdesk,
            outbound,
            access,
            tls,
            config,
        })
    }
}
