//! Training: the stateful deep-learning ops (`forward_pass_*`, the losses and
//! `start_backward_marker`) run in a [`Session`] that keeps layer weights, optimizer state and
//! the forward tape between ops.
//!
//! The original kept each layer's torch module in provider memory and let autograd do the
//! rest (§4.3 of the reference). Here:
//!
//! - a layer is created by its first forward op (weights from `initial_*`, or PyTorch's
//!   default uniform initialisation); a later forward op naming it in `previous_forward_pass`
//!   reuses it, so weights are shared across batches;
//! - default weights and unseeded dropout masks draw their seeds from a counter of the
//!   session, in op order: op ids differ between the local executor (the requester's ids) and
//!   providers (the server's), the order of the ops does not, so both build the same weights;
//! - each forward op records what its backward needs on a tape;
//! - `start_backward_marker(loss)` differentiates the loss with respect to its prediction,
//!   walks the tape backwards accumulating weight gradients, then (with `step`) applies each
//!   layer's optimizer and clears the tape. Gradients flow through layer ops only; a value
//!   computed by a plain op (`add`, `matmul`, ...) is a constant to the backward pass.
//!
//! Layers on the tape: dense, activation, dropout, flatten, conv2d, maxpool2d, batch norm,
//! layer norm, embedding, and add/subtract/multiply of two layer outputs.
//!
//! Training computes in `f64` whatever the input dtype (results are returned as `f64`), which
//! keeps the local executor and every provider bit-identical.

use crate::error::{ErrorKind, ExecError, KResult};
use crate::nn::conv::{Conv2d, Window};
use crate::nn::norm::{BatchNorm, NormCache, batchnorm_backward, layernorm_backward, layernorm_forward};
use crate::nn::optim::OptimizerState;
use crate::nn::{activation, dense, dropout, loss, pool};
use crate::tensor::{Tensor, TensorValue};
use ndarray::{Array4, ArrayD, Ix1, Ix2, Ix4, IxDyn};
use ravproto::checkpoint::{BatchNormCheckpoint, Checkpoint, LayerCheckpoint, OptimizerCheckpoint, ParamCheckpoint};
use ravproto::ops::{
    Activation, ActivationParams, BackwardMarkerParams, BatchNormParams, Conv2dParams, CrossEntropyParams, DenseParams,
    Distribution, DropoutParams, EmbeddingParams, FlattenParams, LayerNormParams, MaxPoolParams, OptimizerSpec,
};
use ravproto::{OpId, OpKind, Operation, TensorData};
use std::collections::BTreeMap;

/// One named weight of a layer and its optimizer state.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Current value.
    pub value: ArrayD<f64>,
    /// Gradient accumulated since the last step.
    pub grad: Option<ArrayD<f64>>,
    /// Optimizer state, when the layer trains.
    pub optimizer: Option<OptimizerState<f64>>,
}

/// A layer's state: its weights by name (`w`, `b`, `gamma`, `beta`) and batch-norm statistics.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Layer {
    /// Weights.
    pub params: BTreeMap<String, Param>,
    /// Running statistics of a batch norm.
    pub batchnorm: Option<BatchNorm<f64>>,
}

/// What a forward op's backward needs.
#[derive(Clone, Debug)]
enum Saved {
    Dense { x: ArrayD<f64> },
    Activation { x: ArrayD<f64>, y: ArrayD<f64>, act: Activation },
    Mask { mask: ArrayD<f64> },
    Reshape { shape: Vec<usize> },
    Conv { x: Array4<f64>, conv: Conv2d },
    Pool { shape: [usize; 4], argmax: ndarray::Array4<usize> },
    BatchNorm { cache: NormCache<f64> },
    LayerNorm { cache: NormCache<f64> },
    Embedding { indices: Vec<i64>, vocab: usize },
    Add,
    Subtract,
    Multiply { a: ArrayD<f64>, b: ArrayD<f64> },
    Loss { grad: ArrayD<f64> },
}

#[derive(Clone, Debug)]
struct TapeEntry {
    op: OpId,
    layer: Option<OpId>,
    inputs: Vec<OpId>,
    saved: Saved,
}

