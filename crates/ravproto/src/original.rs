//! The original RDF's call forms, translated: `R.<name>(*inputs, **params)` as its scripts
//! wrote them, to a catalogue [`Operation`] plus the inputs that some of its params became.
//!
//! Three habits of the original differ from the catalogue's typed form (reference §2.4):
//! - A few params held values the kernel computes with (`where`'s `condition`, the `weights`
//!   of `average` and `bincount`). Here they are inputs ([`PARAMS_AS_INPUTS`]): a constant
//!   given as such a param becomes one more input; the decoder of the wire form refuses the
//!   param with [`OperationError::ParamIsAnInput`], naming the input that replaces it.
//! - Booleans travelled as the strings `"True"` and `"False"`.
//! - `foreach` named its op and spread that op's params beside it.
//! - Ints, floats and lists in params were turned into their own input nodes; here they stay
//!   inline, typed (`axis: 1`, `shape: [2, 3]`), which is what the JSON form below holds.
//!
//! Python literals (`optimizer_dict="{'name': 'adam'}"`, `act_data`) are not read: they are
//! typed values here ([`crate::ops::OptimizerSpec`], [`crate::ops::Activation`]), and nothing
//! in this project evaluates a string.

use crate::ops::{OpKind, Operation, OperationError};
use crate::tensor::{TensorData, TensorError};
use serde_json::{Map, Value as Json};

pub use crate::ops::{PARAMS_AS_INPUTS, ParamAsInput, param_as_input};

/// An original call, in the catalogue's form.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    /// The op with its typed params.
    pub operation: Operation,
    /// Constants that params of the original became, with their input positions, in order.
    pub inputs: Vec<(usize, TensorData)>,
}

/// Why an original call could not be translated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranslateError {
    /// The name or params do not make a catalogue op.
    #[error(transparent)]
    Operation(#[from] OperationError),
    /// A param that became an input holds something that is not a constant tensor.
    #[error("`{op}`'s `{param}` (its input {position}) is not a tensor: {reason}")]
    BadConstant {
        /// Short name of the op.
        op: &'static str,
        /// The param.
        param: &'static str,
        /// Its input position.
        position: usize,
        /// What is wrong with the value.
        reason: String,
    },
}

/// Translates `R.<name>(..., **params)`: the name by short or wire name, `"True"`/`"False"`
/// strings as booleans, and the params that are inputs here taken out as constants.
pub fn translate(name: &str, params: &Map<String, Json>) -> Result<Translated, TranslateError> {
    let kind = OpKind::from_name(name).ok_or_else(|| OperationError::UnknownOperator(name.to_string()))?;
    let mut typed = Map::new();
    let mut inputs = Vec::new();
    for (key, value) in params {
        if let Some(moved) = param_as_input(kind, key) {
            let tensor = tensor_from_json(value).map_err(|reason| TranslateError::BadConstant {
                op: kind.short_name(),
                param: moved.param,
                position: moved.position,
                reason,
            })?;
            inputs.push((moved.position, tensor));
        } else {
            typed.insert(key.clone(), python_bools(value.clone()));
        }
    }
    inputs.sort_by_key(|(position, _)| *position);
    if kind == OpKind::Foreach {
        typed = foreach_params(typed);
    }
    let operation = Operation::from_json_params(kind, Json::Object(typed))?;
    Ok(Translated { operation, inputs })
}

/// `foreach(a, operation="sum", axis=0)`: the original named the op and spread its params
/// beside it; the catalogue holds them together, `{"operation": {"operator", "params"}}`.
fn foreach_params(mut params: Map<String, Json>) -> Map<String, Json> {
    let Some(Json::String(operator)) = params.get("operation").cloned() else { return params };
    params.remove("operation");
    let inner = serde_json::json!({"operator": operator, "params": Json::Object(params)});
    Map::from_iter([("operation".to_string(), inner)])
}

/// `"True"` and `"False"` as the booleans the original meant by them, at any depth.
fn python_bools(value: Json) -> Json {
    match value {
        Json::String(s) if s == "True" => Json::Bool(true),
        Json::String(s) if s == "False" => Json::Bool(false),
        Json::Array(items) => Json::Array(items.into_iter().map(python_bools).collect()),
        Json::Object(map) => Json::Object(map.into_iter().map(|(k, v)| (k, python_bools(v))).collect()),
        other => other,
    }
}

