//! A decision in one sentence: what a helpdesk puts on the ticket.

use super::{Decision, FulfilmentKind, Priority, Route};

impl Decision {
    /// The route, priority and item handling, then why: the score against
    /// the CEO threshold and, when the CEO does not engage, the gates that
    /// held it. The full explanation stays with the complaint.
    pub fn in_brief(&self) -> String {
        let mut brief = format!("{} {}", self.route.name(), priority_name(self.priority));
        if let Some(f) = self.fulfilment {
            brief.push_str(", ");
            brief.push_str(fulfilment_phrase(f));
        }
        brief.push_str(": ");
        match (self.route, self.ceo_threshold) {
            (Route::Ceo, Some(t)) => brief.push_str(&format!(
                "the CEO engages personally (score {} reached {t}, every gate passed)",
                self.score
            )),
            (Route::Ceo, None) => brief.push_str("the CEO engages personally"),
            (_, None) => brief.push_str("the climate in force closes the CEO route"),
            (_, Some(t)) => {
                let held: Vec<&str> = self
                    .gates
                    .iter()
                    .filter(|g| !g.passed)
                    .map(|g| g.note.as_str())
                    .collect();
                if held.is_empty() {
                    brief.push_str(&format!(
                        "score {} against a CEO threshold of {t}",
                        self.score
                    ));
                } else {
                    brief.push_str(&format!("not the CEO: {}", held.join("; ")));
                }
            }
        }
        brief.push_str(&format!(" (policy v{})", self.policy_version));
        brief
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::P1 => "P1",
        Priority::P2 => "P2",
        Priority::P3 => "P3",
        Priority::P4 => "P4",
    }
}

fn fulfilment_phrase(f: FulfilmentKind) -> &'static str {
    match f {
        FulfilmentKind::Repair => "repair the item",
        FulfilmentKind::Replace => "replace the item",
        FulfilmentKind::Refund => "take the item back and refund",
    }
}
