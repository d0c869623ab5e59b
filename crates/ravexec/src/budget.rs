//! How much memory an op is about to take, known before its kernel allocates anything, so a
//! machine can refuse an op it cannot hold instead of dying on the allocation.
//!
//! An op's size follows from its params (`random`'s shape), from its inputs' shapes
//! (broadcasting `[n, 1] + [1, n]`, `matmul`) or from its inputs' values (`zeros`' shape,
//! `tile`'s reps, `arange`'s bounds, `one_hot`'s depth): one small request can ask for any
//! amount. [`op_bytes`] bounds, for every op of the catalogue, the bytes of its result and of
//! what its kernel holds while computing it (im2col buffers, SVM Gram matrices, the identity
//! matrix `one_hot` indexes), counting 8 bytes an element where the dtype is not obvious. An op
//! whose result is no bigger than its inputs is bounded by their size. The bound is checked
//! by [`crate::run::run_ops`] against a [`MemoryBudget`]; allocation failure in Rust aborts the
//! process, so this check, made first, is what keeps a provider alive.
//!
//! ONNX models (`forward_pass`, with the `onnx` feature) are compiled for the batch's shape
//! first (the plan is cached for the run) and bounded by every value the plan makes
//! ([`crate::onnx`]). Not bounded beyond its inputs: `predict` (the fitted model decides).

use crate::tensor::{Elem, Tensor, TensorValue, broadcast_dims};
use crate::with_array;
use ravproto::ops::Repeats;
use ravproto::{IndexExpr, IndexItem, Operation};

/// The most bytes one op may take on this machine: its result and its kernel's working memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes.
    pub bytes: u64,
}

impl MemoryBudget {
    /// No limit: the requester's own process, running its own graph.
    pub const UNLIMITED: MemoryBudget = MemoryBudget { bytes: u64::MAX };

    /// A budget of `bytes`.
    pub fn bytes(bytes: u64) -> MemoryBudget {
        MemoryBudget { bytes }
    }

    /// Whether an op bounded by `needed` bytes fits.
    pub fn holds(self, needed: u128) -> bool {
        needed <= u128::from(self.bytes)
    }
}

/// Bytes of an element of unknown or float dtype: the widest.
const WORD: u128 = 8;

fn product(dims: impl IntoIterator<Item = usize>) -> u128 {
    dims.into_iter().fold(1u128, |acc, d| acc.saturating_mul(d as u128))
}

fn tensor_bytes(t: &Tensor) -> u128 {
    (t.len() as u128).saturating_mul(t.dtype().size() as u128)
}

fn value_bytes(v: &TensorValue) -> u128 {
    match v {
        TensorValue::Tensor(t) => tensor_bytes(t),
        TensorValue::List(items) => items.iter().map(value_bytes).fold(0, u128::saturating_add),
    }
}

/// A count or dimension read from a tensor element; negatives and non-numbers count as zero,
/// since the kernel refuses them anyway.
fn count(value: f64) -> u128 {
    if value.is_finite() && value > 0.0 { value as u128 } else { 0 }
}

/// The counts of a tensor folded with `f` from `init`, without copying the tensor (a hostile
/// one may be as big as an upload allows).
fn fold_counts(t: &Tensor, init: u128, f: impl Fn(u128, u128) -> u128) -> u128 {
    with_array!(t, x => x.iter().fold(init, |acc, v| f(acc, count(v.to_f64()))))
}

/// The first count of a tensor.
fn first_count(t: &Tensor) -> u128 {
    with_array!(t, x => x.iter().next().map_or(0, |v| count(v.to_f64())))
}

