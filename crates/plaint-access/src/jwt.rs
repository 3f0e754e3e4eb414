//! Service tokens (JWTs) of the organisation's identity provider. A token is
//! accepted when its signature checks with one of the provider's keys under
//! the configured algorithm (never the one its header names), and its
//! issuer, audience, expiry and subject are right. Its caller is
//! `jwt:<sub>`; its scopes come from one claim.

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use plaint_domain::access::{Scope, Scopes};
use plaint_runtime::gate::Caller;
use serde_json::{Map, Value};

use crate::jwks::{KeyFile, KeyMiss};
use crate::settings::{JwtAlgorithm, JwtSettings};

/// Checks service tokens.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: KeyFile,
    validation: Validation,
    scopes_claim: String,
}

/// Why a token is refused. The text goes to the caller and the log: it
/// says what is wrong, never what the token holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    /// Not three base64url parts of JSON.
    #[error("the credential is neither an API key nor a well-formed JWT")]
    Malformed,
    /// No key of the provider fits.
    #[error(transparent)]
    Key(#[from] KeyMiss),
    /// Signed with another algorithm than the configured one.
    #[error("the token is not signed with the algorithm this service accepts")]
    WrongAlgorithm,
    /// The signature does not check.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// Past its expiry (and the leeway).
    #[error("the token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Another issuer.
    #[error("the token is not from the trusted issuer")]
    WrongIssuer,
    /// Meant for another audience.
    #[error("the token is not meant for this service (audience)")]
    WrongAudience,
    /// A claim this service needs is missing or of the wrong type.
    #[error("the token's claim {0} is missing or not valid")]
    BadClaim(String),
}

impl JwtVerifier {
    /// The verifier `settings` ask for; `None` when no JWKS file is set.
    pub fn from_settings(settings: &JwtSettings) -> anyhow::Result<Option<Self>> {
        let Some(path) = &settings.jwks_file else {
            return Ok(None);
        };
        let required = |value: &Option<String>, name: &str, claim: &str| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .with_context(|| {
                    format!(
                        "{name} must be set when PLAINT_JWT_JWKS_FILE is: \
                         a token is accepted only with the expected {claim}"
                    )
                })
        };
        let issuer = required(&settings.issuer, "PLAINT_JWT_ISSUER", "issuer (iss)")?;
        let audience = required(&settings.audience, "PLAINT_JWT_AUDIENCE", "audience (aud)")?;
        let algorithm = algorithm(settings.algorithm);
        let keys = KeyFile::read(path, algorithm)?;
        Ok(Some(Self::new(
            keys, algorithm, &issuer, &audience, settings,
        )))
    }

    fn new(
        keys: KeyFile,
        algorithm: Algorithm,
        issuer: &str,
        audience: &str,
        settings: &JwtSettings,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_secs;
        Self {
            keys,
            validation,
            scopes_claim: settings.scopes_claim.clone(),
        }
    }

    /// The file the keys come from, to keep them up to date.
    pub fn key_file(&self) -> &KeyFile {
        &self.keys
    }

    /// The caller a token stands for and its scopes.
    pub fn verify(&self, token: &str) -> Result<(Caller, Scopes), JwtRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRefusal::Malformed)?;
        // Checked before a key is picked: a token naming another algorithm
        // is refused as such, whatever its kid.
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(JwtRefusal::WrongAlgorithm);
        }
        let keys = self.keys.keys();
        let key = keys.pick(header.kid.as_deref())?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
            .map_err(|e| refusal(e.into_kind()))?
            .claims;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| JwtRefusal::BadClaim("sub".into()))?;
        let scopes = scopes(claims.get(&self.scopes_claim))
            .ok_or_else(|| JwtRefusal::BadClaim(self.scopes_claim.clone()))?;
        Ok((Caller::new(format!("jwt:{sub}")), scopes))
    }
}

fn algorithm(configured: JwtAlgorithm) -> Algorithm {
    match configured {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

fn refusal(kind: ErrorKind) -> JwtRefusal {
    match kind {
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwtRefusal::WrongAlgorithm,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => JwtRefusal::BadSignature,
        ErrorKind::ExpiredSignature => JwtRefusal::Expired,
        ErrorKind::ImmatureSignature => JwtRefusal::NotYetValid,
        ErrorKind::InvalidIssuer => JwtRefusal::WrongIssuer,
        ErrorKind::InvalidAudience => JwtRefusal::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            JwtRefusal::BadClaim(claim)
        }
        ErrorKind::InvalidSubject => JwtRefusal::BadClaim("sub".into()),
        _ => JwtRefusal::Malformed,
    }
}

/// The plaint scopes a claim names: a space-separated string or an array of
/// strings, other names ignored (the provider's tokens serve other systems
/// too); no claim, no scopes. `None` when the claim has another shape.
/// `*` is not special here: every scope must be granted by name.
fn scopes(claim: Option<&Value>) -> Option<Scopes> {
    let names: Vec<&str> = match claim {
        None => Vec::new(),
        Some(Value::String(names)) => names.split_whitespace().collect(),
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect::<Option<_>>()?,
        Some(_) => return None,
    };
    Some(
        names
            .into_iter()
            .filter(|n| *n != "*")
            .filter_map(|n| Scope::parse(n).ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scopes_come_from_a_string_or_an_array_and_unknown_names_are_ignored() {
        let both = [Scope::ComplaintsRead, Scope::AuditRead]
            .into_iter()
            .collect();
        assert_eq!(
            scopes(Some(&json!("openid complaints:read  audit:read"))),
            Some(both)
        );
        assert_eq!(
            scopes(Some(&json!(["complaints:read", "profile"]))),
            Some([Scope::ComplaintsRead].into_iter().collect())
        );
        assert_eq!(scopes(None), Some(Scopes::new()));
        assert_eq!(scopes(Some(&json!("*"))), Some(Scopes::new()));
        assert_eq!(scopes(Some(&json!(42))), None);
        assert_eq!(scopes(Some(&json!(["complaints:read", 1]))), None);
    }
}
