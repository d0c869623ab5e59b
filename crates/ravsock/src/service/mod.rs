//! The service layer: what ravsock does for its callers, behind the front doors
//! ([`crate::api`]) and never importing them. Each piece takes the database and typed state
//! (the scheduler's handle, the blob store) and returns typed results or an [`crate::Error`].
//!
//! - [`access`]: who may see which graph;
//! - [`graphs`]: creating, uploading, executing, cancelling and running graphs;
//! - [`results`]: following a graph and fetching its persisted values;
//! - [`federated`]: federated queries (rules, keys, submissions, the aggregate);
//! - [`topics`]: topics, their rounds, workers' answers and the ground truth;
//! - [`jobs`]: jobs, their slices, results and events;
//! - [`uploads`]: the id maps of graphs being uploaded;
//! - [`health`]: whether the server can take work (`GET /readyz`);
//! - [`ledger`]: balances, movements and credits (`--accounting`);
//! - [`tokens`]: creating, listing and revoking tokens (admin);
//! - [`dash`]: what the operators' dashboard shows, for whom; [`sessions`]: its logins.

pub mod access;
pub mod dash;
pub mod federated;
pub mod graphs;
mod health;
pub mod jobs;
pub mod ledger;
mod results;
pub mod sessions;
pub mod tokens;
pub mod topics;
mod uploads;

pub use dash::Dash;
pub use federated::Federated;
pub use graphs::Graphs;
pub use jobs::Jobs;
pub use topics::Topics;

/// Longest a long poll (`wait`) is held open.
pub const MAX_WAIT_MS: u64 = 30_000;

/// How long a long poll asked to wait `timeout_ms` is held: at most [`MAX_WAIT_MS`].
pub(crate) fn wait_limit(timeout_ms: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_millis(timeout_ms.unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS))
}
