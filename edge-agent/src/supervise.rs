//! The agent's supervisor: every background job of the agent (pushing the outbox, discovery
//! passes, serving nodes, syncing, prefetching, verifying the cache) runs as a named task in one
//! `JoinSet`. A task that fails, panics or returns while the agent runs is logged and started
//! again after a backoff, so one bad pass never takes the others down; cancelling the token
//! asks every task to finish, and what is still running after the grace period is aborted.

use std::future::Future;
use std::time::{Duration, Instant};

use skyport_model::Backoff;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::agent::AgentError;

/// Restart delays: 1 s doubling to a minute.
const RESTART: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// A task that ran this long before failing starts its backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How long tasks get to finish after cancellation before they are aborted.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Aborts the task it holds when dropped, so aborting the supervising task stops the
/// supervised one too.
struct AbortOnDrop(JoinHandle<Result<(), AgentError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct Supervisor {
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    restart: Backoff,
}

impl Supervisor {
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            tasks: JoinSet::new(),
            cancel,
            restart: RESTART,
        }
    }

    #[cfg(test)]
    pub fn with_restart(mut self, restart: Backoff) -> Self {
        self.restart = restart;
        self
    }

    /// Runs `make(cancel)` as the task `name` until the agent is cancelled, starting it again
    /// (with backoff) whenever it ends on its own. A task should return soon after its token is
    /// cancelled.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, make: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), AgentError>> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let restart = self.restart;
        self.tasks.spawn(async move {
            let mut failures = 0u32;
            loop {
                let started = Instant::now();
                // A task of its own, so a panic ends this run and not the supervisor.
                let mut run = AbortOnDrop(tokio::spawn(make(cancel.clone())));
                let ended = (&mut run.0).await;
                if cancel.is_cancelled() {
                    if let Ok(Err(e)) = ended {
                        tracing::warn!(task = name, error = %e, "task failed while stopping");
                    }
                    return;
                }
                match ended {
                    Ok(Ok(())) => tracing::warn!(task = name, "task ended on its own"),
                    Ok(Err(e)) => tracing::error!(task = name, error = %e, "task failed"),
                    Err(e) if e.is_panic() => tracing::error!(task = name, "task panicked"),
                    Err(e) => tracing::error!(task = name, error = %e, "task stopped"),
                }
                if started.elapsed() >= HEALTHY_RUN {
                    failures = 0;
                }
                failures = failures.saturating_add(1);
                let wait = restart.delay(failures);
                tracing::info!(
                    task = name,
                    restart_in_s = wait.as_secs_f64(),
                    "restarting task"
                );
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// Waits for the cancellation, then for every task to finish (at most `grace`; the rest
    /// are aborted, with a warning naming how many).
    pub async fn wait(mut self, grace: Duration) {
        self.cancel.cancelled().await;
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                tasks = self.tasks.len(),
                grace_s = grace.as_secs(),
                "tasks still running after the grace period; aborted"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn quick(cancel: &CancellationToken) -> Supervisor {
        Supervisor::new(cancel.clone()).with_restart(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(20),
        ))
    }

    #[tokio::test]
    async fn failed_and_panicked_tasks_are_restarted_until_cancelled() {
        let cancel = CancellationToken::new();
        let mut sup = quick(&cancel);
        let (fails, panics, steady) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let f = fails.clone();
        sup.spawn("fails", move |_| {
            let f = f.clone();
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                Err(AgentError::Stopped("always fails".into()))
            }
        });
        let p = panics.clone();
        sup.spawn("panics", move |_| {
            let p = p.clone();
            async move {
                if p.fetch_add(1, Ordering::SeqCst) < 100 {
                    panic!("a bug in a task");
                }
                Ok(())
            }
        });
        let s = steady.clone();
        sup.spawn("steady", move |cancel| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                cancel.cancelled().await;
                Ok(())
            }
        });
        let waiting = tokio::spawn(sup.wait(Duration::from_secs(5)));
        let deadline = Instant::now() + Duration::from_secs(20);
        while fails.load(Ordering::SeqCst) < 3 || panics.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "tasks were not restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The healthy task ran once and was never disturbed by the others' failures.
        assert_eq!(steady.load(Ordering::SeqCst), 1);
        cancel.cancel();
        waiting.await.unwrap();
        let after = fails.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            fails.load(Ordering::SeqCst),
            after,
            "restarted after shutdown"
        );
    }

    #[tokio::test]
    async fn a_task_ignoring_cancellation_is_aborted_after_the_grace_period() {
        let cancel = CancellationToken::new();
        let mut sup = quick(&cancel);
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let d = dropped.clone();
        sup.spawn("stubborn", move |_| {
            let g = Guard(d.clone());
            async move {
                let _g = g;
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        tokio::time::timeout(
            Duration::from_secs(10),
            sup.wait(Duration::from_millis(100)),
        )
        .await
        .unwrap();
        // The task itself, not only its supervisor, was stopped.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}
