//! A provider's results: checked against the assignment (the outputs asked for, the training
//! checkpoint one step on, files that hold what they announce) and stored in one transaction
//! before the scheduler hears that the subgraph is computed, so a crash never loses a value
//! the scheduler relied on. A verified graph's answers are compared first (`verify.rs`), and
//! only an agreed value is stored.

use super::expect::{self, Expected};
use super::runs::TrainingTrack;
use super::task::{Dispatcher, STORAGE_FAULT};
use super::verify::Verdict;
use crate::bulk::provider_user;
use crate::db::ledger::{Movement, subgraph_payment};
use crate::error::{Error, Result};
use crate::scheduler::{AssignmentId, Event};
use ravexec::infer::TensorMeta;
use ravproto::checkpoint::Checkpoint;
use ravproto::ledger::op_price;
use ravproto::messages::{ErrorBody, ErrorCode, FileValue, OpFailure};
use ravproto::provider::{EVENT_REFUSED, SUBGRAPH};
use ravproto::{GraphId, OpId, ProviderId, Value};
use std::collections::BTreeSet;

impl Dispatcher {
    /// Checks and stores a provider's results; the event to apply, or `None` to ignore them.
    pub(super) async fn results(
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
        let fail = |reason: String| {
            let failure = OpFailure { op_id: ops[0], operator: SUBGRAPH.into(), reason };
            Some(Event::SubgraphFailed { provider, assignment, failure, retryable: true, over_budget: None })
        };
        let returned: BTreeSet<OpId> = values.iter().map(|(id, _)| *id).chain(files.iter().map(|f| f.op)).collect();
        let expected: BTreeSet<OpId> = outputs.iter().copied().collect();
        if returned != expected || returned.len() != values.len() + files.len() {
            return fail(format!(
                "results list {} values, {} were expected",
                values.len() + files.len(),
                expected.len()
            ));
        }
        // Every output of the wrong dtype or shape is refused before anything is stored, and
        // the provider hears why.
        let expected = self.runs.get_mut(graph).and_then(|run| run.expected.remove(&assignment)).unwrap_or_default();
        let misfit =
            values.iter().find_map(|(op, value)| expect::check(&expected, *op, expect::meta_of(value).as_ref()).err());
        if let Some(reason) = misfit {
            return self.refuse_result(provider, reason, fail).await;
        }
        let track = match self.training_track(graph, &ops, checkpoint.as_ref()) {
            Ok(track) => track,
            Err(reason) => return fail(reason),
        };
        let verified = self.runs.get(graph).is_some_and(|run| !run.verify.is_none());
        let (values, stored_files, paid) = if verified {
            let answer = match self.file_values(provider, values, &files, &expected) {
                Ok(answer) => answer,
                Err(Blame::Provider(reason)) => return self.refuse_result(provider, reason, fail).await,
                Err(Blame::Server(error)) => return Some(self.server_fault(provider, assignment, error)),
            };
            match self.verify_answer(provider, assignment, graph, &ops, answer).await {
                Verdict::Agreed { values, paid } => match self.keep_large(values) {
                    Ok((values, files)) => (values, files, paid),
                    Err(error) => return Some(self.server_fault(provider, assignment, error)),
                },
                Verdict::Pending(event) => return event,
            }
        } else {
            let stored_files = match self.adopt_files(provider, &files, &expected) {
                Ok(stored) => stored,
                Err(Blame::Provider(reason)) => return self.refuse_result(provider, reason, fail).await,
                Err(Blame::Server(error)) => return Some(self.server_fault(provider, assignment, error)),
            };
            (values, stored_files, self.scheduler.account_of(provider).into_iter().collect())
        };
        let stored_checkpoint = track.and(checkpoint.as_ref()).map(|c| (graph, c));
        // The graph's last subgraph: its status goes in the same transaction.
        let finishes = self.scheduler.completes(assignment).then_some(graph);
        let payments = self.payments(graph, &ops, &paid, verified);
        let writing = std::time::Instant::now();
        let stored = self.db.store_results(&values, &stored_files, &ops, stored_checkpoint, finishes, &payments);
        if let Err(error) = stored.await {
            return Some(self.server_fault(provider, assignment, error));
        }
        self.metrics.db_write_seconds.observe(writing.elapsed().as_secs_f64());
        self.metrics.subgraphs_computed.inc();
        self.metrics.ops_computed.inc_by(ops.len() as u64);
        self.outbox.ops(graph, &ops, true, self.scheduler.account_of(provider));
        self.metrics.ftp("from_providers", stored_files.iter().map(|(_, len)| len).sum());
        for (op, value) in values {
            self.runs.keep(graph, op, value);
        }
        if let Some(run) = self.runs.get_mut(graph) {
            if let Some(handed_out) = run.handed_out.remove(&assignment) {
                self.metrics.subgraph_seconds.observe(handed_out.elapsed().as_secs_f64());
            }
            run.status_stored |= finishes.is_some();
            if let (Some(before), Some(track)) = (track, run.training.as_mut()) {
                *track = TrainingTrack { version: before.version + 1, synced: Some(provider) };
            }
        }
        Some(Event::SubgraphCompleted { provider, assignment })
    }

