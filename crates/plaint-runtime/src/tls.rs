//! What the gRPC server speaks: TLS (optionally requiring client
//! certificates) or, on a loopback address only and when asked for, plaintext.
//! Checked at start-up, so a service never comes up less protected than its
//! settings say.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// How long a client may take to finish its TLS handshake: a connection
/// that never does would otherwise hold its socket and task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const CERT_ENV: &str = "PLAINT_TLS_CERT_FILE";
const KEY_ENV: &str = "PLAINT_TLS_KEY_FILE";
const CLIENT_CA_ENV: &str = "PLAINT_TLS_CLIENT_CA_FILE";
const INSECURE_ENV: &str = "PLAINT_INSECURE_PLAINTEXT";

/// TLS of the gRPC server, the same settings in both services.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TlsSettings {
    /// PEM file with the certificate chain the gRPC server presents (its own
    /// certificate first). With the key file, the server speaks TLS only.
    /// `plaint-ctl certs init` makes a local set. Default: none.
    #[arg(long, env = CERT_ENV)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file with the private key of that certificate. Default: none.
    #[arg(long, env = KEY_ENV)]
    pub tls_key_file: Option<PathBuf>,
    /// PEM file with the CA certificate that client certificates must chain
    /// to. When set, every client must present one (mutual TLS), the
    /// service's own health check included (it presents the server's
    /// certificate, which must then also be signed by that CA). Default:
    /// none, no client certificates asked for.
    #[arg(long, env = CLIENT_CA_ENV)]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Serve plaintext gRPC when no certificate is set. Refused unless the
    /// gRPC address is a loopback address: credentials would cross the
    /// network in clear.
    #[arg(long, env = INSECURE_ENV, default_value_t = false, action = clap::ArgAction::Set)]
    pub insecure_plaintext: bool,
}

impl TlsSettings {
    /// Plaintext, for tests on loopback.
    pub fn insecure_plaintext() -> Self {
        Self {
            insecure_plaintext: true,
            ..Self::default()
        }
    }

    /// TLS from `dir` as `plaint-ctl certs init` writes it: `server.pem` and
    /// `server.key`, and with `mutual` client certificates signed by
    /// `ca.pem` required.
    pub fn from_dir(dir: &Path, mutual: bool) -> Self {
        Self {
            tls_cert_file: Some(dir.join("server.pem")),
            tls_key_file: Some(dir.join("server.key")),
            tls_client_ca_file: mutual.then(|| dir.join("ca.pem")),
            insecure_plaintext: false,
        }
    }

    /// The server's TLS configuration for listening on `listen`, or `None`
    /// for plaintext; an error naming the settings when they are incomplete,
    /// the files unusable, or plaintext not allowed there.
    pub fn server_config(&self, listen: SocketAddr) -> anyhow::Result<Option<ServerTlsConfig>> {
        let Some((cert_file, key_file)) = self.identity_files()? else {
            if !self.insecure_plaintext {
                bail!(
                    "the gRPC server has no TLS certificate: set {CERT_ENV} and {KEY_ENV} \
                     (`plaint-ctl certs init` makes a local set), or {INSECURE_ENV}=true \
                     for plaintext on a loopback address"
                );
            }
            if !listen.ip().is_loopback() {
                bail!(
                    "{INSECURE_ENV}=true allows plaintext on a loopback address only, and the \
                     gRPC address {listen} is not one: set {CERT_ENV} and {KEY_ENV}"
                );
            }
            return Ok(None);
        };
        let identity = Identity::from_pem(read(cert_file, CERT_ENV)?, read(key_file, KEY_ENV)?);
        let mut config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = &self.tls_client_ca_file {
            config = config.client_ca_root(Certificate::from_pem(read(ca, CLIENT_CA_ENV)?));
        }
        // What the server will build when it starts serving, built now so
        // that a bad file fails the start rather than the first connection.
        tonic::transport::Server::builder()
            .tls_config(config.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "the TLS files ({CERT_ENV}, {KEY_ENV}{}) are unusable",
                    if self.tls_client_ca_file.is_some() {
                        format!(", {CLIENT_CA_ENV}")
                    } else {
                        String::new()
                    }
                )
            })?;
        Ok(Some(config))
    }

    /// What the service's own health check needs to call it: the
    /// certificate it serves and, under mutual TLS, that certificate with its
    /// key to present. `None` when it serves plaintext.
    pub(crate) fn health_client(&self) -> anyhow::Result<Option<HealthTls>> {
        let Some((cert_file, key_file)) = self.identity_files()? else {
            return Ok(None);
        };
        let chain = CertificateDer::pem_file_iter(cert_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading {CERT_ENV} ({})", cert_file.display()))?;
        let served = chain.first().cloned().with_context(|| {
            format!("{CERT_ENV} ({}) holds no certificate", cert_file.display())
        })?;
        let identity = match &self.tls_client_ca_file {
            Some(_) => Some((
                chain,
                PrivateKeyDer::from_pem_file(key_file)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("reading {KEY_ENV} ({})", key_file.display()))?,
            )),
            None => None,
        };
        Ok(Some(HealthTls { served, identity }))
    }

    fn identity_files(&self) -> anyhow::Result<Option<(&PathBuf, &PathBuf)>> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) if self.tls_client_ca_file.is_some() => bail!(
                "{CLIENT_CA_ENV} asks for client certificates, which needs TLS: \
                 set {CERT_ENV} and {KEY_ENV} as well"
            ),
            (None, None) => Ok(None),
            _ => bail!("{CERT_ENV} and {KEY_ENV} go together: set both or neither"),
        }
    }
}

/// The health check's view of the server's TLS.
#[derive(Debug)]
pub(crate) struct HealthTls {
    /// The certificate the server presents: the only one the check trusts.
    pub(crate) served: CertificateDer<'static>,
    /// The chain and key to present when the server asks for a client
    /// certificate.
    pub(crate) identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

fn read(path: &Path, setting: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {setting} ({})", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 50051))
    }

    fn wildcard() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 50051))
    }

    #[test]
    fn plaintext_needs_the_insecure_setting() {
        let err = TlsSettings::default()
            .server_config(loopback())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(CERT_ENV) && err.contains(INSECURE_ENV),
            "{err}"
        );
    }

    #[test]
    fn insecure_plaintext_is_for_loopback_only() {
        let settings = TlsSettings::insecure_plaintext();
        assert!(settings.server_config(loopback()).unwrap().is_none());
        assert!(
            settings
                .server_config(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 1)))
                .unwrap()
                .is_none()
        );
        let err = settings.server_config(wildcard()).unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:50051") && err.contains(INSECURE_ENV),
            "{err}"
        );
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let settings = TlsSettings {
            tls_cert_file: Some("server.pem".into()),
            ..TlsSettings::insecure_plaintext()
        };
        let err = settings.server_config(loopback()).unwrap_err().to_string();
        assert!(err.contains(KEY_ENV), "{err}");
    }

    #[test]
    fn client_certificates_need_tls() {
        let settings = TlsSettings {
            tls_client_ca_file: Some("ca.pem".into()),
            ..TlsSettings::insecure_plaintext()
        };
        let err = settings.server_config(loopback()).unwrap_err().to_string();
        assert!(err.contains(CLIENT_CA_ENV), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let settings = TlsSettings::from_dir(Path::new("/nonexistent-plaint"), false);
        let err = format!("{:#}", settings.server_config(wildcard()).unwrap_err());
        assert!(
            err.contains(CERT_ENV) && err.contains("server.pem"),
            "{err}"
        );
    }
}
