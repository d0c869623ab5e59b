//! NumPy indexing from a typed [`IndexExpr`]: basic (ints, slices, `...`, new axes) and
//! advanced (integer arrays, boolean masks) with NumPy's placement rule.
//!
//! The subscript is resolved to a result shape plus, for every result element, the row-major
//! offset of its source element. `index` gathers through the offsets, `set_value` scatters
//! through them (last write wins, as in NumPy), and `cnn_add_at` accumulates through them
//! (unbuffered, like `np.add.at`). This port replaces the original's `eval` of index strings.

use crate::error::{ErrorKind, KResult};
use crate::tensor::{Elem, Tensor, broadcast_shapes, broadcast_to};
use crate::with_array;
use ndarray::{ArrayD, IxDyn};
use ravproto::{IndexExpr, IndexItem};

/// A resolved subscript: the result shape and one source offset per result element.
pub(crate) struct Selection {
    pub(crate) shape: Vec<usize>,
    pub(crate) offsets: Vec<usize>,
}

enum Part {
    /// A result axis taken from source axis `axis` at these positions.
    Basic { axis: usize, positions: Vec<usize> },
    /// A result axis of length 1 with no source axis.
    NewAxis,
    /// An integer on a source axis (no result axis) when no advanced index is present.
    Fixed { axis: usize, position: usize },
    /// Advanced index on a source axis: an array of positions (broadcast later).
    Advanced { axis: usize, shape: Vec<usize>, positions: Vec<usize> },
}

fn fix_position(value: i64, len: usize, axis: usize) -> KResult<usize> {
    let fixed = if value < 0 { value + len as i64 } else { value };
    if fixed < 0 || fixed >= len as i64 {
        return Err(ErrorKind::Index(format!("index {value} is out of bounds for axis {axis} with size {len}")));
    }
    Ok(fixed as usize)
}

