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