/// A constant from JSON the way `np.array` reads a nested list: a number, a bool or a
/// rectangular nested list; all bools give `bool`, all integers `i64`, else `f64`.
pub fn tensor_from_json(value: &Json) -> Result<TensorData, String> {
    let mut shape = Vec::new();
    let mut level = value;
    while let Json::Array(items) = level {
        shape.push(items.len());
        match items.first() {
            Some(first) => level = first,
            None => break,
        }
    }
    let mut leaves = Vec::new();
    collect_leaves(value, &shape, &mut leaves)?;
    let bad = |e: TensorError| e.to_string();
    if !leaves.is_empty() && leaves.iter().all(|v| v.is_boolean()) {
        let values: Vec<bool> = leaves.iter().map(|v| v.as_bool() == Some(true)).collect();
        return TensorData::from_bool(shape, &values).map_err(bad);
    }
    let integers: Option<Vec<i64>> = leaves.iter().map(|v| v.as_i64().or_else(|| v.as_bool().map(i64::from))).collect();
    if let Some(values) = integers.filter(|_| !leaves.is_empty()) {
        return TensorData::from_i64_vec(shape, values).map_err(bad);
    }
    let values = leaves
        .iter()
        .map(|v| v.as_f64().or_else(|| v.as_bool().map(|b| f64::from(u8::from(b)))))
        .collect::<Option<Vec<f64>>>()
        .ok_or("its elements must be numbers or booleans")?;
    TensorData::from_f64_vec(shape, values).map_err(bad)
}

fn collect_leaves<'a>(value: &'a Json, shape: &[usize], out: &mut Vec<&'a Json>) -> Result<(), String> {
    match (value, shape.split_first()) {
        (Json::Array(items), Some((&len, rest))) if items.len() == len => {
            items.iter().try_for_each(|item| collect_leaves(item, rest, out))
        }
        (Json::Array(_), _) => Err("a nested list whose rows differ in length (NumPy: inhomogeneous shape)".into()),
        (leaf, None) if !leaf.is_array() && !leaf.is_object() => {
            out.push(leaf);
            Ok(())
        }
        _ => Err("a nested list whose rows differ in depth (NumPy: inhomogeneous shape)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use serde_json::json;

    fn params(value: Json) -> Map<String, Json> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn params_that_became_inputs_are_taken_out_as_constants() {
        let call = translate("where", &params(json!({"condition": [true, false]}))).unwrap();
        assert_eq!(call.operation.kind(), OpKind::Where);
        assert_eq!(call.inputs, vec![(2, TensorData::from_bool(vec![2], &[true, false]).unwrap())]);

        let call = translate("average", &params(json!({"axis": 0, "weights": [1, 3]}))).unwrap();
        assert_eq!(call.operation, Operation::from_json_params(OpKind::Average, json!({"axis": 0})).unwrap());
        assert_eq!(call.inputs[0].1.dtype(), DType::I64);

        let err = translate("where", &params(json!({"condition": [[1], [2, 3]]}))).unwrap_err();
        assert!(err.to_string().contains("input 2"), "{err}");
    }

    #[test]
    fn python_booleans_and_wire_names_are_understood() {
        let call = translate("matrix_sum", &params(json!({"axis": [0, 1], "keepdims": "True"}))).unwrap();
        assert_eq!(
            call.operation,
            Operation::from_json_params(OpKind::Sum, json!({"axis": [0, 1], "keepdims": true})).unwrap()
        );
        assert!(matches!(translate("no_such_op", &Map::new()), Err(TranslateError::Operation(_))));
        let call = translate("foreach", &params(json!({"operation": "sum", "axis": 0}))).unwrap();
        let inner = json!({"operation": {"operator": "sum", "params": {"axis": 0}}});
        assert_eq!(call.operation, Operation::from_json_params(OpKind::Foreach, inner).unwrap());
        let call = translate("zeros", &params(json!({"dtype": "int64"}))).unwrap();
        assert_eq!(call.operation, Operation::from_json_params(OpKind::Zeros, json!({"dtype": "i64"})).unwrap());
    }

    #[test]
    fn the_wire_form_names_the_input_that_replaces_a_param() {
        let err = Operation::from_json_params(OpKind::Where, json!({"condition": [true]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`where` takes `condition` as its input 2 (inputs (x, y, condition)), not as a param"
        );
    }

    #[test]
    fn constants_read_like_np_array() {
        let t = tensor_from_json(&json!([[1, 2.5], [3, 4]])).unwrap();
        assert_eq!((t.dtype(), t.shape()), (DType::F64, &[2, 2][..]));
        let t = tensor_from_json(&json!(7)).unwrap();
        assert_eq!((t.dtype(), t.shape()), (DType::I64, &[][..]));
        let t = tensor_from_json(&json!([])).unwrap();
        assert_eq!((t.dtype(), t.shape()), (DType::F64, &[0][..]));
        assert!(tensor_from_json(&json!([1, [2]])).is_err());
        assert!(tensor_from_json(&json!("x")).is_err());
    }
}
