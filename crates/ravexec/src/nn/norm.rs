//! Normalisation layers: `forward_pass_batchnorm1d`/`2d` (statistics per channel, axis 1, over
//! the batch and any spatial axes) and `forward_pass_layernorm` (statistics per sample over the
//! trailing `normalized_shape`), with PyTorch's formulas: biased variance to normalise, the
//! unbiased one in the running variance, `eps` inside the square root.

use super::{NnError, NnFloat, NnResult};
use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD, Axis, IxDyn, Zip};

/// Batch normalisation's settings and running statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm<F> {
    /// Running-statistics momentum (PyTorch's default 0.1).
    pub momentum: f64,
    /// Stability term.
    pub eps: f64,
    /// Running mean per channel.
    pub running_mean: Array1<F>,
    /// Running (unbiased) variance per channel.
    pub running_var: Array1<F>,
}

/// What a normalisation's backward needs from its forward.
#[derive(Clone, Debug, PartialEq)]
pub struct NormCache<F> {
    /// The normalised input `(x - mean) / std`.
    pub normalized: ArrayD<F>,
    /// `1 / sqrt(var + eps)` per channel (batch norm) or per sample (layer norm).
    pub inv_std: Array1<F>,
    /// Whether batch statistics were used (training), so the backward differentiates them.
    pub batch_stats: bool,
}

/// Gradients of a normalisation layer.
#[derive(Clone, Debug, PartialEq)]
pub struct NormGrads<F> {
    /// Of the input.
    pub input: ArrayD<F>,
    /// Of gamma.
    pub gamma: Option<ArrayD<F>>,
    /// Of beta.
    pub beta: Option<ArrayD<F>>,
}

fn channels<F>(x: &ArrayViewD<'_, F>) -> NnResult<usize> {
    if x.ndim() < 2 {
        return Err(NnError::Shape(format!("batch norm needs (N, C, ...) input, got {:?}", x.shape())));
    }
    Ok(x.shape()[1])
}

impl<F: NnFloat> BatchNorm<F> {
    /// Fresh statistics for `channels` (mean 0, variance 1).
    pub fn new(channels: usize, momentum: f64, eps: f64) -> NnResult<BatchNorm<F>> {
        if !(eps > 0.0 && eps.is_finite() && (0.0..=1.0).contains(&momentum)) {
            return Err(NnError::Param(format!(
                "batch norm needs eps > 0 and momentum in [0, 1], got {eps} and {momentum}"
            )));
        }
        Ok(BatchNorm { momentum, eps, running_mean: Array1::zeros(channels), running_var: Array1::ones(channels) })
    }

    /// Normalises `x` (training: batch statistics, updating the running ones; evaluation: the
    /// running statistics), then scales by `gamma` and shifts by `beta` when given.
    pub fn forward(
        &mut self,
        x: &ArrayViewD<'_, F>,
        gamma: Option<&ArrayView1<'_, F>>,
        beta: Option<&ArrayView1<'_, F>>,
        training: bool,
    ) -> NnResult<(ArrayD<F>, NormCache<F>)> {
        let c = channels(x)?;
        if self.running_mean.len() != c || gamma.is_some_and(|g| g.len() != c) || beta.is_some_and(|b| b.len() != c) {
            return Err(NnError::Shape(format!(
                "batch norm of {} channels got input {:?}",
                self.running_mean.len(),
                x.shape()
            )));
        }
        let count = x.len() / c.max(1);
        if training && count < 2 {
            return Err(NnError::Shape(format!(
                "batch norm in training needs more than one value per channel, got input {:?}",
                x.shape()
            )));
        }
        let eps = F::of(self.eps);
        let mut normalized = ArrayD::zeros(x.raw_dim());
        let mut inv_std = Array1::zeros(c);
        for (ch, (xc, mut nc)) in x.axis_iter(Axis(1)).zip(normalized.axis_iter_mut(Axis(1))).enumerate() {
            let (mean, var) = if training {
                let n = F::of(count as f64);
                let mean = xc.sum() / n;
                let var = xc.iter().map(|&v| (v - mean) * (v - mean)).sum::<F>() / n;
                let m = F::of(self.momentum);
                let unbiased = var * n / F::of(count as f64 - 1.0);
                self.running_mean[ch] = (F::one() - m) * self.running_mean[ch] + m * mean;
                self.running_var[ch] = (F::one() - m) * self.running_var[ch] + m * unbiased;
                (mean, var)
            } else {
                (self.running_mean[ch], self.running_var[ch])
            };
            let inv = F::one() / (var + eps).sqrt();
            inv_std[ch] = inv;
            Zip::from(&mut nc).and(&xc).for_each(|o, &v| *o = (v - mean) * inv);
        }
        let mut y = normalized.clone();
        for (ch, mut yc) in y.axis_iter_mut(Axis(1)).enumerate() {
            let (g, b) = (gamma.map_or(F::one(), |g| g[ch]), beta.map_or(F::zero(), |b| b[ch]));
            yc.mapv_inplace(|v| g * v + b);
        }
        Ok((y, NormCache { normalized, inv_std, batch_stats: training }))
    }
}

