//! The group I ops (`square_loss`, `cross_entropy_loss` and the v2-era gradient, accuracy and
//! sparse categorical ops) on top of [`crate::nn::loss`]. They are pure functions of
//! `(y, y_pred)`, so they run here like any other kernel; training steps that differentiate
//! through layers use [`crate::nn`] directly.
//!
//! They compute in `f32` when the prediction is `f32` (PyTorch's default dtype) and in `f64`
//! otherwise; integer or boolean targets are converted to the prediction's float type.

use crate::error::{ErrorKind, KResult};
use crate::nn::{NnFloat, loss};
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};
use ravproto::{DType, OpKind};

/// Reshapes to `shape` (one `-1` allowed), as `reshape_target`/`reshape_label` ask.
fn reshaped<F: NnFloat>(a: ArrayD<F>, shape: Option<&[i64]>) -> KResult<ArrayD<F>> {
    let Some(shape) = shape else { return Ok(a) };
    let known: i64 = shape.iter().filter(|&&d| d != -1).product();
    let unknown = shape.iter().filter(|&&d| d == -1).count();
    if unknown > 1 || shape.iter().any(|&d| d < -1) || known <= 0 && !a.is_empty() {
        return Err(ErrorKind::Value(format!("cannot reshape to {shape:?}")));
    }
    let dims: Vec<usize> =
        shape.iter().map(|&d| if d == -1 { a.len() / known.max(1) as usize } else { d as usize }).collect();
    let len = a.len();
    a.into_shape_with_order(IxDyn(&dims))
        .map_err(|_| ErrorKind::Shape(format!("cannot reshape {len} elements to {shape:?}")))
}

fn float_array<F: NnFloat>(t: &Tensor, dtype: DType) -> ArrayD<F> {
    match t.cast(dtype) {
        Tensor::F32(a) => a.mapv(|v| F::of(f64::from(v))),
        Tensor::F64(a) => a.mapv(F::of),
        other => other.to_f64_array().mapv(F::of),
    }
}

fn run<F: NnFloat>(kind: OpKind, y: ArrayD<F>, y_pred: ArrayD<F>, ignore_index: Option<i64>) -> KResult<ArrayD<F>> {
    use OpKind as K;
    let scalar = |v: F| ArrayD::from_elem(IxDyn(&[]), v);
    let (y, p) = (y.view(), y_pred.view());
    Ok(match kind {
        K::SquareLoss => scalar(loss::square(&y, &p)?.loss),
        K::SquareLossGradient => loss::square(&y, &p)?.grad,
        K::CrossEntropyLoss => scalar(loss::cross_entropy(&y, &p, ignore_index)?.loss),
        K::CrossEntropyGradient => loss::cross_entropy(&y, &p, ignore_index)?.grad,
        K::CrossEntropyAccuracy | K::SparseCategoricalCrossEntropyAccuracy => scalar(loss::accuracy(&y, &p)?),
        K::SparseCategoricalCrossEntropyLoss => scalar(loss::sparse_categorical(&y, &p)?.loss),
        K::SparseCategoricalCrossEntropyGradient => loss::sparse_categorical(&y, &p)?.grad,
        other => return Err(ErrorKind::Unsupported(format!("`{other}` is not a loss"))),
    })
}

/// Runs loss op `kind` on targets `y` and predictions `y_pred`.
pub(crate) fn loss_op(
    kind: OpKind,
    y: &Tensor,
    y_pred: &Tensor,
    params: Option<&ravproto::ops::CrossEntropyParams>,
) -> KResult<Tensor> {
    let ignore_index = params.and_then(|p| p.ignore_index);
    let reshape_y = params.and_then(|p| p.reshape_target.as_deref());
    let reshape_pred = params.and_then(|p| p.reshape_label.as_deref());
    if y_pred.dtype() == DType::F32 {
        let y = reshaped(float_array::<f32>(y, DType::F32), reshape_y)?;
        let p = reshaped(float_array::<f32>(y_pred, DType::F32), reshape_pred)?;
        Ok(Tensor::F32(run(kind, y, p, ignore_index)?))
    } else {
        let y = reshaped(float_array::<f64>(y, DType::F64), reshape_y)?;
        let p = reshaped(float_array::<f64>(y_pred, DType::F64), reshape_pred)?;
        Ok(Tensor::F64(run(kind, y, p, ignore_index)?))
    }
}
