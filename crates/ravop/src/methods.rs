//! One method per catalogue op, and operator overloading (the original's §2.5).
//!
//! Methods on [`Op`] take the op as first input, further inputs as `&Op`, and the typed params
//! struct where the op has params. Ops without inputs (`random`, the federated ops) are
//! methods on [`Graph`], as are the variadic `concat` and `stack`.

use crate::graph::{Graph, Op};
use ravproto::ops::*;
use ravproto::{IndexExpr, Operation, Scalar};
use std::ops::{Add, Div, Mul, Neg, Sub};

macro_rules! op_methods {
    ($( $(#[$doc:meta])* $method:ident => $variant:ident ( $($arg:ident),* ) $(: $params:ty)? ; )*) => {
        #[allow(clippy::should_implement_trait)]
        impl Op {
            $(
                $(#[$doc])*
                pub fn $method(&self $(, $arg: &Op)* $(, params: $params)?) -> Op {
                    op_methods!(@call self, $variant, [$($arg),*] $(, params as $params)?)
                }
            )*
        }
    };
    (@call $self:ident, $variant:ident, [$($arg:ident),*], $params:ident as $ty:ty) => {
        $self.apply(Operation::$variant($params), &[$($arg),*])
    };
    (@call $self:ident, $variant:ident, [$($arg:ident),*]) => {
        $self.apply(Operation::$variant(Default::default()), &[$($arg),*])
    };
}

op_methods! {
    // B. Arithmetic
    /// `self + other`.
    add => Add(other);
    /// `self - other`.
    sub => Sub(other);
    /// `self * other`.
    mul => Mul(other);
    /// `self * other` (the `multiply` entry).
    multiply => Multiply(other);
    /// `self / other` (true division).
    div => Div(other);
    /// `self ** other`.
    pow => Pow(other);
    /// `+self`.
    pos => Pos();
    /// `-self`.
    neg => Neg();
    /// `e ** self`.
    exp => Exp();
    /// Natural logarithm.
    natlog => Natlog();
    /// `self ** 2`.
    square => Square();
    /// `self ** 3`.
    cube => Cube();
    /// Square root.
    square_root => SquareRoot();
    /// Cube root.
    cube_root => CubeRoot();
    /// Absolute value.
    abs => Abs();
    // C. Linear algebra and shape
    /// Matrix product.
    matmul => Matmul(other);
    /// NumPy `dot`.
    dot => Dot(other);
    /// Permute axes.
    transpose => Transpose() : TransposeParams;
    /// Matrix inverse.
    inv => Inv();
    /// Sum.
    sum => Sum() : ReduceParams;
    /// Product.
    prod => Prod() : ReduceParams;
    /// New shape (one entry may be -1).
    reshape => Reshape() : ReshapeParams;
    /// Flatten to 1-D.
    flatten => Flatten();
    /// Ravel in C or F order.
    ravel => Ravel() : RavelParams;
    /// Drop length-1 axes.
    squeeze => Squeeze() : AxesParams;
    /// Insert length-1 axes.
    expand_dims => ExpandDims() : ExpandDimsParams;
    /// Concatenate with `other` along an axis.
    concat => Concat(other) : JoinParams;
    /// Split into a list of parts.
    split => Split() : SplitParams;
    /// Tile by the reps in `reps`.
    tile => Tile(reps);
    /// Flip along axes.
    reverse => Reverse() : AxesParams;
    /// Sort along an axis.
    sort => Sort() : SortParams;
    /// Sorted unique values (a list with inverse/counts when asked).
    unique => Unique() : UniqueParams;
    /// Minimum.
    min => Min() : ReduceParams;
    /// Maximum.
    max => Max() : ReduceParams;
    /// Index of the maximum.
    argmax => Argmax() : ArgParams;
    /// Index of the minimum.
    argmin => Argmin() : ArgParams;
    /// `[self[i] for i in indices]`.
    gather => Gather(indices);
    /// `self[begin:begin+size]` per leading axis.
    slice => Slice() : SliceParams;
    /// For each value of `values`, the flat positions in `self` equal to it (a list).
    find_indices => FindIndices(values);
    /// Shape, or one dimension.
    shape => Shape() : ShapeParams;
    /// Element count.
    size => Size();
    /// NumPy `pad`.
    pad => Pad() : PadParams;
    /// NumPy `repeat`.
    repeat => Repeat() : RepeatParams;
    /// `arange(self, stop, step)`.
    arange => Arange(stop) : ArangeParams;
    /// Zeros of the shape held by `self`.
    zeros => Zeros() : ZerosParams;
    /// NumPy `append` of `other` to `self`.
    join_to_list => JoinToList(other);
    /// `array([self, other])`.
    combine_to_list => CombineToList(other);
    /// `int(self)`.
    ravint => Ravint();
    /// `self[:, i1, i2, i3]`.
    cnn_index => CnnIndex() : CnnIndexParams;
    /// Crop padding out of NCHW.
    cnn_index_2 => CnnIndex2() : CnnCropParams;
    /// Scatter-add `values` into `self[:, i1, i2, i3]`.
    cnn_add_at => CnnAddAt(values) : CnnIndexParams;
    /// One-hot of `self` with depth `depth`.
    one_hot_encoding => OneHotEncoding(depth);
    /// Clip to bounds.
    clip => Clip() : ClipParams;
    /// `where(condition, self, other)`.
    where_ => Where(other, condition);
    /// Sign.
    sign => Sign();
    /// Apply an op to each `self[i]` and stack.
    foreach => Foreach() : ForeachParams;
    /// Uniform random on `[self, high)`.
    random_uniform => RandomUniform(high) : RandomUniformParams;
    // D. Comparison and logic
    /// `self > other`.
    greater => Greater(other);
    /// `self >= other`.
    greater_equal => GreaterEqual(other);
    /// `self < other`.
    less => Less(other);
    /// `self <= other`.
    less_equal => LessEqual(other);
    /// `self == other` (element-wise; an op, not a bool).
    equal => Equal(other);
    /// `self != other`.
    not_equal => NotEqual(other);
    /// Logical and.
    logical_and => LogicalAnd(other);
    /// Logical or.
    logical_or => LogicalOr(other);
    /// Logical xor.
    logical_xor => LogicalXor(other);
    /// Logical not.
    logical_not => LogicalNot();
    // E. Statistics
    /// Mean.
    mean => Mean() : ReduceParams;
    /// Average (unweighted; see [`Op::average_weighted`]).
    average => Average() : AverageParams;
    /// Weighted average.
    average_weighted => Average(weights) : AverageParams;
    /// Variance.
    variance => Variance() : StatParams;
    /// Standard deviation.
    std => Std() : StatParams;
    /// Most frequent value.
    mode => Mode() : ModeParams;
    /// Median.
    median => Median() : ReduceParams;
    /// `percentile(self, q)`.
    percentile => Percentile(q) : PercentileParams;
    /// Count occurrences.
    bincount => Bincount() : BincountParams;
    /// Weighted counts.
    bincount_weighted => Bincount(weights) : BincountParams;
    // F. Classic ML (self is X)
    /// Fit a linear regression on `(self, y)`.
    linear_regression => LinearRegression(y);
    /// Fit a logistic regression.
    logistic_regression => LogisticRegression(y) : LogisticRegressionParams;
    /// Fit a k-NN classifier.
    knn_classifier => KnnClassifier(y) : KnnParams;
    /// Fit a k-NN regressor.
    knn_regressor => KnnRegressor(y) : KnnParams;
    /// Fit a Gaussian naive Bayes.
    naive_bayes => NaiveBayes(y);
    /// Fit k-means.
    kmeans => Kmeans() : KMeansParams;
    /// Fit an SVM classifier.
    svm_svc => SvmSvc(y) : SvmParams;
    /// Fit an SVM regressor.
    svm_svr => SvmSvr(y) : SvmParams;
    /// Fit a decision-tree classifier.
    decision_tree_classifier => DecisionTreeClassifier(y) : TreeParams;
    /// Fit a decision-tree regressor.
    decision_tree_regressor => DecisionTreeRegressor(y) : TreeParams;
    /// Fit a random-forest classifier.
    random_forest_classifier => RandomForestClassifier(y) : TreeParams;
    /// Fit a random-forest regressor.
    random_forest_regressor => RandomForestRegressor(y) : TreeParams;
    /// Predictions of the fitted model `self` for samples `x`.
    predict => Predict(x);
    /// Score of the fitted model `self` on `(x, y)` (accuracy, R², or minus the k-means inertia).
    score => Score(x, y);
    // G. Deep-learning layers
    /// Dense layer.
    forward_pass_dense => ForwardPassDense() : DenseParams;
    /// BatchNorm over (N, C).
    forward_pass_batchnorm1d => ForwardPassBatchnorm1d() : BatchNormParams;
    /// BatchNorm over NCHW.
    forward_pass_batchnorm2d => ForwardPassBatchnorm2d() : BatchNormParams;
    /// LayerNorm.
    forward_pass_layernorm => ForwardPassLayernorm() : LayerNormParams;
    /// Dropout.
    forward_pass_dropout => ForwardPassDropout() : DropoutParams;
    /// Activation.
    forward_pass_activation => ForwardPassActivation() : ActivationParams;
    /// 2-D convolution.
    forward_pass_conv2d => ForwardPassConv2d() : Conv2dParams;
    /// 2-D max pooling.
    forward_pass_maxpool2d => ForwardPassMaxpool2d() : MaxPoolParams;
    /// Flatten layer.
    forward_pass_flatten => ForwardPassFlatten() : FlattenParams;
    /// Embedding lookup.
    forward_pass_embedding => ForwardPassEmbedding() : EmbeddingParams;
    /// Reshape layer.
    forward_pass_reshape => ForwardPassReshape() : LayerReshapeParams;
    /// Transpose layer.
    forward_pass_transpose => ForwardPassTranspose() : LayerTransposeParams;
    /// Power layer.
    forward_pass_power => ForwardPassPower() : LayerPowerParams;
    /// Concat layer.
    forward_pass_concat => ForwardPassConcat(other) : LayerBinaryParams;
    /// Add layer.
    forward_pass_add => ForwardPassAdd(other) : LayerBinaryParams;
    /// Subtract layer.
    forward_pass_subtract => ForwardPassSubtract(other) : LayerBinaryParams;
    /// Dot layer.
    forward_pass_dot => ForwardPassDot(other) : LayerBinaryParams;
    /// Multiply layer.
    forward_pass_multiply => ForwardPassMultiply(other) : LayerBinaryParams;
    /// Division layer.
    forward_pass_division => ForwardPassDivision(other) : LayerBinaryParams;
    /// Backward of dense (v2 era).
    backward_pass_dense => BackwardPassDense();
    /// Backward of batchnorm1d.
    backward_pass_batchnorm1d => BackwardPassBatchnorm1d();
    /// Backward of batchnorm2d.
    backward_pass_batchnorm2d => BackwardPassBatchnorm2d();
    /// Backward of layernorm.
    backward_pass_layernorm => BackwardPassLayernorm();
    /// Backward of dropout.
    backward_pass_dropout => BackwardPassDropout();
    /// Backward of activation.
    backward_pass_activation => BackwardPassActivation();
    /// Backward of conv2d.
    backward_pass_conv2d => BackwardPassConv2d();
    /// Backward of flatten.
    backward_pass_flatten => BackwardPassFlatten();
    /// Backward of maxpool2d.
    backward_pass_maxpool2d => BackwardPassMaxpool2d();
    /// Backward of embedding.
    backward_pass_embedding => BackwardPassEmbedding();
    /// Backward of concat.
    backward_pass_concat => BackwardPassConcat();
    /// Backward of add.
    backward_pass_add => BackwardPassAdd();
    /// Backward of subtract.
    backward_pass_subtract => BackwardPassSubtract();
    /// Backward of dot.
    backward_pass_dot => BackwardPassDot();
    /// Backward of reshape.
    backward_pass_reshape => BackwardPassReshape();
    /// Backward of transpose.
    backward_pass_transpose => BackwardPassTranspose();
    /// Backward of power.
    backward_pass_power => BackwardPassPower();
    /// Backward of multiply.
    backward_pass_multiply => BackwardPassMultiply();
    /// Backward of division.
    backward_pass_division => BackwardPassDivision();
    // H. Whole models
    /// Run a whole model on `self`.
    forward_pass => ForwardPass() : ForwardPassParams;
    /// Backward from this loss, then an optimizer step.
    start_backward_marker => StartBackwardMarker() : BackwardMarkerParams;
    // I. Losses (self is y)
    /// Mean squared error against `y_pred`.
    square_loss => SquareLoss(y_pred);
    /// Cross entropy against `y_pred`.
    cross_entropy_loss => CrossEntropyLoss(y_pred) : CrossEntropyParams;
    /// Gradient of the square loss.
    square_loss_gradient => SquareLossGradient(y_pred);
    /// Gradient of the cross entropy.
    cross_entropy_gradient => CrossEntropyGradient(y_pred);
    /// Accuracy of class predictions.
    cross_entropy_accuracy => CrossEntropyAccuracy(y_pred);
    /// Sparse categorical cross entropy.
    sparse_categorical_cross_entropy_loss => SparseCategoricalCrossEntropyLoss(y_pred);
    /// Its gradient.
    sparse_categorical_cross_entropy_gradient => SparseCategoricalCrossEntropyGradient(y_pred);
    /// Its accuracy.
    sparse_categorical_cross_entropy_accuracy => SparseCategoricalCrossEntropyAccuracy(y_pred);
}

/// A subscript given as NumPy-style text or as a typed expression.
pub trait IntoIndex {
    /// The typed expression, or the parse error's message.
    fn into_index(self) -> Result<IndexExpr, String>;
}

impl IntoIndex for IndexExpr {
    fn into_index(self) -> Result<IndexExpr, String> {
        Ok(self)
    }
}

impl IntoIndex for &str {
    fn into_index(self) -> Result<IndexExpr, String> {
        self.parse().map_err(|e: ravproto::IndexParseError| e.to_string())
    }
}

impl Op {
    fn indexed(&self, indices: impl IntoIndex, set: Option<&Op>) -> Op {
        let parsed = indices.into_index();
        let params = IndexParams { indices: parsed.clone().unwrap_or_default() };
        let op = match set {
            Some(value) => self.apply(Operation::SetValue(params), &[value]),
            None => self.apply(Operation::Index(params), &[]),
        };
        if let Err(reason) = parsed {
            op.graph.record_error(op.id, op_kind_name(set.is_some()), reason);
        }
        op
    }

    /// `self[indices]`, from text like `"[1:, ::2, -1]"` (parsed, never evaluated) or an
    /// [`IndexExpr`].
    pub fn index(&self, indices: impl IntoIndex) -> Op {
        self.indexed(indices, None)
    }

    /// A copy of `self` with `self[indices] = value`.
    pub fn set_value(&self, indices: impl IntoIndex, value: &Op) -> Op {
        self.indexed(indices, Some(value))
    }
}

fn op_kind_name(set: bool) -> &'static str {
    if set { "set_value" } else { "index" }
}

impl Graph {
    /// Concatenate several ops along an axis. One op alone is NumPy's sequence of its rows
    /// (`np.concatenate(a)` joins `a[0], a[1], …`), as is a list value (`split`'s result).
    pub fn concat(&self, ops: &[&Op], params: JoinParams) -> Op {
        self.push(Operation::Concat(params), ops)
    }

    /// Stack several ops along a new axis. One op alone is NumPy's sequence of its rows:
    /// `np.stack(a, axis)` moves `a`'s first axis to `axis` (use `expand_dims` for `[a]`).
    pub fn stack(&self, ops: &[&Op], params: JoinParams) -> Op {
        self.push(Operation::Stack(params), ops)
    }

    /// A seeded random tensor.
    pub fn random(&self, params: RandomParams) -> Op {
        self.push(Operation::Random(params), &[])
    }

    /// Federated mean over providers' data.
    pub fn federated_mean(&self, params: FederatedParams) -> Op {
        self.push(Operation::FederatedMean(params), &[])
    }

    /// Federated variance over providers' data.
    pub fn federated_variance(&self, params: FederatedParams) -> Op {
        self.push(Operation::FederatedVariance(params), &[])
    }

    /// Federated standard deviation over providers' data.
    pub fn federated_standard_deviation(&self, params: FederatedParams) -> Op {
        self.push(Operation::FederatedStandardDeviation(params), &[])
    }

    /// The unused `stop_backward_marker` entry.
    pub fn stop_backward_marker(&self) -> Op {
        self.push(Operation::StopBackwardMarker(NoParams {}), &[])
    }
}

macro_rules! overload {
    ($trait:ident, $method:ident, $variant:ident) => {
        impl $trait<&Op> for &Op {
            type Output = Op;
            fn $method(self, rhs: &Op) -> Op {
                self.apply(Operation::$variant(Default::default()), &[rhs])
            }
        }
        impl $trait<Op> for Op {
            type Output = Op;
            fn $method(self, rhs: Op) -> Op {
                $trait::$method(&self, &rhs)
            }
        }
        impl $trait<&Op> for Op {
            type Output = Op;
            fn $method(self, rhs: &Op) -> Op {
                $trait::$method(&self, rhs)
            }
        }
        impl $trait<Op> for &Op {
            type Output = Op;
            fn $method(self, rhs: Op) -> Op {
                $trait::$method(self, &rhs)
            }
        }
        impl<S: Into<Scalar>> $trait<S> for &Op {
            type Output = Op;
            fn $method(self, rhs: S) -> Op {
                let rhs = self.graph.scalar(rhs);
                $trait::$method(self, &rhs)
            }
        }
        impl<S: Into<Scalar>> $trait<S> for Op {
            type Output = Op;
            fn $method(self, rhs: S) -> Op {
                $trait::$method(&self, rhs)
            }
        }
        impl $trait<&Op> for f64 {
            type Output = Op;
            fn $method(self, rhs: &Op) -> Op {
                let lhs = rhs.graph.scalar(self);
                $trait::$method(&lhs, rhs)
            }
        }
        impl $trait<Op> for f64 {
            type Output = Op;
            fn $method(self, rhs: Op) -> Op {
                $trait::$method(self, &rhs)
            }
        }
    };
}

overload!(Add, add, Add);
overload!(Sub, sub, Sub);
overload!(Mul, mul, Mul);
overload!(Div, div, Div);

impl Neg for &Op {
    type Output = Op;
    fn neg(self) -> Op {
        self.apply(Operation::Neg(NoParams {}), &[])
    }
}

impl Neg for Op {
    type Output = Op;
    fn neg(self) -> Op {
        -&self
    }
}
