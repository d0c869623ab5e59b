//! Status enums of graphs and ops (the original's §2.8 lifecycles).
//!
//! The original stored these as free strings and booleans as `"True"`/`"False"`; here each is
//! a closed enum serialized in `snake_case`.

use serde::{Deserialize, Serialize};

/// Lifecycle of one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Waiting for its inputs or for a provider.
    Pending,
    /// Sent to a provider as part of a subgraph.
    Computing,
    /// Result stored.
    Computed,
    /// Failed for good (after retries).
    Failed,
}

/// Lifecycle of one graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphStatus {
    /// Created; ops may still be uploaded.
    Pending,
    /// Executing on providers.
    Computing,
    /// Every op computed.
    Computed,
    /// A subgraph failed after its retries; the reason is recorded.
    Failed,
    /// Cancelled by its requester.
    Cancelled,
}

impl GraphStatus {
    /// Whether the graph has ended (computed, failed or cancelled): nothing of it runs again.
    pub fn has_ended(self) -> bool {
        matches!(self, GraphStatus::Computed | GraphStatus::Failed | GraphStatus::Cancelled)
    }
}
