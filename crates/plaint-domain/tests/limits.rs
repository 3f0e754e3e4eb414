//! Every named limit, tested at the limit (accepted) and one past it (refused
//! with the problem that names the limit), and the identities derived from input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW_MS, now};
use plaint_domain::routing::{
    MAX_CEO_BUDGET_PER_WINDOW, MAX_COOLDOWN_DAYS, MAX_POINTS, MAX_TIERS, MAX_WINDOW_HOURS,
    RoutingPolicy, Tier,
};
use plaint_domain::time::{EARLIEST_MS, MAX_FUTURE_SKEW_MS, Timestamp};
use plaint_domain::values::AtField;
use plaint_domain::values::{
    ChurnRisk, ComplaintId, CustomerId, EventId, ExternalTicketId, FreeText, Label,
    MAX_CHURN_RISK_PCT, MAX_CUSTOMER_ID_LEN, MAX_EXTERNAL_TICKET_ID_LEN, MAX_LABEL_LEN,
    MAX_MONEY_CENTS, MAX_REACH, MAX_SATISFACTION, MAX_SEGMENT_LEN, MAX_SOURCE_SYSTEM_LEN,
    MAX_TEXT_BYTES, MIN_SATISFACTION, Money, Problem, Reach, Satisfaction, Segment, SourceSystem,
    ValidationError, parse_occurred_at,
};
use uuid::Uuid;

fn too_long(max: usize) -> Problem {
    Problem::TooLong {
        max,
        actual: max + 1,
    }
}

fn out_of_range(min: i128, max: i128, actual: i128) -> Problem {
    Problem::OutOfRange { min, max, actual }
}

/// Checks one text type: `max` bytes accepted, `max + 1` refused, empty and
/// blank refused as missing, surrounding blanks trimmed.
macro_rules! text_limit {
    ($at:ident, $past:ident, $empty:ident, $ty:ty, $max:expr) => {
        #[test]
        fn $at() {
            let raw = "a".repeat($max);
            assert_eq!(<$ty>::parse(&raw).unwrap().as_str(), raw);
            let padded = format!("  {raw}\t");
            assert_eq!(
                <$ty>::parse(&padded).unwrap().as_str(),
                raw,
                "surrounding blanks are trimmed before the length is checked"
            );
        }

        #[test]
        fn $past() {
            assert_eq!(<$ty>::parse(&"a".repeat($max + 1)), Err(too_long($max)));
        }

        #[test]
        fn $empty() {
            assert_eq!(<$ty>::parse(""), Err(Problem::Missing));
            assert_eq!(<$ty>::parse(" \t\n "), Err(Problem::Missing));
        }
    };
}

text_limit!(
    a_source_system_of_max_len_is_accepted,
    a_source_system_one_byte_too_long_is_refused,
    an_empty_or_blank_source_system_is_missing,
    SourceSystem,
    MAX_SOURCE_SYSTEM_LEN
);
text_limit!(
    an_external_ticket_id_of_max_len_is_accepted,
    an_external_ticket_id_one_byte_too_long_is_refused,
    an_empty_or_blank_external_ticket_id_is_missing,
    ExternalTicketId,
    MAX_EXTERNAL_TICKET_ID_LEN
);
text_limit!(
    a_customer_id_of_max_len_is_accepted,
    a_customer_id_one_byte_too_long_is_refused,
    an_empty_or_blank_customer_id_is_missing,
    CustomerId,
    MAX_CUSTOMER_ID_LEN
);
text_limit!(
    a_segment_of_max_len_is_accepted,
    a_segment_one_byte_too_long_is_refused,
    an_empty_or_blank_segment_is_missing,
    Segment,
    MAX_SEGMENT_LEN
);
text_limit!(
    a_label_of_max_len_is_accepted,
    a_label_one_byte_too_long_is_refused,
    an_empty_or_blank_label_is_missing,
    Label,
    MAX_LABEL_LEN
);

#[test]
fn text_limits_count_bytes_not_characters() {
    // "é" is two bytes of UTF-8.
    let at_limit = "é".repeat(MAX_CUSTOMER_ID_LEN / 2);
    assert!(CustomerId::parse(&at_limit).is_ok());
    let past = format!("{at_limit}a");
    assert_eq!(CustomerId::parse(&past), Err(too_long(MAX_CUSTOMER_ID_LEN)));
}

