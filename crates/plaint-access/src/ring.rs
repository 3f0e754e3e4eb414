//! The API keys in force, folded from the key events of the log. Each service
//! holds one and checks every presented key against it.

use std::collections::BTreeMap;
use std::ops::Bound;

use plaint_domain::Timestamp;
use plaint_domain::access::{AccessEvent, KeyId, KeyRecord};
use plaint_domain::values::Label;

use crate::api_key::PresentedKey;

/// One key and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key as created, its expiry as last set.
    pub record: KeyRecord,
    /// When it was created.
    pub created_at: Timestamp,
    /// When and by whom it was revoked.
    pub revoked: Option<(Timestamp, Label)>,
}

/// Why a presented key is not accepted. The caller learns that the key is
/// unknown, not whether the id or the secret was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// No key with that id and secret.
    #[error("the API key is not known")]
    Unknown,
    /// The key has expired.
    #[error("the API key has expired")]
    Expired,
    /// The key was revoked.
    #[error("the API key was revoked")]
    Revoked,
}

/// The keys in force, as of a log sequence.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<KeyId, KeyEntry>,
    sequence: u64,
}

impl KeyRing {
    /// Folds in one event of the log, stored at `sequence` and `at`.
    pub fn apply(&mut self, sequence: u64, at: Timestamp, event: &AccessEvent) {
        self.sequence = self.sequence.max(sequence);
        match event {
            AccessEvent::KeyCreated(record) => {
                // A second creation under one id cannot come from a key
                // this code made; the first one stands.
                self.keys
                    .entry(record.key_id.clone())
                    .or_insert_with(|| KeyEntry {
                        record: (**record).clone(),
                        created_at: at,
                        revoked: None,
                    });
            }
            AccessEvent::KeyExpirySet {
                key_id, expires_at, ..
            } => {
                if let Some(entry) = self.keys.get_mut(key_id) {
                    entry.record.expires_at = Some(*expires_at);
                }
            }
            AccessEvent::KeyRevoked { key_id, revoked_by } => {
                if let Some(entry) = self.keys.get_mut(key_id) {
                    entry.revoked.get_or_insert((at, revoked_by.clone()));
                }
            }
            AccessEvent::Audited(_) => {}
        }
    }

    /// Moves past `sequence` without an event to fold (one that does not
    /// decode: it is logged where it is read).
    pub fn pass(&mut self, sequence: u64) {
        self.sequence = self.sequence.max(sequence);
    }

    /// The last log sequence folded in.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Checks a presented key at `now`.
    pub fn check(&self, key: &PresentedKey, now: Timestamp) -> Result<&KeyEntry, KeyRefusal> {
        let entry = self
            .keys
            .get(key.key_id())
            .filter(|e| key.matches(&e.record.secret_sha256))
            .ok_or(KeyRefusal::Unknown)?;
        if entry.revoked.is_some() {
            return Err(KeyRefusal::Revoked);
        }
        if entry.record.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyRefusal::Expired);
        }
        Ok(entry)
    }

    /// One key.
    pub fn get(&self, key_id: &KeyId) -> Option<&KeyEntry> {
        self.keys.get(key_id)
    }

    /// Up to `limit` keys whose id sorts after `after`, in id order.
    pub fn page(&self, after: Option<&KeyId>, limit: usize) -> Vec<&KeyEntry> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.keys
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, e)| e)
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use plaint_domain::access::Scope;

    use super::*;
    use crate::api_key::NewKey;

    fn created(key: &NewKey, expires_at: Option<Timestamp>) -> AccessEvent {
        AccessEvent::KeyCreated(Box::new(KeyRecord {
            key_id: key.key_id.clone(),
            name: Label::parse("billing").unwrap(),
            scopes: Scope::parse_set(["complaints:read"]).unwrap(),
            secret_sha256: key.secret_sha256,
            expires_at,
            created_by: Label::parse("bootstrap:x").unwrap(),
        }))
    }

    fn presented(key: &NewKey) -> PresentedKey {
        PresentedKey::parse(&key.text).unwrap()
    }

    #[test]
    fn a_key_works_until_it_expires_or_is_revoked() {
        let t = Timestamp::from_millis;
        let (a, b) = (NewKey::generate().unwrap(), NewKey::generate().unwrap());
        let mut ring = KeyRing::default();
        assert_eq!(
            ring.check(&presented(&a), t(0)).err(),
            Some(KeyRefusal::Unknown)
        );
        ring.apply(1, t(10), &created(&a, None));
        ring.apply(2, t(10), &created(&b, Some(t(100))));
        assert!(ring.check(&presented(&a), t(20)).is_ok());
        assert!(ring.check(&presented(&b), t(99)).is_ok());
        assert_eq!(
            ring.check(&presented(&b), t(100)).err(),
            Some(KeyRefusal::Expired)
        );

        ring.apply(
            3,
            t(30),
            &AccessEvent::KeyRevoked {
                key_id: a.key_id.clone(),
                revoked_by: Label::parse("key:y").unwrap(),
            },
        );
        assert_eq!(
            ring.check(&presented(&a), t(31)).err(),
            Some(KeyRefusal::Revoked)
        );
        assert_eq!(ring.sequence(), 3);
    }

    #[test]
    fn a_right_id_with_a_wrong_secret_is_unknown() {
        let a = NewKey::generate().unwrap();
        let mut ring = KeyRing::default();
        ring.apply(1, Timestamp::from_millis(0), &created(&a, None));
        let mut forged = a.text.clone();
        forged.replace_range(forged.len() - 4.., "0000");
        let forged = PresentedKey::parse(&forged).unwrap();
        assert_eq!(
            ring.check(&forged, Timestamp::from_millis(1)).err(),
            Some(KeyRefusal::Unknown)
        );
    }

    #[test]
    fn pages_follow_key_id_order() {
        let mut ring = KeyRing::default();
        let mut ids = Vec::new();
        for i in 0..5 {
            let k = NewKey::generate().unwrap();
            ids.push(k.key_id.clone());
            ring.apply(i, Timestamp::from_millis(0), &created(&k, None));
        }
        ids.sort();
        let first: Vec<_> = ring
            .page(None, 2)
            .iter()
            .map(|e| e.record.key_id.clone())
            .collect();
        assert_eq!(first, ids[..2]);
        let rest: Vec<_> = ring
            .page(Some(&ids[1]), 10)
            .iter()
            .map(|e| e.record.key_id.clone())
            .collect();
        assert_eq!(rest, ids[2..]);
    }
}
