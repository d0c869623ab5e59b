//! `ravexec::infer` against what the kernels make, for the shape ops, the products and the
//! reductions with their params (the element-wise ops and plain reductions are checked in
//! `conformance.rs` over random shapes and dtypes), and `None` where the result depends on
//! values.

use ndarray::{ArrayD, IxDyn};
use ravexec::infer::{TensorMeta, infer};
use ravexec::{Tensor, TensorValue, execute};
use ravproto::{DType, Operation};
use serde_json::{Value, json};

fn op(operator: &str, params: Value) -> Operation {
    serde_json::from_value(json!({"operator": operator, "params": params})).expect("valid op")
}

fn filled(shape: &[usize], dtype: DType) -> Tensor {
    let len = shape.iter().product::<usize>();
    let values = (0..len).map(|i| (i % 5) as f64 + 1.0).collect();
    Tensor::F64(ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()).cast(dtype)
}

#[test]
fn inferred_dtypes_and_shapes_are_the_kernels() {
    use DType::*;
    let cases: Vec<(Operation, Vec<Tensor>)> = vec![
        (op("matmul", json!({})), vec![filled(&[3, 4], F64), filled(&[4, 2], I64)]),
        (op("matmul", json!({})), vec![filled(&[4], I64), filled(&[2, 4, 5], I64)]),
        (op("matmul", json!({})), vec![filled(&[2, 1, 3, 4], F32), filled(&[4, 5], F32)]),
        (op("matmul", json!({})), vec![filled(&[3, 4], Bool), filled(&[4], Bool)]),
        (op("dot", json!({})), vec![filled(&[2, 3, 4], F64), filled(&[5, 4, 6], F64)]),
        (op("dot", json!({})), vec![filled(&[], I64), filled(&[4, 6], F64)]),
        (op("dot", json!({})), vec![filled(&[4], I64), filled(&[4], I64)]),
        (op("dot", json!({})), vec![filled(&[3, 4], U8), filled(&[4], U8)]),
        (op("inv", json!({})), vec![Tensor::F64(ndarray::arr2(&[[2.0, 1.0], [1.0, 3.0]]).into_dyn())]),
        (op("transpose", json!({})), vec![filled(&[2, 3, 4], I64)]),
        (op("transpose", json!({"axes": [1, -1, 0]})), vec![filled(&[2, 3, 4], U8)]),
        (op("reshape", json!({"shape": [4, -1]})), vec![filled(&[2, 3, 4], F32)]),
        (op("reshape", json!({"shape": [6, 4]})), vec![filled(&[2, 3, 4], F32)]),
        (op("flatten", json!({})), vec![filled(&[2, 3], Bool)]),
        (op("ravel", json!({"order": "F"})), vec![filled(&[2, 3], I64)]),
        (op("squeeze", json!({})), vec![filled(&[1, 3, 1, 2], F64)]),
        (op("squeeze", json!({"axis": -2})), vec![filled(&[1, 3, 1, 2], F64)]),
        (op("expand_dims", json!({"axis": [0, -1]})), vec![filled(&[3, 2], F64)]),
        (op("concat", json!({"axis": 1})), vec![filled(&[2, 3], I64), filled(&[2, 5], F32)]),
        (op("stack", json!({"axis": -1})), vec![filled(&[2, 3], U8), filled(&[2, 3], U8), filled(&[2, 3], I64)]),
        (op("reverse", json!({"axis": 0})), vec![filled(&[4, 2], I64)]),
        (op("sort", json!({"axis": 0})), vec![filled(&[4, 2], F32)]),
        (op("argmax", json!({"axis": 1, "keepdims": true})), vec![filled(&[3, 4], F64)]),
        (op("argmin", json!({})), vec![filled(&[3, 4], I64)]),
        (op("variance", json!({"axis": [0, 2], "ddof": 1})), vec![filled(&[3, 4, 2], I64)]),
        (op("std", json!({"keepdims": true})), vec![filled(&[3, 4], F32)]),
        (op("median", json!({"axis": -1})), vec![filled(&[3, 4], U8)]),
        (op("mean", json!({"axis": 0})), vec![filled(&[3, 4], Bool)]),
        (op("clip", json!({"lower_limit": 0.5})), vec![filled(&[3], I64)]),
        (op("where", json!({})), vec![filled(&[3, 1], Bool), filled(&[4], I64), filled(&[], F32)]),
        (op("size", json!({})), vec![filled(&[3, 4], F32)]),
        (op("shape", json!({})), vec![filled(&[3, 4], F32)]),
        (op("shape", json!({"index": -1})), vec![filled(&[3, 4], F32)]),
        (op("random", json!({"shape": [3, 2]})), vec![]),
        (op("cube_root", json!({})), vec![filled(&[2], I64)]),
        (op("logical_not", json!({})), vec![filled(&[2], F32)]),
    ];
    for (operation, inputs) in cases {
        let metas: Vec<Option<TensorMeta>> = inputs.iter().map(|t| Some(TensorMeta::of(t))).collect();
        let values: Vec<TensorValue> = inputs.into_iter().map(TensorValue::Tensor).collect();
        let made = execute(&operation, &values).unwrap_or_else(|e| panic!("{operation:?}: {e}"));
        let made = TensorMeta::of(made.as_tensor().expect("a tensor"));
        assert_eq!(infer(&operation, &metas), Some(made), "{operation:?}");
    }
}

#[test]
fn value_dependent_results_and_unknown_inputs_are_not_guessed() {
    let shape = Some(TensorMeta { dtype: DType::I64, shape: vec![2] });
    assert_eq!(infer(&op("zeros", json!({"dtype": "f64"})), std::slice::from_ref(&shape)), None);
    assert_eq!(infer(&op("unique", json!({})), std::slice::from_ref(&shape)), None);
    assert_eq!(infer(&op("neg", json!({})), &[None]), None, "an input of unknown shape");
    // Inputs the kernel refuses get no shape either.
    let (a, b) =
        (TensorMeta { dtype: DType::F64, shape: vec![2, 3] }, TensorMeta { dtype: DType::F64, shape: vec![2, 3] });
    assert_eq!(infer(&op("matmul", json!({})), &[Some(a.clone()), Some(b)]), None);
    assert_eq!(infer(&op("reshape", json!({"shape": [4, -1]})), &[Some(a)]), None);
}
