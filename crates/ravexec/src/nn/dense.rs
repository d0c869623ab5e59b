//! `forward_pass_dense`: `y = x W + b` with `W` of shape `(in, out)` (the original's
//! `initial_W` layout), over the last axis of `x` (any leading axes are batch axes).

use super::{NnError, NnFloat, NnResult};
use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Axis, CowArray, Ix2};

/// Gradients of a dense layer.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseGrads<F> {
    /// Of the input, shaped like it.
    pub input: ArrayD<F>,
    /// Of the weights `(in, out)`.
    pub weight: Array2<F>,
    /// Of the bias `(out,)`.
    pub bias: Option<Array1<F>>,
}

/// `x` as `(rows, in)` rows for a weight of `in` inputs (copied only when `x` is not in
/// standard layout: a gradient can arrive transposed or broadcast).
fn rows<'a, F: NnFloat>(x: &'a ArrayViewD<'_, F>, inputs: usize, what: &str) -> NnResult<CowArray<'a, F, Ix2>> {
    let last = x.shape().last().copied();
    if last != Some(inputs) {
        return Err(NnError::Shape(format!("dense layer with {inputs} inputs got {what} of shape {:?}", x.shape())));
    }
    let n = x.len() / inputs.max(1);
    x.as_standard_layout()
        .into_shape_with_order((n, inputs))
        .map_err(|e| NnError::Shape(format!("dense {what} of shape {:?}: {e}", x.shape())))
}

/// Checks a weight and bias against each other.
fn check(weight: &ArrayView2<'_, impl NnFloat>, bias: Option<&ArrayView1<'_, impl NnFloat>>) -> NnResult<()> {
    if let Some(bias) = bias
        && bias.len() != weight.ncols()
    {
        return Err(NnError::Shape(format!("dense bias has {} entries for {} units", bias.len(), weight.ncols())));
    }
    Ok(())
}

/// The layer's output: `x`'s shape with the last axis replaced by `out`.
pub fn forward<F: NnFloat>(
    x: &ArrayViewD<'_, F>,
    weight: &ArrayView2<'_, F>,
    bias: Option<&ArrayView1<'_, F>>,
) -> NnResult<ArrayD<F>> {
    check(weight, bias)?;
    let x2 = rows(x, weight.nrows(), "input")?;
    let mut y = x2.dot(weight);
    if let Some(bias) = bias {
        y += bias;
    }
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = weight.ncols();
    }
    super::standard(y).into_shape_with_order(shape).map_err(|e| NnError::Shape(e.to_string()))
}

/// Gradients from the output's gradient `grad` (shaped like the output).
pub fn backward<F: NnFloat>(
    x: &ArrayViewD<'_, F>,
    weight: &ArrayView2<'_, F>,
    with_bias: bool,
    grad: &ArrayViewD<'_, F>,
) -> NnResult<DenseGrads<F>> {
    let x2 = rows(x, weight.nrows(), "input")?;
    let g2 = rows(grad, weight.ncols(), "output gradient")?;
    if g2.nrows() != x2.nrows() {
        return Err(NnError::Shape(format!(
            "dense output gradient of shape {:?} does not match input {:?}",
            grad.shape(),
            x.shape()
        )));
    }
    let input = super::standard(g2.dot(&weight.t()))
        .into_shape_with_order(x.raw_dim())
        .map_err(|e| NnError::Shape(e.to_string()))?;
    let weight = x2.t().dot(&g2);
    let bias = with_bias.then(|| g2.sum_axis(Axis(0)));
    Ok(DenseGrads { input, weight, bias })
}

/// A 2-D view of a weight tensor, or the error naming the layer.
pub fn weight_matrix<'a, F: NnFloat>(w: &'a ArrayViewD<'_, F>, what: &str) -> NnResult<ArrayView2<'a, F>> {
    w.view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| NnError::Shape(format!("{what} must be 2-D, got {:?}", w.shape())))
}
