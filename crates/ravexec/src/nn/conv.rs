//! `forward_pass_conv2d`: 2-D convolution over NCHW input (PyTorch's `Conv2d`: cross-correlation
//! with stride, zero padding, dilation and groups), by im2col and matrix products.
//!
//! Each sample's receptive fields are unrolled into a `(C/g * kh * kw, Ho * Wo)` column matrix
//! and multiplied by the `(O/g, C/g * kh * kw)` weight matrix of its group. Samples run in
//! parallel (rayon); the weight gradient sums the samples' parts in sample order, so the result
//! does not depend on the number of threads. The backward recomputes the columns instead of
//! keeping them, trading one unroll for `N * K * Ho * Wo` elements of memory.

use super::{NnError, NnFloat, NnResult};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array4, ArrayView1, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut3, Axis, Slice};
use rayon::prelude::*;

/// Geometry of a convolution (or of a pooling window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel `(kh, kw)`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding on each side.
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Window {
    /// Checks the numbers and gives the output size for an `h x w` input (`ceil` rounds the
    /// division up, as pooling's `ceil_mode`).
    pub fn output_size(&self, h: usize, w: usize, ceil: bool) -> NnResult<[usize; 2]> {
        let mut out = [0; 2];
        for (d, size) in [h, w].into_iter().enumerate() {
            let (k, st, p, di) = (self.kernel[d], self.stride[d], self.padding[d], self.dilation[d]);
            if k == 0 || st == 0 || di == 0 {
                return Err(NnError::Param(format!(
                    "kernel, stride and dilation must be positive, got {:?}, {:?}, {:?}",
                    self.kernel, self.stride, self.dilation
                )));
            }
            let span = di * (k - 1) + 1;
            let padded = size + 2 * p;
            if padded < span {
                return Err(NnError::Shape(format!(
                    "input {h}x{w} (padded by {:?}) is smaller than the kernel span {span}",
                    self.padding
                )));
            }
            let mut n = (padded - span) / st + 1;
            // PyTorch's ceil mode: one more window if it starts inside the input or left padding.
            if ceil && (padded - span) % st != 0 && (n * st) < size + p {
                n += 1;
            }
            out[d] = n;
        }
        Ok(out)
    }
}

/// A convolution's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Kernel geometry.
    pub window: Window,
    /// Channel groups.
    pub groups: usize,
}

/// Gradients of a convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dGrads<F> {
    /// Of the input `(N, C, H, W)`.
    pub input: Array4<F>,
    /// Of the weight `(O, C/g, kh, kw)`.
    pub weight: Array4<F>,
    /// Of the bias `(O,)`.
    pub bias: Option<Array1<F>>,
}

struct Shapes {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    cg: usize,
    og: usize,
    oh: usize,
    ow: usize,
    k: usize,
}

impl Conv2d {
    fn shapes<F>(&self, x: &ArrayView4<'_, F>, weight: &ArrayView4<'_, F>) -> NnResult<Shapes> {
        let (n, c, h, w) = x.dim();
        let (o, cg, kh, kw) = weight.dim();
        let g = self.groups;
        if g == 0 || c % g != 0 || o % g != 0 {
            return Err(NnError::Param(format!("{c} input and {o} output channels do not split into {g} groups")));
        }
        if cg != c / g || [kh, kw] != self.window.kernel {
            return Err(NnError::Shape(format!(
                "weight of shape {:?} does not fit {c} input channels in {g} groups with kernel {:?}",
                weight.shape(),
                self.window.kernel
            )));
        }
        let [oh, ow] = self.window.output_size(h, w, false)?;
        Ok(Shapes { n, c, h, w, o, cg, og: o / g, oh, ow, k: cg * kh * kw })
    }

    /// The output columns `lo..hi` whose input column `ox * stride + offset` lies inside a
    /// row of `len`, so the copy loops below need no bounds test per element.
    fn valid_range(offset: isize, stride: usize, len: usize, out_len: usize) -> (usize, usize) {
        let stride = stride as isize;
        let lo = if offset >= 0 { 0 } else { (-offset + stride - 1) / stride };
        let last = len as isize - 1 - offset;
        let hi = if last < 0 { 0 } else { (last / stride + 1).min(out_len as isize) };
        (lo as usize, (hi.max(lo)) as usize)
    }

