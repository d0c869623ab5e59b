//! The scheduler task: owns the [`Scheduler`], feeds it commands and deadlines, and performs
//! its actions against the database.
//!
//! The task sleeps until the next command or the earliest assignment deadline (no polling loop).
//! Times are taken from tokio's clock, so tests can pause it. On start it resumes every graph
//! that was executing when the server stopped: computed ops are loaded as computed and only the
//! rest is scheduled again.
//!
//! Graphs that train keep their state (weights, optimizer state) on a provider between
//! subgraphs; each training result brings a checkpoint, stored with the results, and a training
//! subgraph sent to any provider other than the one known to hold the latest state carries
//! that checkpoint, so training survives the loss of that provider.

use crate::bulk::{Bulk, provider_user};
use crate::db::{Db, StoredOp, StoredValue};
use crate::error::{Error, Result};
use crate::scheduler::{Action, AssignmentId, Event, Millis, OpInfo, Scheduler, SchedulerConfig};
use crate::socket::{graph_room, provider_room};
use bytes::Bytes;
use ravproto::checkpoint::Checkpoint;
use ravproto::messages::{FileValue, GraphProgress, OpFailure, Requirements};
use ravproto::provider::{
    AssignHeader, AssignedOp, EVENT_ASSIGN, EVENT_REJECTED, EVENT_WITHDRAW, Frame, InlineBudget, NAMESPACE, Rejected,
    TrainingState, Withdraw, stuff,
};
use ravproto::requester::{self, OpFailedNotice};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, OpId, ProviderId, Value};
use socketioxide::SocketIo;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A request to the scheduler task.
#[derive(Debug)]
pub enum Command {
    /// Start (or resume) a graph whose ops are stored.
    Execute(GraphId),
    /// Start a graph whose ops were just stored, all of them in one upload: they come along
    /// instead of being read back.
    ExecuteStored {
        /// The graph.
        graph: GraphId,
        /// Its requirements.
        requirements: Requirements,
        /// Every op of the graph, as stored.
        ops: Vec<StoredOp>,
        /// The inline values stored with them (the scheduler keeps the small ones to hand out).
        values: Vec<(OpId, Value)>,
        /// Told when the graph is computed, with its small values; dropped unanswered when it
        /// fails, is cancelled or cannot start (the database then says how it ended).
        done: Option<tokio::sync::oneshot::Sender<GraphDone>>,
    },
    /// Cancel a graph.
    Cancel(GraphId),
    /// A provider returned values for an assignment (not yet stored).
    Results {
        /// Who sent them.
        provider: ProviderId,
        /// The assignment answered.
        assignment: AssignmentId,
        /// Output values.
        values: Vec<(OpId, Value)>,
        /// Output values uploaded to the provider's ravftp home.
        files: Vec<FileValue>,
        /// The training state after a training assignment.
        checkpoint: Option<Checkpoint>,
    },
    /// Any other scheduler event (providers joining, results, failures).
    Event(Event),
    /// Answered once every earlier command has been handled and its actions performed
    /// (lets callers and tests wait for the scheduler without sleeping).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A change of a graph, pushed to waiting requesters.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphEvent {
    /// The graph that changed.
    pub graph: GraphId,
    /// Its progress after the change (long polls answer with it without a database read).
    pub progress: GraphProgress,
}

/// A computed graph, for the request that submitted it (`POST /v1/graphs/run`).
#[derive(Debug)]
pub struct GraphDone {
    /// Its progress: computed.
    pub progress: GraphProgress,
    /// Its values the scheduler kept in memory (small inline constants and results): persisted
    /// results are answered from here instead of read back.
    pub values: HashMap<OpId, Value>,
}

/// Sends commands to the scheduler task.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
    events: tokio::sync::broadcast::Sender<GraphEvent>,
}

impl SchedulerHandle {
    /// Queues a command.
    pub async fn send(&self, command: Command) -> Result<()> {
        self.tx.send(command).await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }

    /// Subscribes to graph changes (progress and completion).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<GraphEvent> {
        self.events.subscribe()
    }

    /// Waits until every command sent before this call has been handled.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Flush(done)).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }
}

