//! The `Access` gRPC service: API keys (created, listed, expired, revoked as
//! events in the log) and the audit trail of administrative changes.

use std::sync::PoisonError;

use plaint_access::api_key::NewKey;
use plaint_access::audit::{self, Change};
use plaint_access::follow;
use plaint_access::gate::SharedRing;
use plaint_access::ring::KeyEntry;
use plaint_bus::{EventLog, Expect};
use plaint_domain::access::{AccessEvent, KeyId, KeyRecord, Scope};
use plaint_domain::event::{Envelope, EventPayload};
use plaint_domain::values::{AtField, Label};
use plaint_domain::{EventId, SCHEMA_VERSION, Timestamp};
use plaint_proto::access::{self as pb, access_server};
use plaint_routing::now;
use plaint_runtime::gate::{Caller, caller_of};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Keys or audit entries in a page when the caller does not say.
const DEFAULT_PAGE: u32 = 100;
/// Keys or audit entries in a page at most.
const MAX_PAGE: u32 = 500;
/// The longest lifetime a key may be given: ten years.
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// The `Access` gRPC service.
#[derive(Debug, Clone)]
pub(crate) struct AccessService {
    log: EventLog,
    ring: SharedRing,
}

impl AccessService {
    /// Keys appended to `log` and read back through `ring`.
    pub(crate) fn new(log: EventLog, ring: SharedRing) -> Self {
        Self { log, ring }
    }

    /// Appends a key event, then folds the log into the ring, so that this
    /// replica answers with the change at once (the others within a poll).
    async fn append(&self, event: AccessEvent, at: Timestamp) -> Result<u64, Status> {
        let envelope = Envelope {
            event_id: EventId::from_uuid(uuid::Uuid::new_v4()),
            complaint_id: None,
            occurred_at: at,
            schema_version: SCHEMA_VERSION,
            causation_id: None,
            correlation_id: None,
            payload: EventPayload::Access(event),
        };
        let appended = self
            .log
            .append(&self.log.names().keys(), &envelope, Expect::Any, None)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot append a key event");
                Status::unavailable("the event log is unavailable")
            })?;
        self.catch_up().await?;
        Ok(appended.sequence)
    }

    async fn catch_up(&self) -> Result<(), Status> {
        follow::catch_up(&self.log, &self.ring).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read the key events");
            Status::unavailable("the event log is unavailable")
        })
    }

    /// Appends a change to an existing key, audits it, and answers with the
    /// key as it now stands.
    async fn change_key(
        &self,
        caller: &Caller,
        at: Timestamp,
        event: AccessEvent,
        change: Change<'_>,
        key_id: &KeyId,
    ) -> Result<Response<pb::KeyChangeResponse>, Status> {
        let sequence = self.append(event, at).await?;
        audit::record(&self.log, caller, at, change).await?;
        let entry = self
            .entry(key_id)
            .ok_or_else(|| Status::internal("the key left the log"))?;
        Ok(Response::new(pb::KeyChangeResponse {
            key: Some(key_to_wire(&entry)),
            sequence,
        }))
    }

    fn entry(&self, key_id: &KeyId) -> Option<KeyEntry> {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key_id)
            .cloned()
    }
}

fn invalid(field: &str, problem: impl ToString) -> Status {
    let problem = problem.to_string();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field} {problem}"),
        ErrorDetails::with_bad_request_violation(field, problem),
    )
}

fn key_id(raw: &str) -> Result<KeyId, Status> {
    KeyId::parse(raw).map_err(|p| invalid("key_id", p))
}

fn actor(caller: &Caller) -> Result<Label, Status> {
    Label::parse(caller.id()).map_err(|_| Status::internal("the caller's name is not a label"))
}

fn page_size(requested: u32) -> usize {
    let size = if requested == 0 {
        DEFAULT_PAGE
    } else {
        requested.min(MAX_PAGE)
    };
    size as usize
}

fn key_to_wire(e: &KeyEntry) -> pb::ApiKey {
    pb::ApiKey {
        key_id: e.record.key_id.to_string(),
        name: e.record.name.to_string(),
        scopes: e
            .record
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        created_at_ms: e.created_at.as_millis(),
        created_by: e.record.created_by.to_string(),
        expires_at_ms: e.record.expires_at.map_or(0, Timestamp::as_millis),
        revoked: e.revoked.is_some(),
        revoked_at_ms: e.revoked.as_ref().map_or(0, |(at, _)| at.as_millis()),
        revoked_by: e
            .revoked
            .as_ref()
            .map(|(_, by)| by.to_string())
            .unwrap_or_default(),
    }
}

fn expiry_json(at: Option<Timestamp>) -> String {
    match at {
        Some(at) => format!("{{\"expires_at_ms\":{}}}", at.as_millis()),
        None => "{\"expires_at_ms\":null}".to_owned(),
    }
}