#[test]
fn source_systems_and_segments_are_slugs() {
    for ok in ["zendesk-eu", "shop_2.de", "A-Z.0_9"] {
        assert!(SourceSystem::parse(ok).is_ok(), "{ok}");
        assert!(Segment::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["zendesk eu", "a:b", "naïve", "a/b", "a\u{1f}b"] {
        assert!(
            matches!(SourceSystem::parse(bad), Err(Problem::BadCharacters { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(Segment::parse(bad), Err(Problem::BadCharacters { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn ids_and_labels_take_any_printable_characters_but_no_control_characters() {
    for ok in ["T 42: ñandú / 🙂", "a:b"] {
        assert!(ExternalTicketId::parse(ok).is_ok(), "{ok}");
        assert!(CustomerId::parse(ok).is_ok(), "{ok}");
        assert!(Label::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["a\nb", "a\u{0}b", "a\u{1f}b", "a\u{7f}b", "a\u{1b}[31m"] {
        assert!(
            matches!(
                ExternalTicketId::parse(bad),
                Err(Problem::BadCharacters { .. })
            ),
            "{bad:?}"
        );
        assert!(
            matches!(CustomerId::parse(bad), Err(Problem::BadCharacters { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(Label::parse(bad), Err(Problem::BadCharacters { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn free_text_of_max_bytes_is_accepted_and_one_byte_more_is_refused() {
    assert!(FreeText::parse(&"x".repeat(MAX_TEXT_BYTES)).is_ok());
    assert_eq!(
        FreeText::parse(&"x".repeat(MAX_TEXT_BYTES + 1)),
        Err(too_long(MAX_TEXT_BYTES))
    );
}

#[test]
fn free_text_may_be_empty_but_may_not_hold_nul() {
    assert_eq!(FreeText::parse("").unwrap().as_str(), "");
    assert!(matches!(
        FreeText::parse("a\0b"),
        Err(Problem::BadCharacters { .. })
    ));
    assert_eq!(
        FreeText::parse("  line one\nline two  ").unwrap().as_str(),
        "  line one\nline two  ",
        "free text is kept as written"
    );
}

#[test]
fn a_reach_of_max_reach_is_accepted_and_one_more_is_refused() {
    assert_eq!(Reach::parse(MAX_REACH).unwrap().get(), MAX_REACH);
    assert_eq!(Reach::parse(0).unwrap().get(), 0);
    assert_eq!(
        Reach::parse(MAX_REACH + 1),
        Err(out_of_range(0, MAX_REACH.into(), (MAX_REACH + 1).into()))
    );
}

#[test]
fn money_up_to_max_money_cents_is_accepted_and_one_cent_more_is_refused() {
    assert_eq!(
        Money::parse(MAX_MONEY_CENTS).unwrap().cents(),
        MAX_MONEY_CENTS
    );
    assert_eq!(Money::parse(0).unwrap().cents(), 0);
    assert_eq!(
        Money::parse(MAX_MONEY_CENTS + 1),
        Err(out_of_range(
            0,
            MAX_MONEY_CENTS.into(),
            (MAX_MONEY_CENTS + 1).into()
        ))
    );
}

#[test]
fn negative_money_is_refused() {
    assert_eq!(
        Money::parse(-1),
        Err(out_of_range(0, MAX_MONEY_CENTS.into(), -1))
    );
}

#[test]
fn satisfaction_is_1_to_10() {
    let range = |actual| out_of_range(MIN_SATISFACTION.into(), MAX_SATISFACTION.into(), actual);
    assert_eq!(Satisfaction::parse(0), Err(range(0)));
    assert_eq!(Satisfaction::parse(1).unwrap().get(), 1);
    assert_eq!(Satisfaction::parse(10).unwrap().get(), 10);
    assert_eq!(Satisfaction::parse(11), Err(range(11)));
    assert_eq!(Satisfaction::parse(u32::MAX), Err(range(u32::MAX.into())));
}

#[test]
fn only_a_9_or_a_10_counts_as_recovered() {
    let recovered: Vec<u32> = (MIN_SATISFACTION..=MAX_SATISFACTION)
        .filter(|s| Satisfaction::parse(*s).unwrap().is_recovered())
        .collect();
    assert_eq!(recovered, [9, 10]);
}

#[test]
fn churn_risk_up_to_100_percent_is_accepted_and_101_is_refused() {
    assert_eq!(ChurnRisk::parse(MAX_CHURN_RISK_PCT).unwrap().pct(), 100);
    assert_eq!(
        ChurnRisk::parse(MAX_CHURN_RISK_PCT + 1),
        Err(out_of_range(0, 100, 101))
    );
}

#[test]
fn an_instant_before_2000_is_refused() {
    assert_eq!(
        parse_occurred_at(EARLIEST_MS, now()),
        Ok(Timestamp::from_millis(EARLIEST_MS))
    );
    assert_eq!(
        parse_occurred_at(EARLIEST_MS - 1, now()),
        Err(out_of_range(
            EARLIEST_MS.into(),
            (NOW_MS + MAX_FUTURE_SKEW_MS).into(),
            (EARLIEST_MS - 1).into()
        ))
    );
}

#[test]
fn an_instant_up_to_the_skew_allowance_ahead_is_accepted_and_one_ms_more_is_refused() {
    let latest = NOW_MS + MAX_FUTURE_SKEW_MS;
    assert_eq!(
        parse_occurred_at(latest, now()),
        Ok(Timestamp::from_millis(latest))
    );
    assert_eq!(
        parse_occurred_at(latest + 1, now()),
        Err(out_of_range(
            EARLIEST_MS.into(),
            latest.into(),
            (latest + 1).into()
        ))
    );
}

#[test]
fn a_problem_names_its_field_in_the_message() {
    let error = ValidationError::new("customer.customer_id", too_long(MAX_CUSTOMER_ID_LEN));
    assert_eq!(
        error.to_string(),
        "customer.customer_id is 129 bytes, the limit is 128"
    );
}

// ---------------------------------------------------------------------------
// values read back from JSON are checked like parsed ones

#[test]
fn a_label_read_from_json_is_checked_like_a_parsed_one() {
    assert!(serde_json::from_str::<Segment>(r#""retail""#).is_ok());
    assert!(serde_json::from_str::<Segment>(r#""has space""#).is_err());
    assert!(serde_json::from_str::<Label>(r#""""#).is_err());
    let too_long = format!("\"{}\"", "a".repeat(MAX_LABEL_LEN + 1));
    assert!(serde_json::from_str::<Label>(&too_long).is_err());
}

#[test]
fn a_number_read_from_json_is_checked_like_a_parsed_one() {
    assert_eq!(
        serde_json::from_str::<Satisfaction>("9").unwrap(),
        Satisfaction::parse(9).unwrap()
    );
    assert!(serde_json::from_str::<Satisfaction>("0").is_err());
    assert!(serde_json::from_str::<Satisfaction>("11").is_err());
    assert!(serde_json::from_str::<Money>("-1").is_err());
    assert!(serde_json::from_str::<Money>(&(MAX_MONEY_CENTS + 1).to_string()).is_err());
    assert!(serde_json::from_str::<Reach>(&(MAX_REACH + 1).to_string()).is_err());
    assert!(serde_json::from_str::<ChurnRisk>("101").is_err());
}

#[test]
fn numbers_are_written_to_json_as_plain_numbers() {
    assert_eq!(
        serde_json::to_string(&Satisfaction::parse(9).unwrap()).unwrap(),
        "9"
    );
    assert_eq!(
        serde_json::to_string(&Money::parse(1_250).unwrap()).unwrap(),
        "1250"
    );
    assert_eq!(
        serde_json::to_string(&Reach::parse(7).unwrap()).unwrap(),
        "7"
    );
    assert_eq!(
        serde_json::to_string(&ChurnRisk::parse(40).unwrap()).unwrap(),
        "40"
    );
}

// ---------------------------------------------------------------------------
// identities

fn source(raw: &str) -> SourceSystem {
    SourceSystem::parse(raw).unwrap()
}

fn ticket(raw: &str) -> ExternalTicketId {
    ExternalTicketId::parse(raw).unwrap()
}

#[test]
fn a_complaint_id_is_derived_from_source_and_ticket_deterministically() {
    let first = ComplaintId::for_ticket(&source("zendesk-eu"), &ticket("T-1"));
    let again = ComplaintId::for_ticket(&source("zendesk-eu"), &ticket("T-1"));
    assert_eq!(first, again);
    assert_ne!(
        first,
        ComplaintId::for_ticket(&source("zendesk-eu"), &ticket("T-2"))
    );
    assert_ne!(
        first,
        ComplaintId::for_ticket(&source("zendesk-us"), &ticket("T-1"))
    );
}

#[test]
fn a_complaint_id_keeps_source_and_ticket_apart() {
    // With a naive "source:ticket" key, ("a", "b:c") and ("a:b", "c") would
    // collide. A source system cannot contain ':' (nor the separator the key
    // uses), and a ticket cannot contain the separator either.
    assert!(SourceSystem::parse("a:b").is_err());
    assert!(SourceSystem::parse("a\u{1f}b").is_err());
    assert!(ExternalTicketId::parse("b\u{1f}c").is_err());
    let pairs = [
        ("a", "b:c"),
        ("a.b", "c"),
        ("a", "b.c"),
        ("ab", "c"),
        ("a", "bc"),
    ];
    let ids: Vec<ComplaintId> = pairs
        .iter()
        .map(|(s, t)| ComplaintId::for_ticket(&source(s), &ticket(t)))
        .collect();
    for (i, a) in ids.iter().enumerate() {
        for (j, b) in ids.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "{:?} and {:?} collide", pairs[i], pairs[j]);
        }
    }
}

#[test]
fn a_complaint_id_parses_its_own_display_form() {
    let id = ComplaintId::for_ticket(&source("zendesk-eu"), &ticket("T-1"));
    let shown = id.to_string();
    assert_eq!(shown.len(), 36, "the canonical hyphenated form: {shown}");
    assert_eq!(ComplaintId::parse(&shown), Ok(id));
    assert_eq!(id.subject_token(), id.as_uuid().simple().to_string());
    assert!(!id.subject_token().contains('-'));
}

#[test]
fn a_complaint_id_must_be_a_uuid() {
    assert_eq!(ComplaintId::parse(""), Err(Problem::Missing));
    assert_eq!(
        ComplaintId::parse("not-a-uuid"),
        Err(Problem::Malformed { expected: "a UUID" })
    );
    assert!(ComplaintId::parse("6c1f0e5e-9a57-4b0c-8d6e-2f1b7c3a9e4").is_err());
}

#[test]
fn an_event_id_parses_its_own_display_form_and_must_be_a_uuid() {
    let id = EventId::from_uuid(Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0));
    assert_eq!(EventId::parse(&id.to_string()), Ok(id));
    assert_eq!(EventId::parse(""), Err(Problem::Missing));
    assert_eq!(
        EventId::parse("zzzz"),
        Err(Problem::Malformed { expected: "a UUID" })
    );
}

#[test]
fn a_derived_event_id_is_the_same_for_a_retried_request() {
    let origin = Uuid::from_u128(42);
    assert_eq!(
        EventId::derived(origin, "submit", 0),
        EventId::derived(origin, "submit", 0)
    );
}

#[test]
fn derived_event_ids_differ_by_origin_purpose_and_index() {
    let origin = Uuid::from_u128(42);
    let base = EventId::derived(origin, "submit", 0);
    assert_ne!(base, EventId::derived(Uuid::from_u128(43), "submit", 0));
    assert_ne!(base, EventId::derived(origin, "route", 0));
    assert_ne!(base, EventId::derived(origin, "submit", 1));
    // The index has a fixed width, so purpose and index cannot run together.
    assert_ne!(
        EventId::derived(origin, "a", 0x0100_0000),
        EventId::derived(origin, "a\u{1}", 0)
    );
}

// ---------------------------------------------------------------------------
// policy limits

#[track_caller]
fn assert_valid(change: impl FnOnce(&mut RoutingPolicy)) {
    let mut policy = RoutingPolicy::default();
    change(&mut policy);
    assert_eq!(policy.validate(), Ok(()));
}

#[track_caller]
fn assert_refused(field: &str, change: impl FnOnce(&mut RoutingPolicy)) -> Problem {
    let mut policy = RoutingPolicy::default();
    change(&mut policy);
    let error = policy.validate().expect_err("the policy is refused");
    assert_eq!(error.field, field);
    error.problem
}

#[test]
fn points_up_to_max_points_either_way_are_accepted_and_one_more_is_refused() {
    assert_valid(|p| p.weights.product_idea = MAX_POINTS);
    assert_valid(|p| p.weights.social_issue_misaligned = -MAX_POINTS);
    let problem = assert_refused("weights.product_idea", |p| {
        p.weights.product_idea = MAX_POINTS + 1;
    });
    assert_eq!(
        problem,
        out_of_range(
            (-MAX_POINTS).into(),
            MAX_POINTS.into(),
            (MAX_POINTS + 1).into()
        )
    );
    assert_refused("weights.social_issue_misaligned", |p| {
        p.weights.social_issue_misaligned = -MAX_POINTS - 1;
    });
}

fn tiers(count: usize) -> Vec<Tier> {
    (0..count)
        .map(|i| Tier {
            at_least: u64::try_from(i).unwrap() * 10,
            points: 1,
        })
        .collect()
}

#[test]
fn a_factor_of_max_tiers_is_accepted_and_one_more_is_refused() {
    assert_valid(|p| p.weights.shares = tiers(MAX_TIERS));
    let problem = assert_refused("weights.shares", |p| {
        p.weights.shares = tiers(MAX_TIERS + 1)
    });
    assert_eq!(problem, too_long(MAX_TIERS));
}

#[test]
fn a_budget_of_max_ceo_budget_per_window_is_accepted_and_one_more_is_refused() {
    assert_valid(|p| p.budget.per_window = MAX_CEO_BUDGET_PER_WINDOW);
    assert_valid(|p| p.budget.per_window = 0);
    let problem = assert_refused("budget.per_window", |p| {
        p.budget.per_window = MAX_CEO_BUDGET_PER_WINDOW + 1;
    });
    assert_eq!(
        problem,
        out_of_range(
            0,
            MAX_CEO_BUDGET_PER_WINDOW.into(),
            (MAX_CEO_BUDGET_PER_WINDOW + 1).into()
        )
    );
}

#[test]
fn a_window_of_1_to_max_window_hours_is_accepted() {
    assert_valid(|p| p.budget.window_hours = 1);
    assert_valid(|p| p.budget.window_hours = MAX_WINDOW_HOURS);
    assert_refused("budget.window_hours", |p| p.budget.window_hours = 0);
    let problem = assert_refused("budget.window_hours", |p| {
        p.budget.window_hours = MAX_WINDOW_HOURS + 1;
    });
    assert_eq!(
        problem,
        out_of_range(1, MAX_WINDOW_HOURS.into(), (MAX_WINDOW_HOURS + 1).into())
    );
}

#[test]
fn a_cooldown_of_max_cooldown_days_is_accepted_and_one_more_is_refused() {
    assert_valid(|p| p.cooldown_days = 0);
    assert_valid(|p| p.cooldown_days = MAX_COOLDOWN_DAYS);
    let problem = assert_refused("cooldown_days", |p| p.cooldown_days = MAX_COOLDOWN_DAYS + 1);
    assert_eq!(
        problem,
        out_of_range(0, MAX_COOLDOWN_DAYS.into(), (MAX_COOLDOWN_DAYS + 1).into())
    );
}

#[test]
fn a_segment_share_of_1_to_100_percent_is_accepted() {
    assert_valid(|p| p.max_segment_share_pct = 1);
    assert_valid(|p| p.max_segment_share_pct = 100);
    assert_eq!(
        assert_refused("max_segment_share_pct", |p| p.max_segment_share_pct = 0),
        out_of_range(1, 100, 0)
    );
    assert_eq!(
        assert_refused("max_segment_share_pct", |p| p.max_segment_share_pct = 101),
        out_of_range(1, 100, 101)
    );
}

#[test]
fn a_ceo_threshold_of_0_to_ten_times_max_points_is_accepted() {
    let max_threshold = 10 * MAX_POINTS;
    assert_valid(|p| p.ceo_threshold.neutral = Some(0));
    assert_valid(|p| p.ceo_threshold.neutral = Some(max_threshold));
    assert_valid(|p| p.ceo_threshold.neutral = None);
    assert_refused("ceo_threshold.neutral", |p| {
        p.ceo_threshold.neutral = Some(max_threshold + 1);
    });
    assert_refused("ceo_threshold.bad", |p| p.ceo_threshold.bad = Some(-1));
}

#[test]
fn priority_thresholds_must_strictly_descend() {
    assert_valid(|p| {
        p.priority.p1 = 3;
        p.priority.p2 = 2;
        p.priority.p3 = 1;
    });
    assert_refused("priority.p2", |p| p.priority.p2 = p.priority.p1);
    assert_refused("priority.p3", |p| p.priority.p3 = p.priority.p2);
    assert_refused("priority.p1", |p| p.priority.p1 = 10 * MAX_POINTS + 1);
}

#[test]
fn a_field_under_a_prefix_is_named_by_its_whole_path() {
    let bad: Result<(), Problem> = Err(Problem::Missing);
    let e = bad.clone().at_in("customer", "segment").unwrap_err();
    assert_eq!(e.field, "customer.segment");
    assert_eq!(e.problem, Problem::Missing);
    assert_eq!(bad.at_in("", "segment").unwrap_err().field, "segment");
    let nested = ValidationError::new("route", Problem::Missing).within("decision");
    assert_eq!(nested.field, "decision.route");
    assert_eq!(nested.to_string(), "decision.route is required");
    assert_eq!(
        ValidationError::new("route", Problem::Missing)
            .within("")
            .field,
        "route"
    );
}
