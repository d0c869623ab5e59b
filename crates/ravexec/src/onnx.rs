//! Group H: `forward_pass` runs a requester's whole model, an ONNX file held by a
//! `pytorch_model` node, with tract (feature `onnx`).
//!
//! The original ran TorchScript, which needs a full PyTorch install on every provider and
//! executes whatever the file contains; an ONNX graph is data that tract interprets, with only
//! the operators tract implements. This is inference only: training whole ONNX models is out of
//! scope (the `forward_pass_*` layers train); a `forward_pass` with an optimizer is refused,
//! and `training` has no effect (a model runs as it was exported, normally in eval mode).
//!
//! The op's one input is the model's first (and only) input. Its values are converted to the
//! element type the model declares (an `f64` batch feeds a `float` model); the shape is the
//! batch's, so one model serves batches of any size. Compiling a model for a shape takes far
//! longer than running a small batch, so compiled plans are kept in a small process-wide cache
//! keyed by the model bytes (compared in full, not only by hash), element type and shape: the
//! batches of a graph that reach a provider are compiled once.
//!
//! Memory: once compiled for the batch's shape, every value the plan makes has a known shape,
//! so [`forward_pass_bytes`] (the op's bound in [`crate::budget::op_bytes`]) adds them all up
//! and a provider refuses a batch over its budget before running it. What tract allocates while
//! compiling (constants it folds) comes before any bound can be read and is not covered.

use crate::error::{ErrorKind, KResult};
use crate::tensor::{Tensor, TensorValue};
use ravproto::ops::ForwardPassParams;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModelExt, IntoRunnable, IntoTValue, TValue, Tensor as TractTensor,
    TypedRunnableModel, tvec,
};
use tract_onnx::tract_hir::infer::Factoid;

/// Compiled plans kept; beyond this the least recently used goes.
const CACHED_PLANS: usize = 16;

struct Cached {
    hash: u64,
    model: Arc<[u8]>,
    dtype: DatumType,
    shape: Vec<usize>,
    plan: Arc<TypedRunnableModel>,
    /// [`plan_bytes`] of the plan.
    bytes: Option<u128>,
}

/// A compiled plan, the element type it takes and the bound of the memory it uses.
struct Plan {
    plan: Arc<TypedRunnableModel>,
    dtype: DatumType,
    bytes: Option<u128>,
}

static PLANS: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

fn model_error(what: &str, error: impl std::fmt::Display) -> ErrorKind {
    ErrorKind::Model(format!("{what}: {error:#}"))
}

/// Runs `forward_pass`: the model in `model` (ONNX bytes, the `pytorch_model` node's value) on `x`.
pub(crate) fn forward_pass(params: &ForwardPassParams, x: &Tensor, model: &Tensor) -> KResult<TensorValue> {
    if params.optimizer.is_some() {
        return Err(ErrorKind::Unsupported(
            "`forward_pass` runs ONNX models for inference; training a whole model is out of scope \
             (build the network from forward_pass_* layers to train it)"
                .into(),
        ));
    }
    let Tensor::U8(bytes) = model else {
        return Err(ErrorKind::Model(format!(
            "the model must be the bytes of an ONNX file (a `pytorch_model` node), got a {} tensor",
            model.dtype()
        )));
    };
    let bytes =
        bytes.as_slice_memory_order().ok_or_else(|| ErrorKind::Model("model bytes are not contiguous".into()))?;
    let Plan { plan, dtype, .. } = plan_for(bytes, x)?;
    let input = to_tract(x, dtype)?;
    let outputs = plan.run(tvec![input]).map_err(|e| model_error("the model failed on this input", e))?;
    let mut values: Vec<TensorValue> =
        outputs.into_iter().map(|out| from_tract(&out).map(TensorValue::Tensor)).collect::<KResult<_>>()?;
    Ok(if values.len() == 1 { values.remove(0) } else { TensorValue::List(values) })
}

/// An upper bound of the bytes `forward_pass` of `model` on `x` takes: every value its plan
/// for `x`'s shape makes (weights, intermediates, outputs), as if none were freed, plus the
/// input converted to the model's element type. `None` where the model does not compile
/// (running it reports why) or a shape is not known at compile time.
pub(crate) fn forward_pass_bytes(x: &Tensor, model: &Tensor) -> Option<u128> {
    let Tensor::U8(bytes) = model else { return None };
    let plan = plan_for(bytes.as_slice_memory_order()?, x).ok()?;
    let input = (x.len() as u128).saturating_mul(plan.dtype.size_of() as u128);
    plan.bytes.map(|bytes| bytes.saturating_add(input))
}

/// The bytes of every value `plan` makes; `None` if one's shape is not concrete.
fn plan_bytes(plan: &TypedRunnableModel) -> Option<u128> {
    let mut total: u128 = 0;
    for node in plan.model().nodes() {
        for output in &node.outputs {
            let elements = output.fact.shape.as_concrete()?.iter().fold(1u128, |n, &d| n.saturating_mul(d as u128));
            total = total.saturating_add(elements.saturating_mul(output.fact.datum_type.size_of() as u128));
        }
    }
    Some(total)
}

