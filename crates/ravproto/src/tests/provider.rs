//! The provider's side of the wire: connect refusals, assignment and result frames, bulk data
//! through ravftp, and the checkpoints and fitted models that travel as bytes.

use super::check;
use crate::messages::*;
use crate::ops::{Operation, ReduceParams};
use crate::tensor::{TensorData, Value};
use crate::{GraphId, OpId};
use expect_test::expect;

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
        &JoinRequest { benchmark, graph: Some(GraphId(3)), groups: vec![] },
        expect![[r#"{"benchmark":{"ram_bytes":1073741824,"cores":4,"gpu":true,"speed_score":99.5},"graph":3}"#]],
    );
    check(&Withdraw { assignment: 7 }, expect![[r#"{"assignment":7}"#]]);
    check(
        &Rejected { reason: "no gpu".into(), code: RejectionCode::Requirements },
        expect![[r#"{"reason":"no gpu","code":"requirements"}"#]],
    );
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
