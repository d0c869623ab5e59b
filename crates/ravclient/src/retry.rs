//! The pauses of one request (or transfer) between its tries while ravsock cannot be reached.

use std::time::Duration;

/// How long a request keeps trying while ravsock cannot be reached (a crash and restart, a
/// dropped connection) before it fails; [`crate::Http::reconnect_for`] changes it.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);
/// The first pause before trying again; it doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest pause between two tries.
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// The tries of one request: pauses that double (each within 25% either way, so that many
/// clients do not come back at once) until the window has passed since the first failure.
#[derive(Debug)]
pub struct Retry {
    window: Duration,
    first_failure: Option<tokio::time::Instant>,
    pause: Duration,
    jitter: std::collections::hash_map::RandomState,
}

impl Retry {
    /// The tries of a request that may go on failing for `window` (zero: no second try).
    pub fn new(window: Duration) -> Retry {
        Retry { window, first_failure: None, pause: RETRY_FIRST, jitter: Default::default() }
    }

    /// Waits before the next try, after a failure because of `cause`; `false` once the window
    /// has passed.
    pub async fn pause(&mut self, cause: &str) -> bool {
        use std::hash::BuildHasher;
        if self.window.is_zero() {
            return false;
        }
        let now = tokio::time::Instant::now();
        let first = *self.first_failure.get_or_insert_with(|| {
            tracing::warn!(cause, "ravsock cannot be reached; trying again");
            now
        });
        let left = self.window.saturating_sub(now - first);
        if left.is_zero() {
            return false;
        }
        let spread = self.jitter.hash_one(now) as f64 / u64::MAX as f64;
        tokio::time::sleep(self.pause.mul_f64(0.75 + 0.5 * spread).min(left)).await;
        self.pause = (self.pause * 2).min(RETRY_MAX);
        true
    }

    /// The error of the last try, with how long the server could not be reached.
    pub fn describe(&self, message: String) -> String {
        match self.first_failure {
            Some(first) => format!("{message} (no answer for {:.1} s)", first.elapsed().as_secs_f64()),
            None => message,
        }
    }
}
