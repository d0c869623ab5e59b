//! The memory bound of every op that can ask for more than its inputs: never below what the
//! kernel really makes (checked on small inputs against the real result), and big requests
//! refused by `run_ops` before anything is allocated, naming the op and the size.

use ndarray::{ArrayD, IxDyn};
use ravexec::budget::op_bytes;
use ravexec::run::{PlannedOp, RunError, run_ops, store_for};
use ravexec::train::Session;
use ravexec::{MemoryBudget, Tensor, TensorValue, execute};
use ravproto::{OpId, OpKind, Operation};
use serde_json::{Value, json};

fn op(operator: &str, params: Value) -> Operation {
    serde_json::from_value(json!({"operator": operator, "params": params})).expect("valid op")
}

fn f64s(shape: &[usize]) -> Tensor {
    let len = shape.iter().product::<usize>();
    Tensor::F64(ArrayD::from_shape_vec(IxDyn(shape), (0..len).map(|i| i as f64 % 7.0).collect()).unwrap())
}

fn ints(values: &[i64]) -> Tensor {
    Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap())
}

fn scalar(value: i64) -> Tensor {
    Tensor::scalar_i64(value)
}

fn result_bytes(value: &TensorValue) -> u128 {
    match value {
        TensorValue::Tensor(t) => (t.len() * t.dtype().size()) as u128,
        TensorValue::List(items) => items.iter().map(result_bytes).sum(),
    }
}

/// Ops that can grow past their inputs, on small inputs.
fn amplifiers() -> Vec<(Operation, Vec<Tensor>)> {
    vec![
        (op("add", json!({})), vec![f64s(&[30, 1]), f64s(&[1, 40])]),
        (op("greater", json!({})), vec![f64s(&[30, 1]), f64s(&[1, 40])]),
        (op("where", json!({})), vec![f64s(&[5, 1, 1]), f64s(&[1, 6, 1]), f64s(&[1, 1, 7])]),
        (op("matmul", json!({})), vec![f64s(&[20, 1]), f64s(&[1, 30])]),
        (op("matmul", json!({})), vec![f64s(&[3, 1, 4, 2]), f64s(&[5, 2, 6])]),
        (op("dot", json!({})), vec![f64s(&[2, 3, 4]), f64s(&[5, 4, 6])]),
        (op("dot", json!({})), vec![f64s(&[]), f64s(&[4, 6])]),
        (op("tile", json!({})), vec![f64s(&[2, 3]), ints(&[4, 5, 6])]),
        (op("repeat", json!({"repeats": 9})), vec![f64s(&[4, 3])]),
        (op("repeat", json!({"repeats": [1, 8, 2], "axis": 1})), vec![f64s(&[4, 3])]),
        (op("arange", json!({"step": 0.5})), vec![scalar(-3), scalar(200)]),
        (op("zeros", json!({"dtype": "f64"})), vec![ints(&[7, 11, 13])]),
        (op("random", json!({"shape": [17, 19], "seed": 1})), vec![]),
        (op("random_uniform", json!({"size": [23, 2], "seed": 1})), vec![f64s(&[]), scalar(4)]),
        (op("pad", json!({"sequence": [[3, 9]], "mode": "constant"})), vec![f64s(&[4, 5])]),
        (op("one_hot_encoding", json!({})), vec![ints(&[0, 3, 5, 1]), scalar(40)]),
        (op("bincount", json!({"minlength": 3})), vec![ints(&[0, 1, 500])]),
        (op("gather", json!({})), vec![f64s(&[6, 5]), ints(&[0, 5, 5, 1, 2, 2, 2, 2])]),
        (op("index", json!({"indices": "[[[0], [1], [2]], [[0, 1, 2, 0]]]"})), vec![f64s(&[3, 3, 8])]),
        (op("index", json!({"indices": "[None, ..., 1:3]"})), vec![f64s(&[4, 5, 6])]),
        (op("percentile", json!({"axis": 0})), vec![f64s(&[10, 4]), ints(&[5, 25, 50, 75, 95])]),
        (
            op("foreach", json!({"operation": {"operator": "zeros", "params": {"dtype": "f64"}}})),
            vec![Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![4, 5, 4, 5, 4, 5]).unwrap())],
        ),
        (op("kmeans", json!({"n_clusters": 3})), vec![f64s(&[12, 2])]),
        (op("svm_svc", json!({})), vec![f64s(&[12, 2]), ints(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1])]),
    ]
}

