//! A seeded, deterministic generator of realistic complaints (no I/O): the
//! load the bench submits, and the one `plaint-ctl demo` submits.

use plaint_proto::events::{Category, Channel, Customer, CustomerTier, Visibility};
use plaint_proto::intake::SubmitComplaintRequest;
use serde_json::{Value, json};

/// SplitMix64: tiny, fast, good enough for demo data.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `pct` percent.
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let len = u64::try_from(items.len()).unwrap_or(u64::MAX).max(1);
        let index = usize::try_from(self.next_u64() % len).unwrap_or(0);
        &items[index.min(items.len() - 1)]
    }

    /// Picks by weight: `(item, weight)`.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, u64)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut roll = self.next_u64() % total.max(1);
        for &(item, weight) in items {
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }

    /// A value in `lo..=hi`, log-uniformly spread (many small, few large).
    pub(crate) fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let (lo_f, hi_f) = ((lo.max(1)) as f64, (hi.max(1)) as f64);
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let value = (lo_f.ln() + unit * (hi_f.ln() - lo_f.ln())).exp();
        (value as u64).clamp(lo, hi)
    }
}

/// What the demo does with a gRPC-submitted complaint after it is routed.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// Satisfaction to resolve with on the frontline / reverse-logistics paths (5..=10).
    pub satisfaction: u32,
    /// Satisfaction for a CEO resolution (9 or 10).
    pub ceo_satisfaction: u32,
}

/// One generated complaint.
#[derive(Debug, Clone)]
pub struct Complaint {
    /// `demo-grpc` or `demo-helpdesk`, after the door it goes through.
    pub source_system: &'static str,
    /// Unique per seed and position: `D<seed>-<n>`.
    pub external_ticket_id: String,
    /// Drawn from a pool of about a third as many customers as complaints.
    pub customer: Customer,
    /// Where the customer complained.
    pub channel: Channel,
    /// What about.
    pub category: Category,
    /// Reach, shares and media attention, in keeping with the channel.
    pub visibility: Visibility,
    /// Whether it carries a product idea.
    pub product_idea: bool,
    /// The item concerned, for the categories that name one; empty otherwise.
    pub item_sku: String,
    /// A short free text in the customer's words.
    pub summary: String,
    /// Submitted over the NATS helpdesk door instead of gRPC.
    pub via_helpdesk: bool,
    /// Set for the gRPC complaints the demo walks through their lifecycle.
    pub lifecycle: Option<Lifecycle>,
}

const SEGMENTS: &[(&str, u64)] = &[("consumer", 70), ("smb", 22), ("enterprise", 8)];

const CHANNELS: &[(Channel, u64)] = &[
    (Channel::Email, 25),
    (Channel::Chat, 18),
    (Channel::Phone, 15),
    (Channel::WebForm, 15),
    (Channel::PublicSocial, 10),
    (Channel::PrivateSocial, 8),
    (Channel::Store, 7),
    (Channel::LetterToCeo, 2),
];

const CATEGORIES: &[(Category, u64)] = &[
    (Category::ProductDefect, 18),
    (Category::RepairRequest, 10),
    (Category::Return, 12),
    (Category::Exchange, 6),
    (Category::Billing, 14),
    (Category::Delivery, 14),
    (Category::Service, 14),
    (Category::ProductIdea, 5),
    (Category::SocialIssue, 3),
    (Category::Other, 4),
];

const SKUS: &[&str] = &[
    "SHOE-39-RED",
    "SHOE-42-BLK",
    "BOOT-44-BRN",
    "BAG-TOTE-TAN",
    "JACKET-M-NAVY",
    "BELT-90-BLK",
    "SNEAKER-41-WHT",
    "SANDAL-38-GLD",
];

