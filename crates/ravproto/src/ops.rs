//! The op catalogue: all 145 keys of the original RDF registry (§2.6 groups A–J), plus
//! `predict` and `score`, which use the fitted models of group F.
//!
//! Port of ravop's `strings.functions` registry. Each entry has the original's short name (the
//! registry key), its wire name (the `Operators.*` string), a group, an arity, and a typed
//! params struct. [`Operation`] pairs a kind with its params, so a `sum` can only carry
//! [`ReduceParams`]. Its JSON form is `{"operator": "sum", "params": {"axis": 1}}`; the
//! operator may be given by short or wire name, omitted params take their defaults, and unknown
//! or mistyped params are refused with an error naming the op.
//!
//! Deliberate changes from the original, each because the original's form could not be typed:
//! - Params that were op references computed at run time become inputs: `where` takes
//!   `(x, y, condition)`, `average` and `bincount` take optional `weights` as a second input.
//! - Index strings are [`IndexExpr`] values, parsed and never evaluated.
//! - `optimizer_dict` strings are [`OptimizerSpec`] values; `act_data` is [`Activation`].

use crate::OpId;
use crate::index::{IndexExpr, IndexItem};
use crate::tensor::{DType, Scalar, TensorData};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Catalogue group, as in the reference's §2.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// A: input values and model files.
    Input,
    /// B: element-wise arithmetic.
    Arithmetic,
    /// C: linear algebra and shape.
    LinalgShape,
    /// D: comparison and logic.
    Logic,
    /// E: statistics.
    Statistics,
    /// F: classic machine learning.
    ClassicMl,
    /// G: deep-learning layers.
    DeepLearning,
    /// H: whole-model ops.
    WholeModel,
    /// I: losses.
    Losses,
    /// J: federated analytics.
    Federated,
}

/// How many positional inputs an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arity {
    /// Exactly this many.
    Exact(usize),
    /// Between `min` and `max` inclusive.
    Range {
        /// Fewest inputs.
        min: usize,
        /// Most inputs.
        max: usize,
    },
    /// This many or more.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` inputs are acceptable.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::Range { min, max } => (min..=max).contains(&n),
            Arity::AtLeast(min) => n >= min,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exact(k) => write!(f, "{k}"),
            Arity::Range { min, max } => write!(f, "{min} to {max}"),
            Arity::AtLeast(min) => write!(f, "at least {min}"),
        }
    }
}

/// An axis or a tuple of axes. JSON: `1` or `[0, 2]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Axes {
    /// One axis (negative counts from the end).
    One(i64),
    /// Several axes.
    Many(Vec<i64>),
}

impl Axes {
    /// The axes as a list.
    pub fn to_vec(&self) -> Vec<i64> {
        match self {
            Axes::One(a) => vec![*a],
            Axes::Many(v) => v.clone(),
        }
    }
}

impl From<i64> for Axes {
    fn from(axis: i64) -> Axes {
        Axes::One(axis)
    }
}

impl From<Vec<i64>> for Axes {
    fn from(axes: Vec<i64>) -> Axes {
        Axes::Many(axes)
    }
}

/// Ops without params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `lin`: a constant value node; its data travels separately, keyed by the op id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinParams {
    /// Element type of the value.
    pub dtype: DType,
    /// Shape of the value.
    #[serde(default)]
    pub shape: Vec<usize>,
}

/// Format of a model file held by a `pytorch_model` node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// An ONNX model (the original's TorchScript maps to ONNX here).
    #[default]
    Onnx,
}

/// `pytorch_model`: a model file node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// File format of the model.
    #[serde(default)]
    pub format: ModelFormat,
}

/// `add`: optionally select `key` from dict-shaped layer outputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddParams {
    /// Key to take from a dict input (layer outputs).
    #[serde(default)]
    pub key: Option<String>,
}

/// Reductions with `axis` and `keepdims` (`sum`, `prod`, `min`, `max`, `mean`, `median`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceParams {
    /// Axes to reduce; `None` reduces everything.
    #[serde(default)]
    pub axis: Option<Axes>,
    /// Keep reduced axes with length 1.
    #[serde(default)]
    pub keepdims: bool,
}

impl ReduceParams {
    /// Reduce over every axis.
    pub fn all() -> ReduceParams {
        ReduceParams::default()
    }

    /// Reduce over the given axes.
    pub fn axis(axis: impl Into<Axes>) -> ReduceParams {
        ReduceParams { axis: Some(axis.into()), keepdims: false }
    }

    /// The same reduction, keeping the reduced axes.
    pub fn keepdims(self) -> ReduceParams {
        ReduceParams { keepdims: true, ..self }
    }
}

/// `variance` and `std`: reductions with a delta degrees of freedom.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatParams {
    /// Axes to reduce; `None` reduces everything.
    #[serde(default)]
    pub axis: Option<Axes>,
    /// Keep reduced axes with length 1.
    #[serde(default)]
    pub keepdims: bool,
    /// Divisor is `N - ddof` (0: population).
    #[serde(default)]
    pub ddof: f64,
}

/// `argmax`, `argmin`: one axis or the flattened array.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgParams {
    /// Axis; `None` means the flattened array.
    #[serde(default)]
    pub axis: Option<i64>,
    /// Keep the reduced axis with length 1.
    #[serde(default)]
    pub keepdims: bool,
}

/// `average`: optional weights arrive as the second input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AverageParams {
    /// Axes to average; `None` averages everything.
    #[serde(default)]
    pub axis: Option<Axes>,
    /// Keep reduced axes with length 1.
    #[serde(default)]
    pub keepdims: bool,
}

/// `transpose`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransposeParams {
    /// Permutation; `None` reverses the axes.
    #[serde(default)]
    pub axes: Option<Vec<i64>>,
}

/// `reshape`: one entry may be `-1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeParams {
    /// New shape.
    pub shape: Vec<i64>,
}

/// Memory order for `ravel`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Row-major.
    #[default]
    C,
    /// Column-major.
    F,
}

/// `ravel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RavelParams {
    /// Read order.
    #[serde(default)]
    pub order: Order,
}

/// `squeeze`, `reverse`: an optional axis or axes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxesParams {
    /// Axes; `None` means all (squeeze: every length-1 axis).
    #[serde(default)]
    pub axis: Option<Axes>,
}

fn axes_zero() -> Axes {
    Axes::One(0)
}

/// `expand_dims`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandDimsParams {
    /// Where the new axes go in the result.
    #[serde(default = "axes_zero")]
    pub axis: Axes,
}

impl Default for ExpandDimsParams {
    fn default() -> ExpandDimsParams {
        ExpandDimsParams { axis: axes_zero() }
    }
}

/// `concat`, `stack`: the axis to join along (default 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinParams {
    /// Axis.
    #[serde(default)]
    pub axis: i64,
}

/// How `split` divides an axis. JSON: `3` (equal sections) or `[2, 5]` (split points).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SplitSpec {
    /// This many equal sections (must divide the axis).
    Sections(usize),
    /// Split before each of these positions.
    Indices(Vec<i64>),
}

