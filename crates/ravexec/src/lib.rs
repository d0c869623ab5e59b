//! Raven kernels: execute catalogue ops on ndarray + rayon with NumPy semantics.
//!
//! [`execute`] runs one [`Operation`] on its input values and returns the result or an
//! [`ExecError`] naming the op and the reason; it never panics on bad input. Its dispatch is one
//! match with an arm per catalogue op, so a new op does not compile until it has its arm.
//! Groups B to E (arithmetic, linear algebra and shape, logic, statistics) are implemented
//! here, including the ops the original registered but never implemented (`cube`, `slice`,
//! `median`, `sign`, `random`), group I's losses, gradients and accuracies, classic ML (group F,
//! [`classic`]) and whole ONNX models (`forward_pass`, with the `onnx` feature). The
//! deep-learning layers, optimizers and losses are in [`nn`] as functions with their backward
//! passes; the ops that keep training state between ops run in a [`train::Session`], and
//! [`run::run_ops`] runs a list of ops the way both executors do. Input nodes, federated ops
//! and the explicit backward ops of the original return [`ErrorKind::Unsupported`].
//!
//! Semantics follow NumPy 2 (broadcasting, `axis`/`keepdims`, NEP 50 promotion, `ddof`,
//! percentile methods). Where NumPy returns a dtype we do not carry, see [`tensor`] for the
//! mapping.

pub mod budget;
pub mod classic;
mod elementwise;
mod error;
mod index;
pub mod infer;
mod linalg;
mod losses;
pub mod nn;
#[cfg(feature = "onnx")]
mod onnx;
mod random;
mod reduce;
pub mod run;
mod shape;
pub mod store;
mod svm;
pub mod tensor;
pub mod train;
mod trees;

pub use budget::MemoryBudget;
pub use error::{ErrorKind, ExecError};
pub use store::ValueStore;
pub use tensor::{Elem, Tensor, TensorValue};

use error::KResult;
use ravproto::ops::{Distribution, Order};
use ravproto::{IndexExpr, IndexItem, OpKind, Operation};

fn tensor_at(inputs: &[TensorValue], i: usize) -> KResult<&Tensor> {
    inputs[i].as_tensor().ok_or(ErrorKind::NotTensor(i))
}

/// Inputs of `concat` and `stack` when several are given, or the items of a single list
/// input: NumPy's sequence argument. A single tensor is a sequence too (its rows), which
/// [`join`] handles without splitting it.
fn tensor_list(inputs: &[TensorValue]) -> KResult<Vec<&Tensor>> {
    let items: Vec<&TensorValue> = match inputs {
        [TensorValue::List(items)] => items.iter().collect(),
        _ => inputs.iter().collect(),
    };
    if items.is_empty() {
        return Err(ErrorKind::Value("need at least one array".into()));
    }
    items.into_iter().enumerate().map(|(i, v)| v.as_tensor().ok_or(ErrorKind::NotTensor(i))).collect()
}

/// `concat` and `stack` as NumPy reads their one argument: `np.stack(a)` for a single array
/// `a` joins `a[0], a[1], …`, not the one-element sequence `[a]`.
fn join(kind: OpKind, inputs: &[TensorValue], axis: i64) -> KResult<Tensor> {
    let stack = kind == OpKind::Stack;
    if let [TensorValue::Tensor(a)] = inputs {
        return if stack { shape::stack_rows(a, axis) } else { shape::concat_rows(a, axis) };
    }
    let tensors = tensor_list(inputs)?;
    if stack { shape::stack(&tensors, axis) } else { shape::concat(&tensors, axis) }
}

/// Runs one op on its inputs, outside a training session: an op that keeps training state
/// (the layers, `start_backward_marker`) is refused, and the training losses are computed
/// without a tape. [`train::Session::run`] runs those.
pub fn execute(operation: &Operation, inputs: &[TensorValue]) -> Result<TensorValue, ExecError> {
    let kind = operation.kind();
    let error = |kind_error| ExecError { op: kind, kind: kind_error };
    match plan(operation, inputs)? {
        Step::Done(value) => Ok(value),
        Step::Train(stateful) => without_session(kind, stateful, inputs).map_err(error),
    }
}

