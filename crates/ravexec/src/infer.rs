//! The dtype and shape an op's result must have, worked out from its inputs' dtypes and shapes
//! without computing it: what lets ravsock refuse a provider's answer of the wrong shape or
//! dtype before storing it.
//!
//! Shapes follow the rules of the op (broadcasting, reductions over `axis` with `keepdims`,
//! `matmul`/`dot`, the shape ops). The dtype is the kernel's own: the op is run on a tensor of
//! ones of the same dtypes and ranks with every dimension 1, which costs a few elements and
//! cannot disagree with the kernel's promotion rules. Where the result depends on values
//! (`zeros`, `unique`, masks), on a fitted model or training state, [`infer`] answers `None`:
//! those answers are checked by count only, elsewhere, or not at all.

use crate::reduce::reduced_shape;
use crate::tensor::{Tensor, TensorValue, broadcast_dims, norm_axes, norm_axis};
use ravproto::ops::Axes;
use ravproto::{DType, Operation};

/// A tensor's dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMeta {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<usize>,
}

impl TensorMeta {
    /// The dtype and shape of `tensor`.
    pub fn of(tensor: &Tensor) -> TensorMeta {
        TensorMeta { dtype: tensor.dtype(), shape: tensor.shape().to_vec() }
    }
}

impl std::fmt::Display for TensorMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.dtype, self.shape)
    }
}

/// The dtype and shape of `operation`'s result on inputs of these dtypes and shapes (`None`
/// for an input that is a list or unknown), or `None` where they are not decidable here.
pub fn infer(operation: &Operation, inputs: &[Option<TensorMeta>]) -> Option<TensorMeta> {
    let metas: Vec<&TensorMeta> = inputs.iter().map(Option::as_ref).collect::<Option<_>>()?;
    let shape = result_shape(operation, &metas)?;
    let dtype = match operation {
        O::Reshape(_)
        | O::Flatten(_)
        | O::Ravel(_)
        | O::Squeeze(_)
        | O::ExpandDims(_)
        | O::Transpose(_)
        | O::Reverse(_)
        | O::Sort(_) => metas.first()?.dtype,
        O::Size(_) | O::Shape(_) => DType::I64,
        O::Random(_) | O::RandomUniform(_) => DType::F64,
        _ => kernel_dtype(operation, &metas)?,
    };
    Some(TensorMeta { dtype, shape })
}

use Operation as O;

/// The dtype the kernel gives on ones of the inputs' dtypes and ranks.
fn kernel_dtype(operation: &Operation, metas: &[&TensorMeta]) -> Option<DType> {
    let probes: Vec<TensorValue> = metas
        .iter()
        .map(|m| {
            let ones = ndarray::ArrayD::from_elem(ndarray::IxDyn(&vec![1; m.shape.len()]), 1.0f64);
            TensorValue::Tensor(Tensor::F64(ones).cast(m.dtype))
        })
        .collect();
    match crate::execute(operation, &probes).ok()? {
        TensorValue::Tensor(t) => Some(t.dtype()),
        TensorValue::List(_) => None,
    }
}

fn norm(axis: i64, ndim: usize) -> Option<usize> {
    norm_axis(axis, ndim).ok()
}

/// The shape left by reducing `axes` (all when `None`) of `shape`, as the reductions do.
fn reduced(shape: &[usize], axes: Option<Vec<i64>>, keepdims: bool) -> Option<Vec<usize>> {
    let axes = match axes {
        None => (0..shape.len()).collect(),
        Some(list) => norm_axes(&list, shape.len()).ok()?,
    };
    Some(reduced_shape(shape, &axes, keepdims))
}

fn axes(axis: Option<&Axes>) -> Option<Vec<i64>> {
    axis.map(Axes::to_vec)
}

