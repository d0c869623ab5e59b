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
use ravexec::train::Session;
use ravexec::{Elem, Tensor, TensorValue, ValueStore};
use std::collections::BTreeMap;

/// Runs graphs in this process.
#[derive(Clone, Debug, Default)]
pub struct LocalExecutor {}

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
    /// Validates and runs `graph`, returning its persisted results.
    pub fn run(&self, graph: &Graph) -> Result<Results> {
        graph.validate()?;
        let nodes = graph.nodes();
        let persisted = graph.persisted();
        // Each persisted name reads its op's value once more, at the end.
        let reads = |node: &crate::graph::Node| ravexec::store::reads(&node.inputs, &node.operation);
        let mut store = ValueStore::new(nodes.iter().flat_map(reads).chain(persisted.values().copied()));
        let mut results = Results::default();
        // Layer weights, optimizer state and the forward tape of the training ops.
        let mut session = Session::new();
        for node in &nodes {
            let value = match &node.value {
                Some(constant) => TensorValue::Tensor(Tensor::clone(constant)),
                None => {
                    let ids = reads(node);
                    let inputs = store.lend(&ids).expect("inputs precede their consumers");
                    let result = session.run(node.id, &node.operation, &node.inputs, &inputs);
                    store.give_back(&ids, inputs, true);
                    result.map_err(|source| Error::Exec { op_id: node.id, source })?
                }
            };
            store.insert(node.id, value);
        }
        for (name, id) in persisted {
            let value = store.take(id).expect("every persisted op was computed");
            results.values.insert(name, value);
        }
        Ok(results)
    }
}