/// `split`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
    /// Sections or split points (the original's `numOrSizeSplits`).
    #[serde(alias = "numOrSizeSplits")]
    pub num_or_size_splits: SplitSpec,
    /// Axis.
    #[serde(default)]
    pub axis: i64,
}

fn minus_one() -> Option<i64> {
    Some(-1)
}

/// `sort`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortParams {
    /// Axis (default -1); `null` sorts the flattened array.
    #[serde(default = "minus_one")]
    pub axis: Option<i64>,
}

impl Default for SortParams {
    fn default() -> SortParams {
        SortParams { axis: Some(-1) }
    }
}

/// `unique`. With `return_inverse` or `return_counts` the result is a list
/// `[values, inverse?, counts?]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueParams {
    /// Unique sub-arrays along this axis; `None` flattens.
    #[serde(default)]
    pub axis: Option<i64>,
    /// Also return the indices that rebuild the input.
    #[serde(default)]
    pub return_inverse: bool,
    /// Also return the count of each unique value.
    #[serde(default)]
    pub return_counts: bool,
}

/// `slice`: `begin` and `size` per leading axis (`size` -1 means to the end).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceParams {
    /// Start per axis.
    pub begin: Vec<i64>,
    /// Length per axis.
    pub size: Vec<i64>,
}

/// `shape`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeParams {
    /// Return one dimension instead of the whole shape.
    #[serde(default)]
    pub index: Option<i64>,
}

/// Padding modes of `pad` (NumPy's names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Fill with `constant_values`.
    #[default]
    Constant,
    /// Repeat the edge value.
    Edge,
    /// Mirror without repeating the edge.
    Reflect,
    /// Mirror repeating the edge.
    Symmetric,
    /// Wrap around.
    Wrap,
}

fn zero_scalar() -> Scalar {
    Scalar::Int(0)
}

/// `pad`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadParams {
    /// `(before, after)` per axis; one pair applies to every axis.
    pub sequence: Vec<[usize; 2]>,
    /// Padding mode.
    pub mode: PadMode,
    /// Fill value for `constant` mode.
    #[serde(default = "zero_scalar")]
    pub constant_values: Scalar,
}

/// Repeat counts. JSON: `2` or `[1, 2, 3]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Repeats {
    /// The same count for every element.
    One(usize),
    /// One count per element along the axis.
    Many(Vec<usize>),
}

/// `repeat`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatParams {
    /// Counts.
    pub repeats: Repeats,
    /// Axis; `None` flattens first.
    #[serde(default)]
    pub axis: Option<i64>,
}

fn one_scalar() -> Scalar {
    Scalar::Int(1)
}

/// `arange`: inputs are `start` and `stop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArangeParams {
    /// Spacing (default 1).
    #[serde(default = "one_scalar")]
    pub step: Scalar,
}

impl Default for ArangeParams {
    fn default() -> ArangeParams {
        ArangeParams { step: one_scalar() }
    }
}

fn dtype_f64() -> DType {
    DType::F64
}

/// `zeros`: the input is the shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZerosParams {
    /// Element type (default `f64`, as NumPy).
    #[serde(default = "dtype_f64")]
    pub dtype: DType,
}

impl Default for ZerosParams {
    fn default() -> ZerosParams {
        ZerosParams { dtype: DType::F64 }
    }
}

/// `index` and `set_value`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexParams {
    /// The subscript.
    pub indices: IndexExpr,
}

/// `cnn_index` (`a[:, i1, i2, i3]`) and `cnn_add_at` (scatter-add there).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnIndexParams {
    /// Index on axis 1.
    pub index1: IndexItem,
    /// Index on axis 2.
    pub index2: IndexItem,
    /// Index on axis 3.
    pub index3: IndexItem,
}

/// `cnn_index_2`: crop padding out of an NCHW tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnCropParams {
    /// Rows of padding at the top.
    pub pad_h: usize,
    /// Height to keep.
    pub height: usize,
    /// Columns of padding at the left.
    pub pad_w: usize,
    /// Width to keep.
    pub width: usize,
}

/// `clip`: at least one bound.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipParams {
    /// Lower bound.
    #[serde(default)]
    pub lower_limit: Option<Scalar>,
    /// Upper bound.
    #[serde(default)]
    pub upper_limit: Option<Scalar>,
}

/// `foreach`: applies a one-input catalogue op to each `a[i]` and stacks the results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeachParams {
    /// The op to apply, with its params.
    pub operation: Box<Operation>,
}

/// `random_uniform`: inputs are `low` and `high`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomUniformParams {
    /// Output shape.
    #[serde(default)]
    pub size: Vec<usize>,
    /// Seed; the same seed gives the same values on every machine.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Distribution of `random`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Normal with `mean` and `std`.
    Normal {
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
}

impl Default for Distribution {
    fn default() -> Distribution {
        Distribution::Uniform { low: 0.0, high: 1.0 }
    }
}

/// `random`: a seeded random tensor (registered but never implemented in the original).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomParams {
    /// Output shape.
    #[serde(default)]
    pub shape: Vec<usize>,
    /// Seed; the same seed gives the same values on every machine.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Distribution (default uniform on `[0, 1)`).
    #[serde(default)]
    pub distribution: Distribution,
}

/// Interpolation methods of `percentile`: all thirteen of NumPy 2, with its names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PercentileMethod {
    /// H&F 1: the inverse of the empirical CDF.
    InvertedCdf,
    /// H&F 2: like `inverted_cdf`, averaging at discontinuities.
    AveragedInvertedCdf,
    /// H&F 3: the nearest observation, even order statistic at ties.
    ClosestObservation,
    /// H&F 4: linear interpolation of the empirical CDF.
    InterpolatedInvertedCdf,
    /// H&F 5: piecewise linear with nodes at `(k - 0.5) / n`.
    Hazen,
    /// H&F 6: nodes at `k / (n + 1)`.
    Weibull,
    /// H&F 7: linear interpolation (the default).
    #[default]
    Linear,
    /// H&F 8: approximately median-unbiased.
    MedianUnbiased,
    /// H&F 9: approximately unbiased for normal data.
    NormalUnbiased,
    /// The lower neighbour.
    Lower,
    /// The higher neighbour.
    Higher,
    /// The mean of both neighbours.
    Midpoint,
    /// The nearest neighbour (ties to the even index).
    Nearest,
}

/// `percentile`: the second input holds `q` in `[0, 100]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PercentileParams {
    /// Axes; `None` uses the flattened array.
    #[serde(default)]
    pub axis: Option<Axes>,
    /// Keep reduced axes with length 1.
    #[serde(default)]
    pub keepdims: bool,
    /// Interpolation method.
    #[serde(default)]
    pub method: PercentileMethod,
}

fn zero_axis() -> Option<i64> {
    Some(0)
}

/// `mode` (scipy.stats.mode): the most frequent value, the smallest among ties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeParams {
    /// Axis (default 0); `null` uses the flattened array.
    #[serde(default = "zero_axis")]
    pub axis: Option<i64>,
    /// Keep the reduced axis with length 1.
    #[serde(default)]
    pub keepdims: bool,
}

impl Default for ModeParams {
    fn default() -> ModeParams {
        ModeParams { axis: Some(0), keepdims: false }
    }
}

