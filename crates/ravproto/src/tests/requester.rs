//! The requester's side of the wire: statuses, graph, op chunk, run, progress, error,
//! readiness, pushed events and federated messages, frozen as JSON.

use super::check;
use crate::messages::*;
use crate::ops::{Operation, ReduceParams};
use crate::status::*;
use crate::tensor::{TensorData, Value};
use crate::{GraphId, OpId};
use expect_test::expect;
use std::collections::BTreeMap;

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
            min_stake: 0,
            verify: Default::default(),
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
fn requester_events() {
    use crate::requester::{OpFailedNotice, RequesterAuth, Subscribe};
    check(
        &RequesterAuth { token: "t".into(), protocol_version: crate::PROTOCOL_VERSION },
        expect![[r#"{"token":"t","protocol_version":5}"#]],
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
fn job_event_push() {
    use crate::jobs::{Blob, JobEvent, JobId, JobState, SliceCounts};
    use crate::requester::{JobEvents, JobSubscribe};
    check(&JobSubscribe { job: JobId(4), after: 120 }, expect![[r#"{"job":4,"after":120}"#]]);
    let subscribe: JobSubscribe = serde_json::from_str(r#"{"job":4}"#).unwrap();
    assert_eq!(subscribe.after, 0, "a subscription without a cursor starts at the first event");
    let counts = SliceCounts { total: 2, distributed: 0, computed: 2, failed: 0 };
    check(
        &JobEvents {
            job: JobId(4),
            events: vec![
                JobEvent::Result { slice: 1, value: Blob(vec![9]) },
                JobEvent::Complete { state: JobState::Complete, counts },
            ],
            next: 2,
        },
        expect![[
            r#"{"job":4,"events":[{"type":"result","slice":1,"value":"CQ=="},{"type":"complete","state":"complete","counts":{"total":2,"distributed":0,"computed":2,"failed":0}}],"next":2}"#
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
