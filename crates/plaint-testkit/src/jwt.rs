//! A stand-in for the organisation's identity provider: a fresh ECDSA key
//! pair, its public half in a JWKS file the services are configured with,
//! and service tokens minted on demand.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plaint_access::{JwtAlgorithm, JwtSettings};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING};
use ring::signature::{EcdsaKeyPair, EcdsaSigningAlgorithm};

/// The audience the test issuers' tokens name by default.
pub const AUDIENCE: &str = "plaint";

/// An identity provider with one signing key, published as a JWKS file.
pub struct Issuer {
    _dir: tempfile::TempDir,
    jwks_file: PathBuf,
    key: EncodingKey,
    algorithm: Algorithm,
    kid: String,
    issuer: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("jwks_file", &self.jwks_file)
            .finish_non_exhaustive()
    }
}

/// The claims of a token to mint; [`Issuer::claims`] fills in right ones.
#[derive(Debug, Clone)]
pub struct Claims {
    /// `sub`: the caller.
    pub sub: String,
    /// `iss`.
    pub iss: String,
    /// `aud`.
    pub aud: String,
    /// `exp`, seconds since the epoch.
    pub exp: i64,
    /// The `scope` claim: a space-separated string or an array.
    pub scope: serde_json::Value,
}

impl Issuer {
    /// An ES256 (ECDSA on P-256) issuer: key generation takes microseconds.
    pub fn es256() -> Self {
        Self::generate(Algorithm::ES256, &ECDSA_P256_SHA256_FIXED_SIGNING)
    }

    /// An ES384 issuer, to sign with an algorithm a service does not expect.
    pub fn es384() -> Self {
        Self::generate(Algorithm::ES384, &ECDSA_P384_SHA384_FIXED_SIGNING)
    }

    fn generate(algorithm: Algorithm, signing: &'static EcdsaSigningAlgorithm) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &SystemRandom::new())
            .unwrap_or_else(|e| panic!("cannot generate a test signing key: {e}"));
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let kid = format!("test-{}", crate::unique_prefix());
        let mut jwk = Jwk::from_encoding_key(&key, algorithm)
            .unwrap_or_else(|e| panic!("cannot describe the test key as a JWK: {e}"));
        jwk.common.key_id = Some(kid.clone());
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
        let jwks_file = dir.path().join("jwks.json");
        let set = JwkSet { keys: vec![jwk] };
        let json = serde_json::to_string_pretty(&set)
            .unwrap_or_else(|e| panic!("cannot write the JWK set: {e}"));
        std::fs::write(&jwks_file, json)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", jwks_file.display()));
        Self {
            _dir: dir,
            jwks_file,
            key,
            algorithm,
            issuer: format!("https://idp.test/{}", crate::unique_prefix()),
            kid,
        }
    }

    /// The JWKS file holding the public key.
    pub fn jwks_file(&self) -> &Path {
        &self.jwks_file
    }

    /// The issuer (`iss`) its tokens name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The id (`kid`) of its key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The settings of a service that trusts this issuer, for [`AUDIENCE`].
    pub fn settings(&self) -> JwtSettings {
        JwtSettings {
            jwks_file: Some(self.jwks_file.clone()),
            issuer: Some(self.issuer.clone()),
            audience: Some(AUDIENCE.to_owned()),
            algorithm: match self.algorithm {
                Algorithm::ES384 => JwtAlgorithm::ES384,
                _ => JwtAlgorithm::ES256,
            },
            ..JwtSettings::default()
        }
    }

    /// Right claims for `sub` with `scopes` (space-separated), expiring in
    /// five minutes.
    pub fn claims(&self, sub: &str, scopes: &[&str]) -> Claims {
        Claims {
            sub: sub.to_owned(),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            exp: now() + 300,
            scope: scopes.join(" ").into(),
        }
    }

    /// A right token for `sub` with `scopes`.
    pub fn token(&self, sub: &str, scopes: &[&str]) -> String {
        self.mint(&self.claims(sub, scopes))
    }

    /// A token with `claims`, signed and naming this issuer's key.
    pub fn mint(&self, claims: &Claims) -> String {
        self.mint_with_kid(Some(&self.kid), claims)
    }

    /// A token with `claims` naming the key `kid` (or none), signed with
    /// this issuer's key.
    pub fn mint_with_kid(&self, kid: Option<&str>, claims: &Claims) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &self.key)
    }
}

/// A token signed with HMAC-SHA256 keyed by `secret`: what an attacker makes
/// of a public key when a verifier takes the algorithm from the token.
pub fn hs256(claims: &Claims, kid: Option<&str>, secret: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret).unwrap_or_else(|e| panic!("HMAC key: {e}"));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key)
}

fn encode(header: &Header, claims: &Claims, key: &EncodingKey) -> String {
    let body = serde_json::json!({
        "sub": claims.sub,
        "iss": claims.iss,
        "aud": claims.aud,
        "exp": claims.exp,
        "iat": now(),
        "scope": claims.scope,
    });
    jsonwebtoken::encode(header, &body, key).unwrap_or_else(|e| panic!("cannot mint a JWT: {e}"))
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
