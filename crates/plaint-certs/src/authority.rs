//! Making a CA and issuing certificates with it.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// How long the CA is valid: longer than any certificate it signs.
const CA_DAYS: i64 = 10 * 365;
/// How long a server or client certificate is valid. Rotation is a new set
/// and a restart, so a year keeps a forgotten local set from living forever.
const LEAF_DAYS: i64 = 365;
/// Clock skew between the machine that issues and the one that verifies.
const BACKDATE: Duration = Duration::hours(1);

/// A certificate and its private key, both PEM. The key's `Debug` is hidden.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    key_pem: String,
}

impl Issued {
    /// The private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"..")
            .finish()
    }
}

/// A certificate authority that can sign certificates.
pub struct Authority {
    issued: Issued,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("issued", &self.issued)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA whose subject is `name`, with a fresh key.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        valid_for(&mut params, CA_DAYS)?;
        let key = KeyPair::generate().context("generating the CA key")?;
        let cert = params
            .self_signed(&key)
            .context("signing the CA certificate")?;
        Ok(Self {
            issued: Issued {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            },
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's certificate and key.
    pub fn issued(&self) -> &Issued {
        &self.issued
    }

    /// A server certificate for `names` (DNS names or IP addresses). It may
    /// also authenticate as a client, so that a service's own health check
    /// can present it to a server that requires client certificates.
    pub fn server(&self, names: &[String]) -> anyhow::Result<Issued> {
        if let Some(bad) = names.iter().find(|n| !is_host_name(n)) {
            anyhow::bail!("{bad:?} is neither a DNS name nor an IP address");
        }
        let mut params = CertificateParams::new(names.to_vec())
            .context("a server name is neither a DNS name nor an IP address")?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().map_or("plaint", |n| n));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params)
    }

    /// A client certificate whose subject is `name`.
    pub fn client(&self, name: &str) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> anyhow::Result<Issued> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        valid_for(&mut params, LEAF_DAYS)?;
        let key = KeyPair::generate().context("generating a key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing a certificate")?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// An IP address, or a DNS name of letters, digits and hyphens in dotted
/// labels (rcgen takes any ASCII, which no client would ever match).
fn is_host_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

fn valid_for(params: &mut CertificateParams, days: i64) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now
        .checked_sub(BACKDATE)
        .context("the clock is out of range")?;
    params.not_after = now
        .checked_add(Duration::days(days))
        .context("the clock is out of range")?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issues_pem_certificates_and_keys() {
        let ca = Authority::new("test CA").unwrap();
        let server = ca
            .server(&["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
        let client = ca.client("tester").unwrap();
        for issued in [ca.issued(), &server, &client] {
            assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(issued.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        assert_ne!(server.cert_pem, client.cert_pem);
    }

    #[test]
    fn a_name_that_is_no_dns_name_is_refused() {
        let ca = Authority::new("test CA").unwrap();
        assert!(ca.server(&["not a name".to_owned()]).is_err());
    }

    #[test]
    fn debug_hides_keys() {
        let ca = Authority::new("test CA").unwrap();
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }
}
