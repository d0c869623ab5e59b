//! The dispatch task's loop: each command becomes a scheduler event, each action the
//! scheduler returns is performed, and what performing one produced (an assignment that could
//! not be sent) goes back in as another event.

use super::health::Health;
use super::outbox::Outbox;
use super::runs::{Runs, TrainingTrack};
use super::{Command, GraphDone, scheduler_ops};
use crate::bulk::Bulk;
use crate::db::{Db, StoredOp};
use crate::error::{Error, Result};
use crate::scheduler::{Action, Event, Millis, Scheduler};
use ravproto::messages::{GraphProgress, OpFailure, Requirements};
use ravproto::provider::{AssignedOp, EVENT_REJECTED, EVENT_WITHDRAW, Rejected, RejectionCode, Withdraw};
use ravproto::requester::{self, OpFailedNotice};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, ProviderId};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Progress of one graph is broadcast at most this often: every broadcast wakes the waiting
/// requesters, whose next request counts the graph's ops, and a graph of 100,000 small ops
/// completes a subgraph every millisecond or so. Completion is always sent at once.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// What requesters are told of a storage fault; the details go to the log and `GET /readyz`.
pub(super) const STORAGE_FAULT: &str = "the server's storage failed (details in its log and GET /readyz)";

/// The task: the scheduler and everything it acts on.
pub(super) struct Dispatcher {
    pub(super) db: Db,
    pub(super) bulk: Bulk,
    pub(super) scheduler: Scheduler,
    pub(super) outbox: Outbox,
    pub(super) runs: Runs,
    /// Events that performing an action produced (an assignment the server could not send).
    pub(super) followups: Vec<Event>,
    /// Storage failures seen, and graph failures not yet stored.
    pub(super) health: Health,
    pub(super) metrics: crate::metrics::Metrics,
    /// The task's clock (topics' rounds keep Unix times).
    pub(super) clock: super::topics::Clock,
    /// The work functions of running jobs, sent with a connection's first bundle of each.
    pub(super) works: std::collections::HashMap<ravproto::jobs::JobId, Arc<ravproto::jobs::JobWork>>,
    /// Outcome numbers taken by abandoned slices whose follow-up the scheduler has not
    /// counted yet (cleared once a command's follow-ups are all handled).
    pub(super) seqs_taken: std::collections::HashMap<ravproto::jobs::JobId, u64>,
}

impl Dispatcher {
    pub(super) fn new(
        db: Db,
        bulk: Bulk,
        scheduler: Scheduler,
        outbox: Outbox,
        health: Health,
        metrics: crate::metrics::Metrics,
    ) -> Dispatcher {
        Dispatcher {
            db,
            bulk,
            scheduler,
            outbox,
            runs: Runs::default(),
            followups: Vec::new(),
            health,
            metrics,
            clock: super::topics::Clock::new(),
            works: Default::default(),
            seqs_taken: Default::default(),
        }
    }