/// Positions selected by `start:stop:step` on an axis of length `len` (Python's rules).
pub(crate) fn slice_positions(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    len: usize,
) -> KResult<Vec<usize>> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(ErrorKind::Index("slice step cannot be zero".into()));
    }
    let n = len as i64;
    let clamp = |v: i64, low: i64, high: i64| v.clamp(low, high);
    let resolve = |v: i64| if v < 0 { v + n } else { v };
    let mut positions = Vec::new();
    if step > 0 {
        let begin = start.map_or(0, |s| clamp(resolve(s), 0, n));
        let end = stop.map_or(n, |s| clamp(resolve(s), 0, n));
        let mut i = begin;
        while i < end {
            positions.push(i as usize);
            i = i.saturating_add(step);
        }
    } else {
        let begin = start.map_or(n - 1, |s| clamp(resolve(s), -1, n - 1));
        let end = stop.map_or(-1, |s| clamp(resolve(s), -1, n - 1));
        let mut i = begin;
        while i > end {
            positions.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    Ok(positions)
}

/// Axes of the source an index item reads (a mask as many as it has dimensions; `...` and
/// `None` none of their own).
pub(crate) fn axes_consumed(item: &IndexItem) -> usize {
    match item {
        IndexItem::Int(_) | IndexItem::Slice { .. } | IndexItem::Array { .. } => 1,
        IndexItem::Mask { shape, .. } => shape.len(),
        IndexItem::Ellipsis | IndexItem::NewAxis => 0,
    }
}

/// Resolves `expr` against `shape`.
pub(crate) fn select(shape: &[usize], expr: &IndexExpr) -> KResult<Selection> {
    let items = &expr.0;
    let ellipses = items.iter().filter(|i| matches!(i, IndexItem::Ellipsis)).count();
    if ellipses > 1 {
        return Err(ErrorKind::Index("an index can only have a single ellipsis ('...')".into()));
    }
    let consumed: usize = items.iter().map(axes_consumed).sum();
    if consumed > shape.len() {
        return Err(ErrorKind::Index(format!(
            "too many indices for array: array is {}-dimensional, but {consumed} were indexed",
            shape.len()
        )));
    }
    let has_advanced = items.iter().any(|i| matches!(i, IndexItem::Array { .. } | IndexItem::Mask { .. }));
    let mut parts = Vec::new();
    let mut axis = 0;
    let full = |axis: usize| Part::Basic { axis, positions: (0..shape[axis]).collect() };
    for item in items {
        match item {
            IndexItem::Ellipsis => {
                for _ in 0..shape.len() - consumed {
                    parts.push(full(axis));
                    axis += 1;
                }
            }
            IndexItem::NewAxis => parts.push(Part::NewAxis),
            IndexItem::Int(v) => {
                let position = fix_position(*v, shape[axis], axis)?;
                parts.push(if has_advanced {
                    Part::Advanced { axis, shape: vec![], positions: vec![position] }
                } else {
                    Part::Fixed { axis, position }
                });
                axis += 1;
            }
            IndexItem::Slice { start, stop, step } => {
                parts.push(Part::Basic { axis, positions: slice_positions(*start, *stop, *step, shape[axis])? });
                axis += 1;
            }
            IndexItem::Array { shape: index_shape, values } => {
                if index_shape.iter().product::<usize>() != values.len() {
                    return Err(ErrorKind::Index("index array shape does not match its values".into()));
                }
                let positions = values.iter().map(|&v| fix_position(v, shape[axis], axis)).collect::<KResult<_>>()?;
                parts.push(Part::Advanced { axis, shape: index_shape.clone(), positions });
                axis += 1;
            }
            IndexItem::Mask { shape: mask_shape, values } => {
                if mask_shape.iter().product::<usize>() != values.len() {
                    return Err(ErrorKind::Index("mask shape does not match its values".into()));
                }
                let covered = &shape[axis..axis + mask_shape.len()];
                if covered != mask_shape.as_slice() {
                    return Err(ErrorKind::Index(format!(
                        "boolean index of shape {mask_shape:?} did not match the indexed array's dimensions {covered:?}"
                    )));
                }
                // A k-D mask is k integer arrays of the true positions (np.nonzero).
                let trues: Vec<usize> = values.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect();
                for dim in 0..mask_shape.len() {
                    let inner: usize = mask_shape[dim + 1..].iter().product();
                    let positions = trues.iter().map(|&flat| (flat / inner) % mask_shape[dim]).collect();
                    parts.push(Part::Advanced { axis: axis + dim, shape: vec![trues.len()], positions });
                }
                axis += mask_shape.len();
            }
        }
    }
    while axis < shape.len() {
        parts.push(full(axis));
        axis += 1;
    }

    let strides: Vec<usize> = (0..shape.len()).map(|i| shape[i + 1..].iter().product()).collect();
    // Broadcast the advanced indices together and precompute their combined offset.
    let advanced: Vec<usize> =
        parts.iter().enumerate().filter(|(_, p)| matches!(p, Part::Advanced { .. })).map(|(i, _)| i).collect();
    let mut block_shape = Vec::new();
    let mut block_offsets = vec![0usize];
    if !advanced.is_empty() {
        for &i in &advanced {
            if let Part::Advanced { shape: s, .. } = &parts[i] {
                block_shape = broadcast_shapes(&block_shape, s).map_err(|_| {
                    ErrorKind::Index("shape mismatch: indexing arrays could not be broadcast together".into())
                })?;
            }
        }
        let count: usize = block_shape.iter().product();
        block_offsets = vec![0; count];
        for &i in &advanced {
            if let Part::Advanced { axis, shape: s, positions } = &parts[i] {
                let array = ArrayD::from_shape_vec(IxDyn(s), positions.clone()).expect("checked length");
                let view = broadcast_to(&array, &block_shape)?;
                for (slot, &p) in block_offsets.iter_mut().zip(view.iter()) {
                    *slot += p * strides[*axis];
                }
            }
        }
    }
    let adjacent = advanced.windows(2).all(|w| w[1] == w[0] + 1);
    let fixed: usize =
        parts.iter().map(|p| if let Part::Fixed { axis, position } = p { position * strides[*axis] } else { 0 }).sum();

    // Result axes: (stride, positions) for basic/new axes, and one slot for the advanced block.
    enum Out<'a> {
        Axis { stride: usize, positions: Option<&'a [usize]> },
        Block,
    }
    let mut layout: Vec<Out<'_>> = Vec::new();
    fn basic<'p>(p: &'p Part, strides: &[usize]) -> Option<Out<'p>> {
        match p {
            Part::Basic { axis, positions } => Some(Out::Axis { stride: strides[*axis], positions: Some(positions) }),
            Part::NewAxis => Some(Out::Axis { stride: 0, positions: None }),
            _ => None,
        }
    }
    if advanced.is_empty() {
        layout.extend(parts.iter().filter_map(|p| basic(p, &strides)));
    } else if adjacent {
        for (i, p) in parts.iter().enumerate() {
            if i == advanced[0] {
                layout.push(Out::Block);
            }
            if let Some(o) = basic(p, &strides) {
                layout.push(o);
            }
        }
    } else {
        layout.push(Out::Block);
        layout.extend(parts.iter().filter_map(|p| basic(p, &strides)));
    }
    let mut out_shape = Vec::new();
    for o in &layout {
        match o {
            Out::Axis { positions, .. } => out_shape.push(positions.map_or(1, <[usize]>::len)),
            Out::Block => out_shape.extend_from_slice(&block_shape),
        }
    }
    let total: usize = out_shape.iter().product();
    let mut offsets = Vec::with_capacity(total);
    if total > 0 {
        // Odometer over the layout; the block is one "digit" ranging over its flat offsets.
        let radix: Vec<usize> = layout
            .iter()
            .map(|o| match o {
                Out::Axis { positions, .. } => positions.map_or(1, <[usize]>::len),
                Out::Block => block_offsets.len(),
            })
            .collect();
        let mut digits = vec![0usize; layout.len()];
        loop {
            let mut offset = fixed;
            for (o, &d) in layout.iter().zip(&digits) {
                offset += match o {
                    Out::Axis { stride, positions } => positions.map_or(0, |p| p[d] * stride),
                    Out::Block => block_offsets[d],
                };
            }
            offsets.push(offset);
            let mut k = layout.len();
            loop {
                if k == 0 {
                    return Ok(Selection { shape: out_shape, offsets });
                }
                k -= 1;
                digits[k] += 1;
                if digits[k] < radix[k] {
                    break;
                }
                digits[k] = 0;
            }
        }
    }
    Ok(Selection { shape: out_shape, offsets })
}