    /// The payments for computing `ops` of `graph`, when the graph pays from escrow: the sum of
    /// their prices (`ravproto::ledger::op_price`), to each account in `paid` (the provider's,
    /// or a verified graph's agreeing ones). A provider the scheduler no longer knows (it left
    /// as its result was on the way) is not in `paid`; what it would have been paid goes back
    /// with the rest of the escrow.
    fn payments(&self, graph: GraphId, ops: &[OpId], paid: &[i64], verified: bool) -> Vec<Movement> {
        let (Some(run), Some(first)) = (self.runs.get(graph), ops.first()) else { return Vec::new() };
        let Some(payer) = run.payer else { return Vec::new() };
        let price =
            ops.iter().filter_map(|op| run.payload.get(op)).map(|op| op_price(op.operation.kind())).sum::<u64>();
        if price == 0 {
            return Vec::new();
        }
        paid.iter().map(|account| subgraph_payment(graph, *first, payer, *account, price, verified)).collect()
    }

    /// For an assignment with training ops, the graph's training state before it, once the
    /// checkpoint returned is checked to be one step on; `None` for one that does not train.
    fn training_track(
        &self,
        graph: GraphId,
        ops: &[OpId],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Option<TrainingTrack>, String> {
        let Some(run) = self.runs.get(graph) else { return Ok(None) };
        let trains = ops.iter().any(|op| run.payload.get(op).is_some_and(|o| o.operation.kind().trains()));
        let Some(track) = run.training.filter(|_| trains) else { return Ok(None) };
        match checkpoint {
            Some(c) if c.version == track.version + 1 => Ok(Some(track)),
            Some(c) => Err(format!("checkpoint version {} returned, {} expected", c.version, track.version + 1)),
            None => Err("a training subgraph came back without its checkpoint".into()),
        }
    }

    /// Moves the output files a provider uploaded into the blob store, once each is checked to
    /// hold one value of the length announced; `(op, length)` of each.
    fn adopt_files(
        &self,
        provider: ProviderId,
        files: &[FileValue],
        expected: &Expected,
    ) -> Result<Vec<(OpId, u64)>, Blame> {
        let user = provider_user(provider);
        let mut stored = Vec::with_capacity(files.len());
        for file in files {
            let len = self.checked_file(provider, file, expected)?;
            self.bulk.adopt(&user, &file.name, file.op).map_err(|error| blame(provider, file, error))?;
            stored.push((file.op, len));
        }
        Ok(stored)
    }

    /// A verified graph's answer: `values`, and the values of the output files read into
    /// memory (once each is checked), sorted by op for comparison.
    fn file_values(
        &self,
        provider: ProviderId,
        mut values: Vec<(OpId, Value)>,
        files: &[FileValue],
        expected: &Expected,
    ) -> Result<Vec<(OpId, Value)>, Blame> {
        let user = provider_user(provider);
        for file in files {
            self.checked_file(provider, file, expected)?;
            let value = self.bulk.take_value(&user, &file.name).map_err(|error| blame(provider, file, error))?;
            values.push((file.op, value));
        }
        values.sort_by_key(|(op, _)| *op);
        Ok(values)
    }

    /// An agreed value past the inline limit goes to the blob store, as a provider's file
    /// would have: the values to store inline, and `(op, length)` of those kept as blobs.
    fn keep_large(&self, values: Vec<(OpId, Value)>) -> Result<InlineAndFiles, Error> {
        let mut inline = Vec::with_capacity(values.len());
        let mut files = Vec::new();
        for (op, value) in values {
            if value.encoded_len() > self.bulk.inline_limit() {
                files.push((op, self.bulk.keep_blob(op, &value)?));
            } else {
                inline.push((op, value));
            }
        }
        Ok((inline, files))
    }

    /// Checks that an output file holds one value of the length announced and the dtype and
    /// shape expected; its length.
    fn checked_file(&self, provider: ProviderId, file: &FileValue, expected: &Expected) -> Result<u64, Blame> {
        let check = self.bulk.check(&provider_user(provider), &file.name).map_err(|e| blame(provider, file, e))?;
        let meta = check.tensor.map(|(dtype, shape)| TensorMeta { dtype, shape });
        let problem = if check.len != file.len {
            Some(format!("file {} holds {} bytes, {} announced", file.name, check.len, file.len))
        } else {
            expect::check(expected, file.op, meta.as_ref()).err()
        };
        match problem {
            Some(reason) => Err(blame(provider, file, Error::BadRequest(reason))),
            None => Ok(check.len),
        }
    }

    /// The server could not hand out or store an assignment of `provider`: not its fault, so
    /// nothing counts against it and the graph waits (see [`Event::ServerFault`]). A verified
    /// graph's answers held for that subgraph are dropped, as the scheduler starts it afresh.
    pub(super) fn server_fault(&mut self, provider: ProviderId, assignment: AssignmentId, error: Error) -> Event {
        if let Some((_, graph, ops, _)) = self.scheduler.assignment(assignment)
            && let (Some(run), Some(first)) = (self.runs.get_mut(graph), ops.first())
        {
            run.replicas.remove(first);
        }
        self.metrics.failed("server");
        tracing::error!(%provider, assignment = assignment.0, cause = %error, "server fault; the graph waits");
        if error.is_storage_fault() {
            self.health.storage_failed(format!("assignment {}: {error}", assignment.0));
        }
        let reason = match error.is_storage_fault() {
            true => STORAGE_FAULT.to_string(),
            false => "the server failed (details in its log)".to_string(),
        };
        Event::ServerFault { provider, assignment, reason }
    }

    /// Refuses a provider's results: tells it why (a typed `refused` event) and fails the
    /// attempt, which is retried elsewhere and counted against the provider's account.
    async fn refuse_result(
        &self,
        provider: ProviderId,
        reason: String,
        fail: impl FnOnce(String) -> Option<Event>,
    ) -> Option<Event> {
        self.metrics.failed("refused_result");
        tracing::warn!(%provider, %reason, "results refused");
        let body = ErrorBody { code: ErrorCode::BadRequest, message: format!("results refused: {reason}"), op: None };
        self.outbox.to_provider(provider, EVENT_REFUSED, &body).await;
        fail(reason)
    }
}

/// Values to store inline, and `(op, length)` of those in the blob store.
type InlineAndFiles = (Vec<(OpId, Value)>, Vec<(OpId, u64)>);

/// Whom `error` with a provider's result file is to blame on.
fn blame(provider: ProviderId, file: &FileValue, error: Error) -> Blame {
    if error.is_storage_fault() {
        return Blame::Server(error);
    }
    tracing::warn!(%provider, file = %file.name, cause = %error, "unusable result file");
    Blame::Provider(format!("result file of {}: {error}", file.op))
}

/// Who a result file that cannot be stored is to blame on.
pub(super) enum Blame {
    /// It does not hold what was announced or expected: refused, counted against the provider.
    Provider(String),
    /// The server's storage failed moving it into place.
    Server(Error),
}