fn phrases(category: Category) -> &'static [&'static str] {
    match category {
        Category::ProductDefect => &[
            "The heel came off my new shoes on day two.",
            "The zip broke the first time I used the bag.",
            "Stitching on the jacket came apart after one wash.",
            "The sole is cracking after a week of normal wear.",
        ],
        Category::RepairRequest => &[
            "Can you resole my boots? They are otherwise perfect.",
            "The buckle snapped; I would like it repaired, not replaced.",
            "The lining tore, please fix it under warranty.",
        ],
        Category::Return => &[
            "Wrong size, I want to return them for a refund.",
            "The colour looks nothing like the photos; returning it.",
            "Returned within 14 days and still no refund.",
        ],
        Category::Exchange => &[
            "I need a half size up, can I exchange these?",
            "Please swap the black pair for the brown one.",
        ],
        Category::Billing => &[
            "I was charged twice for the same order.",
            "The discount code was not applied at checkout.",
            "My refund arrived short by the shipping fee.",
        ],
        Category::Delivery => &[
            "The parcel has said 'out for delivery' for five days.",
            "The box arrived crushed and soaked.",
            "Delivered to the wrong address, the courier will not help.",
        ],
        Category::Service => &[
            "Your store staff were rude when I asked for help.",
            "I waited 45 minutes on hold and then got cut off.",
            "Three agents gave me three different answers.",
        ],
        Category::ProductIdea => &[
            "Please make the trail boot in wide fits, I would buy two.",
            "A repair kit sold with each pair would be brilliant.",
            "Offer a resoling subscription; I would sign up today.",
        ],
        Category::SocialIssue => &[
            "Where are your shoes made, and are the workers paid fairly?",
            "Please stop using virgin plastic in your packaging.",
        ],
        Category::Unspecified | Category::Other => &[
            "Your app logs me out every time I open it.",
            "The size guide on the website is confusing.",
        ],
    }
}

fn needs_item(category: Category) -> bool {
    matches!(
        category,
        Category::ProductDefect | Category::RepairRequest | Category::Return | Category::Exchange
    )
}

fn is_social(channel: Channel) -> bool {
    matches!(channel, Channel::PublicSocial | Channel::PrivateSocial)
}

fn make_customer(rng: &mut Rng, seed: u64, index: usize) -> Customer {
    let segment = rng.weighted(SEGMENTS);
    let (tier, ltv) = match segment {
        "enterprise" => (
            rng.weighted(&[(CustomerTier::Gold, 50), (CustomerTier::Platinum, 50)]),
            rng.log_range(2_000_000, 50_000_000),
        ),
        "smb" => (
            rng.weighted(&[
                (CustomerTier::Standard, 30),
                (CustomerTier::Silver, 40),
                (CustomerTier::Gold, 25),
                (CustomerTier::Platinum, 5),
            ]),
            rng.log_range(200_000, 15_000_000),
        ),
        _ => (
            rng.weighted(&[
                (CustomerTier::Standard, 60),
                (CustomerTier::Silver, 25),
                (CustomerTier::Gold, 12),
                (CustomerTier::Platinum, 3),
            ]),
            rng.log_range(2_000, 2_000_000),
        ),
    };
    // Mostly low churn risk, some worried customers.
    let churn = if rng.chance(20) {
        rng.range(50, 95)
    } else {
        rng.range(0, 49)
    };
    Customer {
        customer_id: format!("demo-{seed:x}-c{index:05}"),
        segment: segment.to_owned(),
        tier: tier as i32,
        lifetime_value_cents: i64::try_from(ltv).unwrap_or(i64::MAX),
        churn_risk_pct: u32::try_from(churn).unwrap_or(0),
        customer_ref: String::new(),
    }
}

fn make_visibility(rng: &mut Rng, channel: Channel) -> Visibility {
    if !is_social(channel) {
        return Visibility {
            audience_reach: rng.range(1, 5),
            shares: 0,
            media_attention: false,
        };
    }
    let roll = rng.range(0, 999);
    let (reach, shares, media) = if roll < 10 {
        // Viral.
        let reach = rng.log_range(1_000_000, 8_000_000);
        (reach, rng.log_range(5_000, 200_000), rng.chance(50))
    } else if roll < 60 {
        // Noticed.
        (
            rng.log_range(10_000, 500_000),
            rng.log_range(100, 5_000),
            false,
        )
    } else {
        // Mostly small.
        (rng.log_range(20, 3_000), rng.log_range(1, 60), false)
    };
    Visibility {
        audience_reach: reach,
        shares,
        media_attention: media,
    }
}

