//! Builders shared by the integration tests.
//!
//! A test states only what matters to it: `a_complaint()` is an ordinary,
//! quiet complaint (an email about service, from a standard customer nobody
//! follows), decided in a neutral climate with an untouched CEO budget, and each
//! builder method changes one thing.
#![allow(dead_code)]

use plaint_domain::ComplaintEvent;
use plaint_domain::facts::{Category, Channel, ComplaintFacts, Customer, CustomerTier, Visibility};
use plaint_domain::lifecycle::{Complaint, InvalidHistory, apply};
use plaint_domain::routing::{
    Climate, Decision, FulfilmentKind, Route, RoutingContext, RoutingFacts, RoutingPolicy,
    StanceAlignment, decide_route,
};
use plaint_domain::time::{DAY_MS, Timestamp};
use plaint_domain::values::{
    ChurnRisk, ComplaintId, CustomerId, ExternalTicketId, FreeText, Label, Money, Reach,
    Satisfaction, Segment, SourceSystem,
};

/// 2024-06-01T12:00:00Z, the instant every test decision is made at unless it says otherwise.
pub(crate) const NOW_MS: i64 = 1_717_243_200_000;

/// The instant [`NOW_MS`].
pub(crate) fn now() -> Timestamp {
    Timestamp::from_millis(NOW_MS)
}

/// `minutes` after [`now`].
pub(crate) fn minutes_later(minutes: i64) -> Timestamp {
    now().plus_millis(minutes * 60_000)
}

/// A label that is known to be valid.
pub(crate) fn label(raw: &str) -> Label {
    Label::parse(raw).unwrap()
}

/// Free text that is known to be valid.
pub(crate) fn text(raw: &str) -> FreeText {
    FreeText::parse(raw).unwrap()
}

/// A satisfaction score that is known to be valid.
pub(crate) fn satisfaction(score: u32) -> Satisfaction {
    Satisfaction::parse(score).unwrap()
}

/// A reach that is known to be valid.
pub(crate) fn reach(count: u64) -> Reach {
    Reach::parse(count).unwrap()
}

/// A pseudonym for `id`: distinct ids give distinct pseudonyms (the
/// services use a keyed HMAC; the domain only needs them told apart).
pub(crate) fn reference_of(id: &str) -> plaint_domain::values::CustomerRef {
    use std::hash::{Hash, Hasher};
    let mut digest = [0u8; 16];
    for (half, salt) in digest.chunks_mut(8).zip([1u8, 2]) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, id).hash(&mut h);
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    plaint_domain::values::CustomerRef::from_digest(&digest)
}

/// A customer with no particular value to the company.
pub(crate) fn customer(id: &str, segment: &str) -> Customer {
    Customer {
        id: CustomerId::parse(id).unwrap(),
        reference: reference_of(id),
        segment: Segment::parse(segment).unwrap(),
        tier: CustomerTier::Standard,
        lifetime_value: Money::parse(0).unwrap(),
        churn_risk: ChurnRisk::parse(0).unwrap(),
    }
}

/// A complaint together with the company's situation when it is routed.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) facts: ComplaintFacts,
    pub(crate) policy: RoutingPolicy,
    pub(crate) climate: Climate,
    pub(crate) stance: StanceAlignment,
    pub(crate) budget_used: u32,
    pub(crate) segment_used: u32,
    pub(crate) customer_last_ceo: Option<Timestamp>,
    pub(crate) now: Timestamp,
}

/// An email about service from a standard customer that nobody follows, in a
/// neutral climate, with the whole CEO budget left, under the default policy.
pub(crate) fn a_complaint() -> Scenario {
    Scenario {
        facts: ComplaintFacts {
            source_system: SourceSystem::parse("zendesk-eu").unwrap(),
            external_ticket_id: ExternalTicketId::parse("T-1").unwrap(),
            customer: customer("cust-1", "retail"),
            channel: Channel::Email,
            category: Category::Service,
            visibility: Visibility::default(),
            product_idea: false,
            item_sku: None,
            summary: text("The shoe came apart after a week."),
        },
        policy: RoutingPolicy::default(),
        climate: Climate::Neutral,
        stance: StanceAlignment::Unknown,
        budget_used: 0,
        segment_used: 0,
        customer_last_ceo: None,
        now: now(),
    }
}

impl Scenario {
    /// Posted on this channel.
    pub(crate) fn on(mut self, channel: Channel) -> Self {
        self.facts.channel = channel;
        self
    }

    /// About this.
    pub(crate) fn about(mut self, category: Category) -> Self {
        self.facts.category = category;
        self
    }

    /// Seen by an audience of this size.
    pub(crate) fn reaching(mut self, audience: u64) -> Self {
        self.facts.visibility.audience_reach = reach(audience);
        self
    }

    /// Shared this many times.
    pub(crate) fn shared(mut self, shares: u64) -> Self {
        self.facts.visibility.shares = reach(shares);
        self
    }

