//! The identity provider's public keys: read from a JWK set, kept only when
//! they can check the configured algorithm, and picked for a token by its
//! `kid`. A key the set marks for another algorithm or for encryption, or a
//! symmetric one, is never used, so a token cannot steer verification to it.
//! The file is re-read every [`POLL`], so that a rotation needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio_util::sync::CancellationToken;

/// How often the JWK set file is checked for changes.
pub const POLL: Duration = Duration::from_secs(10);

/// The keys of a JWK set that can check tokens signed with one algorithm.
#[derive(Debug, Clone)]
pub struct VerificationKeys {
    keys: Vec<(Option<String>, DecodingKey)>,
}

/// No key fits a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyMiss {
    /// The token names a key the set does not hold.
    #[error("the token's key id (kid) is not among the identity provider's keys")]
    UnknownKid,
    /// The token names no key and the set holds more than one.
    #[error("the token names no key (kid) and the identity provider has several")]
    NoKid,
}

/// The keys of a JWK set file, as last read with success.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
    algorithm: Algorithm,
    state: Arc<RwLock<Read>>,
}

#[derive(Debug)]
struct Read {
    /// The file's text when last read, usable or not: a broken file is
    /// reported once, not at every poll.
    text: String,
    keys: Arc<VerificationKeys>,
}

impl KeyFile {
    /// Reads the JWK set in the file at `path`; fails unless it holds at
    /// least one key for `algorithm`.
    pub fn read(path: &Path, algorithm: Algorithm) -> anyhow::Result<Self> {
        let text = read_text(path)?;
        let keys = VerificationKeys::parse(&text, path, algorithm)?;
        Ok(Self {
            path: path.to_owned(),
            algorithm,
            state: Arc::new(RwLock::new(Read {
                text,
                keys: Arc::new(keys),
            })),
        })
    }

    /// The keys in force.
    pub fn keys(&self) -> Arc<VerificationKeys> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&state.keys)
    }

    /// Re-reads the file; when it changed and holds usable keys, they
    /// replace the ones in force. Returns whether they did. A file that
    /// cannot be read or holds no usable key leaves the keys in force.
    pub fn refresh(&self) -> bool {
        let text = match read_text(&self.path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot re-read the JWK set; the keys in force stay"
                );
                return false;
            }
        };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.text == text {
            return false;
        }
        let parsed = VerificationKeys::parse(&text, &self.path, self.algorithm);
        state.text = text;
        match parsed {
            Ok(keys) => {
                state.keys = Arc::new(keys);
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the changed JWK set is not usable; the keys in force stay"
                );
                false
            }
        }
    }

    /// Refreshes every [`POLL`] until `stop`.
    pub async fn watch(self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(POLL) => {}
            }
            let this = self.clone();
            // File I/O off the runtime's threads.
            if let Err(e) = tokio::task::spawn_blocking(move || this.refresh()).await {
                tracing::warn!(error = %e, "re-reading the JWK set failed");
            }
        }
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the JWK set (PLAINT_JWT_JWKS_FILE={})",
            path.display()
        )
    })
}

impl VerificationKeys {
    /// The keys of the JWK set `text` (read from `path`) for `algorithm`;
    /// fails unless there is at least one.
    fn parse(text: &str, path: &Path, algorithm: Algorithm) -> anyhow::Result<Self> {
        let named = || format!("PLAINT_JWT_JWKS_FILE={}", path.display());
        let set: JwkSet = serde_json::from_str(text)
            .with_context(|| format!("the JWK set ({}) is not a JSON JWK set", named()))?;
        let keys = Self::from_set(&set, algorithm);
        anyhow::ensure!(
            !keys.is_empty(),
            "the JWK set ({}) holds no signature key usable with {algorithm:?} ({} keys in all)",
            named(),
            set.keys.len()
        );
        tracing::info!(
            keys = keys.len(),
            skipped = set.keys.len() - keys.len(),
            algorithm = ?algorithm,
            "JWT verification keys read"
        );
        Ok(keys)
    }

    /// The keys of `set` usable with `algorithm`; the first of a repeated
    /// `kid` wins.
    pub fn from_set(set: &JwkSet, algorithm: Algorithm) -> Self {
        let mut keys: Vec<(Option<String>, DecodingKey)> = Vec::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            let repeated = kid.is_some() && keys.iter().any(|(k, _)| *k == kid);
            if !fits(jwk, algorithm) || repeated {
                tracing::debug!(kid = ?kid, "skipping a JWK not usable for {algorithm:?}");
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.push((kid, key)),
                Err(e) => {
                    tracing::warn!(kid = ?kid, error = %e, "skipping a JWK that does not decode")
                }
            }
        }
        Self { keys }
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token names by `kid`; without one, the only key there is.
    pub fn pick(&self, kid: Option<&str>) -> Result<&DecodingKey, KeyMiss> {
        match (kid, self.keys.as_slice()) {
            (Some(kid), keys) => keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| key)
                .ok_or(KeyMiss::UnknownKid),
            (None, [(_, only)]) => Ok(only),
            (None, _) => Err(KeyMiss::NoKid),
        }
    }
}

/// Whether `jwk` is a signature key of the family (and curve) of
/// `algorithm`, not marked for another algorithm.
fn fits(jwk: &Jwk, algorithm: Algorithm) -> bool {
    let for_signing = matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let same_algorithm = jwk
        .common
        .key_algorithm
        .is_none_or(|a| a == algorithm.into());
    let family = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(_), _) => AlgorithmFamily::Rsa,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256)
            if p.curve == EllipticCurve::P256 =>
        {
            AlgorithmFamily::Ec
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384)
            if p.curve == EllipticCurve::P384 =>
        {
            AlgorithmFamily::Ec
        }
        (AlgorithmParameters::OctetKeyPair(p), _) if p.curve == EllipticCurve::Ed25519 => {
            AlgorithmFamily::Ed
        }
        // Symmetric keys, other curves, unknown key types.
        _ => return false,
    };
    for_signing && same_algorithm && family == algorithm.family()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(json: serde_json::Value) -> JwkSet {
        serde_json::from_value(json).unwrap()
    }

    // A P-256 public key (the generator point: valid, and nobody's key).
    const X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

    #[test]
    fn only_signature_keys_of_the_configured_algorithm_are_kept() {
        let jwks = set(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "ec", "use": "sig"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "enc", "use": "enc"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "es384", "alg": "ES384"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "ed"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "ec"},
        ]}));
        let keys = VerificationKeys::from_set(&jwks, Algorithm::ES256);
        assert_eq!(keys.len(), 1);
        assert!(keys.pick(Some("ec")).is_ok());
        assert!(
            keys.pick(None).is_ok(),
            "the only key serves a token without kid"
        );
        for other in ["enc", "es384", "hmac", "ed", "nope"] {
            assert_eq!(keys.pick(Some(other)).err(), Some(KeyMiss::UnknownKid));
        }
        assert!(VerificationKeys::from_set(&jwks, Algorithm::RS256).is_empty());
        assert_eq!(
            VerificationKeys::from_set(&jwks, Algorithm::EdDSA).len(),
            1,
            "the OKP key"
        );
    }

    #[test]
    fn a_token_without_kid_needs_a_set_of_one() {
        let jwks = set(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "b"},
        ]}));
        let keys = VerificationKeys::from_set(&jwks, Algorithm::ES256);
        assert_eq!(keys.pick(None).err(), Some(KeyMiss::NoKid));
        assert!(keys.pick(Some("b")).is_ok());
    }
}
