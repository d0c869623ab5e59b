//! Reductions and statistics (group C's `sum`/`prod`/`min`/`max`/`arg*` and group E).
//!
//! Every reduction goes through [`reduce_lanes`]: the reduced axes are moved last, the array
//! is laid out row-major, and each contiguous "lane" is folded by a plain slice function. Lanes
//! run in parallel when there are many; a single huge lane (a full reduction) is folded with
//! parallel chunks inside the slice function.

use crate::error::{ErrorKind, KResult};
use crate::tensor::{Elem, PAR_THRESHOLD, Tensor, norm_axes, norm_axis, promote};
use crate::with_array;
use ndarray::{ArrayD, IxDyn};
use ravproto::ops::{Axes, PercentileMethod};
use ravproto::{DType, OpKind};
use rayon::prelude::*;

/// Resolves an optional axis list (`None`: all axes).
pub(crate) fn resolve_axes(axis: Option<&Axes>, ndim: usize) -> KResult<Vec<usize>> {
    match axis {
        None => Ok((0..ndim).collect()),
        Some(axes) => norm_axes(&axes.to_vec(), ndim),
    }
}

/// Shape after reducing `axes` (with or without the kept length-1 axes).
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Folds every lane over `axes` with `f`, returning the array of results.
pub(crate) fn reduce_lanes<T, R, F>(a: &ArrayD<T>, axes: &[usize], keepdims: bool, f: F) -> ArrayD<R>
where
    T: Clone + Send + Sync,
    R: Send,
    F: Fn(&[T]) -> R + Sync + Send,
{
    let kept: Vec<usize> = (0..a.ndim()).filter(|i| !axes.contains(i)).collect();
    let mut order = kept.clone();
    order.extend_from_slice(axes);
    let permuted = a.view().permuted_axes(IxDyn(&order));
    let standard = permuted.as_standard_layout();
    let slice = standard.as_slice().expect("standard layout is contiguous");
    let inner: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let outer: usize = kept.iter().map(|&i| a.shape()[i]).product();
    let results: Vec<R> = if inner == 0 {
        (0..outer).map(|_| f(&[])).collect()
    } else if outer > 1 && a.len() >= PAR_THRESHOLD {
        slice.par_chunks(inner).map(&f).collect()
    } else {
        slice.chunks(inner).map(&f).collect()
    };
    let shape = reduced_shape(a.shape(), axes, keepdims);
    ArrayD::from_shape_vec(IxDyn(&shape), results).expect("one result per lane")
}

/// Sum of a lane in `f64`, with 8 accumulators (vectorises, and limits rounding error growth)
/// and parallel chunks for long lanes.
fn sum_f64<T: Elem>(lane: &[T]) -> f64 {
    fn serial<T: Elem>(lane: &[T]) -> f64 {
        let mut acc = [0.0f64; 8];
        let chunks = lane.chunks_exact(8);
        let tail = chunks.remainder();
        for chunk in chunks {
            for (slot, &x) in acc.iter_mut().zip(chunk) {
                *slot += x.to_f64();
            }
        }
        let mut total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for &x in tail {
            total += x.to_f64();
        }
        total
    }
    if lane.len() >= 1 << 20 {
        // Chunk sums are added in order, so the result does not depend on work stealing and a
        // provider reproduces the local executor's value bit for bit.
        let partial: Vec<f64> = lane.par_chunks(1 << 16).map(serial).collect();
        partial.iter().sum()
    } else {
        serial(lane)
    }
}

fn sum_i64<T: Elem>(lane: &[T]) -> i64 {
    lane.iter().fold(0i64, |acc, &x| acc.wrapping_add(x.to_i64()))
}

fn float_of(dtype: DType) -> DType {
    if dtype == DType::F32 { DType::F32 } else { DType::F64 }
}

fn from_f64_array(dtype: DType, a: ArrayD<f64>) -> Tensor {
    if dtype == DType::F32 { Tensor::F32(a.mapv(|x| x as f32)) } else { Tensor::F64(a) }
}

