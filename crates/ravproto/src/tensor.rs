//! Tensor values on the wire: dtype, shape and little-endian data.
//!
//! Two encodings exist. Small tensors travel inside JSON messages as
//! `{"dtype":"f32","shape":[3],"data":[1.0,2.0,3.0]}` (non-finite floats are the strings
//! `"nan"`, `"inf"` and `"-inf"`, because JSON has no such numbers). Big tensors use the compact
//! binary frame of [`TensorData::encode_binary`]: a header and the raw little-endian bytes, with
//! no per-element overhead. Serde formats that are not human readable (postcard, MessagePack)
//! get the raw bytes too. Nothing here can execute code, unlike the original's pickles.

use serde::{Deserialize, Serialize};
use std::fmt;

mod serde_forms;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    /// 32-bit IEEE float (NumPy's name, `float32`, is read too).
    #[serde(alias = "float32")]
    F32,
    /// 64-bit IEEE float.
    #[serde(alias = "float64")]
    F64,
    /// 64-bit signed integer.
    #[serde(alias = "int64")]
    I64,
    /// Boolean, one byte per element (0 or 1).
    Bool,
    /// Unsigned byte.
    #[serde(alias = "uint8")]
    U8,
}

impl DType {
    /// Every dtype, in wire-code order.
    pub const ALL: [DType; 5] = [DType::F32, DType::F64, DType::I64, DType::Bool, DType::U8];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool | DType::U8 => 1,
        }
    }

    /// The lowercase name used in JSON (`"f32"`, `"bool"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::U8 => "u8",
        }
    }

    /// Whether the dtype is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::I64 => 3,
            DType::Bool => 4,
            DType::U8 => 5,
        }
    }

    fn from_code(code: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a tensor could not be built or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// The byte length does not match `product(shape) * dtype.size()`.
    #[error("tensor data has {got} bytes but shape {shape:?} of {dtype} needs {expected}")]
    LengthMismatch {
        /// Declared dtype.
        dtype: DType,
        /// Declared shape.
        shape: Vec<usize>,
        /// Bytes needed.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// A bool tensor holds a byte other than 0 or 1.
    #[error("bool tensor holds byte {0} (only 0 and 1 are valid)")]
    BadBool(u8),
    /// The binary frame is malformed.
    #[error("bad binary tensor frame: {0}")]
    BadFrame(&'static str),
    /// A JSON element does not fit the dtype.
    #[error("element {index} ({value}) is not a valid {dtype}")]
    BadElement {
        /// Position in the flattened data.
        index: usize,
        /// The offending JSON value.
        value: String,
        /// Declared dtype.
        dtype: DType,
    },
    /// The shape's element count overflows.
    #[error("shape {0:?} is too large")]
    ShapeOverflow(Vec<usize>),
}

// The wire is little-endian and tensors keep their elements as native values, so that their
// bytes are the wire bytes (a big tensor is sent and received without a conversion pass).
#[cfg(not(target_endian = "little"))]
compile_error!("Raven's tensor encoding assumes a little-endian target");

/// The elements of a tensor, typed by its dtype: a buffer of `f64` is aligned for `f64`, so an
/// array can take it over without a copy. `u8` and bool share the byte buffer.
#[derive(Clone)]
enum Elements {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bytes(Vec<u8>),
}

impl Elements {
    /// `count` zeros of `dtype` (a fresh allocation, zeroed by the allocator).
    fn zeroed(dtype: DType, count: usize) -> Elements {
        match dtype {
            DType::F32 => Elements::F32(vec![0.0; count]),
            DType::F64 => Elements::F64(vec![0.0; count]),
            DType::I64 => Elements::I64(vec![0; count]),
            DType::Bool | DType::U8 => Elements::Bytes(vec![0; count]),
        }
    }

    /// The elements of `dtype` held in `bytes` (which need not be aligned): one copy.
    fn from_slice(dtype: DType, bytes: &[u8]) -> Elements {
        use bytemuck::allocation::pod_collect_to_vec;
        match dtype {
            DType::F32 => Elements::F32(pod_collect_to_vec(bytes)),
            DType::F64 => Elements::F64(pod_collect_to_vec(bytes)),
            DType::I64 => Elements::I64(pod_collect_to_vec(bytes)),
            DType::Bool | DType::U8 => Elements::Bytes(bytes.to_vec()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Elements::F32(v) => bytemuck::cast_slice(v),
            Elements::F64(v) => bytemuck::cast_slice(v),
            Elements::I64(v) => bytemuck::cast_slice(v),
            Elements::Bytes(v) => v,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Elements::F32(v) => bytemuck::cast_slice_mut(v),
            Elements::F64(v) => bytemuck::cast_slice_mut(v),
            Elements::I64(v) => bytemuck::cast_slice_mut(v),
            Elements::Bytes(v) => v,
        }
    }
}

/// A dense, row-major (C order) tensor; its bytes are the little-endian elements.
#[derive(Clone)]
pub struct TensorData {
    dtype: DType,
    shape: Vec<usize>,
    data: Elements,
}

/// Equal when dtype, shape and bytes are: a NaN equals the same NaN, as a wire value should.
impl PartialEq for TensorData {
    fn eq(&self, other: &TensorData) -> bool {
        self.dtype == other.dtype && self.shape == other.shape && self.bytes() == other.bytes()
    }
}

impl fmt::Debug for TensorData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorData")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.bytes().len())
            .finish()
    }
}

/// Magic bytes opening a binary tensor frame.
pub const BINARY_MAGIC: &[u8; 4] = b"RAVT";
const BINARY_VERSION: u8 = 1;
/// The header of a binary tensor frame before its dimensions: magic, version, dtype, ndim.
const FIXED_HEADER: usize = 4 + 1 + 1 + 4;
/// The longest header of a binary tensor frame (64 dimensions).
pub const MAX_BINARY_HEADER: usize = FIXED_HEADER + 8 * 64;

/// The bytes of an encoded tensor value before its dimensions: `T`, magic, version, dtype,
/// ndim.
pub const VALUE_FIXED_HEADER: usize = 1 + FIXED_HEADER;

/// A tensor value being received from a stream: allocated from its header, its data read
/// straight into the elements' own buffer (no second buffer, no copy to align it).
#[derive(Debug)]
pub struct TensorReceiver {
    tensor: TensorData,
}

impl TensorReceiver {
    /// The tensor announced by `header` (a value's whole header, see
    /// [`Value::tensor_header_len`]), which must be `total_len` bytes long with its data: the
    /// length the sender announced, checked before anything is allocated.
    pub fn new(header: &[u8], total_len: u64) -> Result<TensorReceiver, TensorError> {
        let (b'T', frame) = header.split_first().ok_or(TensorError::BadFrame("truncated"))? else {
            return Err(TensorError::BadFrame("not a tensor value"));
        };
        let (dtype, shape, rest) = TensorData::decode_header(frame)?;
        if !rest.is_empty() {
            return Err(TensorError::BadFrame("header longer than its dimensions"));
        }
        let announced = Value::tensor_encoded_len(dtype, &shape)?;
        if announced != total_len {
            return Err(TensorError::BadFrame("header announces another length than the file's"));
        }
        let count = element_count(&shape)?;
        Ok(TensorReceiver { tensor: TensorData { dtype, data: Elements::zeroed(dtype, count), shape } })
    }

    /// Where the data bytes go: fill it completely, then [`TensorReceiver::finish`].
    pub fn buffer(&mut self) -> &mut [u8] {
        self.tensor.data.bytes_mut()
    }

    /// The received value, once its bytes are checked (bool bytes must be 0 or 1).
    pub fn finish(self) -> Result<Value, TensorError> {
        let TensorData { dtype, shape, data } = self.tensor;
        Ok(Value::Tensor(TensorData::checked(dtype, shape, data)?))
    }
}

fn element_count(shape: &[usize]) -> Result<usize, TensorError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| TensorError::ShapeOverflow(shape.to_vec()))
}

