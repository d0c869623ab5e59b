//! The serde forms of a [`TensorData`]: in human-readable formats (JSON) the dtype, the shape
//! and the elements as numbers (non-finite floats as strings), read element by element into
//! the typed buffer; in binary formats (postcard) the raw little-endian bytes in one string.

use super::{DType, Elements, TensorData, TensorError};
use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

// JSON form of the data: numbers, with non-finite floats spelled as strings. Read with its
// own visitor: serde's `untagged` buffers every element as `Content` first, which made a
// tensor's JSON take about eight times its text in memory.
#[derive(Serialize)]
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

#[derive(Serialize)]
struct JsonTensor {
    dtype: DType,
    shape: Vec<usize>,
    data: Vec<JsonNumber>,
}

impl<'de> Deserialize<'de> for JsonNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JsonNumber, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = JsonNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a bool, or \"nan\", \"inf\", \"-inf\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonNumber, E> {
                Ok(JsonNumber::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonNumber, E> {
                Ok(i64::try_from(v).map_or(JsonNumber::Float(v as f64), JsonNumber::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonNumber, E> {
                Ok(JsonNumber::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsonNumber, E> {
                Ok(JsonNumber::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonNumber, E> {
                Ok(JsonNumber::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Elements {
    /// No elements yet, room for `count` of `dtype`.
    fn with_capacity(dtype: DType, count: usize) -> Elements {
        match dtype {
            DType::F32 => Elements::F32(Vec::with_capacity(count)),
            DType::F64 => Elements::F64(Vec::with_capacity(count)),
            DType::I64 => Elements::I64(Vec::with_capacity(count)),
            DType::Bool | DType::U8 => Elements::Bytes(Vec::with_capacity(count)),
        }
    }

    /// Appends `value`, the JSON element at `index`, as an element of `dtype` (the dtype these
    /// elements were made for).
    fn push_json(&mut self, dtype: DType, index: usize, value: &JsonNumber) -> Result<(), TensorError> {
        let bad = || TensorError::BadElement { index, value: value.describe(), dtype };
        match (self, value) {
            (Elements::F32(v), _) => v.push(value.as_f64().ok_or_else(bad)? as f32),
            (Elements::F64(v), _) => v.push(value.as_f64().ok_or_else(bad)?),
            (Elements::I64(v), JsonNumber::Int(i)) => v.push(*i),
            (Elements::Bytes(v), JsonNumber::Int(i)) if dtype == DType::U8 => {
                v.push(u8::try_from(*i).map_err(|_| bad())?)
            }
            (Elements::Bytes(v), JsonNumber::Bool(b)) if dtype == DType::Bool => v.push(u8::from(*b)),
            (Elements::Bytes(v), JsonNumber::Int(i @ (0 | 1))) if dtype == DType::Bool => v.push(*i as u8),
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// Reads a JSON tensor's `data` straight into its typed elements once the dtype is
/// known (it comes first in what this crate writes): no element is kept in between.
struct TypedJsonData {
    dtype: DType,
    /// Elements expected from the shape, when it came first (a capacity hint, bounded).
    expected: usize,
}

impl<'de> de::DeserializeSeed<'de> for TypedJsonData {
    type Value = Elements;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Elements, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> de::Visitor<'de> for TypedJsonData {
    type Value = Elements;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {} elements", self.dtype)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Elements, A::Error> {
        // A body is at most tens of MiB, so a hint beyond 256 MiB is a lie about the shape.
        let mut elements = Elements::with_capacity(self.dtype, self.expected.min((256 << 20) / self.dtype.size()));
        let mut index = 0;
        while let Some(value) = seq.next_element::<JsonNumber>()? {
            elements.push_json(self.dtype, index, &value).map_err(de::Error::custom)?;
            index += 1;
        }
        Ok(elements)
    }
}

/// The fields of a JSON tensor.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum JsonField {
    Dtype,
    Shape,
    Data,
    #[serde(other)]
    Other,
}

/// A JSON tensor, its fields in any order; the data is typed as it is read when the dtype
/// came before it, and kept as elements until the end otherwise.
struct JsonTensorVisitor;

impl<'de> de::Visitor<'de> for JsonTensorVisitor {
    type Value = TensorData;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor: dtype, shape and data")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<TensorData, A::Error> {
        let (mut dtype, mut shape): (Option<DType>, Option<Vec<usize>>) = (None, None);
        let mut typed: Option<Elements> = None;
        let mut loose: Option<Vec<JsonNumber>> = None;
        while let Some(field) = map.next_key::<JsonField>()? {
            match field {
                JsonField::Dtype if dtype.is_some() => return Err(de::Error::duplicate_field("dtype")),
                JsonField::Shape if shape.is_some() => return Err(de::Error::duplicate_field("shape")),
                JsonField::Data if typed.is_some() || loose.is_some() => {
                    return Err(de::Error::duplicate_field("data"));
                }
                JsonField::Dtype => dtype = Some(map.next_value()?),
                JsonField::Shape => shape = Some(map.next_value()?),
                JsonField::Data => match dtype {
                    Some(dtype) => {
                        let expected =
                            shape.as_deref().map_or(0, |s| s.iter().fold(1usize, |n, d| n.saturating_mul(*d)));
                        typed = Some(map.next_value_seed(TypedJsonData { dtype, expected })?);
                    }
                    None => loose = Some(map.next_value()?),
                },
                JsonField::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let dtype = dtype.ok_or_else(|| de::Error::missing_field("dtype"))?;
        let shape = shape.ok_or_else(|| de::Error::missing_field("shape"))?;
        let elements = match (typed, loose) {
            (Some(elements), _) => elements,
            (None, Some(loose)) => {
                let mut elements = Elements::with_capacity(dtype, loose.len());
                for (index, value) in loose.iter().enumerate() {
                    elements.push_json(dtype, index, value).map_err(de::Error::custom)?;
                }
                elements
            }
            (None, None) => return Err(de::Error::missing_field("data")),
        };
        TensorData::checked(dtype, shape, elements).map_err(de::Error::custom)
    }
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
            DType::U8 => self.bytes().iter().map(|&b| JsonNumber::Int(i64::from(b))).collect(),
            DType::Bool => self.bytes().iter().map(|&b| JsonNumber::Bool(b != 0)).collect(),
        }
    }
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            JsonTensor { dtype: self.dtype, shape: self.shape.clone(), data: self.json_data() }.serialize(serializer)
        } else {
            BinaryTensor {
                dtype: self.dtype,
                shape: self.shape.clone(),
                data: std::borrow::Cow::Borrowed(self.bytes()),
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TensorData, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_struct("TensorData", &["dtype", "shape", "data"], JsonTensorVisitor)
        } else {
            let binary = BinaryTensor::deserialize(deserializer)?;
            TensorData::from_slice(binary.dtype, binary.shape, &binary.data).map_err(de::Error::custom)
        }
    }
}
