//! Group I: losses, their gradients with respect to the prediction, and accuracy.
//!
//! Arguments come in the original's order, `(y, y_pred)`: targets first. Reductions are means
//! (PyTorch's default), so a gradient is already divided by the number of terms.
//!
//! - `square_loss`: `mean((y_pred - y)^2)` (`MSELoss`).
//! - `cross_entropy_loss`: `y_pred` are logits `(N, C)` (or `(C,)`); `y` is either class
//!   indices `(N,)` (rows equal to `ignore_index` are skipped) or class probabilities shaped
//!   like `y_pred` (`CrossEntropyLoss`).
//! - `sparse_categorical_cross_entropy_*`: `y_pred` are probabilities (after a softmax), `y`
//!   class indices; `-mean(log p[y])` with `p` clipped to `[1e-7, 1 - 1e-7]` as Keras does.

use super::{NnError, NnFloat, NnResult};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Ix1, Ix2};

/// Probability clip of the sparse categorical loss (Keras' epsilon).
const PROB_EPS: f64 = 1e-7;

/// A loss and its gradient with respect to `y_pred`.
#[derive(Clone, Debug, PartialEq)]
pub struct LossGrad<F> {
    /// The mean loss.
    pub loss: F,
    /// `d loss / d y_pred`, shaped like `y_pred`.
    pub grad: ArrayD<F>,
}

/// `square_loss` and its gradient.
pub fn square<F: NnFloat>(y: &ArrayViewD<'_, F>, y_pred: &ArrayViewD<'_, F>) -> NnResult<LossGrad<F>> {
    if y.shape() != y_pred.shape() {
        return Err(NnError::Shape(format!(
            "square loss: targets of shape {:?} do not match predictions {:?}",
            y.shape(),
            y_pred.shape()
        )));
    }
    let n = F::of(y.len().max(1) as f64);
    let diff = y_pred - y;
    let loss = diff.iter().map(|&d| d * d).sum::<F>() / n;
    let two_over_n = F::of(2.0) / n;
    Ok(LossGrad { loss, grad: diff.mapv(|d| d * two_over_n) })
}

/// Predictions as `(N, C)` rows (a 1-D prediction is one row).
fn logit_rows<'a, F: NnFloat>(y_pred: &'a ArrayViewD<'_, F>) -> NnResult<ArrayView2<'a, F>> {
    match y_pred.ndim() {
        1 => Ok(y_pred.view().into_shape_with_order((1, y_pred.len())).map_err(|e| NnError::Shape(e.to_string()))?),
        2 => Ok(y_pred.view().into_dimensionality::<Ix2>().map_err(|e| NnError::Shape(e.to_string()))?),
        _ => Err(NnError::Shape(format!("class predictions must be (N, C) or (C,), got {:?}", y_pred.shape()))),
    }
}

/// The targets as class indices, one per row (`None` for an ignored row).
fn class_indices<F: NnFloat>(
    y: &ArrayViewD<'_, F>,
    rows: usize,
    classes: usize,
    ignore_index: Option<i64>,
) -> NnResult<Vec<Option<usize>>> {
    let labels: Vec<F> = match y.ndim() {
        0 => vec![y.iter().copied().next().unwrap_or_else(F::zero)],
        1 => y.view().into_dimensionality::<Ix1>().map_err(|e| NnError::Shape(e.to_string()))?.to_vec(),
        _ => return Err(NnError::Shape(format!("class targets must be 1-D, got {:?}", y.shape()))),
    };
    if labels.len() != rows {
        return Err(NnError::Shape(format!("{} targets for {rows} predictions", labels.len())));
    }
    labels
        .into_iter()
        .map(|label| {
            let value = label.to_f64().unwrap_or(f64::NAN);
            if value.fract() != 0.0 || !value.is_finite() {
                return Err(NnError::Param(format!("class target {value} is not an integer")));
            }
            if ignore_index == Some(value as i64) {
                return Ok(None);
            }
            if value < 0.0 || value >= classes as f64 {
                return Err(NnError::Param(format!("class target {value} is out of range for {classes} classes")));
            }
            Ok(Some(value as usize))
        })
        .collect()
}

/// Row-wise softmax of logits.
fn softmax_rows<F: NnFloat>(z: &ArrayView2<'_, F>) -> Array2<F> {
    let p = super::activation::softmax(&z.view().into_dyn(), ndarray::Axis(1), false);
    p.into_dimensionality().expect("the softmax of a matrix is a matrix")
}