    /// Unrolls channels `c0..c0 + cg` of one sample (standard layout) into `cols`, whose
    /// padding cells must already be zero.
    fn im2col<F: NnFloat>(&self, x: &ArrayView3<'_, F>, c0: usize, sh: &Shapes, cols: &mut Array2<F>) {
        let Window { kernel: [kh, kw], stride: [sy, sx], padding: [py, px], dilation: [dy, dx] } = self.window;
        let x = x.as_slice().expect("samples of a standard array are contiguous");
        for c in 0..sh.cg {
            let plane = &x[(c0 + c) * sh.h * sh.w..(c0 + c + 1) * sh.h * sh.w];
            for i in 0..kh {
                let (y_lo, y_hi) = Self::valid_range((i * dy) as isize - py as isize, sy, sh.h, sh.oh);
                for j in 0..kw {
                    let offset = (j * dx) as isize - px as isize;
                    let (lo, hi) = Self::valid_range(offset, sx, sh.w, sh.ow);
                    let mut row = cols.row_mut((c * kh + i) * kw + j);
                    let row = row.as_slice_mut().expect("rows of a standard array are contiguous");
                    for oy in y_lo..y_hi {
                        let y = oy * sy + i * dy - py;
                        let src = &plane[y * sh.w..(y + 1) * sh.w];
                        let dst = &mut row[oy * sh.ow + lo..oy * sh.ow + hi];
                        let first = (lo * sx) as isize + offset;
                        if sx == 1 {
                            dst.copy_from_slice(&src[first as usize..first as usize + (hi - lo)]);
                        } else {
                            for (k, d) in dst.iter_mut().enumerate() {
                                *d = src[first as usize + k * sx];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds columns back into channels `c0..c0 + cg` of one sample's input gradient (standard
    /// layout).
    fn col2im<F: NnFloat>(&self, cols: &Array2<F>, dx: &mut ArrayViewMut3<'_, F>, c0: usize, sh: &Shapes) {
        let Window { kernel: [kh, kw], stride: [sy, sx], padding: [py, px], dilation: [dy, dx_] } = self.window;
        let dx = dx.as_slice_mut().expect("samples of a standard array are contiguous");
        for c in 0..sh.cg {
            let plane = &mut dx[(c0 + c) * sh.h * sh.w..(c0 + c + 1) * sh.h * sh.w];
            for i in 0..kh {
                let (y_lo, y_hi) = Self::valid_range((i * dy) as isize - py as isize, sy, sh.h, sh.oh);
                for j in 0..kw {
                    let offset = (j * dx_) as isize - px as isize;
                    let (lo, hi) = Self::valid_range(offset, sx, sh.w, sh.ow);
                    let row = cols.row((c * kh + i) * kw + j);
                    let row = row.as_slice().expect("rows of a standard array are contiguous");
                    for oy in y_lo..y_hi {
                        let y = oy * sy + i * dy - py;
                        let dst = &mut plane[y * sh.w..(y + 1) * sh.w];
                        let src = &row[oy * sh.ow + lo..oy * sh.ow + hi];
                        let first = ((lo * sx) as isize + offset) as usize;
                        if sx == 1 {
                            for (d, &s) in dst[first..first + src.len()].iter_mut().zip(src) {
                                *d += s;
                            }
                        } else {
                            for (k, &s) in src.iter().enumerate() {
                                dst[first + k * sx] += s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The weight of group `g` as a `(O/g, K)` matrix.
    fn group_weight<'a, F: NnFloat>(weight: &'a ArrayView4<'_, F>, g: usize, sh: &Shapes) -> ArrayView2<'a, F> {
        weight
            .slice_axis_move(Axis(0), Slice::from(g * sh.og..(g + 1) * sh.og))
            .into_shape_with_order((sh.og, sh.k))
            .expect("a slice along the first axis of a standard array is contiguous")
    }

    /// The output `(N, O, Ho, Wo)`.
    pub fn forward<F: NnFloat>(
        &self,
        x: &ArrayView4<'_, F>,
        weight: &ArrayView4<'_, F>,
        bias: Option<&ArrayView1<'_, F>>,
    ) -> NnResult<Array4<F>> {
        let weight = &weight.as_standard_layout();
        let weight = &weight.view();
        let sh = self.shapes(x, weight)?;
        if let Some(bias) = bias
            && bias.len() != sh.o
        {
            return Err(NnError::Shape(format!("conv2d bias has {} entries for {} channels", bias.len(), sh.o)));
        }
        let x = &x.as_standard_layout();
        let mut out = Array4::zeros((sh.n, sh.o, sh.oh, sh.ow));
        out.axis_iter_mut(Axis(0)).into_par_iter().zip(x.axis_iter(Axis(0))).for_each(|(mut out_n, x_n)| {
            let mut cols = Array2::zeros((sh.k, sh.oh * sh.ow));
            for g in 0..self.groups {
                self.im2col(&x_n, g * sh.cg, &sh, &mut cols);
                let target = out_n.slice_axis_mut(Axis(0), Slice::from(g * sh.og..(g + 1) * sh.og));
                let mut target =
                    target.into_shape_with_order((sh.og, sh.oh * sh.ow)).expect("channels of a sample are contiguous");
                general_mat_mul(F::one(), &Self::group_weight(weight, g, &sh), &cols, F::zero(), &mut target);
            }
            if let Some(bias) = bias {
                for (mut channel, &b) in out_n.axis_iter_mut(Axis(0)).zip(bias.iter()) {
                    channel += b;
                }
            }
        });
        Ok(out)
    }

    /// Gradients from the output's gradient `(N, O, Ho, Wo)`.
    pub fn backward<F: NnFloat>(
        &self,
        x: &ArrayView4<'_, F>,
        weight: &ArrayView4<'_, F>,
        with_bias: bool,
        grad: &ArrayView4<'_, F>,
    ) -> NnResult<Conv2dGrads<F>> {
        let weight = &weight.as_standard_layout();
        let weight = &weight.view();
        let sh = self.shapes(x, weight)?;
        if grad.dim() != (sh.n, sh.o, sh.oh, sh.ow) {
            return Err(NnError::Shape(format!(
                "conv2d output gradient of shape {:?}, expected {:?}",
                grad.shape(),
                [sh.n, sh.o, sh.oh, sh.ow]
            )));
        }
        let x = &x.as_standard_layout();
        let mut dx = Array4::zeros((sh.n, sh.c, sh.h, sh.w));
        // Each sample's share of the weight gradient, summed below in sample order.
        let parts: Vec<Array2<F>> = dx
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)))
            .zip(grad.axis_iter(Axis(0)))
            .map(|((mut dx_n, x_n), g_n)| {
                let mut dw = Array2::zeros((sh.o, sh.k));
                let mut cols = Array2::zeros((sh.k, sh.oh * sh.ow));
                let mut dcols = Array2::zeros((sh.k, sh.oh * sh.ow));
                for g in 0..self.groups {
                    self.im2col(&x_n, g * sh.cg, &sh, &mut cols);
                    let g_out = g_n.slice_axis(Axis(0), Slice::from(g * sh.og..(g + 1) * sh.og));
                    let g_out = g_out.as_standard_layout();
                    let g_out = g_out.into_shape_with_order((sh.og, sh.oh * sh.ow)).expect("standard layout");
                    let mut dw_g = dw.slice_axis_mut(Axis(0), Slice::from(g * sh.og..(g + 1) * sh.og));
                    general_mat_mul(F::one(), &g_out, &cols.t(), F::zero(), &mut dw_g);
                    general_mat_mul(F::one(), &Self::group_weight(weight, g, &sh).t(), &g_out, F::zero(), &mut dcols);
                    self.col2im(&dcols, &mut dx_n, g * sh.cg, &sh);
                }
                dw
            })
            .collect();
        let mut dw = Array2::zeros((sh.o, sh.k));
        for part in &parts {
            dw += part;
        }
        let dw = dw.into_shape_with_order(weight.raw_dim()).expect("(O, K) holds the weight's elements");
        let bias = with_bias.then(|| {
            let mut db = Array1::zeros(sh.o);
            for g_n in grad.axis_iter(Axis(0)) {
                for (d, channel) in db.iter_mut().zip(g_n.axis_iter(Axis(0))) {
                    *d += channel.sum();
                }
            }
            db
        });
        Ok(Conv2dGrads { input: dx, weight: dw, bias })
    }
}
