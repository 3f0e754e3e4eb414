//! The `healthcheck` subcommand of both binaries: asks the running service's
//! gRPC health endpoint, for container health checks that need no grpcurl.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long the check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// `Ok` when `service` on `listen_addr` reports SERVING. A wildcard listen
/// address (0.0.0.0) is checked on loopback.
pub async fn check(listen_addr: SocketAddr, service: &str) -> Result<(), String> {
    let mut addr = listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let ask = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let mut client = HealthClient::new(channel);
        let status = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|e| format!("health check failed: {}", e.message()))?
            .into_inner()
            .status;
        if status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(format!("{service} is not serving (status {status})"))
        }
    };
    tokio::time::timeout(TIMEOUT, ask)
        .await
        .map_err(|_| format!("no answer from {addr} within {TIMEOUT:?}"))?
}
