//! Running ops in order: the loop that the `LocalExecutor` (a whole graph, in the requester's
//! process) and the provider (one assignment) share, so that "the grid computes what the local
//! run computes" rests on one piece of code.
//!
//! Each op borrows its inputs, and the values its params name, from a [`ValueStore`], runs in
//! the training [`Session`] (which hands every op that keeps no training state to its kernel),
//! gives its inputs back and leaves its value in the store. Constants of the graph are stored
//! where they stand in the order, so the store holds only what is still to be read.

use crate::ExecError;
use crate::budget::{MemoryBudget, op_bytes};
use crate::store::{ValueStore, reads};
use crate::tensor::{Tensor, TensorValue};
use crate::train::Session;
use ravproto::{OpId, OpKind, Operation};

/// One op of a run.
#[derive(Clone, Copy, Debug)]
pub struct PlannedOp<'a> {
    /// Its id (the requester's in the local run, the server's on a provider).
    pub id: OpId,
    /// Operator and params.
    pub operation: &'a Operation,
    /// Its inputs, in order.
    pub inputs: &'a [OpId],
    /// The value of a constant (an input node the requester built): stored, not computed.
    pub constant: Option<&'a Tensor>,
}

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RunError {
    /// An input of the op was not in the store: the caller's mistake (an input that was never
    /// sent), not the op's.
    #[error("an input value of {op} was not there")]
    MissingInput {
        /// The op that could not start.
        op: OpId,
    },
    /// A kernel refused the op's inputs.
    #[error("{op} failed: {error}")]
    Exec {
        /// The failing op.
        op: OpId,
        /// The kernel's error (the operator and the reason).
        error: ExecError,
    },
    /// The op would take more memory than the budget: refused before its kernel allocated
    /// anything. A machine with a bigger budget may run it.
    #[error("{op} (`{operator}`) needs up to {needed} bytes, over this machine's memory budget of {budget} bytes")]
    OverBudget {
        /// The refused op.
        op: OpId,
        /// Its operator.
        operator: OpKind,
        /// The bound of what it would take ([`crate::budget::op_bytes`]).
        needed: u128,
        /// The budget it exceeds.
        budget: u64,
    },
}

/// A store for a run of `ops` after which the values of `kept` are taken out (outputs of an
/// assignment, persisted results): each is read once more at the end.
pub fn store_for(ops: &[PlannedOp<'_>], kept: impl IntoIterator<Item = OpId>) -> ValueStore {
    ValueStore::new(ops.iter().flat_map(|op| reads(op.inputs, op.operation)).chain(kept))
}

/// Runs `ops` in order over `store` (which holds the values sent along with them) and
/// `session` (the graph's training state). An op whose bound ([`op_bytes`]) exceeds `budget`
/// stops the run before its kernel allocates.
pub fn run_ops(
    ops: &[PlannedOp<'_>],
    store: &mut ValueStore,
    session: &mut Session,
    budget: MemoryBudget,
) -> Result<(), RunError> {
    for op in ops {
        let value = match op.constant {
            Some(constant) => TensorValue::Tensor(constant.clone()),
            None => {
                let ids = reads(op.inputs, op.operation);
                let inputs = store.lend(&ids).ok_or(RunError::MissingInput { op: op.id })?;
                let needed = op_bytes(op.operation, &inputs);
                if !budget.holds(needed) {
                    store.give_back(&ids, inputs, false);
                    let operator = op.operation.kind();
                    return Err(RunError::OverBudget { op: op.id, operator, needed, budget: budget.bytes });
                }
                let result = session.run(op.id, op.operation, op.inputs, &inputs);
                store.give_back(&ids, inputs, true);
                result.map_err(|error| RunError::Exec { op: op.id, error })?
            }
        };
        store.insert(op.id, value);
    }
    Ok(())
}
