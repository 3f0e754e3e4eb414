//! Requests refused before a handler sees them, answered in the project's words.
//!
//! tonic's codec refuses a request that is over the size limit or does not
//! decode before any handler runs, with its own texts ("decoded message
//! length too large", "failed to decode Protobuf message") and codes
//! (`OUT_OF_RANGE`, `INTERNAL`). A bad request is the caller's to fix, so this
//! layer turns those answers into `INVALID_ARGUMENT` with a message naming the
//! limit in bytes and, for the methods a service gives a hint for, the limits
//! of the request's own fields. Every other answer passes untouched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderMap;
use tonic::{Code, Status};

/// tonic's text for a message over `max_decoding_message_size` (`OUT_OF_RANGE`).
const TOO_LARGE: &str = "Error, decoded message length too large: found ";
/// tonic's text for a compressed message that grows past the limit (`RESOURCE_EXHAUSTED`).
const TOO_LARGE_DECOMPRESSED: &str = "Error decompressing: size limit";
/// prost's text for bytes that are not the request message (`INTERNAL`).
const UNDECODABLE: &str = "failed to decode Protobuf message";
/// tonic's text for a body that ends inside a message (`INTERNAL`).
const TRUNCATED: &str = "Unexpected EOF decoding stream.";
/// tonic's text for a unary call whose body holds no message (`INTERNAL`).
const NO_MESSAGE: &str = "Missing request message.";

/// What a service says about a method's request when it is too large: the
/// limits of its fields, from the method's path (`/package.Service/Method`).
pub type SizeHint = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Rewrites tonic's transport-level refusals of a request; see the module docs.
#[derive(Clone)]
pub struct WireErrorsLayer {
    limit_bytes: usize,
    hint: SizeHint,
}

impl std::fmt::Debug for WireErrorsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireErrorsLayer")
            .field("limit_bytes", &self.limit_bytes)
            .finish_non_exhaustive()
    }
}

impl WireErrorsLayer {
    /// For a server whose requests are capped at `limit_bytes`; `hint` names
    /// the field limits of a method's request, or `None`.
    pub fn new(
        limit_bytes: usize,
        hint: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            limit_bytes,
            hint: Arc::new(hint),
        }
    }

    /// For a server with no field limits to tell.
    pub fn without_hints(limit_bytes: usize) -> Self {
        Self::new(limit_bytes, |_| None)
    }

    /// The answer to give instead of `status`, for a call to `path`; `None`
    /// when `status` is not one of the codec's refusals.
    pub fn replacement(&self, status: &Status, path: &str) -> Option<Status> {
        let message = status.message();
        match status.code() {
            Code::OutOfRange if message.starts_with(TOO_LARGE) => {
                Some(self.too_large(found_bytes(message), path))
            }
            Code::ResourceExhausted if message.starts_with(TOO_LARGE_DECOMPRESSED) => {
                Some(self.too_large(None, path))
            }
            Code::Internal if message.starts_with(UNDECODABLE) => {
                let detail = message
                    .strip_prefix(UNDECODABLE)
                    .map(|d| d.trim_start_matches(':').trim())
                    .unwrap_or_default();
                Some(Status::invalid_argument(format!(
                    "request is not a valid protobuf message for {path}: {detail}"
                )))
            }
            Code::Internal if message == TRUNCATED => Some(Status::invalid_argument(format!(
                "request is not a valid protobuf message for {path}: the body ends inside a message"
            ))),
            Code::Internal if message == NO_MESSAGE => Some(Status::invalid_argument(format!(
                "request is required: the call to {path} carried no message"
            ))),
            _ => None,
        }
    }

    fn too_large(&self, found: Option<usize>, path: &str) -> Status {
        let limit = self.limit_bytes;
        let size = match found {
            Some(n) => format!("request is {n} bytes, the limit is {limit} bytes"),
            None => format!("request is over the limit of {limit} bytes"),
        };
        let message = match (self.hint)(path) {
            Some(hint) => format!("{size}; {hint}"),
            None => size,
        };
        Status::invalid_argument(message)
    }

    /// Rewrites the status of a trailers-only response in place.
    fn rewrite<B>(&self, response: &mut http::Response<B>, path: &str) {
        let Some(status) = Status::from_header_map(response.headers()) else {
            return;
        };
        let Some(replacement) = self.replacement(&status, path) else {
            return;
        };
        let headers: &mut HeaderMap = response.headers_mut();
        headers.remove(Status::GRPC_MESSAGE);
        headers.remove(Status::GRPC_STATUS_DETAILS);
        if replacement.add_header(headers).is_err() {
            // The texts above are plain ASCII, so this cannot happen; the
            // original answer still stands if it does.
            tracing::warn!(path, "cannot write a rewritten gRPC status");
            return;
        }
        response.extensions_mut().insert(replacement);
    }
}

/// The `found N bytes` of tonic's size message.
fn found_bytes(message: &str) -> Option<usize> {
    message
        .strip_prefix(TOO_LARGE)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl<S> tower::Layer<S> for WireErrorsLayer {
    type Service = WireErrors<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WireErrors {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`WireErrorsLayer`] wraps around each gRPC service.
#[derive(Debug, Clone)]
pub struct WireErrors<S> {
    inner: S,
    layer: WireErrorsLayer,
}

impl<S, B, R> tower::Service<http::Request<B>> for WireErrors<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let layer = self.layer.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            // Refusals travel as trailers-only responses: the status is in
            // the headers. A call that streamed a body answered OK at first.
            if response.headers().contains_key(Status::GRPC_STATUS) {
                layer.rewrite(&mut response, &path);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn layer() -> WireErrorsLayer {
        WireErrorsLayer::new(1024, |path| {
            (path == "/p.S/Submit").then(|| "summary is at most 10 bytes".to_owned())
        })
    }

    #[test]
    fn an_oversized_request_names_the_limit_and_the_method_hint() {
        let tonic_said = Status::out_of_range(
            "Error, decoded message length too large: found 2048 bytes, the limit is: 1024 bytes",
        );
        let s = layer().replacement(&tonic_said, "/p.S/Submit").unwrap();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "request is 2048 bytes, the limit is 1024 bytes; summary is at most 10 bytes"
        );
        let other = layer().replacement(&tonic_said, "/p.S/Other").unwrap();
        assert_eq!(
            other.message(),
            "request is 2048 bytes, the limit is 1024 bytes"
        );
    }

    #[test]
    fn undecodable_bytes_are_the_callers_to_fix() {
        let tonic_said = Status::internal("failed to decode Protobuf message: invalid varint");
        let s = layer().replacement(&tonic_said, "/p.S/Submit").unwrap();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "request is not a valid protobuf message for /p.S/Submit: invalid varint"
        );
    }

    #[test]
    fn the_services_own_answers_pass_untouched() {
        for status in [
            Status::internal("internal error"),
            Status::out_of_range("page 9 is past the end"),
            Status::invalid_argument("summary is 9000 bytes, the limit is 8192"),
        ] {
            assert!(layer().replacement(&status, "/p.S/Submit").is_none());
        }
    }

    #[test]
    fn a_rewritten_response_carries_the_new_status_in_its_headers() {
        let mut response: http::Response<()> =
            Status::internal("failed to decode Protobuf message: invalid wire type").into_http();
        layer().rewrite(&mut response, "/p.S/Submit");
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("invalid wire type"), "{status:?}");
        assert_eq!(
            response.extensions().get::<Status>().map(Status::code),
            Some(Code::InvalidArgument)
        );
    }
}
