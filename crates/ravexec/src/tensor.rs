//! The in-memory tensor: one `ndarray::ArrayD` per dtype, with NumPy 2 dtype promotion.
//!
//! Promotion follows NumPy 2 (NEP 50) for arrays: `bool < u8 < i64 < f32 < f64`, except that
//! `i64` with `f32` gives `f64`. Scalars built by the requester are 0-d arrays and so are
//! "strong"; scalar params such as `clip` bounds are "weak" (see [`weak_result_dtype`]).
//! NumPy results in dtypes we do not carry map to the nearest one we do: `float16` → `f32`,
//! `int8`/`int16`/`int32`/`uint64` → `i64`.

use crate::error::{ErrorKind, KResult};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use ravproto::{DType, Scalar, TensorData, Value};
use std::borrow::Cow;

/// Element count above which element-wise kernels split work across rayon threads.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// An element type we compute with.
pub trait Elem: Copy + Send + Sync + PartialEq + PartialOrd + Default + std::fmt::Debug + 'static {
    /// The wire dtype.
    const DTYPE: DType;
    /// Wraps an array of this element type.
    fn wrap(array: ArrayD<Self>) -> Tensor;
    /// Borrows the array if the tensor has this element type.
    fn unwrap(tensor: &Tensor) -> Option<&ArrayD<Self>>;
    /// Numeric value as `f64`.
    fn to_f64(self) -> f64;
    /// Numeric value as `i64` (floats truncate toward zero, like NumPy's `astype`).
    fn to_i64(self) -> i64;
    /// Converts from `f64` like NumPy's `astype`.
    fn from_f64(x: f64) -> Self;
    /// Converts from `i64` like NumPy's `astype`.
    fn from_i64(x: i64) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool {
        false
    }
    /// Truthiness (non-zero).
    fn truthy(self) -> bool;
}

