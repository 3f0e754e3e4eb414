//! The check every gRPC call passes before a service sees it: the caller's
//! bearer credential is read, and a [`Gate`] (the services' access rules)
//! admits the call or refuses it with UNAUTHENTICATED or PERMISSION_DENIED.
//! An admitted call carries its [`Caller`] in the request's extensions, so a
//! handler can say who made a change.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;

use crate::limits::{CallLimits, HoldingBody, Limiter};

/// Who made a call, as the audit trail and the quotas name them:
/// `key:<id>`, `token:<subject>`, `bootstrap:<id>`, or `anyone` for the
/// methods that need no credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller(Arc<str>);

impl Caller {
    /// A caller named `id`.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The caller of a method that needs no credential.
    pub fn anyone() -> Self {
        Self::new("anyone")
    }

    /// The caller's name.
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a call was refused. The text goes to the caller and the log: it never
/// holds the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or one that is not valid (UNAUTHENTICATED).
    Unauthenticated(String),
    /// A valid credential without the scope the method needs (PERMISSION_DENIED).
    PermissionDenied(String),
}

impl Refusal {
    fn status(&self) -> tonic::Status {
        match self {
            Refusal::Unauthenticated(why) => tonic::Status::unauthenticated(why.clone()),
            Refusal::PermissionDenied(why) => tonic::Status::permission_denied(why.clone()),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::PermissionDenied(_) => "permission_denied",
        }
    }
}

/// The access rules of a service.
pub trait Gate: fmt::Debug + Send + Sync + 'static {
    /// Admits or refuses a call to `path` (`/package.Service/Method`) made
    /// with `bearer` (the token of an `authorization: Bearer` header).
    fn admit(&self, path: &str, bearer: Option<&str>) -> Result<Caller, Refusal>;
}

/// The credential of a request: `Ok(None)` when there is none, `Err` when the
/// header is not of the form `Bearer <token>`.
fn bearer<B>(request: &http::Request<B>) -> Result<Option<&str>, Refusal> {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed =
        || Refusal::Unauthenticated("the authorization header must be `Bearer <token>`".into());
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// Puts a [`Gate`] in front of every service of a server, and the
/// [`CallLimits`] behind it.
#[derive(Clone)]
pub struct GateLayer {
    gate: Arc<dyn Gate>,
    limiter: Arc<Limiter>,
}

impl fmt::Debug for GateLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateLayer").finish_non_exhaustive()
    }
}

impl GateLayer {
    /// Checks every call against `gate`, then `limits`.
    pub fn new(gate: Arc<dyn Gate>, limits: &CallLimits) -> Self {
        Self {
            gate,
            limiter: Arc::new(Limiter::new(limits)),
        }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gated<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            gate: self.gate.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

/// The service [`GateLayer`] wraps around a server's routes.
#[derive(Clone)]
pub struct Gated<S> {
    inner: S,
    gate: Arc<dyn Gate>,
    limiter: Arc<Limiter>,
}

impl<S> fmt::Debug for Gated<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gated").finish_non_exhaustive()
    }
}

impl<S, B> tower::Service<http::Request<B>> for Gated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let admitted =
            bearer(&request).and_then(|token| self.gate.admit(request.uri().path(), token));
        match admitted {
            // Methods open to anyone (health) are never limited: a saturated
            // server still answers its orchestrator's probes.
            Ok(caller) if caller == Caller::anyone() => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Ok(caller) => match self.limiter.admit(&caller) {
                Ok(held) => {
                    request.extensions_mut().insert(caller);
                    let call = self.inner.call(request);
                    Box::pin(async move {
                        let response = call.await?;
                        Ok(response
                            .map(|body| tonic::body::Body::new(HoldingBody::new(body, held))))
                    })
                }
                Err(limited) => {
                    tracing::debug!(
                        path = request.uri().path(),
                        caller = caller.id(),
                        reason = limited.reason(),
                        "held back a call"
                    );
                    metrics::counter!("plaint_grpc_limited_total", "reason" => limited.reason())
                        .increment(1);
                    let response = limited.status().into_http();
                    Box::pin(async move { Ok(response) })
                }
            },
            Err(refusal) => {
                tracing::warn!(
                    path = request.uri().path(),
                    reason = refusal.reason(),
                    "refused a call"
                );
                metrics::counter!("plaint_grpc_refused_total", "reason" => refusal.reason())
                    .increment(1);
                let response = refusal.status().into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// The caller of an admitted request; `anyone` when the server has no gate.
pub fn caller_of<T>(request: &tonic::Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anyone)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>) -> http::Request<()> {
        let mut r = http::Request::builder().uri("/a.B/C");
        if let Some(a) = authorization {
            r = r.header(AUTHORIZATION, a);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn only_bearer_credentials_are_read() {
        assert_eq!(bearer(&request(None)), Ok(None));
        assert_eq!(bearer(&request(Some("Bearer abc"))), Ok(Some("abc")));
        assert_eq!(bearer(&request(Some("bearer  abc "))), Ok(Some("abc")));
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            let refusal = bearer(&request(Some(bad))).unwrap_err();
            assert!(matches!(refusal, Refusal::Unauthenticated(_)), "{bad}");
        }
    }
}
