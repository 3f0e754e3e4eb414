//! The credential attached to every request.

use anyhow::Context;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel whose requests carry the caller's credential.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to each request, or nothing when the
/// caller has no credential (health needs none). Its `Debug` shows nothing of
/// the token.
#[derive(Clone, Default)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    /// No credential.
    pub fn none() -> Self {
        Self(None)
    }

    /// Presents `token` (an API key or a JWT).
    pub fn token(token: &str) -> anyhow::Result<Self> {
        let mut value: AsciiMetadataValue =
            MetadataValue::try_from(format!("Bearer {}", token.trim()))
                .ok()
                .context("the credential holds characters a gRPC header cannot carry")?;
        // Keeps the value out of any header dump a layer might log.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    /// Whether a credential is presented.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(..)"
        } else {
            "Bearer(none)"
        })
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// `channel`, with `bearer` on every request.
pub fn authed(channel: Channel, bearer: Bearer) -> Authed {
    InterceptedService::new(channel, bearer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_becomes_a_bearer_header() {
        let mut bearer = Bearer::token(" plaint_abc \n").unwrap();
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer plaint_abc"
        );
    }

    #[test]
    fn no_credential_adds_no_header() {
        let request = Bearer::none().call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn debug_hides_the_token() {
        let bearer = Bearer::token("plaint_secret").unwrap();
        assert_eq!(format!("{bearer:?}"), "Bearer(..)");
    }

    #[test]
    fn a_token_with_a_line_break_inside_is_refused() {
        assert!(Bearer::token("plaint\nsecret").is_err());
    }
}
