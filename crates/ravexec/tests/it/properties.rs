//! Behaviour that golden values cannot pin: seeded randomness, typed errors for bad input,
//! and algebraic identities over random shapes.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use ravexec::{ErrorKind, Tensor, TensorValue, execute};
use ravproto::ops::{Distribution, NoParams, RandomParams, RandomUniformParams, ReduceParams};
use ravproto::{OpKind, Operation};

fn run(operation: Operation, inputs: Vec<Tensor>) -> Result<Tensor, ravexec::ExecError> {
    let inputs: Vec<TensorValue> = inputs.into_iter().map(TensorValue::Tensor).collect();
    execute(&operation, &inputs).map(|v| v.as_tensor().expect("tensor result").clone())
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_f64_array().iter().copied().collect()
}

#[test]
fn seeded_random_is_reproducible_and_in_range() {
    let params =
        RandomParams { shape: vec![1000], seed: Some(7), distribution: Distribution::Uniform { low: -2.0, high: 3.0 } };
    let a = run(Operation::Random(params.clone()), vec![]).unwrap();
    let b = run(Operation::Random(params), vec![]).unwrap();
    assert_eq!(a, b, "same seed, same values");
    let values = f64s(&a);
    assert!(values.iter().all(|&v| (-2.0..3.0).contains(&v)));
    let mean = values.iter().sum::<f64>() / 1000.0;
    assert!((mean - 0.5).abs() < 0.2, "uniform mean near the middle: {mean}");
    let other = run(Operation::Random(RandomParams { shape: vec![1000], seed: Some(8), ..Default::default() }), vec![])
        .unwrap();
    assert_ne!(f64s(&other)[..10], values[..10]);

    let normal =
        RandomParams { shape: vec![20_000], seed: Some(1), distribution: Distribution::Normal { mean: 5.0, std: 2.0 } };
    let values = f64s(&run(Operation::Random(normal), vec![]).unwrap());
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    assert!((mean - 5.0).abs() < 0.1 && (var.sqrt() - 2.0).abs() < 0.1, "mean {mean}, std {}", var.sqrt());
}

#[test]
fn random_uniform_uses_its_inputs_as_bounds() {
    let op = Operation::RandomUniform(RandomUniformParams { size: vec![2, 50], seed: Some(3) });
    let t = run(op, vec![Tensor::scalar_f64(10.0), Tensor::scalar_f64(11.0)]).unwrap();
    assert_eq!(t.shape(), &[2, 50]);
    assert!(f64s(&t).iter().all(|&v| (10.0..11.0).contains(&v)));
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_op() {
    let err = run(Operation::Add(Default::default()), vec![Tensor::scalar_f64(1.0)]).unwrap_err();
    assert_eq!(err.op, OpKind::Add);
    assert!(matches!(err.kind, ErrorKind::Arity { got: 1, .. }));
    assert_eq!(err.to_string(), "op `add`: expected 2 inputs, got 1");

    let m = Tensor::F64(ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, 2.0, 4.0]).unwrap());
    let err = run(Operation::Inv(NoParams {}), vec![m.clone()]).unwrap_err();
    assert_eq!(err.to_string(), "op `inv`: singular matrix");

    let err = run(Operation::Sum(ReduceParams::axis(5)), vec![m.clone()]).unwrap_err();
    assert_eq!(err.to_string(), "op `sum`: axis 5 is out of bounds for array of dimension 2");

    let list = TensorValue::List(vec![]);
    let err = execute(&Operation::Neg(NoParams {}), &[list]).unwrap_err();
    assert_eq!(err.to_string(), "op `neg`: input 0 must be a tensor, got a list");

    let err = run(Operation::ForwardPassDropout(serde_json::from_str("{}").unwrap()), vec![m]).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unsupported(_)), "{err}");
}

fn array(shape: Vec<usize>, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let values = (0..n).map(|i| ((i as u64 * 2_654_435_761 + seed) % 1000) as f64 / 100.0 - 5.0).collect();
    Tensor::F64(ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap())
}