/// `bincount`: optional weights arrive as the second input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BincountParams {
    /// Smallest output length.
    #[serde(default)]
    pub minlength: usize,
}

// ---- Group F: classic ML ----

/// `logistic_regression`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticRegressionParams {
    /// Seed of the solver.
    #[serde(default)]
    pub random_state: u64,
}

/// `knn_classifier`, `knn_regressor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnParams {
    /// Number of neighbours.
    pub k: usize,
}

/// `kmeans`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KMeansParams {
    /// Number of clusters.
    pub n_clusters: usize,
    /// Seed of the initialisation.
    #[serde(default)]
    pub random_state: u64,
}

/// SVM kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SvmKernel {
    /// Linear kernel.
    #[default]
    Linear,
    /// Gaussian (RBF) kernel.
    Rbf,
    /// Polynomial kernel.
    Poly,
}

/// `svm_svc`, `svm_svr`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmParams {
    /// Kernel.
    #[serde(default)]
    pub kernel: SvmKernel,
}

/// Split criteria of trees and forests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Gini impurity (classifier default).
    Gini,
    /// Entropy.
    Entropy,
    /// Squared error (regressor default).
    SquaredError,
}

fn hundred() -> usize {
    100
}

fn two() -> usize {
    2
}

/// `decision_tree_*` and `random_forest_*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeParams {
    /// Trees in a forest (ignored by a single tree).
    #[serde(default = "hundred")]
    pub n_estimators: usize,
    /// Split criterion; `None` takes the op's default.
    #[serde(default)]
    pub criterion: Option<Criterion>,
    /// Depth limit.
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Fewest samples to split a node.
    #[serde(default = "two")]
    pub min_samples_split: usize,
    /// Seed for bootstrapping.
    #[serde(default)]
    pub random_state: u64,
}

impl Default for TreeParams {
    fn default() -> TreeParams {
        TreeParams { n_estimators: 100, criterion: None, max_depth: None, min_samples_split: 2, random_state: 0 }
    }
}

// ---- Groups G, H, I: deep learning ----

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}

/// An optimizer with PyTorch's names and defaults (the original's `optimizer_dict`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// Stochastic gradient descent.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor.
        #[serde(default)]
        momentum: f64,
        /// Dampening of the momentum.
        #[serde(default)]
        dampening: f64,
        /// L2 penalty.
        #[serde(default)]
        weight_decay: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
    /// Adagrad.
    Adagrad {
        /// Learning rate (PyTorch default 0.01).
        lr: f64,
        /// Learning-rate decay.
        #[serde(default)]
        lr_decay: f64,
        /// L2 penalty.
        #[serde(default)]
        weight_decay: f64,
        /// Starting accumulator.
        #[serde(default)]
        initial_accumulator_value: f64,
        /// Stability term.
        eps: f64,
    },
    /// Adadelta.
    Adadelta {
        /// Learning rate (PyTorch default 1.0).
        lr: f64,
        /// Running-average coefficient.
        rho: f64,
        /// Stability term.
        eps: f64,
        /// L2 penalty.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam.
    Adam {
        /// Learning rate (PyTorch default 0.001).
        lr: f64,
        /// Moment coefficients.
        #[serde(default = "default_betas")]
        betas: [f64; 2],
        /// Stability term.
        eps: f64,
        /// L2 penalty.
        #[serde(default)]
        weight_decay: f64,
        /// AMSGrad variant.
        #[serde(default)]
        amsgrad: bool,
    },
    /// AdamW (decoupled weight decay).
    Adamw {
        /// Learning rate.
        lr: f64,
        /// Moment coefficients.
        #[serde(default = "default_betas")]
        betas: [f64; 2],
        /// Stability term.
        eps: f64,
        /// Decoupled weight decay (PyTorch default 0.01).
        weight_decay: f64,
        /// AMSGrad variant.
        #[serde(default)]
        amsgrad: bool,
    },
    /// Adamax.
    Adamax {
        /// Learning rate (PyTorch default 0.002).
        lr: f64,
        /// Moment coefficients.
        #[serde(default = "default_betas")]
        betas: [f64; 2],
        /// Stability term.
        eps: f64,
        /// L2 penalty.
        #[serde(default)]
        weight_decay: f64,
    },
    /// RMSprop.
    Rmsprop {
        /// Learning rate (PyTorch default 0.01).
        lr: f64,
        /// Smoothing constant.
        alpha: f64,
        /// Stability term.
        eps: f64,
        /// L2 penalty.
        #[serde(default)]
        weight_decay: f64,
        /// Momentum factor.
        #[serde(default)]
        momentum: f64,
        /// Centered variant.
        #[serde(default)]
        centered: bool,
    },
}

/// Activation functions of `forward_pass_activation` (the original's `act_data` names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh.
    Tanh,
    /// Softmax over `dim` (default the last axis).
    Softmax {
        /// Axis.
        #[serde(default)]
        dim: Option<i64>,
    },
    /// Leaky ReLU.
    LeakyRelu {
        /// Negative slope (default 0.01).
        #[serde(default)]
        negative_slope: Option<f64>,
    },
    /// ELU.
    Elu {
        /// Alpha (default 1.0).
        #[serde(default)]
        alpha: Option<f64>,
    },
    /// SELU.
    Selu,
    /// Softplus.
    Softplus,
    /// Softsign.
    Softsign,
    /// x - tanh(x).
    Tanhshrink,
    /// Softmin over `dim`.
    Softmin {
        /// Axis.
        #[serde(default)]
        dim: Option<i64>,
    },
    /// Soft shrinkage.
    Softshrink {
        /// Threshold (default 0.5).
        #[serde(default)]
        lambd: Option<f64>,
    },
    /// log(sigmoid(x)).
    Logsigmoid,
    /// Hard shrinkage.
    Hardshrink {
        /// Threshold (default 0.5).
        #[serde(default)]
        lambd: Option<f64>,
    },
    /// Hard tanh.
    Hardtanh {
        /// Lower bound (default -1).
        #[serde(default)]
        min_val: Option<f64>,
        /// Upper bound (default 1).
        #[serde(default)]
        max_val: Option<f64>,
    },
    /// x if x > threshold else value.
    Threshold {
        threshold: f64,
        /// Replacement.
        value: f64,
    },
}

fn yes() -> bool {
    true
}

macro_rules! layer_params {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        ///
        /// Shared layer params: `optimizer` (trains the layer's weights), `previous_forward_pass`
        /// (reuse the weights and optimizer of an earlier forward op of the same layer) and
        /// `training`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[$fdoc])*
                pub $field: $ty,
            )*
            /// Optimizer for this layer's weights.
            #[serde(default)]
            pub optimizer: Option<OptimizerSpec>,
            /// Earlier forward op of the same layer whose state is reused.
            #[serde(default)]
            pub previous_forward_pass: Option<OpId>,
            /// Training mode (dropout active, batchnorm uses batch statistics).
            #[serde(default = "yes")]
            pub training: bool,
        }
    };
}