/// `sum` and `prod`.
pub(crate) fn sum_prod(kind: OpKind, a: &Tensor, axis: Option<&Axes>, keepdims: bool) -> KResult<Tensor> {
    let axes = resolve_axes(axis, a.ndim())?;
    let is_sum = kind == OpKind::Sum;
    Ok(match a {
        Tensor::F32(x) => Tensor::F32(reduce_lanes(x, &axes, keepdims, |lane| {
            if is_sum { sum_f64(lane) as f32 } else { lane.iter().map(|&v| f64::from(v)).product::<f64>() as f32 }
        })),
        Tensor::F64(x) => {
            Tensor::F64(reduce_lanes(
                x,
                &axes,
                keepdims,
                |lane| {
                    if is_sum { sum_f64(lane) } else { lane.iter().product() }
                },
            ))
        }
        other => with_array!(other, x => Tensor::I64(reduce_lanes(x, &axes, keepdims, |lane| {
            if is_sum { sum_i64(lane) } else { lane.iter().fold(1i64, |acc, &v| acc.wrapping_mul(v.to_i64())) }
        }))),
    })
}

/// `min` and `max`: NaN propagates; an empty reduction is an error, as in NumPy.
pub(crate) fn min_max(kind: OpKind, a: &Tensor, axis: Option<&Axes>, keepdims: bool) -> KResult<Tensor> {
    let axes = resolve_axes(axis, a.ndim())?;
    let reduced: usize = axes.iter().map(|&i| a.shape()[i]).product();
    if reduced == 0 && a.is_empty() {
        let name = if kind == OpKind::Min { "minimum" } else { "maximum" };
        return Err(ErrorKind::Value(format!("zero-size array to reduction operation {name} which has no identity")));
    }
    let want_max = kind == OpKind::Max;
    fn fold<T: Elem>(lane: &[T], want_max: bool) -> T {
        let mut best = lane[0];
        for &x in lane {
            if x.is_nan() {
                return x;
            }
            if (want_max && x > best) || (!want_max && x < best) {
                best = x;
            }
        }
        best
    }
    Ok(with_array!(a, x => Elem::wrap(reduce_lanes(x, &axes, keepdims, |lane| fold(lane, want_max)))))
}

/// `argmax` and `argmin`: first occurrence; a NaN counts as the extreme.
pub(crate) fn arg_extreme(kind: OpKind, a: &Tensor, axis: Option<i64>, keepdims: bool) -> KResult<Tensor> {
    if a.is_empty() {
        return Err(ErrorKind::Value(format!("attempt to get {kind} of an empty sequence")));
    }
    let want_max = kind == OpKind::Argmax;
    fn position<T: Elem>(lane: &[T], want_max: bool) -> i64 {
        let mut best = 0;
        for (i, &x) in lane.iter().enumerate() {
            if x.is_nan() {
                return i as i64;
            }
            if (want_max && x > lane[best]) || (!want_max && x < lane[best]) {
                best = i;
            }
        }
        best as i64
    }
    Ok(match axis {
        None => {
            let flat = with_array!(a, x => {
                let values: Vec<_> = x.iter().copied().collect();
                position(&values, want_max)
            });
            let shape = if keepdims { vec![1; a.ndim()] } else { vec![] };
            Tensor::I64(ArrayD::from_elem(IxDyn(&shape), flat))
        }
        Some(axis) => {
            let axis = norm_axis(axis, a.ndim())?;
            with_array!(a, x => Tensor::I64(reduce_lanes(x, &[axis], keepdims, |lane| position(lane, want_max))))
        }
    })
}

/// `mean`: integers and bools average in `f64`; an empty lane gives NaN, as in NumPy.
pub(crate) fn mean(a: &Tensor, axis: Option<&Axes>, keepdims: bool) -> KResult<Tensor> {
    let axes = resolve_axes(axis, a.ndim())?;
    let out = with_array!(a, x => reduce_lanes(x, &axes, keepdims, |lane| sum_f64(lane) / lane.len() as f64));
    Ok(from_f64_array(float_of(a.dtype()), out))
}