/// What running an op takes: a kernel computed its value, or it reads or changes training
/// state ([`OpKind::trains`]) and a session computes it.
pub(crate) enum Step<'a> {
    /// The kernel's value.
    Done(TensorValue),
    /// A training op, for [`train::Session`].
    Train(train::Stateful<'a>),
}

/// Checks the op's arity and runs its kernel, or hands a training op back.
pub(crate) fn plan<'a>(operation: &'a Operation, inputs: &[TensorValue]) -> Result<Step<'a>, ExecError> {
    let kind = operation.kind();
    let arity = kind.arity();
    let list_input = matches!(inputs, [TensorValue::List(_)]) && matches!(kind, OpKind::Concat | OpKind::Stack);
    // The values of param references (`forward_pass`'s model) follow the inputs.
    let given = inputs.len().checked_sub(operation.value_refs().len());
    if !given.is_some_and(|n| arity.accepts(n)) && !list_input {
        return Err(ExecError { op: kind, kind: ErrorKind::Arity { expected: arity, got: given.unwrap_or(0) } });
    }
    run(operation, inputs).map_err(|kind_error| ExecError { op: kind, kind: kind_error })
}

/// A training op without a session: the losses are plain values then, the rest need one.
fn without_session(kind: OpKind, stateful: train::Stateful<'_>, inputs: &[TensorValue]) -> KResult<TensorValue> {
    use train::Stateful as S;
    let t = |i: usize| tensor_at(inputs, i);
    let loss = match stateful {
        S::Loss(train::TrainingLoss::Square) => losses::loss_op(OpKind::SquareLoss, t(0)?, t(1)?, None)?,
        S::Loss(train::TrainingLoss::CrossEntropy(p)) => {
            losses::loss_op(OpKind::CrossEntropyLoss, t(0)?, t(1)?, Some(p))?
        }
        S::Dense(_)
        | S::Activation(_)
        | S::Dropout(_)
        | S::Flatten(_)
        | S::Conv2d(_)
        | S::Maxpool2d(_)
        | S::Batchnorm(_)
        | S::Layernorm(_)
        | S::Embedding(_)
        | S::Binary(_)
        | S::StartBackwardMarker(_) => {
            return Err(ErrorKind::Unsupported(format!(
                "`{kind}` keeps training state: it runs in a training session (`ravexec::train::Session`)"
            )));
        }
    };
    Ok(TensorValue::Tensor(loss))
}