layer_params!(
    /// `forward_pass_dense`.
    DenseParams {
        /// Output units.
        n_units: usize,
        /// Initial weights `(in, out)` (the original's `initial_W`).
        #[serde(alias = "initial_W")]
        initial_w: Option<TensorData>,
        /// Initial bias `(out,)`.
        initial_w0: Option<TensorData>,
    }
);
layer_params!(
    /// `forward_pass_batchnorm1d` and `forward_pass_batchnorm2d`.
    BatchNormParams {
        /// Channels (batchnorm2d).
        num_features: Option<usize>,
        /// Running-statistics momentum (default 0.1).
        momentum: Option<f64>,
        /// Stability term (default 1e-5).
        eps: Option<f64>,
        /// Learn gamma and beta (default true).
        affine: Option<bool>,
        initial_gamma: Option<TensorData>,
        initial_beta: Option<TensorData>,
        initial_running_mean: Option<TensorData>,
        /// Initial running variance.
        initial_running_var: Option<TensorData>,
    }
);
layer_params!(
    /// `forward_pass_layernorm`.
    LayerNormParams {
        /// Trailing shape to normalise over.
        normalized_shape: Vec<usize>,
        /// Stability term (default 1e-5).
        eps: Option<f64>,
        /// Initial gamma (the original's `initial_W`).
        #[serde(alias = "initial_W")]
        initial_w: Option<TensorData>,
        /// Initial beta.
        initial_w0: Option<TensorData>,
    }
);
layer_params!(
    /// `forward_pass_dropout`.
    DropoutParams {
        /// Drop probability (default 0.5).
        p: Option<f64>,
        /// Seed of the mask.
        seed: Option<u64>,
    }
);
layer_params!(
    /// `forward_pass_activation`.
    ActivationParams {
        /// The activation (the original's `act_data`); `None` is relu.
        act_data: Option<Activation>,
    }
);
layer_params!(
    /// `forward_pass_conv2d` (NCHW).
    Conv2dParams {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel `(h, w)`.
        kernel_size: [usize; 2],
        /// Stride (default 1).
        stride: Option<[usize; 2]>,
        /// Zero padding (default 0).
        padding: Option<[usize; 2]>,
        /// Dilation (default 1).
        dilation: Option<[usize; 2]>,
        /// Groups (default 1).
        groups: Option<usize>,
        /// Learn a bias (default true).
        bias: Option<bool>,
        /// Initial weights `(out, in/groups, kh, kw)` (the original's `initial_W`).
        #[serde(alias = "initial_W")]
        initial_w: Option<TensorData>,
        /// Initial bias.
        initial_w0: Option<TensorData>,
    }
);
layer_params!(
    /// `forward_pass_maxpool2d`.
    MaxPoolParams {
        /// Window `(h, w)`.
        kernel_size: [usize; 2],
        /// Stride (default: the window).
        stride: Option<[usize; 2]>,
        /// Padding (default 0).
        padding: Option<[usize; 2]>,
        /// Dilation (default 1).
        dilation: Option<[usize; 2]>,
        /// Round the output size up.
        #[serde(default)]
        ceil_mode: bool,
    }
);
layer_params!(
    /// `forward_pass_flatten`.
    FlattenParams {
        /// First axis to flatten (default 1).
        start_dim: Option<i64>,
        /// Last axis to flatten (default -1).
        end_dim: Option<i64>,
    }
);
layer_params!(
    /// `forward_pass_embedding`.
    EmbeddingParams {
        /// Vocabulary size.
        vocab_size: usize,
        /// Embedding width.
        embed_dim: usize,
        /// Initial table `(vocab, dim)`.
        initial_weights: Option<TensorData>,
    }
);
layer_params!(
    /// `forward_pass_reshape`.
    LayerReshapeParams {
        /// New shape (one entry may be -1).
        shape: Vec<i64>,
    }
);
layer_params!(
    /// `forward_pass_transpose`.
    LayerTransposeParams {
        /// Permutation.
        axes: Option<Vec<i64>>,
    }
);
layer_params!(
    /// `forward_pass_power`.
    LayerPowerParams {
        /// Exponent.
        power: f64,
    }
);
layer_params!(
    /// Two-input layers: `forward_pass_{concat, add, subtract, dot, multiply, division}`.
    LayerBinaryParams {
        /// Concat axis (concat only).
        axis: Option<i64>,
    }
);

/// `forward_pass`: run a whole model (ONNX here; TorchScript in the original).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardPassParams {
    /// The `pytorch_model` node holding the model.
    #[serde(default)]
    pub model: Option<OpId>,
    /// The previous `forward_pass` of the same model (reuses its state).
    #[serde(default)]
    pub previous_forward_pass: Option<OpId>,
    /// Optimizer for training.
    #[serde(default)]
    pub optimizer: Option<OptimizerSpec>,
    /// Training mode.
    #[serde(default = "yes")]
    pub training: bool,
}

/// `start_backward_marker`: backward pass from a loss, then an optimizer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackwardMarkerParams {
    /// Take an optimizer step after the backward pass (default true).
    #[serde(default = "yes")]
    pub step: bool,
}

impl Default for BackwardMarkerParams {
    fn default() -> BackwardMarkerParams {
        BackwardMarkerParams { step: true }
    }
}

/// `cross_entropy_loss`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossEntropyParams {
    /// Target value to ignore.
    #[serde(default)]
    pub ignore_index: Option<i64>,
    /// Reshape the targets first.
    #[serde(default)]
    pub reshape_target: Option<Vec<i64>>,
    /// Reshape the predictions first.
    #[serde(default)]
    pub reshape_label: Option<Vec<i64>>,
}

/// `federated_*`: statistics over providers' private CSV files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedParams {
    /// Column; `None` means every column in the graph's rules.
    #[serde(default)]
    pub column: Option<String>,
}

/// A param of the original that is a positional input in the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamAsInput {
    /// The op.
    pub kind: OpKind,
    /// The original's param name.
    pub param: &'static str,
    /// Its position among the catalogue op's inputs (0-based).
    pub position: usize,
    /// The catalogue op's inputs, for messages.
    pub inputs: &'static str,
}

/// Every param of the original that is an input here.
pub const PARAMS_AS_INPUTS: &[ParamAsInput] = &[
    ParamAsInput { kind: OpKind::Where, param: "condition", position: 2, inputs: "(x, y, condition)" },
    ParamAsInput { kind: OpKind::Average, param: "weights", position: 1, inputs: "(a, weights)" },
    ParamAsInput { kind: OpKind::Bincount, param: "weights", position: 1, inputs: "(x, weights)" },
];

/// The entry of [`PARAMS_AS_INPUTS`] for `param` of `kind`, if that param became an input.
pub fn param_as_input(kind: OpKind, param: &str) -> Option<&'static ParamAsInput> {
    PARAMS_AS_INPUTS.iter().find(|p| p.kind == kind && p.param == param)
}

