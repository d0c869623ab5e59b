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
//! - [`stakes`]: providers' stakes in paid graphs, taken before their first subgraph is sent
//!   and slashed when they abandon work;
//! - [`verify`]: a verified graph's answers held and compared until enough agree;
//! - [`jobs`]: jobs started and resumed, bundles of slices sent, outcomes stored before they
//!   count;
//! - [`topics`]: topics started and resumed, rounds stored before they are announced, answers
//!   stored before they count;
//! - [`outbox`]: emits to providers and requesters, and the room names;
//! - [`health`]: the last storage failure, and failures of graphs that could not be stored;
//! - [`retention`]: a task of its own that removes ended graphs' values and old ftp files;
//! - [`supervised`]: background tasks started again after a panic;
//! - `faults` (feature `fault-injection`, tests only): a panic injected into the task.
//!
//! Graphs that train keep their state (weights, optimizer state) on a provider between
//! subgraphs; each training result brings a checkpoint, stored with the results, and a training
//! subgraph sent to any provider other than the one known to hold the latest state carries
//! that checkpoint, so training survives the loss of that provider.

mod assign;
mod expect;
#[cfg(feature = "fault-injection")]
pub mod faults;
mod health;
mod jobs;
mod outbox;
mod results;
pub mod retention;
mod runs;
mod stakes;
pub mod supervised;
mod task;
mod topics;
mod verify;

pub use health::Health;
pub use outbox::{graph_room, provider_room, topic_room};

use crate::bulk::Bulk;
use crate::db::{Db, StoredOp};
use crate::error::{Error, Result};
use crate::scheduler::{AssignmentId, Event, OpInfo, Scheduler, SchedulerConfig};
use ravproto::checkpoint::Checkpoint;
use ravproto::messages::{FileValue, GraphProgress, Requirements};
use ravproto::status::OpStatus;
use ravproto::topics::TopicId;
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
        /// The account whose escrow pays its subgraphs (accounting on).
        payer: Option<i64>,
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
    /// Run a stored topic (just opened, or resumed after a restart).
    TopicStart(TopicId),
    /// Close a topic; answered once it is stored as closed and its open round closed.
    TopicStop { topic: TopicId, done: tokio::sync::oneshot::Sender<Result<()>> },
    /// A worker's answer to a round; answered once stored, or with why it is refused.
    Answer {
        topic: TopicId,
        round: u64,
        /// The worker's account id.
        worker: i64,
        value: f64,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
    /// Run a stored job (just created, or resumed after a restart).
    JobStart(ravproto::jobs::JobId),
    /// Store more slices for an open job; answered with their numbers.
    AddSlices {
        job: ravproto::jobs::JobId,
        added: ravproto::jobs::AddSlices,
        /// Its big slices, checked and staged by the request's handler.
        staged: Option<crate::bulk::StagedSlices>,
        reply: tokio::sync::oneshot::Sender<Result<ravproto::jobs::SlicesAdded>>,
    },
    /// Close or cancel a job; answered once its new state is stored.
    JobEnd {
        job: ravproto::jobs::JobId,
        /// Cancel (withdraw what is out) rather than close (finish what it has).
        cancel: bool,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
    /// A running job's counts (`None`: not running).
    JobCounts(ravproto::jobs::JobId, tokio::sync::oneshot::Sender<Option<ravproto::jobs::SliceCounts>>),
    /// A provider's answers to a bundle of slices (not yet stored).
    SliceResults { provider: ProviderId, results: ravproto::jobs::BundleResults },
    /// Any other scheduler event (providers joining and leaving, failures).
    Event(Event),
    /// Answered once every earlier command has been handled and its actions performed
    /// (lets callers and tests wait for the scheduler without sleeping).
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Answered with the scheduler's queue depth once every earlier command has been handled.
    Depth(tokio::sync::oneshot::Sender<crate::scheduler::QueueDepth>),
    /// Answered with every provider connection that joined (the dashboard).
    Providers(tokio::sync::oneshot::Sender<Vec<crate::scheduler::views::ProviderView>>),
    /// Answered with the ops of a graph handed out now and their accounts (the dashboard).
    OpsOut(GraphId, tokio::sync::oneshot::Sender<Vec<(OpId, crate::scheduler::Account)>>),
}

/// Ops of a graph that were handed out or computed, for the dashboard.
#[derive(Clone, Debug, PartialEq)]
pub struct OpsEvent {
    pub graph: GraphId,
    pub ops: Vec<OpId>,
    /// Computed (stored), or handed out.
    pub computed: bool,
    /// The account that took or answered them.
    pub account: Option<crate::scheduler::Account>,
    /// When (unix milliseconds).
    pub at_ms: i64,
}

/// A change of a graph, pushed to waiting requesters.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphEvent {
    /// The graph that changed.
    pub graph: GraphId,
    /// Its progress after the change (long polls answer with it without a database read).
    pub progress: GraphProgress,
}

