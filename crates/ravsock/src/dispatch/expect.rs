//! What a provider's answer must look like. When a subgraph is handed out, the dtype and shape
//! of each output are inferred from the inputs sent (`ravexec::infer`, the kernels' own rules);
//! when the answer comes back, an output of another dtype or shape is refused before anything
//! is stored, and the provider is told why. A wrong *value* of the right shape is the
//! verification issue's to catch (redundant computation); this catches every answer that
//! cannot be what the op makes.

use super::task::Dispatcher;
use crate::db::StoredValue;
use crate::scheduler::AssignmentId;
use ravexec::infer::{TensorMeta, infer};
use ravproto::provider::AssignedOp;
use ravproto::{GraphId, OpId, Value};
use std::collections::HashMap;

/// Outputs of an assignment whose dtype and shape are known, by op.
pub(super) type Expected = HashMap<OpId, TensorMeta>;

/// The dtype and shape of a value, when it is one tensor.
pub(super) fn meta_of(value: &Value) -> Option<TensorMeta> {
    match value {
        Value::Tensor(data) => Some(TensorMeta { dtype: data.dtype(), shape: data.shape().to_vec() }),
        Value::List(_) => None,
    }
}

/// Refuses an answer for `op` that is not a tensor of the expected dtype and shape (`got`:
/// what the answer holds, `None` for a list).
pub(super) fn check(expected: &Expected, op: OpId, got: Option<&TensorMeta>) -> Result<(), String> {
    match (expected.get(&op), got) {
        (None, _) => Ok(()),
        (Some(want), Some(got)) if want == got => Ok(()),
        (Some(want), Some(got)) => Err(format!("the result of {op} is {got}; the op makes {want}")),
        (Some(want), None) => Err(format!("the result of {op} is a list; the op makes {want}")),
    }
}

impl Dispatcher {
    /// Infers the outputs of an assignment of `graph` from the values it is sent, and keeps
    /// them until the answer comes.
    pub(super) fn expect(
        &mut self,
        graph: GraphId,
        assignment: AssignmentId,
        ops: &[AssignedOp],
        inputs: &[(OpId, StoredValue)],
        outputs: &[OpId],
    ) {
        let mut known: HashMap<OpId, Option<TensorMeta>> = inputs
            .iter()
            .map(|(op, value)| {
                let meta = match value {
                    StoredValue::Inline(value) => meta_of(value),
                    StoredValue::File { .. } => {
                        self.bulk.blob_tensor(*op).map(|(dtype, shape)| TensorMeta { dtype, shape })
                    }
                };
                (*op, meta)
            })
            .collect();
        for op in ops {
            let metas: Vec<Option<TensorMeta>> =
                op.inputs.iter().map(|input| known.get(input).cloned().flatten()).collect();
            known.insert(op.id, infer(&op.operation, &metas));
        }
        let expected: Expected =
            outputs.iter().filter_map(|op| known.get(op).cloned().flatten().map(|meta| (*op, meta))).collect();
        if let Some(run) = self.runs.get_mut(graph) {
            run.expected.insert(assignment, expected);
        }
    }
}