/// Generates `count` complaints from `seed`; the same inputs give the same output.
pub fn generate(seed: u64, count: usize) -> Vec<Complaint> {
    let mut rng = Rng::new(seed);
    let customers: Vec<Customer> = (0..(count / 3).max(1))
        .map(|i| make_customer(&mut rng, seed, i))
        .collect();
    (0..count)
        .map(|i| {
            let via_helpdesk = i % 2 == 1;
            let customer = rng.pick(&customers).clone();
            let channel = rng.weighted(CHANNELS);
            let category = rng.weighted(CATEGORIES);
            let visibility = make_visibility(&mut rng, channel);
            let product_idea = category == Category::ProductIdea || rng.chance(2);
            let item_sku = if needs_item(category) {
                (*rng.pick(SKUS)).to_owned()
            } else {
                String::new()
            };
            let summary = (*rng.pick(phrases(category))).to_owned();
            // Skewed high: the better of two draws.
            let satisfaction = rng.range(5, 10).max(rng.range(5, 10));
            let lifecycle = (!via_helpdesk && rng.chance(30)).then(|| Lifecycle {
                satisfaction: u32::try_from(satisfaction).unwrap_or(10),
                ceo_satisfaction: if rng.chance(70) { 10 } else { 9 },
            });
            Complaint {
                source_system: if via_helpdesk {
                    "demo-helpdesk"
                } else {
                    "demo-grpc"
                },
                external_ticket_id: format!("D{seed}-{i:06}"),
                customer,
                channel,
                category,
                visibility,
                product_idea,
                item_sku,
                summary,
                via_helpdesk,
                lifecycle,
            }
        })
        .collect()
}

/// An enum's short name: `CHANNEL_PUBLIC_SOCIAL` -> `PUBLIC_SOCIAL`.
fn short<'a>(full: &'a str, prefix: &str) -> &'a str {
    full.strip_prefix(prefix).unwrap_or(full)
}

impl Complaint {
    /// The gRPC form.
    pub fn to_request(&self) -> SubmitComplaintRequest {
        SubmitComplaintRequest {
            source_system: self.source_system.to_owned(),
            external_ticket_id: self.external_ticket_id.clone(),
            customer: Some(self.customer.clone()),
            channel: self.channel as i32,
            category: self.category as i32,
            visibility: Some(self.visibility),
            product_idea: self.product_idea,
            item_sku: self.item_sku.clone(),
            summary: self.summary.clone(),
            occurred_at_ms: 0,
        }
    }

    /// The helpdesk JSON form.
    pub fn to_helpdesk_json(&self) -> Value {
        let tier = CustomerTier::try_from(self.customer.tier).unwrap_or(CustomerTier::Standard);
        json!({
            "type": "submit",
            "source_system": self.source_system,
            "external_ticket_id": self.external_ticket_id,
            "customer": {
                "customer_id": self.customer.customer_id,
                "segment": self.customer.segment,
                "tier": short(tier.as_str_name(), "CUSTOMER_TIER_"),
                "lifetime_value_cents": self.customer.lifetime_value_cents,
                "churn_risk_pct": self.customer.churn_risk_pct,
            },
            "channel": short(self.channel.as_str_name(), "CHANNEL_"),
            "category": short(self.category.as_str_name(), "CATEGORY_"),
            "visibility": {
                "audience_reach": self.visibility.audience_reach,
                "shares": self.visibility.shares,
                "media_attention": self.visibility.media_attention,
            },
            "product_idea": self.product_idea,
            "item_sku": self.item_sku,
            "summary": self.summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_complaints() {
        let a = generate(7, 300);
        let b = generate(7, 300);
        assert_eq!(a.len(), 300);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.to_helpdesk_json(), y.to_helpdesk_json());
        }
        assert_ne!(
            generate(8, 10)[0].external_ticket_id,
            a[0].external_ticket_id
        );
        assert_eq!(a.iter().filter(|c| c.via_helpdesk).count(), 150);
    }
}
