//! Computing one assignment: the ops in order, on the `ravexec` kernels.
//!
//! Port of ravpy's `compute_locally` (§4.3) without its zip/pickle round trip: inputs arrive as
//! values in the assignment frame, intermediates stay in memory, and only the requested
//! outputs go back.
//!
//! Training ops (layers, losses, `start_backward_marker`) run in the graph's
//! `ravexec::train::Session`, which stays in this provider's memory between assignments of the
//! graph, as the original kept its torch modules: the next training step finds its weights
//! here. Other graphs use a throwaway session.
//!
//! Each training assignment names the state version it starts from; the provider answers with
//! the checkpoint after it, which the server keeps, so another provider can take over (the
//! server then sends the checkpoint along). A failed op rolls the session back, and the state
//! before the last assignment is kept, so a retry never applies a step twice.

use ravexec::run::{PlannedOp, RunError};
use ravexec::train::Session;
use ravexec::{MemoryBudget, TensorValue};
use ravproto::checkpoint::Checkpoint;
use ravproto::frame::Frame;
use ravproto::provider::{AssignHeader, OpFailedReport, OverBudget, ResultHeader, SUBGRAPH, TrainingState};
use ravproto::{GraphId, OpId};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A graph's training state on this provider.
#[derive(Debug, Default)]
pub struct GraphSession {
    /// The state after the last assignment computed here.
    current: Session,
    /// The state before it: a retry of that assignment (its result was lost or withdrawn)
    /// starts from here, so an optimizer step is never applied twice.
    before: Option<Session>,
}

/// Training sessions of the graphs this provider has trained, by graph.
pub type Sessions = Mutex<BTreeMap<GraphId, GraphSession>>;

/// What an assignment computed: the result frame, and for a training assignment the
/// checkpoint after it (attached once the outputs are placed).
pub type Computed = (Frame<ResultHeader>, Option<Checkpoint>);

/// Puts `entry` at the state the assignment starts from: the checkpoint sent along, the
/// current state, the state before the last assignment, or a fresh one for version 0.
fn start_from(entry: &mut GraphSession, state: &TrainingState, checkpoint: Option<&Checkpoint>) -> Result<(), String> {
    if let Some(checkpoint) = checkpoint {
        if checkpoint.version != state.version {
            return Err(format!("checkpoint version {} sent for state version {}", checkpoint.version, state.version));
        }
        entry.current = Session::from_checkpoint(checkpoint).map_err(|e| format!("unusable checkpoint: {e}"))?;
        entry.before = None;
    } else if entry.current.version == state.version {
    } else if let Some(before) = entry.before.take_if(|b| b.version == state.version) {
        entry.current = before;
    } else if state.version == 0 {
        *entry = GraphSession::default();
    } else {
        return Err(format!(
            "this provider holds training state version {}, not {}; the server must send the checkpoint",
            entry.current.version, state.version
        ));
    }
    Ok(())
}

