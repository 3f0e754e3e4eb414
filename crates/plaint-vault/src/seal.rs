//! Sealing an event's personal fields before it is appended, and opening
//! them when it is read back.
//!
//! The fields are taken out of the event (left empty), encoded in the order
//! [`plaint_proto::personal::for_each_personal`] visits them, and encrypted
//! with the customer's data key; the event id and complaint id are the
//! associated data, so a sealed block copied into another event does not
//! open. An event whose key is gone opens as erased: its personal fields
//! read as the erased marker, and that is not an error.

use plaint_domain::personal::ERASED;
use plaint_domain::values::CustomerRef;
use plaint_proto::events as pb;
use plaint_proto::personal::{mark_personal, restore_personal, take_personal};
use prost::Message;
use ring::aead::{Aad, Nonce};

use crate::data_key::{DataKey, KeyId};
use crate::pseudonym::Pseudonyms;
use crate::secret::NONCE_BYTES;

/// What stands in a personal field for a reader that does not open them
/// (the router deciding a route never needs them).
pub const SEALED: &str = "[sealed]";

/// Why an event could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The event carries personal data but no customer to seal it for.
    #[error("a {event} event carries personal data but names no customer to seal it for")]
    NoCustomer {
        /// The event type.
        event: &'static str,
    },
    /// The system's random source failed.
    #[error("the system's random source failed")]
    NoRandomness,
    /// The sealed block does not open with the key it names: it was altered
    /// or copied from another event.
    #[error("the sealed personal fields do not open with their key: altered or moved")]
    Forged,
    /// The block opened, but does not fit the event.
    #[error("the sealed personal fields do not fit the event")]
    Malformed,
}

/// What [`open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Nothing was sealed.
    Clear,
    /// The personal fields are back in clear.
    Opened,
    /// The key is gone (the customer was erased): the fields read as erased.
    Erased,
}

/// The customer whose data key a sealed event needs, if it is sealed.
pub fn sealed_for(wire: &pb::Envelope) -> Option<CustomerRef> {
    CustomerRef::parse(&wire.sealed.as_ref()?.customer_ref).ok()
}

/// Seals the event's personal fields with `key`, the data key of
/// `customer`. An event without personal data is left as it is.
pub fn seal(
    wire: &mut pb::Envelope,
    customer: Option<&CustomerRef>,
    key: Option<&DataKey>,
) -> Result<(), SealError> {
    let Some(event) = wire.event.as_mut() else {
        return Ok(());
    };
    let Some(values) = take_personal(event) else {
        return Ok(());
    };
    let (Some(customer), Some(key)) = (customer, key) else {
        return Err(SealError::NoCustomer {
            event: event_name(wire),
        });
    };
    let mut buf = pb::PersonalValues { values }.encode_to_vec();
    let nonce = crate::random::<NONCE_BYTES>().map_err(|_| SealError::NoRandomness)?;
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated(wire, customer, key.id())),
            &mut buf,
        )
        .map_err(|_| SealError::NoRandomness)?;
    wire.sealed = Some(pb::Sealed {
        customer_ref: customer.to_string(),
        key_id: key.id().to_string(),
        nonce: nonce.to_vec(),
        ciphertext: buf,
    });
    Ok(())
}

/// Opens the event's personal fields with `key`, the current data key of
/// the customer it names (`None` when they have none: erased).
pub fn open(wire: &mut pb::Envelope, key: Option<&DataKey>) -> Result<Opened, SealError> {
    let Some(sealed) = wire.sealed.take() else {
        return Ok(Opened::Clear);
    };
    let Some(event) = wire.event.as_mut() else {
        return Err(SealError::Malformed);
    };
    let key = key.filter(|k| k.id().to_string() == sealed.key_id);
    let Some(key) = key else {
        mark_personal(event, ERASED);
        return Ok(Opened::Erased);
    };
    let nonce =
        <[u8; NONCE_BYTES]>::try_from(sealed.nonce.as_slice()).map_err(|_| SealError::Malformed)?;
    let customer = CustomerRef::parse(&sealed.customer_ref).map_err(|_| SealError::Malformed)?;
    let ad = associated(wire, &customer, key.id());
    let mut buf = sealed.ciphertext;
    let plain = key
        .key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(ad), &mut buf)
        .map_err(|_| SealError::Forged)?;
    let values = pb::PersonalValues::decode(&*plain).map_err(|_| SealError::Malformed)?;
    let Some(event) = wire.event.as_mut() else {
        return Err(SealError::Malformed);
    };
    if !restore_personal(event, values.values) {
        return Err(SealError::Malformed);
    }
    Ok(Opened::Opened)
}

/// Leaves the personal fields sealed and writes [`SEALED`] in their place,
/// for a reader that needs only routing facts.
pub fn mask(wire: &mut pb::Envelope) {
    if wire.sealed.take().is_some()
        && let Some(event) = wire.event.as_mut()
    {
        mark_personal(event, SEALED);
    }
}

/// Gives an event written before personal data was sealed the pseudonym
/// later readers expect: a complaint's customer, and a CEO slot's.
pub fn adopt_legacy(wire: &mut pb::Envelope, pseudonyms: &Pseudonyms) {
    use pb::envelope::Event as E;
    match wire.event.as_mut() {
        Some(E::ComplaintReceived(r)) => {
            if let Some(c) = r.customer.as_mut()
                && c.customer_ref.is_empty()
                && !c.customer_id.is_empty()
            {
                c.customer_ref = pseudonyms.of_raw(c.customer_id.trim()).to_string();
            }
        }
        Some(E::CeoSlotReserved(s)) if s.customer_ref.is_empty() && !s.customer_id.is_empty() => {
            s.customer_ref = pseudonyms.of_raw(s.customer_id.trim()).to_string();
        }
        _ => {}
    }
}

fn associated(wire: &pb::Envelope, customer: &CustomerRef, key: KeyId) -> Vec<u8> {
    format!(
        "plaint personal fields\0{}\0{}\0{}\0{}",
        wire.event_id, wire.complaint_id, customer, key
    )
    .into_bytes()
}

fn event_name(wire: &pb::Envelope) -> &'static str {
    use pb::envelope::Event as E;
    match wire.event {
        Some(E::ComplaintReceived(_)) => "complaint_received",
        Some(E::CeoSlotReserved(_)) => "ceo_slot_reserved",
        Some(_) => "complaint",
        None => "unknown",
    }
}

/// Seals arbitrary bytes (a dead letter's original message) with a
/// customer's data key: the nonce followed by the ciphertext. `context`
/// is bound as associated data.
pub fn seal_bytes(key: &DataKey, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
    let nonce = crate::random::<NONCE_BYTES>().map_err(|_| SealError::NoRandomness)?;
    let mut buf = plain.to_vec();
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buf,
        )
        .map_err(|_| SealError::NoRandomness)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`seal_bytes`] sealed with the same key and context.
pub fn open_bytes(key: &DataKey, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_BYTES {
        return Err(SealError::Malformed);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let nonce = <[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| SealError::Malformed)?;
    let mut buf = ciphertext.to_vec();
    let plain = key
        .key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buf,
        )
        .map_err(|_| SealError::Forged)?;
    Ok(plain.to_vec())
}
