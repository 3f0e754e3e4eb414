//! Every name on the server, derived from one configurable prefix so that tests
//! and several deployments share a server without touching each other.

use plaint_domain::ComplaintId;
use plaint_domain::Timestamp;
use plaint_domain::event::{ComplaintEvent, Envelope, EventPayload};

/// Stream, subject and consumer names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    stream: String,
}

/// Characters allowed in the prefix and stream name: subject- and stream-safe.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Names {
    /// Names under `prefix` (subjects) and `stream` (the event log's stream name).
    /// Both must be non-empty and made of ASCII letters, digits, '-' and '_'.
    pub fn new(prefix: &str, stream: &str) -> Result<Self, String> {
        for (what, v) in [("subject prefix", prefix), ("stream name", stream)] {
            if v.is_empty() || v.len() > 64 || !v.chars().all(is_name_char) {
                return Err(format!(
                    "{what} {v:?} must be 1..=64 ASCII letters, digits, '-' or '_'"
                ));
            }
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
        })
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The event log's stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream that captures helpdesk messages.
    pub fn inbound_stream(&self) -> String {
        format!("{}_INBOUND", self.stream)
    }

    /// The stream of dead letters.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DEAD", self.stream)
    }

    /// The stream of what plaint tells helpdesk integrations.
    pub fn outbound_stream(&self) -> String {
        format!("{}_OUTBOUND", self.stream)
    }

    /// The stream of timers (see [`crate::timers`]).
    pub fn timer_stream(&self) -> String {
        format!("{}_TIMERS", self.stream)
    }

    /// The key-value bucket of customers' data keys.
    pub fn data_key_bucket(&self) -> String {
        format!("{}_KEYS", self.stream)
    }

    /// The key-value bucket of leases (work only one replica does).
    pub fn lease_bucket(&self) -> String {
        format!("{}_LEASES", self.stream)
    }

    /// Every subject of the event log. Each complaint event has a subject
    /// of its own kind under its complaint, `<prefix>.complaint.<id>.<kind>`,
    /// so a consumer filters the kinds it acts on.
    pub fn log_subjects(&self) -> Vec<String> {
        vec![
            self.all_complaints(),
            format!("{}.company.*", self.prefix),
            format!("{}.budget.*", self.prefix),
            format!("{}.ceo.*", self.prefix),
        ]
    }

    /// Whether `subject` is one of the event log's: it matches one of
    /// [`Self::log_subjects`].
    pub fn in_log(&self, subject: &str) -> bool {
        self.log_subjects()
            .iter()
            .any(|filter| subject_matches(filter, subject))
    }

    /// The subject the first layout of the log gave a whole complaint: a
    /// stream that still lists it was written in that layout.
    pub fn first_layout_complaints(&self) -> String {
        format!("{}.complaint.*", self.prefix)
    }

    /// Where one event of a complaint is appended.
    pub fn complaint_event(&self, id: &ComplaintId, event: &ComplaintEvent) -> String {
        self.complaint_of_kind(id, event.subject_kind())
    }

    /// The subject of one kind of a complaint's events (see
    /// [`ComplaintEvent::subject_kind`]).
    pub fn complaint_of_kind(&self, id: &ComplaintId, kind: &str) -> String {
        format!("{}.complaint.{}.{kind}", self.prefix, id.subject_token())
    }

    /// Where a complaint event's envelope is appended; `None` for an event
    /// about no complaint.
    pub fn subject_of(&self, envelope: &Envelope) -> Option<String> {
        match (&envelope.payload, &envelope.complaint_id) {
            (EventPayload::Complaint(event), Some(id)) => Some(self.complaint_event(id, event)),
            _ => None,
        }
    }

    /// Every event of one complaint: a filter for reads, and the subject
    /// appends check the complaint's last sequence on.
    pub fn complaint(&self, id: &ComplaintId) -> String {
        format!("{}.complaint.{}.>", self.prefix, id.subject_token())
    }

    /// Every event of every complaint.
    pub fn all_complaints(&self) -> String {
        format!("{}.complaint.*.*", self.prefix)
    }

    /// Every complaint's events of one kind (see
    /// [`ComplaintEvent::subject_kind`]).
    pub fn complaints_of_kind(&self, kind: &str) -> String {
        format!("{}.complaint.*.{kind}", self.prefix)
    }

    /// The aggregate an event's subject belongs to, as the filter its
    /// conditional appends are checked against: a complaint event's
    /// complaint; `None` for subjects that are their own aggregate.
    pub fn aggregate_of(&self, subject: &str) -> Option<String> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".complaint.")?;
        let (id, kind) = rest.split_once('.')?;
        if id.is_empty() || kind.is_empty() || kind.contains('.') {
            return None;
        }
        Some(format!("{}.complaint.{id}.>", self.prefix))
    }

    /// Erasures of customers' personal data.
    pub fn customers(&self) -> String {
        format!("{}.company.customers", self.prefix)
    }

    /// Company-level facts: policy, climate, stance.
    pub fn company(&self) -> String {
        format!("{}.company.settings", self.prefix)
    }

    /// API keys: created, expired, revoked.
    pub fn keys(&self) -> String {
        format!("{}.company.keys", self.prefix)
    }

    /// The audit trail of administrative changes.
    pub fn audit(&self) -> String {
        format!("{}.company.audit", self.prefix)
    }

    /// The CEO budget of the window starting at `window_start`.
    pub fn budget(&self, window_start: Timestamp) -> String {
        format!("{}.budget.{}", self.prefix, window_start.as_millis())
    }

    /// One customer's CEO engagements, keyed by a hash of the customer id
    /// (customer ids may hold characters a subject cannot).
    pub fn ceo_customer(&self, customer_id: &str) -> String {
        let key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, customer_id.as_bytes());
        format!("{}.ceo.{}", self.prefix, key.simple())
    }

    /// Every customer's CEO engagement subject.
    pub fn all_ceo_customers(&self) -> String {
        format!("{}.ceo.*", self.prefix)
    }

    /// Where helpdesk integrations publish, each on its own subject.
    pub fn inbound_subjects(&self) -> String {
        format!("{}.helpdesk.inbound.>", self.prefix)
    }

    /// The subject the integration `name` publishes to.
    pub fn inbound(&self, name: &str) -> String {
        format!("{}.helpdesk.inbound.{name}", self.prefix)
    }

    /// The integration an inbound subject belongs to: what follows
    /// `<prefix>.helpdesk.inbound.`. NATS permissions give each integration
    /// its subject alone, so this is who published, whatever the payload says.
    pub fn integration_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".helpdesk.inbound.")
            .filter(|name| !name.is_empty())
    }

    /// Every subject of every integration's outbound messages.
    pub fn outbound_subjects(&self) -> String {
        format!("{}.helpdesk.outbound.>", self.prefix)
    }

    /// Every outbound subject of integration `name`: what it reads.
    pub fn outbound_of(&self, name: &str) -> String {
        format!("{}.helpdesk.outbound.{name}.>", self.prefix)
    }

    /// The outbound subject of integration `name` for messages of `kind`
    /// (`receipt`, `update`).
    pub fn outbound(&self, name: &str, kind: &str) -> String {
        format!("{}.helpdesk.outbound.{name}.{kind}", self.prefix)
    }

    /// Where a dead letter from `original_subject` is stored.
    pub fn dead_letter(&self) -> String {
        format!("{}.helpdesk.dead", self.prefix)
    }

    /// Every subject of the timers' stream.
    pub fn timer_subjects(&self) -> String {
        format!("{}.timer.>", self.prefix)
    }

    /// Where timer `key` is scheduled.
    pub fn timer_schedule(&self, key: &str) -> String {
        format!("{}.timer.sched.{key}", self.prefix)
    }

    /// Every scheduled timer.
    pub fn timer_schedules(&self) -> String {
        format!("{}.timer.sched.>", self.prefix)
    }

    /// Where timer `key` fires.
    pub fn timer_fire(&self, key: &str) -> String {
        format!("{}.timer.fire.{key}", self.prefix)
    }

    /// Every fired timer.
    pub fn timer_fired(&self) -> String {
        format!("{}.timer.fire.>", self.prefix)
    }

    /// A durable consumer name under this deployment.
    pub fn consumer(&self, role: &str) -> String {
        format!("{}_{}", self.stream, role)
    }
}