/// `variance` and `std` with `ddof`.
pub(crate) fn var_std(kind: OpKind, a: &Tensor, axis: Option<&Axes>, keepdims: bool, ddof: f64) -> KResult<Tensor> {
    let axes = resolve_axes(axis, a.ndim())?;
    let take_root = kind == OpKind::Std;
    fn variance<T: Elem>(lane: &[T], ddof: f64) -> f64 {
        let n = lane.len() as f64;
        let mean = sum_f64(lane) / n;
        let squares: f64 = lane.iter().map(|&x| (x.to_f64() - mean).powi(2)).sum();
        squares / (n - ddof).max(0.0)
    }
    let out = with_array!(a, x => reduce_lanes(x, &axes, keepdims, |lane| {
        let v = variance(lane, ddof);
        if take_root { v.sqrt() } else { v }
    }));
    Ok(from_f64_array(float_of(a.dtype()), out))
}

/// Sorts floats ascending with NaN last (NumPy's order).
pub(crate) fn sort_key(a: &f64, b: &f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => a.partial_cmp(b).expect("neither is NaN"),
    }
}

/// NumPy's `_lerp`: interpolate from the nearer end for accuracy.
fn lerp(below: f64, above: f64, t: f64) -> f64 {
    let diff = above - below;
    if t >= 0.5 { above - diff * (1.0 - t) } else { below + diff * t }
}

/// Position of quantile `q` in a sorted lane of `n` values, as NumPy 2 computes it
/// (`numpy/lib/_function_base_impl.py`, `_QuantileMethods`).
enum Position {
    /// An exact element.
    Discrete(i64),
    /// Interpolate at a virtual index, with an optional fixed interpolation weight.
    Continuous { index: f64, gamma: Option<f64> },
}

fn position(n: usize, q: f64, method: PercentileMethod) -> Position {
    use PercentileMethod as M;
    let nf = n as f64;
    // Hyndman and Fan's continuous family: alpha and beta define the plotting positions.
    let virtual_index = |alpha: f64, beta: f64| nf * q + (alpha + q * (1.0 - alpha - beta)) - 1.0;
    // Discrete methods pick `floor(index)` where `take_previous` holds, else the next element.
    let discrete = |index: f64, take_previous: &dyn Fn(f64, f64) -> bool| {
        let previous = index.floor();
        let gamma = index - previous;
        let chosen = if take_previous(gamma, index) { previous } else { previous + 1.0 };
        Position::Discrete((chosen as i64).max(0))
    };
    match method {
        M::InvertedCdf => discrete(nf * q - 1.0, &|gamma, _| gamma == 0.0),
        M::ClosestObservation => {
            discrete(nf * q - 1.0 - 0.5, &|gamma, index| gamma == 0.0 && index.floor().rem_euclid(2.0) == 1.0)
        }
        M::AveragedInvertedCdf => {
            let index = nf * q - 1.0;
            let gamma = if index - index.floor() == 0.0 { 0.5 } else { 1.0 };
            Position::Continuous { index, gamma: Some(gamma) }
        }
        M::InterpolatedInvertedCdf => Position::Continuous { index: virtual_index(0.0, 1.0), gamma: None },
        M::Hazen => Position::Continuous { index: virtual_index(0.5, 0.5), gamma: None },
        M::Weibull => Position::Continuous { index: virtual_index(0.0, 0.0), gamma: None },
        M::Linear => Position::Continuous { index: (nf - 1.0) * q, gamma: None },
        M::MedianUnbiased => Position::Continuous { index: virtual_index(1.0 / 3.0, 1.0 / 3.0), gamma: None },
        M::NormalUnbiased => Position::Continuous { index: virtual_index(3.0 / 8.0, 3.0 / 8.0), gamma: None },
        M::Lower => Position::Discrete(((nf - 1.0) * q).floor() as i64),
        M::Higher => Position::Discrete(((nf - 1.0) * q).ceil() as i64),
        M::Nearest => Position::Discrete(((nf - 1.0) * q).round_ties_even() as i64),
        M::Midpoint => {
            let index = (nf - 1.0) * q;
            let gamma = if index.rem_euclid(1.0) == 0.0 { 0.0 } else { 0.5 };
            Position::Continuous { index: 0.5 * (index.floor() + index.ceil()), gamma: Some(gamma) }
        }
    }
}

/// Whether a method returns elements of the input (and so keeps its dtype).
fn is_discrete(method: PercentileMethod) -> bool {
    use PercentileMethod as M;
    matches!(method, M::InvertedCdf | M::ClosestObservation | M::Lower | M::Higher | M::Nearest)
}

