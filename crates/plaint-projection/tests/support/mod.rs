//! Shared helpers of the router's tests: a fresh database and store, and a
//! hand-built log of envelopes with stream sequences.
#![allow(dead_code, unreachable_pub)]

use plaint_bus::{BusError, StoredEvent, TailItem};
use plaint_domain::event::{CompanyEvent, ComplaintEvent, Envelope, EventPayload};
use plaint_domain::values::{
    ChurnRisk, CustomerId, EventId, ExternalTicketId, FreeText, Money, Satisfaction, Segment,
    SourceSystem,
};
use plaint_domain::{
    Category, Channel, Climate, ComplaintFacts, ComplaintId, Customer, CustomerTier, Decision,
    RoutingContext, RoutingFacts, RoutingPolicy, SCHEMA_VERSION, StanceAlignment, Timestamp,
    Visibility, decide_route,
};
use plaint_projection::store::Store;
use plaint_testkit::TestDb;
use uuid::Uuid;

pub const T0: i64 = 1_700_000_000_000;

pub async fn fresh_store() -> (TestDb, Store) {
    plaint_testkit::init_test_tracing();
    let db = TestDb::create().await;
    let store = Store::connect(db.url(), 4)
        .await
        .expect("connect and migrate");
    (db, store)
}

pub async fn finish(db: TestDb, store: Store) {
    store.pool().close().await;
    db.drop_db().await;
}

/// The pseudonyms of these tests' customers.
pub fn pseudonyms() -> plaint_vault::Pseudonyms {
    plaint_vault::Pseudonyms::from_secret(b"the store tests' pseudonym secret")
}

pub fn facts(ticket: &str, customer: &str, channel: Channel, category: Category) -> ComplaintFacts {
    ComplaintFacts {
        source_system: SourceSystem::parse("store-test").unwrap(),
        external_ticket_id: ExternalTicketId::parse(ticket).unwrap(),
        customer: Customer {
            id: CustomerId::parse(customer).unwrap(),
            reference: pseudonyms().of(&CustomerId::parse(customer).unwrap()),
            segment: Segment::parse("retail").unwrap(),
            tier: CustomerTier::Standard,
            lifetime_value: Money::parse(0).unwrap(),
            churn_risk: ChurnRisk::parse(0).unwrap(),
        },
        channel,
        category,
        visibility: Visibility::default(),
        product_idea: false,
        item_sku: None,
        summary: FreeText::parse("it broke").unwrap(),
    }
}

pub fn id_of(f: &ComplaintFacts) -> ComplaintId {
    ComplaintId::for_ticket(&f.source_system, &f.external_ticket_id)
}

/// A policy that sends everything to the CEO in a neutral climate.
pub fn ceo_everything() -> RoutingPolicy {
    let mut p = RoutingPolicy::default().with_version(2);
    p.ceo_threshold.neutral = Some(0);
    p.budget.per_window = 1_000;
    p.max_segment_share_pct = 100;
    p
}

pub fn decide(f: &ComplaintFacts, policy: &RoutingPolicy, at: i64) -> Decision {
    let ctx = RoutingContext {
        policy,
        climate: Climate::Neutral,
        stance: StanceAlignment::Unknown,
        budget_used: 0,
        segment_used: 0,
        customer_last_ceo: None,
        now: Timestamp::from_millis(at),
    };
    decide_route(&RoutingFacts::of(f, f.visibility), &ctx)
}

/// Hand-built log: assigns stream sequences in order.
#[derive(Default)]
pub struct Log {
    pub next: u64,
}

impl Log {
    pub fn item(
        &mut self,
        complaint: Option<ComplaintId>,
        at: i64,
        payload: EventPayload,
    ) -> TailItem {
        self.next += 1;
        let sequence = self.next;
        let envelope = Envelope {
            event_id: EventId::from_uuid(Uuid::new_v4()),
            complaint_id: complaint,
            occurred_at: Timestamp::from_millis(at),
            schema_version: SCHEMA_VERSION,
            causation_id: None,
            correlation_id: None,
            payload,
        };
        TailItem {
            sequence,
            subject: "test.subject".to_owned(),
            event: Ok(StoredEvent {
                sequence,
                envelope,
                traceparent: None,
            }),
        }
    }

    pub fn complaint(&mut self, id: ComplaintId, at: i64, event: ComplaintEvent) -> TailItem {
        self.item(Some(id), at, EventPayload::Complaint(event))
    }

    pub fn company(&mut self, at: i64, event: CompanyEvent) -> TailItem {
        self.item(None, at, EventPayload::Company(event))
    }

    pub fn corrupt(&mut self) -> TailItem {
        self.next += 1;
        TailItem {
            sequence: self.next,
            subject: "test.subject".to_owned(),
            event: Err(BusError::Corrupt {
                sequence: self.next,
                reason: "not protobuf".to_owned(),
            }),
        }
    }

    /// Received, routed under `policy`, and resolved with `satisfaction` when given.
    pub fn lifecycle(
        &mut self,
        f: &ComplaintFacts,
        policy: &RoutingPolicy,
        at: i64,
        satisfaction: Option<u32>,
    ) -> (Vec<TailItem>, Decision) {
        let id = id_of(f);
        let decision = decide(f, policy, at + 10);
        let mut items = vec![
            self.complaint(id, at, ComplaintEvent::Received(Box::new(f.clone()))),
            self.complaint(
                id,
                at + 10,
                ComplaintEvent::Routed(Box::new(decision.clone())),
            ),
        ];
        if let Some(s) = satisfaction {
            items.push(self.complaint(
                id,
                at + 1_000,
                ComplaintEvent::Resolved {
                    satisfaction: Satisfaction::parse(s).unwrap(),
                    note: FreeText::parse("done").unwrap(),
                },
            ));
        }
        (items, decision)
    }
}

pub fn copy(items: &[TailItem]) -> Vec<TailItem> {
    items
        .iter()
        .map(|i| TailItem {
            sequence: i.sequence,
            subject: i.subject.clone(),
            event: match &i.event {
                Ok(e) => Ok(e.clone()),
                Err(_) => Err(BusError::Corrupt {
                    sequence: i.sequence,
                    reason: "copy".to_owned(),
                }),
            },
        })
        .collect()
}
