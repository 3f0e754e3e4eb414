//! The goodwill stock: satisfaction recovered through complaint handling.
//!
//! A complaining customer comes back to their former loyalty only with a
//! near-perfect handling (a 9 or 10 on the 1..=10 scale); the share of such
//! "recovered" complaints is the headline figure, beside the mean score.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::facts::Channel;
use crate::routing::Route;
use crate::time::Timestamp;
use crate::values::Satisfaction;

/// One resolved complaint, as the goodwill figures need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedComplaint {
    /// The route that handled it.
    pub route: Route,
    /// Where the customer complained.
    pub channel: Channel,
    /// When it was resolved.
    pub resolved_at: Timestamp,
    /// The customer's rating.
    pub satisfaction: Satisfaction,
}

/// Running sums from which the figures follow; adding is associative, so
/// projections can keep tallies per group and merge them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodwillTally {
    /// Resolved complaints counted.
    pub resolved: u64,
    /// Sum of their scores.
    pub satisfaction_sum: u64,
    /// How many scored 9 or 10.
    pub recovered: u64,
}

impl GoodwillTally {
    /// Counts one resolution.
    pub fn add(&mut self, satisfaction: Satisfaction) {
        self.resolved += 1;
        self.satisfaction_sum += u64::from(satisfaction.get());
        self.recovered += u64::from(satisfaction.is_recovered());
    }

    /// Merges another tally into this one.
    pub fn merge(&mut self, other: GoodwillTally) {
        self.resolved += other.resolved;
        self.satisfaction_sum += other.satisfaction_sum;
        self.recovered += other.recovered;
    }

    /// The figures these sums give.
    pub fn figures(&self) -> GoodwillFigures {
        if self.resolved == 0 {
            return GoodwillFigures::default();
        }
        let n = self.resolved as f64;
        GoodwillFigures {
            resolved: self.resolved,
            recovered: self.recovered,
            mean_satisfaction: self.satisfaction_sum as f64 / n,
            recovered_share: self.recovered as f64 / n,
        }
    }
}

/// Goodwill figures of a group of resolved complaints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GoodwillFigures {
    /// How many were resolved.
    pub resolved: u64,
    /// How many of them were rated 9 or 10.
    pub recovered: u64,
    /// Mean satisfaction, 0 when none.
    pub mean_satisfaction: f64,
    /// Share rated 9 or 10, in `0.0..=1.0`.
    pub recovered_share: f64,
}

/// Figures over all the given complaints.
pub fn goodwill<'a>(items: impl IntoIterator<Item = &'a ResolvedComplaint>) -> GoodwillFigures {
    let mut tally = GoodwillTally::default();
    for item in items {
        tally.add(item.satisfaction);
    }
    tally.figures()
}

/// Figures per group, the group chosen by `key`; groups sorted by key.
pub fn goodwill_by<'a, K: Ord>(
    items: impl IntoIterator<Item = &'a ResolvedComplaint>,
    key: impl Fn(&ResolvedComplaint) -> K,
) -> BTreeMap<K, GoodwillFigures> {
    let mut tallies: BTreeMap<K, GoodwillTally> = BTreeMap::new();
    for item in items {
        tallies.entry(key(item)).or_default().add(item.satisfaction);
    }
    tallies.into_iter().map(|(k, t)| (k, t.figures())).collect()
}

/// Figures per route.
pub fn by_route<'a>(
    items: impl IntoIterator<Item = &'a ResolvedComplaint>,
) -> BTreeMap<Route, GoodwillFigures> {
    goodwill_by(items, |c| c.route)
}

/// Figures per channel.
pub fn by_channel<'a>(
    items: impl IntoIterator<Item = &'a ResolvedComplaint>,
) -> BTreeMap<Channel, GoodwillFigures> {
    goodwill_by(items, |c| c.channel)
}

/// Figures per UTC day of resolution (`YYYY-MM-DD`).
pub fn by_day<'a>(
    items: impl IntoIterator<Item = &'a ResolvedComplaint>,
) -> BTreeMap<String, GoodwillFigures> {
    goodwill_by(items, |c| c.resolved_at.day())
}
