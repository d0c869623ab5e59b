//! Shape and construction ops of group C: transpose, reshape, concat, split, tile, pad,
//! sort, unique, arange, clip, where and the rest, with NumPy semantics.

use crate::error::{ErrorKind, KResult};
use crate::index::slice_positions;
use crate::reduce::sort_key;
use crate::tensor::{
    Elem, Tensor, TensorValue, broadcast_shapes, broadcast_to, checked_len, norm_axes, norm_axis, promote,
    weak_result_dtype,
};
use crate::with_array;
use ndarray::{Array1, ArrayD, Axis, IxDyn};
use ravproto::ops::{Axes, ClipParams, Order, PadMode, PadParams, Repeats, SplitSpec};
use ravproto::{DType, Scalar};

/// Reshape to a known-good shape (same element count), copying only if needed.
pub(crate) fn reshape_to(a: &Tensor, shape: &[usize]) -> Tensor {
    with_array!(a, x => Elem::wrap(
        x.to_shape(IxDyn(shape)).expect("caller checked the element count").into_owned()
    ))
}

/// Permute axes (a validated permutation), materialised in row-major order.
pub(crate) fn permute(a: &Tensor, order: &[usize]) -> Tensor {
    with_array!(a, x => Elem::wrap(x.view().permuted_axes(IxDyn(order)).as_standard_layout().into_owned()))
}

/// `transpose`.
pub(crate) fn transpose(a: &Tensor, axes: Option<&[i64]>) -> KResult<Tensor> {
    let order = match axes {
        None => (0..a.ndim()).rev().collect(),
        Some(axes) => {
            if axes.len() != a.ndim() {
                return Err(ErrorKind::Value("axes don't match array".into()));
            }
            norm_axes(axes, a.ndim())?
        }
    };
    Ok(permute(a, &order))
}

/// `reshape` with one optional `-1`.
pub(crate) fn reshape(a: &Tensor, shape: &[i64]) -> KResult<Tensor> {
    let unknown = shape.iter().filter(|&&d| d == -1).count();
    if unknown > 1 {
        return Err(ErrorKind::Value("can only specify one unknown dimension".into()));
    }
    if shape.iter().any(|&d| d < -1) {
        return Err(ErrorKind::Value(format!("negative dimensions not allowed: {shape:?}")));
    }
    let known_dims: Vec<usize> = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).collect();
    let known = checked_len(&known_dims)?;
    let resolved: Vec<usize> = shape
        .iter()
        .map(|&d| {
            if d == -1 {
                if known == 0 || !a.len().is_multiple_of(known) {
                    Err(ErrorKind::Value(format!("cannot reshape array of size {} into shape {shape:?}", a.len())))
                } else {
                    Ok(a.len() / known)
                }
            } else {
                Ok(d as usize)
            }
        })
        .collect::<KResult<_>>()?;
    if checked_len(&resolved)? != a.len() {
        return Err(ErrorKind::Value(format!("cannot reshape array of size {} into shape {shape:?}", a.len())));
    }
    Ok(reshape_to(a, &resolved))
}

/// `flatten` and `ravel`.
pub(crate) fn ravel(a: &Tensor, order: Order) -> Tensor {
    let source = if order == Order::F { transpose(a, None).expect("reversal is valid") } else { a.clone() };
    reshape_to(&source, &[a.len()])
}

/// `squeeze`.
pub(crate) fn squeeze(a: &Tensor, axis: Option<&Axes>) -> KResult<Tensor> {
    let drop: Vec<usize> = match axis {
        None => (0..a.ndim()).filter(|&i| a.shape()[i] == 1).collect(),
        Some(axes) => {
            let axes = norm_axes(&axes.to_vec(), a.ndim())?;
            if let Some(&bad) = axes.iter().find(|&&i| a.shape()[i] != 1) {
                return Err(ErrorKind::Value(format!(
                    "cannot select an axis to squeeze out which has size not equal to one (axis {bad})"
                )));
            }
            axes
        }
    };
    let shape: Vec<usize> = (0..a.ndim()).filter(|i| !drop.contains(i)).map(|i| a.shape()[i]).collect();
    Ok(reshape_to(a, &shape))
}

