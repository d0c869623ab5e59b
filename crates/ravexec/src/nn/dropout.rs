//! `forward_pass_dropout` and `forward_pass_embedding`: the two layers whose backward is a
//! mask or a scatter.
//!
//! Dropout's mask comes from a seeded generator, so a training step computes the same mask on
//! every provider and in the local executor; in evaluation it is the identity (PyTorch's
//! inverted dropout: kept values are scaled by `1 / (1 - p)` in training).

use super::{NnError, NnFloat, NnResult};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn, Zip};
use ravproto::ops::Distribution;

/// The dropout multipliers for `shape`: 0 for dropped values, `1 / (1 - p)` for kept ones.
pub fn dropout_mask<F: NnFloat>(shape: &[usize], p: f64, seed: u64) -> NnResult<ArrayD<F>> {
    if !(0.0..=1.0).contains(&p) {
        return Err(NnError::Param(format!("dropout probability must be in [0, 1], got {p}")));
    }
    if p == 1.0 {
        return Ok(ArrayD::zeros(IxDyn(shape)));
    }
    let keep = F::of(1.0 / (1.0 - p));
    let uniform = crate::random::sample(shape, Some(seed), &Distribution::Uniform { low: 0.0, high: 1.0 });
    Ok(uniform.mapv(|u| if u < p { F::zero() } else { keep }))
}

/// Applies a mask (forward) or the same mask to a gradient (backward).
pub fn apply_mask<F: NnFloat>(x: &ArrayViewD<'_, F>, mask: &ArrayViewD<'_, F>) -> NnResult<ArrayD<F>> {
    if x.shape() != mask.shape() {
        return Err(NnError::Shape(format!("dropout mask {:?} for input {:?}", mask.shape(), x.shape())));
    }
    let mut out = ArrayD::zeros(x.raw_dim());
    Zip::from(&mut out).and(x).and(mask).for_each(|o, &v, &m| *o = v * m);
    Ok(out)
}

/// The table rows named by `indices` (any shape of integer-valued numbers): output shape
/// `indices.shape + [dim]`.
pub fn embedding_forward<F: NnFloat>(
    indices: &[i64],
    index_shape: &[usize],
    table: &ArrayView2<'_, F>,
) -> NnResult<ArrayD<F>> {
    let (vocab, dim) = table.dim();
    let mut out = Array2::zeros((indices.len(), dim));
    for (row, &i) in out.rows_mut().into_iter().zip(indices) {
        if i < 0 || i as usize >= vocab {
            return Err(NnError::Param(format!("embedding index {i} is out of range for a vocabulary of {vocab}")));
        }
        let mut row = row;
        row.assign(&table.index_axis(Axis(0), i as usize));
    }
    let mut shape = index_shape.to_vec();
    shape.push(dim);
    out.into_shape_with_order(IxDyn(&shape)).map_err(|e| NnError::Shape(e.to_string()))
}

/// The table's gradient: each output row's gradient added to the row it was read from.
pub fn embedding_backward<F: NnFloat>(indices: &[i64], vocab: usize, grad: &ArrayViewD<'_, F>) -> NnResult<Array2<F>> {
    let dim = grad.shape().last().copied().unwrap_or(0);
    if grad.len() != indices.len() * dim {
        return Err(NnError::Shape(format!(
            "embedding output gradient of shape {:?} for {} indices",
            grad.shape(),
            indices.len()
        )));
    }
    let g = grad.as_standard_layout();
    let g2 = g.view().into_shape_with_order((indices.len(), dim)).map_err(|e| NnError::Shape(e.to_string()))?;
    let mut table = Array2::zeros((vocab, dim));
    for (&i, row) in indices.iter().zip(g2.rows()) {
        if i < 0 || i as usize >= vocab {
            return Err(NnError::Param(format!("embedding index {i} is out of range for a vocabulary of {vocab}")));
        }
        let mut target = table.index_axis_mut(Axis(0), i as usize);
        target += &row;
    }
    Ok(table)
}