macro_rules! elem_int {
    ($t:ty, $variant:ident, $dtype:expr) => {
        impl Elem for $t {
            const DTYPE: DType = $dtype;
            fn wrap(array: ArrayD<Self>) -> Tensor {
                Tensor::$variant(array)
            }
            fn unwrap(tensor: &Tensor) -> Option<&ArrayD<Self>> {
                match tensor {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_f64(x: f64) -> Self {
                x as i64 as $t
            }
            fn from_i64(x: i64) -> Self {
                x as $t
            }
            fn truthy(self) -> bool {
                self != 0
            }
        }
    };
}

macro_rules! elem_float {
    ($t:ty, $variant:ident, $dtype:expr) => {
        impl Elem for $t {
            const DTYPE: DType = $dtype;
            fn wrap(array: ArrayD<Self>) -> Tensor {
                Tensor::$variant(array)
            }
            fn unwrap(tensor: &Tensor) -> Option<&ArrayD<Self>> {
                match tensor {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn from_i64(x: i64) -> Self {
                x as $t
            }
            fn is_nan(self) -> bool {
                self.is_nan()
            }
            fn truthy(self) -> bool {
                self != 0.0
            }
        }
    };
}

elem_int!(i64, I64, DType::I64);
elem_int!(u8, U8, DType::U8);
elem_float!(f32, F32, DType::F32);
elem_float!(f64, F64, DType::F64);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn wrap(array: ArrayD<Self>) -> Tensor {
        Tensor::Bool(array)
    }
    fn unwrap(tensor: &Tensor) -> Option<&ArrayD<Self>> {
        match tensor {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
    fn from_f64(x: f64) -> Self {
        x != 0.0
    }
    fn from_i64(x: i64) -> Self {
        x != 0
    }
    fn truthy(self) -> bool {
        self
    }
}

/// A tensor of one of the five wire dtypes.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// 32-bit floats.
    F32(ArrayD<f32>),
    /// 64-bit floats.
    F64(ArrayD<f64>),
    /// 64-bit signed integers.
    I64(ArrayD<i64>),
    /// Booleans.
    Bool(ArrayD<bool>),
    /// Unsigned bytes.
    U8(ArrayD<u8>),
}

/// Runs `$body` with `$a` bound to the inner array, whatever its element type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_array {
    ($tensor:expr, $a:ident => $body:expr) => {
        match $tensor {
            $crate::Tensor::F32($a) => $body,
            $crate::Tensor::F64($a) => $body,
            $crate::Tensor::I64($a) => $body,
            $crate::Tensor::Bool($a) => $body,
            $crate::Tensor::U8($a) => $body,
        }
    };
}

impl Tensor {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F64(_) => DType::F64,
            Tensor::I64(_) => DType::I64,
            Tensor::Bool(_) => DType::Bool,
            Tensor::U8(_) => DType::U8,
        }
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A 0-d `f64` tensor.
    pub fn scalar_f64(x: f64) -> Tensor {
        Tensor::F64(ArrayD::from_elem(IxDyn(&[]), x))
    }

    /// A 0-d `i64` tensor.
    pub fn scalar_i64(x: i64) -> Tensor {
        Tensor::I64(ArrayD::from_elem(IxDyn(&[]), x))
    }

    /// A 0-d tensor from a typed scalar (bool, i64 or f64).
    pub fn from_scalar(value: Scalar) -> Tensor {
        match value {
            Scalar::Bool(b) => Tensor::Bool(ArrayD::from_elem(IxDyn(&[]), b)),
            Scalar::Int(i) => Tensor::scalar_i64(i),
            Scalar::Float(x) => Tensor::scalar_f64(x),
        }
    }

    /// Converts to another dtype like NumPy's `astype` (floats truncate into integers).
    pub fn cast(&self, dtype: DType) -> Tensor {
        self.cast_cow(dtype).into_owned()
    }

    /// Like [`Tensor::cast`], but borrows when the dtype already matches.
    pub fn cast_cow(&self, dtype: DType) -> Cow<'_, Tensor> {
        if self.dtype() == dtype {
            return Cow::Borrowed(self);
        }
        fn convert<S: Elem, T: Elem>(a: &ArrayD<S>) -> ArrayD<T> {
            if T::DTYPE.is_float() || S::DTYPE.is_float() {
                a.mapv(|x| T::from_f64(x.to_f64()))
            } else {
                a.mapv(|x| T::from_i64(x.to_i64()))
            }
        }
        let converted = with_array!(self, a => match dtype {
            DType::F32 => Tensor::F32(convert(a)),
            DType::F64 => Tensor::F64(convert(a)),
            DType::I64 => Tensor::I64(convert(a)),
            DType::Bool => Tensor::Bool(a.mapv(Elem::truthy)),
            DType::U8 => Tensor::U8(convert(a)),
        });
        Cow::Owned(converted)
    }

    /// The values as an `f64` array (a copy).
    pub fn to_f64_array(&self) -> ArrayD<f64> {
        with_array!(self, a => a.mapv(Elem::to_f64))
    }

    /// Borrows the array if its element type is `T`.
    pub fn as_array<T: Elem>(&self) -> Option<&ArrayD<T>> {
        T::unwrap(self)
    }

    /// Converts to the wire encoding (one copy of the elements, in row-major order).
    pub fn to_data(&self) -> TensorData {
        with_array!(self, a => Tensor::from(a.as_standard_layout().into_owned())).into_data()
    }

    /// Converts to the wire encoding, handing the elements over without a copy when the
    /// array is in standard (row-major) layout, as kernel results are.
    pub fn into_data(self) -> TensorData {
        /// Builds the wire form of `array` with `build`, handing its buffer over.
        fn row_major<T: Clone>(
            array: ArrayD<T>,
            build: fn(Vec<usize>, Vec<T>) -> Result<TensorData, ravproto::TensorError>,
        ) -> Result<TensorData, ravproto::TensorError> {
            let (shape, count) = (array.shape().to_vec(), array.len());
            if !array.is_standard_layout() {
                return build(shape, array.iter().cloned().collect());
            }
            // The buffer may hold more than the array (a slice of a bigger one): cut in place.
            let (mut values, offset) = array.into_raw_vec_and_offset();
            let start = offset.unwrap_or(0);
            values.truncate(start + count);
            values.drain(..start);
            build(shape, values)
        }
        let built = match self {
            Tensor::F32(a) => row_major(a, TensorData::from_f32_vec),
            Tensor::F64(a) => row_major(a, TensorData::from_f64_vec),
            Tensor::I64(a) => row_major(a, TensorData::from_i64_vec),
            Tensor::U8(a) => row_major(a, TensorData::from_u8_vec),
            Tensor::Bool(a) => TensorData::from_bool(a.shape().to_vec(), &standard_slice(&a)),
        };
        built.expect("an ndarray's element count matches its shape")
    }

    /// Converts from the wire encoding (a copy of the elements).
    pub fn from_data(data: &TensorData) -> Tensor {
        Tensor::from_data_owned(data.clone())
    }

    /// Converts from the wire encoding, taking its elements over without a copy (bool
    /// tensors are converted from their bytes).
    pub fn from_data_owned(data: TensorData) -> Tensor {
        let shape = IxDyn(data.shape());
        fn build<T>(shape: IxDyn, values: Result<Vec<T>, TensorData>) -> ArrayD<T> {
            let values = values.unwrap_or_else(|_| unreachable!("dtype checked by the match"));
            ArrayD::from_shape_vec(shape, values).expect("TensorData validated its length")
        }
        match data.dtype() {
            DType::F32 => Tensor::F32(build(shape, data.into_f32_vec())),
            DType::F64 => Tensor::F64(build(shape, data.into_f64_vec())),
            DType::I64 => Tensor::I64(build(shape, data.into_i64_vec())),
            DType::U8 => Tensor::U8(build(shape, data.into_u8_vec())),
            DType::Bool => Tensor::Bool(build(shape, data.to_bool().ok_or(data))),
        }
    }

    /// The wire bytes of the elements (little-endian, row-major): borrowed when the array is in
    /// standard layout, so a big array is sent from its own memory.
    pub fn le_bytes(&self) -> Cow<'_, [u8]> {
        fn bytes<T: bytemuck::Pod>(array: &ArrayD<T>) -> Cow<'_, [u8]> {
            match standard_slice(array) {
                Cow::Borrowed(values) => Cow::Borrowed(bytemuck::cast_slice(values)),
                Cow::Owned(values) => Cow::Owned(bytemuck::cast_slice(&values).to_vec()),
            }
        }
        match self {
            Tensor::F32(a) => bytes(a),
            Tensor::F64(a) => bytes(a),
            Tensor::I64(a) => bytes(a),
            Tensor::U8(a) => bytes(a),
            Tensor::Bool(a) => Cow::Owned(a.iter().map(|&b| u8::from(b)).collect()),
        }
    }
}

