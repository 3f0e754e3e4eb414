//! Supervised background work: the consumers and the projector run until the
//! process stops, so any of them ending before that is a failure the process
//! must not hide.
//!
//! Policy (documented in the README): a task retries what it can retry within
//! its own budget; when it ends anyway (an error past that budget, a panic, or
//! returning early), the process reports NOT_SERVING, logs the cause, counts it
//! in `plaint_task_failures_total`, and exits non-zero after a short grace
//! period, so that its orchestrator restarts it.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A task's name and what it came to.
type Ended = (&'static str, anyhow::Result<()>);

/// The background tasks of one process, and the token that stops them.
#[derive(Debug, Default)]
pub struct Tasks {
    set: JoinSet<Ended>,
    stop: CancellationToken,
}

/// Why a task ended before it was asked to stop.
#[derive(Debug, thiserror::Error)]
#[error("background task `{task}` ended: {cause:#}")]
pub struct TaskFailed {
    /// The task's name.
    pub task: &'static str,
    /// What ended it.
    #[source]
    pub cause: anyhow::Error,
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the process stops: every task watches it, and finishes
    /// the work in hand when it fires.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `work` as the task `name`.
    pub fn spawn(
        &mut self,
        name: &'static str,
        work: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.set.spawn(async move {
            // Caught here, so that a panic is reported with the task's name.
            let ended = AssertUnwindSafe(work).catch_unwind().await;
            (
                name,
                ended.unwrap_or_else(|_| Err(anyhow::anyhow!("it panicked"))),
            )
        });
    }

    /// Resolves when the first task ends, which is a failure since nothing has
    /// asked them to stop; pending for ever when there are no tasks.
    pub async fn first_failure(&mut self) -> TaskFailed {
        match self.set.join_next().await {
            Some(ended) => failure(ended),
            None => std::future::pending().await,
        }
    }

    /// Asks every task to stop and waits for all of them; the failures of
    /// those that ended with an error.
    pub async fn stop_and_join(mut self) -> Vec<TaskFailed> {
        self.stop.cancel();
        let mut failed = Vec::new();
        while let Some(ended) = self.set.join_next().await {
            match ended {
                Ok((_, Ok(()))) => {}
                other => failed.push(failure(other)),
            }
        }
        failed
    }
}

fn failure(ended: Result<Ended, tokio::task::JoinError>) -> TaskFailed {
    let (task, cause) = match ended {
        Ok((task, Ok(()))) => (
            task,
            anyhow::anyhow!("it returned before the process stopped"),
        ),
        Ok((task, Err(e))) => (task, e),
        // Panics are caught inside the task; only an abort lands here.
        Err(e) => ("unknown", anyhow::anyhow!("it was aborted: {e}")),
    };
    metrics::counter!("plaint_task_failures_total", "task" => task).increment(1);
    TaskFailed { task, cause }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_task_that_errs_is_the_first_failure_with_its_name_and_cause() {
        let mut tasks = Tasks::new();
        let stop = tasks.stop_token();
        tasks.spawn("steady", async move {
            stop.cancelled().await;
            Ok(())
        });
        tasks.spawn("doomed", async {
            Err(anyhow::anyhow!("database unreachable"))
        });
        let failed = tasks.first_failure().await;
        assert_eq!(failed.task, "doomed");
        assert!(
            failed.to_string().contains("database unreachable"),
            "{failed}"
        );
        assert!(tasks.stop_and_join().await.is_empty());
    }

    #[tokio::test]
    async fn returning_early_and_panicking_are_failures_too() {
        let mut tasks = Tasks::new();
        tasks.spawn("quitter", async { Ok(()) });
        let failed = tasks.first_failure().await;
        assert_eq!(failed.task, "quitter");
        assert!(failed.to_string().contains("returned before"), "{failed}");

        let mut tasks = Tasks::new();
        tasks.spawn("panicky", async { panic!("boom") });
        let failed = tasks.first_failure().await;
        assert_eq!(failed.task, "panicky");
        assert!(failed.to_string().contains("panicked"), "{failed}");
    }

    #[tokio::test]
    async fn no_task_means_no_failure() {
        let mut tasks = Tasks::new();
        let waited = tokio::time::timeout(Duration::from_millis(50), tasks.first_failure()).await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn stopping_reports_the_tasks_that_failed_while_draining() {
        let mut tasks = Tasks::new();
        let stop = tasks.stop_token();
        tasks.spawn("drains badly", async move {
            stop.cancelled().await;
            Err(anyhow::anyhow!("flush failed"))
        });
        let failed = tasks.stop_and_join().await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].task, "drains badly");
    }
}
