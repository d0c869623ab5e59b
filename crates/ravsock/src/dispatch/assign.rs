//! Handing a subgraph to a provider: its ops, its inputs (from the task's memory first, the
//! database for the rest), inline in the frame while its budget lasts and through the
//! provider's ravftp home beyond it, and for a training subgraph the state it starts from.

use super::task::Dispatcher;
use crate::bulk::provider_user;
use crate::db::StoredValue;
use crate::error::{Error, Result};
use crate::scheduler::Assignment;
use bytes::Bytes;
use ravproto::frame::{Frame, stuff};
use ravproto::messages::FileValue;
use ravproto::provider::{AssignHeader, EVENT_ASSIGN, InlineBudget, TrainingState};
use ravproto::{OpId, Value, files};

/// An assignment's input values as they travel: inline in the frame, or as files.
#[derive(Default)]
struct Inputs {
    ids: Vec<OpId>,
    values: Vec<Value>,
    files: Vec<FileValue>,
}

impl Dispatcher {
    /// Sends `assignment` to its provider.
    pub(super) async fn assign(&mut self, assignment: Assignment) -> Result<()> {
        let Some(payload) = self.runs.get(assignment.graph).map(|run| run.payload.clone()) else {
            return Err(Error::Internal(format!("no payload for {}", assignment.graph)));
        };
        let ops: Vec<_> = assignment.ops.iter().filter_map(|id| payload.get(id).cloned()).collect();
        let stored = self.stored_inputs(&assignment).await?;
        self.expect(assignment.graph, assignment.id, &ops, &stored, &assignment.outputs);
        // A failure to place an input is the server's (`perform` hands the subgraph back).
        let inputs = self.place_inputs(&assignment, stored).map_err(|(op, error)| {
            tracing::error!(%op, cause = %error, "cannot place an input for a provider");
            error
        })?;
        let header = AssignHeader {
            assignment: assignment.id.0,
            graph: assignment.graph,
            ops,
            inputs: inputs.ids,
            outputs: assignment.outputs.clone(),
            files: inputs.files,
            state: None,
        };
        let mut frame = Frame { header, values: inputs.values };
        let track = self.runs.get(assignment.graph).and_then(|run| run.training);
        if assignment.trains
            && let Some(track) = track
        {
            frame.header.state = Some(TrainingState { version: track.version, checkpoint: false });
            if track.version > 0 && track.synced != Some(assignment.provider) {
                let checkpoint = self.db.checkpoint(assignment.graph).await?;
                tracing::info!(graph = %assignment.graph, provider = %assignment.provider, version = checkpoint.version, "sending the training checkpoint");
                frame.attach_checkpoint(&checkpoint);
            }
        }
        // Stuffed: the Rust client corrupts binary messages containing 0x1e (see `stuff`).
        let message = Bytes::from(stuff(&frame.encode()));
        self.outbox.to_provider(assignment.provider, EVENT_ASSIGN, &message).await;
        let account = self.scheduler.account_of(assignment.provider);
        self.outbox.ops(assignment.graph, &assignment.ops, false, account);
        Ok(())
    }

    /// The assignment's inputs: from memory where the task kept them, the rest in one read.
    async fn stored_inputs(&self, assignment: &Assignment) -> Result<Vec<(OpId, StoredValue)>> {
        let mut stored = Vec::with_capacity(assignment.external_inputs.len());
        let mut unknown = Vec::new();
        for op in &assignment.external_inputs {
            match self.runs.value(assignment.graph, *op) {
                Some(value) => stored.push((*op, StoredValue::Inline(value.clone()))),
                None => unknown.push(*op),
            }
        }
        stored.extend(self.db.values(&unknown).await?);
        Ok(stored)
    }

    /// Puts each input inline while the frame's budget lasts, and the others in the provider's
    /// ravftp home (written there, or lent from the blob store); on failure, the input that
    /// could not be placed.
    fn place_inputs(&self, assignment: &Assignment, stored: Vec<(OpId, StoredValue)>) -> Result<Inputs, (OpId, Error)> {
        let user = provider_user(assignment.provider);
        let mut budget = InlineBudget::new(self.bulk.inline_limit());
        let mut inputs = Inputs::default();
        for (op, value) in stored {
            let placed = match value {
                StoredValue::Inline(value) if budget.admit(value.encoded_len()) => {
                    inputs.ids.push(op);
                    inputs.values.push(value);
                    continue;
                }
                StoredValue::Inline(value) => {
                    let name = files::assignment_input(assignment.id.0, op);
                    self.bulk.place(&value, &user, &name).map(|len| (name, len))
                }
                StoredValue::File { .. } => {
                    let name = files::assignment_input(assignment.id.0, op);
                    self.bulk.lend(op, &user, &name).map(|len| (name, len))
                }
            };
            let (name, len) = placed.map_err(|error| (op, error))?;
            self.metrics.ftp("to_providers", len);
            inputs.files.push(FileValue { op, name, len });
        }
        Ok(inputs)
    }
}