    /// Picked up by the media.
    pub(crate) fn in_the_media(mut self) -> Self {
        self.facts.visibility.media_attention = true;
        self
    }

    /// The customer flagged a product idea.
    pub(crate) fn with_idea_flag(mut self) -> Self {
        self.facts.product_idea = true;
        self
    }

    /// The customer's loyalty tier.
    pub(crate) fn tier(mut self, tier: CustomerTier) -> Self {
        self.facts.customer.tier = tier;
        self
    }

    /// The customer's lifetime value.
    pub(crate) fn lifetime_value_cents(mut self, cents: i64) -> Self {
        self.facts.customer.lifetime_value = Money::parse(cents).unwrap();
        self
    }

    /// The customer's churn risk.
    pub(crate) fn churn_risk_pct(mut self, pct: u32) -> Self {
        self.facts.customer.churn_risk = ChurnRisk::parse(pct).unwrap();
        self
    }

    /// The source system's ticket id.
    pub(crate) fn ticket(mut self, ticket: &str) -> Self {
        self.facts.external_ticket_id = ExternalTicketId::parse(ticket).unwrap();
        self
    }

    /// Decided in this climate.
    pub(crate) fn in_climate(mut self, climate: Climate) -> Self {
        self.climate = climate;
        self
    }

    /// With the company's stance on social issues so.
    pub(crate) fn with_stance(mut self, stance: StanceAlignment) -> Self {
        self.stance = stance;
        self
    }

    /// With this many CEO engagements already taken in the window.
    pub(crate) fn budget_used(mut self, used: u32) -> Self {
        self.budget_used = used;
        self
    }

    /// With this many of the window's CEO engagements taken by the customer's segment.
    pub(crate) fn segment_used(mut self, used: u32) -> Self {
        self.segment_used = used;
        self
    }

    /// The customer's last CEO engagement was this long before the decision.
    pub(crate) fn last_ceo_ms_ago(mut self, ms: i64) -> Self {
        self.customer_last_ceo = Some(self.now.plus_millis(-ms));
        self
    }

    /// The customer's last CEO engagement was this many days before the decision.
    pub(crate) fn last_ceo_days_ago(self, days: i64) -> Self {
        self.last_ceo_ms_ago(days * DAY_MS)
    }

    /// Under this policy.
    pub(crate) fn under(mut self, policy: RoutingPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Decided at this instant (a last CEO engagement set before keeps its instant).
    pub(crate) fn decided_at(mut self, at: Timestamp) -> Self {
        self.now = at;
        self
    }

    /// The company-side inputs.
    pub(crate) fn context(&self) -> RoutingContext<'_> {
        RoutingContext {
            policy: &self.policy,
            climate: self.climate,
            stance: self.stance,
            budget_used: self.budget_used,
            segment_used: self.segment_used,
            customer_last_ceo: self.customer_last_ceo,
            now: self.now,
        }
    }

    /// The router's decision.
    pub(crate) fn decide(&self) -> Decision {
        let facts = RoutingFacts::of(&self.facts, self.facts.visibility);
        decide_route(&facts, &self.context())
    }

    /// The complaint's id.
    pub(crate) fn id(&self) -> ComplaintId {
        ComplaintId::for_ticket(&self.facts.source_system, &self.facts.external_ticket_id)
    }
}

/// A real decision, made by `decide_route`, with this route and fulfilment.
///
/// CEO decisions come from a public post seen by a million people in good
/// times; the others from a quiet email. The fulfilment follows from the
/// category (repair: a defect, replace: an exchange, refund: a return).
/// Frontline with a fulfilment, or reverse logistics without one, cannot be
/// decided and panics.
pub(crate) fn decision(route: Route, fulfilment: Option<FulfilmentKind>) -> Decision {
    let category = match fulfilment {
        None => Category::Service,
        Some(FulfilmentKind::Repair) => Category::ProductDefect,
        Some(FulfilmentKind::Replace) => Category::Exchange,
        Some(FulfilmentKind::Refund) => Category::Return,
    };
    let scenario = a_complaint().about(category);
    let scenario = if route == Route::Ceo {
        scenario
            .on(Channel::PublicSocial)
            .reaching(1_000_000)
            .in_climate(Climate::Good)
    } else {
        scenario
    };
    let decision = scenario.decide();
    assert_eq!(
        (decision.route, decision.fulfilment),
        (route, fulfilment),
        "no complaint is routed to {route:?} with fulfilment {fulfilment:?}"
    );
    decision
}

/// Folds a whole history into a state, one minute between events.
pub(crate) fn replay(
    id: ComplaintId,
    events: &[ComplaintEvent],
) -> Result<Option<Complaint>, InvalidHistory> {
    let mut state = None;
    for (minute, event) in (0_i64..).zip(events) {
        state = Some(apply(state, id, event, minutes_later(minute))?);
    }
    Ok(state)
}
