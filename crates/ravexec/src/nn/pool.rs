//! `forward_pass_maxpool2d`: max over windows of NCHW input (PyTorch's `MaxPool2d`: stride
//! defaults to the window, padding counts as minus infinity, optional ceil mode). The forward
//! keeps each output's source position; the backward sends each gradient there (ties go to
//! the first maximum in row-major order, as in PyTorch's CPU kernel).

use super::conv::Window;
use super::{NnError, NnFloat, NnResult};
use ndarray::{Array4, ArrayView4, Axis};
use rayon::prelude::*;

/// A pooled output and where each value came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Pooled<F> {
    /// `(N, C, Ho, Wo)`.
    pub output: Array4<F>,
    /// For each output, the flat index `y * W + x` of its maximum in its channel.
    pub argmax: Array4<usize>,
}

/// Max pooling forward.
pub fn forward<F: NnFloat>(x: &ArrayView4<'_, F>, window: Window, ceil_mode: bool) -> NnResult<Pooled<F>> {
    let (n, c, h, w) = x.dim();
    let [kh, kw] = window.kernel;
    if window.padding[0] * 2 > kh || window.padding[1] * 2 > kw {
        return Err(NnError::Param(format!(
            "padding {:?} must be at most half the window {:?}",
            window.padding, window.kernel
        )));
    }
    let [oh, ow] = window.output_size(h, w, ceil_mode)?;
    let mut output = Array4::zeros((n, c, oh, ow));
    let mut argmax = Array4::zeros((n, c, oh, ow));
    let Window { stride: [sy, sx], padding: [py, px], dilation: [dy, dx], .. } = window;
    output
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(argmax.axis_iter_mut(Axis(0)))
        .zip(x.axis_iter(Axis(0)))
        .for_each(|((mut out_n, mut arg_n), x_n)| {
            for ch in 0..c {
                let plane = x_n.index_axis(Axis(0), ch);
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut best = F::neg_infinity();
                        let mut at = usize::MAX;
                        for i in 0..kh {
                            let y = (oy * sy + i * dy) as isize - py as isize;
                            if y < 0 || y >= h as isize {
                                continue;
                            }
                            for j in 0..kw {
                                let xx = (ox * sx + j * dx) as isize - px as isize;
                                if xx < 0 || xx >= w as isize {
                                    continue;
                                }
                                let v = plane[[y as usize, xx as usize]];
                                // NaN propagates, as in PyTorch.
                                if v > best || v.is_nan() || at == usize::MAX {
                                    best = v;
                                    at = y as usize * w + xx as usize;
                                    if v.is_nan() {
                                        break;
                                    }
                                }
                            }
                        }
                        out_n[[ch, oy, ox]] = best;
                        arg_n[[ch, oy, ox]] = at;
                    }
                }
            }
        });
    Ok(Pooled { output, argmax })
}

/// The input's gradient `(N, C, H, W)` from the output's gradient.
pub fn backward<F: NnFloat>(
    input_shape: [usize; 4],
    argmax: &ArrayView4<'_, usize>,
    grad: &ArrayView4<'_, F>,
) -> NnResult<Array4<F>> {
    if argmax.shape() != grad.shape() {
        return Err(NnError::Shape(format!(
            "maxpool2d output gradient of shape {:?}, expected {:?}",
            grad.shape(),
            argmax.shape()
        )));
    }
    let [n, c, h, w] = input_shape;
    let mut dx = Array4::zeros((n, c, h, w));
    dx.axis_iter_mut(Axis(0)).into_par_iter().zip(argmax.axis_iter(Axis(0))).zip(grad.axis_iter(Axis(0))).for_each(
        |((mut dx_n, arg_n), g_n)| {
            for ((ch, oy, ox), &at) in arg_n.indexed_iter() {
                if at < h * w {
                    dx_n[[ch, at / w, at % w]] += g_n[[ch, oy, ox]];
                }
            }
        },
    );
    Ok(dx)
}