/// Row-major values of an array, borrowed when its memory is already in that order.
fn standard_slice<T: Clone>(a: &ArrayD<T>) -> std::borrow::Cow<'_, [T]> {
    match a.as_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(a.iter().cloned().collect()),
    }
}

/// Row-major values of an array, whatever its memory layout.
pub(crate) fn standard_vec<T: Clone>(a: &ArrayD<T>) -> Vec<T> {
    match a.as_slice() {
        Some(slice) => slice.to_vec(),
        None => a.iter().cloned().collect(),
    }
}

macro_rules! from_array {
    ($t:ty, $variant:ident) => {
        impl From<ArrayD<$t>> for Tensor {
            fn from(array: ArrayD<$t>) -> Tensor {
                Tensor::$variant(array)
            }
        }
    };
}

from_array!(f32, F32);
from_array!(f64, F64);
from_array!(i64, I64);
from_array!(bool, Bool);
from_array!(u8, U8);

/// A computed value: a tensor or a list (the kernel-side twin of [`ravproto::Value`]).
#[derive(Clone, Debug, PartialEq)]
pub enum TensorValue {
    /// One tensor.
    Tensor(Tensor),
    /// A list of values.
    List(Vec<TensorValue>),
}

impl TensorValue {
    /// Converts to the wire form.
    pub fn to_wire(&self) -> Value {
        match self {
            TensorValue::Tensor(t) => Value::Tensor(t.to_data()),
            TensorValue::List(items) => Value::List(items.iter().map(TensorValue::to_wire).collect()),
        }
    }

