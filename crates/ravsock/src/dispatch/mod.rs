//! The scheduler's I/O shell: one task owns the sans-IO [`Scheduler`], feeds it commands and
//! deadlines, and performs its actions against the database, the blob store and socket.io.
//!
//! The task sleeps until the next command or the earliest assignment deadline (no polling
//! loop). Times are taken from tokio's clock, so tests can pause it. On start it resumes every
//! graph that was executing when the server stopped: computed ops are loaded as computed and
//! only the rest is scheduled again.
//!
//! - [`task`]: the loop and how each command and action is handled;
//! - [`runs`]: the record of each executing graph (one removal when it ends);
//! - [`assign`]: a subgraph handed to a provider, its inputs inline or through ravftp;
//! - [`results`]: a provider's results checked and stored before the scheduler counts them;
//! - [`outbox`]: emits to providers and requesters, and the room names;
//! - [`health`]: the last storage failure, and failures of graphs that could not be stored;
//! - [`retention`]: a task of its own that removes ended graphs' values and old ftp files.
//!
//! Graphs that train keep their state (weights, optimizer state) on a provider between
//! subgraphs; each training result brings a checkpoint, stored with the results, and a training
//! subgraph sent to any provider other than the one known to hold the latest state carries
//! that checkpoint, so training survives the loss of that provider.

mod assign;
mod expect;
mod health;
mod outbox;
mod results;
pub mod retention;
mod runs;
mod task;

pub use health::Health;
pub use outbox::{graph_room, provider_room};

use crate::bulk::Bulk;
use crate::db::{Db, StoredOp};
use crate::error::{Error, Result};
use crate::scheduler::{AssignmentId, Event, OpInfo, Scheduler, SchedulerConfig};
use ravproto::checkpoint::Checkpoint;
use ravproto::messages::{FileValue, GraphProgress, Requirements};
use ravproto::status::OpStatus;
use ravproto::{GraphId, OpId, ProviderId, Value};
use socketioxide::SocketIo;
use std::collections::HashMap;
use tokio::sync::mpsc;

/// A request to the dispatch task.
#[derive(Debug)]
pub enum Command {
    /// Start (or resume) a graph whose ops are stored.
    Execute(GraphId),
    /// Start a graph whose ops were just stored, all of them in one upload: they come along
    /// instead of being read back.
    ExecuteStored {
        graph: GraphId,
        requirements: Requirements,
        /// Every op of the graph, as stored.
        ops: Vec<StoredOp>,
        /// The inline values stored with them (the task keeps the small ones to hand out).
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
    /// Any other scheduler event (providers joining and leaving, failures).
    Event(Event),
    /// Answered once every earlier command has been handled and its actions performed
    /// (lets callers and tests wait for the scheduler without sleeping).
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Answered with the scheduler's queue depth once every earlier command has been handled.
    Depth(tokio::sync::oneshot::Sender<crate::scheduler::QueueDepth>),
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
    /// Its values the task kept in memory (small inline constants and results): persisted
    /// results are answered from here instead of read back.
    pub values: HashMap<OpId, Value>,
}

/// Sends commands to the dispatch task.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
    events: tokio::sync::broadcast::Sender<GraphEvent>,
    health: Health,
    metrics: crate::metrics::Metrics,
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

    /// What the task knows of the server's storage.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The server's metrics, which the dispatch task, the sockets and `GET /metrics` share.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Whether the task still runs (it stops only with the server, or by a bug).
    pub fn running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The scheduler's queue depth, after every command sent before this call.
    pub async fn depth(&self) -> Result<crate::scheduler::QueueDepth> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Depth(reply)).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }

    /// Waits until every command sent before this call has been handled.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Flush(done)).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }
}

/// Ops of a stored graph as the scheduler sees them: inputs and param references (stored as
/// server ids) are both dependencies.
pub fn scheduler_ops(ops: &[StoredOp]) -> Vec<OpInfo> {
    ops.iter()
        .map(|op| {
            let mut inputs = op.inputs.clone();
            inputs.extend(op.operation.param_refs());
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

/// The receiving end of the dispatch task's command channel.
pub struct SchedulerInbox(mpsc::Receiver<Command>);

/// A command channel: handles for HTTP and socket handlers, and the inbox for the task.
pub fn scheduler_channel() -> (SchedulerHandle, SchedulerInbox) {
    let (tx, rx) = mpsc::channel(1024);
    let (events, _) = tokio::sync::broadcast::channel(1024);
    (SchedulerHandle { tx, events, health: Health::default(), metrics: Default::default() }, SchedulerInbox(rx))
}

/// Starts the dispatch task on `inbox`, resuming unfinished graphs; assignments go out
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
    let outbox = outbox::Outbox { io, events: handle.events.clone() };
    let task =
        task::Dispatcher::new(db, bulk, Scheduler::new(config), outbox, handle.health.clone(), handle.metrics.clone());
    tokio::spawn(task.run(inbox.0));
    Ok(())
}

/// A dispatch task without a provider link (for the HTTP API alone).
pub async fn spawn_scheduler(db: Db, bulk: Bulk, config: SchedulerConfig) -> Result<SchedulerHandle> {
    let (handle, inbox) = scheduler_channel();
    start_scheduler(&handle, inbox, db, bulk, config, None).await?;
    Ok(handle)
}