/// Bytes of the data of a `dtype` tensor of `shape`.
fn data_len(dtype: DType, shape: &[usize]) -> Result<usize, TensorError> {
    element_count(shape)?.checked_mul(dtype.size()).ok_or_else(|| TensorError::ShapeOverflow(shape.to_vec()))
}

macro_rules! typed_access {
    ($from:ident, $to:ident, $from_vec:ident, $into_vec:ident, $t:ty, $dtype:expr, $variant:ident) => {
        /// Builds a tensor from row-major values (copied).
        pub fn $from(shape: Vec<usize>, values: &[$t]) -> Result<TensorData, TensorError> {
            TensorData::$from_vec(shape, values.to_vec())
        }

        /// Builds a tensor that takes over `values` (row-major), without a copy.
        pub fn $from_vec(shape: Vec<usize>, values: Vec<$t>) -> Result<TensorData, TensorError> {
            TensorData::checked($dtype, shape, Elements::$variant(values))
        }

        /// Returns a copy of the row-major values, or `None` if the dtype differs.
        pub fn $to(&self) -> Option<Vec<$t>> {
            match &self.data {
                Elements::$variant(values) if self.dtype == $dtype => Some(values.clone()),
                _ => None,
            }
        }

        /// Gives up the row-major values without a copy; the tensor back if the dtype differs.
        pub fn $into_vec(self) -> Result<Vec<$t>, TensorData> {
            match self.data {
                Elements::$variant(values) if self.dtype == $dtype => Ok(values),
                data => Err(TensorData { data, ..self }),
            }
        }
    };
}

