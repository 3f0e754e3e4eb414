//! An API key is `plaint_<key id>_<secret>`: the id names it in listings and
//! the audit trail, the secret (32 random bytes, hex) proves it. The log and
//! the services keep only the secret's SHA-256: keys are random, not chosen
//! by people, so a fast hash is enough and a leaked log reveals no key.

use std::fmt;

use data_encoding::{BASE32_NOPAD, HEXLOWER};
use plaint_domain::access::KeyId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How every API key begins; other bearer tokens are not keys.
pub const PREFIX: &str = "plaint_";
const SECRET_BYTES: usize = 32;
/// Length of a whole key.
pub const KEY_LEN: usize = PREFIX.len() + KeyId::LEN + 1 + SECRET_BYTES * 2;

/// A key as a caller presents it: the id, and the secret to check.
pub struct PresentedKey {
    key_id: KeyId,
    secret: String,
}

impl fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl PresentedKey {
    /// Reads a bearer credential as an API key; `None` when it does not have
    /// the form of one (it may be a JWT).
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(PREFIX)?;
        if raw.len() != KEY_LEN {
            return None;
        }
        let (id, secret) = rest.split_at(KeyId::LEN);
        let secret = secret.strip_prefix('_')?;
        let key_id = KeyId::parse(id).ok()?;
        Some(Self {
            key_id,
            secret: secret.to_owned(),
        })
    }

    /// The key's id.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Whether `other` carries the same secret, compared in constant time.
    pub fn same_secret(&self, other: &PresentedKey) -> bool {
        self.matches(&secret_sha256(&other.secret))
    }

    /// Whether the secret hashes to `expected`, compared in constant time.
    pub fn matches(&self, expected: &[u8; 32]) -> bool {
        secret_sha256(&self.secret).ct_eq(expected).into()
    }
}

/// A new key: the whole text (shown once) and what the log keeps.
pub struct NewKey {
    /// Its id.
    pub key_id: KeyId,
    /// The whole key, to hand to the caller once.
    pub text: String,
    /// SHA-256 of the secret half.
    pub secret_sha256: [u8; 32],
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct NoRandomness(String);

impl NewKey {
    /// Makes a key from the operating system's random source.
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut id = [0u8; 10];
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut id).map_err(|e| NoRandomness(e.to_string()))?;
        getrandom::fill(&mut secret).map_err(|e| NoRandomness(e.to_string()))?;
        let id = BASE32_NOPAD.encode(&id).to_ascii_lowercase();
        let key_id = KeyId::parse(&id).map_err(|e| NoRandomness(e.to_string()))?;
        let secret = HEXLOWER.encode(&secret);
        Ok(Self {
            secret_sha256: secret_sha256(&secret),
            text: format!("{PREFIX}{key_id}_{secret}"),
            key_id,
        })
    }
}

fn secret_sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reads_back_and_matches_only_its_own_hash() {
        let key = NewKey::generate().unwrap();
        assert_eq!(key.text.len(), KEY_LEN);
        let presented = PresentedKey::parse(&key.text).unwrap();
        assert_eq!(presented.key_id(), &key.key_id);
        assert!(presented.matches(&key.secret_sha256));
        let other = NewKey::generate().unwrap();
        assert!(!presented.matches(&other.secret_sha256));
        assert_ne!(other.key_id, key.key_id);
    }

    #[test]
    fn other_bearer_tokens_are_not_keys_and_debug_hides_the_secret() {
        assert!(PresentedKey::parse("eyJhbGciOiJSUzI1NiJ9.e30.sig").is_none());
        assert!(PresentedKey::parse("plaint_short").is_none());
        let key = NewKey::generate().unwrap();
        let secret = &key.text[key.text.len() - 64..];
        let debug = format!("{key:?} {:?}", PresentedKey::parse(&key.text).unwrap());
        assert!(!debug.contains(secret), "{debug}");
    }
}