proptest! {
    #[test]
    fn sum_over_all_axes_equals_sum_of_axis_sums(shape in prop::collection::vec(1usize..5, 1..4), seed in 0u64..1000) {
        let a = array(shape.clone(), seed);
        let total = f64s(&run(Operation::Sum(ReduceParams::all()), vec![a.clone()]).unwrap())[0];
        let partial = run(Operation::Sum(ReduceParams::axis(0)), vec![a]).unwrap();
        let again = f64s(&run(Operation::Sum(ReduceParams::all()), vec![partial]).unwrap())[0];
        prop_assert!((total - again).abs() < 1e-9 * (1.0 + total.abs()));
    }

    #[test]
    fn a_minus_a_is_zero_and_a_times_one_is_a(shape in prop::collection::vec(0usize..5, 0..4), seed in 0u64..1000) {
        let a = array(shape, seed);
        let zero = run(Operation::Sub(NoParams {}), vec![a.clone(), a.clone()]).unwrap();
        prop_assert!(f64s(&zero).iter().all(|&v| v == 0.0));
        let same = run(Operation::Mul(NoParams {}), vec![a.clone(), Tensor::scalar_f64(1.0)]).unwrap();
        prop_assert_eq!(same, a);
    }

    #[test]
    fn matmul_by_identity_is_identity(n in 1usize..6, m in 1usize..6, seed in 0u64..1000) {
        let a = array(vec![n, m], seed);
        let eye = Tensor::F64(ndarray::Array2::eye(m).into_dyn());
        prop_assert_eq!(run(Operation::Matmul(NoParams {}), vec![a.clone(), eye]).unwrap(), a);
    }
}

/// Hostile sizes and positions get typed errors, never a panic or an aborting allocation.
#[test]
fn hostile_inputs_are_refused_not_crashing() {
    let op = |json: &str| -> Operation { serde_json::from_str(json).expect("valid operation") };
    let small = Tensor::F64(ArrayD::zeros(IxDyn(&[2, 3])));
    let column = Tensor::F64(ArrayD::zeros(IxDyn(&[1 << 20, 1])));
    let row = Tensor::F64(ArrayD::zeros(IxDyn(&[1, 1 << 20])));
    let huge = i64::MAX;
    let cases: Vec<(Operation, Vec<Tensor>)> = vec![
        (op(r#"{"operator":"add"}"#), vec![column.clone(), row.clone()]),
        (op(&format!(r#"{{"operator":"reshape","params":{{"shape":[{huge},{huge},-1]}}}}"#)), vec![small.clone()]),
        (op(r#"{"operator":"zeros"}"#), vec![Tensor::I64(ndarray::arr1(&[1 << 40, 1 << 40]).into_dyn())]),
        (op(r#"{"operator":"tile"}"#), vec![small.clone(), Tensor::I64(ndarray::arr1(&[1 << 40, 1 << 40]).into_dyn())]),
        (op(r#"{"operator":"one_hot_encoding"}"#), vec![Tensor::scalar_i64(1), Tensor::scalar_i64(1 << 40)]),
        (op(r#"{"operator":"bincount"}"#), vec![Tensor::I64(ndarray::arr1(&[1 << 50]).into_dyn())]),
        (
            op(
                r#"{"operator":"pad","params":{"sequence":[[4611686018427387904,4611686018427387904]],"mode":"constant"}}"#,
            ),
            vec![small.clone()],
        ),
        (op(r#"{"operator":"repeat","params":{"repeats":4611686018427387904}}"#), vec![small.clone()]),
        (op(r#"{"operator":"random","params":{"shape":[4294967296, 4294967296]}}"#), vec![]),
        (
            op(r#"{"operator":"arange","params":{"step":1e-300}}"#),
            vec![Tensor::scalar_f64(0.0), Tensor::scalar_f64(1.0)],
        ),
    ];
    for (operation, inputs) in cases {
        let kind = operation.kind();
        let inputs: Vec<TensorValue> = inputs.into_iter().map(TensorValue::Tensor).collect();
        assert!(execute(&operation, &inputs).is_err(), "{kind} accepted a hostile input");
    }
    // Positions near i64::MAX saturate instead of overflowing.
    let sliced = run(
        op(&format!(r#"{{"operator":"slice","params":{{"begin":[{huge}],"size":[{huge}]}}}}"#)),
        vec![small.clone()],
    );
    assert_eq!(sliced.unwrap().shape(), &[0, 3]);
    let stepped =
        run(op(&format!(r#"{{"operator":"index","params":{{"indices":"[::{huge}]"}}}}"#)), vec![small.clone()]);
    assert_eq!(stepped.unwrap().shape(), &[1, 3]);
    // dot with an empty contracted axis gives zeros of the right shape.
    let a = Tensor::F64(ArrayD::zeros(IxDyn(&[2, 3, 0])));
    let b = Tensor::F64(ArrayD::zeros(IxDyn(&[5, 0, 2])));
    assert_eq!(run(op(r#"{"operator":"dot"}"#), vec![a, b]).unwrap().shape(), &[2, 3, 5, 2]);
}