/// A training op with its params, as [`crate::plan`] hands it to [`Session::run`]: the ops that
/// read or change the session's state.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stateful<'a> {
    /// `forward_pass_dense`.
    Dense(&'a DenseParams),
    /// `forward_pass_activation`.
    Activation(&'a ActivationParams),
    /// `forward_pass_dropout`.
    Dropout(&'a DropoutParams),
    /// `forward_pass_flatten`.
    Flatten(&'a FlattenParams),
    /// `forward_pass_conv2d`.
    Conv2d(&'a Conv2dParams),
    /// `forward_pass_maxpool2d`.
    Maxpool2d(&'a MaxPoolParams),
    /// `forward_pass_batchnorm1d` and `forward_pass_batchnorm2d`.
    Batchnorm(&'a BatchNormParams),
    /// `forward_pass_layernorm`.
    Layernorm(&'a LayerNormParams),
    /// `forward_pass_embedding`.
    Embedding(&'a EmbeddingParams),
    /// `forward_pass_add`, `forward_pass_subtract`, `forward_pass_multiply`.
    Binary(Binary),
    /// `square_loss` and `cross_entropy_loss`, recorded for the backward pass.
    Loss(TrainingLoss<'a>),
    /// `start_backward_marker`.
    StartBackwardMarker(&'a BackwardMarkerParams),
}

/// A two-input layer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Binary {
    /// a + b.
    Add,
    /// a − b.
    Subtract,
    /// a · b.
    Multiply,
}

/// A loss the backward pass starts from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TrainingLoss<'a> {
    /// Mean squared error.
    Square,
    /// Cross entropy.
    CrossEntropy(&'a CrossEntropyParams),
}

/// The training state of one graph.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// Layers by the id of the forward op that created them.
    layers: BTreeMap<OpId, Layer>,
    /// Forward op → the layer it used.
    layer_of: BTreeMap<OpId, OpId>,
    /// The kind of op that created each layer: a layer is only reused by the same kind.
    layer_kinds: BTreeMap<OpId, ravproto::OpKind>,
    tape: Vec<TapeEntry>,
    /// Seeds handed out so far (see the module docs).
    seeds: u64,
    /// Training assignments completed (see [`Checkpoint::version`]); kept by the caller.
    pub version: u64,
}

fn f64_input(inputs: &[TensorValue], i: usize) -> KResult<ArrayD<f64>> {
    Ok(inputs.get(i).and_then(TensorValue::as_tensor).ok_or(ErrorKind::NotTensor(i))?.to_f64_array())
}

fn data_array(data: &TensorData, what: &str, shape: &[usize]) -> KResult<ArrayD<f64>> {
    let array = Tensor::from_data(data).to_f64_array();
    if array.shape() != shape {
        return Err(ErrorKind::Shape(format!("{what} has shape {:?}, expected {shape:?}", array.shape())));
    }
    Ok(array)
}

/// PyTorch's default initialisation of linear and convolution weights and biases:
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
fn default_init(shape: &[usize], fan_in: usize, seed: u64) -> ArrayD<f64> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    crate::random::sample(shape, Some(seed), &Distribution::Uniform { low: -bound, high: bound })
}

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// The next seed for default weights or a dropout mask.
    fn next_seed(&mut self) -> u64 {
        self.seeds += 1;
        // Spread the small counter over the generator's seed space.
        self.seeds.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// The state to resume from: layers, optimizer state, seed counter and version.
    ///
    /// A forward pass still on the tape (a step not closed by `start_backward_marker`) is not
    /// part of it: the scheduler ends a training subgraph only after a step closes.
    pub fn checkpoint(&self) -> Checkpoint {
        let tensor = |a: &ArrayD<f64>| Tensor::F64(a.clone()).to_data();
        let layers = self
            .layers
            .iter()
            .map(|(id, layer)| LayerCheckpoint {
                id: *id,
                kind: self.layer_kinds.get(id).copied().unwrap_or(ravproto::OpKind::ForwardPassDense),
                params: layer
                    .params
                    .iter()
                    .map(|(name, param)| ParamCheckpoint {
                        name: name.clone(),
                        value: tensor(&param.value),
                        optimizer: param.optimizer.as_ref().map(|o| OptimizerCheckpoint {
                            spec: o.spec.clone(),
                            step: o.step,
                            buffers: o.buffers.iter().map(|(k, v)| (k.clone(), tensor(v))).collect(),
                        }),
                    })
                    .collect(),
                batchnorm: layer.batchnorm.as_ref().map(|bn| BatchNormCheckpoint {
                    momentum: bn.momentum,
                    eps: bn.eps,
                    running_mean: tensor(&bn.running_mean.clone().into_dyn()),
                    running_var: tensor(&bn.running_var.clone().into_dyn()),
                }),
            })
            .collect();
        Checkpoint {
            version: self.version,
            seeds: self.seeds,
            layers,
            layer_of: self.layer_of.iter().map(|(op, layer)| (*op, *layer)).collect(),
        }
    }

    /// A session resuming from `checkpoint`; a typed error when it is inconsistent (a
    /// forward op naming a missing layer, batch-norm statistics of the wrong rank).
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Session, ErrorKind> {
        let array = |t: &TensorData| Tensor::from_data(t).to_f64_array();
        let vector = |t: &TensorData, what: &str| {
            array(t)
                .into_dimensionality::<Ix1>()
                .map_err(|_| ErrorKind::Value(format!("checkpoint: {what} is not a vector")))
        };
        let mut session = Session { version: checkpoint.version, seeds: checkpoint.seeds, ..Session::default() };
        for layer in &checkpoint.layers {
            let mut params = BTreeMap::new();
            for p in &layer.params {
                let optimizer = p.optimizer.as_ref().map(|o| OptimizerState {
                    spec: o.spec.clone(),
                    step: o.step,
                    buffers: o.buffers.iter().map(|(k, v)| (k.clone(), array(v))).collect(),
                });
                params.insert(p.name.clone(), Param { value: array(&p.value), grad: None, optimizer });
            }
            let batchnorm = match &layer.batchnorm {
                Some(bn) => Some(BatchNorm {
                    momentum: bn.momentum,
                    eps: bn.eps,
                    running_mean: vector(&bn.running_mean, "running_mean")?,
                    running_var: vector(&bn.running_var, "running_var")?,
                }),
                None => None,
            };
            session.layers.insert(layer.id, Layer { params, batchnorm });
            session.layer_kinds.insert(layer.id, layer.kind);
        }
        for (op, layer) in &checkpoint.layer_of {
            if !session.layers.contains_key(layer) {
                return Err(ErrorKind::Value(format!(
                    "checkpoint: op {op} uses layer {layer}, which it does not hold"
                )));
            }
            session.layer_of.insert(*op, *layer);
        }
        Ok(session)
    }

    /// The layers and their weights (for checkpoints and inspection).
    pub fn layers(&self) -> &BTreeMap<OpId, Layer> {
        &self.layers
    }

    /// Runs op `id` with inputs `inputs` (the values of ops `input_ids`): training ops
    /// ([`OpKind::trains`](ravproto::OpKind::trains)) with this session's state, every other
    /// op on its kernel, as [`crate::execute`] does.
    pub fn run(
        &mut self,
        id: OpId,
        operation: &Operation,
        input_ids: &[OpId],
        inputs: &[TensorValue],
    ) -> Result<TensorValue, ExecError> {
        let kind = operation.kind();
        match crate::plan(operation, inputs)? {
            crate::Step::Done(value) => Ok(value),
            crate::Step::Train(_) if input_ids.len() != inputs.len() => {
                Err(ExecError { op: kind, kind: ErrorKind::Arity { expected: kind.arity(), got: inputs.len() } })
            }
            crate::Step::Train(stateful) => self
                .stateful(id, kind, stateful, input_ids, inputs)
                .map(|out| TensorValue::Tensor(Tensor::F64(out)))
                .map_err(|error| ExecError { op: kind, kind: error }),
        }
    }

    /// The layer of op `id`: the one named by `previous` (which must be a forward op of this
    /// session), or a new one built by `create`.
    fn layer(
        &mut self,
        id: OpId,
        kind: ravproto::OpKind,
        previous: Option<OpId>,
        optimizer: Option<&OptimizerSpec>,
        create: impl FnOnce() -> KResult<Layer>,
    ) -> KResult<OpId> {
        let key = match previous {
            Some(previous) => {
                let key = *self.layer_of.get(&previous).ok_or_else(|| {
                    ErrorKind::Value(format!(
                        "previous_forward_pass {previous} is not a layer op computed in this training session"
                    ))
                })?;
                match self.layer_kinds.get(&key) {
                    Some(created) if *created == kind => key,
                    created => {
                        return Err(ErrorKind::Value(format!(
                            "previous_forward_pass {previous} is a `{}` layer, not a `{kind}` one",
                            created.map_or("different", |k| k.short_name())
                        )));
                    }
                }
            }
            None => {
                let mut layer = create()?;
                if let Some(spec) = optimizer {
                    for param in layer.params.values_mut() {
                        param.optimizer = Some(OptimizerState::new(spec.clone()).map_err(ErrorKind::from)?);
                    }
                }
                self.layers.insert(id, layer);
                self.layer_kinds.insert(id, kind);
                id
            }
        };
        self.layer_of.insert(id, key);
        Ok(key)
    }

    fn param(&self, layer: OpId, name: &str) -> Option<&ArrayD<f64>> {
        self.layers.get(&layer).and_then(|l| l.params.get(name)).map(|p| &p.value)
    }

    fn record(&mut self, op: OpId, layer: Option<OpId>, inputs: &[OpId], saved: Saved) {
        self.tape.push(TapeEntry { op, layer, inputs: inputs.to_vec(), saved });
    }

    fn stateful(
        &mut self,
        id: OpId,
        kind: OpKind,
        operation: Stateful<'_>,
        input_ids: &[OpId],
        inputs: &[TensorValue],
    ) -> KResult<ArrayD<f64>> {
        use Stateful as O;
        let x = f64_input(inputs, 0)?;
        Ok(match operation {
            O::Dense(p) => {
                let fan_in = x.shape().last().copied().unwrap_or(0);
                let seeds =
                    if p.previous_forward_pass.is_none() { [self.next_seed(), self.next_seed()] } else { [0; 2] };
                let key = self.layer(id, kind, p.previous_forward_pass, p.optimizer.as_ref(), || {
                    let w = match &p.initial_w {
                        Some(w) => data_array(w, "initial_w", &[fan_in, p.n_units])?,
                        None => default_init(&[fan_in, p.n_units], fan_in, seeds[0]),
                    };
                    let b = match &p.initial_w0 {
                        Some(b) => data_array(b, "initial_w0", &[p.n_units])?,
                        None => default_init(&[p.n_units], fan_in, seeds[1]),
                    };
                    Ok(layer_of([("w", w), ("b", b)]))
                })?;
                let w = self.param(key, "w").expect("dense layers have w").view().into_dimensionality::<Ix2>();
                let w = w.map_err(|_| ErrorKind::Shape("dense weight must be 2-D".into()))?;
                let b = self.param(key, "b").expect("dense layers have b").view().into_dimensionality::<Ix1>();
                let b = b.map_err(|_| ErrorKind::Shape("dense bias must be 1-D".into()))?;
                let y = dense::forward(&x.view(), &w, Some(&b))?;
                self.record(id, Some(key), input_ids, Saved::Dense { x });
                y
            }
            O::Activation(p) => {
                let act = p.act_data.clone().unwrap_or(Activation::Relu);
                let y = activation::forward(&x.view(), &act)?;
                self.record(id, None, input_ids, Saved::Activation { x, y: y.clone(), act });
                y
            }
            O::Dropout(p) => {
                if !p.training {
                    // The identity, still on the tape so gradients pass through it.
                    self.record(id, None, input_ids, Saved::Reshape { shape: x.shape().to_vec() });
                    return Ok(x);
                }
                let seed = match p.seed {
                    Some(seed) => seed,
                    None => self.next_seed(),
                };
                let mask = dropout::dropout_mask(x.shape(), p.p.unwrap_or(0.5), seed)?;
                let y = dropout::apply_mask(&x.view(), &mask.view())?;
                self.record(id, None, input_ids, Saved::Mask { mask });
                y
            }
            O::Flatten(p) => {
                let ndim = x.ndim() as i64;
                let axis = |a: i64| if a < 0 { a + ndim } else { a };
                let (start, end) = (axis(p.start_dim.unwrap_or(1)), axis(p.end_dim.unwrap_or(-1)));
                if start < 0 || end >= ndim || start > end {
                    return Err(ErrorKind::Value(format!(
                        "flatten dims {start}..={end} do not fit {} dimensions",
                        x.ndim()
                    )));
                }
                let (start, end) = (start as usize, end as usize);
                let mut shape = x.shape()[..start].to_vec();
                shape.push(x.shape()[start..=end].iter().product());
                shape.extend_from_slice(&x.shape()[end + 1..]);
                let original = x.shape().to_vec();
                let y = x.as_standard_layout().into_owned().into_shape_with_order(IxDyn(&shape));
                let y = y.map_err(|e| ErrorKind::Shape(e.to_string()))?;
                self.record(id, None, input_ids, Saved::Reshape { shape: original });
                y
            }
            O::Conv2d(p) => {
                let x4 =
                    x.into_dimensionality::<Ix4>().map_err(|_| ErrorKind::Shape("conv2d input must be NCHW".into()))?;
                let groups = p.groups.unwrap_or(1);
                let window = Window {
                    kernel: p.kernel_size,
                    stride: p.stride.unwrap_or([1, 1]),
                    padding: p.padding.unwrap_or([0, 0]),
                    dilation: p.dilation.unwrap_or([1, 1]),
                };
                let conv = Conv2d { window, groups };
                if groups == 0 || p.in_channels % groups != 0 {
                    return Err(ErrorKind::Value(format!(
                        "{} channels do not split into {groups} groups",
                        p.in_channels
                    )));
                }
                let w_shape = [p.out_channels, p.in_channels / groups, p.kernel_size[0], p.kernel_size[1]];
                let fan_in = w_shape[1] * w_shape[2] * w_shape[3];
                let with_bias = p.bias.unwrap_or(true);
                let seeds =
                    if p.previous_forward_pass.is_none() { [self.next_seed(), self.next_seed()] } else { [0; 2] };
                let key = self.layer(id, kind, p.previous_forward_pass, p.optimizer.as_ref(), || {
                    let w = match &p.initial_w {
                        Some(w) => data_array(w, "initial_w", &w_shape)?,
                        None => default_init(&w_shape, fan_in, seeds[0]),
                    };
                    let mut params = vec![("w", w)];
                    if with_bias {
                        let b = match &p.initial_w0 {
                            Some(b) => data_array(b, "initial_w0", &[p.out_channels])?,
                            None => default_init(&[p.out_channels], fan_in, seeds[1]),
                        };
                        params.push(("b", b));
                    }
                    Ok(layer_of(params))
                })?;
                let w = self.param(key, "w").expect("conv layers have w").view().into_dimensionality::<Ix4>();
                let w = w.map_err(|_| ErrorKind::Shape("conv2d weight must be 4-D".into()))?;
                let b = self.param(key, "b").map(|b| b.view().into_dimensionality::<Ix1>());
                let b = b.transpose().map_err(|_| ErrorKind::Shape("conv2d bias must be 1-D".into()))?;
                let y = conv.forward(&x4.view(), &w, b.as_ref())?;
                self.record(id, Some(key), input_ids, Saved::Conv { x: x4, conv });
                y.into_dyn()
            }
            O::Maxpool2d(p) => {
                let x4 = x
                    .into_dimensionality::<Ix4>()
                    .map_err(|_| ErrorKind::Shape("maxpool2d input must be NCHW".into()))?;
                let window = Window {
                    kernel: p.kernel_size,
                    stride: p.stride.unwrap_or(p.kernel_size),
                    padding: p.padding.unwrap_or([0, 0]),
                    dilation: p.dilation.unwrap_or([1, 1]),
                };
                let pooled = pool::forward(&x4.view(), window, p.ceil_mode)?;
                let (n, c, h, w) = x4.dim();
                self.record(id, None, input_ids, Saved::Pool { shape: [n, c, h, w], argmax: pooled.argmax });
                pooled.output.into_dyn()
            }
            O::Batchnorm(p) => {
                let expected = if kind == OpKind::ForwardPassBatchnorm1d { [2, 3] } else { [4, 4] };
                if x.ndim() != expected[0] && x.ndim() != expected[1] {
                    return Err(ErrorKind::Shape(format!("{} got input {:?}", kind, x.shape())));
                }
                let channels = x.shape()[1];
                if p.num_features.is_some_and(|n| n != channels) {
                    return Err(ErrorKind::Shape(format!(
                        "batch norm of {:?} features got {channels} channels",
                        p.num_features
                    )));
                }
                let key = self.layer(id, kind, p.previous_forward_pass, p.optimizer.as_ref(), || {
                    let mut stats = BatchNorm::new(channels, p.momentum.unwrap_or(0.1), p.eps.unwrap_or(1e-5))?;
                    if let Some(m) = &p.initial_running_mean {
                        stats.running_mean =
                            data_array(m, "initial_running_mean", &[channels])?.into_dimensionality().expect("1-D");
                    }
                    if let Some(v) = &p.initial_running_var {
                        stats.running_var =
                            data_array(v, "initial_running_var", &[channels])?.into_dimensionality().expect("1-D");
                    }
                    let mut layer = if p.affine.unwrap_or(true) {
                        let gamma = match &p.initial_gamma {
                            Some(g) => data_array(g, "initial_gamma", &[channels])?,
                            None => ArrayD::ones(IxDyn(&[channels])),
                        };
                        let beta = match &p.initial_beta {
                            Some(b) => data_array(b, "initial_beta", &[channels])?,
                            None => ArrayD::zeros(IxDyn(&[channels])),
                        };
                        layer_of([("gamma", gamma), ("beta", beta)])
                    } else {
                        Layer::default()
                    };
                    layer.batchnorm = Some(stats);
                    Ok(layer)
                })?;
                let layer = self.layers.get_mut(&key).expect("layer just resolved");
                let gamma =
                    layer.params.get("gamma").map(|g| g.value.clone().into_dimensionality::<Ix1>().expect("1-D"));
                let beta = layer.params.get("beta").map(|b| b.value.clone().into_dimensionality::<Ix1>().expect("1-D"));
                let stats = layer.batchnorm.as_mut().ok_or_else(|| {
                    ErrorKind::Value("previous_forward_pass of a batch norm names another kind of layer".into())
                })?;
                let (y, cache) = stats.forward(
                    &x.view(),
                    gamma.as_ref().map(|g| g.view()).as_ref(),
                    beta.as_ref().map(|b| b.view()).as_ref(),
                    p.training,
                )?;
                self.record(id, Some(key), input_ids, Saved::BatchNorm { cache });
                y
            }
            O::Layernorm(p) => {
                let shape = p.normalized_shape.clone();
                let key = self.layer(id, kind, p.previous_forward_pass, p.optimizer.as_ref(), || {
                    let gamma = match &p.initial_w {
                        Some(g) => data_array(g, "initial_w", &shape)?,
                        None => ArrayD::ones(IxDyn(&shape)),
                    };
                    let beta = match &p.initial_w0 {
                        Some(b) => data_array(b, "initial_w0", &shape)?,
                        None => ArrayD::zeros(IxDyn(&shape)),
                    };
                    Ok(layer_of([("gamma", gamma), ("beta", beta)]))
                })?;
                let (gamma, beta) = (self.param(key, "gamma"), self.param(key, "beta"));
                let (Some(gamma), Some(beta)) = (gamma, beta) else {
                    return Err(ErrorKind::Value(
                        "previous_forward_pass of a layer norm names another kind of layer".into(),
                    ));
                };
                let (y, cache) = layernorm_forward(
                    &x.view(),
                    &shape,
                    Some(&gamma.view()),
                    Some(&beta.view()),
                    p.eps.unwrap_or(1e-5),
                )?;
                self.record(id, Some(key), input_ids, Saved::LayerNorm { cache });
                y
            }
            O::Embedding(p) => {
                if x.iter().any(|v| v.fract() != 0.0) {
                    return Err(ErrorKind::Value("embedding indices must be integers".into()));
                }
                let indices: Vec<i64> = x.iter().map(|&v| v as i64).collect();
                // PyTorch initialises an embedding table from N(0, 1).
                let seed = if p.previous_forward_pass.is_none() { self.next_seed() } else { 0 };
                let key = self.layer(id, kind, p.previous_forward_pass, p.optimizer.as_ref(), || {
                    let table = match &p.initial_weights {
                        Some(t) => data_array(t, "initial_weights", &[p.vocab_size, p.embed_dim])?,
                        None => crate::random::sample(
                            &[p.vocab_size, p.embed_dim],
                            Some(seed),
                            &Distribution::Normal { mean: 0.0, std: 1.0 },
                        ),
                    };
                    Ok(layer_of([("w", table)]))
                })?;
                let table = self.param(key, "w").expect("embeddings have a table").view().into_dimensionality::<Ix2>();
                let table = table.map_err(|_| ErrorKind::Shape("embedding table must be 2-D".into()))?;
                let vocab = table.nrows();
                let y = dropout::embedding_forward(&indices, x.shape(), &table)?;
                self.record(id, Some(key), input_ids, Saved::Embedding { indices, vocab });
                y
            }
            O::Binary(binary) => {
                let b = f64_input(inputs, 1)?;
                if x.shape() != b.shape() {
                    return Err(ErrorKind::Shape(format!("layer inputs {:?} and {:?} differ", x.shape(), b.shape())));
                }
                let (y, saved) = match binary {
                    Binary::Add => (&x + &b, Saved::Add),
                    Binary::Subtract => (&x - &b, Saved::Subtract),
                    Binary::Multiply => (&x * &b, Saved::Multiply { a: x, b }),
                };
                self.record(id, None, input_ids, saved);
                y
            }
            O::Loss(training_loss) => {
                let pred = f64_input(inputs, 1)?;
                let result = match training_loss {
                    TrainingLoss::CrossEntropy(p) => loss::cross_entropy(&x.view(), &pred.view(), p.ignore_index)?,
                    TrainingLoss::Square => loss::square(&x.view(), &pred.view())?,
                };
                self.record(id, None, input_ids, Saved::Loss { grad: result.grad });
                ArrayD::from_elem(IxDyn(&[]), result.loss)
            }
            O::StartBackwardMarker(p) => {
                self.backward(input_ids[0])?;
                if p.step {
                    self.step()?;
                }
                x
            }
        })
    }

    /// Differentiates the loss computed by op `loss` through the tape, accumulating each
    /// layer's weight gradients, and clears the tape.
    fn backward(&mut self, loss_op: OpId) -> KResult<()> {
        let Some(start) = self.tape.iter().rposition(|e| e.op == loss_op && matches!(e.saved, Saved::Loss { .. }))
        else {
            return Err(ErrorKind::Value(format!(
                "start_backward_marker needs a loss op (square_loss, cross_entropy_loss) of this session, got {loss_op}"
            )));
        };
        let tape = std::mem::take(&mut self.tape);
        let mut grads: BTreeMap<OpId, ArrayD<f64>> = BTreeMap::new();
        let add = |grads: &mut BTreeMap<OpId, ArrayD<f64>>, op: OpId, g: ArrayD<f64>| match grads.get_mut(&op) {
            Some(existing) => *existing += &g,
            None => {
                grads.insert(op, g);
            }
        };
        if let Saved::Loss { grad } = &tape[start].saved {
            add(&mut grads, tape[start].inputs[1], grad.clone());
        }
        for entry in tape[..start].iter().rev() {
            let Some(g) = grads.remove(&entry.op) else { continue };
            let mut weight_grads: Vec<(&str, ArrayD<f64>)> = Vec::new();
            let input_grads: Vec<ArrayD<f64>> = match &entry.saved {
                Saved::Dense { x } => {
                    let key = entry.layer.expect("dense entries name their layer");
                    let w = self.param(key, "w").expect("dense w").view().into_dimensionality::<Ix2>().expect("2-D");
                    let d = dense::backward(&x.view(), &w, true, &g.view())?;
                    weight_grads.push(("w", d.weight.into_dyn()));
                    weight_grads.extend(d.bias.map(|b| ("b", b.into_dyn())));
                    vec![d.input]
                }
                Saved::Activation { x, y, act } => vec![activation::backward(&x.view(), &y.view(), &g.view(), act)?],
                Saved::Mask { mask } => vec![dropout::apply_mask(&g.view(), &mask.view())?],
                Saved::Reshape { shape } => {
                    vec![
                        g.as_standard_layout()
                            .into_owned()
                            .into_shape_with_order(IxDyn(shape))
                            .map_err(|e| ErrorKind::Shape(e.to_string()))?,
                    ]
                }
                Saved::Conv { x, conv } => {
                    let key = entry.layer.expect("conv entries name their layer");
                    let w = self.param(key, "w").expect("conv w").view().into_dimensionality::<Ix4>().expect("4-D");
                    let with_bias = self.param(key, "b").is_some();
                    let g4 = g
                        .view()
                        .into_dimensionality::<Ix4>()
                        .map_err(|_| ErrorKind::Shape("conv2d gradient must be 4-D".into()))?;
                    let d = conv.backward(&x.view(), &w, with_bias, &g4)?;
                    weight_grads.push(("w", d.weight.into_dyn()));
                    weight_grads.extend(d.bias.map(|b| ("b", b.into_dyn())));
                    vec![d.input.into_dyn()]
                }
                Saved::Pool { shape, argmax } => {
                    let g4 = g
                        .view()
                        .into_dimensionality::<Ix4>()
                        .map_err(|_| ErrorKind::Shape("maxpool2d gradient must be 4-D".into()))?;
                    vec![pool::backward(*shape, &argmax.view(), &g4)?.into_dyn()]
                }
                Saved::BatchNorm { cache } => {
                    let key = entry.layer.expect("batch norm entries name their layer");
                    let gamma = self.param(key, "gamma").map(|g| g.clone().into_dimensionality::<Ix1>().expect("1-D"));
                    let d = batchnorm_backward(cache, gamma.as_ref().map(|g| g.view()).as_ref(), &g.view())?;
                    weight_grads.extend(d.gamma.map(|g| ("gamma", g)));
                    weight_grads.extend(d.beta.map(|b| ("beta", b)));
                    vec![d.input]
                }
                Saved::LayerNorm { cache } => {
                    let key = entry.layer.expect("layer norm entries name their layer");
                    let gamma = self.param(key, "gamma").cloned();
                    let d = layernorm_backward(cache, gamma.as_ref().map(|g| g.view()).as_ref(), &g.view())?;
                    weight_grads.extend(d.gamma.map(|g| ("gamma", g)));
                    weight_grads.extend(d.beta.map(|b| ("beta", b)));
                    vec![d.input]
                }
                Saved::Embedding { indices, vocab } => {
                    weight_grads.push(("w", dropout::embedding_backward(indices, *vocab, &g.view())?.into_dyn()));
                    // Indices are not differentiable: nothing flows back to them.
                    vec![]
                }
                Saved::Add => vec![g.clone(), g],
                Saved::Subtract => vec![g.clone(), -g],
                Saved::Multiply { a, b } => vec![&g * b, &g * a],
                Saved::Loss { .. } => vec![],
            };
            if let Some(key) = entry.layer {
                let layer = self.layers.get_mut(&key).expect("tape layers exist");
                for (name, wg) in weight_grads {
                    if let Some(param) = layer.params.get_mut(name) {
                        match &mut param.grad {
                            Some(existing) => *existing += &wg,
                            None => param.grad = Some(wg),
                        }
                    }
                }
            }
            for (input, ig) in entry.inputs.iter().zip(input_grads) {
                add(&mut grads, *input, ig);
            }
        }
        Ok(())
    }

    /// Applies every layer's optimizer to its accumulated gradients and clears them.
    fn step(&mut self) -> KResult<()> {
        for layer in self.layers.values_mut() {
            for param in layer.params.values_mut() {
                if let (Some(grad), Some(optimizer)) = (param.grad.take(), param.optimizer.as_mut()) {
                    optimizer.step(&mut param.value, &grad.view())?;
                }
            }
        }
        Ok(())
    }
}

fn layer_of<'a>(params: impl IntoIterator<Item = (&'a str, ArrayD<f64>)>) -> Layer {
    Layer {
        params: params
            .into_iter()
            .map(|(name, value)| (name.to_string(), Param { value, grad: None, optimizer: None }))
            .collect(),
        batchnorm: None,
    }
}