/// Every op of the catalogue, one arm each (no wildcard: a new op does not compile until it
/// has its arm here).
fn run<'a>(operation: &'a Operation, inputs: &[TensorValue]) -> KResult<Step<'a>> {
    use Operation as O;
    use classic::Estimator;
    use train::Stateful as S;
    let t = |i: usize| tensor_at(inputs, i);
    // Group F: the value is the fitted model; k-means has no targets.
    let fit = |estimator: Estimator<'_>| {
        let y = if inputs.len() > 1 { Some(t(1)?) } else { None };
        classic::fit(operation.kind(), estimator, t(0)?, y).map(|model| classic::model_tensor(&model))
    };
    let out: Tensor = match operation {
        O::Add(params) => {
            if params.key.is_some() {
                return Err(ErrorKind::Unsupported(
                    "`key` selects from layer outputs, which arrive with the deep-learning ops".into(),
                ));
            }
            elementwise::arithmetic(OpKind::Add, t(0)?, t(1)?)?
        }
        O::Sub(_) | O::Mul(_) | O::Multiply(_) | O::Div(_) | O::Pow(_) => {
            elementwise::arithmetic(operation.kind(), t(0)?, t(1)?)?
        }
        O::Pos(_)
        | O::Neg(_)
        | O::Exp(_)
        | O::Natlog(_)
        | O::Square(_)
        | O::Cube(_)
        | O::SquareRoot(_)
        | O::CubeRoot(_)
        | O::Abs(_)
        | O::Sign(_) => elementwise::unary(operation.kind(), t(0)?)?,
        O::Greater(_) | O::GreaterEqual(_) | O::Less(_) | O::LessEqual(_) | O::Equal(_) | O::NotEqual(_) => {
            elementwise::compare(operation.kind(), t(0)?, t(1)?)?
        }
        O::LogicalAnd(_) | O::LogicalOr(_) | O::LogicalXor(_) => {
            elementwise::logical(operation.kind(), t(0)?, Some(t(1)?))?
        }
        O::LogicalNot(_) => elementwise::logical(OpKind::LogicalNot, t(0)?, None)?,
        O::Matmul(_) => linalg::matmul(t(0)?, t(1)?)?,
        O::Dot(_) => linalg::dot(t(0)?, t(1)?)?,
        O::Inv(_) => linalg::inv(t(0)?)?,
        O::Transpose(p) => shape::transpose(t(0)?, p.axes.as_deref())?,
        O::Sum(p) => reduce::sum_prod(OpKind::Sum, t(0)?, p.axis.as_ref(), p.keepdims)?,
        O::Prod(p) => reduce::sum_prod(OpKind::Prod, t(0)?, p.axis.as_ref(), p.keepdims)?,
        O::Min(p) => reduce::min_max(OpKind::Min, t(0)?, p.axis.as_ref(), p.keepdims)?,
        O::Max(p) => reduce::min_max(OpKind::Max, t(0)?, p.axis.as_ref(), p.keepdims)?,
        O::Argmax(p) => reduce::arg_extreme(OpKind::Argmax, t(0)?, p.axis, p.keepdims)?,
        O::Argmin(p) => reduce::arg_extreme(OpKind::Argmin, t(0)?, p.axis, p.keepdims)?,
        O::Reshape(p) => shape::reshape(t(0)?, &p.shape)?,
        O::Flatten(_) => shape::ravel(t(0)?, Order::C),
        O::Ravel(p) => shape::ravel(t(0)?, p.order),
        O::Squeeze(p) => shape::squeeze(t(0)?, p.axis.as_ref())?,
        O::ExpandDims(p) => shape::expand_dims(t(0)?, &p.axis)?,
        O::Concat(p) => join(OpKind::Concat, inputs, p.axis)?,
        O::Stack(p) => join(OpKind::Stack, inputs, p.axis)?,
        O::Split(p) => return shape::split(t(0)?, &p.num_or_size_splits, p.axis).map(Step::Done),
        O::Tile(_) => shape::tile(t(0)?, t(1)?)?,
        O::Reverse(p) => shape::reverse(t(0)?, p.axis.as_ref())?,
        O::Sort(p) => shape::sort(t(0)?, p.axis)?,
        O::Unique(p) => return shape::unique(t(0)?, p.axis, p.return_inverse, p.return_counts).map(Step::Done),
        O::Gather(_) => {
            let source = t(0)?;
            if source.ndim() == 0 {
                return Err(ErrorKind::Index("cannot gather from a 0-d array".into()));
            }
            index::index(source, &IndexExpr(vec![index::array_item(t(1)?)?]))?
        }
        O::Slice(p) => {
            if p.begin.len() != p.size.len() {
                return Err(ErrorKind::Value("begin and size must have the same length".into()));
            }
            let items = p
                .begin
                .iter()
                .zip(&p.size)
                .map(|(&begin, &size)| match size {
                    -1 => Ok(IndexItem::Slice { start: Some(begin), stop: None, step: None }),
                    s if s < 0 => Err(ErrorKind::Value(format!("slice size {s} must be -1 or non-negative"))),
                    s => Ok(IndexItem::range(begin, begin.saturating_add(s))),
                })
                .collect::<KResult<_>>()?;
            index::index(t(0)?, &IndexExpr(items))?
        }
        O::FindIndices(_) => return shape::find_indices(t(0)?, t(1)?).map(Step::Done),
        O::Shape(p) => shape::shape_of(t(0)?, p.index)?,
        O::Size(_) => Tensor::scalar_i64(t(0)?.len() as i64),
        O::Pad(p) => shape::pad(t(0)?, p)?,
        O::Repeat(p) => shape::repeat(t(0)?, &p.repeats, p.axis)?,
        O::Arange(p) => shape::arange(t(0)?, t(1)?, p.step)?,
        O::Zeros(p) => shape::zeros(t(0)?, p.dtype)?,
        O::Index(p) => index::index(t(0)?, &p.indices)?,
        O::SetValue(p) => index::set_value(t(0)?, t(1)?, &p.indices)?,
        O::JoinToList(_) => shape::join_to_list(t(0)?, t(1)?)?,
        O::CombineToList(_) => shape::stack(&[t(0)?, t(1)?], 0)?,
        O::Ravint(_) => shape::ravint(t(0)?)?,
        O::CnnIndex(p) => index::index(t(0)?, &cnn_expr(p))?,
        O::CnnIndex2(p) => {
            let expr = IndexExpr(vec![
                IndexItem::full(),
                IndexItem::full(),
                IndexItem::range(p.pad_h as i64, (p.pad_h + p.height) as i64),
                IndexItem::range(p.pad_w as i64, (p.pad_w + p.width) as i64),
            ]);
            index::index(t(0)?, &expr)?
        }
        O::CnnAddAt(p) => index::add_at(t(0)?, t(1)?, &cnn_expr(p))?,
        O::OneHotEncoding(_) => shape::one_hot(t(0)?, t(1)?)?,
        O::Clip(p) => shape::clip(t(0)?, p)?,
        O::Where(_) => shape::where_(t(0)?, t(1)?, t(2)?)?,
        O::Foreach(p) => return foreach(t(0)?, &p.operation).map(Step::Done),
        O::RandomUniform(p) => {
            let (low, high) = (t(0)?, t(1)?);
            if low.len() != 1 || high.len() != 1 {
                return Err(ErrorKind::Shape("random_uniform needs scalar low and high".into()));
            }
            let (low, high) = (low.to_f64_array().iter().sum(), high.to_f64_array().iter().sum());
            tensor::checked_len(&p.size)?;
            Tensor::F64(random::sample(&p.size, p.seed, &Distribution::Uniform { low, high }))
        }
        O::Random(p) => {
            tensor::checked_len(&p.shape)?;
            Tensor::F64(random::sample(&p.shape, p.seed, &p.distribution))
        }
        O::Mean(p) => reduce::mean(t(0)?, p.axis.as_ref(), p.keepdims)?,
        O::Average(p) => {
            let weights = if inputs.len() > 1 { Some(t(1)?) } else { None };
            reduce::average(t(0)?, weights, p.axis.as_ref(), p.keepdims)?
        }
        O::Variance(p) => reduce::var_std(OpKind::Variance, t(0)?, p.axis.as_ref(), p.keepdims, p.ddof)?,
        O::Std(p) => reduce::var_std(OpKind::Std, t(0)?, p.axis.as_ref(), p.keepdims, p.ddof)?,
        O::Mode(p) => reduce::mode(t(0)?, p.axis, p.keepdims)?,
        O::Median(p) => reduce::median(t(0)?, p.axis.as_ref(), p.keepdims)?,
        O::Percentile(p) => reduce::percentile(t(0)?, t(1)?, p.axis.as_ref(), p.keepdims, p.method)?,
        O::Bincount(p) => {
            let weights = if inputs.len() > 1 { Some(t(1)?) } else { None };
            reduce::bincount(t(0)?, weights, p.minlength)?
        }
        O::SquareLossGradient(_)
        | O::CrossEntropyGradient(_)
        | O::CrossEntropyAccuracy(_)
        | O::SparseCategoricalCrossEntropyLoss(_)
        | O::SparseCategoricalCrossEntropyGradient(_)
        | O::SparseCategoricalCrossEntropyAccuracy(_) => losses::loss_op(operation.kind(), t(0)?, t(1)?, None)?,
        O::LinearRegression(_) => fit(Estimator::LinearRegression)?,
        O::LogisticRegression(_) => fit(Estimator::LogisticRegression)?,
        O::KnnClassifier(p) | O::KnnRegressor(p) => fit(Estimator::Knn(p))?,
        O::NaiveBayes(_) => fit(Estimator::NaiveBayes)?,
        O::Kmeans(p) => fit(Estimator::Kmeans(p))?,
        O::SvmSvc(p) => fit(Estimator::Svc(p))?,
        O::SvmSvr(p) => fit(Estimator::Svr(p))?,
        O::DecisionTreeClassifier(p)
        | O::DecisionTreeRegressor(p)
        | O::RandomForestClassifier(p)
        | O::RandomForestRegressor(p) => fit(Estimator::Trees(p))?,
        O::Predict(_) => Tensor::F64(classic::predict(&classic::read_model(t(0)?)?, t(1)?)?.into_dyn()),
        O::Score(_) => Tensor::scalar_f64(classic::score(&classic::read_model(t(0)?)?, t(1)?, t(2)?)?),
        O::ForwardPass(p) => {
            if p.model.is_none() {
                return Err(ErrorKind::Value(
                    "`forward_pass` needs `model`: the `pytorch_model` node holding the ONNX bytes".into(),
                ));
            }
            return forward_pass(p, t(0)?, t(1)?).map(Step::Done);
        }
        // Training state: the session computes these.
        O::ForwardPassDense(p) => return Ok(Step::Train(S::Dense(p))),
        O::ForwardPassActivation(p) => return Ok(Step::Train(S::Activation(p))),
        O::ForwardPassDropout(p) => return Ok(Step::Train(S::Dropout(p))),
        O::ForwardPassFlatten(p) => return Ok(Step::Train(S::Flatten(p))),
        O::ForwardPassConv2d(p) => return Ok(Step::Train(S::Conv2d(p))),
        O::ForwardPassMaxpool2d(p) => return Ok(Step::Train(S::Maxpool2d(p))),
        O::ForwardPassBatchnorm1d(p) | O::ForwardPassBatchnorm2d(p) => return Ok(Step::Train(S::Batchnorm(p))),
        O::ForwardPassLayernorm(p) => return Ok(Step::Train(S::Layernorm(p))),
        O::ForwardPassEmbedding(p) => return Ok(Step::Train(S::Embedding(p))),
        O::ForwardPassAdd(_) => return Ok(Step::Train(S::Binary(train::Binary::Add))),
        O::ForwardPassSubtract(_) => return Ok(Step::Train(S::Binary(train::Binary::Subtract))),
        O::ForwardPassMultiply(_) => return Ok(Step::Train(S::Binary(train::Binary::Multiply))),
        O::SquareLoss(_) => return Ok(Step::Train(S::Loss(train::TrainingLoss::Square))),
        O::CrossEntropyLoss(p) => return Ok(Step::Train(S::Loss(train::TrainingLoss::CrossEntropy(p)))),
        O::StartBackwardMarker(p) => return Ok(Step::Train(S::StartBackwardMarker(p))),
        O::ForwardPassReshape(_)
        | O::ForwardPassTranspose(_)
        | O::ForwardPassPower(_)
        | O::ForwardPassConcat(_)
        | O::ForwardPassDot(_)
        | O::ForwardPassDivision(_)
        | O::BackwardPassDense(_)
        | O::BackwardPassBatchnorm1d(_)
        | O::BackwardPassBatchnorm2d(_)
        | O::BackwardPassLayernorm(_)
        | O::BackwardPassDropout(_)
        | O::BackwardPassActivation(_)
        | O::BackwardPassConv2d(_)
        | O::BackwardPassFlatten(_)
        | O::BackwardPassMaxpool2d(_)
        | O::BackwardPassEmbedding(_)
        | O::BackwardPassConcat(_)
        | O::BackwardPassAdd(_)
        | O::BackwardPassSubtract(_)
        | O::BackwardPassDot(_)
        | O::BackwardPassReshape(_)
        | O::BackwardPassTranspose(_)
        | O::BackwardPassPower(_)
        | O::BackwardPassMultiply(_)
        | O::BackwardPassDivision(_)
        | O::StopBackwardMarker(_) => {
            return Err(ErrorKind::Unsupported(format!("`{}`: this op is not implemented yet", operation.kind())));
        }
        O::Lin(_) | O::PytorchModel(_) => {
            return Err(ErrorKind::Unsupported(format!(
                "`{}`: input nodes carry values and are never executed",
                operation.kind()
            )));
        }
        O::FederatedMean(_) | O::FederatedVariance(_) | O::FederatedStandardDeviation(_) => {
            return Err(ErrorKind::Unsupported(format!(
                "`{}`: federated statistics are computed by the federated path, not by a kernel",
                operation.kind()
            )));
        }
    };
    Ok(Step::Done(TensorValue::Tensor(out)))
}

