//! Where a client finds its credential and how it verifies the servers.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::{Authed, Bearer};

/// The environment variable that may hold the credential itself. Not a flag:
/// a secret on a command line is visible to every user of the machine.
pub const API_KEY_ENV: &str = "PLAINT_API_KEY";

/// Where `scripts/demo.sh` keeps the local admin key; used when neither the
/// file setting nor the variable is given and the file exists.
pub const DEFAULT_API_KEY_FILE: &str = ".local/keys/admin.key";

/// Where `scripts/demo.sh` keeps its local CA (`plaint-ctl certs init`);
/// trusted for `https://` URLs when no CA file is given and it exists.
pub const DEFAULT_TLS_CA_FILE: &str = ".local/tls/ca.pem";
/// The local client certificate, presented when none is given and it exists
/// with its key.
pub const DEFAULT_TLS_CLIENT_CERT_FILE: &str = ".local/tls/client.pem";
/// The key of the local client certificate.
pub const DEFAULT_TLS_CLIENT_KEY_FILE: &str = ".local/tls/client.key";

/// How a client authenticates to the services, and verifies them.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ClientSettings {
    /// A file holding the API key or JWT to present. Alternatively the
    /// credential itself in the `PLAINT_API_KEY` environment variable. Without
    /// either, `.local/keys/admin.key` when it exists, else no credential.
    #[arg(long, global = true, env = "PLAINT_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// PEM file with the CA certificate that signed the services'
    /// certificates, for `https://` URLs. Default: `.local/tls/ca.pem` when
    /// it exists, else the system's trusted roots.
    #[arg(long, global = true, env = "PLAINT_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file with the client certificate to present to services that
    /// require one (mutual TLS). Default: `.local/tls/client.pem` when it
    /// exists with its key, else none.
    #[arg(long, global = true, env = "PLAINT_TLS_CLIENT_CERT_FILE")]
    pub tls_client_cert_file: Option<PathBuf>,
    /// PEM file with the key of that client certificate. Default:
    /// `.local/tls/client.key` when both local files exist.
    #[arg(long, global = true, env = "PLAINT_TLS_CLIENT_KEY_FILE")]
    pub tls_client_key_file: Option<PathBuf>,
    /// The name the services' certificates must carry. Default: the host of
    /// the URL.
    #[arg(long, global = true, env = "PLAINT_TLS_DOMAIN")]
    pub tls_domain: Option<String>,
}

impl ClientSettings {
    /// The credential to present, from the first source that has one.
    pub fn bearer(&self) -> anyhow::Result<Bearer> {
        if let Some(path) = &self.api_key_file {
            return from_file(path, "PLAINT_API_KEY_FILE");
        }
        if let Ok(token) = std::env::var(API_KEY_ENV) {
            return Bearer::token(&token).with_context(|| format!("{API_KEY_ENV} is unusable"));
        }
        let default = Path::new(DEFAULT_API_KEY_FILE);
        if default.exists() {
            return from_file(default, "the local admin key file");
        }
        Ok(Bearer::none())
    }

    /// An endpoint for `url`: over TLS, verified with these settings, when
    /// the URL is `https://`; plaintext for `http://`.
    pub fn endpoint(&self, url: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .with_context(|| format!("{url:?} is not a valid URL"))?;
        if endpoint.uri().scheme_str() != Some("https") {
            return Ok(endpoint);
        }
        endpoint
            .tls_config(self.tls()?)
            .with_context(|| format!("the TLS settings for {url} are unusable"))
    }

    /// A channel to `url` ([`endpoint`](Self::endpoint)) whose every call
    /// presents the credential ([`bearer`](Self::bearer)).
    pub async fn connect(&self, url: &str) -> anyhow::Result<Authed> {
        let bearer = self.bearer()?;
        let channel = self
            .endpoint(url)?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        Ok(crate::authed(channel, bearer))
    }

    fn tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let mut tls = ClientTlsConfig::new();
        let ca = self
            .tls_ca_file
            .clone()
            .or_else(|| existing(DEFAULT_TLS_CA_FILE));
        tls = match ca {
            Some(path) => tls.ca_certificate(Certificate::from_pem(read(&path, "the CA file")?)),
            None => tls.with_native_roots(),
        };
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain);
        }
        let identity = match (&self.tls_client_cert_file, &self.tls_client_key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => {
                existing(DEFAULT_TLS_CLIENT_CERT_FILE).zip(existing(DEFAULT_TLS_CLIENT_KEY_FILE))
            }
            _ => anyhow::bail!(
                "PLAINT_TLS_CLIENT_CERT_FILE and PLAINT_TLS_CLIENT_KEY_FILE go together: \
                 set both or neither"
            ),
        };
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(
                read(&cert, "the client certificate file")?,
                read(&key, "the client key file")?,
            ));
        }
        Ok(tls)
    }
}

fn existing(path: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    path.exists().then_some(path)
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} ({})", path.display()))
}

fn from_file(path: &Path, what: &str) -> anyhow::Result<Bearer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} ({})", path.display()))?;
    Bearer::token(&text).with_context(|| format!("{what} ({}) is unusable", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_stay_plaintext_whatever_the_tls_settings() {
        let settings = ClientSettings {
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        assert!(settings.endpoint("http://127.0.0.1:50051").is_ok());
    }

    #[test]
    fn https_reads_the_ca_file_it_is_given() {
        let settings = ClientSettings {
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = format!(
            "{:#}",
            settings.endpoint("https://127.0.0.1:50051").unwrap_err()
        );
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let settings = ClientSettings {
            tls_ca_file: Some(PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/Cargo.toml"
            ))),
            tls_client_cert_file: Some("client.pem".into()),
            ..Default::default()
        };
        let err = format!(
            "{:#}",
            settings.endpoint("https://127.0.0.1:50051").unwrap_err()
        );
        assert!(err.contains("PLAINT_TLS_CLIENT_KEY_FILE"), "{err}");
    }

    #[test]
    fn a_bad_url_is_named() {
        let err = ClientSettings::default()
            .endpoint("not a url")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a url"), "{err}");
    }
}