fn result_shape(operation: &Operation, m: &[&TensorMeta]) -> Option<Vec<usize>> {
    let first = || m.first().map(|m| m.shape.clone());
    let broadcast = || m.iter().try_fold(Vec::new(), |acc, x| broadcast_dims(&acc, &x.shape).ok());
    match operation {
        O::Add(p) if p.key.is_none() => broadcast(),
        O::Sub(_)
        | O::Mul(_)
        | O::Multiply(_)
        | O::Div(_)
        | O::Pow(_)
        | O::Greater(_)
        | O::GreaterEqual(_)
        | O::Less(_)
        | O::LessEqual(_)
        | O::Equal(_)
        | O::NotEqual(_)
        | O::LogicalAnd(_)
        | O::LogicalOr(_)
        | O::LogicalXor(_)
        | O::Where(_) => broadcast(),
        O::Pos(_)
        | O::Neg(_)
        | O::Exp(_)
        | O::Natlog(_)
        | O::Square(_)
        | O::Cube(_)
        | O::SquareRoot(_)
        | O::CubeRoot(_)
        | O::Abs(_)
        | O::Sign(_)
        | O::LogicalNot(_)
        | O::Clip(_)
        | O::Reverse(_)
        | O::Sort(_) => first(),
        O::Inv(_) => first().filter(|s| s.len() >= 2 && s[s.len() - 1] == s[s.len() - 2]),
        O::Sum(p) | O::Prod(p) | O::Min(p) | O::Max(p) | O::Mean(p) | O::Median(p) => {
            reduced(&first()?, axes(p.axis.as_ref()), p.keepdims)
        }
        O::Variance(p) | O::Std(p) => reduced(&first()?, axes(p.axis.as_ref()), p.keepdims),
        O::Argmax(p) | O::Argmin(p) => reduced(&first()?, p.axis.map(|a| vec![a]), p.keepdims),
        O::Matmul(_) => matmul(&m.first()?.shape, &m.get(1)?.shape),
        O::Dot(_) => dot(&m.first()?.shape, &m.get(1)?.shape),
        O::Transpose(p) => {
            let shape = first()?;
            match &p.axes {
                None => Some(shape.iter().rev().copied().collect()),
                Some(order) => {
                    let order = norm_axes(order, shape.len()).ok()?;
                    (order.len() == shape.len()).then(|| order.iter().map(|&a| shape[a]).collect())
                }
            }
        }
        O::Reshape(p) => {
            let len: usize = first()?.iter().product();
            let known: usize = p.shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
            let unknown = p.shape.iter().filter(|&&d| d < 0).count();
            match unknown {
                0 if known == len => Some(p.shape.iter().map(|&d| d as usize).collect()),
                1 if known > 0 && len.is_multiple_of(known) => {
                    Some(p.shape.iter().map(|&d| if d < 0 { len / known } else { d as usize }).collect())
                }
                _ => None,
            }
        }
        O::Flatten(_) | O::Ravel(_) => Some(vec![first()?.iter().product()]),
        O::Squeeze(p) => {
            let shape = first()?;
            match axes(p.axis.as_ref()) {
                None => Some(shape.into_iter().filter(|&d| d != 1).collect()),
                Some(list) => {
                    let drop = norm_axes(&list, shape.len()).ok()?;
                    drop.iter()
                        .all(|&a| shape[a] == 1)
                        .then(|| shape.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect())
                }
            }
        }
        O::ExpandDims(p) => {
            let shape = first()?;
            let ndim = shape.len() + p.axis.to_vec().len();
            let new = norm_axes(&p.axis.to_vec(), ndim).ok()?;
            let mut rest = shape.into_iter();
            (0..ndim).map(|i| if new.contains(&i) { Some(1) } else { rest.next() }).collect()
        }
        O::Concat(p) if m.len() >= 2 => {
            let ndim = m[0].shape.len();
            let axis = norm(p.axis, ndim)?;
            let same = m.iter().all(|x| {
                x.shape.len() == ndim && x.shape.iter().enumerate().all(|(i, &d)| i == axis || d == m[0].shape[i])
            });
            let mut shape = m[0].shape.clone();
            shape[axis] = m.iter().map(|x| x.shape[axis]).sum();
            same.then_some(shape)
        }
        O::Stack(p) if m.len() >= 2 => {
            let axis = norm(p.axis, m[0].shape.len() + 1)?;
            let mut shape = m[0].shape.clone();
            shape.insert(axis, m.len());
            m.iter().all(|x| x.shape == m[0].shape).then_some(shape)
        }
        O::Size(_) => Some(vec![]),
        O::Shape(p) => match p.index {
            None => Some(vec![first()?.len()]),
            Some(i) => norm(i, first()?.len()).map(|_| vec![]),
        },
        O::Random(p) => Some(p.shape.clone()),
        O::RandomUniform(p) => Some(p.size.clone()),
        _ => None,
    }
}

/// NumPy's `matmul` shapes: 1-D operands are promoted and the added axis dropped; the batch
/// dimensions broadcast.
fn matmul(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let a2: Vec<usize> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<usize> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return None;
    }
    let mut shape = broadcast_dims(&a2[..a2.len() - 2], &b2[..b2.len() - 2]).ok()?;
    if a.len() > 1 {
        shape.push(m);
    }
    if b.len() > 1 {
        shape.push(n);
    }
    Some(shape)
}

/// NumPy's `dot` shapes: a scalar scales, 1-D · 1-D is a scalar, otherwise the last axis of
/// `a` meets the second-to-last of `b` (the last when `b` is 1-D).
fn dot(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    match (a.len(), b.len()) {
        (0, _) => Some(b.to_vec()),
        (_, 0) => Some(a.to_vec()),
        (_, 1) => (a[a.len() - 1] == b[0]).then(|| a[..a.len() - 1].to_vec()),
        (_, nb) => (a[a.len() - 1] == b[nb - 2]).then(|| {
            let mut shape = a[..a.len() - 1].to_vec();
            shape.extend_from_slice(&b[..nb - 2]);
            shape.push(b[nb - 1]);
            shape
        }),
    }
}
