//! Tensor values on the wire: dtype, shape and little-endian data.
//!
//! Two encodings exist. Small tensors travel inside JSON messages as
//! `{"dtype":"f32","shape":[3],"data":[1.0,2.0,3.0]}` (non-finite floats are the strings
//! `"nan"`, `"inf"` and `"-inf"`, because JSON has no such numbers). Big tensors use the compact
//! binary frame of [`TensorData::encode_binary`]: a header and the raw little-endian bytes, with
//! no per-element overhead. Serde formats that are not human readable (postcard, MessagePack)
//! get the raw bytes too. Nothing here can execute code, unlike the original's pickles.

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 64-bit signed integer.
    I64,
    /// Boolean, one byte per element (0 or 1).
    Bool,
    /// Unsigned byte.
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

/// A dense, row-major (C order) tensor with little-endian element bytes.
#[derive(Clone, PartialEq)]
pub struct TensorData {
    dtype: DType,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl fmt::Debug for TensorData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorData")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Magic bytes opening a binary tensor frame.
pub const BINARY_MAGIC: &[u8; 4] = b"RAVT";
const BINARY_VERSION: u8 = 1;
/// The longest header of a binary tensor frame (64 dimensions).
pub const MAX_BINARY_HEADER: usize = 4 + 1 + 1 + 4 + 8 * 64;

fn element_count(shape: &[usize]) -> Result<usize, TensorError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| TensorError::ShapeOverflow(shape.to_vec()))
}

macro_rules! typed_access {
    ($from:ident, $to:ident, $t:ty, $dtype:expr) => {
        /// Builds a tensor from row-major values.
        pub fn $from(shape: Vec<usize>, values: &[$t]) -> Result<TensorData, TensorError> {
            // The wire is little-endian: on such targets the values are the bytes (one memcpy;
            // this is on the path of every big tensor).
            #[cfg(target_endian = "little")]
            let data = bytemuck::cast_slice::<$t, u8>(values).to_vec();
            #[cfg(not(target_endian = "little"))]
            let data = values.iter().flat_map(|value| value.to_le_bytes()).collect();
            TensorData::from_bytes($dtype, shape, data)
        }

        /// Returns the row-major values, or `None` if the dtype differs.
        pub fn $to(&self) -> Option<Vec<$t>> {
            if self.dtype != $dtype {
                return None;
            }
            // The byte buffer may not be aligned for the element type: copied, not cast.
            #[cfg(target_endian = "little")]
            let values = bytemuck::allocation::pod_collect_to_vec::<u8, $t>(&self.data);
            #[cfg(not(target_endian = "little"))]
            let values = self
                .data
                .chunks_exact(std::mem::size_of::<$t>())
                .map(|chunk| <$t>::from_le_bytes(chunk.try_into().expect("chunks_exact")))
                .collect();
            Some(values)
        }
    };
}