/// An upper bound of the bytes `operation` takes on `inputs` (its result and its kernel's
/// working memory), computed without allocating anything of that size.
pub fn op_bytes(operation: &Operation, inputs: &[TensorValue]) -> u128 {
    use Operation as O;
    let all_inputs = inputs.iter().map(value_bytes).fold(0, u128::saturating_add);
    let t = |i: usize| inputs.get(i).and_then(TensorValue::as_tensor);
    let shape = |i: usize| t(i).map_or(&[][..], Tensor::shape);
    let len = |i: usize| t(i).map_or(0, |t| t.len() as u128);
    let broadcast = |elem: u128| {
        let shapes: Vec<&[usize]> = inputs.iter().filter_map(TensorValue::as_tensor).map(Tensor::shape).collect();
        let joined = shapes.iter().try_fold(Vec::new(), |acc, s| broadcast_dims(&acc, s).ok());
        joined.map_or(0, |s| product(s).saturating_mul(elem))
    };
    let own: u128 = match operation {
        O::Add(_) | O::Sub(_) | O::Mul(_) | O::Multiply(_) | O::Div(_) | O::Pow(_) | O::Where(_) => broadcast(WORD),
        O::Greater(_)
        | O::GreaterEqual(_)
        | O::Less(_)
        | O::LessEqual(_)
        | O::Equal(_)
        | O::NotEqual(_)
        | O::LogicalAnd(_)
        | O::LogicalOr(_)
        | O::LogicalXor(_) => broadcast(1),
        O::SquareLossGradient(_)
        | O::CrossEntropyGradient(_)
        | O::SparseCategoricalCrossEntropyGradient(_)
        | O::SquareLoss(_)
        | O::CrossEntropyLoss(_)
        | O::SparseCategoricalCrossEntropyLoss(_) => broadcast(WORD).saturating_mul(2),
        O::Matmul(_) | O::Dot(_) => matmul_elements(shape(0), shape(1)).saturating_mul(WORD),
        O::Tile(_) => {
            let reps_product = t(1).map_or(1, |reps| fold_counts(reps, 1, u128::saturating_mul));
            len(0).saturating_mul(reps_product).saturating_mul(WORD)
        }
        O::Repeat(p) => {
            let total = match &p.repeats {
                Repeats::One(n) => len(0).saturating_mul(*n as u128),
                Repeats::Many(list) if list.len() <= 1 => {
                    len(0).saturating_mul(list.first().copied().unwrap_or(0) as u128)
                }
                // One count per row along the axis: the rows' size times the counts' sum.
                Repeats::Many(list) => {
                    let sum = list.iter().fold(0u128, |acc, &c| acc.saturating_add(c as u128));
                    sum.saturating_mul(len(0) / list.len() as u128)
                }
            };
            total.saturating_mul(WORD)
        }
        O::Arange(p) => {
            let first = |i: usize| t(i).and_then(|t| with_array!(t, x => x.iter().next().map(|v| v.to_f64())));
            let (start, stop, step) = (first(0).unwrap_or(0.0), first(1).unwrap_or(0.0), p.step.as_f64());
            let count = ((stop - start) / step).ceil();
            if count.is_finite() && count > 0.0 { (count as u128).saturating_mul(WORD) } else { 0 }
        }
        O::Zeros(_) => t(0).map_or(0, |dims| fold_counts(dims, 1, u128::saturating_mul)).saturating_mul(WORD),
        O::Random(p) => product(p.shape.iter().copied()).saturating_mul(WORD),
        O::RandomUniform(p) => product(p.size.iter().copied()).saturating_mul(WORD),
        O::Pad(p) => {
            let dims = shape(0);
            let width = |axis: usize| match p.sequence.len() {
                1 => p.sequence[0],
                _ => p.sequence.get(axis).copied().unwrap_or([0, 0]),
            };
            let padded = dims.iter().enumerate().map(|(axis, &d)| {
                let [before, after] = width(axis);
                (d as u128).saturating_add(before as u128).saturating_add(after as u128)
            });
            padded.fold(1u128, u128::saturating_mul).saturating_mul(WORD)
        }
        O::OneHotEncoding(_) => {
            // The kernel indexes an identity matrix of depth × depth.
            let depth = t(1).map_or(0, first_count);
            depth.saturating_mul(depth).saturating_add(len(0).saturating_mul(depth)).saturating_mul(WORD)
        }
        O::Bincount(p) => {
            let top = t(0).map_or(0, |values| fold_counts(values, 0, u128::max).saturating_add(1));
            top.max(p.minlength as u128).saturating_mul(WORD).saturating_mul(2)
        }
        O::Index(p) => t(0).map_or(0, |a| index_bytes(a, &p.indices)),
        O::CnnIndex(p) => t(0).map_or(0, |a| index_bytes(a, &crate::cnn_expr(p))),
        O::Gather(_) => {
            let row = t(0).map_or(0, |a| a.shape().iter().skip(1).fold(1u128, |acc, &d| acc.saturating_mul(d as u128)));
            len(1).saturating_mul(row).saturating_mul(WORD)
        }
        O::Percentile(p) => {
            // One value per quantile for each position the reduction keeps.
            let dims = shape(0);
            let reduced = match &p.axis {
                None => product(dims.iter().copied()),
                Some(axes) => {
                    let picked = axes.to_vec().into_iter().filter_map(|axis| {
                        let axis = if axis < 0 { axis + dims.len() as i64 } else { axis };
                        usize::try_from(axis).ok().and_then(|axis| dims.get(axis).copied())
                    });
                    product(picked)
                }
            };
            let kept = len(0) / reduced.max(1);
            len(1).max(1).saturating_mul(kept).saturating_mul(WORD)
        }
        O::Foreach(p) => t(0).map_or(0, |a| foreach_bytes(a, &p.operation)),
        O::SvmSvc(_) | O::SvmSvr(_) => {
            // The Gram matrix of the samples.
            let samples = shape(0).first().copied().unwrap_or(0) as u128;
            samples.saturating_mul(samples).saturating_mul(WORD)
        }
        O::RandomForestClassifier(p) | O::RandomForestRegressor(p) => {
            // A tree has fewer than twice as many nodes as samples; a node is a few words,
            // plus a row per node of predictions for every class.
            let samples = shape(0).first().copied().unwrap_or(0) as u128;
            let per_tree = samples.saturating_mul(2).saturating_mul(len(1).max(1).saturating_add(4));
            per_tree.saturating_mul(p.n_estimators as u128).saturating_mul(WORD)
        }
        O::Kmeans(p) => {
            let features = shape(0).get(1).copied().unwrap_or(1) as u128;
            (p.n_clusters as u128).saturating_mul(features).saturating_mul(WORD)
        }
        O::ForwardPassDense(p) => {
            let features = shape(0).last().copied().unwrap_or(1) as u128;
            let rows = len(0) / features.max(1);
            let units = p.n_units as u128;
            // Weights, their gradient and optimizer moments; the output and its gradient.
            features
                .saturating_mul(units)
                .saturating_mul(4)
                .saturating_add(rows.saturating_mul(units).saturating_mul(2))
                .saturating_mul(WORD)
        }
        O::ForwardPassEmbedding(p) => {
            let table = (p.vocab_size as u128).saturating_mul(p.embed_dim as u128).saturating_mul(4);
            table.saturating_add(len(0).saturating_mul(p.embed_dim as u128)).saturating_mul(WORD)
        }
        O::ForwardPassConv2d(p) => conv2d_bytes(shape(0), p),
        O::ForwardPassLayernorm(p) => {
            product(p.normalized_shape.iter().copied()).saturating_mul(4).saturating_mul(WORD)
        }
        O::ForwardPassBatchnorm1d(p) | O::ForwardPassBatchnorm2d(p) => {
            (p.num_features.unwrap_or(0) as u128).saturating_mul(6).saturating_mul(WORD)
        }
        // The model's plan for this batch, every value it makes counted.
        #[cfg(feature = "onnx")]
        O::ForwardPass(_) => {
            t(0).zip(t(1)).and_then(|(x, model)| crate::onnx::forward_pass_bytes(x, model)).unwrap_or(0)
        }
        // Every other op's result is no bigger than its inputs (element-wise maps, reductions,
        // shape changes, sorting, selections within the array, fitted models of the samples).
        _ => 0,
    };
    own.max(all_inputs)
}

