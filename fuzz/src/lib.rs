//! Fuzz targets for the two decoders that take bytes from outside the system:
//!
//! - [`envelope`]: the event log's message format (`plaint_proto::decode_envelope`),
//!   which the router, the projector and every reader of the log apply to whatever
//!   lies on a subject, including bytes published there by anyone with access to NATS;
//! - [`helpdesk`]: the helpdesk door (`plaint_intake::helpdesk::parse_payload` and the
//!   JSON adapter `json::parse`), which parses what integrations publish.
//!
//! Each target is a plain function of the input bytes that panics when a property
//! breaks, so the same bodies run under libFuzzer (`fuzz_targets/`, nightly and
//! cargo-fuzz) and in the stable smoke test (`tests/smoke.rs`, driven by [`smoke`]),
//! which feeds them the seeds of [`seeds`], the files under `seeds/<target>/`, and
//! thousands of mutated and random inputs, with a time bound per input.
//!
//! Properties: no input panics or hangs; an accepted envelope survives re-encoding
//! unchanged; parsing is deterministic, and the helpdesk's content sniffing agrees
//! with the JSON adapter for JSON-looking input.

pub mod seeds;
pub mod smoke;

use plaint_intake::helpdesk::{json, parse_payload};

/// The helpdesk's payload limit (intake's default `INTAKE_MAX_INBOUND_BYTES`).
pub const MAX_HELPDESK_BYTES: usize = 64 * 1024;

/// The envelope decoder. Any bytes yield an envelope or an error, never a panic; an
/// envelope that was accepted encodes to bytes that decode to the same envelope (so
/// the log never holds an event that cannot be written back as read, e.g. by a
/// migration). The bytes themselves may differ from one encoding to the next: protobuf
/// maps (a CEO slot's `segment_used`) are encoded in hash order, which the fuzzer
/// found; nothing compares payload bytes (deduplication is by event id).
pub fn envelope(data: &[u8]) {
    let Ok(decoded) = plaint_proto::decode_envelope(data) else {
        return;
    };
    let encoded = plaint_proto::encode_envelope(&decoded);
    let again = match plaint_proto::decode_envelope(&encoded) {
        Ok(e) => e,
        Err(e) => panic!("an accepted envelope does not decode once re-encoded: {e}; {decoded:?}"),
    };
    assert!(
        again == decoded,
        "an accepted envelope changed through re-encoding:\n{decoded:?}\n{again:?}"
    );
}

/// The helpdesk payload decoders: by sniffing (no content type), as declared JSON and
/// as declared protobuf, and the JSON adapter itself. Any bytes yield a command or an
/// error naming a field, never a panic; the same bytes always give the same answer;
/// sniffing agrees with the JSON adapter on JSON-looking input within the size limit.
pub fn helpdesk(data: &[u8]) {
    for content_type in [None, Some("application/json"), Some("application/protobuf")] {
        let first = parse_payload(data, content_type, MAX_HELPDESK_BYTES);
        if let Err(e) = &first {
            assert!(!e.field.is_empty(), "an error that names no field: {e:?}");
        }
        let second = parse_payload(data, content_type, MAX_HELPDESK_BYTES);
        assert!(
            first == second,
            "parsing is not deterministic ({content_type:?}): {first:?} then {second:?}"
        );
    }
    let adapter = json::parse(data);
    let looks_like_json = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if looks_like_json && data.len() <= MAX_HELPDESK_BYTES {
        let sniffed = parse_payload(data, None, MAX_HELPDESK_BYTES);
        assert!(
            sniffed == adapter,
            "sniffing and the JSON adapter disagree: {sniffed:?} vs {adapter:?}"
        );
    }
}
