//! `IntakeAdmin.ListDeadLetters` over big letters: a page is cut by size
//! before payloads are read, so paging through letters of 2 MiB each costs
//! the intake process a page's worth of memory, and the pages hold every
//! letter exactly once.

use std::collections::BTreeMap;
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;
use plaint_bus::{DEAD_LETTER_REASON, DEAD_LETTER_SUBJECT};
use plaint_client::Authed;
use plaint_proto::intake::{self as ipb, intake_admin_client::IntakeAdminClient};

use crate::checker::figures;
use crate::harness::{Options, System};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Room for letters of 2 MiB: the dead-letter stream takes messages up to
/// twice the log's limit (2 MiB), NATS by default only 1 MiB.
const NATS_CONFIG: &str = "max_payload: 4MB\n";
/// A letter as large as the dead-letter stream takes, its headers included.
const BIG: usize = 2 * MIB - 4 * KIB;
/// How much the intake process may grow over the whole paging.
const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;

/// Stores `sizes.len()` dead letters, as the helpdesk door would, each with
/// its index in its first bytes; returns their stream sequences.
async fn write_letters(sys: &System, sizes: &[usize]) -> Vec<u64> {
    let js = sys.js();
    let mut sequences = Vec::with_capacity(sizes.len());
    for (i, size) in sizes.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(DEAD_LETTER_SUBJECT, sys.inbound_subject("big").as_str());
        headers.insert(DEAD_LETTER_REASON, "payload: at most 65536 bytes");
        let ack = js
            .publish_with_headers(sys.names.dead_letter(), headers, letter(i, *size))
            .await
            .expect("publish a dead letter")
            .await
            .unwrap_or_else(|e| panic!("dead letter {i} ({size} bytes) stored: {e}"));
        sequences.push(ack.sequence);
    }
    sequences
}

fn letter(i: usize, size: usize) -> Bytes {
    let mut payload = vec![b'x'; size];
    let tag = format!("{i:08}");
    let n = tag.len().min(size);
    payload[..n].copy_from_slice(&tag.as_bytes()[..n]);
    Bytes::from(payload)
}

fn admin(sys: &System) -> IntakeAdminClient<Authed> {
    IntakeAdminClient::new(sys.intake_channel()).max_decoding_message_size(64 * MIB)
}

async fn page(
    admin: &mut IntakeAdminClient<Authed>,
    after: u64,
    limit: u32,
) -> ipb::ListDeadLettersResponse {
    admin
        .list_dead_letters(ipb::ListDeadLettersRequest {
            after_sequence: after,
            limit,
        })
        .await
        .expect("ListDeadLetters")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_big_dead_letters_keeps_intake_memory_flat() {
    let sys = System::start(Options {
        nats_config: Some(NATS_CONFIG),
        ..Options::default()
    })
    .await;
    let written = Instant::now();
    let sequences = write_letters(&sys, &[BIG; 200]).await;
    let written = written.elapsed();
    let mut admin = admin(&sys);

    let rss_before = sys.intake.rss_kib().expect("intake's VmRSS");
    let peak_before = sys.intake.peak_rss_kib().expect("intake's VmHWM");
    let started = Instant::now();
    let mut after = 0;
    let mut seen = Vec::new();
    for _ in 0..20 {
        let p = page(&mut admin, after, 0).await;
        assert!(!p.letters.is_empty(), "a page holds at least one letter");
        seen.extend(p.letters.iter().map(|l| l.sequence));
        assert_ne!(p.next_after_sequence, 0, "more letters follow");
        after = p.next_after_sequence;
    }
    let paged = started.elapsed();
    let rss_after = sys.intake.rss_kib().expect("intake's VmRSS");
    let peak_after = sys.intake.peak_rss_kib().expect("intake's VmHWM");
    // The peak while paging, over where the process stood before.
    let growth = peak_after.saturating_sub(rss_before);
    let lines = vec![
        format!(
            "200 dead letters of {BIG} bytes written in {:.1} s",
            written.as_secs_f64()
        ),
        format!(
            "20 ListDeadLetters calls in {:.2} s: {} letters; intake VmRSS {rss_before} KiB \
             before, {rss_after} KiB after; VmHWM {peak_before} KiB before, {peak_after} KiB \
             after: peak growth {growth} KiB (limit {RSS_GROWTH_LIMIT_KIB} KiB)",
            paged.as_secs_f64(),
            seen.len()
        ),
    ];
    figures("dead_letter_pages", &lines);
    assert_eq!(
        seen,
        sequences[..seen.len()],
        "pages continue where they stopped"
    );
    assert!(
        growth < RSS_GROWTH_LIMIT_KIB,
        "intake grew {growth} KiB paging through dead letters: {lines:?}"
    );
    sys.intake.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_dead_letters_of_any_size_shows_each_exactly_once() {
    let sys = System::start(Options {
        nats_config: Some(NATS_CONFIG),
        ..Options::default()
    })
    .await;
    // Sizes that make pages stop for the byte budget at different places,
    // and for the count limit where letters are small.
    let pattern = [
        10,
        BIG,
        KIB,
        700 * KIB,
        1536 * KIB,
        3,
        40 * KIB,
        BIG,
        BIG,
        900 * KIB,
    ];
    let sizes: Vec<usize> = pattern.iter().copied().cycle().take(120).collect();
    let sequences = write_letters(&sys, &sizes).await;
    let mut admin = admin(&sys);

    for limit in [0, 1, 3, 1000] {
        let mut after = 0;
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        let mut pages = 0;
        loop {
            let p = page(&mut admin, after, limit).await;
            pages += 1;
            assert!(
                pages <= sizes.len() + 1,
                "paging does not end (limit {limit})"
            );
            if limit > 0 {
                assert!(p.letters.len() <= limit as usize, "limit {limit} holds");
            }
            let bytes: usize = p.letters.iter().map(prost::Message::encoded_len).sum();
            assert!(
                p.letters.len() <= 1 || bytes <= 4 * MIB,
                "a page of {} letters is {bytes} bytes (limit {limit})",
                p.letters.len()
            );
            for l in &p.letters {
                assert!(l.sequence > after, "only letters after the cursor");
                let i = sequences
                    .iter()
                    .position(|s| *s == l.sequence)
                    .unwrap_or_else(|| panic!("letter {} was never written", l.sequence));
                assert_eq!(l.payload, letter(i, sizes[i]), "letter {i}'s bytes");
                assert_eq!(l.original_subject, sys.inbound_subject("big"));
                *seen.entry(l.sequence).or_insert(0) += 1;
            }
            if p.next_after_sequence == 0 {
                break;
            }
            assert!(p.next_after_sequence > after, "the cursor moves on");
            after = p.next_after_sequence;
        }
        let once: Vec<u64> = seen.keys().copied().collect();
        assert_eq!(once, sequences, "every letter, in order (limit {limit})");
        assert!(
            seen.values().all(|n| *n == 1),
            "no letter twice (limit {limit})"
        );
        if limit == 0 {
            // Budget cuts: fewer letters than the default count per page.
            assert!(pages > 2, "{pages} pages of 120 letters up to 2 MiB");
        }
    }
    sys.intake.assert_no_panic();
}
