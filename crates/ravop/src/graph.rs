//! The lazy op graph: [`Graph`] records nodes, [`Op`] is a handle to one node.
//!
//! Port of ravop's op recording (§2.4 of the reference) without its global singleton: any
//! number of graphs can be built at once, ids are per graph, and params are typed values
//! instead of extra `lin` ops and JSON strings.

use crate::error::{Error, Result};
use crate::values::IntoTensor;
use ravexec::Tensor;
use ravproto::messages::{GraphMeta, OpRecord, OpRef};
use ravproto::ops::{ForwardPassParams, LinParams, ModelParams};
use ravproto::{OpId, Operation};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

/// One recorded op.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Id within the graph (creation order, so inputs always have smaller ids).
    pub id: OpId,
    /// Operator and params.
    pub operation: Operation,
    /// Positional inputs.
    pub inputs: Vec<OpId>,
    /// The constant value of an input node (`lin`, `pytorch_model`), shared by every copy of
    /// the node (a big array is never copied to be uploaded or run).
    pub value: Option<Arc<Tensor>>,
}

#[derive(Default)]
struct GraphState {
    meta: GraphMeta,
    nodes: Vec<Node>,
    persisted: BTreeMap<String, OpId>,
    errors: Vec<Error>,
}

/// A graph under construction. Cloning gives another handle to the same graph.
#[derive(Clone, Default)]
pub struct Graph {
    state: Arc<Mutex<GraphState>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Graph").field("name", &state.meta.name).field("ops", &state.nodes.len()).finish()
    }
}

/// A handle to one op of a graph. Cheap to clone.
#[derive(Clone)]
pub struct Op {
    pub(crate) graph: Graph,
    pub(crate) id: OpId,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Op({})", self.id)
    }
}