/// `expand_dims`.
pub(crate) fn expand_dims(a: &Tensor, axis: &Axes) -> KResult<Tensor> {
    let out_ndim = a.ndim() + axis.to_vec().len();
    let positions = norm_axes(&axis.to_vec(), out_ndim)?;
    let mut source = a.shape().iter();
    let shape: Vec<usize> =
        (0..out_ndim).map(|i| if positions.contains(&i) { 1 } else { *source.next().expect("counted") }).collect();
    Ok(reshape_to(a, &shape))
}

fn common_dtype(tensors: &[&Tensor]) -> DType {
    tensors.iter().map(|t| t.dtype()).reduce(promote).expect("at least one tensor")
}

/// `concat` along an existing axis.
pub(crate) fn concat(tensors: &[&Tensor], axis: i64) -> KResult<Tensor> {
    let first = tensors[0];
    if first.ndim() == 0 {
        return Err(ErrorKind::Shape("zero-dimensional arrays cannot be concatenated".into()));
    }
    let axis = norm_axis(axis, first.ndim())?;
    for t in tensors {
        let same = t.ndim() == first.ndim() && (0..first.ndim()).all(|i| i == axis || t.shape()[i] == first.shape()[i]);
        if !same {
            return Err(ErrorKind::Shape(format!(
                "all the input array dimensions except for the concatenation axis must match: {:?} vs {:?}",
                first.shape(),
                t.shape()
            )));
        }
    }
    let dtype = common_dtype(tensors);
    let cast: Vec<Tensor> = tensors.iter().map(|t| t.cast(dtype)).collect();
    fn join<T: Elem>(parts: &[Tensor], axis: usize) -> ArrayD<T> {
        let views: Vec<_> = parts.iter().map(|t| T::unwrap(t).expect("cast").view()).collect();
        ndarray::concatenate(Axis(axis), &views).expect("shapes checked")
    }
    Ok(match dtype {
        DType::F32 => Tensor::F32(join(&cast, axis)),
        DType::F64 => Tensor::F64(join(&cast, axis)),
        DType::I64 => Tensor::I64(join(&cast, axis)),
        DType::Bool => Tensor::Bool(join(&cast, axis)),
        DType::U8 => Tensor::U8(join(&cast, axis)),
    })
}

/// `stack` along a new axis.
pub(crate) fn stack(tensors: &[&Tensor], axis: i64) -> KResult<Tensor> {
    let first = tensors[0];
    if tensors.iter().any(|t| t.shape() != first.shape()) {
        return Err(ErrorKind::Shape("all input arrays must have the same shape".into()));
    }
    let axis = norm_axis(axis, first.ndim() + 1)?;
    let expanded: Vec<Tensor> =
        tensors.iter().map(|t| expand_dims(t, &Axes::One(axis as i64))).collect::<KResult<_>>()?;
    let refs: Vec<&Tensor> = expanded.iter().collect();
    concat(&refs, axis as i64)
}

/// `stack` of one tensor, read as the sequence of its rows: `np.stack(a, axis)` is `a` with
/// its first axis moved to `axis` (no copy per row).
pub(crate) fn stack_rows(a: &Tensor, axis: i64) -> KResult<Tensor> {
    if a.ndim() == 0 {
        return Err(ErrorKind::Value("a 0-d array is not a sequence of arrays to stack".into()));
    }
    if a.shape()[0] == 0 {
        return Err(ErrorKind::Value("need at least one array to stack".into()));
    }
    let axis = norm_axis(axis, a.ndim())?;
    let mut order: Vec<usize> = (1..a.ndim()).collect();
    order.insert(axis, 0);
    Ok(permute(a, &order))
}

