//! A supervised loop: one entry's attempts, each in its own task so a panic is caught, with
//! exponential backoff and jitter between failed ones, every failure logged with its cause
//! and counted on the entry's row. An entry that keeps failing is marked failed and tried at
//! the longest pause, never in a hot loop; only a fatal outcome (a refused token or protocol
//! version, a certificate not trusted) ends it, and with it the node.

use super::config::RetryPolicy;
use super::status::{Board, EntryState, unix_millis};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The entry has done what it was asked (or was stopped): no more attempts.
    Done(String),
    /// Start the next attempt at once (the entry moved on to its next choice).
    Next(String),
    /// Waiting for something that is not a failure (a graph not executing yet): tried again
    /// after a pause that grows like a failure's, without counting as one.
    Waiting(String),
    /// A failure: tried again after the backoff.
    Failed(String),
    /// A failure no retry can mend: the node stops.
    Fatal(String),
}

/// Runs `attempt` for entry `index` until it is done, a fatal outcome, or `shutdown` turns
/// true; returns the fatal reason, if any.
pub async fn supervise<F, Fut>(
    index: usize,
    board: Board,
    policy: RetryPolicy,
    mut shutdown: watch::Receiver<bool>,
    mut attempt: F,
) -> Option<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let name = board.entry(index).map(|e| e.name).unwrap_or_default();
    let mut waits_in_a_row = 0u32;
    loop {
        if *shutdown.borrow() {
            board.update(index, |e| e.state = EntryState::Done);
            return None;
        }
        board.update(index, |e| {
            e.attempts += 1;
            e.next_attempt_at = None;
            if e.state != EntryState::Failed {
                e.state = EntryState::Connecting;
            }
        });
        let outcome = match tokio::spawn(attempt()).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let why = panic_text(error);
                board.update(index, |e| e.panics += 1);
                Outcome::Failed(format!("the attempt panicked: {why}"))
            }
        };
        let pause = match outcome {
            Outcome::Done(why) => {
                tracing::info!(entry = %name, %why, "entry done");
                board.update(index, |e| {
                    e.state = EntryState::Done;
                    e.detail = why;
                });
                return None;
            }
            Outcome::Fatal(why) => {
                tracing::error!(entry = %name, %why, "entry failed for good; stopping the node");
                board.update(index, |e| {
                    e.state = EntryState::Failed;
                    e.detail = why.clone();
                });
                return Some(format!("{name}: {why}"));
            }
            Outcome::Next(why) => {
                tracing::info!(entry = %name, %why, "entry moves on");
                board.update(index, |e| e.detail = why);
                waits_in_a_row = 0;
                continue;
            }
            Outcome::Waiting(why) => {
                waits_in_a_row += 1;
                let pause = backoff(&policy, waits_in_a_row);
                tracing::info!(entry = %name, %why, pause = ?pause, "entry waits");
                board.update(index, |e| {
                    e.state = EntryState::Waiting;
                    e.detail = why;
                });
                pause
            }
            Outcome::Failed(why) => {
                waits_in_a_row = 0;
                let mut in_a_row = 0;
                board.update(index, |e| {
                    e.failures += 1;
                    e.failures_in_a_row += 1;
                    in_a_row = e.failures_in_a_row;
                    e.state = if in_a_row >= policy.failed_after { EntryState::Failed } else { EntryState::Retrying };
                    e.detail = why.clone();
                });
                let pause = backoff(&policy, in_a_row);
                if in_a_row >= policy.failed_after {
                    tracing::error!(entry = %name, cause = %why, in_a_row, pause = ?pause, "entry keeps failing");
                } else {
                    tracing::warn!(entry = %name, cause = %why, in_a_row, pause = ?pause, "entry failed; trying again");
                }
                pause
            }
        };
        board.update(index, |e| e.next_attempt_at = Some(unix_millis() + pause.as_millis() as u64));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The pause after the `n`th failure in a row (from 1): `first_delay` doubled each time up to
