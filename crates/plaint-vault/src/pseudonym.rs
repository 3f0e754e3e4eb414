//! The keyed pseudonym routing knows a customer by: HMAC-SHA256 of the
//! customer id under the deployment's pseudonym secret, cut to 128 bits.
//!
//! The same id always gives the same pseudonym, so the cooldown and the
//! per-customer history hold across replays, simulations and erasures; the
//! id cannot be read back from it, nor guessed from a list of likely ids
//! without the secret.

use std::path::Path;

use plaint_domain::values::{CUSTOMER_REF_LEN, CustomerId, CustomerRef};
use ring::hmac;

use crate::secret::{SecretError, read_keys};

/// The setting naming the pseudonym secret's file.
pub const PSEUDONYM_SECRET_SETTING: &str = "PLAINT_PSEUDONYM_SECRET_FILE";

/// Makes pseudonyms under one secret.
pub struct Pseudonyms {
    key: hmac::Key,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonyms").finish_non_exhaustive()
    }
}

impl Pseudonyms {
    /// Reads the secret from its file (its first key; the secret is never
    /// rotated, since every pseudonym in the log depends on it).
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let keys = read_keys(PSEUDONYM_SECRET_SETTING, path)?;
        let first = keys.first().ok_or_else(|| SecretError::Empty {
            setting: PSEUDONYM_SECRET_SETTING,
            path: path.display().to_string(),
        })?;
        Ok(Self::from_secret(first))
    }

    /// Pseudonyms under `secret`.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The pseudonym of `id`.
    pub fn of(&self, id: &CustomerId) -> CustomerRef {
        self.of_raw(id.as_str())
    }

    /// The pseudonym of a raw id, as stored before ids were parsed.
    pub fn of_raw(&self, id: &str) -> CustomerRef {
        let tag = hmac::sign(&self.key, id.as_bytes());
        let mut digest = [0u8; CUSTOMER_REF_LEN / 2];
        digest.copy_from_slice(&tag.as_ref()[..CUSTOMER_REF_LEN / 2]);
        CustomerRef::from_digest(&digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_stable_under_one_secret_and_differs_under_another() {
        let id = CustomerId::parse("cust-42").unwrap_or_else(|_| unreachable!());
        let a = Pseudonyms::from_secret(&[1; 32]);
        let b = Pseudonyms::from_secret(&[2; 32]);
        assert_eq!(a.of(&id), a.of(&id));
        assert_ne!(a.of(&id), b.of(&id));
        assert_eq!(a.of(&id).as_str().len(), CUSTOMER_REF_LEN);
        assert!(!a.of(&id).as_str().contains("cust"));
        assert!(CustomerRef::parse(a.of(&id).as_str()).is_ok());
    }
}