/// Ops of a stored graph as the scheduler sees them.
pub fn scheduler_ops(ops: &[StoredOp]) -> Vec<OpInfo> {
    let by_local: BTreeMap<u64, OpId> = ops.iter().map(|op| (op.local_id, op.id)).collect();
    ops.iter()
        .map(|op| {
            let mut inputs = op.inputs.clone();
            // Params name earlier ops by the client's ids; they are dependencies too.
            inputs.extend(op.operation.param_refs().iter().filter_map(|local| by_local.get(&local.0)));
            OpInfo {
                id: op.id,
                kind: op.operation.kind(),
                inputs,
                computed: op.status == OpStatus::Computed,
                persisted: op.persist.is_some(),
            }
        })
        .collect()
}

/// The receiving end of the scheduler's command channel.
pub struct SchedulerInbox(mpsc::Receiver<Command>);

/// A command channel: handles for HTTP and socket handlers, and the inbox for the task.
pub fn scheduler_channel() -> (SchedulerHandle, SchedulerInbox) {
    let (tx, rx) = mpsc::channel(1024);
    let (events, _) = tokio::sync::broadcast::channel(1024);
    (SchedulerHandle { tx, events }, SchedulerInbox(rx))
}

/// Starts the scheduler task on `inbox`, resuming unfinished graphs; assignments go out
/// through `io` (without it they wait for their deadline, which tests of the HTTP API use).
pub async fn start_scheduler(
    handle: &SchedulerHandle,
    inbox: SchedulerInbox,
    db: Db,
    bulk: Bulk,
    config: SchedulerConfig,
    io: Option<SocketIo>,
) -> Result<()> {
    for graph in db.unfinished_graphs().await? {
        // Federated graphs have no subgraphs: their submissions are stored, nothing to resume.
        if db.graph(graph).await?.is_some_and(|g| g.meta.approach == ravproto::messages::Approach::Federated) {
            continue;
        }
        tracing::info!(%graph, "resuming graph after restart");
        handle.send(Command::Execute(graph)).await?;
    }
    let task = SchedulerTask {
        db,
        bulk,
        scheduler: Scheduler::new(config),
        io,
        payloads: BTreeMap::new(),
        events: handle.events.clone(),
        progress_sent: BTreeMap::new(),
        status_stored: BTreeSet::new(),
        followups: Vec::new(),
        training: BTreeMap::new(),
        values: ValueCache::default(),
        waiters: HashMap::new(),
    };
    tokio::spawn(task.run(inbox.0));
    Ok(())
}

/// A scheduler task without a provider link (for the HTTP API alone).
pub async fn spawn_scheduler(db: Db, bulk: Bulk, config: SchedulerConfig) -> Result<SchedulerHandle> {
    let (handle, inbox) = scheduler_channel();
    start_scheduler(&handle, inbox, db, bulk, config, None).await?;
    Ok(handle)
}

struct SchedulerTask {
    db: Db,
    bulk: Bulk,
    scheduler: Scheduler,
    io: Option<SocketIo>,
    /// The ops of each executing graph as providers receive them.
    payloads: BTreeMap<GraphId, Arc<BTreeMap<OpId, AssignedOp>>>,
    events: tokio::sync::broadcast::Sender<GraphEvent>,
    /// When each graph's progress was last broadcast.
    progress_sent: BTreeMap<GraphId, Instant>,
    /// Graphs whose computed status went in with their last results (no second write).
    status_stored: BTreeSet<GraphId>,
    /// Events that performing an action produced (an assignment the server could not send).
    followups: Vec<Event>,
    /// The training state of each executing graph that trains.
    training: BTreeMap<GraphId, TrainingTrack>,
    /// Small committed values of executing graphs, handed out without a database read.
    values: ValueCache,
    /// Requests waiting for a graph to be computed.
    waiters: HashMap<GraphId, tokio::sync::oneshot::Sender<GraphDone>>,
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

    /// Keeps `value` of op `op` of `graph` if there is room.
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

    /// Drops the values of a graph that ended.
    fn forget(&mut self, graph: GraphId) {
        self.take(graph);
    }

    /// Takes the values of a graph that ended.
    fn take(&mut self, graph: GraphId) -> HashMap<OpId, Value> {
        let values = self.graphs.remove(&graph).unwrap_or_default();
        self.bytes -= values.values().map(Value::encoded_len).sum::<u64>();
        values
    }
}

/// Where a graph's training state stands.
#[derive(Clone, Copy, Debug, Default)]
struct TrainingTrack {
    /// Version of the stored checkpoint (training assignments completed).
    version: u64,
    /// The provider known to hold exactly that version in memory: it gets the next training
    /// assignment without the checkpoint; anyone else gets the checkpoint.
    synced: Option<ProviderId>,
}

