//! Test support for plaint: real servers, isolation and cleanup.
//!
//! - [`NatsServer`]: a `nats-server` process of the test's own (random port, temporary
//!   JetStream store), killed on drop; it can be killed and restarted for crash tests.
//! - [`NatsCluster`]: several `nats-server`s routed into one JetStream cluster on loopback,
//!   each node killable and restartable, for replicated streams and fail-over tests.
//! - [`PgServer`]: a PostgreSQL server of the test's own (`initdb` into a temporary
//!   directory, its own port), crashed (`pg_ctl -m immediate stop`) and restarted at will.
//! - [`shared_nats_url`]: the long-running NATS for tests that only need isolation by name.
//! - [`TestDb`]: a fresh PostgreSQL database per test.
//! - [`unique_prefix`]: a subject-safe prefix for streams, subjects and consumers.
//! - [`admin_key`]: the bootstrap admin key of the services a test starts;
//!   [`authed`] wraps a channel so that every call presents it.
//! - [`init_test_tracing`]: logs for a test run, only when `TEST_LOG` is set.
//!
//! Helpers panic with a descriptive message instead of returning errors: a broken harness
//! should fail the test that uses it, loudly. Use this crate as a dev-dependency only.
//!
//! Environment: `PLAINT_NATS_SERVER` (the `nats-server` binary to run, default `nats-server`
//! on `PATH`), `PLAINT_TEST_NATS_URL`, `PLAINT_TEST_DATABASE_URL` and `TEST_LOG`.
//! `scripts/test.sh` sets all of them.

mod cluster;
mod db;
mod nats;
mod pg;

use std::sync::Once;

pub use cluster::NatsCluster;
pub use db::{DEFAULT_TEST_DATABASE_URL, TEST_DB_PREFIX, TestDb};
pub use nats::{DEFAULT_TEST_NATS_URL, NatsServer, shared_nats_url};
pub use pg::PgServer;

/// A unique prefix such as `t3f9a0c12be47`, safe in NATS subjects, stream and consumer names.
///
/// It starts with a letter and holds only `[0-9a-z]`, so it is also a valid SQL identifier.
pub fn unique_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}", &id[..12])
}

/// The bootstrap admin key of every service a test process starts, made once
/// per process: services get it as their admin key, test clients present it.
pub fn admin_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        plaint_access::api_key::NewKey::generate()
            .unwrap_or_else(|e| panic!("cannot make the test admin key: {e}"))
            .text
    })
}

/// `channel`, presenting [`admin_key`] on every call.
pub fn authed(channel: tonic::transport::Channel) -> plaint_client::Authed {
    let bearer = plaint_client::Bearer::token(admin_key())
        .unwrap_or_else(|e| panic!("the test admin key is not a header value: {e}"));
    plaint_client::authed(channel, bearer)
}

/// Installs a `tracing` subscriber once per process, only when `TEST_LOG` is set.
///
/// The filter comes from `RUST_LOG` (default `info`), and output goes through the test
/// writer, so the harness captures it per test. Without `TEST_LOG` tests stay silent.
pub fn init_test_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // Another subscriber may already be installed (e.g. by the test itself): keep it.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_prefix_is_subject_safe_and_unique() {
        let a = unique_prefix();
        let b = unique_prefix();
        assert_ne!(a, b);
        assert_eq!(a.len(), 13);
        assert!(a.starts_with('t'));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn init_test_tracing_can_be_called_twice() {
        init_test_tracing();
        init_test_tracing();
    }
}