/// Whether `subject` matches `filter` as NATS matches them: `*` stands for
/// one token, a last `>` for one or more; an empty token matches nothing.
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for wanted in filter.split('.') {
        match (wanted, tokens.next()) {
            (_, None | Some("")) => return false,
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (w, Some(t)) if w == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_characters_that_break_subjects() {
        assert!(Names::new("a.b", "S").is_err());
        assert!(Names::new("a", "S S").is_err());
        assert!(Names::new("", "S").is_err());
        assert!(Names::new("t1", "COMPLAINTS").is_ok());
    }

    #[test]
    fn the_integration_is_what_its_inbound_subject_names() {
        let names = Names::new("p", "S").unwrap();
        let acme = names.inbound("acme");
        assert_eq!(acme, "p.helpdesk.inbound.acme");
        assert_eq!(names.integration_of(&acme), Some("acme"));
        assert_eq!(names.integration_of("p.helpdesk.inbound.a.b"), Some("a.b"));
        assert_eq!(names.integration_of("p.helpdesk.inbound."), None);
        assert_eq!(names.integration_of("q.helpdesk.inbound.acme"), None);
        assert_eq!(names.integration_of("p.helpdesk.dead"), None);
    }

    #[test]
    fn the_log_holds_complaint_company_budget_and_ceo_subjects_only() {
        let names = Names::new("p", "S").unwrap();
        for subject in [
            "p.complaint.abc.routed",
            "p.company.policy",
            "p.budget.w1",
            "p.ceo.c1",
        ] {
            assert!(names.in_log(subject), "{subject}");
        }
        for subject in [
            names.dead_letter().as_str(),
            "p.helpdesk.inbound.acme",
            "p.timer.sched.x",
            "p.complaint.abc",
            "p.complaint.abc.routed.x",
            "p.company.",
            "q.complaint.abc.routed",
            "pcomplaint.abc.routed",
        ] {
            assert!(!names.in_log(subject), "{subject}");
        }
    }

    #[test]
    fn a_complaint_event_is_checked_against_its_whole_complaint() {
        let names = Names::new("p", "S").unwrap();
        let id = ComplaintId::from_uuid(uuid::Uuid::from_u128(7));
        let subject = names.complaint_event(&id, &ComplaintEvent::ItemReceived);
        assert_eq!(
            subject,
            format!("p.complaint.{}.item_received", id.subject_token())
        );
        assert_eq!(names.aggregate_of(&subject), Some(names.complaint(&id)));
        assert_eq!(names.aggregate_of("p.company.settings"), None);
        assert_eq!(names.aggregate_of("p.complaint.abc"), None);
        assert_eq!(names.aggregate_of("q.complaint.abc.routed"), None);
    }
}
