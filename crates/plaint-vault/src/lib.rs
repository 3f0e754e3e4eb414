//! Crypto-shredding: a customer's personal fields are sealed with a data key
//! of their own, and erasing the customer deletes that key.
//!
//! - [`secret`]: the master keys and the pseudonym secret, read from files;
//! - [`pseudonym`]: the keyed pseudonym routing knows a customer by;
//! - [`data_key`]: a customer's data key, and its form wrapped by a master key;
//! - [`seal`]: sealing and opening the personal fields of a log event.
//!
//! The AEAD (ChaCha20-Poly1305), HMAC-SHA256 and the random source come from
//! ring, the library the services' TLS already rests on.

pub mod data_key;
pub mod pseudonym;
pub mod seal;
pub mod secret;

pub use data_key::{DataKey, KeyId, WrappedKey};
pub use pseudonym::Pseudonyms;
pub use seal::{Opened, SealError, open, seal};
pub use secret::{MasterKeys, SecretError};

/// The system's random source failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the system's random source failed")]
pub struct NoRandomness;

pub(crate) fn random<const N: usize>() -> Result<[u8; N], NoRandomness> {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| NoRandomness)?;
    Ok(out)
}
