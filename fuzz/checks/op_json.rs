//! A requester's op chunk, as ravsock and then a provider read it: the JSON decoder with its
//! typed params, the dtype and shape ravsock infers for each op (`ravexec::infer`, run on
//! every assignment it hands out), and the ops run as a provider runs them, under a memory
//! budget checked before each kernel allocates. Nothing may panic or allocate past the
//! budget (libFuzzer's `-malloc_limit_mb` catches that), and where an op runs, its value must
//! have the dtype and shape ravsock inferred: otherwise an honest provider's answer would be
//! refused.
//!
//! Shared by the fuzz target and the corpus replay test (`crates/ravtest/tests/corpus`).

use ravexec::infer::{TensorMeta, infer};
use ravexec::run::{PlannedOp, RunError, run_ops, store_for};
use ravexec::train::Session;
use ravexec::{MemoryBudget, Tensor, TensorValue};
use ravproto::messages::{OpChunkRequest, OpRef};
use ravproto::{OpId, Operation, Value};
use std::collections::HashMap;

/// What a provider of this fuzz run may hold for one op; libFuzzer's malloc limit is above it.
const BUDGET: u64 = 64 << 20;

/// Panics where the property above does not hold for `data`.
pub(crate) fn check(data: &[u8]) {
    let Ok(chunk) = serde_json::from_slice::<OpChunkRequest>(data) else { return };
    // Ops that refer only to ops of this chunk; constants are `lin` ops with inline tensors.
    let mut metas: HashMap<OpId, Option<TensorMeta>> = HashMap::new();
    let mut ops = Vec::new();
    for record in &chunk.ops {
        let id = OpId(record.local_id);
        let Some(inputs) = record
            .inputs
            .iter()
            .map(|input| match input {
                OpRef::Local(local) if metas.contains_key(&OpId(*local)) => Some(OpId(*local)),
                _ => None,
            })
            .collect::<Option<Vec<OpId>>>()
        else {
            return;
        };
        if metas.contains_key(&id) || record.operation.param_refs().iter().any(|r| !metas.contains_key(r)) {
            return;
        }
        let constant = match (&record.operation, &record.value) {
            (Operation::Lin(_), Some(Value::Tensor(data))) => Some(Tensor::from_data(data)),
            (Operation::Lin(_) | Operation::PytorchModel(_), _) => return,
            (_, Some(_)) => return,
            (_, None) => None,
        };
        // What ravsock expects of the answer (dispatch/expect.rs).
        let meta = match &constant {
            Some(tensor) => Some(TensorMeta::of(tensor)),
            None => {
                let known: Vec<Option<TensorMeta>> = inputs.iter().map(|i| metas[i].clone()).collect();
                infer(&record.operation, &known)
            }
        };
        metas.insert(id, meta);
        ops.push((id, &record.operation, inputs, constant));
    }
    // What a provider computes (ravpy's compute.rs), one op at a time to check each value.
    let planned: Vec<PlannedOp<'_>> = ops
        .iter()
        .map(|(id, operation, inputs, constant)| PlannedOp { id: *id, operation, inputs, constant: constant.as_ref() })
        .collect();
    let all: Vec<OpId> = planned.iter().map(|op| op.id).collect();
    let mut store = store_for(&planned, all.iter().copied());
    let mut session = Session::new();
    for op in &planned {
        match run_ops(std::slice::from_ref(op), &mut store, &mut session, MemoryBudget::bytes(BUDGET)) {
            Ok(()) => {}
            Err(RunError::Exec { .. } | RunError::OverBudget { .. }) => return,
            Err(RunError::MissingInput { op }) => panic!("{op}'s inputs were computed, yet missing"),
        }
        let Some(value) = store.take(op.id) else { panic!("{} ran but left no value", op.id) };
        if let (Some(want), TensorValue::Tensor(tensor)) = (&metas[&op.id], &value) {
            let got = TensorMeta::of(tensor);
            assert_eq!(&got, want, "{:?} computed {got}, ravsock expects {want}", op.operation);
        }
        store.insert(op.id, value);
    }
}
