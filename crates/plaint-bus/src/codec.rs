//! Envelopes to stored bytes and back, with their personal fields sealed on
//! the way in and, for a reader that needs them, opened on the way out.

use bytes::Bytes;
use plaint_domain::event::{ComplaintEvent, Envelope, EventPayload};
use plaint_domain::values::CustomerRef;
use plaint_proto::DecodeError;
use plaint_proto::envelope::{envelope_from_wire, envelope_to_wire};
use plaint_proto::events as pb;
use plaint_proto::personal::for_each_personal;
use plaint_vault::seal::{adopt_legacy, mask, open, seal, sealed_for};
use prost::Message;

use crate::data_keys::{DataKeys, KeyStoreError};
use crate::error::BusError;

/// What a reader of the log sees of personal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// They stay sealed and read as a marker: for deciding routes and
    /// checking commands, which never need them.
    #[default]
    Masked,
    /// They are opened with the customer's data key, or read as erased when
    /// it is gone: for read models and exports.
    Opened,
}

/// Seals and opens envelopes with the data keys.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) keys: DataKeys,
    pub(crate) reading: Reading,
}

impl Codec {
    /// The stored bytes of `envelope`, its personal fields sealed with the
    /// data key of `owner` (or, for a new complaint, of its customer),
    /// created and stored first if the customer has none.
    pub(crate) async fn encode(
        &self,
        envelope: &Envelope,
        owner: Option<&CustomerRef>,
    ) -> Result<Bytes, BusError> {
        let mut wire = envelope_to_wire(envelope);
        if !carries_personal(&mut wire) {
            return Ok(Bytes::from(wire.encode_to_vec()));
        }
        let owner = owner.or(match &envelope.payload {
            EventPayload::Complaint(ComplaintEvent::Received(facts)) => {
                Some(&facts.customer.reference)
            }
            _ => None,
        });
        let key = match owner {
            Some(customer) => Some(
                self.keys
                    .current_or_new(customer)
                    .await
                    .map_err(KeyStoreError::into_bus)?,
            ),
            None => None,
        };
        seal(&mut wire, owner, key.as_deref()).map_err(|e| BusError::Sealing(e.to_string()))?;
        Ok(Bytes::from(wire.encode_to_vec()))
    }

    /// Decodes stored bytes as this reader sees them.
    pub(crate) async fn decode(&self, sequence: u64, payload: &[u8]) -> Result<Envelope, BusError> {
        let corrupt = |reason: String| BusError::Corrupt { sequence, reason };
        if self.reading == Reading::Masked {
            return self
                .decode_masked(payload)
                .map_err(|e| corrupt(e.to_string()));
        }
        let mut wire = self.wire(payload).map_err(|e| corrupt(e.to_string()))?;
        if let Some(customer) = sealed_for(&wire) {
            let key = self
                .keys
                .for_reading(&customer)
                .await
                .map_err(|e| match e {
                    KeyStoreError::Bus(b) => b,
                    other => corrupt(other.to_string()),
                })?;
            open(&mut wire, key.as_deref()).map_err(|e| corrupt(e.to_string()))?;
        }
        envelope_from_wire(wire).map_err(|e| corrupt(e.to_string()))
    }

    /// Decodes stored bytes with their personal fields left sealed.
    pub(crate) fn decode_masked(&self, payload: &[u8]) -> Result<Envelope, DecodeError> {
        let mut wire = self.wire(payload)?;
        mask(&mut wire);
        envelope_from_wire(wire)
    }

    /// The wire envelope of stored bytes, with the pseudonyms later readers
    /// expect even when it was written before they existed.
    fn wire(&self, payload: &[u8]) -> Result<pb::Envelope, DecodeError> {
        let mut wire =
            pb::Envelope::decode(payload).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        adopt_legacy(&mut wire, self.keys.pseudonyms());
        Ok(wire)
    }
}

fn carries_personal(wire: &mut pb::Envelope) -> bool {
    let mut any = false;
    if let Some(event) = wire.event.as_mut() {
        for_each_personal(event, &mut |field| any |= !field.is_empty());
    }
    any
}