/// Progress of one graph is broadcast at most this often: every broadcast wakes the waiting
/// requesters, whose next request counts the graph's ops, and a graph of 100,000 small ops
/// completes a subgraph every millisecond or so. Completion is always sent at once.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

impl SchedulerTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let start = Instant::now();
        loop {
            let wake = self.scheduler.next_deadline().map(|at| start + std::time::Duration::from_millis(at));
            let command = match wake {
                Some(at) => tokio::select! {
                    command = rx.recv() => command,
                    () = tokio::time::sleep_until(at) => Some(Command::Event(Event::Tick)),
                },
                None => rx.recv().await,
            };
            let Some(command) = command else { return };
            let mut cancelled = None;
            let event = match command {
                Command::Execute(graph) => match self.submission(graph).await {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::error!(%graph, cause = %error, "cannot load graph for execution");
                        continue;
                    }
                },
                Command::ExecuteStored { graph, requirements, ops, values, done } => {
                    for (op, value) in values {
                        self.values.keep(graph, op, value);
                    }
                    if let Some(done) = done {
                        self.waiters.insert(graph, done);
                    }
                    match self.submission_of(graph, requirements, &ops).await {
                        Ok(event) => event,
                        Err(error) => {
                            tracing::error!(%graph, cause = %error, "cannot start graph");
                            self.waiters.remove(&graph);
                            self.values.forget(graph);
                            continue;
                        }
                    }
                }
                Command::Cancel(graph) => {
                    cancelled = Some(graph);
                    Event::GraphCancelled { graph }
                }
                Command::Results { provider, assignment, values, files, checkpoint } => {
                    match self.results(provider, assignment, values, files, checkpoint).await {
                        Some(event) => event,
                        None => continue,
                    }
                }
                Command::Event(event) => event,
                Command::Flush(done) => {
                    let _ = done.send(());
                    continue;
                }
            };
            let now = start.elapsed().as_millis() as Millis;
            let mut events = vec![event];
            while let Some(event) = events.pop() {
                for action in self.scheduler.handle(now, event) {
                    if let Err(error) = self.perform(action).await {
                        tracing::error!(cause = %error, "scheduler action failed");
                    }
                }
                events.append(&mut self.followups);
            }
            if let Some(graph) = cancelled {
                self.waiters.remove(&graph);
                self.payloads.remove(&graph);
                self.values.forget(graph);
                self.training.remove(&graph);
                self.progress_sent.remove(&graph);
                self.announce_end(graph).await;
            }
        }
    }

    async fn submission(&mut self, graph: GraphId) -> Result<Event> {
        let stored = self.db.graph(graph).await?.ok_or_else(|| Error::NotFound(format!("no graph {graph}")))?;
        let ops = self.db.ops(graph).await?;
        self.submission_of(graph, stored.meta.requirements, &ops).await
    }

    /// The submission of `graph` with these ops (every op of the graph, in id order).
    async fn submission_of(
        &mut self,
        graph: GraphId,
        mut requirements: Requirements,
        ops: &[StoredOp],
    ) -> Result<Event> {
        let by_local: BTreeMap<u64, OpId> = ops.iter().map(|op| (op.local_id, op.id)).collect();
        let payload = ops
            .iter()
            .map(|op| {
                // Providers know ops by server id: params naming the requester's ids (only
                // layer and model ops have them) are rewritten; validation checked that every
                // reference exists.
                let refers =
                    matches!(op.operation.kind().group(), ravproto::Group::DeepLearning | ravproto::Group::WholeModel);
                let operation = if refers {
                    op.operation
                        .with_param_refs(|local| by_local.get(&local.0).copied())
                        .unwrap_or_else(|| op.operation.clone())
                } else {
                    op.operation.clone()
                };
                (op.id, AssignedOp { id: op.id, operation, inputs: op.inputs.clone() })
            })
            .collect();
        self.payloads.insert(graph, Arc::new(payload));
        if ops.iter().any(|op| op.operation.kind().trains()) {
            // After a restart nobody is known to hold the state: the checkpoint goes along.
            let version = self.db.checkpoint_version(graph).await?;
            self.training.insert(graph, TrainingTrack { version, synced: None });
        }
        // Only providers built with the `onnx` feature run whole models. The upload sets this in
        // the stored meta too; graphs stored by an older ravsock get it here.
        requirements.onnx_required |= ops.iter().any(|op| op.operation.kind() == ravproto::OpKind::ForwardPass);
        Ok(Event::GraphSubmitted { graph, ops: scheduler_ops(ops), requirements })
    }

    /// Checks and stores a provider's results; the event to apply, or `None` to ignore them.
    async fn results(
        &mut self,
        provider: ProviderId,
        assignment: AssignmentId,
        values: Vec<(OpId, Value)>,
        files: Vec<FileValue>,
        checkpoint: Option<Checkpoint>,
    ) -> Option<Event> {
        let Some((owner, graph, ops, outputs)) = self.scheduler.assignment(assignment) else {
            tracing::debug!(%provider, assignment = assignment.0, "late or unknown result ignored");
            return None;
        };
        if owner != provider {
            tracing::warn!(%provider, assignment = assignment.0, "result for another provider's assignment ignored");
            return None;
        }
        let returned: BTreeSet<OpId> = values.iter().map(|(id, _)| *id).chain(files.iter().map(|f| f.op)).collect();
        let expected: BTreeSet<OpId> = outputs.iter().copied().collect();
        let fail = |reason: String| {
            let failure = OpFailure { op_id: ops[0], operator: "subgraph".into(), reason };
            Some(Event::SubgraphFailed { provider, assignment, failure, retryable: true })
        };
        if returned != expected || returned.len() != values.len() + files.len() {
            return fail(format!(
                "results list {} values, {} were expected",
                values.len() + files.len(),
                expected.len()
            ));
        }
        // A training assignment must leave the state one step further, checkpointed.
        let trains = self
            .payloads
            .get(&graph)
            .is_some_and(|payload| ops.iter().any(|op| payload.get(op).is_some_and(|o| o.operation.kind().trains())));
        let track = self.training.get(&graph).copied().filter(|_| trains);
        if let Some(track) = track {
            match &checkpoint {
                Some(c) if c.version == track.version + 1 => {}
                Some(c) => {
                    return fail(format!("checkpoint version {} returned, {} expected", c.version, track.version + 1));
                }
                None => return fail("a training subgraph came back without its checkpoint".into()),
            }
        }
        let user = provider_user(provider);
        let mut stored_files = Vec::with_capacity(files.len());
        for file in &files {
            let checked = self.bulk.check(&user, &file.name).and_then(|check| {
                if check.len == file.len {
                    self.bulk.adopt(&user, &file.name, file.op).map(|()| check.len)
                } else {
                    Err(Error::BadRequest(format!(
                        "file {} holds {} bytes, {} announced",
                        file.name, check.len, file.len
                    )))
                }
            });
            match checked {
                Ok(len) => stored_files.push((file.op, len)),
                Err(error) => {
                    tracing::warn!(%provider, file = %file.name, cause = %error, "unusable result file");
                    return fail(format!("result file of {}: {error}", file.op));
                }
            }
        }
        let stored_checkpoint = track.and(checkpoint.as_ref()).map(|c| (graph, c));
        // The graph's last subgraph: its status goes in the same transaction.
        let finishes = self.scheduler.completes(assignment).then_some(graph);
        if let Err(error) = self.db.store_results(&values, &stored_files, &ops, stored_checkpoint, finishes).await {
            tracing::error!(%graph, cause = %error, "cannot store results; the subgraph will be recomputed");
            let failure = OpFailure {
                op_id: ops[0],
                operator: "subgraph".into(),
                reason: "server could not store results".into(),
            };
            return Some(Event::SubgraphFailed { provider, assignment, failure, retryable: true });
        }
        if let Some(graph) = finishes {
            self.status_stored.insert(graph);
        }
        for (op, value) in values {
            self.values.keep(graph, op, value);
        }
        if track.is_some()
            && let Some(track) = self.training.get_mut(&graph)
        {
            *track = TrainingTrack { version: track.version + 1, synced: Some(provider) };
        }
        Some(Event::SubgraphCompleted { provider, assignment })
    }

    async fn emit<T: serde::Serialize>(&self, provider: ProviderId, event: &'static str, data: &T) {
        let Some(io) = &self.io else { return };
        let Some(namespace) = io.of(NAMESPACE) else { return };
        if let Err(error) = namespace.to(provider_room(provider)).emit(event, data).await {
            tracing::warn!(%provider, event, cause = %error, "cannot reach provider");
        }
    }

    async fn to_requesters<T: serde::Serialize>(&self, graph: GraphId, event: &'static str, data: &T) {
        let Some(namespace) = self.io.as_ref().and_then(|io| io.of(requester::NAMESPACE)) else { return };
        if let Err(error) = namespace.to(graph_room(graph)).emit(event, data).await {
            tracing::debug!(%graph, event, cause = %error, "cannot reach a subscribed requester");
        }
    }

    /// Tells long polls and subscribed requesters that a graph ended (status already stored).
    async fn announce_end(&self, graph: GraphId) {
        let progress = match self.db.graph(graph).await {
            Ok(Some(stored)) => crate::http::graph_progress(&self.db, &stored).await,
            Ok(None) => return,
            Err(error) => Err(error),
        };
        match progress {
            Ok(progress) => self.announce(graph, progress).await,
            Err(error) => tracing::error!(%graph, cause = %error, "cannot read a finished graph"),
        }
    }

    /// Tells long polls and subscribed requesters that a graph ended with `progress`.
    async fn announce(&self, graph: GraphId, progress: GraphProgress) {
        let _ = self.events.send(GraphEvent { graph, progress: progress.clone() });
        self.to_requesters(graph, requester::EVENT_GRAPH_DONE, &progress).await;
    }

    async fn perform(&mut self, action: Action) -> Result<()> {
        match action {
            Action::GraphComputed { graph } => {
                tracing::info!(%graph, "graph computed");
                let total = self.payloads.remove(&graph).map(|ops| ops.len() as u64);
                let values = self.values.take(graph);
                // Dropped unanswered if the status cannot be stored.
                let waiter = self.waiters.remove(&graph);
                self.training.remove(&graph);
                self.progress_sent.remove(&graph);
                if !self.status_stored.remove(&graph) {
                    self.db.set_graph_status(graph, GraphStatus::Computed, None).await?;
                }
                match total {
                    // Every op of the graph is computed: the counts need no query, and the
                    // requester waiting on this graph hears of it sooner.
                    Some(total) => {
                        // As the stored counts read: no entry at all for a graph without ops.
                        let ops = BTreeMap::from_iter((total > 0).then_some((OpStatus::Computed, total)));
                        let progress = crate::http::progress_of(graph, GraphStatus::Computed, ops, None);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(GraphDone { progress: progress.clone(), values });
                        }
                        self.announce(graph, progress).await;
                    }
                    None => self.announce_end(graph).await,
                }
                Ok(())
            }
            Action::GraphFailed { graph, failure } => {
                tracing::warn!(%graph, op = %failure.op_id, reason = %failure.reason, "graph failed");
                // Dropped on return, once the failure is stored: the request reads it back.
                let _waiter = self.waiters.remove(&graph);
                self.payloads.remove(&graph);
                self.values.forget(graph);
                self.training.remove(&graph);
                self.progress_sent.remove(&graph);
                let notice = OpFailedNotice { graph_id: graph, failure, will_retry: false };
                self.to_requesters(graph, requester::EVENT_OP_FAILED, &notice).await;
                let failure = serde_json::to_string(&notice.failure).map_err(|e| Error::Internal(e.to_string()))?;
                self.db.set_graph_status(graph, GraphStatus::Failed, Some(&failure)).await?;
                self.db.set_pending_ops(graph, OpStatus::Failed).await?;
                self.announce_end(graph).await;
                Ok(())
            }
            Action::Progress { graph, computed, total } => {
                tracing::debug!(%graph, computed, total, "progress");
                let now = Instant::now();
                let due = self.progress_sent.get(&graph).is_none_or(|last| now - *last >= PROGRESS_INTERVAL);
                if due {
                    self.progress_sent.insert(graph, now);
                    // Counted by the scheduler: a COUNT over the graph's ops ten times a second
                    // would stall this task on big graphs.
                    let ops = BTreeMap::from([(OpStatus::Computed, computed), (OpStatus::Pending, total - computed)]);
                    let progress = crate::http::progress_of(graph, GraphStatus::Computing, ops, None);
                    self.to_requesters(graph, requester::EVENT_PROGRESS, &progress).await;
                    let _ = self.events.send(GraphEvent { graph, progress });
                }
                Ok(())
            }
            Action::AttemptFailed { graph, failure } => {
                tracing::info!(%graph, op = %failure.op_id, reason = %failure.reason, "attempt failed; retrying");
                // Whoever ran the attempt may hold a state the server never stored: the retry
                // carries the checkpoint.
                if let Some(track) = self.training.get_mut(&graph) {
                    track.synced = None;
                }
                let notice = OpFailedNotice { graph_id: graph, failure, will_retry: true };
                self.to_requesters(graph, requester::EVENT_OP_FAILED, &notice).await;
                Ok(())
            }
            Action::Assign(assignment) => {
                let Some(payload) = self.payloads.get(&assignment.graph).cloned() else {
                    return Err(Error::Internal(format!("no payload for {}", assignment.graph)));
                };
                let ops = assignment.ops.iter().filter_map(|id| payload.get(id).cloned()).collect();
                let user = provider_user(assignment.provider);
                // Inputs from memory first, the others from the database; inline while the
                // frame's budget lasts, the rest through ravftp.
                let mut stored = Vec::new();
                let mut unknown = Vec::new();
                for op in &assignment.external_inputs {
                    match self.values.get(assignment.graph, *op) {
                        Some(value) => stored.push((*op, StoredValue::Inline(value.clone()))),
                        None => unknown.push(*op),
                    }
                }
                stored.extend(self.db.values(&unknown).await?);
                let mut budget = InlineBudget::new(self.bulk.inline_limit());
                let mut inputs = Vec::new();
                let mut values = Vec::new();
                let mut files = Vec::new();
                for (op, stored) in stored {
                    let name = || format!("in-{}-{}.ravv", assignment.id.0, op.0);
                    let (name, placed) = match stored {
                        StoredValue::Inline(value) if budget.admit(value.encoded_len()) => {
                            inputs.push(op);
                            values.push(value);
                            continue;
                        }
                        StoredValue::Inline(value) => {
                            let name = name();
                            let placed = self.bulk.place(&value, &user, &name);
                            (name, placed)
                        }
                        StoredValue::File { .. } => {
                            let name = name();
                            let placed = self.bulk.lend(op, &user, &name);
                            (name, placed)
                        }
                    };
                    match placed {
                        Ok(len) => files.push(FileValue { op, name, len }),
                        Err(error) => {
                            // The server's fault, not the provider's: hand the subgraph back
                            // now instead of letting its deadline evict the provider.
                            tracing::error!(%op, cause = %error, "cannot place an input for a provider");
                            let failure = OpFailure {
                                op_id: assignment.ops.first().copied().unwrap_or(op),
                                operator: "subgraph".into(),
                                reason: format!("server could not prepare input {op}"),
                            };
                            self.followups.push(Event::SubgraphFailed {
                                provider: assignment.provider,
                                assignment: assignment.id,
                                failure,
                                retryable: true,
                            });
                            return Ok(());
                        }
                    }
                }
                let header = AssignHeader {
                    assignment: assignment.id.0,
                    graph: assignment.graph,
                    ops,
                    inputs,
                    outputs: assignment.outputs.clone(),
                    files,
                    state: None,
                };
                let mut frame = Frame { header, values };
                if assignment.trains
                    && let Some(track) = self.training.get(&assignment.graph).copied()
                {
                    frame.header.state = Some(TrainingState { version: track.version, checkpoint: false });
                    if track.version > 0 && track.synced != Some(assignment.provider) {
                        let checkpoint = self.db.checkpoint(assignment.graph).await?;
                        tracing::info!(graph = %assignment.graph, provider = %assignment.provider, version = checkpoint.version, "sending the training checkpoint");
                        frame.attach_checkpoint(&checkpoint);
                    }
                }
                // Stuffed: the Rust client corrupts binary messages containing 0x1e (see `stuff`).
                self.emit(assignment.provider, EVENT_ASSIGN, &Bytes::from(stuff(&frame.encode()))).await;
                Ok(())
            }
            Action::Withdraw { provider, assignment } => {
                self.emit(provider, EVENT_WITHDRAW, &Withdraw { assignment: assignment.0 }).await;
                Ok(())
            }
            Action::Evict { provider } => {
                tracing::warn!(%provider, "provider missed a deadline; disconnecting it");
                if let Some(namespace) = self.io.as_ref().and_then(|io| io.of(NAMESPACE))
                    && let Err(error) = namespace.to(provider_room(provider)).disconnect().await
                {
                    tracing::warn!(%provider, cause = %error, "cannot disconnect provider");
                }
                Ok(())
            }
            Action::Rejected { provider, reason } => {
                tracing::info!(%provider, %reason, "provider rejected");
                self.emit(provider, EVENT_REJECTED, &Rejected { reason }).await;
                Ok(())
            }
        }
    }
}
