//! Who may do what: the scopes a credential carries, API keys as facts in the
//! log (so every replica learns of a revocation from the log itself), and the
//! audit record of every administrative change.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::values::{FreeText, Label, Problem};

/// One permission a credential may carry; each gRPC method needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// Submit complaints and record what happens to them (intake commands).
    ComplaintsWrite,
    /// Read complaints, queues, budgets, goodwill and customer histories; watch updates.
    ComplaintsRead,
    /// Read the published routing policy versions.
    PolicyRead,
    /// Replay stored complaints under a candidate policy.
    PolicySimulate,
    /// Publish a routing policy version.
    PolicyPublish,
    /// Set the economic climate and the social-stance alignment.
    SettingsWrite,
    /// List and requeue the helpdesk messages intake refused.
    DeadLetters,
    /// Drop and rebuild the projections from the log.
    ProjectionsRebuild,
    /// Create, list, expire and revoke API keys.
    KeysAdmin,
    /// Read the audit trail of administrative changes.
    AuditRead,
    /// Erase a customer's personal data.
    CustomersErase,
    /// Export everything held about a customer.
    CustomersExport,
}

impl Scope {
    /// Every scope, in the order operators read them.
    pub const ALL: [Scope; 12] = [
        Scope::ComplaintsWrite,
        Scope::ComplaintsRead,
        Scope::PolicyRead,
        Scope::PolicySimulate,
        Scope::PolicyPublish,
        Scope::SettingsWrite,
        Scope::DeadLetters,
        Scope::ProjectionsRebuild,
        Scope::KeysAdmin,
        Scope::AuditRead,
        Scope::CustomersErase,
        Scope::CustomersExport,
    ];

    /// The name callers and configuration use, e.g. `complaints:write`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::ComplaintsWrite => "complaints:write",
            Scope::ComplaintsRead => "complaints:read",
            Scope::PolicyRead => "policy:read",
            Scope::PolicySimulate => "policy:simulate",
            Scope::PolicyPublish => "policy:publish",
            Scope::SettingsWrite => "settings:write",
            Scope::DeadLetters => "dead-letters",
            Scope::ProjectionsRebuild => "projections:rebuild",
            Scope::KeysAdmin => "keys:admin",
            Scope::AuditRead => "audit:read",
            Scope::CustomersErase => "customers:erase",
            Scope::CustomersExport => "customers:export",
        }
    }

    /// Parses a scope name.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| Problem::NotOneOf {
                accepted: Self::ALL.iter().map(|s| s.as_str().to_owned()).collect(),
            })
    }

    /// Parses a list of scope names; `*` stands for every scope.
    pub fn parse_set<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Scopes, Problem> {
        let mut set = BTreeSet::new();
        for name in raw {
            if name.trim() == "*" {
                set.extend(Self::ALL);
            } else {
                set.insert(Self::parse(name)?);
            }
        }
        Ok(set)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Scope {
    type Error = Problem;
    fn try_from(raw: String) -> Result<Self, Problem> {
        Self::parse(&raw)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.as_str().to_owned()
    }
}

/// A set of scopes.
pub type Scopes = BTreeSet<Scope>;

/// Characters of a key id: lowercase letters and digits, so that an id reads
/// the same everywhere (logs, audit, the key itself).
fn is_key_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// The public half of an API key: names it in listings, audit and logs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Length of every key id.
    pub const LEN: usize = 16;

    /// Parses a key id: exactly [`KeyId::LEN`] lowercase letters and digits.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        if raw.len() != Self::LEN || !raw.chars().all(is_key_id_char) {
            return Err(Problem::Malformed {
                expected: "16 lowercase letters and digits",
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for KeyId {
    type Error = Problem;
    fn try_from(raw: String) -> Result<Self, Problem> {
        Self::parse(&raw)
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

/// An API key as the log keeps it: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Its id.
    pub key_id: KeyId,
    /// What it is for, e.g. `billing-system`.
    pub name: Label,
    /// What it may do.
    pub scopes: Scopes,
    /// SHA-256 of the secret half.
    pub secret_sha256: [u8; 32],
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Who created it.
    pub created_by: Label,
}

/// One administrative change: who, what, and the value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Who made it: `key:<id>`, `token:<subject>` or `bootstrap:<id>`.
    pub actor: Label,
    /// What was done: the gRPC method, e.g. `SetClimate`.
    pub action: Label,
    /// What it was done to (a key id, a policy version, a dead letter), if anything.
    pub target: FreeText,
    /// The value before, as JSON (empty when there was none).
    pub before: FreeText,
    /// The value after, as JSON (empty when there is none).
    pub after: FreeText,
}

/// A fact about who may call the services, or about what an operator changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccessEvent {
    /// A key was created.
    KeyCreated(Box<KeyRecord>),
    /// A key's expiry was set (to rotate it out at a given time).
    KeyExpirySet {
        /// The key.
        key_id: KeyId,
        /// When it stops working.
        expires_at: Timestamp,
        /// Who set it.
        set_by: Label,
    },
    /// A key was revoked: it stops working at once, for good.
    KeyRevoked {
        /// The key.
        key_id: KeyId,
        /// Who revoked it.
        revoked_by: Label,
    },
    /// An administrative change was made.
    Audited(Box<AuditEntry>),
}

impl AccessEvent {
    /// The stable event-type name.
    pub const fn type_name(&self) -> &'static str {
        match self {
            AccessEvent::KeyCreated(_) => "key_created",
            AccessEvent::KeyExpirySet { .. } => "key_expiry_set",
            AccessEvent::KeyRevoked { .. } => "key_revoked",
            AccessEvent::Audited(_) => "audited",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn scope_names_round_trip_and_star_means_all() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(s));
        }
        assert_eq!(
            Scope::parse_set(["*"]).map(|s| s.len()),
            Ok(Scope::ALL.len())
        );
        let e = Scope::parse("complaints:delete").unwrap_err();
        assert!(e.to_string().contains("complaints:write"), "{e}");
    }

    #[test]
    fn key_ids_are_sixteen_lowercase_alphanumerics() {
        assert!(KeyId::parse("abcdefgh12345678").is_ok());
        assert!(KeyId::parse("ABCDEFGH12345678").is_err());
        assert!(KeyId::parse("abc").is_err());
        assert!(KeyId::parse("abcdefgh1234567_").is_err());
    }
}
