//! In-process execution of a whole graph on the `ravexec` kernels.
//!
//! This is the reference the distributed path is compared against: the same ops, the same
//! kernels, no network. Intermediate values are dropped as soon as their last consumer has run,
//! so memory stays near the live frontier of the graph. Training ops (layers, losses and
//! `start_backward_marker`) run in one `ravexec::train::Session` per run, which keeps the
//! layers' weights between batches.

use crate::error::{Error, Result};
use crate::graph::Graph;
use ndarray::ArrayD;
use ravexec::run::{PlannedOp, RunError};
use ravexec::train::Session;
use ravexec::{Elem, MemoryBudget, Tensor, TensorValue};
use std::collections::BTreeMap;

/// Runs graphs in this process.
#[derive(Clone, Debug)]
pub struct LocalExecutor {
    budget: MemoryBudget,
}

impl Default for LocalExecutor {
    /// No memory budget: the graph is the requester's own, run in its own process.
    fn default() -> LocalExecutor {
        LocalExecutor { budget: MemoryBudget::UNLIMITED }
    }
}

/// Persisted results of a run, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    values: BTreeMap<String, TensorValue>,
}

impl Results {
    /// Results made of these values.
    pub(crate) fn from_values(values: BTreeMap<String, TensorValue>) -> Results {
        Results { values }
    }

    /// The value persisted as `name`.
    pub fn get(&self, name: &str) -> Result<&TensorValue> {
        self.values.get(name).ok_or_else(|| Error::UnknownResult(name.to_string()))
    }

    /// The tensor persisted as `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.get(name)?.as_tensor().ok_or_else(|| Error::NotATensor(name.to_string()))
    }

    /// The tensor persisted as `name`, cast to `T` (like NumPy's `astype`).
    pub fn array<T: Elem>(&self, name: &str) -> Result<ArrayD<T>> {
        let tensor = self.tensor(name)?.cast(T::DTYPE);
        Ok(T::unwrap(&tensor).expect("cast to T").clone())
    }

    /// Names of every persisted result.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

impl LocalExecutor {
    /// An executor that refuses an op which could take more than `budget` (its result and
    /// its kernel's working memory, bounded before anything is allocated), as providers do.
    pub fn with_memory_budget(budget: MemoryBudget) -> LocalExecutor {
        LocalExecutor { budget }
    }

    /// Validates and runs `graph`, returning its persisted results.
    pub fn run(&self, graph: &Graph) -> Result<Results> {
        graph.validate()?;
        let nodes = graph.nodes();
        let persisted = graph.persisted();
        let planned: Vec<PlannedOp<'_>> = nodes
            .iter()
            .map(|node| PlannedOp {
                id: node.id,
                operation: &node.operation,
                inputs: &node.inputs,
                constant: node.value.as_deref(),
            })
            .collect();
        // Each persisted name reads its op's value once more, at the end.
        let mut store = ravexec::run::store_for(&planned, persisted.values().copied());
        // Layer weights, optimizer state and the forward tape of the training ops.
        let mut session = Session::new();
        ravexec::run::run_ops(&planned, &mut store, &mut session, self.budget).map_err(|error| match error {
            RunError::Exec { op, error } => Error::Exec { op_id: op, source: error },
            RunError::OverBudget { op, operator, needed, budget } => {
                Error::OverBudget { op, operator: operator.short_name(), needed, budget }
            }
            // `validate` checked that every input is an earlier op.
            RunError::MissingInput { op } => Error::Build {
                op,
                operator: nodes
                    .iter()
                    .find(|node| node.id == op)
                    .map_or("unknown", |node| node.operation.kind().short_name()),
                reason: "an input was not computed before this op".into(),
            },
        })?;
        let mut results = Results::default();
        for (name, id) in persisted {
            let value = store.take(id).expect("every persisted op was computed");
            results.values.insert(name, value);
        }
        Ok(results)
    }
}