/// Elements of `matmul(a, b)` or `dot(a, b)`: the rows of `a` times the columns of `b`, each
/// side's other dimensions multiplied in (a bound for `matmul`'s broadcast batch too).
fn matmul_elements(a: &[usize], b: &[usize]) -> u128 {
    if a.is_empty() || b.is_empty() {
        return product(a.iter().chain(b).copied());
    }
    let k = a[a.len() - 1] as u128;
    let a_rest = product(a.iter().copied()) / k.max(1);
    let b_rest = product(b.iter().copied()) / k.max(1);
    if b.len() > 2 && a.len() > 2 {
        // matmul broadcasts the batch dimensions instead of multiplying them.
        let batch_a = &a[..a.len() - 2];
        let batch_b = &b[..b.len() - 2];
        let batch = broadcast_dims(batch_a, batch_b).map(product).unwrap_or(0);
        let (m, n) = (a[a.len() - 2] as u128, b[b.len() - 1] as u128);
        return batch.saturating_mul(m).saturating_mul(n).max(a_rest.saturating_mul(b_rest));
    }
    a_rest.saturating_mul(b_rest)
}

/// Bytes of `a[expr]`: the index arrays broadcast together, times the dimensions that slices
/// keep (never longer than the source's).
fn index_bytes(a: &Tensor, expr: &IndexExpr) -> u128 {
    let dims = a.shape();
    let consumed: usize = expr.0.iter().map(crate::index::axes_consumed).sum();
    let ellipsis = dims.len().saturating_sub(consumed);
    let mut axis = 0usize;
    let mut kept = 1u128;
    let mut arrays: Option<Vec<usize>> = None;
    for item in &expr.0 {
        match item {
            IndexItem::Int(_) => axis += 1,
            IndexItem::Slice { .. } => {
                kept = kept.saturating_mul(dims.get(axis).copied().unwrap_or(1) as u128);
                axis += 1;
            }
            IndexItem::Ellipsis => {
                kept = kept.saturating_mul(product(dims.iter().skip(axis).take(ellipsis).copied()));
                axis += ellipsis;
            }
            IndexItem::NewAxis => {}
            IndexItem::Array { shape, .. } => {
                arrays = broadcast_dims(arrays.as_deref().unwrap_or(&[]), shape).ok();
                axis += 1;
            }
            IndexItem::Mask { shape, values } => {
                let chosen = values.iter().filter(|&&v| v).count();
                arrays = broadcast_dims(arrays.as_deref().unwrap_or(&[]), &[chosen]).ok();
                axis += shape.len();
            }
        }
    }
    // Axes after the last item are kept whole.
    kept = kept.saturating_mul(product(dims.iter().skip(axis).copied()));
    let selected = arrays.map_or(1, product);
    kept.saturating_mul(selected).saturating_mul(WORD)
}