/// `concat` of one tensor, read as the sequence of its rows: `np.concatenate(a, axis)` joins
/// `a[0], a[1], …` along `axis` of a row.
pub(crate) fn concat_rows(a: &Tensor, axis: i64) -> KResult<Tensor> {
    if a.ndim() == 0 {
        return Err(ErrorKind::Value("a 0-d array is not a sequence of arrays to concatenate".into()));
    }
    if a.shape()[0] == 0 {
        return Err(ErrorKind::Value("need at least one array to concatenate".into()));
    }
    if a.ndim() == 1 {
        return Err(ErrorKind::Shape("zero-dimensional arrays cannot be concatenated".into()));
    }
    let axis = norm_axis(axis, a.ndim() - 1)?;
    // The rows' count lands just before `axis`; merging the two axes in row-major order puts
    // row 0's part first, then row 1's, as concatenation does.
    let moved = stack_rows(a, axis as i64)?;
    let mut shape = moved.shape().to_vec();
    let merged = shape[axis] * shape[axis + 1];
    shape.splice(axis..axis + 2, [merged]);
    Ok(reshape_to(&moved, &shape))
}

/// `split` into a list.
pub(crate) fn split(a: &Tensor, spec: &SplitSpec, axis: i64) -> KResult<TensorValue> {
    if a.ndim() == 0 {
        return Err(ErrorKind::Shape("cannot split a 0-d array".into()));
    }
    let axis = norm_axis(axis, a.ndim())?;
    let len = a.shape()[axis];
    let bounds: Vec<(usize, usize)> = match spec {
        SplitSpec::Sections(0) => return Err(ErrorKind::Value("number of sections must be larger than 0".into())),
        SplitSpec::Sections(n) => {
            if !len.is_multiple_of(*n) {
                return Err(ErrorKind::Value("array split does not result in an equal division".into()));
            }
            let size = len / n;
            (0..*n).map(|i| (i * size, (i + 1) * size)).collect()
        }
        SplitSpec::Indices(points) => {
            let mut cuts = vec![0i64];
            cuts.extend(points.iter().copied());
            cuts.push(len as i64);
            cuts.windows(2)
                .map(|w| {
                    let positions = slice_positions(Some(w[0]), Some(w[1]), None, len)?;
                    Ok(positions.first().map_or((0, 0), |&s| (s, s + positions.len())))
                })
                .collect::<KResult<_>>()?
        }
    };
    let parts = bounds
        .into_iter()
        .map(|(start, stop)| {
            TensorValue::Tensor(with_array!(a, x => Elem::wrap(
                x.slice_axis(Axis(axis), ndarray::Slice::from(start..stop)).to_owned()
            )))
        })
        .collect();
    Ok(TensorValue::List(parts))
}

