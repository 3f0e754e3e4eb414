//! The operator CLI against running services: each command does what it
//! says, checked through the services' own APIs.

use clap::Parser;
use plaint_ctl::{Cli, run};
use plaint_proto::events as epb;
use plaint_proto::router as rpb;

use crate::helpers::spawn_intake;
use crate::router::spawn_router;

async fn ctl(
    intake: std::net::SocketAddr,
    router: std::net::SocketAddr,
    args: &[&str],
) -> anyhow::Result<()> {
    let intake = format!("http://{intake}");
    let router = format!("http://{router}");
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("admin.key");
    std::fs::write(&key_file, plaint_testkit::admin_key())?;
    let key_file = key_file.display().to_string();
    let mut argv = vec![
        "plaint-ctl",
        "--json",
        "--intake",
        &intake,
        "--router",
        &router,
        "--api-key-file",
        &key_file,
    ];
    argv.extend_from_slice(args);
    run(Cli::try_parse_from(argv)?).await
}

#[tokio::test]
async fn operator_commands_act_on_the_running_services() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let (i, r) = (intake.addr, router.addr);

    ctl(
        i,
        r,
        &[
            "submit",
            "--ticket",
            "CTL-1",
            "--customer",
            "c-1",
            "--channel",
            "public_social",
            "--reach",
            "2000000",
        ],
    )
    .await
    .expect("submit");
    let id = crate::helpers::ticket_id("plaint-ctl", "CTL-1").to_string();
    let decided = crate::helpers::eventually("routed", async || {
        let c = router
            .query
            .get_complaint(rpb::GetComplaintRequest {
                complaint_id: id.clone(),
                consistency: None,
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        (!c.decisions.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(decided.complaint.expect("row").customer_id, "c-1");

    ctl(i, r, &["get", &id]).await.expect("get");
    ctl(i, r, &["explain", &id]).await.expect("explain");
    ctl(i, r, &["list", "--route", "frontline", "--limit", "5"])
        .await
        .expect("list");
    ctl(i, r, &["climate", "good"]).await.expect("climate");
    ctl(i, r, &["stance", "aligned"]).await.expect("stance");
    assert!(
        ctl(i, r, &["climate", "sunny"]).await.is_err(),
        "an unknown climate is refused"
    );

    let mut policy = plaint_domain::RoutingPolicy::default();
    policy.budget.per_window = 9;
    let file = std::env::temp_dir().join(format!("{}.json", plaint_testkit::unique_prefix()));
    std::fs::write(&file, policy.to_json()).expect("policy file");
    let path = file.to_string_lossy().into_owned();
    ctl(i, r, &["policy", "simulate", &path])
        .await
        .expect("simulate");
    ctl(i, r, &["policy", "publish", &path])
        .await
        .expect("publish");
    let current = router
        .admin
        .get_policy(rpb::GetPolicyRequest { version: 0 })
        .await
        .expect("policy")
        .into_inner();
    assert_eq!(current.version, 2);
    assert!(current.policy_json.contains("\"per_window\":9"));
    ctl(i, r, &["policy", "show"]).await.expect("show");
    let _ = std::fs::remove_file(&file);

    ctl(i, r, &["dead-letters", "list"])
        .await
        .expect("dead letters");
    ctl(i, r, &["rebuild"]).await.expect("rebuild");
    let after = router
        .query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: id.clone(),
            consistency: None,
            ..Default::default()
        })
        .await
        .expect("still there after the rebuild")
        .into_inner();
    assert_eq!(after.decisions[0].route, epb::Route::Frontline as i32);

    // A customer's data: exported to a private file, then erased.
    let dir = tempfile::tempdir().expect("a directory");
    let export = dir.path().join("c-1.json");
    let export_path = export.display().to_string();
    ctl(i, r, &["customers", "export", "c-1", "--out", &export_path])
        .await
        .expect("export");
    let exported = std::fs::read_to_string(&export).expect("the export file");
    assert!(exported.contains(&id), "the export lists the complaint");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the export is readable by its owner only");
    }
    ctl(i, r, &["customers", "erase", "c-1"])
        .await
        .expect("erase");
    assert!(
        ctl(i, r, &["customers", "erase", "nobody-ever"])
            .await
            .is_err(),
        "a customer never seen is refused"
    );
    ctl(i, r, &["customers", "rewrap"]).await.expect("rewrap");

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}