#[tonic::async_trait]
impl access_server::Access for AccessService {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        let name = Label::parse(&r.name).map_err(|p| invalid("name", p))?;
        if r.scopes.is_empty() {
            return Err(invalid(
                "scopes",
                "is required: name at least one scope, or *",
            ));
        }
        let scopes = Scope::parse_set(r.scopes.iter().map(String::as_str))
            .at("scopes")
            .map_err(|v| invalid(&v.field, v.problem))?;
        if r.ttl_secs > MAX_TTL_SECS {
            return Err(invalid(
                "ttl_secs",
                format!("is {}, the limit is {MAX_TTL_SECS} (ten years)", r.ttl_secs),
            ));
        }
        let at = now();
        let expires_at = (r.ttl_secs > 0).then(|| {
            let ms = i64::try_from(r.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            Timestamp::from_millis(at.as_millis().saturating_add(ms))
        });
        let key = NewKey::generate().map_err(|e| {
            tracing::error!(error = %e, "cannot make a key");
            Status::internal("no randomness to make a key with")
        })?;
        let record = KeyRecord {
            key_id: key.key_id.clone(),
            name,
            scopes,
            secret_sha256: key.secret_sha256,
            expires_at,
            created_by: actor(&caller)?,
        };
        let after = serde_json::json!({
            "name": record.name.as_str(),
            "scopes": record.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "expires_at_ms": record.expires_at.map(Timestamp::as_millis),
        })
        .to_string();
        let sequence = self
            .append(AccessEvent::KeyCreated(Box::new(record)), at)
            .await?;
        audit::record(
            &self.log,
            &caller,
            at,
            Change {
                action: "CreateKey",
                target: key.key_id.as_str(),
                before: "",
                after: &after,
            },
        )
        .await?;
        tracing::info!(key_id = %key.key_id, caller = %caller, "API key created");
        let entry = self
            .entry(&key.key_id)
            .ok_or_else(|| Status::internal("the new key is not in the log"))?;
        Ok(Response::new(pb::CreateKeyResponse {
            key: Some(key_to_wire(&entry)),
            secret: key.text,
            sequence,
        }))
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let r = request.into_inner();
        let after = match r.after_key_id.as_str() {
            "" => None,
            raw => Some(KeyId::parse(raw).map_err(|p| invalid("after_key_id", p))?),
        };
        let limit = page_size(r.page_size);
        self.catch_up().await?;
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        let page = ring.page(after.as_ref(), limit + 1);
        let more = page.len() > limit;
        let keys: Vec<_> = page.iter().take(limit).map(|e| key_to_wire(e)).collect();
        let next_after_key_id = match keys.last() {
            Some(last) if more => last.key_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListKeysResponse {
            keys,
            next_after_key_id,
        }))
    }

    async fn expire_key(
        &self,
        request: Request<pb::ExpireKeyRequest>,
    ) -> Result<Response<pb::KeyChangeResponse>, Status> {
        let caller = caller_of(&request);
        let r = request.into_inner();
        let key_id = key_id(&r.key_id)?;
        self.catch_up().await?;
        let before = self
            .entry(&key_id)
            .ok_or_else(|| Status::not_found(format!("no key {key_id}")))?;
        if before.revoked.is_some() {
            return Err(Status::failed_precondition(format!(
                "key {key_id} is revoked already"
            )));
        }
        let at = now();
        let expires_at = if r.expires_at_ms == 0 {
            at
        } else {
            Timestamp::from_millis(r.expires_at_ms)
        };
        let event = AccessEvent::KeyExpirySet {
            key_id: key_id.clone(),
            expires_at,
            set_by: actor(&caller)?,
        };
        let change = Change {
            action: "ExpireKey",
            target: key_id.as_str(),
            before: &expiry_json(before.record.expires_at),
            after: &expiry_json(Some(expires_at)),
        };
        self.change_key(&caller, at, event, change, &key_id).await
    }

    async fn revoke_key(
        &self,
        request: Request<pb::RevokeKeyRequest>,
    ) -> Result<Response<pb::KeyChangeResponse>, Status> {
        let caller = caller_of(&request);
        let key_id = key_id(&request.into_inner().key_id)?;
        self.catch_up().await?;
        let before = self
            .entry(&key_id)
            .ok_or_else(|| Status::not_found(format!("no key {key_id}")))?;
        if before.revoked.is_some() {
            // Revoking twice changes nothing: answered, not recorded again.
            return Ok(Response::new(pb::KeyChangeResponse {
                key: Some(key_to_wire(&before)),
                sequence: 0,
            }));
        }
        let event = AccessEvent::KeyRevoked {
            key_id: key_id.clone(),
            revoked_by: actor(&caller)?,
        };
        let change = Change {
            action: "RevokeKey",
            target: key_id.as_str(),
            before: "{\"revoked\":false}",
            after: "{\"revoked\":true}",
        };
        let answer = self
            .change_key(&caller, now(), event, change, &key_id)
            .await?;
        tracing::info!(key_id = %key_id, caller = %caller, "API key revoked");
        Ok(answer)
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let r = request.into_inner();
        let limit = page_size(r.page_size);
        let items = self
            .log
            .read_matching_after(&self.log.names().audit(), r.after_sequence, limit)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot read the audit trail");
                Status::unavailable("the event log is unavailable")
            })?;
        let full = items.len() == limit;
        let last = items.last().map_or(0, |i| i.sequence);
        let entries = items
            .into_iter()
            .filter_map(|item| {
                let stored = match item.event {
                    Ok(stored) => stored,
                    Err(e) => {
                        tracing::warn!(sequence = item.sequence, error = %e, "an audit entry does not decode");
                        return None;
                    }
                };
                let EventPayload::Access(AccessEvent::Audited(a)) = stored.envelope.payload else {
                    return None;
                };
                Some(pb::AuditRecord {
                    sequence: item.sequence,
                    at_ms: stored.envelope.occurred_at.as_millis(),
                    actor: a.actor.to_string(),
                    action: a.action.to_string(),
                    target: a.target.as_str().to_owned(),
                    before: a.before.as_str().to_owned(),
                    after: a.after.as_str().to_owned(),
                })
            })
            .collect();
        Ok(Response::new(pb::ListAuditResponse {
            entries,
            next_after_sequence: if full { last } else { 0 },
        }))
    }
}
