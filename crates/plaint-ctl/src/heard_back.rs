//! What the demo's helpdesk integration heard back on its outbound subjects:
//! a receipt per message it published, and the decisions of its complaints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use plaint_bus::outbound::IntegrationReader;
use serde_json::Value;

use crate::DemoArgs;

/// How long the demo reads at most.
const READ_FOR: Duration = Duration::from_secs(30);

/// Receipts by outcome, updates by event type, and one of each to show.
#[derive(Debug, Default)]
pub(crate) struct HeardBack {
    pub(crate) receipts: BTreeMap<String, usize>,
    pub(crate) updates: BTreeMap<String, usize>,
    pub(crate) a_receipt: Option<Value>,
    pub(crate) a_decision: Option<Value>,
}

impl HeardBack {
    fn receipts_total(&self) -> usize {
        self.receipts.values().sum()
    }

    /// As JSON, for `--json`.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "receipts": self.receipts,
            "updates": self.updates,
            "a_receipt": self.a_receipt,
            "a_decision": self.a_decision,
        })
    }

    /// For people.
    pub(crate) fn print(&self, integration: &str) {
        let counts = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "\nWhat helpdesk integration {integration} heard back (its outbound consumer):\n  \
             receipts: {}\n  updates:  {}",
            counts(&self.receipts),
            counts(&self.updates)
        );
        for example in [&self.a_receipt, &self.a_decision].into_iter().flatten() {
            println!("  e.g. {example}");
        }
    }
}

/// Reads the integration's outbound messages until a receipt came for each
/// of the `published` messages and nothing more arrives (at most 30 s).
pub(crate) async fn read(args: &DemoArgs, published: usize) -> anyhow::Result<HeardBack> {
    let client = plaint_bus::connect_with(&args.nats, &args.nats_access, "plaint-ctl")
        .await
        .with_context(|| format!("cannot connect to NATS at {}", args.nats))?;
    let stream = format!("{}_OUTBOUND", args.stream);
    let reader = IntegrationReader::open(client, &stream, &args.integration)
        .await
        .with_context(|| format!("cannot read {}'s outbound messages", args.integration))?;
    let mut heard = HeardBack::default();
    let started = Instant::now();
    while started.elapsed() < READ_FOR {
        let batch = reader.fetch(256, Duration::from_secs(1)).await?;
        if batch.is_empty() && heard.receipts_total() >= published {
            break;
        }
        for m in batch {
            let Ok(json) = serde_json::from_slice::<Value>(&m.payload) else {
                *heard.updates.entry("in protobuf".to_owned()).or_default() += 1;
                continue;
            };
            let name = |key: &str| json[key].as_str().unwrap_or("?").to_owned();
            if json["type"] == "receipt" {
                *heard.receipts.entry(name("outcome")).or_default() += 1;
                heard.a_receipt.get_or_insert_with(|| json.clone());
            } else {
                *heard.updates.entry(name("event_type")).or_default() += 1;
                if json["decision"].is_object() {
                    heard.a_decision.get_or_insert_with(|| json.clone());
                }
            }
        }
    }
    Ok(heard)
}