    /// Converts to the wire form without copying standard-layout arrays.
    pub fn into_wire(self) -> Value {
        match self {
            TensorValue::Tensor(t) => Value::Tensor(t.into_data()),
            TensorValue::List(items) => Value::List(items.into_iter().map(TensorValue::into_wire).collect()),
        }
    }

    /// Converts from the wire form.
    pub fn from_wire(value: &Value) -> TensorValue {
        TensorValue::from_wire_owned(value.clone())
    }

    /// Converts from the wire form, taking the elements over without a copy.
    pub fn from_wire_owned(value: Value) -> TensorValue {
        match value {
            Value::Tensor(t) => TensorValue::Tensor(Tensor::from_data_owned(t)),
            Value::List(items) => TensorValue::List(items.into_iter().map(TensorValue::from_wire_owned).collect()),
        }
    }

    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            TensorValue::Tensor(t) => Some(t),
            TensorValue::List(_) => None,
        }
    }
}

impl From<Tensor> for TensorValue {
    fn from(tensor: Tensor) -> TensorValue {
        TensorValue::Tensor(tensor)
    }
}

fn rank(dtype: DType) -> u8 {
    match dtype {
        DType::Bool => 0,
        DType::U8 => 1,
        DType::I64 => 2,
        DType::F32 => 3,
        DType::F64 => 4,
    }
}

/// NumPy 2 promotion of two array dtypes.
pub fn promote(a: DType, b: DType) -> DType {
    if matches!((a, b), (DType::I64, DType::F32) | (DType::F32, DType::I64)) {
        return DType::F64;
    }
    if rank(a) >= rank(b) { a } else { b }
}

/// Result dtype of an array combined with a weak (Python) scalar, per NEP 50.
pub fn weak_result_dtype(array: DType, scalar: Scalar) -> DType {
    match (scalar, array) {
        (Scalar::Float(_), DType::F32 | DType::F64) => array,
        (Scalar::Float(_), _) => DType::F64,
        (Scalar::Int(_), DType::Bool) => DType::I64,
        (Scalar::Int(_), _) => array,
        (Scalar::Bool(_), _) => array,
    }
}

/// The float dtype NumPy's float ufuncs (`exp`, `sqrt`, ...) produce for an input dtype.
pub(crate) fn float_result(dtype: DType) -> DType {
    match dtype {
        DType::F64 | DType::I64 => DType::F64,
        // NumPy gives float16 for bool and u8; we have no f16, so f32.
        DType::F32 | DType::Bool | DType::U8 => DType::F32,
    }
}

/// Most elements one result may have (2^31: 16 GiB of f64). Above this a kernel refuses with
/// an error instead of letting an allocation abort the provider; NumPy raises `MemoryError`.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Element count of `shape`, refusing overflow and results above [`MAX_ELEMENTS`].
pub(crate) fn checked_len(shape: &[usize]) -> KResult<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS).ok_or_else(|| {
        ErrorKind::Value(format!("a result of shape {shape:?} is too large (limit {MAX_ELEMENTS} elements)"))
    })
}

/// NumPy broadcasting of two shapes, refusing results above [`MAX_ELEMENTS`].
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> KResult<Vec<usize>> {
    let out = broadcast_dims(a, b)?;
    checked_len(&out)?;
    Ok(out)
}

/// NumPy broadcasting of two shapes, whatever the size of the result (for the memory bound,
/// which must see the size a request asks for).
pub(crate) fn broadcast_dims(a: &[usize], b: &[usize]) -> KResult<Vec<usize>> {
    let ndim = a.len().max(b.len());
    let mut out = vec![0; ndim];
    for i in 0..ndim {
        let da = if i + a.len() >= ndim { a[i + a.len() - ndim] } else { 1 };
        let db = if i + b.len() >= ndim { b[i + b.len() - ndim] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(ErrorKind::Broadcast { a: a.to_vec(), b: b.to_vec() }),
        };
    }
    Ok(out)
}

