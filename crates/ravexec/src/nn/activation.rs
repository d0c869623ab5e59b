//! `forward_pass_activation`: the original's sixteen activations (`act_data` names), with
//! PyTorch's definitions and defaults, and their derivatives.
//!
//! The backward takes the forward's input and output: element-wise derivatives are cheapest
//! from one or the other (sigmoid and tanh from the output, the shrinkages from the input),
//! and softmax/softmin need the output along their axis.

use super::{NnError, NnFloat, NnResult};
use ndarray::{ArrayD, ArrayViewD, Axis, Zip};
use ravproto::ops::Activation;

/// SELU's constants (Klambauer et al., as in PyTorch).
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
/// Softplus switches to the identity above this input (PyTorch's `threshold=20`).
const SOFTPLUS_THRESHOLD: f64 = 20.0;

fn sigmoid<F: NnFloat>(x: F) -> F {
    // Split by sign so that neither branch overflows.
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

fn softplus<F: NnFloat>(x: F) -> F {
    if x > F::of(SOFTPLUS_THRESHOLD) { x } else { x.exp().ln_1p() }
}

/// The axis of softmax/softmin: `dim` (negative counts from the end), default the last.
fn softmax_axis(dim: Option<i64>, ndim: usize) -> NnResult<Axis> {
    if ndim == 0 {
        return Err(NnError::Shape("softmax needs at least one axis".into()));
    }
    let dim = dim.unwrap_or(-1);
    let axis = if dim < 0 { dim + ndim as i64 } else { dim };
    if axis < 0 || axis >= ndim as i64 {
        return Err(NnError::Shape(format!("softmax dim {dim} is out of range for {ndim} dimensions")));
    }
    Ok(Axis(axis as usize))
}

/// Softmax of `x` (of `-x` with `negate`) along `axis`, shifted by each lane's maximum so no
/// exponential overflows.
pub(crate) fn softmax<F: NnFloat>(x: &ArrayViewD<'_, F>, axis: Axis, negate: bool) -> ArrayD<F> {
    let mut out = if negate { x.mapv(|v| -v) } else { x.to_owned() };
    for mut lane in out.lanes_mut(axis) {
        let max = lane.fold(F::neg_infinity(), |m, &v| if v > m { v } else { m });
        lane.mapv_inplace(|v| (v - max).exp());
        let sum: F = lane.iter().copied().sum();
        lane.mapv_inplace(|v| v / sum);
    }
    out
}

/// The activation's output.
pub fn forward<F: NnFloat>(x: &ArrayViewD<'_, F>, activation: &Activation) -> NnResult<ArrayD<F>> {
    use Activation as A;
    let zero = F::zero();
    Ok(match activation {
        A::Relu => x.mapv(|v| if v > zero { v } else { zero }),
        A::Sigmoid => x.mapv(sigmoid),
        A::Tanh => x.mapv(F::tanh),
        A::Softmax { dim } => softmax(x, softmax_axis(*dim, x.ndim())?, false),
        A::Softmin { dim } => softmax(x, softmax_axis(*dim, x.ndim())?, true),
        A::LeakyRelu { negative_slope } => {
            let slope = F::of(negative_slope.unwrap_or(0.01));
            x.mapv(|v| if v > zero { v } else { slope * v })
        }
        A::Elu { alpha } => {
            let alpha = F::of(alpha.unwrap_or(1.0));
            x.mapv(|v| if v > zero { v } else { alpha * v.exp_m1() })
        }
        A::Selu => {
            let (alpha, scale) = (F::of(SELU_ALPHA), F::of(SELU_SCALE));
            x.mapv(|v| scale * if v > zero { v } else { alpha * v.exp_m1() })
        }
        A::Softplus => x.mapv(softplus),
        A::Softsign => x.mapv(|v| v / (F::one() + v.abs())),
        A::Tanhshrink => x.mapv(|v| v - v.tanh()),
        A::Softshrink { lambd } => {
            let l = shrink_threshold(*lambd)?;
            x.mapv(|v| {
                if v > l {
                    v - l
                } else if v < -l {
                    v + l
                } else {
                    zero
                }
            })
        }
        A::Logsigmoid => x.mapv(|v| -softplus(-v)),
        A::Hardshrink { lambd } => {
            let l = shrink_threshold(*lambd)?;
            x.mapv(|v| if v > l || v < -l { v } else { zero })
        }
        A::Hardtanh { min_val, max_val } => {
            let (lo, hi) = hardtanh_bounds(*min_val, *max_val)?;
            x.mapv(|v| {
                if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }
            })
        }
        A::Threshold { threshold, value } => {
            let (t, value) = (F::of(*threshold), F::of(*value));
            x.mapv(|v| if v > t { v } else { value })
        }
    })
}