impl TensorData {
    /// A tensor of `dtype` and `shape` around `data`, checking its length and bool bytes.
    fn checked(dtype: DType, shape: Vec<usize>, data: Elements) -> Result<TensorData, TensorError> {
        let expected = data_len(dtype, &shape)?;
        let bytes = data.bytes();
        if bytes.len() != expected {
            return Err(TensorError::LengthMismatch { dtype, shape, expected, got: bytes.len() });
        }
        if dtype == DType::Bool
            && let Some(&bad) = bytes.iter().find(|&&b| b > 1)
        {
            return Err(TensorError::BadBool(bad));
        }
        Ok(TensorData { dtype, shape, data })
    }

    /// Builds a tensor from raw little-endian bytes, checking length and bool bytes (the
    /// bytes of a `u8` or bool tensor are kept; other dtypes copy them into their elements).
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<TensorData, TensorError> {
        match dtype {
            DType::Bool | DType::U8 => TensorData::checked(dtype, shape, Elements::Bytes(data)),
            _ => TensorData::from_slice(dtype, shape, &data),
        }
    }

    /// Builds a tensor from raw little-endian bytes (copied), checking length and bool bytes.
    pub fn from_slice(dtype: DType, shape: Vec<usize>, data: &[u8]) -> Result<TensorData, TensorError> {
        let expected = data_len(dtype, &shape)?;
        if data.len() != expected {
            return Err(TensorError::LengthMismatch { dtype, shape, expected, got: data.len() });
        }
        TensorData::checked(dtype, shape, Elements::from_slice(dtype, data))
    }

    typed_access!(from_f32, to_f32, from_f32_vec, into_f32_vec, f32, DType::F32, F32);
    typed_access!(from_f64, to_f64, from_f64_vec, into_f64_vec, f64, DType::F64, F64);
    typed_access!(from_i64, to_i64, from_i64_vec, into_i64_vec, i64, DType::I64, I64);
    typed_access!(from_u8, to_u8, from_u8_vec, into_u8_vec, u8, DType::U8, Bytes);

