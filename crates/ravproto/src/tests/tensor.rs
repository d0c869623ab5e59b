//! Tensors and values: their JSON and binary forms, streaming receipt into typed buffers, and
//! round trips bit for bit.

use super::check;
use crate::tensor::{DType, Scalar, TensorData, TensorError, TensorReceiver, Value};
use expect_test::expect;

#[test]
fn tensor_json() {
    check(
        &TensorData::from_f32(vec![3], &[1.0, 2.5, -3.0]).unwrap(),
        expect![[r#"{"dtype":"f32","shape":[3],"data":[1.0,2.5,-3.0]}"#]],
    );
    check(
        &TensorData::from_i64(vec![2, 1], &[7, -1]).unwrap(),
        expect![[r#"{"dtype":"i64","shape":[2,1],"data":[7,-1]}"#]],
    );
    check(
        &TensorData::from_bool(vec![2], &[true, false]).unwrap(),
        expect![[r#"{"dtype":"bool","shape":[2],"data":[true,false]}"#]],
    );
    check(&TensorData::from_u8(vec![0], &[]).unwrap(), expect![[r#"{"dtype":"u8","shape":[0],"data":[]}"#]]);
    check(&TensorData::scalar(Scalar::Float(0.5)), expect![[r#"{"dtype":"f64","shape":[],"data":[0.5]}"#]]);
    // Non-finite floats are strings, since JSON has no NaN or infinity.
    let special = TensorData::from_f64(vec![3], &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]).unwrap();
    let json = serde_json::to_string(&special).unwrap();
    expect![[r#"{"dtype":"f64","shape":[3],"data":["nan","inf","-inf"]}"#]].assert_eq(&json);
    let back: TensorData = serde_json::from_str(&json).unwrap();
    let values = back.to_f64().unwrap();
    assert!(values[0].is_nan() && values[1] == f64::INFINITY && values[2] == f64::NEG_INFINITY);
}

#[test]
fn tensor_json_rejects_bad_data() {
    let err = |json: &str| serde_json::from_str::<TensorData>(json).unwrap_err().to_string();
    expect!["tensor data has 8 bytes but shape [3] of f32 needs 12 at line 1 column 44"]
        .assert_eq(&err(r#"{"dtype":"f32","shape":[3],"data":[1.0,2.0]}"#));
    expect!["element 1 (1.5) is not a valid i64 at line 1 column 41"]
        .assert_eq(&err(r#"{"dtype":"i64","shape":[2],"data":[1,1.5]}"#));
    expect!["element 0 (300) is not a valid u8 at line 1 column 38"]
        .assert_eq(&err(r#"{"dtype":"u8","shape":[1],"data":[300]}"#));
    expect![[r#"element 0 ("hello") is not a valid f64 at line 1 column 43"#]]
        .assert_eq(&err(r#"{"dtype":"f64","shape":[1],"data":["hello"]}"#));
}

#[test]
fn tensor_json_fields_come_in_any_order() {
    // The data is typed as it is read when the dtype came first, kept until the end otherwise.
    let late: TensorData = serde_json::from_str(r#"{"data":[1,2],"shape":[2],"dtype":"i64","note":0}"#).unwrap();
    assert_eq!(late.to_i64().unwrap(), [1, 2]);
    let err = |json: &str| serde_json::from_str::<TensorData>(json).unwrap_err().to_string();
    expect!["element 0 (1.5) is not a valid i64 at line 1 column 40"]
        .assert_eq(&err(r#"{"data":[1.5],"shape":[1],"dtype":"i64"}"#));
    expect!["duplicate field `data` at line 1 column 44"]
        .assert_eq(&err(r#"{"dtype":"f64","shape":[1],"data":[1],"data":[2]}"#));
    expect!["missing field `shape` at line 1 column 28"].assert_eq(&err(r#"{"dtype":"f64","data":[1.0]}"#));
}

#[test]
fn binary_frame_round_trips_and_rejects_garbage() {
    let tensor = TensorData::from_f64(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN]).unwrap();
    let frame = tensor.encode_binary();
    assert_eq!(frame.len(), 4 + 1 + 1 + 4 + 2 * 8 + 6 * 8, "header plus raw data, nothing else");
    let back = TensorData::decode_binary(&frame).unwrap();
    assert_eq!(back.shape(), &[2, 3]);
    assert_eq!(back.bytes(), tensor.bytes());
    assert_eq!(TensorData::decode_binary(b"nope"), Err(TensorError::BadFrame("missing RAVT magic")));
    assert!(matches!(TensorData::decode_binary(&frame[..frame.len() - 1]), Err(TensorError::LengthMismatch { .. })));
    let mut bad_bool = TensorData::from_bool(vec![1], &[true]).unwrap().encode_binary();
    *bad_bool.last_mut().unwrap() = 7;
    assert_eq!(TensorData::decode_binary(&bad_bool), Err(TensorError::BadBool(7)));
}

#[test]
fn binary_serde_formats_carry_raw_bytes() {
    let tensor = TensorData::from_f32(vec![256, 256], &vec![0.5; 65536]).unwrap();
    let packed = postcard::to_allocvec(&tensor).unwrap();
    assert!(packed.len() < 262_144 + 32, "postcard form is raw bytes plus a small header: {}", packed.len());
    let back: TensorData = postcard::from_bytes(&packed).unwrap();
    assert_eq!(back, tensor);
}

#[test]
fn values_and_scalars() {
    let list = Value::List(vec![Value::Tensor(TensorData::from_i64(vec![1], &[3]).unwrap()), Value::List(vec![])]);
    check(&list, expect![[r#"{"list":[{"tensor":{"dtype":"i64","shape":[1],"data":[3]}},{"list":[]}]}"#]]);
    check(&vec![Scalar::Bool(true), Scalar::Int(3), Scalar::Float(2.5)], expect!["[true,3,2.5]"]);
    assert_eq!(DType::ALL.map(|d| d.size()), [4, 8, 8, 1, 1]);
}

#[test]
fn value_binary_round_trips() {
    let value = Value::List(vec![
        Value::Tensor(TensorData::from_f32(vec![2], &[1.0, -2.0]).unwrap()),
        Value::List(vec![Value::Tensor(TensorData::from_bool(vec![], &[true]).unwrap())]),
    ]);
    let bytes = value.encode_binary();
    assert_eq!(value.encoded_len(), bytes.len() as u64);
    assert_eq!(Value::decode_binary(&bytes).unwrap(), value);
    assert!(Value::decode_binary(&bytes[..bytes.len() - 1]).is_err());
    assert!(Value::decode_binary(b"X").is_err());
    // Decoding an owned buffer gives the same values, and the same errors.
    assert_eq!(Value::decode_binary_owned(bytes.clone()).unwrap(), value);
    let tensor = Value::Tensor(TensorData::from_f64(vec![2, 3], &[0.5, -1.0, 2.0, 1e300, -0.0, 7.25]).unwrap());
    let encoded = tensor.encode_binary();
    assert_eq!(tensor.encoded_len(), encoded.len() as u64);
    assert_eq!(Value::decode_binary_owned(encoded.clone()).unwrap(), tensor);
    assert!(matches!(
        Value::decode_binary_owned(encoded[..encoded.len() - 1].to_vec()),
        Err(TensorError::LengthMismatch { .. })
    ));
    assert!(Value::decode_binary_owned(b"TRAVX".to_vec()).is_err());
    assert!(Value::decode_binary_owned(Vec::new()).is_err());
    let mut nested = Value::Tensor(TensorData::scalar(Scalar::Int(1)));
    for _ in 0..40 {
        nested = Value::List(vec![nested]);
    }
    assert_eq!(
        Value::decode_binary(&nested.encode_binary()),
        Err(TensorError::BadFrame("value lists nested too deeply"))
    );
}

#[test]
fn tensors_are_sent_from_and_received_into_their_own_buffers() {
    let values = vec![0.5, -1.0, f64::NAN, 7.25, 1e300, -0.0];
    let address = values.as_ptr();
    let tensor = TensorData::from_f64_vec(vec![2, 3], values).unwrap();
    // Building the tensor took the buffer over, and taking the elements back gives it back.
    assert_eq!(tensor.bytes().as_ptr(), address.cast::<u8>());
    let copy = tensor.clone();
    let copy_address = copy.bytes().as_ptr();
    let elements = copy.into_f64_vec().unwrap();
    assert_eq!(elements.as_ptr().cast::<u8>(), copy_address);
    assert_eq!(tensor.clone().into_f32_vec(), Err(tensor.clone()), "another dtype gives the tensor back");
    let value = Value::Tensor(tensor);
    let encoded = value.encode_binary();
    let Value::Tensor(tensor) = &value else { unreachable!() };
    // The header, then the bytes, is the encoding.
    let header = Value::tensor_header(tensor.dtype(), tensor.shape());
    assert_eq!([header.as_slice(), tensor.bytes()].concat(), encoded);
    assert_eq!(Value::tensor_encoded_len(DType::F64, &[2, 3]).unwrap(), encoded.len() as u64);
    // A receiver learns the header length from its fixed part, then takes the data.
    let fixed = &encoded[..crate::tensor::VALUE_FIXED_HEADER];
    assert_eq!(Value::tensor_header_len(fixed), Some(Ok(header.len())));
    let mut receiver = TensorReceiver::new(&header, encoded.len() as u64).unwrap();
    receiver.buffer().copy_from_slice(&encoded[header.len()..]);
    let received = receiver.finish().unwrap();
    assert_eq!(received, value, "NaN equals the same NaN: values compare by bytes");
    let Value::Tensor(received) = received else { unreachable!() };
    assert_eq!(received.into_f64_vec().unwrap()[3], 7.25);

    // What a receiver refuses before allocating: another length than announced, a list
    // header, a malformed one.
    let wrong = TensorReceiver::new(&header, encoded.len() as u64 + 1).unwrap_err();
    assert_eq!(wrong, TensorError::BadFrame("header announces another length than the file's"));
    assert!(TensorReceiver::new(b"L\x01\0\0\0", 5).is_err());
    assert_eq!(Value::tensor_header_len(b"L\x01\0\0\0"), None);
    let mut too_many = fixed.to_vec();
    too_many[7..11].copy_from_slice(&65u32.to_le_bytes());
    assert_eq!(Value::tensor_header_len(&too_many), Some(Err(TensorError::BadFrame("more than 64 dimensions"))));
    assert!(Value::tensor_header_len(b"TRAV").unwrap().is_err(), "truncated");
    // Bool bytes are checked once received.
    let bools = Value::Tensor(TensorData::from_bool(vec![2], &[true, false]).unwrap()).encode_binary();
    let header_len = bools.len() - 2;
    let mut receiver = TensorReceiver::new(&bools[..header_len], bools.len() as u64).unwrap();
    receiver.buffer().copy_from_slice(&[1, 2]);
    assert_eq!(receiver.finish(), Err(TensorError::BadBool(2)));
}

#[test]
fn tensor_length_is_read_from_the_header() {
    let tensor = TensorData::from_f32(vec![3, 5], &[0.5; 15]).unwrap();
    let encoded = Value::Tensor(tensor).encode_binary();
    let prefix = &encoded[..encoded.len().min(1 + crate::tensor::MAX_BINARY_HEADER)];
    assert_eq!(Value::tensor_binary_len(prefix).unwrap().unwrap(), encoded.len() as u64);
    // A header cut short is an error, a list has no header length.
    assert!(Value::tensor_binary_len(&encoded[..8]).unwrap().is_err());
    assert!(Value::tensor_binary_len(&Value::List(vec![]).encode_binary()).is_none());
    // A shape whose size overflows is an error, not a wrap-around.
    let mut huge = encoded[..11].to_vec();
    huge[7..11].copy_from_slice(&2u32.to_le_bytes());
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(Value::tensor_binary_len(&huge).unwrap().is_err());
}

#[test]
fn f64_tensors_round_trip_through_json_bit_for_bit() {
    // serde_json's default float parser may be one ulp off; training on the grid must see
    // exactly the requester's numbers (the workspace enables `float_roundtrip`).
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let values: Vec<f64> = (0..10_000)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            ((i as f64 * 0.37).sin() * 2.0) * unit.powi(3) * 10f64.powi((i % 40) - 20)
        })
        .collect();
    let tensor = TensorData::from_f64(vec![values.len()], &values).unwrap();
    let back: TensorData = serde_json::from_str(&serde_json::to_string(&tensor).unwrap()).unwrap();
    let back = back.to_f64().unwrap();
    for (a, b) in values.iter().zip(&back) {
        assert_eq!(a.to_bits(), b.to_bits(), "{a:e} came back as {b:e}");
    }
}