/// A view of `a` broadcast to `shape`.
pub(crate) fn broadcast_to<'a, T>(a: &'a ArrayD<T>, shape: &[usize]) -> KResult<ArrayViewD<'a, T>> {
    a.broadcast(IxDyn(shape)).ok_or_else(|| ErrorKind::Broadcast { a: a.shape().to_vec(), b: shape.to_vec() })
}

/// Element-wise map of two broadcast arrays, in parallel for big ones.
pub(crate) fn zip_map<A: Elem, B: Elem, R: Send>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> R + Sync + Send,
) -> KResult<ArrayD<R>> {
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let av = broadcast_to(a, &shape)?;
    let bv = broadcast_to(b, &shape)?;
    let zip = Zip::from(&av).and(&bv);
    let count: usize = shape.iter().product();
    Ok(if count >= PAR_THRESHOLD { zip.par_map_collect(|&x, &y| f(x, y)) } else { zip.map_collect(|&x, &y| f(x, y)) })
}

/// Element-wise map of one array, in parallel for big ones.
pub(crate) fn map<A: Elem, R: Send>(a: &ArrayD<A>, f: impl Fn(A) -> R + Sync + Send) -> ArrayD<R> {
    if a.len() >= PAR_THRESHOLD { Zip::from(a).par_map_collect(|&x| f(x)) } else { a.map(|&x| f(x)) }
}

/// Normalises a possibly negative axis.
pub(crate) fn norm_axis(axis: i64, ndim: usize) -> KResult<usize> {
    let n = ndim as i64;
    let fixed = if axis < 0 { axis + n } else { axis };
    if (0..n).contains(&fixed) { Ok(fixed as usize) } else { Err(ErrorKind::Axis { axis, ndim }) }
}

/// Normalises a list of axes, refusing duplicates.
pub(crate) fn norm_axes(axes: &[i64], ndim: usize) -> KResult<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &axis in axes {
        let fixed = norm_axis(axis, ndim)?;
        if out.contains(&fixed) {
            return Err(ErrorKind::Value(format!("repeated axis {axis}")));
        }
        out.push(fixed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Conversions to and from the wire form: big arrays change hands without copies, and
    //! every layout converts to the same row-major values.

    use super::*;
    use ndarray::{Array2, Axis, Slice};

    #[test]
    fn standard_arrays_cross_to_the_wire_and_back_without_a_copy() {
        let array = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64).into_dyn();
        let tensor = Tensor::F64(array.clone());
        let address = array.as_ptr();
        assert_eq!(Tensor::F64(array.clone()).le_bytes().as_ref(), tensor.to_data().bytes());
        let data = Tensor::F64(array).into_data();
        assert_eq!(data.bytes().as_ptr(), address.cast::<u8>());
        let back = Tensor::from_data_owned(data);
        assert_eq!(back.as_array::<f64>().unwrap().as_ptr(), address);
        assert_eq!(back, tensor);
        assert_eq!(back.le_bytes().as_ptr(), address.cast::<u8>(), "borrowed, not copied");
    }

    #[test]
    fn every_layout_converts_to_row_major_values() {
        let array = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as i64).into_dyn();
        // Owned arrays that do not start at their buffer or are not row-major: transposed,
        // a window of rows (standard layout, offset), columns (strided).
        let transposed = array.clone().reversed_axes();
        let mut rows = array.clone();
        rows.slice_axis_inplace(Axis(0), Slice::from(1..3));
        let mut columns = array.clone();
        columns.slice_axis_inplace(Axis(1), Slice::from(1..3));
        for owned in [transposed, rows, columns] {
            let expected: Vec<i64> = owned.iter().copied().collect();
            let tensor = Tensor::I64(owned.clone());
            let data = tensor.clone().into_data();
            assert_eq!(data.to_i64().unwrap(), expected);
            assert_eq!(data.shape(), owned.shape());
            assert_eq!(tensor.le_bytes().as_ref(), data.bytes());
            assert_eq!(Tensor::from_data(&data), tensor);
        }
        let bools = Tensor::Bool(ndarray::arr1(&[true, false, true]).into_dyn());
        assert_eq!(Tensor::from_data_owned(bools.clone().into_data()), bools);
        assert_eq!(bools.le_bytes().as_ref(), &[1, 0, 1]);
    }
}
