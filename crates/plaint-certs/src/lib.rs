//! A local certificate authority for development, demos and tests.
//!
//! [`Authority`] makes a CA and issues the two kinds of certificates plaint's
//! gRPC services need: a server certificate for the names clients dial, and a
//! client certificate for mutual TLS. [`LocalSet`] writes one CA, one server
//! and one client certificate into a directory, as `plaint-ctl certs init`
//! does for `scripts/demo.sh`.
//!
//! A production deployment takes its certificates from the organisation's own
//! CA instead; the services only read PEM files.

mod authority;
mod files;

pub use authority::{Authority, Issued};
pub use files::{LocalSet, SetFiles};