/// A round that closed (its value is stored), for the long polls waiting on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundClosed {
    /// The topic.
    pub topic: TopicId,
    /// The round.
    pub round: u64,
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
    rounds: tokio::sync::broadcast::Sender<RoundClosed>,
    ops: tokio::sync::broadcast::Sender<OpsEvent>,
    jobs: tokio::sync::broadcast::Sender<ravproto::jobs::JobId>,
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

    /// Subscribes to closed rounds.
    pub fn subscribe_rounds(&self) -> tokio::sync::broadcast::Receiver<RoundClosed> {
        self.rounds.subscribe()
    }

    /// Subscribes to jobs whose slices got outcomes or that ended.
    pub fn subscribe_jobs(&self) -> tokio::sync::broadcast::Receiver<ravproto::jobs::JobId> {
        self.jobs.subscribe()
    }

    /// Subscribes to ops handed out and computed (nothing is sent while nobody listens).
    pub fn subscribe_ops(&self) -> tokio::sync::broadcast::Receiver<OpsEvent> {
        self.ops.subscribe()
    }

    /// Every provider connection that joined, after every command sent before this call.
    pub async fn providers(&self) -> Result<Vec<crate::scheduler::views::ProviderView>> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Providers(reply)).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }

    /// The ops of `graph` handed out now, each with the account that holds it.
    pub async fn ops_out(&self, graph: GraphId) -> Result<Vec<(OpId, crate::scheduler::Account)>> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.send(Command::OpsOut(graph, reply)).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
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
    let (rounds, _) = tokio::sync::broadcast::channel(1024);
    let (ops, _) = tokio::sync::broadcast::channel(4096);
    let (jobs, _) = tokio::sync::broadcast::channel(4096);
    let handle =
        SchedulerHandle { tx, events, rounds, ops, jobs, health: Health::default(), metrics: Default::default() };
    (handle, SchedulerInbox(rx))
}

/// Starts the dispatch task on `inbox`, resuming unfinished graphs; assignments go out
/// through `io` (without it they wait for their deadline, which tests of the HTTP API use).
///
/// The task is supervised: if it panics, the panic is logged and counted
/// (`ravsock_scheduler_restarts`), every provider connection is closed (providers connect and
/// join again, since the new scheduler knows none of them), and a new task resumes every
/// unfinished graph from the database, after a pause that doubles with each panic in a row.
/// Commands already queued wait for it; none is lost but the one being handled.
pub async fn start_scheduler(
    handle: &SchedulerHandle,
    inbox: SchedulerInbox,
    db: Db,
    bulk: Bulk,
    config: SchedulerConfig,
    io: Option<SocketIo>,
) -> Result<()> {
    let first = resumable(&db).await?;
    let parts = Parts {
        db,
        bulk,
        config,
        outbox: outbox::Outbox {
            io,
            events: handle.events.clone(),
            rounds: handle.rounds.clone(),
            ops: handle.ops.clone(),
            jobs: handle.jobs.clone(),
        },
        health: handle.health.clone(),
        metrics: handle.metrics.clone(),
    };
    tokio::spawn(supervise(parts, inbox.0, first));
    Ok(())
}

