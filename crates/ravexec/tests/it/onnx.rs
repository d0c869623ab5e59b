//! `forward_pass` (group H) through `ravexec::execute`: the committed ONNX models made by
//! `scripts/gen_onnx_models.py`, against NumPy's outputs in `fixtures/onnx_reference.json`.

use ndarray::{ArrayD, IxDyn};
use ravexec::{ErrorKind, Tensor, TensorValue, execute};
use ravproto::Operation;
use serde_json::{Value, json};

const TINY_MLP: &[u8] = include_bytes!("../../../../examples/data/tiny_mlp.onnx");
const TWO_OUTPUTS: &[u8] = include_bytes!("fixtures/two_outputs.onnx");

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/onnx_reference.json")).expect("valid fixture")
}

fn array(v: &Value) -> ArrayD<f64> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
    let data: Vec<f64> = serde_json::from_value(v["data"].clone()).unwrap();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn model(bytes: &[u8]) -> TensorValue {
    TensorValue::Tensor(Tensor::U8(ArrayD::from_shape_vec(IxDyn(&[bytes.len()]), bytes.to_vec()).unwrap()))
}

fn forward_pass(params: Value) -> Operation {
    serde_json::from_value(json!({"operator": "forward_pass", "params": params})).expect("valid op")
}

fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (g, w) in got.iter().zip(want) {
        // float32 inference against NumPy's float32: a few ulps apart.
        assert!((g - w).abs() <= 1e-6 + 1e-5 * w.abs(), "{what}: {g} vs {w}");
    }
}

#[test]
fn a_model_runs_on_batches_of_any_size_and_matches_numpy() {
    let reference = fixture();
    let op = forward_pass(json!({"model": 0, "training": false}));
    for case in reference["tiny_mlp"].as_array().unwrap() {
        let x = array(&case["x"]);
        // An f64 batch feeds the float model; the output is the model's float32.
        let out = execute(&op, &[TensorValue::Tensor(Tensor::F64(x.clone())), model(TINY_MLP)]).unwrap();
        let Some(Tensor::F32(y)) = out.as_tensor() else { panic!("expected float32 output, got {out:?}") };
        let want = array(&case["y"]);
        assert_close(&format!("tiny_mlp on {:?}", x.shape()), &y.mapv(f64::from), &want);
        // Rows are probabilities.
        for row in y.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
    }
}

#[test]
fn several_outputs_come_back_as_a_list_with_their_types() {
    let case = &fixture()["two_outputs"];
    let x = array(&case["x"]);
    let out = execute(&forward_pass(json!({"model": 5})), &[TensorValue::Tensor(Tensor::F64(x)), model(TWO_OUTPUTS)])
        .unwrap();
    let TensorValue::List(items) = out else { panic!("expected a list, got {out:?}") };
    let [TensorValue::Tensor(Tensor::F32(relu)), TensorValue::Tensor(Tensor::I64(label))] = items.as_slice() else {
        panic!("expected [float32, int64], got {items:?}")
    };
    assert_close("relu", &relu.mapv(f64::from), &array(&case["y"][0]));
    assert_eq!(label.mapv(|v| v as f64), array(&case["y"][1]));
}

#[test]
fn bad_models_and_inputs_are_typed_errors() {
    let x = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2, 4]))));
    let op = forward_pass(json!({"model": 0}));
    // Wrong width for the model's first layer.
    let narrow = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2, 5]))));
    let error = execute(&op, &[narrow, model(TINY_MLP)]).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Model(_)), "{error}");
    // Truncated bytes.
    let error = execute(&op, &[x.clone(), model(&TINY_MLP[..TINY_MLP.len() / 2])]).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Model(_)), "{error}");
    // Training a whole model is out of scope, and says so.
    let train = forward_pass(json!({"model": 0, "optimizer": {"name": "sgd", "lr": 0.1}}));
    let error = execute(&train, &[x.clone(), model(TINY_MLP)]).unwrap_err();
    assert!(matches!(&error.kind, ErrorKind::Unsupported(m) if m.contains("out of scope")), "{error}");
    // Without `model` the op has nothing to run.
    let error = execute(&forward_pass(json!({"previous_forward_pass": 3})), std::slice::from_ref(&x)).unwrap_err();
    assert!(error.to_string().contains("needs `model`"), "{error}");
    // The model's value is required when `model` is named.
    assert!(matches!(execute(&op, &[x]).unwrap_err().kind, ErrorKind::Arity { .. }));
}

/// A model's memory is bounded by its plan for the batch's shape: the bound covers what the
/// run makes and grows with the batch, and a batch over a provider's budget is refused before
/// it runs, naming the op and the size.
#[test]
fn a_models_memory_is_bounded_before_it_runs() {
    use ravexec::budget::op_bytes;
    // `model` names the op holding the ONNX bytes (op 1 of `run_within`).
    let op = forward_pass(json!({"model": 1}));
    let batch = |rows: usize| Tensor::F64(ArrayD::from_elem(IxDyn(&[rows, 4]), 0.5));
    let bound = |rows: usize| op_bytes(&op, &[TensorValue::Tensor(batch(rows)), model(TINY_MLP)]);
    for rows in [1, 10, 1000] {
        let out = execute(&op, &[TensorValue::Tensor(batch(rows)), model(TINY_MLP)]).unwrap();
        let made = out.as_tensor().unwrap().len() as u128 * 4;
        // The run's output and the f64 batch it was given are within the bound.
        assert!(bound(rows) >= made + (rows * 4 * 8) as u128, "rows {rows}: {} < {made}", bound(rows));
    }
    assert!(bound(1000) > 10 * bound(10), "the bound grows with the batch: {} vs {}", bound(1000), bound(10));
    let budget = ravexec::MemoryBudget::bytes(bound(10) as u64 + 1);
    assert!(run_within(&op, batch(10), budget).is_ok(), "a batch of 10 fits");
    let refused = run_within(&op, batch(100_000), budget).unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, ravexec::run::RunError::OverBudget { .. }), "{message}");
    assert!(message.contains("(`forward_pass`) needs up to"), "{message}");
}

/// Runs `operation` on `x` as a provider does: the batch (op 0) its input, the model (op 1)
/// named by its params, within `budget`.
fn run_within(operation: &Operation, x: Tensor, budget: ravexec::MemoryBudget) -> Result<(), ravexec::run::RunError> {
    use ravexec::run::{PlannedOp, run_ops, store_for};
    use ravproto::OpId;
    let TensorValue::Tensor(onnx) = model(TINY_MLP) else { unreachable!() };
    let lin: Operation = serde_json::from_value(json!({"operator": "lin", "params": {"dtype": "f64"}})).unwrap();
    let inputs = [OpId(0)];
    let planned = [
        PlannedOp { id: OpId(0), operation: &lin, inputs: &[], constant: Some(&x) },
        PlannedOp { id: OpId(1), operation: &lin, inputs: &[], constant: Some(&onnx) },
        PlannedOp { id: OpId(2), operation, inputs: &inputs, constant: None },
    ];
    let mut store = store_for(&planned, [OpId(2)]);
    run_ops(&planned, &mut store, &mut ravexec::train::Session::new(), budget)
}
