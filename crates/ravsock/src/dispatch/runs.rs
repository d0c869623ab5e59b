//! What the dispatch task keeps of each executing graph: one run record per graph (its ops as
//! providers receive them, its training state, its waiter, when its progress last went out) and
//! its small committed values. A graph that ends is removed in one call, record and values.

use super::GraphDone;
use super::expect::Expected;
use super::verify::Replicas;
use crate::scheduler::AssignmentId;
use ravproto::provider::AssignedOp;
use ravproto::verify::Verify;
use ravproto::{GraphId, OpId, ProviderId, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::time::Instant;

/// One executing graph.
#[derive(Debug)]
pub(super) struct GraphRun {
    /// Its ops as providers receive them (param references name server ids).
    pub(super) payload: Arc<BTreeMap<OpId, AssignedOp>>,
    /// Where its training state stands, when it trains.
    pub(super) training: Option<TrainingTrack>,
    /// The request waiting for it to be computed (`POST /v1/graphs/run`).
    pub(super) waiter: Option<tokio::sync::oneshot::Sender<GraphDone>>,
    /// When its progress was last broadcast.
    pub(super) progress_sent: Option<Instant>,
    /// Whether its computed status went in with its last results (no second write).
    pub(super) status_stored: bool,
    /// The dtype and shape its assignments' outputs must have, until their answers come
    /// (`expect.rs`); dropped with the run.
    pub(super) expected: HashMap<AssignmentId, Expected>,
    /// When each of its assignments was handed out, until its results are stored (for
    /// `ravsock_subgraph_seconds`); dropped with the run.
    pub(super) handed_out: HashMap<AssignmentId, std::time::Instant>,
    /// The account that pays its subgraphs from escrow, when it was executed with accounting
    /// on (`db::ledger`).
    pub(super) payer: Option<i64>,
    /// The stake each provider's account puts in (0: none; only graphs that pay ask one).
    pub(super) stake: u64,
    /// Accounts known to have staked (after a restart, staking again moves nothing).
    pub(super) staked: BTreeSet<i64>,
    /// How its results are verified.
    pub(super) verify: Verify,
    /// Answers held for comparison, by the first op of their subgraph (`verify.rs`); dropped
    /// with the run (after a restart the subgraph is handed out afresh).
    pub(super) replicas: HashMap<OpId, Replicas>,
}

/// Where a graph's training state stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TrainingTrack {
    /// Version of the stored checkpoint (training assignments completed).
    pub(super) version: u64,
    /// The provider known to hold exactly that version in memory: it gets the next training
    /// assignment without the checkpoint; anyone else gets the checkpoint.
    pub(super) synced: Option<ProviderId>,
}

/// Every executing graph's run record and values.
#[derive(Debug, Default)]
pub(super) struct Runs {
    runs: BTreeMap<GraphId, GraphRun>,
    values: ValueCache,
    /// Waiters of graphs whose run has not started yet (the submission is being loaded).
    waiting: HashMap<GraphId, tokio::sync::oneshot::Sender<GraphDone>>,
}

impl Runs {
    /// Starts (or, for a graph already running, reloads) the run of `graph`.
    pub(super) fn start(
        &mut self,
        graph: GraphId,
        payload: Arc<BTreeMap<OpId, AssignedOp>>,
        training: Option<TrainingTrack>,
        payer: Option<i64>,
    ) {
        let waiter = self.waiting.remove(&graph);
        match self.runs.get_mut(&graph) {
            Some(run) => {
                run.payload = payload;
                run.training = training;
                run.payer = payer;
                run.waiter = waiter.or(run.waiter.take());
            }
            None => {
                let run = GraphRun {
                    payload,
                    training,
                    waiter,
                    progress_sent: None,
                    status_stored: false,
                    expected: HashMap::new(),
                    handed_out: HashMap::new(),
                    payer,
                    stake: 0,
                    staked: BTreeSet::new(),
                    verify: Verify::None,
                    replicas: HashMap::new(),
                };
                self.runs.insert(graph, run);
            }
        }
    }

