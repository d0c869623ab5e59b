//! Replays `fixtures/golden.json` (made by `scripts/gen_golden.py` from NumPy) through
//! `ravexec::execute`: values, shapes and dtypes must agree, and where NumPy raised, Raven must
//! return an error. Every mismatch is collected and reported together.

use ravexec::{TensorValue, execute};
use ravproto::{DType, Operation, Value};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    operation: serde_json::Value,
    inputs: Vec<Value>,
    #[serde(default)]
    expected: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    /// Looser tolerance where NumPy itself computed in float16.
    #[serde(default)]
    rtol: Option<f64>,
    /// The operation is written the original's way (`R.<name>(**params)`), to go through
    /// `ravproto::original::translate`.
    #[serde(default)]
    original: bool,
}

fn close(dtype: DType, got: f64, want: f64, rtol_override: Option<f64>) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got.is_infinite() || want.is_infinite() {
        return got == want;
    }
    let (rtol, atol) = if dtype == DType::F32 { (2e-5, 1e-5) } else { (1e-9, 1e-11) };
    let rtol = rtol_override.unwrap_or(rtol);
    (got - want).abs() <= atol + rtol * want.abs()
}

fn as_f64(t: &ravproto::TensorData) -> Vec<f64> {
    match t.dtype() {
        DType::F32 => t.to_f32().unwrap().into_iter().map(f64::from).collect(),
        DType::F64 => t.to_f64().unwrap(),
        DType::I64 => t.to_i64().unwrap().into_iter().map(|v| v as f64).collect(),
        DType::U8 => t.to_u8().unwrap().into_iter().map(f64::from).collect(),
        DType::Bool => t.to_bool().unwrap().into_iter().map(|b| f64::from(u8::from(b))).collect(),
    }
}

fn compare(got: &Value, want: &Value, path: &str, rtol: Option<f64>) -> Result<(), String> {
    match (got, want) {
        (Value::Tensor(g), Value::Tensor(w)) => {
            if g.dtype() != w.dtype() {
                return Err(format!("{path}: dtype {} != numpy {}", g.dtype(), w.dtype()));
            }
            if g.shape() != w.shape() {
                return Err(format!("{path}: shape {:?} != numpy {:?}", g.shape(), w.shape()));
            }
            let exact = !g.dtype().is_float();
            for (i, (x, y)) in as_f64(g).into_iter().zip(as_f64(w)).enumerate() {
                let same = if exact { x == y } else { close(g.dtype(), x, y, rtol) };
                if !same {
                    return Err(format!("{path}: element {i}: {x} != numpy {y}"));
                }
            }
            Ok(())
        }
        (Value::List(g), Value::List(w)) => {
            if g.len() != w.len() {
                return Err(format!("{path}: list of {} != numpy {}", g.len(), w.len()));
            }
            g.iter().zip(w).enumerate().try_for_each(|(i, (x, y))| compare(x, y, &format!("{path}[{i}]"), rtol))
        }
        _ => Err(format!("{path}: tensor/list kind differs")),
    }
}

fn parsed(case: &Case) -> Result<Operation, String> {
    serde_json::from_value(case.operation.clone()).map_err(|e| format!("operation does not parse: {e}"))
}

/// An original call: the op, and its inputs with the constants its params became.
fn translated(case: &Case) -> Result<(Operation, Vec<Value>), String> {
    let name = case.operation["operator"].as_str().ok_or("no operator")?;
    let params = case.operation["params"].as_object().cloned().unwrap_or_default();
    let call = ravproto::original::translate(name, &params).map_err(|e| format!("original call refused: {e}"))?;
    let mut inputs = case.inputs.clone();
    for (position, constant) in call.inputs {
        if position > inputs.len() {
            return Err(format!("param input {position} after only {} inputs", inputs.len()));
        }
        inputs.insert(position, Value::Tensor(constant));
    }
    Ok((call.operation, inputs))
}

fn run_case(case: &Case) -> Result<(), String> {
    let (operation, inputs) = if case.original { translated(case)? } else { (parsed(case)?, case.inputs.clone()) };
    let inputs: Vec<TensorValue> = inputs.iter().map(TensorValue::from_wire).collect();
    let result = execute(&operation, &inputs);
    match (&case.error, result, &case.expected) {
        (Some(_), Err(_), _) => Ok(()),
        (Some(numpy), Ok(v), _) => Err(format!("numpy raised `{numpy}` but raven returned {:?}", v.to_wire())),
        (None, Err(e), _) => Err(format!("raven failed: {e}")),
        (None, Ok(v), Some(want)) => compare(&v.to_wire(), want, "result", case.rtol),
        (None, Ok(_), None) => Err("fixture has neither result nor error".into()),
    }
}

#[test]
fn kernels_agree_with_numpy() {
    let text = include_str!("fixtures/golden.json");
    let cases: Vec<Case> = serde_json::from_str(text).expect("fixture parses");
    assert!(cases.len() > 900, "fixture has all cases");
    assert!(cases.iter().filter(|c| c.original).count() >= 25, "fixture has the original's call forms");
    let failures: Vec<String> =
        cases.iter().filter_map(|case| run_case(case).err().map(|e| format!("{}: {e}", case.name))).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from numpy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
