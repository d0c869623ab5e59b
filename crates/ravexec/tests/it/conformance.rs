//! The element-wise and reduction kernels against the independent reference of `reference.rs`,
//! over random shapes (0-d and empty ones included), broadcasting pairs (and pairs that cannot
//! broadcast), bool / int64 / float64 inputs with NaN, infinities, signed zeros and the int64
//! extremes; and the dtype and shape `ravexec::infer` expects of each result against the one
//! the kernel made. The case count is bounded so CI stays quick; `PROPTEST_CASES` raises it locally.

use crate::reference::{self, Array, Data, Expected};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use ravexec::infer::{TensorMeta, infer};
use ravexec::{Tensor, TensorValue, execute};
use ravproto::Operation;
use ravproto::ops::{Axes, ReduceParams};

/// 2,048 cases per property in CI (a tenth of a second in release); `PROPTEST_CASES` sets another count.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2048)
}

fn operation(name: &str) -> Operation {
    serde_json::from_value(serde_json::json!({ "operator": name })).expect("a catalogue op")
}

fn reduction(name: &str, axis: Option<Vec<i64>>, keepdims: bool) -> Operation {
    let params = ReduceParams { axis: axis.map(Axes::Many), keepdims };
    match name {
        "sum" => Operation::Sum(params),
        "prod" => Operation::Prod(params),
        "min" => Operation::Min(params),
        "max" => Operation::Max(params),
        "mean" => Operation::Mean(params),
        _ => unreachable!("{name}"),
    }
}

fn tensor(a: &Array) -> Tensor {
    let shape = IxDyn(&a.shape);
    match &a.data {
        Data::Bool(v) => Tensor::Bool(ArrayD::from_shape_vec(shape, v.clone()).expect("shape fits")),
        Data::I64(v) => Tensor::I64(ArrayD::from_shape_vec(shape, v.clone()).expect("shape fits")),
        Data::F64(v) => Tensor::F64(ArrayD::from_shape_vec(shape, v.clone()).expect("shape fits")),
    }
}

fn array(t: &Tensor) -> Result<Array, String> {
    let shape = t.shape().to_vec();
    let data = match t {
        Tensor::Bool(x) => Data::Bool(x.iter().copied().collect()),
        Tensor::I64(x) => Data::I64(x.iter().copied().collect()),
        Tensor::F64(x) => Data::F64(x.iter().copied().collect()),
        other => return Err(format!("unexpected dtype {:?}", other.dtype())),
    };
    Ok(Array { shape, data })
}

/// How near a float result must be to the reference's.
#[derive(Clone, Copy)]
enum Near {
    /// Equal (so -0 = 0), or both NaN: one IEEE operation, or sums of eighths, which are exact.
    Exact,
    /// Also within a relative 1e-12: a product, rounded along the way.
    Relative,
    /// Also within this distance: a mean of int64s, which round to f64 in another order.
    Within(f64),
}

fn same_float(x: f64, y: f64, near: Near) -> bool {
    let close = match near {
        Near::Exact => false,
        Near::Relative => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        Near::Within(distance) => (x - y).abs() <= distance,
    };
    (x.is_nan() && y.is_nan()) || x == y || (x.is_finite() && close)
}

/// Runs `operation` in ravexec and checks it against the reference's answer.
fn check(operation: Operation, inputs: &[&Array], expected: Expected, near: Near) -> Result<(), TestCaseError> {
    let name = operation.kind();
    let inputs: Vec<TensorValue> = inputs.iter().map(|a| TensorValue::Tensor(tensor(a))).collect();
    let got = execute(&operation, &inputs);
    match (expected, got) {
        (Err(why), Ok(got)) => Err(TestCaseError::fail(format!("{name}: expected an error ({why}), got {got:?}"))),
        (Ok(want), Err(err)) => Err(TestCaseError::fail(format!("{name}: expected {want:?}, got the error {err}"))),
        (Err(_), Err(_)) => Ok(()),
        (Ok(want), Ok(got)) => {
            // What the server expects of a provider's answer is what the kernel makes.
            let metas: Vec<_> = inputs.iter().map(|v| v.as_tensor().map(TensorMeta::of)).collect();
            let made = TensorMeta::of(got.as_tensor().expect("a tensor"));
            prop_assert_eq!(infer(&operation, &metas), Some(made), "{} inferred", name);
            let got = array(got.as_tensor().expect("a tensor")).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&got.shape, &want.shape, "{} shape", name);
            let agree = match (&got.data, &want.data) {
                (Data::F64(g), Data::F64(w)) => g.iter().zip(w).all(|(&x, &y)| same_float(x, y, near)),
                (g, w) => g == w,
            };
            prop_assert!(agree, "{}: got {:?}, the reference says {:?}", name, got.data, want.data);
            Ok(())
        }
    }
}

/// Lengths 0 to 3, 0 rarely (empty arrays), 1 often (broadcasting).
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 3 => Just(1usize), 3 => Just(2usize), 3 => Just(3usize)]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(length(), 0..=4)
}

/// A shape that broadcasts against `shape` (a suffix with some lengths made 1), or now and
/// then any shape (most of which do not broadcast).
fn partner(shape: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let n = shape.len();
    let fitting = (0..=n, prop::collection::vec(any::<bool>(), n)).prop_map(move |(drop, ones)| {
        shape[drop..].iter().zip(&ones[drop..]).map(|(&d, &one)| if one { 1 } else { d }).collect()
    });
    prop_oneof![6 => fitting.boxed(), 1 => self::shape().boxed()]
}

