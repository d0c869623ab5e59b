//! Neural-network builders: layers, and a [`Sequential`] model that emits the ops of a
//! training loop (the original's ravdl `Sequential`, as graph ops).
//!
//! ```
//! use ravop::Graph;
//! use ravop::nn::{Dense, Layer, Loss, Sequential};
//! use ravop::ops::{Activation, OptimizerSpec};
//!
//! let graph = Graph::new("mlp");
//! let mut model = Sequential::new(vec![Dense::new(16), Layer::activation(Activation::Tanh), Dense::new(2)])
//!     .optimizer(OptimizerSpec::Sgd { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false })
//!     .loss(Loss::CrossEntropy);
//! let x = graph.t(ndarray::Array2::<f64>::zeros((4, 3)).into_dyn());
//! let y = graph.t(ndarray::Array1::<f64>::zeros(4).into_dyn());
//! let loss = model.train_step(&x, &y); // forward, loss, backward and one optimizer step
//! loss.persist("loss");
//! ```
//!
//! Each layer's first forward op creates its weights; every later step names that layer's
//! previous forward op in `previous_forward_pass`, so the weights (and the optimizer state)
//! are shared across batches and epochs, on one provider at a time (see the README's training
//! section).

use crate::graph::{Graph, Op};
use ndarray::ArrayD;
use ravproto::Operation;
use ravproto::ops::{
    Activation, ActivationParams, BatchNormParams, Conv2dParams, DenseParams, DropoutParams, EmbeddingParams,
    FlattenParams, LayerNormParams, MaxPoolParams, OptimizerSpec,
};

/// One layer of a [`Sequential`] model: the forward op it emits, with its params.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// `forward_pass_dense`.
    Dense(DenseParams),
    /// `forward_pass_activation`.
    Activation(ActivationParams),
    /// `forward_pass_dropout`.
    Dropout(DropoutParams),
    /// `forward_pass_batchnorm1d`.
    BatchNorm1d(BatchNormParams),
    /// `forward_pass_batchnorm2d`.
    BatchNorm2d(BatchNormParams),
    /// `forward_pass_layernorm`.
    LayerNorm(LayerNormParams),
    /// `forward_pass_conv2d`.
    Conv2d(Conv2dParams),
    /// `forward_pass_maxpool2d`.
    MaxPool2d(MaxPoolParams),
    /// `forward_pass_flatten`.
    Flatten(FlattenParams),
    /// `forward_pass_embedding`.
    Embedding(EmbeddingParams),
}

/// Builds a dense layer (`Dense::new(units)`).
#[derive(Clone, Copy, Debug)]
pub struct Dense;

impl Dense {
    /// A dense layer of `units` outputs with PyTorch's default initialisation.
    #[allow(clippy::new_ret_no_self)] // A builder of `Layer`s, named as the layer it builds.
    pub fn new(units: usize) -> Layer {
        Layer::Dense(DenseParams {
            n_units: units,
            initial_w: None,
            initial_w0: None,
            optimizer: None,
            previous_forward_pass: None,
            training: true,
        })
    }
}

impl Layer {
    /// An activation layer.
    pub fn activation(activation: Activation) -> Layer {
        Layer::Activation(ActivationParams {
            act_data: Some(activation),
            optimizer: None,
            previous_forward_pass: None,
            training: true,
        })
    }

    /// A dropout layer dropping with probability `p` (seeded from the training session).
    pub fn dropout(p: f64) -> Layer {
        Layer::Dropout(DropoutParams {
            p: Some(p),
            seed: None,
            optimizer: None,
            previous_forward_pass: None,
            training: true,
        })
    }

    /// Flattens every axis after the first.
    pub fn flatten() -> Layer {
        Layer::Flatten(FlattenParams {
            start_dim: None,
            end_dim: None,
            optimizer: None,
            previous_forward_pass: None,
            training: true,
        })
    }

    /// A 2-D convolution (NCHW) with a square `kernel`, stride 1 and no padding.
    pub fn conv2d(in_channels: usize, out_channels: usize, kernel: usize) -> Layer {
        Layer::Conv2d(Conv2dParams {
            in_channels,
            out_channels,
            kernel_size: [kernel, kernel],
            stride: None,
            padding: None,
            dilation: None,
            groups: None,
            bias: None,
            initial_w: None,
            initial_w0: None,
            optimizer: None,
            previous_forward_pass: None,
            training: true,
        })
    }

    /// Max pooling over square windows of `size`.
    pub fn maxpool2d(size: usize) -> Layer {
        Layer::MaxPool2d(MaxPoolParams {
            kernel_size: [size, size],
            stride: None,
            padding: None,
            dilation: None,
            ceil_mode: false,
            optimizer: None,
            previous_forward_pass: None,
            training: true,
        })
    }

