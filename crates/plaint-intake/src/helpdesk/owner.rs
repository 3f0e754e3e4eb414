//! Whose personal data a refused helpdesk message may hold: the customer it
//! names, or the customer of the complaint it names. Read leniently, since
//! the message was refused: whatever can be recognised in it counts.

use plaint_domain::ComplaintId;
use plaint_domain::values::{CustomerId, CustomerRef, ExternalTicketId, SourceSystem};
use plaint_proto::intake as pb;
use prost::Message;

use crate::service::Intake;

/// The customer a refused message belongs to, when it can be told.
pub(super) async fn owner_of(core: &Intake, payload: &[u8]) -> Option<CustomerRef> {
    let named = named_in(payload);
    if let Some(id) = named.customer.and_then(|c| CustomerId::parse(&c).ok()) {
        return Some(core.log().data_keys().pseudonyms().of(&id));
    }
    let id = named.complaint?;
    let history = core.log().history(id).await.ok()?;
    history.state.map(|c| c.facts.customer.reference)
}

#[derive(Debug, Default)]
struct Named {
    customer: Option<String>,
    complaint: Option<ComplaintId>,
}

fn named_in(payload: &[u8]) -> Named {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) {
        let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
        let by_ticket = || {
            let source = SourceSystem::parse(text("source_system")?).ok()?;
            let ticket = ExternalTicketId::parse(text("external_ticket_id")?).ok()?;
            Some(ComplaintId::for_ticket(&source, &ticket))
        };
        return Named {
            customer: v
                .get("customer")
                .and_then(|c| c.get("customer_id"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            complaint: text("complaint_id")
                .and_then(|c| ComplaintId::parse(c).ok())
                .or_else(by_ticket),
        };
    }
    let Ok(m) = pb::HelpdeskMessage::decode(payload) else {
        return Named::default();
    };
    use pb::helpdesk_message::Command as C;
    let header = |h: &Option<pb::CommandHeader>| {
        h.as_ref()
            .and_then(|h| ComplaintId::parse(&h.complaint_id).ok())
    };
    match m.command {
        Some(C::Submit(r)) => Named {
            customer: r.customer.map(|c| c.customer_id),
            complaint: None,
        },
        Some(C::FollowUp(r)) => named(header(&r.header)),
        Some(C::ChangeVisibility(r)) => named(header(&r.header)),
        Some(C::Acknowledge(r)) => named(header(&r.header)),
        Some(C::Assign(r)) => named(header(&r.header)),
        Some(C::AuthorizeReturn(r)) => named(header(&r.header)),
        Some(C::ReceiveItem(r)) => named(header(&r.header)),
        Some(C::ProcessItem(r)) => named(header(&r.header)),
        Some(C::ShipBack(r)) => named(header(&r.header)),
        Some(C::Resolve(r)) => named(header(&r.header)),
        Some(C::Reopen(r)) => named(header(&r.header)),
        Some(C::Withdraw(r)) => named(header(&r.header)),
        None => Named::default(),
    }
}

fn named(complaint: Option<ComplaintId>) -> Named {
    Named {
        customer: None,
        complaint,
    }
}