/// `cross_entropy_loss` (softmax + negative log-likelihood) and its gradient.
pub fn cross_entropy<F: NnFloat>(
    y: &ArrayViewD<'_, F>,
    y_pred: &ArrayViewD<'_, F>,
    ignore_index: Option<i64>,
) -> NnResult<LossGrad<F>> {
    let z = logit_rows(y_pred)?;
    let (n, c) = z.dim();
    let p = softmax_rows(&z);
    let mut grad = p.clone();
    let mut loss = F::zero();
    let count;
    if y.shape() == y_pred.shape() {
        // Class probabilities: -sum(y log p) per row, averaged over rows.
        let t = logit_rows(y)?;
        for ((prow, trow), mut grow) in p.rows().into_iter().zip(t.rows()).zip(grad.rows_mut()) {
            for ((&pv, &tv), gv) in prow.iter().zip(trow.iter()).zip(grow.iter_mut()) {
                loss -= tv * pv.ln();
                *gv = pv - tv;
            }
        }
        count = n;
    } else {
        let labels = class_indices(y, n, c, ignore_index)?;
        let mut kept = 0;
        for ((label, prow), mut grow) in labels.iter().zip(p.rows()).zip(grad.rows_mut()) {
            match label {
                Some(k) => {
                    kept += 1;
                    loss -= prow[*k].ln();
                    grow[*k] -= F::one();
                }
                None => grow.fill(F::zero()),
            }
        }
        count = kept;
    }
    // PyTorch gives NaN when every row is ignored (0 / 0); a typed error is more useful.
    if count == 0 {
        return Err(NnError::Param("cross entropy over no rows (all ignored or empty)".into()));
    }
    let scale = F::one() / F::of(count as f64);
    grad.mapv_inplace(|g| g * scale);
    Ok(LossGrad {
        loss: loss * scale,
        grad: grad.into_dyn().into_shape_with_order(y_pred.raw_dim()).map_err(|e| NnError::Shape(e.to_string()))?,
    })
}

/// Share of rows whose highest prediction is the target class (targets as indices or as
/// one-hot/probability rows).
pub fn accuracy<F: NnFloat>(y: &ArrayViewD<'_, F>, y_pred: &ArrayViewD<'_, F>) -> NnResult<F> {
    let z = logit_rows(y_pred)?;
    let (n, c) = z.dim();
    let argmax = |row: ndarray::ArrayView1<'_, F>| {
        row.iter()
            .enumerate()
            .fold((0, F::neg_infinity()), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) })
            .0
    };
    let labels: Vec<usize> = if y.shape() == y_pred.shape() {
        logit_rows(y)?.rows().into_iter().map(argmax).collect()
    } else {
        class_indices(y, n, c, None)?.into_iter().map(|l| l.unwrap_or(usize::MAX)).collect()
    };
    if n == 0 {
        return Err(NnError::Param("accuracy over no rows".into()));
    }
    let right = z.rows().into_iter().zip(&labels).filter(|(row, label)| argmax(row.view()) == **label).count();
    Ok(F::of(right as f64 / n as f64))
}

/// `sparse_categorical_cross_entropy_loss` on probabilities, and its gradient.
pub fn sparse_categorical<F: NnFloat>(y: &ArrayViewD<'_, F>, y_pred: &ArrayViewD<'_, F>) -> NnResult<LossGrad<F>> {
    let p = logit_rows(y_pred)?;
    let (n, c) = p.dim();
    let labels = class_indices(y, n, c, None)?;
    if n == 0 {
        return Err(NnError::Param("sparse categorical cross entropy over no rows".into()));
    }
    let (lo, hi) = (F::of(PROB_EPS), F::of(1.0 - PROB_EPS));
    let scale = F::one() / F::of(n as f64);
    let mut grad = Array2::zeros((n, c));
    let mut loss = F::zero();
    for (i, label) in labels.iter().enumerate() {
        let k = label.unwrap_or_default();
        let pv = p[[i, k]];
        let clipped = if pv < lo {
            lo
        } else if pv > hi {
            hi
        } else {
            pv
        };
        loss -= clipped.ln();
        // The clip's derivative is zero outside its range.
        if pv >= lo && pv <= hi {
            grad[[i, k]] = -scale / pv;
        }
    }
    Ok(LossGrad {
        loss: loss * scale,
        grad: grad.into_dyn().into_shape_with_order(y_pred.raw_dim()).map_err(|e| NnError::Shape(e.to_string()))?,
    })
}
