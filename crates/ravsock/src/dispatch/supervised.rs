//! A background task that a panic does not end: the server's own long-lived tasks (the
//! retention sweeps, the token watcher) run under [`spawn`], which logs a panic with its
//! message, counts it (`ravsock_failures_total{reason="task_panic"}`), and starts the task
//! again after a pause that doubles with each panic in a row (up to a minute). Aborting the
//! handle stops the task and its current run. The scheduler task has its own supervisor
//! (`dispatch::supervise`), since a restart there must also resume graphs.

use crate::metrics::Metrics;
use std::future::Future;
use std::time::Duration;

/// Runs `make()`'s future until it returns, starting it again whenever it panics.
pub fn spawn<F, Fut>(name: &'static str, metrics: Metrics, make: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut panics_in_a_row = 0u32;
        loop {
            let run = AbortOnDrop(tokio::spawn(make()));
            let started = tokio::time::Instant::now();
            let ended = run.finish().await;
            let panic = match ended {
                Ok(()) => return,
                Err(error) if error.is_panic() => error.into_panic(),
                Err(_) => return,
            };
            let why = panic_text(panic.as_ref());
            metrics.failed("task_panic");
            panics_in_a_row =
                if started.elapsed() > Duration::from_secs(60) { 1 } else { panics_in_a_row.saturating_add(1) };
            let pause =
                (Duration::from_millis(100) * 2u32.pow(panics_in_a_row.min(10) - 1)).min(Duration::from_secs(60));
            tracing::error!(task = name, cause = %why, panics_in_a_row, ?pause, "a server task panicked; starting it again");
            tokio::time::sleep(pause).await;
        }
    })
}

/// What a panic said.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A run of the task, aborted if the supervisor itself is aborted (dropped) meanwhile.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    async fn finish(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_started_again_counted_and_an_abort_stops_it() {
        let metrics = Metrics::new();
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let task = spawn("test", metrics.clone(), move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n <= 2 {
                    panic!("run {n} fails");
                }
            }
        });
        task.await.expect("the supervisor ends when a run returns");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(metrics.render().contains("ravsock_failures_total{reason=\"task_panic\"} 2"), "{}", metrics.render());

        // A task that runs for good stops with its supervisor's handle.
        let (alive, mut dropped) = tokio::sync::mpsc::channel::<()>(1);
        let forever = spawn("forever", metrics, move || {
            let alive = alive.clone();
            async move {
                let _alive = alive;
                std::future::pending::<()>().await;
            }
        });
        tokio::task::yield_now().await;
        forever.abort();
        assert!(dropped.recv().await.is_none(), "the run was dropped with its supervisor");
    }
}