/// A malformed operation (unknown operator, bad params).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// The operator name is in neither the short nor the wire names.
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),
    /// A param of the original that is a positional input here
    /// ([`PARAMS_AS_INPUTS`]).
    #[error("`{op}` takes `{param}` as its input {position} (inputs {inputs}), not as a param")]
    ParamIsAnInput {
        /// Short name of the op.
        op: &'static str,
        /// The param given.
        param: &'static str,
        /// The input that replaces it (0-based).
        position: usize,
        /// The op's inputs.
        inputs: &'static str,
    },
    /// The params do not fit the op's params type.
    #[error("bad params for `{op}`: {reason}")]
    BadParams {
        /// Short name of the op.
        op: &'static str,
        /// What serde said.
        reason: String,
    },
}

/// Generates [`OpKind`] and [`Operation`] from the table below. Each row: variant, short and
/// wire names, group, arity, params type, and in brackets the params fields that name earlier
/// ops (`Option<OpId>`), from which [`Operation::param_refs`] and [`Operation::param_refs_mut`]
/// are generated by field access (a row naming a field its params lack does not compile).
macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident = $short:literal / $wire:literal, $group:ident, $arity:expr, $params:ty $([$($ref:ident),+])?; )*) => {
        /// Every operator of the catalogue, without params.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $( $(#[$doc])* $variant, )*
        }

        impl OpKind {
            /// All 147 kinds, in catalogue order.
            pub const ALL: &'static [OpKind] = &[ $( OpKind::$variant, )* ];

            /// The original's registry key (`matrix_sum` → `sum`).
            pub fn short_name(self) -> &'static str {
                match self { $( OpKind::$variant => $short, )* }
            }

            /// The original's wire name (the `Operators.*` string).
            pub fn wire_name(self) -> &'static str {
                match self { $( OpKind::$variant => $wire, )* }
            }

            /// Catalogue group.
            pub fn group(self) -> Group {
                match self { $( OpKind::$variant => Group::$group, )* }
            }

            /// Number of positional inputs.
            pub fn arity(self) -> Arity {
                match self { $( OpKind::$variant => $arity, )* }
            }

            /// Looks a kind up by short name, then by wire name.
            pub fn from_name(name: &str) -> Option<OpKind> {
                OpKind::ALL.iter().copied().find(|k| k.short_name() == name)
                    .or_else(|| OpKind::ALL.iter().copied().find(|k| k.wire_name() == name))
            }
        }

        /// An operator with its typed params.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Operation {
            $( $(#[$doc])* $variant($params), )*
        }

        impl Operation {
            /// The operator without params.
            pub fn kind(&self) -> OpKind {
                match self { $( Operation::$variant(_) => OpKind::$variant, )* }
            }

            /// Builds an operation from a kind and JSON params (`null` means defaults).
            pub fn from_json_params(kind: OpKind, params: serde_json::Value) -> Result<Operation, OperationError> {
                let params = if params.is_null() { serde_json::Value::Object(Default::default()) } else { params };
                if let Some(moved) = params.as_object().and_then(|map| {
                    map.keys().find_map(|key| param_as_input(kind, key))
                }) {
                    return Err(OperationError::ParamIsAnInput {
                        op: kind.short_name(),
                        param: moved.param,
                        position: moved.position,
                        inputs: moved.inputs,
                    });
                }
                let bad = |e: serde_json::Error| OperationError::BadParams { op: kind.short_name(), reason: e.to_string() };
                Ok(match kind {
                    $( OpKind::$variant => Operation::$variant(serde_json::from_value(params).map_err(bad)?), )*
                })
            }

            /// The params as JSON.
            pub fn params_json(&self) -> serde_json::Value {
                let value = match self {
                    $( Operation::$variant(p) => serde_json::to_value(p), )*
                };
                value.expect("catalogue params serialize to JSON")
            }

            /// Op ids referenced from params (`previous_forward_pass`, `model`): extra
            /// dependencies of the op. On the wire they name the requester's own ids; ravsock
            /// stores them as server ids.
            pub fn param_refs(&self) -> Vec<OpId> {
                match self {
                    $( Operation::$variant(_params) => {
                        let refs: Vec<Option<OpId>> = vec![$($(_params.$ref),+)?];
                        refs.into_iter().flatten().collect()
                    } )*
                }
            }

            /// The param references, to rewrite them in place (see [`Operation::map_param_refs`]).
            pub fn param_refs_mut(&mut self) -> Vec<&mut OpId> {
                match self {
                    $( Operation::$variant(_params) => {
                        let refs: Vec<Option<&mut OpId>> = vec![$($(_params.$ref.as_mut()),+)?];
                        refs.into_iter().flatten().collect()
                    } )*
                }
            }
        }
    };
}

use Arity::{AtLeast, Exact};

const fn range(min: usize, max: usize) -> Arity {
    Arity::Range { min, max }
}