    /// The operation of this layer's forward op with the shared params set.
    fn operation(&self, optimizer: Option<&OptimizerSpec>, previous: Option<&Op>, training: bool) -> Operation {
        let optimizer = optimizer.cloned();
        let previous = previous.map(Op::id);
        macro_rules! with_shared {
            ($variant:ident, $params:expr) => {{
                let mut p = $params.clone();
                p.optimizer = optimizer;
                p.previous_forward_pass = previous;
                p.training = training;
                Operation::$variant(p)
            }};
        }
        match self {
            Layer::Dense(p) => with_shared!(ForwardPassDense, p),
            Layer::Activation(p) => with_shared!(ForwardPassActivation, p),
            Layer::Dropout(p) => with_shared!(ForwardPassDropout, p),
            Layer::BatchNorm1d(p) => with_shared!(ForwardPassBatchnorm1d, p),
            Layer::BatchNorm2d(p) => with_shared!(ForwardPassBatchnorm2d, p),
            Layer::LayerNorm(p) => with_shared!(ForwardPassLayernorm, p),
            Layer::Conv2d(p) => with_shared!(ForwardPassConv2d, p),
            Layer::MaxPool2d(p) => with_shared!(ForwardPassMaxpool2d, p),
            Layer::Flatten(p) => with_shared!(ForwardPassFlatten, p),
            Layer::Embedding(p) => with_shared!(ForwardPassEmbedding, p),
        }
    }
}

/// The loss a [`Sequential`] model trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    /// `cross_entropy_loss` on class indices (the model's output is logits).
    #[default]
    CrossEntropy,
    /// `square_loss` (mean squared error).
    Square,
}

/// Layers applied in order, trained step by step on batches.
#[derive(Clone, Debug)]
pub struct Sequential {
    layers: Vec<Layer>,
    optimizer: OptimizerSpec,
    loss: Loss,
    /// Each layer's latest forward op: the next step reuses its weights.
    latest: Vec<Option<Op>>,
}

impl Sequential {
    /// A model of `layers`, trained with Adam (lr 0.001) on the cross-entropy loss unless set
    /// otherwise.
    pub fn new(layers: Vec<Layer>) -> Sequential {
        let latest = vec![None; layers.len()];
        Sequential {
            layers,
            optimizer: OptimizerSpec::Adam {
                lr: 1e-3,
                betas: [0.9, 0.999],
                eps: 1e-8,
                weight_decay: 0.0,
                amsgrad: false,
            },
            loss: Loss::CrossEntropy,
            latest,
        }
    }

    /// Trains with `optimizer`.
    pub fn optimizer(mut self, optimizer: OptimizerSpec) -> Sequential {
        self.optimizer = optimizer;
        self
    }

    /// Trains on `loss`.
    pub fn loss(mut self, loss: Loss) -> Sequential {
        self.loss = loss;
        self
    }

    fn forward_with(&mut self, x: &Op, training: bool) -> Op {
        let mut out = x.clone();
        for (layer, latest) in self.layers.iter().zip(self.latest.iter_mut()) {
            let operation = layer.operation(Some(&self.optimizer), latest.as_ref(), training);
            out = out.apply(operation, &[]);
            *latest = Some(out.clone());
        }
        out
    }

    /// The model's output for `x` in evaluation mode (dropout off, batch norms on their
    /// running statistics), with the current weights; no training step follows it.
    pub fn forward(&mut self, x: &Op) -> Op {
        self.forward_with(x, false)
    }

    /// One training step on the batch `(x, y)`: the forward pass, the loss, then
    /// `start_backward_marker` (backward through the layers and one optimizer step). Returns
    /// the loss op.
    pub fn train_step(&mut self, x: &Op, y: &Op) -> Op {
        let prediction = self.forward_with(x, true);
        let loss = match self.loss {
            Loss::CrossEntropy => y.cross_entropy_loss(&prediction, Default::default()),
            Loss::Square => y.square_loss(&prediction),
        };
        loss.start_backward_marker(Default::default());
        loss
    }

    /// `epochs` passes over `batches` (each batch's tensors are added to `graph` once); the
    /// loss op of every step, by epoch then batch.
    pub fn fit(&mut self, graph: &Graph, batches: &[(ArrayD<f64>, ArrayD<f64>)], epochs: usize) -> Vec<Vec<Op>> {
        let inputs: Vec<(Op, Op)> = batches.iter().map(|(x, y)| (graph.t(x.clone()), graph.t(y.clone()))).collect();
        (0..epochs).map(|_| inputs.iter().map(|(x, y)| self.train_step(x, y)).collect()).collect()
    }
}