impl Graph {
    /// A new distributed graph with this name.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph::with_meta(GraphMeta { name: name.into(), ..GraphMeta::default() })
    }

    /// A new graph with full metadata (approach, rules, requirements).
    pub fn with_meta(meta: GraphMeta) -> Graph {
        Graph { state: Arc::new(Mutex::new(GraphState { meta, ..GraphState::default() })) }
    }

    fn lock(&self) -> MutexGuard<'_, GraphState> {
        // A panic while holding the lock cannot leave the state half-written (every update
        // is one push), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn same(&self, other: &Graph) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// The graph's metadata.
    pub fn meta(&self) -> GraphMeta {
        self.lock().meta.clone()
    }

    /// Replaces the graph's metadata.
    pub fn set_meta(&self, meta: GraphMeta) {
        self.lock().meta = meta;
    }

    /// Number of recorded ops.
    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    /// Whether no op has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every recorded op, in creation (dependency) order.
    pub fn nodes(&self) -> Vec<Node> {
        self.lock().nodes.clone()
    }

    /// The constant values of the graph's input nodes, shared (not copied).
    pub fn values(&self) -> Vec<(OpId, Arc<Tensor>)> {
        self.lock().nodes.iter().filter_map(|node| Some((node.id, node.value.clone()?))).collect()
    }

    /// Persisted names and their ops.
    pub fn persisted(&self) -> BTreeMap<String, OpId> {
        self.lock().persisted.clone()
    }

    /// A constant tensor (the original's `R.t()`).
    pub fn t(&self, value: impl IntoTensor) -> Op {
        let tensor = value.into_tensor();
        let params = LinParams { dtype: tensor.dtype(), shape: tensor.shape().to_vec() };
        self.push_value(Operation::Lin(params), tensor)
    }

    /// A 0-d constant (the original's `R.Scalar`).
    pub fn scalar(&self, value: impl Into<ravproto::Scalar>) -> Op {
        self.t(Tensor::from_scalar(value.into()))
    }

    /// `1e-7`, the original's `R.epsilon()`.
    pub fn epsilon(&self) -> Op {
        self.scalar(1e-7)
    }

    /// `1.0`.
    pub fn one(&self) -> Op {
        self.scalar(1.0)
    }

    /// `-1.0`.
    pub fn minus_one(&self) -> Op {
        self.scalar(-1.0)
    }

    /// Positive infinity.
    pub fn inf(&self) -> Op {
        self.scalar(f64::INFINITY)
    }

    /// π.
    pub fn pi(&self) -> Op {
        self.scalar(std::f64::consts::PI)
    }

    /// A model file node (ONNX bytes); the original's `R.model()`.
    pub fn model(&self, onnx_bytes: Vec<u8>) -> Op {
        self.push_value(Operation::PytorchModel(ModelParams::default()), onnx_bytes.into_tensor())
    }

    fn push_value(&self, operation: Operation, value: Tensor) -> Op {
        let mut state = self.lock();
        let id = OpId(state.nodes.len() as u64);
        state.nodes.push(Node { id, operation, inputs: vec![], value: Some(Arc::new(value)) });
        Op { graph: self.clone(), id }
    }

    /// Records an op on `inputs`. Errors (arity, ops of another graph, bad references) are
    /// kept and reported by [`Graph::validate`].
    pub fn push(&self, operation: Operation, inputs: &[&Op]) -> Op {
        let mut state = self.lock();
        let id = OpId(state.nodes.len() as u64);
        let kind = operation.kind();
        let build_error = |reason: String| Error::Build { op: id, operator: kind.short_name(), reason };
        if !kind.arity().accepts(inputs.len()) {
            let error = build_error(format!("takes {} inputs, got {}", kind.arity(), inputs.len()));
            state.errors.push(error);
        }
        if let Some(foreign) = inputs.iter().find(|op| !op.graph.same(self)) {
            let error = build_error(format!("input {} belongs to another graph", foreign.id));
            state.errors.push(error);
        }
        for referenced in operation.param_refs() {
            if referenced >= id {
                let error = build_error(format!("params refer to {referenced}, which is not an earlier op"));
                state.errors.push(error);
            }
        }
        for model in operation.value_refs() {
            let is_model =
                state.nodes.get(model.0 as usize).is_some_and(|n| matches!(n.operation, Operation::PytorchModel(_)));
            if !is_model {
                let error = build_error(format!("`model` {model} is not a model node (Graph::model)"));
                state.errors.push(error);
            }
        }
        state.nodes.push(Node { id, operation, inputs: inputs.iter().map(|op| op.id).collect(), value: None });
        Op { graph: self.clone(), id }
    }

    pub(crate) fn record_error(&self, op: OpId, operator: &'static str, reason: String) {
        self.lock().errors.push(Error::Build { op, operator, reason });
    }

    pub(crate) fn persist(&self, op: OpId, name: String) {
        let mut state = self.lock();
        if let Some(existing) = state.persisted.get(&name)
            && *existing != op
        {
            let operator = state.nodes[op.0 as usize].operation.kind().short_name();
            let reason = format!("persist name `{name}` is already used by {existing}");
            state.errors.push(Error::Build { op, operator, reason });
            return;
        }
        state.persisted.insert(name, op);
    }

    /// Every mistake recorded while building; `Ok` when there is none.
    pub fn validate(&self) -> Result<()> {
        match self.lock().errors.first() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// The ops as wire records for upload, with the client's ids as local references.
    pub fn to_records(&self) -> Vec<OpRecord> {
        self.records(|_| true)
    }

    /// [`Graph::to_records`], with the values of the nodes `inline` refuses left out (the
    /// client sends those through ravftp and names the files).
    pub(crate) fn records(&self, inline: impl Fn(&Node) -> bool) -> Vec<OpRecord> {
        let state = self.lock();
        let names: BTreeMap<OpId, &String> = state.persisted.iter().map(|(name, id)| (*id, name)).collect();
        state
            .nodes
            .iter()
            .map(|node| OpRecord {
                local_id: node.id.0,
                operation: node.operation.clone(),
                inputs: node.inputs.iter().map(|id| OpRef::Local(id.0)).collect(),
                persist: names.get(&node.id).map(|name| (*name).clone()),
                value: node.value.as_ref().filter(|_| inline(node)).map(|t| ravproto::Value::Tensor(t.to_data())),
                value_file: None,
            })
            .collect()
    }

    /// A readable listing of the graph, one op per line (used by snapshot tests and logs).
    pub fn dump(&self) -> String {
        let state = self.lock();
        let names: BTreeMap<OpId, &String> = state.persisted.iter().map(|(name, id)| (*id, name)).collect();
        let mut out = String::new();
        for node in &state.nodes {
            let inputs: Vec<String> = node.inputs.iter().map(|id| id.to_string()).collect();
            let params = node.operation.params_json();
            let _ = write!(out, "{} = {}({})", node.id, node.operation.kind(), inputs.join(", "));
            if params.as_object().is_some_and(|p| !p.is_empty()) && node.value.is_none() {
                let _ = write!(out, " {params}");
            }
            if let Some(value) = &node.value {
                let _ = write!(out, " {}{:?}", value.dtype(), value.shape());
            }
            if let Some(name) = names.get(&node.id) {
                let _ = write!(out, " persist={name}");
            }
            out.push('\n');
        }
        out
    }
}

impl Op {
    /// The op's id within its graph.
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The graph this op belongs to.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Keeps this op's result under `name` so it can be fetched after execution.
    pub fn persist(&self, name: impl Into<String>) -> Op {
        self.graph.persist(self.id, name.into());
        self.clone()
    }

    /// Runs the ONNX `model` (a [`Graph::model`] node) on this batch: `forward_pass`, inference
    /// only. The batch is converted to the element type the model declares; a model with
    /// several outputs gives a list.
    pub fn infer(&self, model: &Op) -> Op {
        let foreign = !model.graph.same(&self.graph);
        // A foreign model's id means nothing here: it is left out, and the mistake reported.
        let model_ref = (!foreign).then_some(model.id);
        let params =
            ForwardPassParams { model: model_ref, previous_forward_pass: None, optimizer: None, training: false };
        let op = self.apply(Operation::ForwardPass(params), &[]);
        if foreign {
            self.graph.record_error(op.id, "forward_pass", format!("model {} belongs to another graph", model.id));
        }
        op
    }

    /// Records an op with `self` as first input.
    pub fn apply(&self, operation: Operation, others: &[&Op]) -> Op {
        let mut inputs = vec![self];
        inputs.extend_from_slice(others);
        self.graph.push(operation, &inputs)
    }
}
