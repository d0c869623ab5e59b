//! What the dispatch task knows of the server's storage: the last time it failed to store
//! something, and the graphs it ended (failed) but could not record as ended.
//!
//! A disk gone read-only or full fails the write that would record a graph's failure too. The
//! failure is then kept here, and every reader of the graph's progress (the HTTP routes, the
//! long polls) sees it over the stored `computing`, so the requester learns why instead of
//! waiting; the task writes it once storage takes writes again. If the server stops first,
//! the graph is resumed at the next start like any unfinished graph, and nothing is lost.

use ravproto::GraphId;
use ravproto::messages::{GraphProgress, OpFailure};
use ravproto::status::GraphStatus;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Shared between the dispatch task, which records, and the request handlers, which read.
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// When (seconds since the epoch) and what.
    last_fault: Option<(u64, String)>,
    unstored_failures: BTreeMap<GraphId, OpFailure>,
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server failed to store something: `what` names it and the cause.
    pub fn storage_failed(&self, what: String) {
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.state().last_fault = Some((at, what));
    }

    /// The last storage failure: when (seconds since the epoch) and what.
    pub fn last_fault(&self) -> Option<(u64, String)> {
        self.state().last_fault.clone()
    }

    /// `graph` failed, and its failure could not be stored.
    pub(super) fn failed_unstored(&self, graph: GraphId, failure: OpFailure) {
        self.state().unstored_failures.insert(graph, failure);
    }

    /// The failures still to be stored (they stay here until [`Health::stored`]).
    pub(super) fn unstored(&self) -> Vec<(GraphId, OpFailure)> {
        self.state().unstored_failures.iter().map(|(graph, failure)| (*graph, failure.clone())).collect()
    }

    /// The failure of `graph` is stored now.
    pub(super) fn stored(&self, graph: GraphId) {
        self.state().unstored_failures.remove(&graph);
    }

    /// Whether failures wait to be stored.
    pub(super) fn has_unstored(&self) -> bool {
        !self.state().unstored_failures.is_empty()
    }

    /// Whether `graph` failed without the database knowing yet.
    pub fn failed(&self, graph: GraphId) -> bool {
        self.state().unstored_failures.contains_key(&graph)
    }

    /// `progress` as it is, read from the database: failed, with its reason, if the graph
    /// failed but the database could not be told.
    pub fn overlay(&self, progress: &mut GraphProgress) {
        if progress.status != GraphStatus::Computing {
            return;
        }
        if let Some(failure) = self.state().unstored_failures.get(&progress.graph_id) {
            progress.status = GraphStatus::Failed;
            progress.failure = Some(failure.clone());
        }
    }
}