    /// Builds a bool tensor.
    pub fn from_bool(shape: Vec<usize>, values: &[bool]) -> Result<TensorData, TensorError> {
        TensorData::from_bytes(DType::Bool, shape, values.iter().map(|&b| u8::from(b)).collect())
    }

    /// Returns the bool values, or `None` if the dtype differs.
    pub fn to_bool(&self) -> Option<Vec<bool>> {
        (self.dtype == DType::Bool).then(|| self.bytes().iter().map(|&b| b != 0).collect())
    }

    /// A 0-d tensor holding one scalar.
    pub fn scalar(value: Scalar) -> TensorData {
        let built = match value {
            Scalar::Bool(b) => TensorData::from_bool(vec![], &[b]),
            Scalar::Int(i) => TensorData::from_i64(vec![], &[i]),
            Scalar::Float(x) => TensorData::from_f64(vec![], &[x]),
        };
        built.expect("a 0-d tensor of one element always has the right length")
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes().len() / self.dtype.size()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Encodes the compact binary frame: `RAVT`, version `u8`, dtype code `u8`, ndim `u32`,
    /// each dimension as `u64`, then the raw data (all little-endian).
    pub fn encode_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_HEADER + 8 * self.shape.len() + self.bytes().len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the binary frame to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        TensorData::encode_header(self.dtype, &self.shape, out);
        out.extend_from_slice(self.bytes());
    }

    /// Appends the header of the binary frame of a `dtype` tensor of `shape` to `out` (the
    /// frame is this header, then the data bytes).
    fn encode_header(dtype: DType, shape: &[usize], out: &mut Vec<u8>) {
        out.extend_from_slice(BINARY_MAGIC);
        out.push(BINARY_VERSION);
        out.push(dtype.code());
        out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for &dim in shape {
            out.extend_from_slice(&(dim as u64).to_le_bytes());
        }
    }

    /// Splits a binary frame into dtype, shape and the data bytes that follow the header (which
    /// may be fewer than the shape needs: this reads the header only).
    pub fn decode_header(frame: &[u8]) -> Result<(DType, Vec<usize>, &[u8]), TensorError> {
        let rest = frame.strip_prefix(BINARY_MAGIC.as_slice()).ok_or(TensorError::BadFrame("missing RAVT magic"))?;
        let (&version, rest) = rest.split_first().ok_or(TensorError::BadFrame("truncated"))?;
        if version != BINARY_VERSION {
            return Err(TensorError::BadFrame("unsupported frame version"));
        }
        let (&code, rest) = rest.split_first().ok_or(TensorError::BadFrame("truncated"))?;
        let dtype = DType::from_code(code).ok_or(TensorError::BadFrame("unknown dtype code"))?;
        let (ndim_bytes, mut rest) = rest.split_at_checked(4).ok_or(TensorError::BadFrame("truncated"))?;
        let ndim = u32::from_le_bytes(ndim_bytes.try_into().expect("split_at_checked(4)")) as usize;
        if ndim > 64 {
            return Err(TensorError::BadFrame("more than 64 dimensions"));
        }
        let mut shape = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            let (dim, tail) = rest.split_at_checked(8).ok_or(TensorError::BadFrame("truncated shape"))?;
            let dim = u64::from_le_bytes(dim.try_into().expect("split_at_checked(8)"));
            shape.push(usize::try_from(dim).map_err(|_| TensorError::BadFrame("dimension overflow"))?);
            rest = tail;
        }
        Ok((dtype, shape, rest))
    }

    /// Decodes a frame written by [`TensorData::encode_binary`].
    pub fn decode_binary(frame: &[u8]) -> Result<TensorData, TensorError> {
        let (dtype, shape, data) = TensorData::decode_header(frame)?;
        TensorData::from_slice(dtype, shape, data)
    }

    /// The total length of the binary frame that starts with `prefix`, read from its header
    /// alone (so a file can be checked without reading its data). `prefix` must hold the
    /// whole header: at most [`MAX_BINARY_HEADER`] bytes.
    pub fn binary_len(prefix: &[u8]) -> Result<u64, TensorError> {
        let (dtype, shape, data) = TensorData::decode_header(prefix)?;
        let header = (prefix.len() - data.len()) as u64;
        (data_len(dtype, &shape)? as u64).checked_add(header).ok_or(TensorError::ShapeOverflow(shape))
    }
}