impl TensorData {
    /// Builds a tensor from raw little-endian bytes, checking length and bool bytes.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<TensorData, TensorError> {
        let count = element_count(&shape)?;
        let expected = count.checked_mul(dtype.size()).ok_or_else(|| TensorError::ShapeOverflow(shape.clone()))?;
        if data.len() != expected {
            return Err(TensorError::LengthMismatch { dtype, shape, expected, got: data.len() });
        }
        if dtype == DType::Bool
            && let Some(&bad) = data.iter().find(|&&b| b > 1)
        {
            return Err(TensorError::BadBool(bad));
        }
        Ok(TensorData { dtype, shape, data })
    }

    typed_access!(from_f32, to_f32, f32, DType::F32);
    typed_access!(from_f64, to_f64, f64, DType::F64);
    typed_access!(from_i64, to_i64, i64, DType::I64);
    typed_access!(from_u8, to_u8, u8, DType::U8);

    /// Builds a bool tensor.
    pub fn from_bool(shape: Vec<usize>, values: &[bool]) -> Result<TensorData, TensorError> {
        TensorData::from_bytes(DType::Bool, shape, values.iter().map(|&b| u8::from(b)).collect())
    }

    /// Returns the bool values, or `None` if the dtype differs.
    pub fn to_bool(&self) -> Option<Vec<bool>> {
        (self.dtype == DType::Bool).then(|| self.data.iter().map(|&b| b != 0).collect())
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
        &self.data
    }

    /// Consumes the tensor and returns its raw bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Encodes the compact binary frame: `RAVT`, version `u8`, dtype code `u8`, ndim `u32`,
    /// each dimension as `u64`, then the raw data (all little-endian).
    pub fn encode_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + 8 * self.shape.len() + self.data.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the binary frame to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(BINARY_MAGIC);
        out.push(BINARY_VERSION);
        out.push(self.dtype.code());
        out.extend_from_slice(&(self.shape.len() as u32).to_le_bytes());
        for &dim in &self.shape {
            out.extend_from_slice(&(dim as u64).to_le_bytes());
        }
        out.extend_from_slice(&self.data);
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
        TensorData::from_bytes(dtype, shape, data.to_vec())
    }

    /// The total length of the binary frame that starts with `prefix`, read from its header
    /// alone (so a file can be checked without reading its data). `prefix` must hold the
    /// whole header: at most [`MAX_BINARY_HEADER`] bytes.
    pub fn binary_len(prefix: &[u8]) -> Result<u64, TensorError> {
        let (dtype, shape, data) = TensorData::decode_header(prefix)?;
        let header = (prefix.len() - data.len()) as u64;
        let elements = element_count(&shape)? as u64;
        elements
            .checked_mul(dtype.size() as u64)
            .and_then(|bytes| bytes.checked_add(header))
            .ok_or_else(|| TensorError::ShapeOverflow(shape.clone()))
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

// JSON form of the data: numbers, with non-finite floats spelled as strings.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum JsonNumber {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

fn float_to_json(x: f64) -> JsonNumber {
    if x.is_nan() {
        JsonNumber::Text("nan".into())
    } else if x.is_infinite() {
        JsonNumber::Text(if x > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        JsonNumber::Float(x)
    }
}

impl JsonNumber {
    fn as_f64(&self) -> Option<f64> {
        match self {
            JsonNumber::Int(i) => Some(*i as f64),
            JsonNumber::Float(x) => Some(*x),
            JsonNumber::Bool(_) => None,
            JsonNumber::Text(t) => match t.as_str() {
                "nan" | "NaN" => Some(f64::NAN),
                "inf" | "Infinity" => Some(f64::INFINITY),
                "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
                _ => None,
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            JsonNumber::Int(i) => i.to_string(),
            JsonNumber::Float(x) => x.to_string(),
            JsonNumber::Bool(b) => b.to_string(),
            JsonNumber::Text(t) => format!("{t:?}"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct JsonTensor {
    dtype: DType,
    shape: Vec<usize>,
    data: Vec<JsonNumber>,
}

#[derive(Serialize, Deserialize)]
struct BinaryTensor<'a> {
    dtype: DType,
    shape: Vec<usize>,
    #[serde(borrow, with = "serde_bytes_compat")]
    data: std::borrow::Cow<'a, [u8]>,
}

// A minimal `serde_bytes` so binary formats store the data as one byte string.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer, de};
    use std::borrow::Cow;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, [u8]>, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Cow<'de, [u8]>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Cow::Owned(out))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

impl TensorData {
    fn json_data(&self) -> Vec<JsonNumber> {
        match self.dtype {
            DType::F32 => self.to_f32().unwrap_or_default().into_iter().map(|x| float_to_json(f64::from(x))).collect(),
            DType::F64 => self.to_f64().unwrap_or_default().into_iter().map(float_to_json).collect(),
            DType::I64 => self.to_i64().unwrap_or_default().into_iter().map(JsonNumber::Int).collect(),
            DType::U8 => self.data.iter().map(|&b| JsonNumber::Int(i64::from(b))).collect(),
            DType::Bool => self.data.iter().map(|&b| JsonNumber::Bool(b != 0)).collect(),
        }
    }

    fn from_json(json: JsonTensor) -> Result<TensorData, TensorError> {
        let JsonTensor { dtype, shape, data } = json;
        let bad = |index: usize, value: &JsonNumber| TensorError::BadElement { index, value: value.describe(), dtype };
        let mut bytes = Vec::with_capacity(data.len() * dtype.size());
        for (index, value) in data.iter().enumerate() {
            match dtype {
                DType::F32 => {
                    let x = value.as_f64().ok_or_else(|| bad(index, value))?;
                    bytes.extend_from_slice(&(x as f32).to_le_bytes());
                }
                DType::F64 => {
                    let x = value.as_f64().ok_or_else(|| bad(index, value))?;
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
                DType::I64 => match value {
                    JsonNumber::Int(i) => bytes.extend_from_slice(&i.to_le_bytes()),
                    _ => return Err(bad(index, value)),
                },
                DType::U8 => match value {
                    JsonNumber::Int(i) => {
                        let b = u8::try_from(*i).map_err(|_| bad(index, value))?;
                        bytes.push(b);
                    }
                    _ => return Err(bad(index, value)),
                },
                DType::Bool => match value {
                    JsonNumber::Bool(b) => bytes.push(u8::from(*b)),
                    JsonNumber::Int(i @ (0 | 1)) => bytes.push(*i as u8),
                    _ => return Err(bad(index, value)),
                },
            }
        }
        TensorData::from_bytes(dtype, shape, bytes)
    }
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            JsonTensor { dtype: self.dtype, shape: self.shape.clone(), data: self.json_data() }.serialize(serializer)
        } else {
            BinaryTensor { dtype: self.dtype, shape: self.shape.clone(), data: std::borrow::Cow::Borrowed(&self.data) }
                .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TensorData, D::Error> {
        if deserializer.is_human_readable() {
            let json = JsonTensor::deserialize(deserializer)?;
            TensorData::from_json(json).map_err(de::Error::custom)
        } else {
            let binary = BinaryTensor::deserialize(deserializer)?;
            TensorData::from_bytes(binary.dtype, binary.shape, binary.data.into_owned()).map_err(de::Error::custom)
        }
    }
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
            Value::Tensor(t) => 1 + 10 + 8 * t.shape().len() as u64 + t.bytes().len() as u64,
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
