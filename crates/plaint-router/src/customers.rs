//! A customer's rights over their personal data: erasure (crypto-shredding)
//! and export, and the re-wrap that follows a master key rotation. Each
//! change is audited under the customer's pseudonym, never their id.

use plaint_access::audit::{self, Change};
use plaint_bus::{AppendError, Erasure, EventLog, Expect, KeyStoreError};
use plaint_domain::event::CompanyEvent;
use plaint_domain::values::{AtField, CustomerId, CustomerRef};
use plaint_projection::store::Store;
use plaint_proto::router as pb;
use plaint_routing::now;
use plaint_runtime::gate::Caller;
use serde_json::{Value, json};
use tonic::Status;

/// Erases one customer: the key first (from then on nothing of theirs can be
/// read), then the erasure event the read models follow.
pub(crate) async fn erase(
    log: &EventLog,
    caller: &Caller,
    req: pb::EraseCustomerRequest,
) -> Result<pb::EraseCustomerResponse, Status> {
    let customer = customer_ref(log, &req.customer_id)?;
    let erasure = log.data_keys().erase(&customer).await.map_err(key_store)?;
    if erasure == Erasure::NeverSeen {
        return Err(Status::not_found(
            "customer_id: the system holds no personal data of this customer",
        ));
    }
    let erased_by = super::admin::operator(caller)?;
    let envelope = super::admin::operator_envelope(CompanyEvent::CustomerErased {
        customer: customer.clone(),
        erased_by,
    });
    // Recorded again after an earlier erasure too: if that one stopped
    // between the key and the event, this completes it.
    let sequence = match log
        .append(&log.names().customers(), &envelope, Expect::Any, None)
        .await
    {
        Ok(a) => a.sequence,
        Err(AppendError::Bus(e)) => return Err(super::admin::unavailable(e)),
        Err(AppendError::WrongLastSequence) => {
            return Err(Status::aborted("the erasure could not be recorded; retry"));
        }
    };
    audited(
        log,
        caller,
        "EraseCustomer",
        &customer,
        &format!("{{\"sequence\":{sequence}}}"),
    )
    .await?;
    tracing::info!(customer_ref = %customer, sequence, "customer erased");
    Ok(pb::EraseCustomerResponse {
        sequence,
        already_erased: erasure == Erasure::AlreadyErased,
        customer_ref: customer.to_string(),
    })
}

/// Everything the read models hold about one customer, as JSON.
pub(crate) async fn export(
    log: &EventLog,
    store: &Store,
    caller: &Caller,
    customer_id: &str,
) -> Result<pb::ExportCustomerDataResponse, Status> {
    let customer = customer_ref(log, customer_id)?;
    let data = store.customer_data(&customer).await.map_err(|e| {
        tracing::warn!(error = %e, "export failed");
        Status::unavailable("the read models are unavailable")
    })?;
    if data.complaints.is_empty() {
        return Err(Status::not_found(
            "customer_id: the system holds no complaint of this customer",
        ));
    }
    let complaints = data
        .complaints
        .iter()
        .map(|(state, timeline)| {
            json!({
                "complaint": parse(state),
                "timeline": timeline.iter().map(|t| json!({
                    "sequence": t.sequence,
                    "event_id": t.event_id,
                    "event_type": t.event_type,
                    "occurred_at_ms": t.occurred_at.as_millis(),
                    "event": parse(&t.detail_json),
                })).collect::<Vec<_>>(),
            })
        })
        .collect::<Vec<_>>();
    let count = u32::try_from(complaints.len()).unwrap_or(u32::MAX);
    let document = json!({
        "customer_id": customer_id.trim(),
        "customer_ref": customer.as_str(),
        "exported_at_ms": now().as_millis(),
        "truncated": data.truncated,
        "complaints": complaints,
    });
    audited(
        log,
        caller,
        "ExportCustomerData",
        &customer,
        &format!("{{\"complaints\":{count}}}"),
    )
    .await?;
    Ok(pb::ExportCustomerDataResponse {
        json: document.to_string(),
        complaints: count,
        truncated: data.truncated,
    })
}

/// Wraps every data key with the current master key.
pub(crate) async fn rewrap(
    log: &EventLog,
    caller: &Caller,
) -> Result<pb::RewrapDataKeysResponse, Status> {
    let keys = log.data_keys();
    let done = keys.rewrap_all().await.map_err(key_store)?;
    let master = keys.master_key_id();
    audit::record(
        log,
        caller,
        now(),
        Change {
            action: "RewrapDataKeys",
            target: "data keys",
            before: "",
            after: &format!(
                "{{\"master_key_id\":\"{master}\",\"rewrapped\":{},\"already_current\":{}}}",
                done.rewrapped, done.current
            ),
        },
    )
    .await?;
    Ok(pb::RewrapDataKeysResponse {
        rewrapped: done.rewrapped,
        already_current: done.current,
        master_key_id: master,
    })
}

/// Records what was done to a customer's data, naming them by pseudonym only.
async fn audited(
    log: &EventLog,
    caller: &Caller,
    action: &'static str,
    customer: &CustomerRef,
    after: &str,
) -> Result<(), Status> {
    audit::record(
        log,
        caller,
        now(),
        Change {
            action,
            target: &format!("customer:{customer}"),
            before: "",
            after,
        },
    )
    .await?;
    Ok(())
}

fn customer_ref(log: &EventLog, raw: &str) -> Result<CustomerRef, Status> {
    let id = CustomerId::parse(raw)
        .at("customer_id")
        .map_err(super::admin::invalid_value)?;
    Ok(log.data_keys().pseudonyms().of(&id))
}

fn parse(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

fn key_store(e: KeyStoreError) -> Status {
    match e {
        KeyStoreError::Bus(b) => super::admin::unavailable(b),
        other => {
            tracing::error!(error = %other, "data keys unusable");
            Status::internal("the data keys cannot be used; the router's log has the cause")
        }
    }
}
