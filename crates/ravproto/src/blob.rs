//! Typed values that travel as bytes: training checkpoints and fitted models.
//!
//! Such a value is a serde struct holding tensors. Its binary form is a
//! [`crate::frame::Frame`] whose header is the struct's JSON with every tensor emptied and
//! whose values are those tensors, in the order a visitor lists them: the structure stays
//! readable JSON, the numbers travel as bytes (never as JSON text). Inside protocol messages and
//! graphs, the bytes are one `u8` vector tensor ([`bytes_value`]).

use crate::frame::{Frame, FrameError};
use crate::tensor::{DType, TensorData, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes are not the typed value expected.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The frame is broken.
    #[error("bad encoded value: {0}")]
    Frame(#[from] FrameError),
    /// The header lists more or fewer tensors than the frame holds.
    #[error("bad encoded value: {expected} tensors listed, {got} sent")]
    TensorCount {
        /// Listed.
        expected: usize,
        /// Sent.
        got: usize,
    },
    /// A value of the frame is a list, not a tensor.
    #[error("bad encoded value: value {0} is not a tensor")]
    NotTensor(usize),
    /// The wrapping value is not a `u8` vector.
    #[error("expected an encoded value (a u8 vector), got something else")]
    NotBytes,
}

fn empty_tensor() -> TensorData {
    TensorData::from_bytes(DType::U8, vec![0], Vec::new()).expect("an empty tensor is valid")
}

/// The binary form of `value`, whose tensors `tensors` lists.
pub(crate) fn encode_blob<T: Serialize + DeserializeOwned + Clone>(
    value: &T,
    tensors: impl Fn(&mut T) -> Vec<&mut TensorData>,
) -> Vec<u8> {
    let mut header = value.clone();
    let values =
        tensors(&mut header).into_iter().map(|t| Value::Tensor(std::mem::replace(t, empty_tensor()))).collect();
    Frame { header, values }.encode()
}

/// Reads [`encode_blob`]'s form.
pub(crate) fn decode_blob<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    tensors: impl Fn(&mut T) -> Vec<&mut TensorData>,
) -> Result<T, BlobError> {
    let Frame { mut header, values } = Frame::<T>::decode(bytes)?;
    let mut slots = tensors(&mut header);
    if slots.len() != values.len() {
        return Err(BlobError::TensorCount { expected: slots.len(), got: values.len() });
    }
    for (index, (slot, value)) in slots.iter_mut().zip(values).enumerate() {
        match value {
            Value::Tensor(tensor) => **slot = tensor,
            Value::List(_) => return Err(BlobError::NotTensor(index)),
        }
    }
    Ok(header)
}

/// Bytes as a `u8` vector value.
pub(crate) fn bytes_value(bytes: Vec<u8>) -> Value {
    let len = bytes.len();
    Value::Tensor(TensorData::from_bytes(DType::U8, vec![len], bytes).expect("u8 bytes fit their length"))
}

/// The bytes of a `u8` vector value.
pub(crate) fn value_bytes(value: &Value) -> Result<&[u8], BlobError> {
    match value {
        Value::Tensor(t) if t.dtype() == DType::U8 && t.shape().len() == 1 => Ok(t.bytes()),
        _ => Err(BlobError::NotBytes),
    }
}