/// Builds an array by mapping each output coordinate to a source coordinate per axis
/// (`None` means "fill"), the shared core of `tile`, `pad` and `repeat`.
fn remap<T: Elem>(a: &ArrayD<T>, out_shape: &[usize], maps: &[Vec<Option<usize>>], fill: T) -> ArrayD<T> {
    let standard = a.as_standard_layout();
    let source = standard.as_slice().expect("standard layout");
    let strides: Vec<usize> = (0..a.ndim()).map(|i| a.shape()[i + 1..].iter().product()).collect();
    let total: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(total);
    if total > 0 {
        let mut digits = vec![0usize; out_shape.len()];
        'outer: loop {
            let mut offset = Some(0usize);
            for (axis, &d) in digits.iter().enumerate() {
                offset = match (offset, maps[axis][d]) {
                    (Some(o), Some(s)) => Some(o + s * strides[axis]),
                    _ => None,
                };
            }
            out.push(offset.map_or(fill, |o| source[o]));
            let mut k = out_shape.len();
            loop {
                if k == 0 {
                    break 'outer;
                }
                k -= 1;
                digits[k] += 1;
                if digits[k] < out_shape[k] {
                    break;
                }
                digits[k] = 0;
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out).expect("one value per coordinate")
}

fn int_values(t: &Tensor, what: &str) -> KResult<Vec<i64>> {
    if t.dtype().is_float() {
        return Err(ErrorKind::DType(format!("{what} must be integers, got {}", t.dtype())));
    }
    Ok(with_array!(t, x => x.iter().map(|v| v.to_i64()).collect()))
}

/// `tile(a, reps)`.
pub(crate) fn tile(a: &Tensor, reps: &Tensor) -> KResult<Tensor> {
    let reps = int_values(reps, "tile reps")?;
    if reps.iter().any(|&r| r < 0) {
        return Err(ErrorKind::Value("negative dimensions are not allowed".into()));
    }
    let ndim = a.ndim().max(reps.len());
    let mut shape = vec![1usize; ndim - a.ndim()];
    shape.extend_from_slice(a.shape());
    let mut full_reps = vec![1usize; ndim - reps.len()];
    full_reps.extend(reps.iter().map(|&r| r as usize));
    let source = reshape_to(a, &shape);
    let out_shape: Vec<usize> = shape.iter().zip(&full_reps).map(|(d, r)| d.saturating_mul(*r)).collect();
    checked_len(&out_shape)?;
    let maps: Vec<Vec<Option<usize>>> =
        (0..ndim).map(|i| (0..out_shape[i]).map(|o| Some(o % shape[i])).collect()).collect();
    Ok(with_array!(&source, x => Elem::wrap(remap(x, &out_shape, &maps, Default::default()))))
}

/// `pad`.
pub(crate) fn pad(a: &Tensor, params: &PadParams) -> KResult<Tensor> {
    let widths: Vec<[usize; 2]> = match params.sequence.len() {
        1 => vec![params.sequence[0]; a.ndim()],
        n if n == a.ndim() => params.sequence.clone(),
        n => return Err(ErrorKind::Shape(format!("pad widths for {n} axes given for a {}-D array", a.ndim()))),
    };
    let mut maps = Vec::with_capacity(a.ndim());
    let mut out_shape = Vec::with_capacity(a.ndim());
    for (axis, &[before, after]) in widths.iter().enumerate() {
        let n = a.shape()[axis];
        let out_len = before.saturating_add(n).saturating_add(after);
        checked_len(&[out_len])?;
        if n == 0 && before.saturating_add(after) > 0 && params.mode != PadMode::Constant {
            return Err(ErrorKind::Value(format!("can't extend empty axis {axis} using modes other than 'constant'")));
        }
        let map = (0..out_len)
            .map(|o| {
                let i = o as i64 - before as i64;
                let n = n as i64;
                if (0..n).contains(&i) {
                    return Some(i as usize);
                }
                let source = match params.mode {
                    PadMode::Constant => return None,
                    PadMode::Edge => i.clamp(0, n - 1),
                    PadMode::Wrap => i.rem_euclid(n),
                    PadMode::Reflect => {
                        if n == 1 {
                            0
                        } else {
                            let j = i.rem_euclid(2 * n - 2);
                            if j >= n { 2 * n - 2 - j } else { j }
                        }
                    }
                    PadMode::Symmetric => {
                        let j = i.rem_euclid(2 * n);
                        if j >= n { 2 * n - 1 - j } else { j }
                    }
                };
                Some(source as usize)
            })
            .collect::<Vec<_>>();
        maps.push(map);
        out_shape.push(out_len);
    }
    checked_len(&out_shape)?;
    let fill = params.constant_values;
    Ok(with_array!(a, x => Elem::wrap(remap(x, &out_shape, &maps, scalar_as(fill)))))
}

fn scalar_as<T: Elem>(value: Scalar) -> T {
    match value {
        Scalar::Int(i) => T::from_i64(i),
        Scalar::Float(f) => T::from_f64(f),
        Scalar::Bool(b) => T::from_i64(i64::from(b)),
    }
}

/// `repeat`.
pub(crate) fn repeat(a: &Tensor, repeats: &Repeats, axis: Option<i64>) -> KResult<Tensor> {
    let (source, axis) = match axis {
        None => (ravel(a, Order::C), 0),
        Some(axis) => (a.clone(), norm_axis(axis, a.ndim())?),
    };
    let len = source.shape()[axis];
    let counts: Vec<usize> = match repeats {
        Repeats::One(n) => vec![*n; len],
        Repeats::Many(list) if list.len() == len => list.clone(),
        Repeats::Many(list) if list.len() == 1 => vec![list[0]; len],
        Repeats::Many(list) => {
            return Err(ErrorKind::Shape(format!(
                "operands could not be broadcast together with shape ({len},) ({},)",
                list.len()
            )));
        }
    };
    let total = counts.iter().try_fold(0usize, |acc, &c| acc.checked_add(c)).unwrap_or(usize::MAX);
    let mut out_shape = source.shape().to_vec();
    out_shape[axis] = total;
    checked_len(&out_shape)?;
    let axis_map: Vec<Option<usize>> =
        counts.iter().enumerate().flat_map(|(i, &c)| std::iter::repeat_n(Some(i), c)).collect();
    let maps: Vec<Vec<Option<usize>>> = (0..source.ndim())
        .map(|i| if i == axis { axis_map.clone() } else { (0..out_shape[i]).map(Some).collect() })
        .collect();
    Ok(with_array!(&source, x => Elem::wrap(remap(x, &out_shape, &maps, Default::default()))))
}

/// `reverse` (NumPy `flip`).
pub(crate) fn reverse(a: &Tensor, axis: Option<&Axes>) -> KResult<Tensor> {
    let axes = crate::reduce::resolve_axes(axis, a.ndim())?;
    Ok(with_array!(a, x => {
        let mut view = x.view();
        for &axis in &axes {
            view.invert_axis(Axis(axis));
        }
        Elem::wrap(view.as_standard_layout().into_owned())
    }))
}

fn cmp_elems<T: Elem>(x: &T, y: &T) -> std::cmp::Ordering {
    if T::DTYPE.is_float() {
        sort_key(&x.to_f64(), &y.to_f64())
    } else {
        x.partial_cmp(y).expect("integers and bools are totally ordered")
    }
}

/// `sort` along an axis (NaN last); `None` sorts the flattened array.
pub(crate) fn sort(a: &Tensor, axis: Option<i64>) -> KResult<Tensor> {
    let (source, axis) = match axis {
        None => (ravel(a, Order::C), 0),
        Some(axis) => {
            if a.ndim() == 0 {
                return Err(ErrorKind::Axis { axis, ndim: 0 });
            }
            (a.clone(), norm_axis(axis, a.ndim())?)
        }
    };
    Ok(with_array!(&source, x => {
        let mut out = x.clone();
        for mut lane in out.lanes_mut(Axis(axis)) {
            let mut values: Vec<_> = lane.iter().copied().collect();
            values.sort_by(cmp_elems);
            for (slot, v) in lane.iter_mut().zip(values) {
                *slot = v;
            }
        }
        Elem::wrap(out)
    }))
}

/// `unique`: sorted unique values (or sub-arrays along `axis`), optionally with the inverse
/// indices and counts, as a list `[values, inverse?, counts?]`.
pub(crate) fn unique(a: &Tensor, axis: Option<i64>, return_inverse: bool, return_counts: bool) -> KResult<TensorValue> {
    let (source, axis, inverse_shape) = match axis {
        None => (ravel(a, Order::C), 0, a.shape().to_vec()),
        Some(axis) => {
            let axis = norm_axis(axis, a.ndim())?;
            (a.clone(), axis, vec![a.shape()[axis]])
        }
    };
    let (values, inverse, counts) = with_array!(&source, x => {
        // Each "item" is the sub-array at one position along the axis, compared lexicographically.
        let items: Vec<Vec<_>> = x.axis_iter(Axis(axis)).map(|v| v.iter().copied().collect()).collect();
        let mut order: Vec<usize> = (0..items.len()).collect();
        let compare = |p: &usize, q: &usize| {
            items[*p].iter().zip(&items[*q]).map(|(u, v)| cmp_elems(u, v)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
        };
        order.sort_by(compare);
        let mut groups: Vec<usize> = Vec::new();
        let mut inverse = vec![0i64; items.len()];
        let mut counts: Vec<i64> = Vec::new();
        for &i in &order {
            let same = groups.last().is_some_and(|&g| compare(&g, &i).is_eq());
            if !same {
                groups.push(i);
                counts.push(0);
            }
            *counts.last_mut().expect("pushed") += 1;
            inverse[i] = (groups.len() - 1) as i64;
        }
        let views: Vec<_> = groups.iter().map(|&g| x.index_axis(Axis(axis), g).insert_axis(Axis(axis))).collect();
        let values = if views.is_empty() {
            let mut shape = x.shape().to_vec();
            shape[axis] = 0;
            ArrayD::from_shape_vec(IxDyn(&shape), vec![]).expect("empty")
        } else {
            ndarray::concatenate(Axis(axis), &views).expect("same sub-shapes")
        };
        (Elem::wrap(values), inverse, counts)
    });
    if !return_inverse && !return_counts {
        return Ok(TensorValue::Tensor(values));
    }
    let mut parts = vec![TensorValue::Tensor(values)];
    if return_inverse {
        let inverse = ArrayD::from_shape_vec(IxDyn(&inverse_shape), inverse).expect("one per element");
        parts.push(TensorValue::Tensor(Tensor::I64(inverse)));
    }
    if return_counts {
        parts.push(TensorValue::Tensor(Tensor::I64(Array1::from(counts).into_dyn())));
    }
    Ok(TensorValue::List(parts))
}

/// `find_indices(a, b)`: for each value of `b`, the flat positions in `a` that equal it.
pub(crate) fn find_indices(a: &Tensor, b: &Tensor) -> KResult<TensorValue> {
    let dtype = promote(a.dtype(), b.dtype());
    let hay = a.cast(dtype).to_f64_array();
    let needles = b.cast(dtype).to_f64_array();
    let lists = needles
        .iter()
        .map(|&needle| {
            let found: Vec<i64> =
                hay.iter().enumerate().filter(|(_, v)| **v == needle).map(|(i, _)| i as i64).collect();
            TensorValue::Tensor(Tensor::I64(Array1::from(found).into_dyn()))
        })
        .collect();
    Ok(TensorValue::List(lists))
}

/// `shape` (or one dimension of it).
pub(crate) fn shape_of(a: &Tensor, index: Option<i64>) -> KResult<Tensor> {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    Ok(match index {
        None => Tensor::I64(Array1::from(dims).into_dyn()),
        Some(i) => {
            let axis = norm_axis(i, a.ndim()).map_err(|_| ErrorKind::Index(format!("tuple index {i} out of range")))?;
            Tensor::scalar_i64(dims[axis])
        }
    })
}

/// `arange(start, stop, step)`.
pub(crate) fn arange(start: &Tensor, stop: &Tensor, step: Scalar) -> KResult<Tensor> {
    if start.len() != 1 || stop.len() != 1 {
        return Err(ErrorKind::Shape("arange needs scalar start and stop".into()));
    }
    let dtype = weak_result_dtype(promote(start.dtype(), stop.dtype()), step);
    let (begin, end, delta) = (
        start.to_f64_array().iter().copied().next().unwrap_or(0.0),
        stop.to_f64_array().iter().copied().next().unwrap_or(0.0),
        step.as_f64(),
    );
    if delta == 0.0 {
        return Err(ErrorKind::Value("maximum allowed size exceeded (step is zero)".into()));
    }
    let count = ((end - begin) / delta).ceil().max(0.0);
    if !count.is_finite() || count > crate::tensor::MAX_ELEMENTS as f64 {
        return Err(ErrorKind::Value(format!("arange of {count} elements is too large")));
    }
    let count = count as usize;
    Ok(match dtype {
        DType::I64 | DType::U8 | DType::Bool => {
            let (b, d) = (begin as i64, step_i64(step));
            Tensor::I64(Array1::from_iter((0..count as i64).map(|i| b + i * d)).into_dyn())
                .cast(if dtype == DType::Bool { DType::I64 } else { dtype })
        }
        _ => Tensor::F64(Array1::from_iter((0..count).map(|i| begin + i as f64 * delta)).into_dyn()).cast(dtype),
    })
}

fn step_i64(step: Scalar) -> i64 {
    match step {
        Scalar::Int(i) => i,
        Scalar::Bool(b) => i64::from(b),
        Scalar::Float(f) => f as i64,
    }
}

/// `zeros(shape)`.
pub(crate) fn zeros(shape: &Tensor, dtype: DType) -> KResult<Tensor> {
    let dims = int_values(shape, "shape entries")?;
    if dims.iter().any(|&d| d < 0) {
        return Err(ErrorKind::Value("negative dimensions are not allowed".into()));
    }
    let dims: Vec<usize> = dims.into_iter().map(|d| d as usize).collect();
    checked_len(&dims)?;
    Ok(Tensor::F64(ArrayD::zeros(IxDyn(&dims))).cast(dtype))
}

/// `ravint`: `int(a)` of a one-element tensor.
pub(crate) fn ravint(a: &Tensor) -> KResult<Tensor> {
    if a.len() != 1 {
        return Err(ErrorKind::Value("only one-element arrays can be converted to an int".into()));
    }
    let value = with_array!(a, x => x.iter().next().map(|v| v.to_f64()).unwrap_or_default());
    if !value.is_finite() {
        return Err(ErrorKind::Value(format!("cannot convert {value} to an integer")));
    }
    Ok(Tensor::scalar_i64(value.trunc() as i64))
}

/// `one_hot_encoding(a, depth)`: `np.eye(depth)[a]`.
pub(crate) fn one_hot(a: &Tensor, depth: &Tensor) -> KResult<Tensor> {
    let depth = int_values(depth, "depth")?;
    let [depth] = depth.as_slice() else {
        return Err(ErrorKind::Shape("depth must be a single integer".into()));
    };
    if *depth < 0 {
        return Err(ErrorKind::Value("negative depth".into()));
    }
    checked_len(&[*depth as usize, *depth as usize])?;
    let eye = Tensor::F64(ndarray::Array2::eye(*depth as usize).into_dyn());
    let item = crate::index::array_item(a)?;
    crate::index::index(&eye, &ravproto::IndexExpr(vec![item]))
}

/// `clip` with weak scalar bounds (NEP 50).
pub(crate) fn clip(a: &Tensor, params: &ClipParams) -> KResult<Tensor> {
    if params.lower_limit.is_none() && params.upper_limit.is_none() {
        return Err(ErrorKind::Value("one of lower_limit or upper_limit must be given".into()));
    }
    let mut dtype = a.dtype();
    for bound in [params.lower_limit, params.upper_limit].into_iter().flatten() {
        dtype = promote(dtype, weak_result_dtype(a.dtype(), bound));
    }
    let a = a.cast(dtype);
    fn apply<T: Elem>(x: &ArrayD<T>, low: Option<T>, high: Option<T>) -> ArrayD<T> {
        crate::tensor::map(x, |v| {
            if v.is_nan() {
                return v;
            }
            let v = match low {
                Some(l) if v < l => l,
                _ => v,
            };
            match high {
                Some(h) if v > h => h,
                _ => v,
            }
        })
    }
    Ok(with_array!(&a, x => Elem::wrap(apply(x, params.lower_limit.map(scalar_as), params.upper_limit.map(scalar_as)))))
}

/// `where(condition, x, y)`; inputs arrive as `(x, y, condition)`.
pub(crate) fn where_(x: &Tensor, y: &Tensor, condition: &Tensor) -> KResult<Tensor> {
    let cond = crate::elementwise::truth(condition);
    let dtype = promote(x.dtype(), y.dtype());
    let shape = broadcast_shapes(&broadcast_shapes(x.shape(), y.shape())?, cond.shape())?;
    let (xc, yc) = (x.cast(dtype), y.cast(dtype));
    let c = broadcast_to(&cond, &shape)?;
    Ok(with_array!(&xc, xs => {
        let ys = Elem::unwrap(&yc).expect("cast to one dtype");
        let xv = broadcast_to(xs, &shape)?;
        let yv = broadcast_to(ys, &shape)?;
        Elem::wrap(ndarray::Zip::from(&c).and(&xv).and(&yv).map_collect(|&c, &p, &q| if c { p } else { q }))
    }))
}

/// `join_to_list(a, b)`: NumPy `append` (both flattened).
pub(crate) fn join_to_list(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    concat(&[&ravel(a, Order::C), &ravel(b, Order::C)], 0)
}
