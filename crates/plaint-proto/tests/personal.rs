//! Every field of the event log is classified as personal or not, and the
//! classification names only fields that exist.

#![allow(clippy::expect_used)]

use std::collections::BTreeSet;

use plaint_proto::personal::{Class, EVENT_FIELDS, class_of, personal_fields};
use prost::Message;
use prost_types::field_descriptor_proto::Type;

/// Every field of `plaint.events.v1`, as `Message.field`, with whether it is
/// message-typed.
fn event_fields() -> Vec<(String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(plaint_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut out = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package() == "plaint.events.v1")
    {
        for message in &file.message_type {
            assert!(
                message
                    .nested_type
                    .iter()
                    .all(|n| n.options.as_ref().is_some_and(|o| o.map_entry())),
                "{}: nested messages are not classified yet",
                message.name()
            );
            for field in &message.field {
                let nested = field.r#type() == Type::Message && !is_map(message, field);
                out.push((format!("{}.{}", message.name(), field.name()), nested));
            }
        }
    }
    out
}

fn is_map(
    message: &prost_types::DescriptorProto,
    field: &prost_types::FieldDescriptorProto,
) -> bool {
    message.nested_type.iter().any(|n| {
        n.options.as_ref().is_some_and(|o| o.map_entry())
            && field.type_name().ends_with(&format!(".{}", n.name()))
    })
}

#[test]
fn every_field_of_the_log_is_classified_and_nothing_else_is() {
    let fields = event_fields();
    assert!(fields.len() > 100, "only {} fields found", fields.len());
    let mut missing = Vec::new();
    for (name, nested) in &fields {
        match class_of(name) {
            None => missing.push(name.clone()),
            Some(Class::Nested) => assert!(*nested, "{name} is not message-typed"),
            Some(_) => assert!(!*nested, "{name} is message-typed: classify its fields"),
        }
    }
    assert!(
        missing.is_empty(),
        "fields of plaint.events.v1 with no class in plaint_proto::personal: {missing:?}"
    );
    let existing: BTreeSet<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    let stale: Vec<&str> = EVENT_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !existing.contains(n))
        .collect();
    assert!(
        stale.is_empty(),
        "classified fields that do not exist: {stale:?}"
    );
}

#[test]
fn identifiers_and_free_text_of_customers_are_personal() {
    let personal: BTreeSet<&str> = personal_fields().collect();
    for field in [
        "Customer.customer_id",
        "ComplaintReceived.summary",
        "ComplaintReceived.external_ticket_id",
        "CustomerFollowedUp.text",
        "CeoSlotReserved.customer_id",
        "Assigned.assignee",
    ] {
        assert!(personal.contains(field), "{field}");
    }
    for field in [
        "Customer.segment",
        "Customer.tier",
        "ComplaintReceived.channel",
    ] {
        assert!(!personal.contains(field), "{field} is a routing fact");
    }
}

/// Protobuf bytes of `message` with every string field (and one element of
/// every repeated string) holding its own full name, message fields filled
/// the same way, all else left at its default.
fn filled(set: &prost_types::FileDescriptorSet, message: &str) -> Vec<u8> {
    let m = event_message(set, message);
    let mut out = Vec::new();
    for field in &m.field {
        let value = match field.r#type() {
            Type::String => format!("{}.{}", m.name(), field.name()).into_bytes(),
            Type::Message if !is_map(m, field) => {
                let nested = field.type_name().rsplit('.').next().unwrap_or_default();
                filled(set, nested)
            }
            _ => continue,
        };
        put_varint(&mut out, (u64::from(field.number() as u32) << 3) | 2);
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(&value);
    }
    out
}

fn event_message<'a>(
    set: &'a prost_types::FileDescriptorSet,
    name: &str,
) -> &'a prost_types::DescriptorProto {
    set.file
        .iter()
        .filter(|f| f.package() == "plaint.events.v1")
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no message {name}"))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The personal string fields reachable from `message`.
fn personal_within(set: &prost_types::FileDescriptorSet, message: &str) -> BTreeSet<String> {
    let m = event_message(set, message);
    let mut out = BTreeSet::new();
    for field in &m.field {
        let name = format!("{}.{}", m.name(), field.name());
        match class_of(&name) {
            Some(Class::Personal) => {
                assert_eq!(field.r#type(), Type::String, "{name}: only text is sealed");
                out.insert(name);
            }
            Some(Class::Nested) => {
                let nested = field.type_name().rsplit('.').next().unwrap_or_default();
                out.extend(personal_within(set, nested));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn sealing_visits_every_personal_field_of_every_event_and_nothing_else() {
    let set = prost_types::FileDescriptorSet::decode(plaint_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let envelope = event_message(&set, "Envelope");
    let mut variants = 0;
    for field in envelope.field.iter().filter(|f| f.oneof_index.is_some()) {
        variants += 1;
        let message = field.type_name().rsplit('.').next().unwrap_or_default();
        let mut bytes = Vec::new();
        let inner = filled(&set, message);
        put_varint(&mut bytes, (u64::from(field.number() as u32) << 3) | 2);
        put_varint(&mut bytes, inner.len() as u64);
        bytes.extend_from_slice(&inner);
        let mut wire = plaint_proto::events::Envelope::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{message}: {e}"));
        let event = wire.event.as_mut().expect("the variant decodes");
        let mut visited = BTreeSet::new();
        plaint_proto::personal::for_each_personal(event, &mut |f| {
            visited.insert(f.clone());
        });
        assert_eq!(
            visited,
            personal_within(&set, message),
            "{message}: the fields sealed are not the fields classified personal"
        );
        let taken = plaint_proto::personal::take_personal(event);
        let mut left = Vec::new();
        plaint_proto::personal::for_each_personal(event, &mut |f| left.push(f.clone()));
        assert!(
            left.iter().all(String::is_empty),
            "{message}: {left:?} left"
        );
        if let Some(values) = taken {
            assert!(plaint_proto::personal::restore_personal(event, values));
            let mut back = BTreeSet::new();
            plaint_proto::personal::for_each_personal(event, &mut |f| {
                back.insert(f.clone());
            });
            assert_eq!(back, visited, "{message}: not restored");
        }
    }
    assert!(variants > 20, "only {variants} events found");
}