/// The compiled plan for `bytes` fed with `x`'s shape, the element type it takes and its bound.
fn plan_for(bytes: &[u8], x: &Tensor) -> KResult<Plan> {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let hash = hasher.finish();
    let shape = x.shape().to_vec();
    {
        let mut plans = PLANS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = plans.iter().position(|c| c.hash == hash && c.shape == shape && *c.model == *bytes) {
            // Most recently used last.
            let cached = plans.remove(at);
            let found = Plan { plan: cached.plan.clone(), dtype: cached.dtype, bytes: cached.bytes };
            plans.push(cached);
            return Ok(found);
        }
    }
    // Compiled outside the lock: other ops keep running meanwhile.
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(|e| model_error("not a readable ONNX model", e))?;
    let inputs = model.input_outlets().map_err(|e| model_error("the model's inputs", e))?.len();
    if inputs != 1 {
        return Err(ErrorKind::Model(format!("the model takes {inputs} inputs; forward_pass feeds exactly one")));
    }
    let declared = model.input_fact(0).map_err(|e| model_error("the model's input", e))?.datum_type.concretize();
    let dtype = match declared {
        Some(dt) => dt,
        None => own_dtype(x),
    };
    model.set_input_fact(0, InferenceFact::dt_shape(dtype, &shape)).map_err(|e| model_error("the model's input", e))?;
    let plan = model
        .into_optimized()
        .and_then(|typed| typed.into_runnable())
        .map_err(|e| model_error(&format!("the model does not accept input of shape {shape:?}"), e))?;
    let mut plans = PLANS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if plans.len() >= CACHED_PLANS {
        plans.remove(0);
    }
    let plan_bound = plan_bytes(&plan);
    plans.push(Cached { hash, model: Arc::from(bytes), dtype, shape, plan: plan.clone(), bytes: plan_bound });
    Ok(Plan { plan, dtype, bytes: plan_bound })
}

fn own_dtype(x: &Tensor) -> DatumType {
    match x {
        Tensor::F32(_) => DatumType::F32,
        Tensor::F64(_) => DatumType::F64,
        Tensor::I64(_) => DatumType::I64,
        Tensor::Bool(_) => DatumType::Bool,
        Tensor::U8(_) => DatumType::U8,
    }
}

/// `x` as the element type the model takes.
fn to_tract(x: &Tensor, dtype: DatumType) -> KResult<TValue> {
    let tensor: TractTensor = match dtype {
        DatumType::F32 => x.to_f64_array().mapv(|v| v as f32).into(),
        DatumType::F64 => x.to_f64_array().into(),
        DatumType::I64 => match x {
            Tensor::I64(a) => a.clone().into(),
            Tensor::Bool(a) => a.mapv(i64::from).into(),
            Tensor::U8(a) => a.mapv(i64::from).into(),
            _ => return Err(ErrorKind::DType("the model takes int64 input; pass an integer tensor".into())),
        },
        DatumType::Bool => match x {
            Tensor::Bool(a) => a.clone().into(),
            _ => return Err(ErrorKind::DType("the model takes bool input".into())),
        },
        DatumType::U8 => match x {
            Tensor::U8(a) => a.clone().into(),
            _ => return Err(ErrorKind::DType("the model takes uint8 input".into())),
        },
        other => {
            return Err(ErrorKind::DType(format!("the model takes {other:?} input, which Raven tensors do not carry")));
        }
    };
    Ok(tensor.into_tvalue())
}

/// A model output as a Raven tensor (`f32` stays `f32`; other integer types widen to `i64`).
fn from_tract(out: &TValue) -> KResult<Tensor> {
    let view_error = |e| model_error("an output could not be read", e);
    Ok(match out.datum_type() {
        DatumType::F32 => Tensor::F32(out.to_plain_array_view::<f32>().map_err(view_error)?.to_owned()),
        DatumType::F64 => Tensor::F64(out.to_plain_array_view::<f64>().map_err(view_error)?.to_owned()),
        DatumType::I64 => Tensor::I64(out.to_plain_array_view::<i64>().map_err(view_error)?.to_owned()),
        DatumType::I32 => Tensor::I64(out.to_plain_array_view::<i32>().map_err(view_error)?.mapv(i64::from)),
        DatumType::Bool => Tensor::Bool(out.to_plain_array_view::<bool>().map_err(view_error)?.to_owned()),
        DatumType::U8 => Tensor::U8(out.to_plain_array_view::<u8>().map_err(view_error)?.to_owned()),
        other => {
            return Err(ErrorKind::DType(format!("the model returns {other:?}, which Raven tensors do not carry")));
        }
    })
}

/// Bad models are refused with typed errors (working models are tested against the committed
/// fixture in `tests/it/onnx.rs`).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_typed_error_not_a_panic() {
        let x = Tensor::F64(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1, 2])));
        let junk = Tensor::U8(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[4]), vec![1, 2, 3, 4]).unwrap());
        let params = ForwardPassParams { model: None, previous_forward_pass: None, optimizer: None, training: false };
        assert!(matches!(forward_pass(&params, &x, &junk), Err(ErrorKind::Model(_))));
        assert!(
            matches!(forward_pass(&params, &x, &x), Err(ErrorKind::Model(m)) if m.contains("bytes of an ONNX file"))
        );
    }
}
