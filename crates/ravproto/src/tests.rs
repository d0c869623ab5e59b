//! Snapshot tests freezing the JSON of every message type, and tensor encoding round trips.

use crate::index::{IndexExpr, IndexItem};
use crate::messages::*;
use crate::ops::{Operation, ReduceParams};
use crate::status::*;
use crate::tensor::{DType, Scalar, TensorData, TensorError, TensorReceiver, Value};
use crate::{GraphId, OpId};
use expect_test::{Expect, expect};
use std::collections::BTreeMap;

fn check<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, expect: Expect) {
    let json = serde_json::to_string(value).expect("serializes");
    expect.assert_eq(&json);
    let back: T = serde_json::from_str(&json).expect("parses back");
    assert_eq!(&back, value);
}

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
fn statuses() {
    check(
        &[OpStatus::Pending, OpStatus::Computing, OpStatus::Computed, OpStatus::Failed],
        expect![[r#"["pending","computing","computed","failed"]"#]],
    );
    check(
        &[
            GraphStatus::Pending,
            GraphStatus::Computing,
            GraphStatus::Computed,
            GraphStatus::Failed,
            GraphStatus::Cancelled,
        ],
        expect![[r#"["pending","computing","computed","failed","cancelled"]"#]],
    );
}

#[test]
fn graph_messages() {
    let meta = GraphMeta {
        name: "ages".into(),
        algorithm: Some("stats".into()),
        approach: Approach::Federated,
        rules: Some(FederatedRules {
            columns: BTreeMap::from([
                ("age".into(), ColumnRule { min: Some(18.0), max: Some(80.0), optional: false }),
                ("fund".into(), ColumnRule::default()),
            ]),
            min_clients: 2,
            max_clients: Some(5),
            privacy: Privacy::Encrypted,
        }),
        requirements: Requirements {
            min_ram_bytes: Some(1 << 30),
            gpu_required: false,
            min_speed_score: None,
            onnx_required: false,
        },
    };
    check(
        &meta,
        expect![[
            r#"{"name":"ages","algorithm":"stats","approach":"federated","rules":{"columns":{"age":{"min":18.0,"max":80.0},"fund":{"min":null,"max":null}},"min_clients":2,"max_clients":5,"privacy":"encrypted"},"requirements":{"min_ram_bytes":1073741824,"gpu_required":false,"min_speed_score":null}}"#
        ]],
    );
    check(&CreateGraphResponse { graph_id: GraphId(42) }, expect![[r#"{"graph_id":42}"#]]);
    let benchmark = Benchmark {
        ram_bytes: 8 << 30,
        cores: 2,
        gpu: false,
        speed_score: 120.5,
        onnx: false,
        memory_budget_bytes: None,
    };
    check(&benchmark, expect![[r#"{"ram_bytes":8589934592,"cores":2,"gpu":false,"speed_score":120.5}"#]]);
    let needs_gpu = Requirements { gpu_required: true, ..Requirements::default() };
    assert!(!needs_gpu.accepts(&benchmark));
    assert!(Requirements { min_ram_bytes: Some(4 << 30), ..Requirements::default() }.accepts(&benchmark));
    // ONNX graphs go to providers that run ONNX; the flag is absent from JSON when false.
    let onnx = Requirements { onnx_required: true, ..Requirements::default() };
    assert!(!onnx.accepts(&benchmark));
    let with_onnx = Benchmark { onnx: true, ..benchmark };
    assert!(onnx.accepts(&with_onnx));
    // A refusal says what is missing.
    let demanding = Requirements { min_speed_score: Some(500.0), ..onnx.clone() };
    assert_eq!(
        demanding.shortfalls(&benchmark),
        ["a speed score of 500 (it has 120.5)", "ONNX models (a provider built with `--features onnx`)"]
    );
    check(&with_onnx, expect![[r#"{"ram_bytes":8589934592,"cores":2,"gpu":false,"speed_score":120.5,"onnx":true}"#]]);
    check(
        &onnx,
        expect![[r#"{"min_ram_bytes":null,"gpu_required":false,"min_speed_score":null,"onnx_required":true}"#]],
    );
}

#[test]
fn op_chunk_messages() {
    let chunk = OpChunkRequest {
        ops: vec![
            OpRecord {
                local_id: 0,
                operation: serde_json::from_str(r#"{"operator":"lin","params":{"dtype":"f64","shape":[2]}}"#).unwrap(),
                inputs: vec![],
                persist: None,
                value: Some(Value::Tensor(TensorData::from_f64(vec![2], &[1.0, 2.0]).unwrap())),
                value_file: None,
            },
            OpRecord {
                local_id: 1,
                operation: Operation::Sum(ReduceParams::axis(0)),
                inputs: vec![OpRef::Local(0), OpRef::Server(OpId(9031))],
                persist: Some("total".into()),
                value: None,
                value_file: None,
            },
        ],
    };
    check(
        &chunk,
        expect![[
            r#"{"ops":[{"local_id":0,"operation":{"operator":"lin","params":{"dtype":"f64","shape":[2]}},"inputs":[],"persist":null,"value":{"tensor":{"dtype":"f64","shape":[2],"data":[1.0,2.0]}}},{"local_id":1,"operation":{"operator":"sum","params":{"axis":0,"keepdims":false}},"inputs":[{"local":0},{"server":9031}],"persist":"total","value":null}]}"#
        ]],
    );
    check(
        &OpChunkResponse { id_map: BTreeMap::from([(0, OpId(100)), (1, OpId(101))]) },
        expect![[r#"{"id_map":{"0":100,"1":101}}"#]],
    );
}

#[test]
fn run_graph_messages() {
    let request = RunGraphRequest {
        meta: GraphMeta { name: "p3".into(), ..GraphMeta::default() },
        ops: vec![OpRecord {
            local_id: 0,
            operation: serde_json::from_str(r#"{"operator":"lin","params":{"dtype":"f64","shape":[]}}"#).unwrap(),
            inputs: vec![],
            persist: Some("x".into()),
            value: Some(Value::Tensor(TensorData::from_f64(vec![], &[3.0]).unwrap())),
            value_file: None,
        }],
        wait_ms: 10_000,
        with_results: true,
    };
    check(
        &request,
        expect![[
            r#"{"meta":{"name":"p3","algorithm":null,"approach":"distributed","rules":null,"requirements":{"min_ram_bytes":null,"gpu_required":false,"min_speed_score":null}},"ops":[{"local_id":0,"operation":{"operator":"lin","params":{"dtype":"f64","shape":[]}},"inputs":[],"persist":"x","value":{"tensor":{"dtype":"f64","shape":[],"data":[3.0]}}}],"wait_ms":10000,"with_results":true}"#
        ]],
    );
    // Both knobs may be left out: answer at once, without results.
    let bare: RunGraphRequest = serde_json::from_str(r#"{"meta":{"name":"g"},"ops":[]}"#).unwrap();
    assert_eq!((bare.wait_ms, bare.with_results), (0, false));
    let response = RunGraphResponse {
        progress: GraphProgress {
            graph_id: GraphId(7),
            status: GraphStatus::Computed,
            ops: BTreeMap::from([(OpStatus::Computed, 2)]),
            percent: 100.0,
            failure: None,
        },
        results: BTreeMap::from([("y".to_string(), Value::Tensor(TensorData::from_f64(vec![], &[6.0]).unwrap()))]),
        large_results: vec!["big".into()],
    };
    check(
        &response,
        expect![[
            r#"{"progress":{"graph_id":7,"status":"computed","ops":{"computed":2},"percent":100.0,"failure":null},"results":{"y":{"tensor":{"dtype":"f64","shape":[],"data":[6.0]}}},"large_results":["big"]}"#
        ]],
    );
}

#[test]
fn progress_and_error_messages() {
    let progress = GraphProgress {
        graph_id: GraphId(3),
        status: GraphStatus::Failed,
        ops: BTreeMap::from([(OpStatus::Computed, 8), (OpStatus::Failed, 1)]),
        percent: 88.9,
        failure: Some(OpFailure { op_id: OpId(17), operator: "inv".into(), reason: "singular matrix".into() }),
    };
    check(
        &progress,
        expect![[
            r#"{"graph_id":3,"status":"failed","ops":{"computed":8,"failed":1},"percent":88.9,"failure":{"op_id":17,"operator":"inv","reason":"singular matrix"}}"#
        ]],
    );
    check(
        &ErrorBody {
            code: ErrorCode::BadRequest,
            message: "op `sum`: axis 3 is out of bounds".into(),
            op: Some(OpRef::Local(4)),
        },
        expect![[r#"{"code":"bad_request","message":"op `sum`: axis 3 is out of bounds","op":{"local":4}}"#]],
    );
}

#[test]
fn readiness_and_the_unavailable_code_have_a_stable_form() {
    let readiness = Readiness {
        ready: false,
        checks: vec![
            ReadinessCheck { name: "database".into(), ok: true, detail: None },
            ReadinessCheck { name: "data_dir".into(), ok: false, detail: Some("Read-only file system".into()) },
        ],
        last_storage_fault: Some("at 1796000000 (unix time): assignment 4: storage".into()),
    };
    check(
        &readiness,
        expect![[
            r#"{"ready":false,"checks":[{"name":"database","ok":true},{"name":"data_dir","ok":false,"detail":"Read-only file system"}],"last_storage_fault":"at 1796000000 (unix time): assignment 4: storage"}"#
        ]],
    );
    let body = ErrorBody { code: ErrorCode::Unavailable, message: "try again later".into(), op: None };
    check(&body, expect![[r#"{"code":"unavailable","message":"try again later","op":null}"#]]);
    assert_eq!(ErrorCode::Unavailable.http_status(), 503);
    assert!(ErrorCode::Unavailable.is_server_fault() && ErrorCode::Internal.is_server_fault());
    assert!(!ErrorCode::Conflict.is_server_fault());
    let body = ErrorBody { code: ErrorCode::Expired, message: "removed".into(), op: None };
    check(&body, expect![[r#"{"code":"expired","message":"removed","op":null}"#]]);
    assert_eq!(ErrorCode::Expired.http_status(), 410);
    let body = ErrorBody { code: ErrorCode::Timeout, message: "too slow".into(), op: None };
    check(&body, expect![[r#"{"code":"timeout","message":"too slow","op":null}"#]]);
    assert_eq!(ErrorCode::Timeout.http_status(), 408);
}

#[test]
fn connect_refusals_carry_their_code() {
    let refusal = ErrorBody { code: ErrorCode::Unauthorized, message: "invalid token".into(), op: None };
    let text = refusal.to_connect_error();
    expect![[r#"{"code":"unauthorized","message":"invalid token","op":null}"#]].assert_eq(&text);
    // What rust_socketio's error callback shows of socketioxide's CONNECT_ERROR packet.
    let seen = format!("Received an ConnectError frame: {}", serde_json::json!({ "message": text }));
    assert_eq!(ErrorBody::from_connect_error(&seen), Some(refusal.clone()));
    assert_eq!(ErrorBody::from_connect_error(&text), Some(refusal));
    for other in ["", "connection reset", "Received an ConnectError frame: {\"message\":\"invalid token\"}"] {
        assert_eq!(ErrorBody::from_connect_error(other), None, "{other}");
    }
}

fn parse(input: &str) -> String {
    match input.parse::<IndexExpr>() {
        Ok(expr) => expr.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn index_grammar() {
    expect!["[1:, :, -1]"].assert_eq(&parse("[1:, :, -1]"));
    expect!["[1:, ::2, -1]"].assert_eq(&parse("[1:, ::2, -1]"));
    expect!["[..., None, 0]"].assert_eq(&parse("..., np.newaxis, 0"));
    expect!["[[0, 2]]"].assert_eq(&parse("[[0, 2]]"));
    expect!["[0, 2]"].assert_eq(&parse("[0, 2]"));
    expect!["[[True, False, True], 1:3]"].assert_eq(&parse("[[True, False, True], 1:3]"));
    expect!["[[[0, 1], [1, 0]]]"].assert_eq(&parse("[[[0, 1], [1, 0]]]"));
    expect!["[::-1]"].assert_eq(&parse("[::-1]"));
    expect!["[]"].assert_eq(&parse("[]"));
    expect![[r#"error: cannot parse index "[::0]" at byte 4: slice step cannot be zero"#]].assert_eq(&parse("[::0]"));
    expect![[r#"error: cannot parse index "[1, 2" at byte 5: expected `,` or `]` in an index list"#]]
        .assert_eq(&parse("[1, 2"));
    expect![[r#"error: cannot parse index "[os.system('x')]" at byte 1: unknown name (only None, newaxis, True, False, Ellipsis)"#]]
        .assert_eq(&parse("[os.system('x')]"));
    expect![[r#"error: cannot parse index "[[1, [2]]]" at byte 8: index list mixes lists and numbers"#]]
        .assert_eq(&parse("[[1, [2]]]"));
    expect![[r#"error: cannot parse index "[[1, True]]" at byte 10: index list mixes integers and bools"#]]
        .assert_eq(&parse("[[1, True]]"));
    assert_eq!("[2:5]".parse::<IndexExpr>().unwrap().0, vec![IndexItem::range(2, 5)]);
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
fn provider_frames() {
    use crate::frame::Frame;
    use crate::provider::*;
    let header = AssignHeader {
        assignment: 7,
        graph: GraphId(2),
        ops: vec![AssignedOp { id: OpId(11), operation: Operation::Sum(ReduceParams::all()), inputs: vec![OpId(10)] }],
        inputs: vec![OpId(10)],
        outputs: vec![OpId(11)],
        files: vec![],
        state: None,
    };
    expect![[r#"{"assignment":7,"graph":2,"ops":[{"id":11,"operation":{"operator":"sum","params":{"axis":null,"keepdims":false}},"inputs":[10]}],"inputs":[10],"outputs":[11]}"#]]
        .assert_eq(&serde_json::to_string(&header).unwrap());
    let frame = Frame { header, values: vec![Value::Tensor(TensorData::from_f64(vec![2], &[1.0, 2.0]).unwrap())] };
    let bytes = frame.encode();
    let back = Frame::<AssignHeader>::decode(&bytes).unwrap();
    assert_eq!(back, frame);
    assert!(Frame::<AssignHeader>::decode(&bytes[..bytes.len() - 3]).is_err());
    assert!(Frame::<ResultHeader>::decode(&bytes).is_err(), "wrong header type");
    check(
        &OpFailedReport {
            assignment: 7,
            op_id: OpId(11),
            operator: "inv".into(),
            reason: "singular matrix".into(),
            retryable: false,
            over_budget: None,
        },
        expect![[r#"{"assignment":7,"op_id":11,"operator":"inv","reason":"singular matrix","retryable":false}"#]],
    );
    check(
        &OpFailedReport {
            assignment: 7,
            op_id: OpId(12),
            operator: "random".into(),
            reason: "too big".into(),
            retryable: true,
            over_budget: Some(OverBudget { needed_bytes: 1 << 34, budget_bytes: 1 << 30 }),
        },
        expect![[
            r#"{"assignment":7,"op_id":12,"operator":"random","reason":"too big","retryable":true,"over_budget":{"needed_bytes":17179869184,"budget_bytes":1073741824}}"#
        ]],
    );
    let budgeted = Benchmark { memory_budget_bytes: Some(1 << 29), ..benchmark_with_defaults() };
    assert_eq!(budgeted.memory_budget(), 1 << 29);
    assert_eq!(benchmark_with_defaults().memory_budget(), 1 << 29, "half the RAM by default");
    let unmeasured = Benchmark { ram_bytes: 0, ..benchmark_with_defaults() };
    assert_eq!(unmeasured.memory_budget(), u64::MAX, "RAM unknown: no budget rather than none");
    check(
        &budgeted,
        expect![[
            r#"{"ram_bytes":1073741824,"cores":4,"gpu":true,"speed_score":99.5,"memory_budget_bytes":536870912}"#
        ]],
    );
    let benchmark = Benchmark {
        ram_bytes: 1 << 30,
        cores: 4,
        gpu: true,
        speed_score: 99.5,
        onnx: false,
        memory_budget_bytes: None,
    };
    check(
        &JoinRequest { benchmark, graph: Some(GraphId(3)) },
        expect![[r#"{"benchmark":{"ram_bytes":1073741824,"cores":4,"gpu":true,"speed_score":99.5},"graph":3}"#]],
    );
    check(&Withdraw { assignment: 7 }, expect![[r#"{"assignment":7}"#]]);
    check(&Rejected { reason: "no gpu".into() }, expect![[r#"{"reason":"no gpu"}"#]]);
    check(&ProviderAuth { token: "t".into(), protocol_version: 1 }, expect![[r#"{"token":"t","protocol_version":1}"#]]);
}

fn benchmark_with_defaults() -> Benchmark {
    Benchmark { ram_bytes: 1 << 30, cores: 4, gpu: true, speed_score: 99.5, onnx: false, memory_budget_bytes: None }
}

#[test]
fn bulk_data_messages() {
    use crate::files::valid_file_name;
    use crate::messages::{FileValue, FtpCredentials, ResultFile};
    use crate::provider::ResultHeader;
    let credentials =
        FtpCredentials { port: 2121, user: "provider-3".into(), password: "s3cret".into(), inline_limit: 1 << 20 };
    check(&credentials, expect![[r#"{"port":2121,"user":"provider-3","password":"s3cret","inline_limit":1048576}"#]]);
    assert!(!format!("{credentials:?}").contains("s3cret"), "Debug must redact the password");
    let file = FileValue { op: OpId(11), name: "out-7-11.ravv".into(), len: 4096 };
    check(
        &ResultHeader { assignment: 7, outputs: vec![], files: vec![file], checkpoint: false },
        expect![[r#"{"assignment":7,"outputs":[],"files":[{"op":11,"name":"out-7-11.ravv","len":4096}]}"#]],
    );
    let frame = crate::frame::Frame {
        header: ResultHeader { assignment: 7, outputs: vec![OpId(1)], files: vec![], checkpoint: false },
        values: vec![Value::Tensor(TensorData::from_f64(vec![], &[1.5]).unwrap())],
    };
    let message = crate::provider::ResultMessage::new(&frame);
    assert_eq!(message.decode().unwrap(), frame);
    assert!(crate::provider::ResultMessage { frame: "not base64!".into() }.decode().is_err());
    // Without files the field is left out, as protocol 1 peers wrote it.
    check(
        &ResultHeader { assignment: 7, outputs: vec![OpId(1)], files: vec![], checkpoint: false },
        expect![[r#"{"assignment":7,"outputs":[1]}"#]],
    );
    check(&ResultFile { name: "result-2-c.ravv".into(), len: 10 }, expect![[r#"{"name":"result-2-c.ravv","len":10}"#]]);
    for good in ["a", "in-1-2.ravv", "X_y.z"] {
        assert!(valid_file_name(good), "{good}");
    }
    for bad in ["", ".hidden", "../x", "a/b", "/abs", "a\\b", "a b", &"x".repeat(129)] {
        assert!(!valid_file_name(bad), "{bad}");
    }
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
fn stuffing_removes_record_separators_reversibly() {
    use crate::frame::{stuff, unstuff};
    let all: Vec<u8> = (0..=255u8).chain([0x1e, 0x1d, 0x1e, 0x1d, 0x01, 0x02]).collect();
    let stuffed = stuff(&all);
    assert!(!stuffed.contains(&0x1e));
    assert_eq!(unstuff(&stuffed).unwrap(), all);
    assert!(unstuff(&[0x1d]).is_err());
    assert!(unstuff(&[0x1d, 0x07]).is_err());
}

#[test]
fn requester_events() {
    use crate::requester::{OpFailedNotice, RequesterAuth, Subscribe};
    check(
        &RequesterAuth { token: "t".into(), protocol_version: crate::PROTOCOL_VERSION },
        expect![[r#"{"token":"t","protocol_version":4}"#]],
    );
    check(&Subscribe { graph_id: GraphId(9) }, expect![[r#"{"graph_id":9}"#]]);
    let failure = OpFailure { op_id: OpId(12), operator: "div".into(), reason: "provider disconnected".into() };
    check(
        &OpFailedNotice { graph_id: GraphId(9), failure, will_retry: true },
        expect![[
            r#"{"graph_id":9,"failure":{"op_id":12,"operator":"div","reason":"provider disconnected"},"will_retry":true}"#
        ]],
    );
}

#[test]
fn federated_messages() {
    use crate::federated::*;
    let rules: FederatedRules = serde_json::from_str(
        r#"{"columns":{"age":{"min":18,"max":80},"fund":{"optional":true}},"min_clients":2,"privacy":"plain"}"#,
    )
    .unwrap();
    assert_eq!(rules.effective_max_clients(), DEFAULT_MAX_CLIENTS);
    assert_eq!(rules.check(), Ok(()));
    let spec = FederatedSpec {
        graph_id: GraphId(7),
        name: "census".into(),
        rules: rules.clone(),
        columns: vec![
            ColumnRequest { column: "age".into(), squares: true },
            ColumnRequest { column: "fund".into(), squares: false },
        ],
        status: GraphStatus::Computing,
        contributors: 1,
    };
    check(
        &spec,
        expect![[
            r#"{"graph_id":7,"name":"census","rules":{"columns":{"age":{"min":18.0,"max":80.0},"fund":{"min":null,"max":null,"optional":true}},"min_clients":2,"max_clients":null,"privacy":"plain"},"columns":[{"column":"age","squares":true},{"column":"fund","squares":false}],"status":"computing","contributors":1}"#
        ]],
    );
    let sums = vec![
        ColumnSums { count: 3, sum: -1500, sum_sq: Some(u128::from(u64::MAX) * 4) },
        ColumnSums { count: 0, sum: 0, sum_sq: None },
    ];
    check(
        &FederatedPayload::Plain(sums),
        expect![[
            r#"{"plain":[{"count":3,"sum":-1500,"sum_sq":73786976294838206460},{"count":0,"sum":0,"sum_sq":null}]}"#
        ]],
    );
    check(
        &FederatedAggregate {
            graph_id: GraphId(7),
            contributors: 2,
            columns: spec.columns.clone(),
            payload: FederatedPayload::Encrypted("AAEC".into()),
        },
        expect![[
            r#"{"graph_id":7,"contributors":2,"columns":[{"column":"age","squares":true},{"column":"fund","squares":false}],"payload":{"encrypted":"AAEC"}}"#
        ]],
    );
    let bad = |json: &str| serde_json::from_str::<FederatedRules>(json).unwrap().check().unwrap_err();
    expect!["the rules name no column"].assert_eq(&bad(r#"{"columns":{},"min_clients":1}"#));
    expect!["column `age`: min 80 is above max 18"]
        .assert_eq(&bad(r#"{"columns":{"age":{"min":80,"max":18}},"min_clients":1}"#));
    expect!["min_clients must be at least 1"].assert_eq(&bad(r#"{"columns":{"a":{}},"min_clients":0}"#));
    expect!["max_clients 1 is below min_clients 2"]
        .assert_eq(&bad(r#"{"columns":{"a":{}},"min_clients":2,"max_clients":1}"#));
    assert_eq!(to_fixed(1.2345), Some(1235));
    assert_eq!(to_fixed(-0.0004), Some(0));
    assert_eq!(to_fixed(f64::NAN), None);
    assert_eq!(to_fixed(1e13), None);
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

#[test]
fn training_checkpoints_travel_as_bytes_and_round_trip() {
    use crate::checkpoint::*;
    use crate::frame::Frame;
    use crate::provider::*;
    let weights = TensorData::from_f64(vec![2, 2], &[0.1, -0.2, 1.0 / 3.0, f64::MIN_POSITIVE]).unwrap();
    let bias = TensorData::from_f64(vec![2], &[0.0, 2.5]).unwrap();
    let checkpoint = Checkpoint {
        version: 4,
        seeds: 9,
        layers: vec![LayerCheckpoint {
            id: OpId(3),
            kind: crate::OpKind::ForwardPassDense,
            params: vec![
                ParamCheckpoint {
                    name: "w".into(),
                    value: weights.clone(),
                    optimizer: Some(OptimizerCheckpoint {
                        spec: serde_json::from_str(r#"{"name": "adam", "lr": 0.01, "eps": 1e-8}"#).unwrap(),
                        step: 4,
                        buffers: vec![("exp_avg".into(), weights.clone()), ("exp_avg_sq".into(), weights)],
                    }),
                },
                ParamCheckpoint { name: "b".into(), value: bias.clone(), optimizer: None },
            ],
            batchnorm: Some(BatchNormCheckpoint {
                momentum: 0.1,
                eps: 1e-5,
                running_mean: bias.clone(),
                running_var: bias,
            }),
        }],
        layer_of: vec![(OpId(3), OpId(3)), (OpId(8), OpId(3))],
    };
    let bytes = checkpoint.encode();
    assert_eq!(Checkpoint::decode(&bytes).unwrap(), checkpoint, "bit-exact round trip");
    // The header holds the structure only: the weights are binary values, not JSON numbers.
    let header_len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[4..4 + header_len]).unwrap();
    assert!(
        !header.contains("2.5") && header.contains(r#"["exp_avg",{"dtype":"u8","shape":[0],"data":[]}]"#),
        "{header}"
    );
    assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(matches!(
        Checkpoint::from_value(&Value::Tensor(TensorData::from_f64(vec![1], &[1.0]).unwrap())),
        Err(CheckpointError::NotBytes)
    ));

    // In an assignment, the checkpoint follows the inputs and the header announces it.
    let mut frame = Frame {
        header: AssignHeader {
            assignment: 1,
            graph: GraphId(2),
            ops: vec![],
            inputs: vec![OpId(1)],
            outputs: vec![],
            files: vec![],
            state: None,
        },
        values: vec![Value::Tensor(TensorData::from_f64(vec![], &[1.0]).unwrap())],
    };
    frame.attach_checkpoint(&checkpoint);
    check(&frame.header.state, expect![[r#"{"version":4,"checkpoint":true}"#]]);
    let mut back = Frame::<AssignHeader>::decode(&frame.encode()).unwrap();
    assert_eq!(back.take_checkpoint().unwrap(), Some(checkpoint.clone()));
    assert_eq!(back.values.len(), 1, "only the inputs are left");
    // A header announcing a checkpoint that is not there is refused, not misread.
    let mut missing = Frame { header: back.header.clone(), values: back.values.clone() };
    assert!(missing.take_checkpoint().is_err());

    let mut result = Frame {
        header: ResultHeader { assignment: 1, outputs: vec![], files: vec![], checkpoint: false },
        values: vec![],
    };
    result.attach_checkpoint(&checkpoint);
    check(&result.header, expect![[r#"{"assignment":1,"outputs":[],"checkpoint":true}"#]]);
    let mut back = ResultMessage::new(&result).decode().unwrap();
    assert_eq!(back.take_checkpoint().unwrap(), Some(checkpoint));
    assert!(back.values.is_empty() && !back.header.checkpoint);
}

#[test]
fn fitted_models_travel_as_bytes_and_round_trip() {
    use crate::model::*;
    use crate::ops::SvmKernel;
    let machine = SvmMachine {
        support: TensorData::from_f64(vec![2, 2], &[0.5, -1.0, 1.0 / 3.0, 2.0]).unwrap(),
        coef: TensorData::from_f64(vec![2], &[1.0, -1.0]).unwrap(),
        rho: -0.25,
    };
    let kernel = SvmKernelModel { kind: SvmKernel::Rbf, gamma: 0.5, degree: 3, coef0: 0.0 };
    let svc = FittedModel::SvmSvc { classes: vec![0.0, 2.0], kernel: kernel.clone(), machines: vec![machine.clone()] };
    let kmeans =
        FittedModel::Kmeans { centroids: TensorData::from_f64(vec![1, 2], &[0.1, 0.2]).unwrap(), inertia: 3.5 };
    // The JSON form of the structure, frozen: a renamed field or tag breaks saved models.
    check(
        &svc,
        expect![[
            r#"{"model":"svm_svc","classes":[0.0,2.0],"kernel":{"kind":"rbf","gamma":0.5,"degree":3,"coef0":0.0},"machines":[{"support":{"dtype":"f64","shape":[2,2],"data":[0.5,-1.0,0.3333333333333333,2.0]},"coef":{"dtype":"f64","shape":[2],"data":[1.0,-1.0]},"rho":-0.25}]}"#
        ]],
    );
    check(
        &kmeans,
        expect![[r#"{"model":"kmeans","centroids":{"dtype":"f64","shape":[1,2],"data":[0.1,0.2]},"inertia":3.5}"#]],
    );
    for model in [svc, kmeans, FittedModel::SvmSvr { kernel, machine }] {
        let value = model.to_value();
        assert_eq!(FittedModel::from_value(&value).unwrap(), model, "{} round trips bit for bit", model.name());
        // The blob's header holds the structure; the numbers follow as binary tensors.
        let bytes = model.encode();
        let header_len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[4..4 + header_len]).unwrap();
        assert!(header.contains(model.name()) && !header.contains("0.3333") && !header.contains("0.2]"), "{header}");
        assert!(FittedModel::decode(&bytes[..bytes.len() - 1]).is_err(), "a truncated model is refused");
    }
    assert!(FittedModel::from_value(&Value::Tensor(TensorData::from_f64(vec![1], &[1.0]).unwrap())).is_err());
}

#[test]
fn a_frame_carries_values_inline_up_to_its_budget_and_the_rest_through_ravftp() {
    use crate::provider::{InlineBudget, MAX_INLINE_PER_FRAME};
    // 8 values at the limit fit, in order; a 9th does not, nor a value over the limit.
    let mut budget = InlineBudget::new(1000);
    let inline: Vec<bool> = [1000, 1001, 500].iter().chain([1000; 7].iter()).map(|&len| budget.admit(len)).collect();
    assert_eq!(inline[..3], [true, false, true]);
    assert_eq!(inline[3..].iter().filter(|&&b| b).count(), 6, "7,500 of 8,000 bytes admitted: {inline:?}");
    assert!(budget.admit(500), "the room left is used");
    assert!(!budget.admit(1), "nothing is left");
    // Whatever the inline limit, a frame stays within MAX_INLINE_PER_FRAME.
    let mut big = InlineBudget::new(1 << 30);
    assert!(!big.admit(MAX_INLINE_PER_FRAME + 1));
    assert!(big.admit(MAX_INLINE_PER_FRAME));
    assert!(!big.admit(1));
    let mut default = InlineBudget::new(1 << 20);
    assert_eq!((0..20).filter(|_| default.admit(1 << 20)).count(), 8, "8 MiB of 1 MiB values");
}
