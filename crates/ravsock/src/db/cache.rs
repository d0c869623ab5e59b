//! What this process already knows of the database: ravsock is the only writer of `graphs`
//! and `ops`, so it hands out their ids itself and keeps the graph rows it read, up to date
//! with every write it makes.

use super::StoredGraph;
use ravproto::GraphId;

/// The next free graph and op ids, handed out by this process so that storing a graph needs no
/// read of them inside its transaction. ravsock is the only writer of `graphs` and `ops` (as
/// [`GraphCache`] assumes); the ids are read from the database at first use, and the ids of a
/// transaction that failed are skipped.
#[derive(Debug)]
pub(super) struct NextIds {
    pub(super) graph: std::sync::atomic::AtomicI64,
    pub(super) op: std::sync::atomic::AtomicI64,
}

impl NextIds {
    /// A new graph's id.
    pub(super) fn graph(&self) -> GraphId {
        GraphId(self.graph.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u64)
    }

    /// The first of `count` consecutive new op ids.
    pub(super) fn ops(&self, count: usize) -> i64 {
        self.op.fetch_add(count as i64, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Graph rows as this process last read them: a requester's round trip (upload, wait,
/// fetch) checks the graph's owner and status at every step, and each read is a round trip
/// to the database.
///
/// ravsock is the only writer of `graphs`, and every write in [`super::Db`] forgets the row once it
/// has committed. A read fills the cache only if no write was made while it ran (the
/// generation), so a row read before a commit cannot outlive it.
#[derive(Debug, Default)]
pub(super) struct GraphCache {
    rows: std::sync::Mutex<std::collections::HashMap<GraphId, StoredGraph>>,
    generation: std::sync::atomic::AtomicU64,
}

impl GraphCache {
    /// Rows kept at most; the cache starts over when it is full.
    const LIMIT: usize = 10_000;

    fn rows(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<GraphId, StoredGraph>> {
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, graph: GraphId) -> Option<StoredGraph> {
        self.rows().get(&graph).cloned()
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps `row`, read from the database when the generation was `read_at`.
    pub(super) fn fill(&self, read_at: u64, row: &StoredGraph) {
        let mut rows = self.rows();
        if self.generation() == read_at {
            if rows.len() >= GraphCache::LIMIT {
                rows.clear();
            }
            rows.insert(row.id, row.clone());
        }
    }

    /// After a write of the row of `graph`: applies `change` to the cached row when the write
    /// committed, forgets the row when it did not (a failed commit may still have landed).
    pub(super) fn written(&self, graph: GraphId, committed: bool, change: impl FnOnce(&mut StoredGraph)) {
        let mut rows = self.rows();
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match (committed, rows.get_mut(&graph)) {
            (true, Some(row)) => change(row),
            _ => {
                rows.remove(&graph);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravproto::messages::GraphMeta;
    use ravproto::status::GraphStatus;

    fn row(id: u64, status: GraphStatus) -> StoredGraph {
        StoredGraph::new(GraphId(id), 1, GraphMeta::default(), status)
    }

    #[test]
    fn the_graph_cache_never_keeps_a_row_older_than_a_write() {
        let cache = GraphCache::default();
        let graph = GraphId(7);
        // A read that started before a write does not fill the cache...
        let read_at = cache.generation();
        cache.written(graph, true, |row| row.status = GraphStatus::Computing);
        cache.fill(read_at, &row(7, GraphStatus::Pending));
        assert_eq!(cache.get(graph), None);
        // ...one after it does, and later writes change the cached row.
        cache.fill(cache.generation(), &row(7, GraphStatus::Computing));
        cache.written(graph, true, |row| row.status = GraphStatus::Computed);
        assert_eq!(cache.get(graph).map(|r| r.status), Some(GraphStatus::Computed));
        // A write that may not have committed drops the row: the next read asks the database.
        cache.written(graph, false, |row| row.status = GraphStatus::Failed);
        assert_eq!(cache.get(graph), None);
    }
}