/// `foreach`: the op on each row, and the stacked result as big again.
fn foreach_bytes(a: &Tensor, operation: &Operation) -> u128 {
    let rows = a.shape().first().copied().unwrap_or(0);
    let mut total = 0u128;
    for i in 0..rows {
        let Ok(row) = crate::index::index(a, &IndexExpr(vec![IndexItem::Int(i as i64)])) else { return total };
        total = total.saturating_add(op_bytes(operation, &[TensorValue::Tensor(row)]));
        if total == u128::MAX {
            break;
        }
    }
    total.saturating_mul(2)
}

/// `forward_pass_conv2d` (NCHW): weights and their training copies, one sample's im2col
/// columns, and the output at stride 1 (a bound for every stride).
fn conv2d_bytes(x: &[usize], p: &ravproto::ops::Conv2dParams) -> u128 {
    let [kh, kw] = p.kernel_size.map(|k| k as u128);
    let [ph, pw] = p.padding.unwrap_or([0, 0]).map(|k| k as u128);
    let (n, h, w) = match x {
        [n, _, h, w] => (*n as u128, *h as u128, *w as u128),
        _ => (1, 1, 1),
    };
    let (out_h, out_w) = (h.saturating_add(2 * ph), w.saturating_add(2 * pw));
    let plane = out_h.saturating_mul(out_w);
    let (cin, cout) = (p.in_channels as u128, p.out_channels as u128);
    let weights = cout.saturating_mul(cin).saturating_mul(kh).saturating_mul(kw).saturating_mul(4);
    let columns = cin.saturating_mul(kh).saturating_mul(kw).saturating_mul(plane);
    let output = n.saturating_mul(cout).saturating_mul(plane).saturating_mul(2);
    weights.saturating_add(columns).saturating_add(output).saturating_mul(WORD)
}
