//! Sealing and opening personal fields, wrapping data keys, and the secret
//! files they come from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use plaint_domain::personal::ERASED;
use plaint_domain::values::CustomerRef;
use plaint_proto::events as pb;
use plaint_vault::data_key::UnwrapError;
use plaint_vault::seal::{SEALED, adopt_legacy, mask};
use plaint_vault::{DataKey, MasterKeys, Opened, Pseudonyms, SealError, WrappedKey, open, seal};
use prost::Message;

fn master(keys: &[[u8; 32]]) -> MasterKeys {
    MasterKeys::from_keys(keys).unwrap()
}

fn customer() -> CustomerRef {
    Pseudonyms::from_secret(b"vault tests").of_raw("cust-77")
}

fn received(event_id: &str) -> pb::Envelope {
    pb::Envelope {
        event_id: event_id.to_owned(),
        complaint_id: "6f1c9f3e-5a44-4c47-9b0d-3b8f36d3a9a1".to_owned(),
        event: Some(pb::envelope::Event::ComplaintReceived(
            pb::ComplaintReceived {
                source_system: "shop".to_owned(),
                external_ticket_id: "TICKET-SECRET-1".to_owned(),
                customer: Some(pb::Customer {
                    customer_id: "cust-77".to_owned(),
                    segment: "retail".to_owned(),
                    customer_ref: customer().to_string(),
                    ..Default::default()
                }),
                summary: "my fridge melted, call me on 555-0100".to_owned(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn sealed_events_hold_no_personal_text_and_open_to_the_original() {
    let master = master(&[[1; 32]]);
    let (key, _) = DataKey::generate(&customer(), &master).unwrap();
    let original = received("e-1");
    let mut wire = original.clone();
    seal(&mut wire, Some(&customer()), Some(&key)).unwrap();
    let bytes = wire.encode_to_vec();
    for secret in ["cust-77", "TICKET-SECRET-1", "fridge", "555-0100"] {
        assert!(!contains(&bytes, secret), "{secret} is in the sealed bytes");
    }
    assert!(contains(&bytes, "retail"), "routing facts stay in clear");
    let mut back = pb::Envelope::decode(bytes.as_slice()).unwrap();
    assert_eq!(open(&mut back, Some(&key)).unwrap(), Opened::Opened);
    assert_eq!(back, original);
}

#[test]
fn without_its_key_an_event_opens_as_erased_and_that_is_no_error() {
    let master = master(&[[1; 32]]);
    let (key, _) = DataKey::generate(&customer(), &master).unwrap();
    let (other, _) = DataKey::generate(&customer(), &master).unwrap();
    for with in [None, Some(&other)] {
        let mut wire = received("e-2");
        seal(&mut wire, Some(&customer()), Some(&key)).unwrap();
        assert_eq!(open(&mut wire, with).unwrap(), Opened::Erased);
        let Some(pb::envelope::Event::ComplaintReceived(r)) = &wire.event else {
            panic!("not a complaint");
        };
        assert_eq!(r.summary, ERASED);
        assert_eq!(r.external_ticket_id, ERASED);
        assert_eq!(r.customer.as_ref().unwrap().customer_id, ERASED);
        assert_eq!(r.customer.as_ref().unwrap().segment, "retail");
    }
}

#[test]
fn a_sealed_block_altered_or_moved_to_another_event_does_not_open() {
    let master = master(&[[1; 32]]);
    let (key, _) = DataKey::generate(&customer(), &master).unwrap();
    let mut first = received("e-3");
    seal(&mut first, Some(&customer()), Some(&key)).unwrap();

    let mut moved = received("e-4");
    seal(&mut moved, Some(&customer()), Some(&key)).unwrap();
    moved.sealed = first.sealed.clone();
    assert_eq!(open(&mut moved, Some(&key)), Err(SealError::Forged));

    let mut altered = first.clone();
    if let Some(s) = altered.sealed.as_mut() {
        s.ciphertext[0] ^= 1;
    }
    assert_eq!(open(&mut altered, Some(&key)), Err(SealError::Forged));
}

#[test]
fn personal_data_without_a_customer_is_refused_not_stored_in_clear() {
    let mut wire = received("e-5");
    assert!(matches!(
        seal(&mut wire, None, None),
        Err(SealError::NoCustomer { .. })
    ));
}

#[test]
fn an_event_without_personal_data_is_left_as_it_is() {
    let mut wire = pb::Envelope {
        event_id: "e-6".to_owned(),
        event: Some(pb::envelope::Event::ItemReceived(pb::ItemReceived {})),
        ..Default::default()
    };
    let before = wire.clone();
    seal(&mut wire, None, None).unwrap();
    assert_eq!(wire, before);
}

#[test]
fn a_masked_reader_sees_markers_where_personal_fields_are() {
    let master = master(&[[1; 32]]);
    let (key, _) = DataKey::generate(&customer(), &master).unwrap();
    let mut wire = received("e-7");
    seal(&mut wire, Some(&customer()), Some(&key)).unwrap();
    mask(&mut wire);
    let Some(pb::envelope::Event::ComplaintReceived(r)) = &wire.event else {
        panic!("not a complaint");
    };
    assert_eq!(r.summary, SEALED);
    assert_eq!(
        r.customer.as_ref().unwrap().customer_ref,
        customer().as_str()
    );
}

#[test]
fn events_from_before_sealing_get_their_customers_pseudonym() {
    let pseudonyms = Pseudonyms::from_secret(b"vault tests");
    let mut wire = received("e-8");
    if let Some(pb::envelope::Event::ComplaintReceived(r)) = wire.event.as_mut() {
        r.customer.as_mut().unwrap().customer_ref.clear();
    }
    adopt_legacy(&mut wire, &pseudonyms);
    let Some(pb::envelope::Event::ComplaintReceived(r)) = &wire.event else {
        panic!("not a complaint");
    };
    assert_eq!(
        r.customer.as_ref().unwrap().customer_ref,
        customer().as_str()
    );
}

#[test]
fn data_keys_unwrap_only_with_their_master_key_and_for_their_customer() {
    let old = master(&[[1; 32]]);
    let (key, wrapped) = DataKey::generate(&customer(), &old).unwrap();
    let stored = WrappedKey::from_bytes(&wrapped.to_bytes()).unwrap();
    assert_eq!(stored.unwrap(&customer(), &old).unwrap().id(), key.id());

    let wrong = master(&[[2; 32]]);
    assert!(matches!(
        stored.unwrap(&customer(), &wrong),
        Err(UnwrapError::UnknownMaster(_))
    ));
    let someone_else = Pseudonyms::from_secret(b"vault tests").of_raw("cust-78");
    assert_eq!(
        stored.unwrap(&someone_else, &old).map(|k| k.id()),
        Err(UnwrapError::Forged)
    );
    assert_eq!(
        WrappedKey::from_bytes(b"not a key").map(|k| k.id()),
        Err(UnwrapError::Damaged)
    );
}

#[test]
fn a_rotated_master_key_rewraps_data_keys_without_touching_sealed_events() {
    let old = master(&[[1; 32]]);
    let (key, wrapped) = DataKey::generate(&customer(), &old).unwrap();
    let mut wire = received("e-9");
    seal(&mut wire, Some(&customer()), Some(&key)).unwrap();

    // New key first, old kept while re-wrapping.
    let rotating = master(&[[3; 32], [1; 32]]);
    assert!(!wrapped.is_current(&rotating));
    let rewrapped = wrapped.rewrap(&customer(), &rotating).unwrap();
    assert!(rewrapped.is_current(&rotating));

    // The old key gone: the re-wrapped key still opens the old event.
    let new_only = master(&[[3; 32]]);
    let key = rewrapped.unwrap(&customer(), &new_only).unwrap();
    assert_eq!(open(&mut wire, Some(&key)).unwrap(), Opened::Opened);
    assert!(wrapped.unwrap(&customer(), &new_only).is_err());
}

#[test]
fn secret_files_that_are_missing_or_malformed_are_named_without_their_contents() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.key");
    let e = MasterKeys::from_file(&missing).unwrap_err().to_string();
    assert!(
        e.contains("PLAINT_MASTER_KEY_FILE") && e.contains("none.key"),
        "{e}"
    );

    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "# a comment\nnot-a-secret-key-value\n").unwrap();
    let e = MasterKeys::from_file(&bad).unwrap_err().to_string();
    assert!(
        e.contains("line 2") && e.contains("64 hexadecimal digits"),
        "{e}"
    );
    assert!(
        !e.contains("not-a-secret"),
        "the error quotes the file: {e}"
    );

    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let e = Pseudonyms::from_file(&empty).unwrap_err().to_string();
    assert!(
        e.contains("PLAINT_PSEUDONYM_SECRET_FILE") && e.contains("no key"),
        "{e}"
    );

    let good = dir.path().join("good.key");
    std::fs::write(
        &good,
        format!(
            "{}\n{}\n",
            plaint_vault::secret::generate_key_line().unwrap(),
            plaint_vault::secret::generate_key_line().unwrap()
        ),
    )
    .unwrap();
    assert_eq!(MasterKeys::from_file(&good).unwrap().ids().len(), 2);
}
