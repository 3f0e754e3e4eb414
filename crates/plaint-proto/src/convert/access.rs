//! API keys and audit entries between the log's wire form and the domain.

use plaint_domain::Timestamp;
use plaint_domain::access::{AccessEvent, AuditEntry, KeyId, KeyRecord, Scope};
use plaint_domain::values::{AtField, Problem, ValidationError};

use crate::convert::{label, text};
use crate::events as pb;
use pb::envelope::Event as E;

/// The wire form of an access event.
pub fn access_event_to_wire(event: &AccessEvent) -> E {
    match event {
        AccessEvent::KeyCreated(k) => E::KeyCreated(pb::KeyCreated {
            key_id: k.key_id.to_string(),
            name: k.name.to_string(),
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            secret_sha256: k.secret_sha256.to_vec(),
            expires_at_ms: k.expires_at.map_or(0, Timestamp::as_millis),
            created_by: k.created_by.to_string(),
        }),
        AccessEvent::KeyExpirySet {
            key_id,
            expires_at,
            set_by,
        } => E::KeyExpirySet(pb::KeyExpirySet {
            key_id: key_id.to_string(),
            expires_at_ms: expires_at.as_millis(),
            set_by: set_by.to_string(),
        }),
        AccessEvent::KeyRevoked { key_id, revoked_by } => E::KeyRevoked(pb::KeyRevoked {
            key_id: key_id.to_string(),
            revoked_by: revoked_by.to_string(),
        }),
        AccessEvent::Audited(a) => E::Audited(pb::Audited {
            actor: a.actor.to_string(),
            action: a.action.to_string(),
            target: a.target.as_str().to_owned(),
            before: a.before.as_str().to_owned(),
            after: a.after.as_str().to_owned(),
        }),
    }
}

/// An access event, or the wire event back when it is another kind.
pub fn access_event_from_wire(event: E) -> Result<Result<AccessEvent, E>, ValidationError> {
    Ok(Ok(match event {
        E::KeyCreated(k) => AccessEvent::KeyCreated(Box::new(KeyRecord {
            key_id: KeyId::parse(&k.key_id).at("key_id")?,
            name: label(&k.name, "name")?,
            scopes: Scope::parse_set(k.scopes.iter().map(String::as_str)).at("scopes")?,
            secret_sha256: k.secret_sha256.as_slice().try_into().map_err(|_| {
                ValidationError::new(
                    "secret_sha256",
                    Problem::Malformed {
                        expected: "32 bytes",
                    },
                )
            })?,
            expires_at: (k.expires_at_ms != 0).then(|| Timestamp::from_millis(k.expires_at_ms)),
            created_by: label(&k.created_by, "created_by")?,
        })),
        E::KeyExpirySet(k) => AccessEvent::KeyExpirySet {
            key_id: KeyId::parse(&k.key_id).at("key_id")?,
            expires_at: Timestamp::from_millis(k.expires_at_ms),
            set_by: label(&k.set_by, "set_by")?,
        },
        E::KeyRevoked(k) => AccessEvent::KeyRevoked {
            key_id: KeyId::parse(&k.key_id).at("key_id")?,
            revoked_by: label(&k.revoked_by, "revoked_by")?,
        },
        E::Audited(a) => AccessEvent::Audited(Box::new(AuditEntry {
            actor: label(&a.actor, "actor")?,
            action: label(&a.action, "action")?,
            target: text(&a.target, "target")?,
            before: text(&a.before, "before")?,
            after: text(&a.after, "after")?,
        })),
        other => return Ok(Err(other)),
    }))
}