#[cfg(feature = "onnx")]
fn forward_pass(p: &ravproto::ops::ForwardPassParams, x: &Tensor, model: &Tensor) -> KResult<TensorValue> {
    onnx::forward_pass(p, x, model)
}

#[cfg(not(feature = "onnx"))]
fn forward_pass(_: &ravproto::ops::ForwardPassParams, _: &Tensor, _: &Tensor) -> KResult<TensorValue> {
    Err(ErrorKind::Unsupported(
        "`forward_pass`: this build runs no ONNX models (build with the `onnx` feature, e.g. \
         `cargo run -p ravpy --features onnx`)"
            .into(),
    ))
}

fn cnn_expr(p: &ravproto::ops::CnnIndexParams) -> IndexExpr {
    IndexExpr(vec![IndexItem::full(), p.index1.clone(), p.index2.clone(), p.index3.clone()])
}

/// `foreach`: applies a one-input op to each `a[i]` and stacks the results (the original
/// built and evaluated `[op(x) for x in a]` as source text).
fn foreach(a: &Tensor, operation: &Operation) -> KResult<TensorValue> {
    if !operation.kind().arity().accepts(1) {
        return Err(ErrorKind::Value(format!(
            "foreach needs a one-input op, `{}` takes {}",
            operation.kind(),
            operation.kind().arity()
        )));
    }
    if a.ndim() == 0 {
        return Err(ErrorKind::Shape("foreach iterates over the first axis of a 0-d array".into()));
    }
    let mut results = Vec::with_capacity(a.shape()[0]);
    for i in 0..a.shape()[0] {
        let item = index::index(a, &IndexExpr(vec![IndexItem::Int(i as i64)]))?;
        let value = execute(operation, &[TensorValue::Tensor(item)]).map_err(|e| ErrorKind::Value(e.to_string()))?;
        match value {
            TensorValue::Tensor(t) => results.push(t),
            TensorValue::List(_) => return Err(ErrorKind::Value("foreach needs an op that returns a tensor".into())),
        }
    }
    if results.is_empty() {
        return Ok(TensorValue::Tensor(Tensor::F64(ndarray::ArrayD::zeros(ndarray::IxDyn(&[0])))));
    }
    let refs: Vec<&Tensor> = results.iter().collect();
    Ok(TensorValue::Tensor(
        shape::stack(&refs, 0).map_err(|_| ErrorKind::Shape("foreach results have different shapes".into()))?,
    ))
}
