//! What sealing personal data costs, measured in the bench's own process:
//! the CPU a complaint's two personal events take to seal, store and open
//! again, and a new customer's data key to make, wrap and unwrap. The
//! system phases include it (and the key store's round trips); this gives
//! the cryptography alone, per 1,000 complaints.

use std::time::{Duration, Instant};

use plaint_proto::events as pb;
use plaint_vault::{DataKey, MasterKeys, Pseudonyms, WrappedKey, open, seal};
use prost::Message;

/// Complaints per measured run, and runs (the median is kept).
const COMPLAINTS: u64 = 1_000;
const RUNS: usize = 5;

/// Milliseconds of one core per 1,000 complaints.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sealing {
    /// Seal, encode, decode and open a complaint's received event and one
    /// follow-up.
    pub(crate) seal_open_ms: f64,
    /// Make a data key, wrap it, read it back and unwrap it: what a new
    /// customer costs once.
    pub(crate) new_key_ms: f64,
}

/// Measures both, median of [`RUNS`].
pub(crate) fn measure() -> anyhow::Result<Sealing> {
    let master =
        MasterKeys::from_keys(&[[7; 32]]).ok_or_else(|| anyhow::anyhow!("no master key"))?;
    let pseudonyms = Pseudonyms::from_secret(b"bench");
    let mut seal_open = Vec::with_capacity(RUNS);
    let mut new_key = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        seal_open.push(per_1000(run_seal_open(&master, &pseudonyms)?));
        new_key.push(per_1000(run_new_keys(&master, &pseudonyms)?));
    }
    Ok(Sealing {
        seal_open_ms: median(seal_open),
        new_key_ms: median(new_key),
    })
}

fn run_seal_open(master: &MasterKeys, pseudonyms: &Pseudonyms) -> anyhow::Result<Duration> {
    let customer = pseudonyms.of_raw("bench-customer");
    let (key, _) = DataKey::generate(&customer, master)?;
    let events = [received(&customer), followed_up()];
    let started = Instant::now();
    for i in 0..COMPLAINTS {
        for event in &events {
            let mut wire = event.clone();
            wire.event_id = format!("bench-{i}");
            seal(&mut wire, Some(&customer), Some(&key))?;
            let bytes = wire.encode_to_vec();
            let mut back = pb::Envelope::decode(bytes.as_slice())?;
            open(&mut back, Some(&key))?;
            std::hint::black_box(back);
        }
    }
    Ok(started.elapsed())
}

fn run_new_keys(master: &MasterKeys, pseudonyms: &Pseudonyms) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for i in 0..COMPLAINTS {
        let customer = pseudonyms.of_raw(&format!("bench-customer-{i}"));
        let (_, wrapped) = DataKey::generate(&customer, master)?;
        let stored = WrappedKey::from_bytes(&wrapped.to_bytes())?;
        std::hint::black_box(stored.unwrap(&customer, master)?);
    }
    Ok(started.elapsed())
}

fn received(customer: &plaint_domain::values::CustomerRef) -> pb::Envelope {
    pb::Envelope {
        complaint_id: "6f1c9f3e-5a44-4c47-9b0d-3b8f36d3a9a1".to_owned(),
        event: Some(pb::envelope::Event::ComplaintReceived(
            pb::ComplaintReceived {
                source_system: "bench".to_owned(),
                external_ticket_id: "BENCH-000001".to_owned(),
                customer: Some(pb::Customer {
                    customer_id: "bench-customer".to_owned(),
                    segment: "consumer".to_owned(),
                    customer_ref: customer.to_string(),
                    ..Default::default()
                }),
                summary: "The blender stopped after two days; I want it repaired or replaced, \
                      and nobody answered my two emails."
                    .to_owned(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn followed_up() -> pb::Envelope {
    pb::Envelope {
        complaint_id: "6f1c9f3e-5a44-4c47-9b0d-3b8f36d3a9a1".to_owned(),
        event: Some(pb::envelope::Event::CustomerFollowedUp(
            pb::CustomerFollowedUp {
                text: "Still waiting for an answer, a week later.".to_owned(),
            },
        )),
        ..Default::default()
    }
}

fn per_1000(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0 * 1000.0 / COMPLAINTS as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