/// A typed scalar parameter. JSON: `true`, `3` or `2.5`.
///
/// Scalars in params are "weak" in the NumPy 2 sense (NEP 50): an `Int` bound does not widen a
/// `u8` tensor and a `Float` bound does not widen an `f32` tensor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Scalar {
    /// The value as `f64`.
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => f64::from(u8::from(b)),
            Scalar::Int(i) => i as f64,
            Scalar::Float(x) => x,
        }
    }
}

impl From<f64> for Scalar {
    fn from(value: f64) -> Scalar {
        Scalar::Float(value)
    }
}

impl From<i64> for Scalar {
    fn from(value: i64) -> Scalar {
        Scalar::Int(value)
    }
}

impl From<i32> for Scalar {
    fn from(value: i32) -> Scalar {
        Scalar::Int(i64::from(value))
    }
}

impl From<f32> for Scalar {
    fn from(value: f32) -> Scalar {
        Scalar::Float(f64::from(value))
    }
}

impl From<bool> for Scalar {
    fn from(value: bool) -> Scalar {
        Scalar::Bool(value)
    }
}

/// The result of an op: a tensor, or a list of values (`split`, `unique` with counts,
/// `find_indices`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// One tensor.
    Tensor(TensorData),
    /// An ordered list of values.
    List(Vec<Value>),
}