/// Floats that sum exactly in any order (eighths up to 2^17), with NaN, both infinities and
/// both zeros; `wild` adds any f64 at all (for element-wise ops, where order cannot matter).
fn float(wild: bool) -> BoxedStrategy<f64> {
    let tame = prop_oneof![
        12 => (-(1i64 << 20)..=(1 << 20)).prop_map(|k| k as f64 / 8.0),
        4 => (-16i64..=16).prop_map(|k| k as f64 / 8.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
    ];
    if wild { prop_oneof![4 => tame, 1 => any::<f64>()].boxed() } else { tame.boxed() }
}

/// Int64s: small ones and the extremes, where NumPy's arithmetic wraps.
fn int() -> impl Strategy<Value = i64> {
    prop_oneof![6 => -100i64..100, 1 => Just(i64::MAX), 1 => Just(i64::MIN), 1 => Just(i64::MIN + 1), 1 => any::<i64>()]
}

#[derive(Clone, Copy, Debug)]
enum DType {
    Bool,
    I64,
    F64,
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::Bool), Just(DType::I64), Just(DType::F64)]
}

fn filled(shape: Vec<usize>, dtype: DType, wild: bool) -> BoxedStrategy<Array> {
    let n: usize = shape.iter().product();
    match dtype {
        DType::Bool => prop::collection::vec(any::<bool>(), n).prop_map(Data::Bool).boxed(),
        DType::I64 => prop::collection::vec(int(), n).prop_map(Data::I64).boxed(),
        DType::F64 => prop::collection::vec(float(wild), n).prop_map(Data::F64).boxed(),
    }
    .prop_map(move |data| Array { shape: shape.clone(), data })
    .boxed()
}

/// Two arrays of any dtypes whose shapes mostly broadcast.
fn pair(wild: bool) -> impl Strategy<Value = (Array, Array)> {
    (shape(), dtype(), dtype())
        .prop_flat_map(|(a, ta, tb)| (Just(a.clone()), partner(a), Just(ta), Just(tb), any::<bool>()))
        .prop_flat_map(move |(a, b, ta, tb, swap)| {
            let (a, b) = if swap { (b, a) } else { (a, b) };
            (filled(a, ta, wild), filled(b, tb, wild))
        })
}

/// An array and the axes to reduce: none (all), or a few, negative ones and, now and then,
/// an out-of-range or repeated one.
fn reduced() -> impl Strategy<Value = (Array, Option<Vec<i64>>, bool)> {
    (shape(), dtype()).prop_flat_map(|(shape, dtype)| {
        let n = shape.len() as i64;
        let axes = prop::option::weighted(0.7, prop::collection::vec(-n - 1..=n, 0..=n as usize + 1));
        (filled(shape, dtype, false), axes, any::<bool>())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arithmetic_matches_the_reference(
        (a, b) in pair(true),
        op in prop::sample::select(vec!["add", "sub", "mul", "div"]),
    ) {
        check(operation(op), &[&a, &b], reference::arithmetic(op, &a, &b), Near::Exact)?;
    }

    #[test]
    fn powers_match_the_reference(
        (a, b) in pair(true),
        exponents in prop::collection::vec(-1i64..70, 1..=3),
    ) {
        // Integer exponents stay small (and now and then negative, which NumPy refuses).
        let b = match b.data {
            Data::I64(_) => {
                let n = b.shape.iter().product::<usize>();
                let data = (0..n).map(|i| exponents[i % exponents.len()]).collect();
                Array { data: Data::I64(data), ..b }
            }
            _ => b,
        };
        check(operation("pow"), &[&a, &b], reference::arithmetic("pow", &a, &b), Near::Exact)?;
    }

    #[test]
    fn comparisons_match_the_reference(
        (a, b) in pair(true),
        op in prop::sample::select(vec!["less", "less_equal", "greater", "greater_equal", "equal", "not_equal"]),
    ) {
        check(operation(op), &[&a, &b], reference::compare(op, &a, &b), Near::Exact)?;
    }

    #[test]
    fn unary_math_matches_the_reference(
        a in (shape(), prop_oneof![Just(DType::I64), Just(DType::F64)]).prop_flat_map(|(s, t)| filled(s, t, true)),
        bools in shape().prop_flat_map(|s| filled(s, DType::Bool, false)),
        op in prop::sample::select(vec!["neg", "abs", "square", "sign", "exp", "natlog", "square_root"]),
    ) {
        check(operation(op), &[&a], reference::unary(op, &a), Near::Exact)?;
        if matches!(op, "neg" | "abs" | "square" | "sign") {
            check(operation(op), &[&bools], reference::unary(op, &bools), Near::Exact)?;
        }
    }

    #[test]
    fn reductions_match_the_reference(
        (a, axis, keepdims) in reduced(),
        op in prop::sample::select(vec!["sum", "prod", "min", "max", "mean"]),
    ) {
        let expected = reference::reduce(op, &a, axis.as_deref(), keepdims);
        let near = match (op, &a.data) {
            ("prod", _) => Near::Relative,
            // A few ulps of the largest input.
            ("mean", Data::I64(v)) => Near::Within(v.iter().map(|&x| (x as f64).abs()).fold(0.0, f64::max) * 1e-14),
            _ => Near::Exact,
        };
        check(reduction(op, axis, keepdims), &[&a], expected, near)?;
    }
}