/// Batch norm's gradients from the output's gradient.
pub fn batchnorm_backward<F: NnFloat>(
    cache: &NormCache<F>,
    gamma: Option<&ArrayView1<'_, F>>,
    grad: &ArrayViewD<'_, F>,
) -> NnResult<NormGrads<F>> {
    if grad.shape() != cache.normalized.shape() {
        return Err(NnError::Shape(format!(
            "batch norm output gradient of shape {:?}, expected {:?}",
            grad.shape(),
            cache.normalized.shape()
        )));
    }
    let c = cache.inv_std.len();
    let count = F::of((grad.len() / c.max(1)) as f64);
    let mut input = ArrayD::zeros(grad.raw_dim());
    let mut dgamma = Array1::zeros(c);
    let mut dbeta = Array1::zeros(c);
    for (ch, ((gc, nc), mut dc)) in
        grad.axis_iter(Axis(1)).zip(cache.normalized.axis_iter(Axis(1))).zip(input.axis_iter_mut(Axis(1))).enumerate()
    {
        let sum_g = gc.sum();
        let sum_gn: F = gc.iter().zip(nc.iter()).map(|(&g, &n)| g * n).sum();
        dgamma[ch] = sum_gn;
        dbeta[ch] = sum_g;
        let scale = gamma.map_or(F::one(), |g| g[ch]) * cache.inv_std[ch];
        if cache.batch_stats {
            Zip::from(&mut dc).and(&gc).and(&nc).for_each(|d, &g, &n| {
                *d = scale * (g - sum_g / count - n * sum_gn / count);
            });
        } else {
            Zip::from(&mut dc).and(&gc).for_each(|d, &g| *d = scale * g);
        }
    }
    Ok(NormGrads { input, gamma: gamma.map(|_| dgamma.clone().into_dyn()), beta: gamma.map(|_| dbeta.into_dyn()) })
}

