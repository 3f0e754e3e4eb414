//! Who a process is on NATS and how it gets there: credentials and TLS.
//!
//! Secrets come only from files named by a setting, never from the setting
//! itself, so they stay out of command lines, environment dumps and logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::ConnectOptions;

use crate::error::BusError;

/// The inbox prefix NATS clients use unless told otherwise.
pub const DEFAULT_INBOX_PREFIX: &str = "_INBOX";

/// Credentials and TLS for the NATS connection; all optional (the default
/// connects without either, as to a server on loopback).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NatsAccess {
    /// Credentials file (a user JWT and its nkey seed, as `nsc` writes them).
    #[arg(
        long,
        env = "PLAINT_NATS_CREDS_FILE",
        conflicts_with_all = ["nats_nkey_file", "nats_user"]
    )]
    pub nats_creds_file: Option<PathBuf>,
    /// File holding the nkey seed (`SU...`) of the NATS user (see `plaint-ctl nats-user`).
    #[arg(long, env = "PLAINT_NATS_NKEY_FILE", conflicts_with = "nats_user")]
    pub nats_nkey_file: Option<PathBuf>,
    /// NATS user name; its password is read from `--nats-password-file`.
    #[arg(long, env = "PLAINT_NATS_USER", requires = "nats_password_file")]
    pub nats_user: Option<String>,
    /// File holding the password of `--nats-user` (trailing newline ignored).
    #[arg(long, env = "PLAINT_NATS_PASSWORD_FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// CA certificates (PEM) the server's certificate must chain to; implies TLS.
    #[arg(long, env = "PLAINT_NATS_TLS_CA_FILE")]
    pub nats_tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for servers that verify clients; implies TLS.
    #[arg(
        long,
        env = "PLAINT_NATS_TLS_CERT_FILE",
        requires = "nats_tls_key_file"
    )]
    pub nats_tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `--nats-tls-cert-file`.
    #[arg(
        long,
        env = "PLAINT_NATS_TLS_KEY_FILE",
        requires = "nats_tls_cert_file"
    )]
    pub nats_tls_key_file: Option<PathBuf>,
    /// Refuse to talk to NATS without TLS (on anyway with a CA file, a client
    /// certificate or a `tls://` URL).
    #[arg(long, env = "PLAINT_NATS_TLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub nats_tls: bool,
    /// Prefix of this client's reply subjects: a user allowed to subscribe
    /// only below its own prefix (a helpdesk integration's `_INBOX_<name>`)
    /// names it here.
    #[arg(long, env = "PLAINT_NATS_INBOX_PREFIX", default_value = DEFAULT_INBOX_PREFIX)]
    pub nats_inbox_prefix: String,
}

impl Default for NatsAccess {
    fn default() -> Self {
        Self {
            nats_creds_file: None,
            nats_nkey_file: None,
            nats_user: None,
            nats_password_file: None,
            nats_tls_ca_file: None,
            nats_tls_cert_file: None,
            nats_tls_key_file: None,
            nats_tls: false,
            nats_inbox_prefix: DEFAULT_INBOX_PREFIX.to_owned(),
        }
    }
}

impl NatsAccess {
    /// Authenticates with the nkey seed in `seed_file`, replies under `inbox_prefix`.
    pub fn nkey(seed_file: impl Into<PathBuf>, inbox_prefix: &str) -> Self {
        Self {
            nats_nkey_file: Some(seed_file.into()),
            nats_inbox_prefix: inbox_prefix.to_owned(),
            ..Self::default()
        }
    }

    /// The client options these settings make, on top of the ones every
    /// plaint process uses: its name, retries on the first connect, endless
    /// reconnects.
    pub async fn options(&self, client_name: &str) -> Result<ConnectOptions, BusError> {
        let mut options = match &self.nats_creds_file {
            // Read by the client itself, which also signs the server's nonce with it.
            Some(path) => ConnectOptions::with_credentials_file(path.clone())
                .await
                .map_err(|e| unreadable("credentials", path, &e))?,
            None => ConnectOptions::new(),
        };
        if let Some(path) = &self.nats_nkey_file {
            options = options.nkey(read_secret("nkey seed", path)?);
        }
        if let (Some(user), Some(path)) = (&self.nats_user, &self.nats_password_file) {
            options = options.user_and_password(user.clone(), read_secret("password", path)?);
        }
        if let Some(ca) = &self.nats_tls_ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.nats_tls_cert_file, &self.nats_tls_key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls_required() {
            options = options.require_tls(true);
        }
        Ok(options
            .custom_inbox_prefix(&self.nats_inbox_prefix)
            .name(client_name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5)))
    }

    fn tls_required(&self) -> bool {
        self.nats_tls || self.nats_tls_ca_file.is_some() || self.nats_tls_cert_file.is_some()
    }
}

/// A secret from a file, without its trailing line break. The error names the
/// file, never its content.
fn read_secret(what: &str, path: &Path) -> Result<String, BusError> {
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(what, path, &e))?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(BusError::Connect(
            format!("the NATS {what} file {} is empty", path.display()).into(),
        ));
    }
    Ok(secret.to_owned())
}

fn unreadable(what: &str, path: &Path, e: &std::io::Error) -> BusError {
    // The io error alone: a parse error of the client could quote the file.
    BusError::Connect(
        format!(
            "cannot read the NATS {what} file {}: {}",
            path.display(),
            e.kind()
        )
        .into(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        access: NatsAccess,
    }

    #[test]
    fn the_defaults_connect_without_credentials_or_tls() {
        let cli = Cli::try_parse_from(["t"]).unwrap();
        assert_eq!(cli.access, NatsAccess::default());
        assert!(!cli.access.tls_required());
    }

    #[test]
    fn one_kind_of_credentials_at_a_time() {
        assert!(
            Cli::try_parse_from(["t", "--nats-creds-file", "a", "--nats-nkey-file", "b"]).is_err()
        );
        assert!(Cli::try_parse_from(["t", "--nats-user", "u"]).is_err());
        assert!(
            Cli::try_parse_from(["t", "--nats-user", "u", "--nats-password-file", "p"]).is_ok()
        );
    }

    #[test]
    fn a_ca_file_or_a_client_certificate_requires_tls() {
        let cli = Cli::try_parse_from(["t", "--nats-tls-ca-file", "ca.pem"]).unwrap();
        assert!(cli.access.tls_required());
        assert!(Cli::try_parse_from(["t", "--nats-tls-cert-file", "c.pem"]).is_err());
    }

    #[tokio::test]
    async fn a_missing_secret_file_is_named_without_content() {
        let access = NatsAccess::nkey("/nonexistent/seed", "_INBOX_x");
        let e = access.options("t").await.unwrap_err().to_string();
        assert!(e.contains("/nonexistent/seed"), "{e}");
        assert!(e.contains("nkey seed"), "{e}");
    }

    #[test]
    fn secrets_lose_their_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_secret("password", &path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret("password", &path).is_err());
    }
}