/// Runs an assignment; the result, or the report of the op that failed. An op that could take
/// more than `budget` is refused before it allocates.
pub fn run(
    frame: Frame<AssignHeader>,
    checkpoint: Option<Checkpoint>,
    sessions: &Sessions,
    budget: MemoryBudget,
) -> Result<Computed, OpFailedReport> {
    let Frame { header, values } = frame;
    let state = header.state.clone();
    let training = state.is_some() || header.ops.iter().any(|op| op.operation.kind().trains());
    let mut throwaway = GraphSession::default();
    // Held for the whole assignment: a graph's training steps run one after another.
    let mut guard = training.then(|| sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let entry = match guard.as_mut() {
        Some(sessions) => sessions.entry(header.graph).or_default(),
        None => &mut throwaway,
    };
    if let Some(state) = &state {
        start_from(entry, state, checkpoint.as_ref()).map_err(|reason| OpFailedReport {
            assignment: header.assignment,
            op_id: header.ops.first().map_or(OpId(0), |op| op.id),
            operator: SUBGRAPH.into(),
            reason,
            // Another attempt, with the checkpoint, will work.
            retryable: true,
            over_budget: None,
        })?;
    }
    // Restored if an op fails: a retry must find the state this assignment started from.
    let snapshot = state.is_some().then(|| entry.current.clone());
    let outcome = compute(&header, values, &mut entry.current, budget);
    match (outcome, state, snapshot) {
        (Ok(frame), Some(state), Some(snapshot)) => {
            entry.current.version = state.version + 1;
            entry.before = Some(snapshot);
            Ok((frame, Some(entry.current.checkpoint())))
        }
        (Ok(frame), _, _) => Ok((frame, None)),
        (Err(report), _, snapshot) => {
            if let Some(snapshot) = snapshot {
                entry.current = snapshot;
            }
            Err(report)
        }
    }
}

fn compute(
    header: &AssignHeader,
    values: Vec<ravproto::Value>,
    session: &mut Session,
    budget: MemoryBudget,
) -> Result<Frame<ResultHeader>, OpFailedReport> {
    let planned: Vec<PlannedOp<'_>> = header
        .ops
        .iter()
        .map(|op| PlannedOp { id: op.id, operation: &op.operation, inputs: &op.inputs, constant: None })
        .collect();
    // Values are lent to ops, not copied, and the outputs leave as they are: a big tensor
    // exists once on this provider.
    let mut store = ravexec::run::store_for(&planned, header.outputs.iter().copied());
    for (id, value) in header.inputs.iter().zip(values) {
        store.insert(*id, TensorValue::from_wire_owned(value));
    }
    let failure = |op: OpId, reason: String, retryable: bool| OpFailedReport {
        assignment: header.assignment,
        op_id: op,
        operator: header
            .ops
            .iter()
            .find(|assigned| assigned.id == op)
            .map_or(SUBGRAPH, |assigned| assigned.operation.kind().short_name())
            .to_string(),
        reason,
        retryable,
        over_budget: None,
    };
    ravexec::run::run_ops(&planned, &mut store, session, budget).map_err(|error| match error {
        // A missing input is the server's mistake, not the op's: another attempt may work.
        RunError::MissingInput { op } => failure(op, "an input value was not sent".into(), true),
        RunError::Exec { op, error } => failure(op, error.to_string(), false),
        // A provider with a bigger budget may compute it: the server decides.
        RunError::OverBudget { op, operator, needed, budget } => OpFailedReport {
            over_budget: Some(OverBudget {
                needed_bytes: u64::try_from(needed).unwrap_or(u64::MAX),
                budget_bytes: budget,
            }),
            ..failure(
                op,
                format!(
                    "`{operator}` needs up to {needed} bytes, over this provider's memory budget of {budget} bytes"
                ),
                true,
            )
        },
    })?;
    let outputs = header.outputs.clone();
    let mut out = Vec::with_capacity(outputs.len());
    for id in &outputs {
        let value = store.take(*id).ok_or_else(|| OpFailedReport {
            assignment: header.assignment,
            op_id: *id,
            operator: SUBGRAPH.into(),
            reason: "an output is not an op of this assignment".into(),
            retryable: true,
            over_budget: None,
        })?;
        out.push(value.into_wire());
    }
    Ok(Frame {
        header: ResultHeader { assignment: header.assignment, outputs, files: vec![], checkpoint: false },
        values: out,
    })
}

#[cfg(test)]
mod tests {
    //! The training state across assignments: retries start from the same state, a provider
    //! without the state refuses instead of guessing, a checkpoint restores it.

    use super::*;
    use ravproto::provider::AssignedOp;
    use ravproto::{TensorData, Value};

    fn training_frame(version: u64) -> Frame<AssignHeader> {
        let op = |id: u64, json: serde_json::Value, inputs: &[u64]| AssignedOp {
            id: OpId(id),
            operation: serde_json::from_value(json).expect("valid op"),
            inputs: inputs.iter().map(|&i| OpId(i)).collect(),
        };
        let ops = vec![
            op(
                3,
                serde_json::json!({"operator": "forward_pass_dense", "params": {"n_units": 1,
                "optimizer": {"name": "sgd", "lr": 0.1}}}),
                &[1],
            ),
            op(4, serde_json::json!({"operator": "square_loss", "params": {}}), &[2, 3]),
            op(5, serde_json::json!({"operator": "start_backward_marker", "params": {}}), &[4]),
        ];
        let x = Value::Tensor(TensorData::from_f64(vec![2, 2], &[1.0, 2.0, -1.0, 0.5]).unwrap());
        let y = Value::Tensor(TensorData::from_f64(vec![2, 1], &[1.0, 0.0]).unwrap());
        Frame {
            header: AssignHeader {
                assignment: version,
                graph: GraphId(1),
                ops,
                inputs: vec![OpId(1), OpId(2)],
                outputs: vec![OpId(4)],
                files: vec![],
                state: Some(TrainingState { version, checkpoint: false }),
            },
            values: vec![x, y],
        }
    }

    fn loss(computed: &Computed) -> Value {
        computed.0.values[0].clone()
    }

    #[test]
    fn a_retried_step_starts_from_the_same_state_and_a_missing_state_is_refused() {
        let sessions = Sessions::default();
        let first = run(training_frame(0), None, &sessions, MemoryBudget::UNLIMITED).expect("step 1");
        let checkpoint = first.1.clone().expect("a training assignment returns its checkpoint");
        assert_eq!(checkpoint.version, 1);
        // The result was lost: the server sends step 1 again; the step is not applied twice.
        let retried = run(training_frame(0), None, &sessions, MemoryBudget::UNLIMITED).expect("step 1 again");
        assert_eq!(loss(&retried), loss(&first));
        assert_eq!(retried.1, first.1);
        let second = run(training_frame(1), None, &sessions, MemoryBudget::UNLIMITED).expect("step 2");
        assert_ne!(loss(&second), loss(&first), "the weights moved");

        // Another provider without the state refuses step 3, retryably...
        let other = Sessions::default();
        let refused =
            run(training_frame(2), None, &other, MemoryBudget::UNLIMITED).expect_err("no state, no checkpoint");
        assert!(refused.retryable && refused.reason.contains("checkpoint"), "{}", refused.reason);
        // ...and with step 2's checkpoint computes what the holder computes.
        let here = run(training_frame(2), second.1.clone(), &other, MemoryBudget::UNLIMITED)
            .expect("step 3 from the checkpoint");
        let holder = run(training_frame(2), None, &sessions, MemoryBudget::UNLIMITED).expect("step 3 on the holder");
        assert_eq!(loss(&here), loss(&holder));
        assert_eq!(here.1, holder.1);
    }
}
