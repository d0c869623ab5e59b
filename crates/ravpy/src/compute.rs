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

use ravexec::TensorValue;
use ravexec::train::Session;
use ravproto::provider::{AssignHeader, Frame, OpFailedReport, ResultHeader};
use ravproto::{GraphId, OpId};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Training sessions of the graphs this provider has trained, by graph.
pub type Sessions = Mutex<BTreeMap<GraphId, Session>>;

/// Runs an assignment; the result frame, or the report of the op that failed.
pub fn run(frame: Frame<AssignHeader>, sessions: &Sessions) -> Result<Frame<ResultHeader>, OpFailedReport> {
    let Frame { header, values } = frame;
    let training = header.ops.iter().any(|op| Session::is_stateful(&op.operation));
    let mut throwaway = Session::new();
    // Held for the whole assignment: a graph's training steps run one after another.
    let mut guard = training.then(|| sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let session = match guard.as_mut() {
        Some(sessions) => sessions.entry(header.graph).or_default(),
        None => &mut throwaway,
    };
    let mut known: BTreeMap<OpId, TensorValue> =
        header.inputs.iter().copied().zip(values.iter().map(TensorValue::from_wire)).collect();
    for op in &header.ops {
        let failure = |reason: String, retryable: bool| OpFailedReport {
            assignment: header.assignment,
            op_id: op.id,
            operator: op.operation.kind().short_name().to_string(),
            reason,
            retryable,
        };
        let inputs: Vec<TensorValue> = op
            .inputs
            .iter()
            .map(|id| known.get(id).cloned())
            .collect::<Option<_>>()
            // A missing input is the server's mistake, not the op's: another attempt may work.
            .ok_or_else(|| failure("an input value was not sent".into(), true))?;
        let value =
            session.run(op.id, &op.operation, &op.inputs, &inputs).map_err(|e| failure(e.to_string(), false))?;
        known.insert(op.id, value);
    }
    let outputs = header.outputs.clone();
    let mut out = Vec::with_capacity(outputs.len());
    for id in &outputs {
        let value = known.get(id).ok_or_else(|| OpFailedReport {
            assignment: header.assignment,
            op_id: *id,
            operator: "subgraph".into(),
            reason: "an output is not an op of this assignment".into(),
            retryable: true,
        })?;
        out.push(value.to_wire());
    }
    Ok(Frame { header: ResultHeader { assignment: header.assignment, outputs, files: vec![] }, values: out })
}