/// What each dispatch task is made of.
struct Parts {
    db: Db,
    bulk: Bulk,
    config: SchedulerConfig,
    outbox: outbox::Outbox,
    health: Health,
    metrics: crate::metrics::Metrics,
}

/// Commands that resume every graph left executing (federated graphs have no subgraphs: their
/// submissions are stored, nothing to resume), and every open topic.
async fn resumable(db: &Db) -> Result<Vec<Command>> {
    // Escrows and stakes of graphs that ended while their return could not be written (a
    // crash, a storage fault) are returned now.
    for (graph, left) in db.open_escrows().await? {
        let Some(stored) = db.graph(graph).await? else { continue };
        if left > 0 && stored.status.has_ended() {
            let refunded = db.settle_graph(graph, stored.owner).await?;
            tracing::info!(%graph, refunded, "escrow of an ended graph returned");
        }
    }
    let staked: std::collections::BTreeSet<GraphId> = db.open_stakes().await?.into_iter().map(|(g, _, _)| g).collect();
    for graph in staked {
        if db.graph(graph).await?.is_some_and(|stored| stored.status.has_ended()) {
            let returned = db.return_stakes(graph).await?;
            tracing::info!(%graph, returned, "stakes in an ended graph returned");
        }
    }
    let mut commands: Vec<Command> =
        db.topics(None, true).await?.into_iter().map(|t| Command::TopicStart(t.id)).collect();
    commands.extend(db.jobs(None, true).await?.into_iter().map(|job| Command::JobStart(job.id)));
    for graph in db.unfinished_graphs().await? {
        if db.graph(graph).await?.is_some_and(|g| g.meta.approach == ravproto::messages::Approach::Federated) {
            continue;
        }
        tracing::info!(%graph, "resuming graph");
        commands.push(Command::Execute(graph));
    }
    Ok(commands)
}

/// Runs dispatch tasks on `rx`, one after another, until every sender is gone.
async fn supervise(parts: Parts, mut rx: mpsc::Receiver<Command>, mut first: Vec<Command>) {
    use futures_util::FutureExt;
    let mut generation = 0u64;
    let mut panics_in_a_row = 0u32;
    loop {
        // Assignment ids of each generation start far from the last one's, so a result for an
        // assignment of a dead task can never be taken for one of the new task's.
        let scheduler = Scheduler::new(parts.config.clone()).numbering_from(generation << 40);
        let task = task::Dispatcher::new(
            parts.db.clone(),
            parts.bulk.clone(),
            scheduler,
            parts.outbox.clone(),
            parts.health.clone(),
            parts.metrics.clone(),
        );
        let started = tokio::time::Instant::now();
        let run = std::panic::AssertUnwindSafe(task.run(&mut rx, std::mem::take(&mut first))).catch_unwind().await;
        let Err(panic) = run else { return };
        let why = supervised::panic_text(panic.as_ref());
        parts.metrics.scheduler_restarts.inc();
        // A task that ran a while before it panicked starts the count again.
        panics_in_a_row = if started.elapsed() > std::time::Duration::from_secs(60) { 1 } else { panics_in_a_row + 1 };
        let pause = std::time::Duration::from_millis(100) * 2u32.pow(panics_in_a_row.min(9) - 1);
        tracing::error!(cause = %why, panics_in_a_row, ?pause, "the scheduler task panicked; starting it again from the database");
        parts.outbox.disconnect_all_providers().await;
        tokio::time::sleep(pause).await;
        first = loop {
            match resumable(&parts.db).await {
                Ok(commands) => break commands,
                Err(error) => {
                    tracing::error!(cause = %error, "cannot list the graphs to resume; trying again");
                    parts.health.storage_failed(error.to_string());
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        };
        generation += 1;
    }
}

/// A dispatch task without a provider link (for the HTTP API alone).
pub async fn spawn_scheduler(db: Db, bulk: Bulk, config: SchedulerConfig) -> Result<SchedulerHandle> {
    let (handle, inbox) = scheduler_channel();
    start_scheduler(&handle, inbox, db, bulk, config, None).await?;
    Ok(handle)
}
