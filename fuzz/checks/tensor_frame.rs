//! The binary tensor encoding and the frames built on it: what a provider's result, an
//! assignment and every ravftp blob are read with. Whatever decodes must encode back to a
//! form that decodes to the same bytes (compared as bytes: a NaN is not equal to itself).
//!
//! Shared by the fuzz target and the corpus replay test (`crates/ravtest/tests/corpus`).

use ravproto::frame::Frame;
use ravproto::provider::{AssignHeader, ResultHeader, ResultMessage};
use ravproto::{TensorData, Value};

/// Panics where the property above does not hold for `data`.
pub(crate) fn check(data: &[u8]) {
    if let Ok(value) = Value::decode_binary(data) {
        let encoded = value.encode_binary();
        let again = Value::decode_binary(&encoded).expect("an encoded value decodes");
        assert_eq!(again.encode_binary(), encoded);
    }
    if let Ok(tensor) = TensorData::decode_binary(data) {
        let (dtype, shape, _) = TensorData::decode_header(data).expect("a decoded tensor has a header");
        assert_eq!((dtype, shape.as_slice()), (tensor.dtype(), tensor.shape()));
    }
    if let Ok(mut frame) = Frame::<ResultHeader>::decode(data) {
        let encoded = frame.encode();
        assert_eq!(Frame::<ResultHeader>::decode(&encoded).expect("re-decodes").encode(), encoded);
        let message = ResultMessage::new(&frame);
        assert_eq!(message.decode().expect("re-decodes").encode(), encoded);
        let _ = frame.take_checkpoint();
    }
    if let Ok(mut frame) = Frame::<AssignHeader>::decode(data) {
        let _ = frame.take_checkpoint();
    }
}