/// Layer norm over the trailing `normalized_shape` axes, with optional elementwise `gamma` and
/// `beta` of that shape.
pub fn layernorm_forward<F: NnFloat>(
    x: &ArrayViewD<'_, F>,
    normalized_shape: &[usize],
    gamma: Option<&ArrayViewD<'_, F>>,
    beta: Option<&ArrayViewD<'_, F>>,
    eps: f64,
) -> NnResult<(ArrayD<F>, NormCache<F>)> {
    let d = normalized_shape.len();
    if d == 0 || x.ndim() < d || x.shape()[x.ndim() - d..] != *normalized_shape {
        return Err(NnError::Shape(format!("layer norm over {normalized_shape:?} got input {:?}", x.shape())));
    }
    for (what, p) in [("gamma", gamma), ("beta", beta)] {
        if let Some(p) = p
            && p.shape() != normalized_shape
        {
            return Err(NnError::Shape(format!(
                "layer norm {what} of shape {:?}, expected {normalized_shape:?}",
                p.shape()
            )));
        }
    }
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(NnError::Param(format!("layer norm needs eps > 0, got {eps}")));
    }
    let width: usize = normalized_shape.iter().product();
    let rows = x.len() / width.max(1);
    let xs = x.as_standard_layout();
    let x2 = xs.view().into_shape_with_order((rows, width)).map_err(|e| NnError::Shape(e.to_string()))?;
    let n = F::of(width as f64);
    let mut normalized = ndarray::Array2::zeros((rows, width));
    let mut inv_std = Array1::zeros(rows);
    for (r, (xr, mut nr)) in x2.rows().into_iter().zip(normalized.rows_mut()).enumerate() {
        let mean = xr.sum() / n;
        let var = xr.iter().map(|&v| (v - mean) * (v - mean)).sum::<F>() / n;
        let inv = F::one() / (var + F::of(eps)).sqrt();
        inv_std[r] = inv;
        Zip::from(&mut nr).and(&xr).for_each(|o, &v| *o = (v - mean) * inv);
    }
    let normalized = normalized.into_shape_with_order(IxDyn(x.shape())).map_err(|e| NnError::Shape(e.to_string()))?;
    let mut y = normalized.clone();
    if let Some(gamma) = gamma {
        y *= gamma;
    }
    if let Some(beta) = beta {
        y += beta;
    }
    Ok((y, NormCache { normalized, inv_std, batch_stats: true }))
}

/// Layer norm's gradients from the output's gradient.
pub fn layernorm_backward<F: NnFloat>(
    cache: &NormCache<F>,
    gamma: Option<&ArrayViewD<'_, F>>,
    grad: &ArrayViewD<'_, F>,
) -> NnResult<NormGrads<F>> {
    if grad.shape() != cache.normalized.shape() {
        return Err(NnError::Shape(format!(
            "layer norm output gradient of shape {:?}, expected {:?}",
            grad.shape(),
            cache.normalized.shape()
        )));
    }
    let rows = cache.inv_std.len();
    let width = grad.len() / rows.max(1);
    let n = F::of(width as f64);
    // The gradient of the normalised value: the output's, scaled by gamma.
    let mut g_hat = grad.to_owned();
    if let Some(gamma) = gamma {
        g_hat *= gamma;
    }
    let param_grads = gamma.map(|gamma| {
        let sum_rows = |a: ArrayD<F>| {
            a.into_shape_with_order((rows, width))
                .expect("rows x width")
                .sum_axis(Axis(0))
                .into_shape_with_order(gamma.raw_dim())
                .expect("gamma's shape")
        };
        (sum_rows(grad * &cache.normalized), sum_rows(grad.to_owned()))
    });
    let g2 = g_hat.into_shape_with_order((rows, width)).map_err(|e| NnError::Shape(e.to_string()))?;
    let n2 = cache.normalized.view().into_shape_with_order((rows, width)).map_err(|e| NnError::Shape(e.to_string()))?;
    let mut input = ndarray::Array2::zeros((rows, width));
    for (r, ((gr, nr), mut dr)) in g2.rows().into_iter().zip(n2.rows()).zip(input.rows_mut()).enumerate() {
        let sum_g = gr.sum();
        let sum_gn: F = gr.iter().zip(nr.iter()).map(|(&g, &v)| g * v).sum();
        let inv = cache.inv_std[r];
        Zip::from(&mut dr).and(&gr).and(&nr).for_each(|d, &g, &v| *d = inv * (g - sum_g / n - v * sum_gn / n));
    }
    let input = input.into_shape_with_order(grad.raw_dim()).map_err(|e| NnError::Shape(e.to_string()))?;
    let (gamma, beta) = match param_grads {
        Some((dg, db)) => (Some(dg), Some(db)),
        None => (None, None),
    };
    Ok(NormGrads { input, gamma, beta })
}
