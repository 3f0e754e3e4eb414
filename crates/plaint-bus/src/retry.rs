//! One retry policy for every long-running reader of the log: pauses that
//! grow from `pause` to `max_pause` while failures follow one another, and a
//! budget after which the reader gives up, so that its process can say it is
//! broken instead of retrying in silence for ever.

use std::time::{Duration, Instant};

/// How a reader retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after the first failure.
    pub pause: Duration,
    /// The longest pause.
    pub max_pause: Duration,
    /// How long failures may follow one another, without a success between
    /// them, before the reader gives up.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// 250 ms doubling to 5 s; gives up after 2 minutes of failures, longer
    /// than a NATS server or PostgreSQL restart takes.
    fn default() -> Self {
        Self {
            pause: Duration::from_millis(250),
            max_pause: Duration::from_secs(5),
            budget: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The policy with another budget.
    pub fn with_budget(self, budget: Duration) -> Self {
        Self { budget, ..self }
    }
}

/// The budget ran out.
#[derive(Debug, thiserror::Error)]
#[error(
    "failing for {failing_for:?} ({failures} failures in a row), over the retry budget of {budget:?}"
)]
pub struct BudgetSpent {
    /// Since the first failure of the run.
    pub failing_for: Duration,
    /// Failures in the run.
    pub failures: u32,
    /// The policy's budget it went over.
    pub budget: Duration,
}

/// The state of one reader's run of failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    failing_since: Option<Instant>,
    failures: u32,
}

impl Backoff {
    /// No failures yet.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failing_since: None,
            failures: 0,
        }
    }

    /// Progress was made: the next failure starts a new run.
    pub fn succeeded(&mut self) {
        self.failing_since = None;
        self.failures = 0;
    }

    /// A failure at `now`: the pause before the next attempt, or the budget
    /// spent.
    pub fn failed_at(&mut self, now: Instant) -> Result<Duration, BudgetSpent> {
        let since = *self.failing_since.get_or_insert(now);
        self.failures = self.failures.saturating_add(1);
        let failing_for = now.saturating_duration_since(since);
        if failing_for > self.policy.budget {
            return Err(BudgetSpent {
                failing_for,
                failures: self.failures,
                budget: self.policy.budget,
            });
        }
        let doublings = self.failures.saturating_sub(1).min(16);
        Ok(self
            .policy
            .pause
            .saturating_mul(1 << doublings)
            .min(self.policy.max_pause))
    }

    /// A failure now (see [`failed_at`](Self::failed_at)).
    pub fn failed(&mut self) -> Result<Duration, BudgetSpent> {
        self.failed_at(Instant::now())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        pause: Duration::from_millis(100),
        max_pause: Duration::from_millis(350),
        budget: Duration::from_secs(1),
    };

    #[test]
    fn pauses_double_up_to_the_longest() {
        let mut b = Backoff::new(POLICY);
        let t = Instant::now();
        let pauses: Vec<_> = (0..4).map(|_| b.failed_at(t).ok()).collect();
        let ms = |m| Some(Duration::from_millis(m));
        assert_eq!(pauses, vec![ms(100), ms(200), ms(350), ms(350)]);
    }

    #[test]
    fn the_budget_counts_from_the_first_failure_of_a_run() {
        let mut b = Backoff::new(POLICY);
        let t = Instant::now();
        assert!(b.failed_at(t).is_ok());
        assert!(b.failed_at(t + Duration::from_millis(999)).is_ok());
        let spent = b.failed_at(t + Duration::from_millis(1001)).unwrap_err();
        assert_eq!(spent.failures, 3);
        assert!(spent.to_string().contains("retry budget of 1s"), "{spent}");
    }

    #[test]
    fn a_success_starts_a_new_run() {
        let mut b = Backoff::new(POLICY);
        let t = Instant::now();
        assert!(b.failed_at(t).is_ok());
        b.succeeded();
        let later = t + Duration::from_secs(5);
        assert_eq!(b.failed_at(later).ok(), Some(Duration::from_millis(100)));
        assert!(b.failed_at(later + Duration::from_millis(900)).is_ok());
    }
}