/// `max_delay`, changed at random by up to `jitter` of itself.
pub fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let (first, max) = (policy.first_delay.0, policy.max_delay.0);
    let doubled = first.saturating_mul(1u32 << n.saturating_sub(1).min(20)).min(max);
    // Jitter needs no cryptographic randomness; std's per-process hash keys give enough to
    // spread workers that restarted together.
    let unit = {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(n);
        hasher.finish() as f64 / u64::MAX as f64
    };
    let factor = 1.0 + policy.jitter * (2.0 * unit - 1.0);
    doubled.mul_f64(factor.max(0.0))
}

/// What a panicking attempt said.
fn panic_text(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::config::Span;
    use crate::node::status::EntryStatus;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            first_delay: Span(Duration::from_secs(1)),
            max_delay: Span(Duration::from_secs(8)),
            jitter: 0.0,
            failed_after: 3,
        }
    }

    #[test]
    fn the_pause_doubles_up_to_the_longest_and_jitter_stays_within_its_fraction() {
        let pauses: Vec<u64> = (1..=6).map(|n| backoff(&policy(), n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 8, 8]);
        let jittery = RetryPolicy { jitter: 0.5, ..policy() };
        for n in 1..50 {
            let pause = backoff(&jittery, n).as_secs_f64();
            let base = backoff(&policy(), n).as_secs_f64();
            assert!(pause >= base * 0.5 && pause <= base * 1.5, "{pause} vs {base}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn panics_and_failures_are_counted_retried_with_backoff_and_marked_failed() {
        let board = Board::new(std::path::Path::new("w.toml"), "http://x", vec![EntryStatus::new("e", "participate")]);
        let (_stop, shutdown) = watch::channel(false);
        let tries = Arc::new(AtomicU32::new(0));
        let started = tokio::time::Instant::now();
        let counter = tries.clone();
        let fatal = supervise(0, board.clone(), policy(), shutdown, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match n {
                    1 => panic!("injected"),
                    2 | 3 => Outcome::Failed(format!("failure {n}")),
                    4 => Outcome::Waiting("not yet".into()),
                    _ => Outcome::Done("finished".into()),
                }
            }
        })
        .await;
        assert_eq!(fatal, None);
        assert_eq!(tries.load(Ordering::SeqCst), 5);
        // Pauses: 1 s, 2 s, 4 s after three failures in a row, then 1 s of waiting.
        assert_eq!(started.elapsed().as_secs(), 8);
        let row = board.entry(0).expect("row");
        assert_eq!((row.state, row.failures, row.panics, row.attempts), (EntryState::Done, 3, 1, 5));
        assert_eq!(row.detail, "finished");
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_that_keeps_failing_is_marked_failed_and_a_fatal_outcome_ends_it() {
        let board = Board::new(std::path::Path::new("w.toml"), "http://x", vec![EntryStatus::new("e", "federated")]);
        let (_stop, shutdown) = watch::channel(false);
        let tries = Arc::new(AtomicU32::new(0));
        let (counter, seen) = (tries.clone(), board.clone());
        let fatal = supervise(0, board.clone(), policy(), shutdown, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let state = seen.entry(0).map(|e| e.state);
            async move {
                if n == 4 {
                    // Three failures in a row were reported as failed before this try.
                    assert_eq!(state, Some(EntryState::Failed));
                    Outcome::Fatal("token refused".into())
                } else {
                    Outcome::Failed("down".into())
                }
            }
        })
        .await;
        assert_eq!(fatal.as_deref(), Some("e: token refused"));
        assert_eq!(board.entry(0).map(|e| e.state), Some(EntryState::Failed));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_pause_at_once() {
        let board = Board::new(std::path::Path::new("w.toml"), "http://x", vec![EntryStatus::new("e", "federated")]);
        let (stop, shutdown) = watch::channel(false);
        let long = RetryPolicy {
            first_delay: Span(Duration::from_secs(3600)),
            max_delay: Span(Duration::from_secs(3600)),
            ..policy()
        };
        let supervisor =
            tokio::spawn(supervise(0, board.clone(), long, shutdown, || async { Outcome::Failed("down".into()) }));
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        stop.send(true).expect("the supervisor listens");
        assert_eq!(supervisor.await.expect("no panic"), None);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(board.entry(0).map(|e| e.state), Some(EntryState::Done));
    }
}
