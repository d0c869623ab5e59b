//! Graphs being uploaded: each one's local → server id map, so a chunk does not read every
//! earlier op back; its lock also serialises concurrent uploads to one graph and keeps an
//! execute from starting a half-stored chunk.

use ravproto::{GraphId, OpId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The upload state of one graph: its id map once known (`None`: read it from the database).
pub(crate) type UploadSlot = Arc<tokio::sync::Mutex<Option<BTreeMap<u64, OpId>>>>;

/// Every graph being uploaded.
#[derive(Clone, Debug, Default)]
pub(crate) struct Uploads {
    slots: Arc<std::sync::Mutex<HashMap<GraphId, UploadSlot>>>,
}

impl Uploads {
    /// The slot of `graph`, created empty (unknown map) if it has none.
    pub(crate) fn slot(&self, graph: GraphId) -> UploadSlot {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(graph).or_default().clone()
    }

    /// Forgets a graph that is no longer uploaded (executed or cancelled).
    pub(crate) fn forget(&self, graph: GraphId) {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&graph);
    }
}