fn shrink_threshold<F: NnFloat>(lambd: Option<f64>) -> NnResult<F> {
    let l = lambd.unwrap_or(0.5);
    if l < 0.0 || !l.is_finite() {
        return Err(NnError::Param(format!("lambd must be a finite number >= 0, got {l}")));
    }
    Ok(F::of(l))
}

fn hardtanh_bounds<F: NnFloat>(min_val: Option<f64>, max_val: Option<f64>) -> NnResult<(F, F)> {
    let (lo, hi) = (min_val.unwrap_or(-1.0), max_val.unwrap_or(1.0));
    if lo > hi || lo.is_nan() || hi.is_nan() {
        return Err(NnError::Param(format!("hardtanh needs min_val <= max_val, got {lo} and {hi}")));
    }
    Ok((F::of(lo), F::of(hi)))
}

/// The gradient of the input from the output's gradient `grad`, given the forward's input
/// `x` and output `y`.
pub fn backward<F: NnFloat>(
    x: &ArrayViewD<'_, F>,
    y: &ArrayViewD<'_, F>,
    grad: &ArrayViewD<'_, F>,
    activation: &Activation,
) -> NnResult<ArrayD<F>> {
    use Activation as A;
    if x.shape() != grad.shape() || y.shape() != grad.shape() {
        return Err(NnError::Shape(format!(
            "activation gradient of shape {:?} does not match its input {:?}",
            grad.shape(),
            x.shape()
        )));
    }
    let (zero, one) = (F::zero(), F::one());
    // d(out)/d(in) at each element, from the input (first closure argument) or the output.
    let local = |f: &dyn Fn(F, F) -> F| -> ArrayD<F> {
        let mut out = ArrayD::zeros(x.raw_dim());
        Zip::from(&mut out).and(x).and(y).and(grad).for_each(|o, &xv, &yv, &g| *o = g * f(xv, yv));
        out
    };
    Ok(match activation {
        A::Relu => local(&|xv, _| if xv > zero { one } else { zero }),
        A::Sigmoid => local(&|_, yv| yv * (one - yv)),
        A::Tanh => local(&|_, yv| one - yv * yv),
        A::Softmax { dim } => softmax_backward(y, grad, softmax_axis(*dim, x.ndim())?, false),
        A::Softmin { dim } => softmax_backward(y, grad, softmax_axis(*dim, x.ndim())?, true),
        A::LeakyRelu { negative_slope } => {
            let slope = F::of(negative_slope.unwrap_or(0.01));
            local(&|xv, _| if xv > zero { one } else { slope })
        }
        A::Elu { alpha } => {
            let alpha = F::of(alpha.unwrap_or(1.0));
            local(&|xv, _| if xv > zero { one } else { alpha * xv.exp() })
        }
        A::Selu => {
            let (alpha, scale) = (F::of(SELU_ALPHA), F::of(SELU_SCALE));
            local(&|xv, _| if xv > zero { scale } else { scale * alpha * xv.exp() })
        }
        A::Softplus => local(&|xv, _| if xv > F::of(SOFTPLUS_THRESHOLD) { one } else { sigmoid(xv) }),
        A::Softsign => local(&|xv, _| {
            let d = one + xv.abs();
            one / (d * d)
        }),
        A::Tanhshrink => local(&|xv, _| {
            let t = xv.tanh();
            t * t
        }),
        A::Softshrink { lambd } | A::Hardshrink { lambd } => {
            let l: F = shrink_threshold(*lambd)?;
            local(&|xv, _| if xv > l || xv < -l { one } else { zero })
        }
        A::Logsigmoid => local(&|xv, _| sigmoid(-xv)),
        A::Hardtanh { min_val, max_val } => {
            let (lo, hi): (F, F) = hardtanh_bounds(*min_val, *max_val)?;
            local(&|xv, _| if xv > lo && xv < hi { one } else { zero })
        }
        A::Threshold { threshold, .. } => {
            let t = F::of(*threshold);
            local(&|xv, _| if xv > t { one } else { zero })
        }
    })
}

/// Softmax's Jacobian-vector product along `axis`: `y * (g - sum(g * y))`; softmin is softmax
/// of `-x`, so its gradient is the negation.
fn softmax_backward<F: NnFloat>(
    y: &ArrayViewD<'_, F>,
    grad: &ArrayViewD<'_, F>,
    axis: Axis,
    negate: bool,
) -> ArrayD<F> {
    let mut out = ArrayD::zeros(y.raw_dim());
    for ((mut o, yl), gl) in out.lanes_mut(axis).into_iter().zip(y.lanes(axis)).zip(grad.lanes(axis)) {
        let dot: F = yl.iter().zip(gl.iter()).map(|(&a, &b)| a * b).sum();
        Zip::from(&mut o).and(&yl).and(&gl).for_each(|o, &yv, &g| {
            let v = yv * (g - dot);
            *o = if negate { -v } else { v };
        });
    }
    out
}