fn gather_typed<T: Elem>(a: &ArrayD<T>, selection: &Selection) -> ArrayD<T> {
    let standard = a.as_standard_layout();
    let source = standard.as_slice().expect("standard layout");
    let values = selection.offsets.iter().map(|&o| source[o]).collect();
    ArrayD::from_shape_vec(IxDyn(&selection.shape), values).expect("one offset per element")
}

/// `a[expr]`.
pub(crate) fn index(a: &Tensor, expr: &IndexExpr) -> KResult<Tensor> {
    let selection = select(a.shape(), expr)?;
    Ok(with_array!(a, x => Elem::wrap(gather_typed(x, &selection))))
}

fn scatter_typed<T: Elem>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    selection: &Selection,
    combine: impl Fn(T, T) -> T,
) -> KResult<ArrayD<T>> {
    let values = broadcast_to(b, &selection.shape).map_err(|_| {
        ErrorKind::Shape(format!(
            "could not broadcast input array from shape {:?} into shape {:?}",
            b.shape(),
            selection.shape
        ))
    })?;
    let mut target: Vec<T> = crate::tensor::standard_vec(a);
    for (&offset, &value) in selection.offsets.iter().zip(values.iter()) {
        target[offset] = combine(target[offset], value);
    }
    Ok(ArrayD::from_shape_vec(a.raw_dim(), target).expect("same shape"))
}

/// `a[expr] = b`, returning the updated copy; `b` is cast to `a`'s dtype, as NumPy does.
pub(crate) fn set_value(a: &Tensor, b: &Tensor, expr: &IndexExpr) -> KResult<Tensor> {
    let selection = select(a.shape(), expr)?;
    let b = b.cast_cow(a.dtype());
    Ok(with_array!(a, x => {
        let y = Elem::unwrap(&b).expect("cast to a's dtype");
        Elem::wrap(scatter_typed(x, y, &selection, |_, new| new)?)
    }))
}

/// `np.add.at(a, expr, b)`: unbuffered, so repeated positions accumulate.
pub(crate) fn add_at(a: &Tensor, b: &Tensor, expr: &IndexExpr) -> KResult<Tensor> {
    let dtype = crate::tensor::promote(a.dtype(), b.dtype());
    let a = a.cast_cow(dtype);
    let b = b.cast_cow(dtype);
    let selection = select(a.shape(), expr)?;
    Ok(match (&*a, &*b) {
        (Tensor::F32(x), Tensor::F32(y)) => Tensor::F32(scatter_typed(x, y, &selection, |p, q| p + q)?),
        (Tensor::F64(x), Tensor::F64(y)) => Tensor::F64(scatter_typed(x, y, &selection, |p, q| p + q)?),
        (Tensor::I64(x), Tensor::I64(y)) => Tensor::I64(scatter_typed(x, y, &selection, i64::wrapping_add)?),
        (Tensor::U8(x), Tensor::U8(y)) => Tensor::U8(scatter_typed(x, y, &selection, u8::wrapping_add)?),
        (Tensor::Bool(x), Tensor::Bool(y)) => Tensor::Bool(scatter_typed(x, y, &selection, |p, q| p || q)?),
        _ => unreachable!("cast to one dtype"),
    })
}

/// An integer tensor as an index-array item.
pub(crate) fn array_item(t: &Tensor) -> KResult<IndexItem> {
    match t {
        Tensor::I64(_) | Tensor::U8(_) => {
            let values = t.cast(ravproto::DType::I64);
            let values = values.as_array::<i64>().expect("cast to i64");
            Ok(IndexItem::Array { shape: values.shape().to_vec(), values: values.iter().copied().collect() })
        }
        Tensor::Bool(mask) => {
            Ok(IndexItem::Mask { shape: mask.shape().to_vec(), values: mask.iter().copied().collect() })
        }
        _ => Err(ErrorKind::Index(format!(
            "arrays used as indices must be of integer or boolean type, got {}",
            t.dtype()
        ))),
    }
}