    /// Keeps `waiter` to be told when `graph`, about to start, is computed.
    pub(super) fn wait_for(&mut self, graph: GraphId, waiter: tokio::sync::oneshot::Sender<GraphDone>) {
        self.waiting.insert(graph, waiter);
    }

    pub(super) fn get(&self, graph: GraphId) -> Option<&GraphRun> {
        self.runs.get(&graph)
    }

    pub(super) fn get_mut(&mut self, graph: GraphId) -> Option<&mut GraphRun> {
        self.runs.get_mut(&graph)
    }

    /// Keeps a committed value of `graph` to hand out without a database read, if there is
    /// room.
    pub(super) fn keep(&mut self, graph: GraphId, op: OpId, value: Value) {
        self.values.keep(graph, op, value);
    }

    /// A kept value.
    pub(super) fn value(&self, graph: GraphId, op: OpId) -> Option<&Value> {
        self.values.get(graph, op)
    }

    /// Ends `graph`: removes its run record (if it started) and its values, which are returned.
    pub(super) fn end(&mut self, graph: GraphId) -> (Option<GraphRun>, HashMap<OpId, Value>) {
        // A graph that never started drops its waiter here, unanswered.
        self.waiting.remove(&graph);
        (self.runs.remove(&graph), self.values.take(graph))
    }
}

/// Small values of executing graphs that are already committed (inline constants stored with
/// the graph, results of its subgraphs), so that handing out a subgraph takes its inputs from
/// memory instead of a database read. A value not kept here is read from the database.
#[derive(Debug, Default)]
struct ValueCache {
    graphs: BTreeMap<GraphId, HashMap<OpId, Value>>,
    /// Encoded bytes of every value kept.
    bytes: u64,
}

impl ValueCache {
    /// Encoded bytes kept at most, over all graphs.
    const LIMIT: u64 = 64 << 20;
    /// Longest value kept: longer ones are few and big, read from the database or a file.
    const LONGEST: u64 = 64 << 10;

    fn keep(&mut self, graph: GraphId, op: OpId, value: Value) {
        let len = value.encoded_len();
        if len <= ValueCache::LONGEST && self.bytes + len <= ValueCache::LIMIT {
            if let Some(old) = self.graphs.entry(graph).or_default().insert(op, value) {
                self.bytes -= old.encoded_len();
            }
            self.bytes += len;
        }
    }

    fn get(&self, graph: GraphId, op: OpId) -> Option<&Value> {
        self.graphs.get(&graph)?.get(&op)
    }

    fn take(&mut self, graph: GraphId) -> HashMap<OpId, Value> {
        let values = self.graphs.remove(&graph).unwrap_or_default();
        self.bytes -= values.values().map(Value::encoded_len).sum::<u64>();
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravproto::TensorData;

    fn scalar(x: f64) -> Value {
        Value::Tensor(TensorData::from_f64(vec![], &[x]).unwrap())
    }

    #[test]
    fn ending_a_graph_removes_its_record_waiter_and_values_at_once() {
        let mut runs = Runs::default();
        let (graph, other) = (GraphId(1), GraphId(2));
        let (waiter, answer) = tokio::sync::oneshot::channel();
        runs.wait_for(graph, waiter);
        runs.keep(graph, OpId(10), scalar(1.0));
        runs.keep(other, OpId(20), scalar(2.0));
        runs.start(graph, Arc::default(), Some(TrainingTrack::default()), None);
        assert!(runs.get(graph).is_some_and(|run| run.waiter.is_some()), "the waiter joins the run");
        let (run, values) = runs.end(graph);
        let run = run.expect("the run ended");
        assert!(run.training.is_some());
        assert_eq!(values.len(), 1);
        assert!(runs.get(graph).is_none() && runs.value(graph, OpId(10)).is_none());
        assert_eq!(runs.value(other, OpId(20)), Some(&scalar(2.0)), "other graphs keep theirs");
        drop(run);
        assert!(answer.blocking_recv().is_err(), "an ended run's waiter is dropped unanswered");
        assert_eq!(runs.values.bytes, scalar(2.0).encoded_len(), "the byte count follows");
    }
}