catalogue! {
    // A. Input / special
    /// A constant value node.
    Lin = "lin" / "linear", Input, Exact(0), LinParams;
    /// A model file node (ONNX).
    PytorchModel = "pytorch_model" / "pytorch_model", Input, Exact(0), ModelParams;
    // B. Arithmetic
    /// a + b.
    Add = "add" / "addition", Arithmetic, Exact(2), AddParams;
    /// a − b.
    Sub = "sub" / "subtraction", Arithmetic, Exact(2), NoParams;
    /// a · b.
    Mul = "mul" / "multiplication", Arithmetic, Exact(2), NoParams;
    /// a · b (same as `mul`).
    Multiply = "multiply" / "multiply", Arithmetic, Exact(2), NoParams;
    /// a / b (true division).
    Div = "div" / "division", Arithmetic, Exact(2), NoParams;
    /// a ^ b.
    Pow = "pow" / "power", Arithmetic, Exact(2), NoParams;
    /// +a.
    Pos = "pos" / "positive", Arithmetic, Exact(1), NoParams;
    /// −a.
    Neg = "neg" / "negation", Arithmetic, Exact(1), NoParams;
    /// e^a.
    Exp = "exp" / "exponential", Arithmetic, Exact(1), NoParams;
    /// ln a.
    Natlog = "natlog" / "natural_log", Arithmetic, Exact(1), NoParams;
    /// a².
    Square = "square" / "square", Arithmetic, Exact(1), NoParams;
    /// a³.
    Cube = "cube" / "cube", Arithmetic, Exact(1), NoParams;
    /// √a.
    SquareRoot = "square_root" / "square_root", Arithmetic, Exact(1), NoParams;
    /// ∛a.
    CubeRoot = "cube_root" / "cube_root", Arithmetic, Exact(1), NoParams;
    /// |a|.
    Abs = "abs" / "absolute", Arithmetic, Exact(1), NoParams;
    // C. Linear algebra and shape
    /// Matrix product (NumPy `matmul`).
    Matmul = "matmul" / "matrix_multiplication", LinalgShape, Exact(2), NoParams;
    /// NumPy `dot`.
    Dot = "dot" / "dot", LinalgShape, Exact(2), NoParams;
    /// Permute axes.
    Transpose = "transpose" / "transpose", LinalgShape, Exact(1), TransposeParams;
    /// Matrix inverse.
    Inv = "inv" / "inv", LinalgShape, Exact(1), NoParams;
    /// Sum.
    Sum = "sum" / "matrix_sum", LinalgShape, Exact(1), ReduceParams;
    /// Product.
    Prod = "prod" / "prod", LinalgShape, Exact(1), ReduceParams;
    /// New shape.
    Reshape = "reshape" / "reshape", LinalgShape, Exact(1), ReshapeParams;
    /// Flatten to 1-D.
    Flatten = "flatten" / "flatten", LinalgShape, Exact(1), NoParams;
    /// Ravel in C or F order.
    Ravel = "ravel" / "ravel", LinalgShape, Exact(1), RavelParams;
    /// Drop length-1 axes.
    Squeeze = "squeeze" / "squeeze", LinalgShape, Exact(1), AxesParams;
    /// Insert axes.
    ExpandDims = "expand_dims" / "expand_dims", LinalgShape, Exact(1), ExpandDimsParams;
    /// Join along an existing axis.
    Concat = "concat" / "concatenate", LinalgShape, AtLeast(1), JoinParams;
    /// Join along a new axis.
    Stack = "stack" / "stack", LinalgShape, AtLeast(1), JoinParams;
    /// Split into a list of parts.
    Split = "split" / "split", LinalgShape, Exact(1), SplitParams;
    /// Tile `a` by the reps in `b`.
    Tile = "tile" / "tile", LinalgShape, Exact(2), NoParams;
    /// Flip (NumPy `flip`).
    Reverse = "reverse" / "reverse", LinalgShape, Exact(1), AxesParams;
    /// Sort along an axis.
    Sort = "sort" / "sort", LinalgShape, Exact(1), SortParams;
    /// Sorted unique values.
    Unique = "unique" / "unique", LinalgShape, Exact(1), UniqueParams;
    /// Minimum.
    Min = "min" / "min", LinalgShape, Exact(1), ReduceParams;
    /// Maximum.
    Max = "max" / "max", LinalgShape, Exact(1), ReduceParams;
    /// Index of the maximum.
    Argmax = "argmax" / "argmax", LinalgShape, Exact(1), ArgParams;
    /// Index of the minimum.
    Argmin = "argmin" / "argmin", LinalgShape, Exact(1), ArgParams;
    /// `[a[i] for i in b]`.
    Gather = "gather" / "gather", LinalgShape, Exact(2), NoParams;
    /// `a[begin:begin+size]` per leading axis.
    Slice = "slice" / "slice", LinalgShape, Exact(1), SliceParams;
    /// Positions in `a` of each value of `b` (a list).
    FindIndices = "find_indices" / "find_indices", LinalgShape, Exact(2), NoParams;
    /// Shape, or one dimension.
    Shape = "shape" / "shape", LinalgShape, Exact(1), ShapeParams;
    /// Element count.
    Size = "size" / "size", LinalgShape, Exact(1), NoParams;
    /// NumPy `pad`.
    Pad = "pad" / "pad", LinalgShape, Exact(1), PadParams;
    /// NumPy `repeat`.
    Repeat = "repeat" / "repeat", LinalgShape, Exact(1), RepeatParams;
    /// `arange(a, b, step)`.
    Arange = "arange" / "arange", LinalgShape, Exact(2), ArangeParams;
    /// Zeros of the shape given as input.
    Zeros = "zeros" / "zeros", LinalgShape, Exact(1), ZerosParams;
    /// `a[indices]`.
    Index = "index" / "index", LinalgShape, Exact(1), IndexParams;
    /// `a[indices] = b` (returns the updated copy).
    SetValue = "set_value" / "set_value", LinalgShape, Exact(2), IndexParams;
    /// Append `b` to `a`, flattened.
    JoinToList = "join_to_list" / "join_to_list", LinalgShape, Exact(2), NoParams;
    /// `array([a, b])`.
    CombineToList = "combine_to_list" / "combine_to_list", LinalgShape, Exact(2), NoParams;
    /// `int(a)`.
    Ravint = "ravint" / "ravint", LinalgShape, Exact(1), NoParams;
    /// `a[:, i1, i2, i3]`.
    CnnIndex = "cnn_index" / "cnn_index", LinalgShape, Exact(1), CnnIndexParams;
    /// Crop padding out of NCHW.
    CnnIndex2 = "cnn_index_2" / "cnn_index_2", LinalgShape, Exact(1), CnnCropParams;
    /// Scatter-add `b` into `a[:, i1, i2, i3]`.
    CnnAddAt = "cnn_add_at" / "cnn_add_at", LinalgShape, Exact(2), CnnIndexParams;
    /// One-hot of `a` with depth `b`.
    OneHotEncoding = "one_hot_encoding" / "one_hot_encoding", LinalgShape, Exact(2), NoParams;
    /// Clip to bounds.
    Clip = "clip" / "clip", LinalgShape, Exact(1), ClipParams;
    /// `where(condition, x, y)` with inputs `(x, y, condition)`.
    Where = "where" / "where", LinalgShape, Exact(3), NoParams;
    /// Sign.
    Sign = "sign" / "sign", LinalgShape, Exact(1), NoParams;
    /// Apply an op to each `a[i]`.
    Foreach = "foreach" / "foreach", LinalgShape, Exact(1), ForeachParams;
    /// Uniform random on `[a, b)`.
    RandomUniform = "random_uniform" / "random_uniform", LinalgShape, Exact(2), RandomUniformParams;
    /// Seeded random tensor.
    Random = "random" / "random", LinalgShape, Exact(0), RandomParams;
    // D. Comparison and logic
    /// a > b.
    Greater = "greater" / "greater", Logic, Exact(2), NoParams;
    /// a ≥ b.
    GreaterEqual = "greater_equal" / "greater_equal", Logic, Exact(2), NoParams;
    /// a < b.
    Less = "less" / "less", Logic, Exact(2), NoParams;
    /// a ≤ b.
    LessEqual = "less_equal" / "less_equal", Logic, Exact(2), NoParams;
    /// a = b.
    Equal = "equal" / "equal", Logic, Exact(2), NoParams;
    /// a ≠ b.
    NotEqual = "not_equal" / "not_equal", Logic, Exact(2), NoParams;
    /// a ∧ b.
    LogicalAnd = "logical_and" / "logical_and", Logic, Exact(2), NoParams;
    /// a ∨ b.
    LogicalOr = "logical_or" / "logical_or", Logic, Exact(2), NoParams;
    /// a ⊕ b.
    LogicalXor = "logical_xor" / "logical_xor", Logic, Exact(2), NoParams;
    /// ¬a.
    LogicalNot = "logical_not" / "logical_not", Logic, Exact(1), NoParams;
    // E. Statistics
    /// Mean.
    Mean = "mean" / "mean", Statistics, Exact(1), ReduceParams;
    /// Weighted average; weights as optional second input.
    Average = "average" / "average", Statistics, range(1, 2), AverageParams;
    /// Variance.
    Variance = "variance" / "variance", Statistics, Exact(1), StatParams;
    /// Standard deviation.
    Std = "std" / "standard_deviation", Statistics, Exact(1), StatParams;
    /// Most frequent value.
    Mode = "mode" / "mode", Statistics, Exact(1), ModeParams;
    /// Median.
    Median = "median" / "median", Statistics, Exact(1), ReduceParams;
    /// `percentile(a, q=b)`.
    Percentile = "percentile" / "percentile", Statistics, Exact(2), PercentileParams;
    /// Count occurrences; weights as optional second input.
    Bincount = "bincount" / "bincount", Statistics, range(1, 2), BincountParams;
    // F. Classic ML
    /// Fit a linear regression on `(X, y)`.
    LinearRegression = "linear_regression" / "linear_regression", ClassicMl, Exact(2), NoParams;
    /// Fit a logistic regression.
    LogisticRegression = "logistic_regression" / "logistic_regression", ClassicMl, Exact(2), LogisticRegressionParams;
    /// Fit a k-NN classifier.
    KnnClassifier = "knn_classifier" / "knn_classifier", ClassicMl, Exact(2), KnnParams;
    /// Fit a k-NN regressor.
    KnnRegressor = "knn_regressor" / "knn_regressor", ClassicMl, Exact(2), KnnParams;
    /// Fit a Gaussian naive Bayes.
    NaiveBayes = "naive_bayes" / "naive_bayes", ClassicMl, Exact(2), NoParams;
    /// Fit k-means on `X`.
    Kmeans = "kmeans" / "kmeans", ClassicMl, Exact(1), KMeansParams;
    /// Fit an SVM classifier.
    SvmSvc = "svm_svc" / "svm_svc", ClassicMl, Exact(2), SvmParams;
    /// Fit an SVM regressor.
    SvmSvr = "svm_svr" / "svm_svr", ClassicMl, Exact(2), SvmParams;
    /// Fit a decision-tree classifier.
    DecisionTreeClassifier = "decision_tree_classifier" / "decision_tree_classifier", ClassicMl, Exact(2), TreeParams;
    /// Fit a decision-tree regressor.
    DecisionTreeRegressor = "decision_tree_regressor" / "decision_tree_regressor", ClassicMl, Exact(2), TreeParams;
    /// Fit a random-forest classifier.
    RandomForestClassifier = "random_forest_classifier" / "random_forest_classifier", ClassicMl, Exact(2), TreeParams;
    /// Fit a random-forest regressor.
    RandomForestRegressor = "random_forest_regressor" / "random_forest_regressor", ClassicMl, Exact(2), TreeParams;
    /// Predictions of a fitted model (input 0, a fit op's result) for samples `X` (input 1);
    /// cluster indices for k-means. Not in the original, which returned scikit-learn objects.
    Predict = "predict" / "predict", ClassicMl, Exact(2), NoParams;
    /// A fitted model's score on `(X, y)`, as scikit-learn's `score`: accuracy for classifiers,
    /// R² for regressors, minus the inertia of `X` for k-means (`y` is ignored). Not in the
    /// original.
    Score = "score" / "score", ClassicMl, Exact(3), NoParams;
    // G. Deep-learning layers (forward)
    /// Dense layer.
    ForwardPassDense = "forward_pass_dense" / "forward_pass_dense", DeepLearning, Exact(1), DenseParams [previous_forward_pass];
    /// BatchNorm over (N, C).
    ForwardPassBatchnorm1d = "forward_pass_batchnorm1d" / "forward_pass_batchnorm1d", DeepLearning, Exact(1), BatchNormParams [previous_forward_pass];
    /// BatchNorm over NCHW.
    ForwardPassBatchnorm2d = "forward_pass_batchnorm2d" / "forward_pass_batchnorm2d", DeepLearning, Exact(1), BatchNormParams [previous_forward_pass];
    /// LayerNorm.
    ForwardPassLayernorm = "forward_pass_layernorm" / "forward_pass_layernorm", DeepLearning, Exact(1), LayerNormParams [previous_forward_pass];
    /// Dropout.
    ForwardPassDropout = "forward_pass_dropout" / "forward_pass_dropout", DeepLearning, Exact(1), DropoutParams [previous_forward_pass];
    /// Activation.
    ForwardPassActivation = "forward_pass_activation" / "forward_pass_activation", DeepLearning, Exact(1), ActivationParams [previous_forward_pass];
    /// 2-D convolution.
    ForwardPassConv2d = "forward_pass_conv2d" / "forward_pass_conv2d", DeepLearning, Exact(1), Conv2dParams [previous_forward_pass];
    /// 2-D max pooling.
    ForwardPassMaxpool2d = "forward_pass_maxpool2d" / "forward_pass_maxpool2d", DeepLearning, Exact(1), MaxPoolParams [previous_forward_pass];
    /// Flatten layer.
    ForwardPassFlatten = "forward_pass_flatten" / "forward_pass_flatten", DeepLearning, Exact(1), FlattenParams [previous_forward_pass];
    /// Embedding lookup.
    ForwardPassEmbedding = "forward_pass_embedding" / "forward_pass_embedding", DeepLearning, Exact(1), EmbeddingParams [previous_forward_pass];
    /// Reshape layer.
    ForwardPassReshape = "forward_pass_reshape" / "forward_pass_reshape", DeepLearning, Exact(1), LayerReshapeParams [previous_forward_pass];
    /// Transpose layer.
    ForwardPassTranspose = "forward_pass_transpose" / "forward_pass_transpose", DeepLearning, Exact(1), LayerTransposeParams [previous_forward_pass];
    /// Power layer.
    ForwardPassPower = "forward_pass_power" / "forward_pass_power", DeepLearning, Exact(1), LayerPowerParams [previous_forward_pass];
    /// Concat layer.
    ForwardPassConcat = "forward_pass_concat" / "forward_pass_concat", DeepLearning, Exact(2), LayerBinaryParams [previous_forward_pass];
    /// Add layer.
    ForwardPassAdd = "forward_pass_add" / "forward_pass_add", DeepLearning, Exact(2), LayerBinaryParams [previous_forward_pass];
    /// Subtract layer.
    ForwardPassSubtract = "forward_pass_subtract" / "forward_pass_subtract", DeepLearning, Exact(2), LayerBinaryParams [previous_forward_pass];
    /// Dot layer.
    ForwardPassDot = "forward_pass_dot" / "forward_pass_dot", DeepLearning, Exact(2), LayerBinaryParams [previous_forward_pass];
    /// Multiply layer.
    ForwardPassMultiply = "forward_pass_multiply" / "forward_pass_multiply", DeepLearning, Exact(2), LayerBinaryParams [previous_forward_pass];
    /// Division layer.
    ForwardPassDivision = "forward_pass_division" / "forward_pass_division", DeepLearning, Exact(2), LayerBinaryParams [previous_forward_pass];
    // G. Deep-learning layers (explicit backward, v2 era)
    /// Backward of dense.
    BackwardPassDense = "backward_pass_dense" / "backward_pass_dense", DeepLearning, Exact(1), NoParams;
    /// Backward of batchnorm1d.
    BackwardPassBatchnorm1d = "backward_pass_batchnorm1d" / "backward_pass_batchnorm1d", DeepLearning, Exact(1), NoParams;
    /// Backward of batchnorm2d.
    BackwardPassBatchnorm2d = "backward_pass_batchnorm2d" / "backward_pass_batchnorm2d", DeepLearning, Exact(1), NoParams;
    /// Backward of layernorm.
    BackwardPassLayernorm = "backward_pass_layernorm" / "backward_pass_layernorm", DeepLearning, Exact(1), NoParams;
    /// Backward of dropout.
    BackwardPassDropout = "backward_pass_dropout" / "backward_pass_dropout", DeepLearning, Exact(1), NoParams;
    /// Backward of activation.
    BackwardPassActivation = "backward_pass_activation" / "backward_pass_activation", DeepLearning, Exact(1), NoParams;
    /// Backward of conv2d.
    BackwardPassConv2d = "backward_pass_conv2d" / "backward_pass_conv2d", DeepLearning, Exact(1), NoParams;
    /// Backward of flatten.
    BackwardPassFlatten = "backward_pass_flatten" / "backward_pass_flatten", DeepLearning, Exact(1), NoParams;
    /// Backward of maxpool2d.
    BackwardPassMaxpool2d = "backward_pass_maxpool2d" / "backward_pass_maxpool2d", DeepLearning, Exact(1), NoParams;
    /// Backward of embedding.
    BackwardPassEmbedding = "backward_pass_embedding" / "backward_pass_embedding", DeepLearning, Exact(1), NoParams;
    /// Backward of concat.
    BackwardPassConcat = "backward_pass_concat" / "backward_pass_concat", DeepLearning, Exact(1), NoParams;
    /// Backward of add.
    BackwardPassAdd = "backward_pass_add" / "backward_pass_add", DeepLearning, Exact(1), NoParams;
    /// Backward of subtract.
    BackwardPassSubtract = "backward_pass_subtract" / "backward_pass_subtract", DeepLearning, Exact(1), NoParams;
    /// Backward of dot.
    BackwardPassDot = "backward_pass_dot" / "backward_pass_dot", DeepLearning, Exact(1), NoParams;
    /// Backward of reshape.
    BackwardPassReshape = "backward_pass_reshape" / "backward_pass_reshape", DeepLearning, Exact(1), NoParams;
    /// Backward of transpose.
    BackwardPassTranspose = "backward_pass_transpose" / "backward_pass_transpose", DeepLearning, Exact(1), NoParams;
    /// Backward of power.
    BackwardPassPower = "backward_pass_power" / "backward_pass_power", DeepLearning, Exact(1), NoParams;
    /// Backward of multiply.
    BackwardPassMultiply = "backward_pass_multiply" / "backward_pass_multiply", DeepLearning, Exact(1), NoParams;
    /// Backward of division.
    BackwardPassDivision = "backward_pass_division" / "backward_pass_division", DeepLearning, Exact(1), NoParams;
    // H. Whole-model ops
    /// Run a whole model.
    ForwardPass = "forward_pass" / "forward_pass", WholeModel, Exact(1), ForwardPassParams [previous_forward_pass, model];
    /// Backward from a loss and optimizer step; also a subgraph boundary.
    StartBackwardMarker = "start_backward_marker" / "start_backward_marker", WholeModel, Exact(1), BackwardMarkerParams;
    /// Registered, unused in the original.
    StopBackwardMarker = "stop_backward_marker" / "stop_backward_marker", WholeModel, Exact(0), NoParams;
    // I. Losses
    /// Mean squared error of `(y, y_pred)`.
    SquareLoss = "square_loss" / "square_loss", Losses, Exact(2), NoParams;
    /// Cross entropy of `(y, y_pred)`.
    CrossEntropyLoss = "cross_entropy_loss" / "cross_entropy_loss", Losses, Exact(2), CrossEntropyParams;
    /// Gradient of the square loss.
    SquareLossGradient = "square_loss_gradient" / "square_loss_gradient", Losses, Exact(2), NoParams;
    /// Gradient of the cross entropy.
    CrossEntropyGradient = "cross_entropy_gradient" / "cross_entropy_gradient", Losses, Exact(2), NoParams;
    /// Accuracy of class predictions.
    CrossEntropyAccuracy = "cross_entropy_accuracy" / "cross_entropy_accuracy", Losses, Exact(2), NoParams;
    /// Sparse categorical cross entropy.
    SparseCategoricalCrossEntropyLoss = "sparse_categorical_cross_entropy_loss" / "sparse_categorical_crossentropy_loss", Losses, Exact(2), NoParams;
    /// Its gradient.
    SparseCategoricalCrossEntropyGradient = "sparse_categorical_cross_entropy_gradient" / "sparse_categorical_crossentropy_gradient", Losses, Exact(2), NoParams;
    /// Its accuracy.
    SparseCategoricalCrossEntropyAccuracy = "sparse_categorical_cross_entropy_accuracy" / "sparse_categorical_crossentropy_accuracy", Losses, Exact(2), NoParams;
    // J. Federated analytics
    /// Federated mean.
    FederatedMean = "federated_mean" / "federated_mean", Federated, Exact(0), FederatedParams;
    /// Federated variance.
    FederatedVariance = "federated_variance" / "federated_variance", Federated, Exact(0), FederatedParams;
    /// Federated standard deviation.
    FederatedStandardDeviation = "federated_standard_deviation" / "federated_standard_deviation", Federated, Exact(0), FederatedParams;
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

impl Serialize for OpKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.short_name())
    }
}

