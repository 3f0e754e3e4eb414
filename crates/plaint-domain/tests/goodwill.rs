//! The goodwill stock: mean satisfaction and the share of recovered customers
//! (a 9 or a 10), overall and per route, channel and day of resolution.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW_MS, satisfaction};
use plaint_domain::facts::Channel;
use plaint_domain::goodwill::{
    GoodwillFigures, GoodwillTally, ResolvedComplaint, by_channel, by_day, by_route, goodwill,
};
use plaint_domain::routing::Route;
use plaint_domain::time::{DAY_MS, Timestamp};

/// 2024-06-01T12:00:00Z plus `days`.
fn day(days: i64) -> Timestamp {
    Timestamp::from_millis(NOW_MS + days * DAY_MS)
}

fn resolved(route: Route, channel: Channel, at: Timestamp, score: u32) -> ResolvedComplaint {
    ResolvedComplaint {
        route,
        channel,
        resolved_at: at,
        satisfaction: satisfaction(score),
    }
}

/// A frontline email resolved today with this score.
fn scored(score: u32) -> ResolvedComplaint {
    resolved(Route::Frontline, Channel::Email, day(0), score)
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

#[test]
fn no_resolved_complaints_give_all_zero_figures() {
    let figures = goodwill(&[]);
    assert_eq!(figures, GoodwillFigures::default());
    assert_eq!(figures.resolved, 0);
    assert_close(figures.mean_satisfaction, 0.0);
    assert_close(figures.recovered_share, 0.0);
    assert_eq!(
        GoodwillTally::default().figures(),
        GoodwillFigures::default()
    );
}

#[test]
fn no_resolved_complaints_give_no_groups() {
    assert!(by_route(&[]).is_empty());
    assert!(by_channel(&[]).is_empty());
    assert!(by_day(&[]).is_empty());
}

#[test]
fn the_mean_is_the_average_score() {
    let figures = goodwill(&[scored(10), scored(7), scored(4)]);
    assert_eq!(figures.resolved, 3);
    assert_close(figures.mean_satisfaction, 7.0);
}

#[test]
fn a_9_and_a_10_count_as_recovered_but_an_8_does_not() {
    let figures = goodwill(&[scored(9), scored(10), scored(8), scored(1)]);
    assert_close(figures.recovered_share, 0.5);
    assert_close(goodwill(&[scored(8)]).recovered_share, 0.0);
    assert_close(goodwill(&[scored(9)]).recovered_share, 1.0);
    assert_close(goodwill(&[scored(10)]).recovered_share, 1.0);
}

#[test]
fn a_tally_counts_resolutions_scores_and_recoveries() {
    let mut tally = GoodwillTally::default();
    for score in [10, 9, 8, 3] {
        tally.add(satisfaction(score));
    }
    assert_eq!(
        tally,
        GoodwillTally {
            resolved: 4,
            satisfaction_sum: 30,
            recovered: 2,
        }
    );
    assert_close(tally.figures().mean_satisfaction, 7.5);
    assert_close(tally.figures().recovered_share, 0.5);
}

#[test]
fn merged_tallies_give_the_figures_of_all_their_resolutions() {
    let mut ceo = GoodwillTally::default();
    ceo.add(satisfaction(10));
    let mut frontline = GoodwillTally::default();
    frontline.add(satisfaction(6));
    frontline.add(satisfaction(8));
    ceo.merge(frontline);
    assert_eq!(ceo.figures(), goodwill(&[scored(10), scored(6), scored(8)]));
}

#[test]
fn figures_are_grouped_by_route() {
    let items = [
        resolved(Route::Ceo, Channel::PublicSocial, day(0), 10),
        resolved(Route::Ceo, Channel::PublicSocial, day(0), 8),
        resolved(Route::Frontline, Channel::Email, day(0), 5),
        resolved(Route::ReverseLogistics, Channel::Email, day(1), 9),
    ];
    let groups = by_route(&items);
    assert_eq!(
        groups.keys().copied().collect::<Vec<_>>(),
        [Route::Ceo, Route::Frontline, Route::ReverseLogistics]
    );
    assert_eq!(groups[&Route::Ceo].resolved, 2);
    assert_close(groups[&Route::Ceo].mean_satisfaction, 9.0);
    assert_close(groups[&Route::Ceo].recovered_share, 0.5);
    assert_close(groups[&Route::Frontline].mean_satisfaction, 5.0);
    assert_close(groups[&Route::Frontline].recovered_share, 0.0);
    assert_close(groups[&Route::ReverseLogistics].recovered_share, 1.0);
}

#[test]
fn a_route_with_no_resolutions_has_no_group() {
    let groups = by_route(&[scored(9)]);
    assert_eq!(
        groups.keys().copied().collect::<Vec<_>>(),
        [Route::Frontline]
    );
}

#[test]
fn figures_are_grouped_by_channel() {
    let items = [
        resolved(Route::Ceo, Channel::PublicSocial, day(0), 10),
        resolved(Route::Frontline, Channel::PublicSocial, day(0), 6),
        resolved(Route::Frontline, Channel::Phone, day(0), 9),
    ];
    let groups = by_channel(&items);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[&Channel::PublicSocial].resolved, 2);
    assert_close(groups[&Channel::PublicSocial].mean_satisfaction, 8.0);
    assert_close(groups[&Channel::PublicSocial].recovered_share, 0.5);
    assert_eq!(groups[&Channel::Phone].resolved, 1);
    assert_close(groups[&Channel::Phone].recovered_share, 1.0);
}

#[test]
fn figures_are_grouped_by_utc_day_of_resolution() {
    let last_ms_of_the_day =
        Timestamp::from_millis(NOW_MS - NOW_MS.rem_euclid(DAY_MS) + DAY_MS - 1);
    let items = [
        scored(10),
        resolved(Route::Frontline, Channel::Email, last_ms_of_the_day, 4),
        resolved(Route::Frontline, Channel::Email, day(1), 9),
        resolved(Route::Frontline, Channel::Email, day(-31), 2),
    ];
    let groups = by_day(&items);
    assert_eq!(
        groups.keys().cloned().collect::<Vec<_>>(),
        ["2024-05-01", "2024-06-01", "2024-06-02"],
        "days sort as calendar dates"
    );
    assert_eq!(groups["2024-06-01"].resolved, 2);
    assert_close(groups["2024-06-01"].mean_satisfaction, 7.0);
    assert_close(groups["2024-06-02"].recovered_share, 1.0);
    assert_close(groups["2024-05-01"].mean_satisfaction, 2.0);
}

#[test]
fn the_groups_add_up_to_the_whole() {
    let items = [
        resolved(Route::Ceo, Channel::PublicSocial, day(0), 10),
        resolved(Route::Frontline, Channel::Email, day(1), 7),
        resolved(Route::ReverseLogistics, Channel::Store, day(2), 9),
        resolved(Route::Frontline, Channel::Chat, day(2), 3),
    ];
    let total = goodwill(&items).resolved;
    assert_eq!(
        by_route(&items).values().map(|f| f.resolved).sum::<u64>(),
        total
    );
    assert_eq!(
        by_channel(&items).values().map(|f| f.resolved).sum::<u64>(),
        total
    );
    assert_eq!(
        by_day(&items).values().map(|f| f.resolved).sum::<u64>(),
        total
    );
}
