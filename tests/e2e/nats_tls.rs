//! NATS over TLS: a client trusts the server only through the CA it is given,
//! presents its certificate when the server asks for one, and refuses a
//! plaintext server when told to require TLS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plaint_bus::NatsAccess;
use plaint_testkit::NatsServer;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// How long a connection that must fail is given (the client retries its
/// first connect forever, so a failure shows as no connection in time).
const REFUSED_WITHIN: Duration = Duration::from_secs(3);

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a directory for the certificates");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        write(dir.path(), "ca.pem", &ca.pem());
        for (name, usage) in [
            ("server", ExtendedKeyUsagePurpose::ServerAuth),
            ("client", ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let key = KeyPair::generate().expect("key");
            let mut params =
                CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                    .expect("params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).expect("certificate");
            write(dir.path(), &format!("{name}.pem"), &cert.pem());
            write(dir.path(), &format!("{name}-key.pem"), &key.serialize_pem());
        }
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A server that speaks TLS only and verifies client certificates.
    fn server(&self) -> NatsServer {
        let config = format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n",
            self.path("server.pem"),
            self.path("server-key.pem"),
            self.path("ca.pem"),
        );
        NatsServer::start_with_config(Some(&config))
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).expect("write a PEM file");
}

/// Whether `access` gets a working connection to `url` in time.
async fn connects(url: &str, access: &NatsAccess) -> bool {
    let attempt = async {
        let client = plaint_bus::connect_with(url, access, "plaint-tests").await?;
        client
            .flush()
            .await
            .map_err(|e| plaint_bus::BusError::Unavailable(e.into()))
    };
    matches!(
        tokio::time::timeout(REFUSED_WITHIN, attempt).await,
        Ok(Ok(()))
    )
}

#[tokio::test]
async fn a_client_reaches_a_tls_server_with_its_ca_and_its_certificate_only() {
    let pki = Pki::new();
    let server = pki.server();
    let full = NatsAccess {
        nats_tls_ca_file: Some(pki.path("ca.pem")),
        nats_tls_cert_file: Some(pki.path("client.pem")),
        nats_tls_key_file: Some(pki.path("client-key.pem")),
        ..NatsAccess::default()
    };
    assert!(connects(&server.url(), &full).await, "CA and certificate");

    let no_certificate = NatsAccess {
        nats_tls_cert_file: None,
        nats_tls_key_file: None,
        ..full.clone()
    };
    assert!(
        !connects(&server.url(), &no_certificate).await,
        "the server asks for a client certificate"
    );
    let no_ca = NatsAccess {
        nats_tls_ca_file: None,
        ..full
    };
    assert!(
        !connects(&server.url(), &no_ca).await,
        "the server's certificate is not trusted without its CA"
    );
}

#[tokio::test]
async fn a_client_told_to_require_tls_refuses_a_plaintext_server() {
    let server = NatsServer::start();
    assert!(connects(&server.url(), &NatsAccess::default()).await);
    let tls = NatsAccess {
        nats_tls: true,
        ..NatsAccess::default()
    };
    assert!(!connects(&server.url(), &tls).await);
}