impl<'de> Deserialize<'de> for OpKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OpKind, D::Error> {
        let name = String::deserialize(d)?;
        OpKind::from_name(&name).ok_or_else(|| serde::de::Error::custom(OperationError::UnknownOperator(name)))
    }
}

impl OpKind {
    /// Whether the op reads or changes a graph's training state (layer weights, optimizer
    /// state, the forward tape): the layers, the two training losses and
    /// `start_backward_marker`. Such ops run in a training session, and a training step (up
    /// to its marker) is never cut between subgraphs.
    pub fn trains(self) -> bool {
        self.group() == Group::DeepLearning
            || matches!(self, OpKind::SquareLoss | OpKind::CrossEntropyLoss | OpKind::StartBackwardMarker)
    }

    /// Whether a graph holding this op stays with one provider (the holder of its state) while
    /// that provider is connected: the layers and the whole-model ops.
    pub fn pinned(self) -> bool {
        matches!(self.group(), Group::DeepLearning | Group::WholeModel)
    }
}

impl Operation {
    /// Param references whose values the kernel reads, in order: `forward_pass`'s `model`
    /// (the ONNX bytes). Executors pass these values after the op's inputs; the other
    /// references (`previous_forward_pass`) only order the ops.
    pub fn value_refs(&self) -> Vec<OpId> {
        match self {
            Operation::ForwardPass(params) => params.model.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Rewrites every param reference through `map` (a requester's ids to the server's); on
    /// failure, the first reference `map` has no id for (the op is then half rewritten).
    pub fn map_param_refs(&mut self, map: impl Fn(OpId) -> Option<OpId>) -> Result<(), OpId> {
        for reference in self.param_refs_mut() {
            *reference = map(*reference).ok_or(*reference)?;
        }
        Ok(())
    }
}

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Operation", 2)?;
        st.serialize_field("operator", self.kind().short_name())?;
        st.serialize_field("params", &self.params_json())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Operation, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Repr {
            operator: OpKind,
            #[serde(default)]
            params: serde_json::Value,
        }
        let repr = Repr::deserialize(d)?;
        Operation::from_json_params(repr.operator, repr.params).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