#[test]
fn the_bound_is_never_below_what_the_kernel_makes() {
    for (operation, inputs) in amplifiers() {
        let inputs: Vec<TensorValue> = inputs.into_iter().map(TensorValue::Tensor).collect();
        let value = execute(&operation, &inputs).unwrap_or_else(|e| panic!("{operation:?}: {e}"));
        let (bound, made) = (op_bytes(&operation, &inputs), result_bytes(&value));
        assert!(bound >= made, "{}: bound {bound} below the {made} bytes made", operation.kind());
        // Not so loose that honest work is refused: within a small factor of the result
        // (the Gram matrix and the identity matrix are the kernels' own working memory).
        let inputs_bytes: u128 = inputs.iter().map(result_bytes).sum();
        let slack = match operation.kind() {
            OpKind::OneHotEncoding | OpKind::SvmSvc | OpKind::Kmeans => 100,
            _ => 4,
        };
        assert!(
            bound <= made.max(inputs_bytes) * slack,
            "{}: bound {bound} against {made} bytes made",
            operation.kind()
        );
    }
}

/// Runs one op with `inputs` stored as constants before it, within `budget`.
fn run_within(operation: &Operation, inputs: Vec<Tensor>, budget: MemoryBudget) -> Result<(), RunError> {
    let ids: Vec<OpId> = (0..inputs.len() as u64).map(OpId).collect();
    let lin = op("lin", json!({"dtype": "f64"}));
    let mut planned: Vec<PlannedOp<'_>> = inputs
        .iter()
        .zip(&ids)
        .map(|(value, &id)| PlannedOp { id, operation: &lin, inputs: &[], constant: Some(value) })
        .collect();
    let target = OpId(100);
    planned.push(PlannedOp { id: target, operation, inputs: &ids, constant: None });
    let mut store = store_for(&planned, [target]);
    run_ops(&planned, &mut store, &mut Session::new(), budget)
}

#[test]
fn poison_pills_are_refused_before_they_allocate() {
    let budget = MemoryBudget::bytes(1 << 30);
    let pills = [
        // The issue's: 2^31 elements, 16 GiB on every provider that received it.
        (op("random", json!({"shape": [1u64 << 31]})), vec![], 1u128 << 34),
        (op("zeros", json!({"dtype": "f64"})), vec![ints(&[1 << 16, 1 << 15])], 1 << 34),
        (op("tile", json!({})), vec![f64s(&[1000]), ints(&[1 << 20])], 8_000 << 20),
        (op("add", json!({})), vec![f64s(&[50_000, 1]), f64s(&[1, 50_000])], 20_000_000_000),
        (op("one_hot_encoding", json!({})), vec![ints(&[0]), scalar(100_000)], 80_000_800_000),
        (op("matmul", json!({})), vec![f64s(&[100_000, 1]), f64s(&[1, 100_000])], 80_000_000_000),
        (op("arange", json!({"step": 1})), vec![scalar(0), scalar(1 << 31)], 1 << 34),
    ];
    for (operation, inputs, needed_bytes) in pills {
        match run_within(&operation, inputs, budget) {
            Err(RunError::OverBudget { op, operator, needed, budget }) => {
                assert_eq!(op, OpId(100));
                assert_eq!(operator, operation.kind());
                assert_eq!(needed, needed_bytes, "{operator}");
                assert_eq!(budget, 1 << 30);
                let message = RunError::OverBudget { op, operator, needed, budget }.to_string();
                assert!(message.contains(operator.short_name()) && message.contains(&needed.to_string()), "{message}");
            }
            other => panic!("{}: {other:?}", operation.kind()),
        }
    }
    // Within the budget the same ops run.
    let small = run_within(&op("random", json!({"shape": [1000]})), vec![], budget);
    assert_eq!(small, Ok(()));
}
