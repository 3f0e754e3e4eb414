//! The access rules both services apply to every call: the credential must be
//! valid (an API key in the ring, the bootstrap key, or a JWT of the
//! identity provider when one is configured) and carry the scope the method
//! needs.

use std::sync::{Arc, PoisonError, RwLock};

use plaint_domain::Timestamp;
use plaint_domain::access::{Scope, Scopes};
use plaint_runtime::gate::{Caller, Gate, Refusal};

use crate::api_key::{self, PresentedKey};
use crate::jwt::JwtVerifier;
use crate::method::{Requirement, requirement};
use crate::ring::KeyRing;

/// The keys in force, shared between the follower that updates them and the
/// gate that reads them.
pub type SharedRing = Arc<RwLock<KeyRing>>;

/// Both services' access rules.
#[derive(Debug)]
pub struct AccessGate {
    ring: SharedRing,
    bootstrap: Option<PresentedKey>,
    reflection_open: bool,
    jwt: Option<JwtVerifier>,
}

impl AccessGate {
    /// Checks keys against `ring`, the `bootstrap` key (every scope), and
    /// other bearer tokens with `jwt` when there is one.
    pub fn new(
        ring: SharedRing,
        bootstrap: Option<PresentedKey>,
        reflection_open: bool,
        jwt: Option<JwtVerifier>,
    ) -> Self {
        Self {
            ring,
            bootstrap,
            reflection_open,
            jwt,
        }
    }

    fn authenticate(&self, token: &str, now: Timestamp) -> Result<(Caller, Scopes), Refusal> {
        let unauthenticated = |why: String| Refusal::Unauthenticated(why);
        let key = PresentedKey::parse(token);
        let Some(key) = key else {
            return match &self.jwt {
                Some(jwt) if !token.starts_with(api_key::PREFIX) => {
                    jwt.verify(token).map_err(|refusal| {
                        tracing::info!(reason = %refusal, "refused a JWT");
                        unauthenticated(refusal.to_string())
                    })
                }
                _ => Err(unauthenticated(
                    "the credential is not an API key (plaint_<id>_<secret>)".into(),
                )),
            };
        };
        if let Some(bootstrap) = &self.bootstrap
            && bootstrap.key_id() == key.key_id()
        {
            return if bootstrap.same_secret(&key) {
                Ok((
                    Caller::new(format!("bootstrap:{}", key.key_id())),
                    Scope::ALL.into_iter().collect(),
                ))
            } else {
                Err(unauthenticated("the API key is not known".into()))
            };
        }
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        let entry = ring
            .check(&key, now)
            .map_err(|refusal| unauthenticated(refusal.to_string()))?;
        Ok((
            Caller::new(format!("key:{}", key.key_id())),
            entry.record.scopes.clone(),
        ))
    }
}

impl Gate for AccessGate {
    fn admit(&self, path: &str, bearer: Option<&str>) -> Result<Caller, Refusal> {
        let needed = requirement(path, self.reflection_open);
        if needed == Requirement::Open {
            return Ok(Caller::anyone());
        }
        let token = bearer.ok_or_else(|| {
            Refusal::Unauthenticated(if self.jwt.is_some() {
                "this method needs a credential: `authorization: Bearer <API key or JWT>`".into()
            } else {
                "this method needs a credential: `authorization: Bearer <API key>`".into()
            })
        })?;
        let (caller, scopes) = self.authenticate(token, now())?;
        match needed {
            Requirement::Scope(scope) if !scopes.contains(&scope) => {
                Err(Refusal::PermissionDenied(format!(
                    "{caller} lacks the scope {scope} that {path} needs"
                )))
            }
            _ => Ok(caller),
        }
    }
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}