    /// Handles `first` (the graphs to resume), then commands from `rx` until every sender is
    /// gone.
    pub(super) async fn run(mut self, rx: &mut mpsc::Receiver<Command>, first: Vec<Command>) {
        let start = self.clock.start;
        let mut first = first.into_iter();
        loop {
            let wake = self.scheduler.next_deadline().map(|at| start + std::time::Duration::from_millis(at));
            let command = match (first.next(), wake) {
                (Some(command), _) => Some(command),
                (None, Some(at)) => tokio::select! {
                    command = rx.recv() => command,
                    () = tokio::time::sleep_until(at) => Some(Command::Event(Event::Tick)),
                },
                (None, None) => rx.recv().await,
            };
            let Some(command) = command else { return };
            #[cfg(feature = "fault-injection")]
            super::faults::maybe_panic(&command);
            if self.health.has_unstored() {
                self.store_unstored_failures().await;
            }
            let mut cancelled = None;
            let event = match command {
                Command::Execute(graph) => match self.submission(graph).await {
                    Ok(event) => event,
                    Err(error) => {
                        self.unloadable(graph, error).await;
                        continue;
                    }
                },
                Command::ExecuteStored { graph, requirements, ops, values, done, payer } => {
                    for (op, value) in values {
                        self.runs.keep(graph, op, value);
                    }
                    if let Some(done) = done {
                        self.runs.wait_for(graph, done);
                    }
                    match self.submission_of(graph, requirements, &ops, payer).await {
                        Ok(event) => event,
                        Err(error) => {
                            tracing::error!(%graph, cause = %error, "cannot start graph");
                            self.runs.end(graph);
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
                Command::Event(Event::SubgraphFailed {
                    provider,
                    assignment,
                    failure,
                    retryable: true,
                    over_budget: None,
                }) => self.provider_failure(provider, assignment, failure),
                Command::TopicStart(topic) => match self.topic_started(topic).await {
                    Some(event) => event,
                    None => continue,
                },
                Command::TopicStop { topic, done } => match self.topic_stopped(topic, done).await {
                    Some(event) => event,
                    None => continue,
                },
                Command::Answer { topic, round, worker, value, reply } => {
                    match self.answer(topic, round, worker, value, reply).await {
                        Some(event) => event,
                        None => continue,
                    }
                }
                Command::JobStart(job) => match self.job_started(job).await {
                    Some(event) => event,
                    None => continue,
                },
                Command::AddSlices { job, added, staged, reply } => {
                    match self.add_slices(job, added, staged, reply).await {
                        Some(event) => event,
                        None => continue,
                    }
                }
                Command::JobEnd { job, cancel, reply } => match self.job_end(job, cancel, reply).await {
                    Some(event) => event,
                    None => continue,
                },
                Command::SliceResults { provider, results } => match self.slice_results(provider, results).await {
                    Some(event) => event,
                    None => continue,
                },
                Command::JobCounts(job, reply) => {
                    let _ = reply.send(self.scheduler.job_counts(job));
                    continue;
                }
                Command::Event(event) => event,
                Command::Flush(done) => {
                    let _ = done.send(());
                    continue;
                }
                Command::Depth(reply) => {
                    let _ = reply.send(self.scheduler.depth());
                    continue;
                }
                Command::Providers(reply) => {
                    let _ = reply.send(self.scheduler.provider_views(start.elapsed().as_millis() as Millis));
                    continue;
                }
                Command::OpsOut(graph, reply) => {
                    let _ = reply.send(self.scheduler.ops_out(graph));
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
            self.seqs_taken.clear();
            if let Some(graph) = cancelled {
                let (run, _) = self.runs.end(graph);
                self.settle(graph, run.and_then(|run| run.payer)).await;
                self.announce_end(graph).await;
                self.collect_garbage(graph).await;
            }
        }
    }

    async fn submission(&mut self, graph: GraphId) -> Result<Event> {
        let stored = self.db.graph(graph).await?.ok_or_else(|| Error::NotFound(format!("no graph {graph}")))?;
        let ops = self.db.ops(graph).await?;
        // Paid from escrow only if it was executed with accounting on (and then also after a
        // restart that turned accounting off: the escrow is there).
        let payer = self.db.graph_escrowed(graph).await?.then_some(stored.owner);
        self.submission_of(graph, stored.meta.requirements, &ops, payer).await
    }

    /// Starts the run of `graph` with these ops (every op of the graph, in id order) and
    /// returns its submission.
    async fn submission_of(
        &mut self,
        graph: GraphId,
        mut requirements: Requirements,
        ops: &[StoredOp],
        payer: Option<i64>,
    ) -> Result<Event> {
        // Providers know ops by server id, as they are stored.
        let payload = ops
            .iter()
            .map(|op| (op.id, AssignedOp { id: op.id, operation: op.operation.clone(), inputs: op.inputs.clone() }))
            .collect();
        let training = match ops.iter().any(|op| op.operation.kind().trains()) {
            // After a restart nobody is known to hold the state: the checkpoint goes along.
            true => Some(TrainingTrack { version: self.db.checkpoint_version(graph).await?, synced: None }),
            false => None,
        };
        self.runs.start(graph, Arc::new(payload), training, payer);
        if let Some(run) = self.runs.get_mut(graph) {
            // Stakes are asked only where the graph pays.
            run.stake = if payer.is_some() { requirements.min_stake } else { 0 };
            // A training graph's state lives in one provider: it cannot be replicated (the
            // upload refuses to verify one; this keeps one stored before that safe).
            run.verify = if run.training.is_some() { Default::default() } else { requirements.verify };
        }
        // Only providers built with the `onnx` feature run whole models. The upload sets this in
        // the stored meta too; graphs stored by an older ravsock get it here.
        requirements.onnx_required |= ops.iter().any(|op| op.operation.kind() == ravproto::OpKind::ForwardPass);
        requirements.verify = self.runs.get(graph).map(|run| run.verify).unwrap_or_default();
        Ok(Event::GraphSubmitted { graph, ops: scheduler_ops(ops), requirements })
    }

    /// Tells long polls and subscribed requesters that a graph ended (status stored, or kept
    /// in [`Health`] while it cannot be).
    async fn announce_end(&self, graph: GraphId) {
        let progress = match self.db.graph(graph).await {
            Ok(Some(stored)) => self.db.progress(&stored).await,
            Ok(None) => return,
            Err(error) => Err(error),
        };
        match progress {
            Ok(mut progress) => {
                self.health.overlay(&mut progress);
                self.outbox.ended(graph, progress).await
            }
            Err(error) => tracing::error!(%graph, cause = %error, "cannot read a finished graph"),
        }
    }

    /// A provider's transient failure, or the server's: when the server's own storage fails
    /// its probe (a provider's upload refused by a full or read-only disk), the provider is
    /// not to blame and the graph waits instead.
    fn provider_failure(
        &mut self,
        provider: ProviderId,
        assignment: crate::scheduler::AssignmentId,
        failure: OpFailure,
    ) -> Event {
        match self.bulk.probe() {
            Ok(()) => Event::SubgraphFailed { provider, assignment, failure, retryable: true, over_budget: None },
            Err(error) => {
                tracing::error!(%provider, cause = %error, reason = %failure.reason, "a provider's failure while storage fails");
                self.health.storage_failed(error.to_string());
                Event::ServerFault { provider, assignment, reason: STORAGE_FAULT.into() }
            }
        }
    }

    /// A graph that cannot be loaded to run or resume: a storage fault leaves it for the next
    /// start (it may load then); anything else (a stored op that no longer reads) fails it
    /// with the reason, so its requester hears why instead of waiting for good.
    async fn unloadable(&mut self, graph: GraphId, error: Error) {
        if matches!(error, Error::Database(_) | Error::Storage(_)) {
            tracing::error!(%graph, cause = %error, "cannot load graph for execution; it is resumed at the next start");
            self.health.storage_failed(error.to_string());
            return;
        }
        tracing::error!(%graph, cause = %error, "cannot load graph for execution; it fails");
        self.metrics.failed("graph");
        let failure = OpFailure {
            op_id: ravproto::OpId(0),
            operator: "load".into(),
            reason: format!("the server cannot load this graph: {error}"),
        };
        if let Err(stored) = self.store_failure(graph, &failure).await {
            tracing::error!(%graph, cause = %stored, "cannot store the graph's failure");
            self.health.storage_failed(stored.to_string());
            return;
        }
        self.runs.end(graph);
        // Its run never started, so the escrow (if any) is looked up; a lookup that fails
        // leaves the return to the next start's sweep. Settled before the end is announced,
        // as everywhere.
        let escrowed = async { Ok::<_, Error>((self.db.graph(graph).await?, self.db.graph_escrowed(graph).await?)) };
        match escrowed.await {
            Ok((Some(stored), true)) => self.settle(graph, Some(stored.owner)).await,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%graph, cause = %error, "cannot look up a failed graph's escrow; it is returned at the next start")
            }
        }
        self.announce_end(graph).await;
    }

    /// Stores the failures of graphs that ended while storage refused writes.
    async fn store_unstored_failures(&mut self) {
        for (graph, failure) in self.health.unstored() {
            match self.store_failure(graph, &failure).await {
                Ok(()) => {
                    tracing::info!(%graph, "the failure of the graph is stored now");
                    self.health.stored(graph);
                }
                // Still failing: the next command tries again.
                Err(_) => return,
            }
        }
    }

    async fn store_failure(&self, graph: GraphId, failure: &OpFailure) -> Result<()> {
        let text = serde_json::to_string(failure).map_err(|e| Error::Internal(e.to_string()))?;
        self.db.set_graph_status(graph, GraphStatus::Failed, Some(&text)).await?;
        self.db.set_pending_ops(graph, OpStatus::Failed).await
    }

    async fn perform(&mut self, action: Action) -> Result<()> {
        match action {
            Action::GraphComputed { graph } => self.computed(graph).await,
            Action::GraphFailed { graph, failure } => self.failed(graph, failure).await,
            Action::Progress { graph, computed, total } => {
                self.progress(graph, computed, total).await;
                Ok(())
            }
            Action::AttemptFailed { graph, failure } => {
                self.metrics.failed("attempt");
                tracing::info!(%graph, op = %failure.op_id, reason = %failure.reason, "attempt failed; retrying");
                // Whoever ran the attempt may hold a state the server never stored: the retry
                // carries the checkpoint.
                if let Some(track) = self.runs.get_mut(graph).and_then(|run| run.training.as_mut()) {
                    track.synced = None;
                }
                let notice = OpFailedNotice { graph_id: graph, failure, will_retry: true };
                self.outbox.to_requesters(graph, requester::EVENT_OP_FAILED, &notice).await;
                Ok(())
            }
            Action::Assign(assignment) => {
                // The provider would miss the deadline of an assignment it never got, and be
                // evicted for the server's failure: it goes back at once, blaming nobody.
                let (provider, id, graph) = (assignment.provider, assignment.id, assignment.graph);
                let started = std::time::Instant::now();
                match self.stake_for(&assignment).await {
                    Ok(true) => {}
                    // Handed back: the scheduler gives it to another.
                    Ok(false) => return Ok(()),
                    Err(error) => {
                        let fault = self.server_fault(provider, id, error);
                        self.followups.push(fault);
                        return Ok(());
                    }
                }
                match self.assign(assignment).await {
                    Ok(()) => {
                        self.metrics.subgraphs_assigned.inc();
                        self.metrics.assign_seconds.observe(started.elapsed().as_secs_f64());
                        if let Some(run) = self.runs.get_mut(graph) {
                            run.handed_out.insert(id, started);
                        }
                    }
                    Err(error) => {
                        let fault = self.server_fault(provider, id, error);
                        self.followups.push(fault);
                    }
                }
                Ok(())
            }
            Action::AssignSlices(assignment) => {
                self.assign_slices(assignment).await;
                Ok(())
            }
            Action::WithdrawSlices { provider, bundle } => {
                self.withdraw_slices(provider, bundle).await;
                Ok(())
            }
            Action::AbandonSlices { job, slices, handouts } => {
                self.abandon_slices(job, slices, handouts).await;
                Ok(())
            }
            Action::JobProgress { job, counts } => {
                self.job_progress(job, counts);
                Ok(())
            }
            Action::JobComplete { job, counts } => self.job_complete(job, counts).await,
            Action::ForgetWork { job, providers } => {
                self.forget_work(job, providers).await;
                Ok(())
            }
            Action::OpenRound { topic, round, deadline_ms } => self.open_round(topic, round, deadline_ms).await,
            Action::CloseRound { topic, round } => self.close_round(topic, round).await,
            Action::Slash { account, graph, amount, why } => {
                self.slash(account, graph, amount, why).await;
                Ok(())
            }
            Action::Withdraw { provider, assignment } => {
                self.outbox.to_provider(provider, EVENT_WITHDRAW, &Withdraw { assignment: assignment.0 }).await;
                Ok(())
            }
            Action::Evict { provider, reason } => {
                self.metrics.failed("evicted");
                tracing::warn!(%provider, %reason, "disconnecting provider");
                // Said before the connection closes, so the provider can show why it was
                // dropped; it may connect again at once.
                let rejected = Rejected { reason: format!("disconnected: {reason}"), code: RejectionCode::Evicted };
                self.outbox.to_provider(provider, EVENT_REJECTED, &rejected).await;
                self.outbox.disconnect(provider).await;
                Ok(())
            }
            Action::Rejected { provider, graph, reason, code } => {
                let (code, reason) = match (code, graph) {
                    (RejectionCode::NotExecuting, Some(graph)) => self.not_executing(graph, reason).await,
                    (code, _) => (code, reason),
                };
                tracing::info!(%provider, %reason, ?code, "provider rejected");
                self.outbox.to_provider(provider, EVENT_REJECTED, &Rejected { reason, code }).await;
                Ok(())
            }
        }
    }

    /// Why a graph a provider chose is not in the scheduler's memory, from the database: not
    /// started yet (wait), ended (choose another) or unknown.
    async fn not_executing(&self, graph: GraphId, reason: String) -> (RejectionCode, String) {
        match self.db.graph(graph).await {
            Ok(None) => (RejectionCode::NotFound, format!("{graph} does not exist")),
            Ok(Some(stored)) => match stored.status {
                GraphStatus::Pending | GraphStatus::Computing => {
                    (RejectionCode::NotExecuting, format!("{graph} is not executing yet"))
                }
                ended => (RejectionCode::Finished, format!("{graph} has ended ({ended:?})")),
            },
            // Said as "not yet": the provider asks again later.
            Err(_) => (RejectionCode::NotExecuting, reason),
        }
    }

    async fn computed(&mut self, graph: GraphId) -> Result<()> {
        tracing::info!(%graph, "graph computed");
        // The waiter, if any, is dropped unanswered if the status cannot be stored.
        let (run, values) = self.runs.end(graph);
        if !run.as_ref().is_some_and(|run| run.status_stored) {
            self.db.set_graph_status(graph, GraphStatus::Computed, None).await?;
        }
        let Some(run) = run else {
            self.announce_end(graph).await;
            self.collect_garbage(graph).await;
            return Ok(());
        };
        let payer = run.payer;
        // Every op of the graph is computed: the counts need no query, and the requester
        // waiting on this graph hears of it sooner. As the stored counts read: no entry at all
        // for a graph without ops.
        let total = run.payload.len() as u64;
        let ops = BTreeMap::from_iter((total > 0).then_some((OpStatus::Computed, total)));
        let progress = GraphProgress::from_counts(graph, GraphStatus::Computed, ops, None);
        // Settled first: a requester (or provider) that hears of the end reads final balances.
        self.settle(graph, payer).await;
        if let Some(waiter) = run.waiter {
            let _ = waiter.send(GraphDone { progress: progress.clone(), values });
        }
        self.outbox.ended(graph, progress).await;
        self.collect_garbage(graph).await;
        Ok(())
    }

    /// Returns what is left of an ended graph's escrow to `payer` (none: it has no escrow, and
    /// so no stakes), and its providers' stakes. Not done now (storage failing), it is done
    /// when the scheduler next starts.
    async fn settle(&self, graph: GraphId, payer: Option<i64>) {
        let Some(payer) = payer else { return };
        match self.db.settle_graph(graph, payer).await {
            Ok(refunded) => tracing::debug!(%graph, refunded, "escrow settled"),
            Err(error) => tracing::warn!(%graph, cause = %error, "cannot return a graph's escrow yet"),
        }
        match self.db.return_stakes(graph).await {
            Ok(returned) => tracing::debug!(%graph, returned, "stakes returned"),
            Err(error) => tracing::warn!(%graph, cause = %error, "cannot return the stakes in a graph yet"),
        }
    }

    /// Removes the blob files of an ended graph's values that nobody can fetch (not persisted),
    /// after the requester has heard the end. Where storage fails they stay, and are only disk.
    async fn collect_garbage(&self, graph: GraphId) {
        match self.db.forget_intermediate_files(graph).await {
            Ok(ops) => {
                let removed = self.bulk.remove_blobs(&ops);
                if removed > 0 {
                    tracing::debug!(%graph, files = removed, "intermediate blobs removed");
                }
            }
            Err(error) => tracing::warn!(%graph, cause = %error, "cannot forget intermediate blobs"),
        }
    }

    async fn failed(&mut self, graph: GraphId, failure: OpFailure) -> Result<()> {
        self.metrics.failed("graph");
        tracing::warn!(%graph, op = %failure.op_id, reason = %failure.reason, "graph failed");
        // The waiter is dropped on return, once the failure is stored: the request reads it back.
        let (ended, _) = self.runs.end(graph);
        let notice = OpFailedNotice { graph_id: graph, failure, will_retry: false };
        self.outbox.to_requesters(graph, requester::EVENT_OP_FAILED, &notice).await;
        let stored = self.store_failure(graph, &notice.failure).await;
        if let Err(error) = &stored {
            // Readers see the failure anyway, and it is stored once storage takes writes.
            self.health.storage_failed(format!("the failure of {graph}: {error}"));
            self.health.failed_unstored(graph, notice.failure.clone());
        }
        if stored.is_ok() {
            self.settle(graph, ended.and_then(|run| run.payer)).await;
        }
        self.announce_end(graph).await;
        if stored.is_ok() {
            self.collect_garbage(graph).await;
        }
        stored
    }

    async fn progress(&mut self, graph: GraphId, computed: u64, total: u64) {
        tracing::debug!(%graph, computed, total, "progress");
        let now = Instant::now();
        let Some(run) = self.runs.get_mut(graph) else { return };
        if run.progress_sent.is_some_and(|last| now - last < PROGRESS_INTERVAL) {
            return;
        }
        run.progress_sent = Some(now);
        // Counted by the scheduler: a COUNT over the graph's ops ten times a second would
        // stall this task on big graphs.
        let ops = BTreeMap::from([(OpStatus::Computed, computed), (OpStatus::Pending, total - computed)]);
        let progress = GraphProgress::from_counts(graph, GraphStatus::Computing, ops, None);
        self.outbox.to_requesters(graph, requester::EVENT_PROGRESS, &progress).await;
        self.outbox.changed(graph, progress);
    }
}
