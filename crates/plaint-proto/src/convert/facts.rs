//! Complaint facts: customer, visibility, channel, category, item, summary.

use plaint_domain::values::{
    AtField, ChurnRisk, CustomerId, CustomerRef, ExternalTicketId, Money, Problem, Reach, Segment,
    SourceSystem, ValidationError,
};
use plaint_domain::{Category, Channel, ComplaintFacts, Customer, CustomerTier, Visibility};

use super::{FromWire, ToWire, optional_enum, optional_label, text};
use crate::events as pb;

/// Parses the customer block; a missing block is a missing field.
pub fn customer_from_wire(
    wire: Option<pb::Customer>,
    prefix: &str,
) -> Result<Customer, ValidationError> {
    let c = wire.ok_or_else(|| ValidationError::new(prefix, Problem::Missing))?;
    Ok(Customer {
        id: CustomerId::parse(&c.customer_id).at_in(prefix, "customer_id")?,
        reference: CustomerRef::parse(&c.customer_ref).at_in(prefix, "customer_ref")?,
        segment: Segment::parse(&c.segment).at_in(prefix, "segment")?,
        tier: optional_enum::<CustomerTier>(c.tier, "tier")
            .map_err(|e| e.within(prefix))?
            .unwrap_or_default(),
        lifetime_value: Money::parse(c.lifetime_value_cents)
            .at_in(prefix, "lifetime_value_cents")?,
        churn_risk: ChurnRisk::parse(c.churn_risk_pct).at_in(prefix, "churn_risk_pct")?,
    })
}

/// Parses a visibility block; a missing block means nobody is watching.
pub fn visibility_from_wire(
    wire: Option<pb::Visibility>,
    prefix: &str,
) -> Result<Visibility, ValidationError> {
    let v = wire.unwrap_or_default();
    Ok(Visibility {
        audience_reach: Reach::parse(v.audience_reach).at_in(prefix, "audience_reach")?,
        shares: Reach::parse(v.shares).at_in(prefix, "shares")?,
        media_attention: v.media_attention,
    })
}

/// The wire form of a visibility.
pub fn visibility_to_wire(v: &Visibility) -> pb::Visibility {
    pb::Visibility {
        audience_reach: v.audience_reach.get(),
        shares: v.shares.get(),
        media_attention: v.media_attention,
    }
}

/// Parses everything a new complaint states.
pub fn facts_from_wire(wire: pb::ComplaintReceived) -> Result<ComplaintFacts, ValidationError> {
    Ok(ComplaintFacts {
        source_system: SourceSystem::parse(&wire.source_system).at("source_system")?,
        external_ticket_id: ExternalTicketId::parse(&wire.external_ticket_id)
            .at("external_ticket_id")?,
        customer: customer_from_wire(wire.customer, "customer")?,
        channel: Channel::from_wire(wire.channel, "channel")?,
        category: Category::from_wire(wire.category, "category")?,
        visibility: visibility_from_wire(wire.visibility, "visibility")?,
        product_idea: wire.product_idea,
        item_sku: optional_label(&wire.item_sku, "item_sku")?,
        summary: text(&wire.summary, "summary")?,
    })
}

/// The wire form of a complaint's facts.
pub fn facts_to_wire(f: &ComplaintFacts) -> pb::ComplaintReceived {
    pb::ComplaintReceived {
        source_system: f.source_system.to_string(),
        external_ticket_id: f.external_ticket_id.to_string(),
        customer: Some(pb::Customer {
            customer_id: f.customer.id.to_string(),
            segment: f.customer.segment.to_string(),
            tier: f.customer.tier.to_wire(),
            lifetime_value_cents: f.customer.lifetime_value.cents(),
            churn_risk_pct: f.customer.churn_risk.pct(),
            customer_ref: f.customer.reference.to_string(),
        }),
        channel: f.channel.to_wire(),
        category: f.category.to_wire(),
        visibility: Some(visibility_to_wire(&f.visibility)),
        product_idea: f.product_idea,
        item_sku: f
            .item_sku
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        summary: f.summary.as_str().to_owned(),
    }
}
