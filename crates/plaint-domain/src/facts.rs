//! What a complaint tells us: who complained, where, about what, and how many
//! people can see it.

use serde::{Deserialize, Serialize};

use crate::values::{
    ChurnRisk, CustomerId, CustomerRef, ExternalTicketId, FreeText, Label, Money, Reach, Segment,
    SourceSystem,
};

/// Where the customer complained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    /// An open forum: a public post on a social network.
    PublicSocial,
    /// A direct message on a social network.
    PrivateSocial,
    /// Email.
    Email,
    /// A phone call.
    Phone,
    /// Live chat.
    Chat,
    /// A form on the company's site.
    WebForm,
    /// In a store.
    Store,
    /// A letter or mail addressed to the chief executive.
    LetterToCeo,
}

impl Channel {
    /// Every channel, in a fixed order.
    pub const ALL: [Channel; 8] = [
        Channel::PublicSocial,
        Channel::PrivateSocial,
        Channel::Email,
        Channel::Phone,
        Channel::Chat,
        Channel::WebForm,
        Channel::Store,
        Channel::LetterToCeo,
    ];

    /// The stable name used on the wire and in projections.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::PublicSocial => "PUBLIC_SOCIAL",
            Channel::PrivateSocial => "PRIVATE_SOCIAL",
            Channel::Email => "EMAIL",
            Channel::Phone => "PHONE",
            Channel::Chat => "CHAT",
            Channel::WebForm => "WEB_FORM",
            Channel::Store => "STORE",
            Channel::LetterToCeo => "LETTER_TO_CEO",
        }
    }
}

/// What the complaint is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// The item is defective.
    ProductDefect,
    /// The customer asks for a repair.
    RepairRequest,
    /// The customer wants to return the item.
    Return,
    /// The customer wants another item instead.
    Exchange,
    /// Invoices, charges, refunds of money not tied to an item.
    Billing,
    /// Late, lost or damaged delivery.
    Delivery,
    /// How the customer was treated.
    Service,
    /// An idea for the product.
    ProductIdea,
    /// The company's stance on a social issue.
    SocialIssue,
    /// Anything else.
    Other,
}

impl Category {
    /// Every category, in a fixed order.
    pub const ALL: [Category; 10] = [
        Category::ProductDefect,
        Category::RepairRequest,
        Category::Return,
        Category::Exchange,
        Category::Billing,
        Category::Delivery,
        Category::Service,
        Category::ProductIdea,
        Category::SocialIssue,
        Category::Other,
    ];

    /// The stable name used on the wire and in projections.
    pub const fn name(self) -> &'static str {
        match self {
            Category::ProductDefect => "PRODUCT_DEFECT",
            Category::RepairRequest => "REPAIR_REQUEST",
            Category::Return => "RETURN",
            Category::Exchange => "EXCHANGE",
            Category::Billing => "BILLING",
            Category::Delivery => "DELIVERY",
            Category::Service => "SERVICE",
            Category::ProductIdea => "PRODUCT_IDEA",
            Category::SocialIssue => "SOCIAL_ISSUE",
            Category::Other => "OTHER",
        }
    }
}

/// The customer's loyalty tier.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CustomerTier {
    /// No loyalty programme status.
    #[default]
    Standard,
    /// Second tier.
    Silver,
    /// Third tier.
    Gold,
    /// Highest tier.
    Platinum,
}

/// Who complained and what they are worth to the company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Stable id in the source systems: personal data.
    pub id: CustomerId,
    /// Keyed pseudonym of the id: what routing, the cooldown and the
    /// per-customer history use, so they never need the id itself.
    pub reference: CustomerRef,
    /// Segment, for the fairness share.
    pub segment: Segment,
    /// Loyalty tier.
    pub tier: CustomerTier,
    /// What the customer has spent with the company so far.
    pub lifetime_value: Money,
    /// Likelihood of leaving.
    pub churn_risk: ChurnRisk,
}

/// How many people can see the complaint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visibility {
    /// Followers or audience size of the place it was posted.
    pub audience_reach: Reach,
    /// Shares, reposts or forwards so far.
    pub shares: Reach,
    /// Journalists or media outlets picked it up.
    pub media_attention: bool,
}

/// Everything a new complaint states, already parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintFacts {
    /// The system that raised it.
    pub source_system: SourceSystem,
    /// That system's ticket id.
    pub external_ticket_id: ExternalTicketId,
    /// Who complains.
    pub customer: Customer,
    /// Where they complained.
    pub channel: Channel,
    /// What about.
    pub category: Category,
    /// How visible it is at intake.
    pub visibility: Visibility,
    /// The customer flagged an idea for the product.
    pub product_idea: bool,
    /// The item concerned, if any.
    pub item_sku: Option<Label>,
    /// What the customer said.
    pub summary: FreeText,
}
