//! Commands on existing complaints over gRPC: the lifecycle rules, idempotency
//! keys and the status codes callers see.

use plaint_domain::ComplaintId;
use plaint_proto::intake as pb;
use plaint_testkit::shared_nats_url;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{
    assert_invalid_field, count, follow_up, header, spawn_intake, submit_request, written_id,
};

#[tokio::test]
async fn commands_over_grpc_follow_the_lifecycle_and_answer_with_the_right_codes() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut client = intake.client.clone();
    let submitted = client
        .submit_complaint(submit_request("crm", "L-1"))
        .await
        .unwrap()
        .into_inner();
    let id = written_id(&submitted);

    // Acknowledging needs a routing decision, which no router has made.
    let refused = client
        .acknowledge(pb::AcknowledgeRequest {
            header: header(&id),
            by: "agent-7".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("acknowledge"), "{refused:?}");

    // A follow-up fits a received complaint.
    let followed = client
        .record_follow_up(follow_up(&id, "Still leaking."))
        .await
        .unwrap()
        .into_inner();
    assert!(!followed.duplicate);
    assert!(followed.sequence > submitted.sequence);

    // A retried request with the same idempotency key stores nothing new.
    let request_id = Uuid::new_v4().to_string();
    let keyed = || pb::RecordFollowUpRequest {
        header: Some(pb::CommandHeader {
            complaint_id: id.to_string(),
            request_id: request_id.clone(),
        }),
        text: "Photo attached.".to_owned(),
    };
    let once = client.record_follow_up(keyed()).await.unwrap().into_inner();
    let twice = client.record_follow_up(keyed()).await.unwrap().into_inner();
    assert!(!once.duplicate);
    assert!(twice.duplicate);
    assert_eq!(twice.sequence, once.sequence);
    assert_eq!(twice.event_id, once.event_id);

    let events = intake.events(&id).await;
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        [submitted.sequence, followed.sequence, once.sequence]
    );
    assert_eq!(count(&events, "customer_followed_up"), 2);

    // A complaint nobody submitted.
    let unknown = ComplaintId::from_uuid(Uuid::new_v4());
    let missing = client
        .record_follow_up(follow_up(&unknown, "Hello?"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert!(intake.events(&unknown).await.is_empty());

    // An id that is not one.
    let malformed = client
        .record_follow_up(pb::RecordFollowUpRequest {
            header: Some(pb::CommandHeader {
                complaint_id: "not-a-uuid".to_owned(),
                request_id: String::new(),
            }),
            text: "Hello?".to_owned(),
        })
        .await
        .unwrap_err();
    assert_invalid_field(&malformed, "header.complaint_id");

    assert_eq!(intake.events(&id).await.len(), 3);
    intake.finish().await;
}
