//! The scheduler task: owns the [`Scheduler`], feeds it commands and deadlines, and performs
//! its actions against the database.
//!
//! The task sleeps until the next command or the earliest assignment deadline (no polling loop).
//! Times are taken from tokio's clock, so tests can pause it. On start it resumes every graph
//! that was executing when the server stopped: computed ops are loaded as computed and only the
//! rest is scheduled again.

use crate::db::Db;
use crate::error::{Error, Result};
use crate::scheduler::{Action, Event, Millis, OpInfo, Scheduler, SchedulerConfig};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, OpId};
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A request to the scheduler task.
#[derive(Debug)]
pub enum Command {
    /// Start (or resume) a graph whose ops are stored.
    Execute(GraphId),
    /// Cancel a graph.
    Cancel(GraphId),
    /// Any other scheduler event (providers joining, results, failures).
    Event(Event),
    /// Answered once every earlier command has been handled and its actions performed
    /// (lets callers and tests wait for the scheduler without sleeping).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Sends commands to the scheduler task.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
}

impl SchedulerHandle {
    /// Queues a command.
    pub async fn send(&self, command: Command) -> Result<()> {
        self.tx.send(command).await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }

    /// Waits until every command sent before this call has been handled.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Flush(done)).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))
    }
}

/// Ops of a stored graph as the scheduler sees them.
pub async fn scheduler_ops(db: &Db, graph: GraphId) -> Result<Vec<OpInfo>> {
    let ops = db.ops(graph).await?;
    let by_local: BTreeMap<u64, OpId> = ops.iter().map(|op| (op.local_id, op.id)).collect();
    Ok(ops
        .into_iter()
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
        .collect())
}

/// Starts the scheduler task and resumes unfinished graphs.
pub async fn spawn_scheduler(db: Db, config: SchedulerConfig) -> Result<SchedulerHandle> {
    let (tx, rx) = mpsc::channel(1024);
    let handle = SchedulerHandle { tx };
    for graph in db.unfinished_graphs().await? {
        tracing::info!(%graph, "resuming graph after restart");
        handle.send(Command::Execute(graph)).await?;
    }
    tokio::spawn(run_scheduler(db, Scheduler::new(config), rx));
    Ok(handle)
}

async fn run_scheduler(db: Db, mut scheduler: Scheduler, mut rx: mpsc::Receiver<Command>) {
    let start = Instant::now();
    let now = |start: Instant| -> Millis { start.elapsed().as_millis() as Millis };
    loop {
        let wake = scheduler.next_deadline().map(|at| start + std::time::Duration::from_millis(at));
        let command = match wake {
            Some(at) => tokio::select! {
                command = rx.recv() => command,
                () = tokio::time::sleep_until(at) => Some(Command::Event(Event::Tick)),
            },
            None => rx.recv().await,
        };
        let Some(command) = command else { return };
        let event = match command {
            Command::Execute(graph) => match submission(&db, graph).await {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(%graph, cause = %error, "cannot load graph for execution");
                    continue;
                }
            },
            Command::Cancel(graph) => Event::GraphCancelled { graph },
            Command::Event(event) => event,
            Command::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let actions = scheduler.handle(now(start), event);
        for action in actions {
            if let Err(error) = perform(&db, action).await {
                tracing::error!(cause = %error, "scheduler action failed");
            }
        }
    }
}

async fn submission(db: &Db, graph: GraphId) -> Result<Event> {
    let stored = db.graph(graph).await?.ok_or_else(|| Error::NotFound(format!("no graph {graph}")))?;
    Ok(Event::GraphSubmitted { graph, ops: scheduler_ops(db, graph).await?, requirements: stored.meta.requirements })
}

async fn perform(db: &Db, action: Action) -> Result<()> {
    match action {
        Action::GraphComputed { graph } => {
            tracing::info!(%graph, "graph computed");
            db.set_graph_status(graph, GraphStatus::Computed, None).await
        }
        Action::GraphFailed { graph, failure } => {
            tracing::warn!(%graph, op = %failure.op_id, reason = %failure.reason, "graph failed");
            let failure = serde_json::to_string(&failure).map_err(|e| Error::Internal(e.to_string()))?;
            db.set_graph_status(graph, GraphStatus::Failed, Some(&failure)).await?;
            db.set_pending_ops(graph, OpStatus::Failed).await
        }
        Action::Progress { graph, computed, total } => {
            tracing::debug!(%graph, computed, total, "progress");
            Ok(())
        }
        // Provider-facing actions need the socket.io layer, which is not built yet: the
        // assignment stays out until its deadline and is then retried.
        Action::Assign(assignment) => {
            tracing::debug!(provider = %assignment.provider, ops = assignment.ops.len(), "assignment has no provider link yet");
            Ok(())
        }
        Action::Withdraw { provider, assignment } => {
            tracing::debug!(%provider, assignment = assignment.0, "withdraw");
            Ok(())
        }
        Action::Rejected { provider, reason } => {
            tracing::info!(%provider, %reason, "provider rejected");
            Ok(())
        }
    }
}