impl Value {
    /// Encodes a value as bytes: `T` + a tensor frame ([`TensorData::encode_binary`]), or `L`
    /// + the item count (`u32` little-endian) + each item as `u64` length + its encoding.
    pub fn encode_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.encoded_len()).unwrap_or(0));
        self.encode_into(&mut out);
        out
    }

    /// The length of [`Value::encode_binary`]'s output, without encoding.
    pub fn encoded_len(&self) -> u64 {
        match self {
            Value::Tensor(t) => (VALUE_FIXED_HEADER + 8 * t.shape().len() + t.bytes().len()) as u64,
            Value::List(items) => 1 + 4 + items.iter().map(|item| 8 + item.encoded_len()).sum::<u64>(),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Tensor(t) => {
                out.push(b'T');
                t.encode_into(out);
            }
            Value::List(items) => {
                out.push(b'L');
                out.extend_from_slice(&(items.len() as u32).to_le_bytes());
                for item in items {
                    out.extend_from_slice(&item.encoded_len().to_le_bytes());
                    item.encode_into(out);
                }
            }
        }
    }

    /// The binary encoding of a tensor value up to its data: send this, then the tensor's
    /// little-endian bytes (a big array goes out from its own memory, with no encoded copy).
    pub fn tensor_header(dtype: DType, shape: &[usize]) -> Vec<u8> {
        let mut out = Vec::with_capacity(VALUE_FIXED_HEADER + 8 * shape.len());
        out.push(b'T');
        TensorData::encode_header(dtype, shape, &mut out);
        out
    }

    /// The length of the binary encoding of a `dtype` tensor value of `shape`.
    pub fn tensor_encoded_len(dtype: DType, shape: &[usize]) -> Result<u64, TensorError> {
        let data = data_len(dtype, shape)? as u64;
        data.checked_add((VALUE_FIXED_HEADER + 8 * shape.len()) as u64)
            .ok_or_else(|| TensorError::ShapeOverflow(shape.to_vec()))
    }

    /// From the first [`VALUE_FIXED_HEADER`] bytes of an encoded value: the length of the
    /// whole header when it is a tensor (what to read before [`TensorReceiver::new`]), `None`
    /// for a list.
    pub fn tensor_header_len(fixed: &[u8]) -> Option<Result<usize, TensorError>> {
        let (b'T', frame) = fixed.split_first()? else {
            return None;
        };
        let checked = (|| {
            let rest =
                frame.strip_prefix(BINARY_MAGIC.as_slice()).ok_or(TensorError::BadFrame("missing RAVT magic"))?;
            let ndim = rest.get(2..6).ok_or(TensorError::BadFrame("truncated"))?;
            let ndim = u32::from_le_bytes(ndim.try_into().expect("a 4-byte slice")) as usize;
            if ndim > 64 {
                return Err(TensorError::BadFrame("more than 64 dimensions"));
            }
            Ok(VALUE_FIXED_HEADER + 8 * ndim)
        })();
        Some(checked)
    }

    /// Decodes bytes written by [`Value::encode_binary`].
    pub fn decode_binary(bytes: &[u8]) -> Result<Value, TensorError> {
        Value::decode_depth(bytes, 0)
    }

    /// Decodes bytes written by [`Value::encode_binary`], reusing their buffer for a tensor's
    /// data (received bulk values: no second buffer of their size).
    pub fn decode_binary_owned(mut bytes: Vec<u8>) -> Result<Value, TensorError> {
        let Some((b'T', frame)) = bytes.split_first() else {
            return Value::decode_binary(&bytes);
        };
        let (dtype, shape, data) = TensorData::decode_header(frame)?;
        if dtype.size() > 1 {
            // Typed elements need an aligned buffer: one copy either way.
            return Ok(Value::Tensor(TensorData::from_slice(dtype, shape, data)?));
        }
        let header = bytes.len() - data.len();
        bytes.drain(..header);
        Ok(Value::Tensor(TensorData::from_bytes(dtype, shape, bytes)?))
    }

    /// For an encoded single tensor, its total encoded length read from the header in `prefix`
    /// (the first `1 + MAX_BINARY_HEADER` bytes, or all of them if fewer); `None` for a list,
    /// which has to be decoded whole to be checked.
    pub fn tensor_binary_len(prefix: &[u8]) -> Option<Result<u64, TensorError>> {
        match prefix.split_first() {
            Some((b'T', rest)) => Some(TensorData::binary_len(rest).map(|len| len + 1)),
            _ => None,
        }
    }

    fn decode_depth(bytes: &[u8], depth: usize) -> Result<Value, TensorError> {
        if depth > 32 {
            return Err(TensorError::BadFrame("value lists nested too deeply"));
        }
        match bytes.split_first() {
            Some((b'T', rest)) => Ok(Value::Tensor(TensorData::decode_binary(rest)?)),
            Some((b'L', rest)) => {
                let (count, mut rest) = rest.split_at_checked(4).ok_or(TensorError::BadFrame("truncated list"))?;
                let count = u32::from_le_bytes(count.try_into().expect("split_at_checked(4)")) as usize;
                let mut items = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let (len, tail) = rest.split_at_checked(8).ok_or(TensorError::BadFrame("truncated list"))?;
                    let len = u64::from_le_bytes(len.try_into().expect("split_at_checked(8)"));
                    let len = usize::try_from(len).map_err(|_| TensorError::BadFrame("item too long"))?;
                    let (item, tail) =
                        tail.split_at_checked(len).ok_or(TensorError::BadFrame("truncated list item"))?;
                    items.push(Value::decode_depth(item, depth + 1)?);
                    rest = tail;
                }
                if !rest.is_empty() {
                    return Err(TensorError::BadFrame("trailing bytes after list"));
                }
                Ok(Value::List(items))
            }
            _ => Err(TensorError::BadFrame("a value starts with T or L")),
        }
    }
}
