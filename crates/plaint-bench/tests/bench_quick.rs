//! The bench in its reduced form, as CI runs it: tiny counts and short
//! phases, against the debug binaries of both services, with its own
//! nats-server and a fresh database, over mutual TLS, in both fsync modes
//! (an fsync after every write, and NATS's default). Only the correctness
//! gate is asserted (every accepted complaint routed once and projected
//! once), never speed.
//!
//! It needs `target/debug/plaint-intake` and `target/debug/plaint-router`:
//! `scripts/test.sh` builds every binary before running the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use plaint_bench::{BenchArgs, FsyncArg, Mode, run_bench, run_timers};

/// The directory cargo builds the debug binaries into.
fn debug_bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        );
    target.join("debug")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bench_passes_the_correctness_gate() {
    let bin_dir = debug_bin_dir();
    for bin in ["plaint-intake", "plaint-router"] {
        assert!(
            bin_dir.join(bin).is_file(),
            "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
            bin_dir.join(bin).display()
        );
    }
    let args = BenchArgs {
        quick: true,
        json_out: None,
        bin_dir,
        database_url: env_or(
            "PLAINT_TEST_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        nats_server: PathBuf::from(env_or("PLAINT_NATS_SERVER", "nats-server")),
        // scripts/test.sh drops stale `plaint_test_*` databases a failed run leaves.
        db_prefix: "plaint_test_bench".to_owned(),
        // As deployed: mutual TLS (plaintext is what every other test runs).
        tls: true,
        // Both modes: the fsync after every write changes the timing the
        // services see (slower appends, longer batches), so the gate must
        // hold in each.
        fsync: Some(FsyncArg::Both),
        scale: None,
        timers: None,
    };
    let reports = run_bench(&args).await.expect("the quick bench runs");
    let modes: Vec<Mode> = reports.iter().map(|r| r.mode()).collect();
    assert_eq!(modes, [Mode::Durable, Mode::Fast]);
    for report in reports.iter() {
        let mode = report.mode().name();
        assert!(
            report.gate_passed(),
            "the correctness gate failed ({mode}):\n{}",
            report.table()
        );
        // The routing consumer filters the kinds it decides on: none of its
        // own decisions comes back to it, and a fault-free run redelivers
        // nothing.
        assert!(
            report.gate.decision_triggers > 0,
            "{mode}:\n{}",
            report.table()
        );
        assert_eq!(
            report.gate.routing_deliveries,
            report.gate.decision_triggers,
            "{mode}:\n{}",
            report.table()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timers_phase_sees_every_timer_fire_once_and_none_early() {
    let args = BenchArgs {
        quick: true,
        json_out: None,
        bin_dir: debug_bin_dir(),
        database_url: String::new(),
        nats_server: PathBuf::from(env_or("PLAINT_NATS_SERVER", "nats-server")),
        db_prefix: "plaint_test_bench".to_owned(),
        tls: false,
        fsync: None,
        scale: None,
        timers: Some(1_500),
    };
    let report = run_timers(&args, Mode::Durable, 1_500)
        .await
        .expect("the timers phase runs");
    // A quarter steady, a quarter in a burst, the rest pending.
    assert_eq!(report.due(), 750, "{}", report.table());
    assert!(report.passed(), "{}", report.table());
    assert_eq!(report.fired(), 750);
}