fn quantile_sorted(sorted: &[f64], q: f64, method: PercentileMethod) -> f64 {
    let n = sorted.len();
    if sorted.last().is_some_and(|x| x.is_nan()) {
        return f64::NAN;
    }
    let last = n as i64 - 1;
    match position(n, q, method) {
        Position::Discrete(i) => sorted[i.clamp(0, last) as usize],
        Position::Continuous { index, gamma } => {
            // NumPy clamps both neighbours to the ends outside [0, n - 1].
            let (previous, next) = if index >= last as f64 {
                (last, last)
            } else if index < 0.0 {
                (0, 0)
            } else {
                (index.floor() as i64, index.floor() as i64 + 1)
            };
            let gamma = gamma.unwrap_or(index - index.floor());
            lerp(sorted[previous as usize], sorted[next as usize], gamma)
        }
    }
}

/// `median`: NaN in a lane gives NaN; an empty lane gives NaN.
pub(crate) fn median(a: &Tensor, axis: Option<&Axes>, keepdims: bool) -> KResult<Tensor> {
    let axes = resolve_axes(axis, a.ndim())?;
    let out = with_array!(a, x => reduce_lanes(x, &axes, keepdims, |lane| {
        if lane.is_empty() {
            return f64::NAN;
        }
        let mut sorted: Vec<f64> = lane.iter().map(|v| v.to_f64()).collect();
        sorted.sort_by(sort_key);
        quantile_sorted(&sorted, 0.5, PercentileMethod::Linear)
    }));
    Ok(from_f64_array(float_of(a.dtype()), out))
}

/// `percentile(a, q)`: the result has `q`'s shape in front of the reduced shape.
pub(crate) fn percentile(
    a: &Tensor,
    q: &Tensor,
    axis: Option<&Axes>,
    keepdims: bool,
    method: PercentileMethod,
) -> KResult<Tensor> {
    if a.dtype() == DType::Bool {
        return Err(ErrorKind::DType("percentile of a bool array".into()));
    }
    let qs = q.to_f64_array();
    if qs.iter().any(|&v| !(0.0..=100.0).contains(&v)) {
        return Err(ErrorKind::Value("percentiles must be in the range [0, 100]".into()));
    }
    let axes = resolve_axes(axis, a.ndim())?;
    let reduced: usize = axes.iter().map(|&i| a.shape()[i]).product();
    if reduced == 0 {
        return Err(ErrorKind::Value("cannot take a percentile of an empty array".into()));
    }
    let q_list: Vec<f64> = qs.iter().map(|&v| v / 100.0).collect();
    let lanes = with_array!(a, x => reduce_lanes(x, &axes, keepdims, |lane| {
        let mut sorted: Vec<f64> = lane.iter().map(|v| v.to_f64()).collect();
        sorted.sort_by(sort_key);
        q_list.iter().map(|&q| quantile_sorted(&sorted, q, method)).collect::<Vec<f64>>()
    }));
    // Lanes hold one vector per output position; put q's axes in front.
    let lane_shape = lanes.shape().to_vec();
    let mut shape = qs.shape().to_vec();
    shape.extend_from_slice(&lane_shape);
    let positions = lanes.len();
    let mut flat = vec![0.0; q_list.len() * positions];
    for (pos, values) in lanes.iter().enumerate() {
        for (qi, &v) in values.iter().enumerate() {
            flat[qi * positions + pos] = v;
        }
    }
    let out = ArrayD::from_shape_vec(IxDyn(&shape), flat).expect("q count times lanes");
    Ok(if is_discrete(method) {
        Tensor::F64(out).cast(a.dtype())
    } else {
        from_f64_array(float_of(promote(a.dtype(), q.dtype())), out)
    })
}

