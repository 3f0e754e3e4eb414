//! The scope each gRPC method needs. A method missing here needs a valid
//! credential and nothing more, and the authorization matrix test fails for
//! it, so a new RPC cannot ship without a decision about who may call it.

use plaint_domain::access::Scope;

/// What a call must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: the health service.
    Open,
    /// Any valid credential (server reflection, unless configured open).
    AnyCredential,
    /// A credential carrying this scope.
    Scope(Scope),
}

/// Every method of plaint's own services and the scope it needs.
pub const METHOD_SCOPES: &[(&str, Scope)] = &[
    (
        "/plaint.intake.v1.Intake/SubmitComplaint",
        Scope::ComplaintsWrite,
    ),
    (
        "/plaint.intake.v1.Intake/RecordFollowUp",
        Scope::ComplaintsWrite,
    ),
    (
        "/plaint.intake.v1.Intake/ChangeVisibility",
        Scope::ComplaintsWrite,
    ),
    (
        "/plaint.intake.v1.Intake/Acknowledge",
        Scope::ComplaintsWrite,
    ),
    ("/plaint.intake.v1.Intake/Assign", Scope::ComplaintsWrite),
    (
        "/plaint.intake.v1.Intake/AuthorizeReturn",
        Scope::ComplaintsWrite,
    ),
    (
        "/plaint.intake.v1.Intake/ReceiveItem",
        Scope::ComplaintsWrite,
    ),
    (
        "/plaint.intake.v1.Intake/ProcessItem",
        Scope::ComplaintsWrite,
    ),
    ("/plaint.intake.v1.Intake/ShipBack", Scope::ComplaintsWrite),
    ("/plaint.intake.v1.Intake/Resolve", Scope::ComplaintsWrite),
    ("/plaint.intake.v1.Intake/Reopen", Scope::ComplaintsWrite),
    ("/plaint.intake.v1.Intake/Withdraw", Scope::ComplaintsWrite),
    (
        "/plaint.intake.v1.IntakeAdmin/ListDeadLetters",
        Scope::DeadLetters,
    ),
    (
        "/plaint.intake.v1.IntakeAdmin/RequeueDeadLetter",
        Scope::DeadLetters,
    ),
    (
        "/plaint.router.v1.Query/GetComplaint",
        Scope::ComplaintsRead,
    ),
    (
        "/plaint.router.v1.Query/ListComplaints",
        Scope::ComplaintsRead,
    ),
    (
        "/plaint.router.v1.Query/GetQueueStats",
        Scope::ComplaintsRead,
    ),
    (
        "/plaint.router.v1.Query/GetCeoBudget",
        Scope::ComplaintsRead,
    ),
    ("/plaint.router.v1.Query/GetGoodwill", Scope::ComplaintsRead),
    (
        "/plaint.router.v1.Query/GetCustomerHistory",
        Scope::ComplaintsRead,
    ),
    (
        "/plaint.router.v1.Query/WatchComplaints",
        Scope::ComplaintsRead,
    ),
    (
        "/plaint.router.v1.Query/SimulatePolicy",
        Scope::PolicySimulate,
    ),
    (
        "/plaint.router.v1.Admin/PublishPolicy",
        Scope::PolicyPublish,
    ),
    ("/plaint.router.v1.Admin/GetPolicy", Scope::PolicyRead),
    ("/plaint.router.v1.Admin/ListPolicies", Scope::PolicyRead),
    ("/plaint.router.v1.Admin/SetClimate", Scope::SettingsWrite),
    ("/plaint.router.v1.Admin/SetStance", Scope::SettingsWrite),
    (
        "/plaint.router.v1.Admin/RebuildProjections",
        Scope::ProjectionsRebuild,
    ),
    (
        "/plaint.router.v1.Admin/EraseCustomer",
        Scope::CustomersErase,
    ),
    (
        "/plaint.router.v1.Admin/ExportCustomerData",
        Scope::CustomersExport,
    ),
    ("/plaint.router.v1.Admin/RewrapDataKeys", Scope::KeysAdmin),
    ("/plaint.access.v1.Access/CreateKey", Scope::KeysAdmin),
    ("/plaint.access.v1.Access/ListKeys", Scope::KeysAdmin),
    ("/plaint.access.v1.Access/ExpireKey", Scope::KeysAdmin),
    ("/plaint.access.v1.Access/RevokeKey", Scope::KeysAdmin),
    ("/plaint.access.v1.Access/ListAudit", Scope::AuditRead),
];

const HEALTH: &str = "/grpc.health.v1.Health/";
const REFLECTION: &str = "/grpc.reflection.";

/// What a call to `path` (`/package.Service/Method`) must present;
/// `reflection_open` lets anyone list the services.
pub fn requirement(path: &str, reflection_open: bool) -> Requirement {
    if path.starts_with(HEALTH) || (reflection_open && path.starts_with(REFLECTION)) {
        return Requirement::Open;
    }
    METHOD_SCOPES
        .iter()
        .find(|(method, _)| *method == path)
        .map_or(Requirement::AnyCredential, |(_, scope)| {
            Requirement::Scope(*scope)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_open_reflection_needs_a_credential_unless_opened() {
        assert_eq!(
            requirement("/grpc.health.v1.Health/Check", false),
            Requirement::Open
        );
        let reflect = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert_eq!(requirement(reflect, false), Requirement::AnyCredential);
        assert_eq!(requirement(reflect, true), Requirement::Open);
        assert_eq!(
            requirement("/plaint.router.v1.Admin/SetClimate", true),
            Requirement::Scope(Scope::SettingsWrite)
        );
    }
}
