//! Leases on NATS's key-value store (the projector's): one holder at a time,
//! taken back at once by a holder restarted under its name, free again when
//! the holder stops renewing, and at once when it releases.

use std::time::{Duration, Instant};

use plaint_bus::Renewal;

#[tokio::test]
async fn a_lease_has_one_holder_expires_unrenewed_and_is_handed_over_on_release() {
    let settings = plaint_bus::LogSettings::for_tests(
        &plaint_testkit::shared_nats_url(),
        &plaint_testkit::unique_prefix(),
    );
    let (_client, log) = plaint_bus::open(&settings, "plaint-tests")
        .await
        .expect("open the log");
    let leases = log
        .leases(Duration::from_secs(1))
        .await
        .expect("open the leases");

    let mut a = leases
        .try_take("work", "a")
        .await
        .expect("take")
        .expect("nobody holds it: a takes it");
    assert!(
        leases.try_take("work", "b").await.expect("take").is_none(),
        "a holds it"
    );
    assert_eq!(
        leases.holder("work").await.expect("read").as_deref(),
        Some("a")
    );
    assert_eq!(leases.renew(&mut a).await.expect("renew"), Renewal::Kept);

    // a restarted under its name takes its lease back without waiting; the
    // run before learns it lost the lease at its next renewal.
    let a_again = leases
        .try_take("work", "a")
        .await
        .expect("take")
        .expect("a takes its own lease back");
    assert_eq!(leases.renew(&mut a).await.expect("renew"), Renewal::Lost);

    // Nobody renews: it expires, and b takes it.
    let started = Instant::now();
    let b = loop {
        if let Some(b) = leases.try_take("work", "b").await.expect("take") {
            break b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the unrenewed lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(a_again);
    assert_eq!(
        leases.holder("work").await.expect("read").as_deref(),
        Some("b")
    );

    // Released: free at once.
    leases.release(b).await.expect("release");
    assert_eq!(leases.holder("work").await.expect("read"), None);
    assert!(
        leases.try_take("work", "c").await.expect("take").is_some(),
        "a released lease is taken at once"
    );
}