/// `average` with optional weights (same shape as `a`, or 1-D along a single axis).
pub(crate) fn average(a: &Tensor, weights: Option<&Tensor>, axis: Option<&Axes>, keepdims: bool) -> KResult<Tensor> {
    let Some(weights) = weights else {
        return mean(a, axis, keepdims);
    };
    let out_dtype = if a.dtype().is_float() { float_of(promote(a.dtype(), weights.dtype())) } else { DType::F64 };
    let axes = resolve_axes(axis, a.ndim())?;
    let values = a.to_f64_array();
    let w = weights.to_f64_array();
    let w_full = if w.shape() == values.shape() {
        w
    } else {
        if axis.is_none() {
            return Err(ErrorKind::Shape("axis must be given when the shapes of a and weights differ".into()));
        }
        if w.ndim() != 1 || axes.len() != 1 {
            return Err(ErrorKind::Shape("1-D weights expected when shapes of a and weights differ".into()));
        }
        if w.len() != values.shape()[axes[0]] {
            return Err(ErrorKind::Shape("length of weights differs from that of the specified axis".into()));
        }
        let mut shape = vec![1; values.ndim()];
        shape[axes[0]] = w.len();
        let reshaped = w.into_shape_with_order(IxDyn(&shape)).expect("same element count");
        reshaped.broadcast(values.raw_dim()).expect("broadcasts along the axis").to_owned()
    };
    let products = &values * &w_full;
    let numerator = reduce_lanes(&products, &axes, keepdims, sum_f64);
    let denominator = reduce_lanes(&w_full, &axes, keepdims, sum_f64);
    if denominator.iter().any(|&d| d == 0.0) {
        return Err(ErrorKind::Value("weights sum to zero, can't be normalized".into()));
    }
    Ok(from_f64_array(out_dtype, numerator / denominator))
}

/// `mode` (scipy.stats.mode): the most frequent value of each lane, the smallest among ties.
pub(crate) fn mode(a: &Tensor, axis: Option<i64>, keepdims: bool) -> KResult<Tensor> {
    let (source, axes) = match axis {
        Some(axis) => (a.clone(), vec![norm_axis(axis, a.ndim())?]),
        None => {
            let flat = with_array!(a, x => Elem::wrap(x.iter().copied().collect::<ndarray::Array1<_>>().into_dyn()));
            (flat, vec![0])
        }
    };
    if source.shape()[axes[0]] == 0 {
        return Err(ErrorKind::Value("mode of an empty lane".into()));
    }
    fn most_frequent<T: Elem>(lane: &[T]) -> T {
        let mut sorted = lane.to_vec();
        sorted.sort_by(|x, y| sort_key(&x.to_f64(), &y.to_f64()));
        let (mut best, mut best_count) = (sorted[0], 0);
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i;
            while j < sorted.len() && sorted[j] == sorted[i] {
                j += 1;
            }
            let run = (j - i).max(1);
            if run > best_count {
                best = sorted[i];
                best_count = run;
            }
            i += run;
        }
        best
    }
    Ok(with_array!(&source, x => Elem::wrap(reduce_lanes(x, &axes, keepdims, most_frequent))))
}

/// `bincount`: counts of non-negative integers, optionally weighted.
pub(crate) fn bincount(a: &Tensor, weights: Option<&Tensor>, minlength: usize) -> KResult<Tensor> {
    if a.ndim() != 1 {
        return Err(ErrorKind::Shape(format!("bincount needs a 1-D array, got {} dimensions", a.ndim())));
    }
    if a.dtype().is_float() {
        return Err(ErrorKind::DType(format!(
            "cannot cast array data from {} to i64 according to the rule 'safe'",
            a.dtype()
        )));
    }
    let values: Vec<i64> = with_array!(a, x => x.iter().map(|v| v.to_i64()).collect());
    if values.iter().any(|&v| v < 0) {
        return Err(ErrorKind::Value("bincount input must have no negative elements".into()));
    }
    let len = values.iter().map(|&v| v as usize + 1).max().unwrap_or(0).max(minlength);
    crate::tensor::checked_len(&[len])?;
    Ok(match weights {
        None => {
            let mut counts = vec![0i64; len];
            for v in values {
                counts[v as usize] += 1;
            }
            Tensor::I64(ndarray::Array1::from(counts).into_dyn())
        }
        Some(w) => {
            if w.shape() != a.shape() {
                return Err(ErrorKind::Shape("the weights and list don't have the same length".into()));
            }
            let w = w.to_f64_array();
            let mut sums = vec![0.0f64; len];
            for (v, weight) in values.into_iter().zip(w.iter()) {
                sums[v as usize] += weight;
            }
            Tensor::F64(ndarray::Array1::from(sums).into_dyn())
        }
    })
}
