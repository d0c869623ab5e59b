//! Checks on uploaded graphs and ops before anything is stored: arity, references, values,
//! names, and the size of everything that is kept and listed (a graph's name is shown to every
//! provider by `GET /v1/open-graphs`, so an unbounded one costs every caller).
//!
//! The original accepted any record and failed later on a provider; here every mistake is
//! refused at upload with the client's op id and the reason.

use crate::error::{Error, Result};
use ravproto::messages::{GraphMeta, OpRecord, OpRef};
use ravproto::{OpId, Operation, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Most ops in one upload chunk.
pub const MAX_CHUNK_OPS: usize = 10_000;

/// Longest graph name, algorithm label or persist name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Default of `--max-op-bytes`: the most memory (result and working memory) one op may need
/// for the upload to be accepted, where the upload alone decides it.
pub const DEFAULT_MAX_OP_BYTES: u64 = 8 << 30;

/// Inline values up to this size (encoded) are read at upload to bound the ops they feed:
/// shapes, repetition counts, bounds. Bigger values are data, not sizes.
const SIZING_VALUE_BYTES: u64 = 4 << 10;

/// Most bytes of a graph's metadata as JSON (name, algorithm, federated rules, requirements).
pub const MAX_META_BYTES: usize = 16 << 10;

/// Refuses a name longer than [`MAX_NAME_BYTES`], saying which and how long.
fn name(what: &str, name: &str) -> Result<()> {
    match name.len() {
        len if len > MAX_NAME_BYTES => {
            Err(Error::BadRequest(format!("{what} is {len} bytes long; at most {MAX_NAME_BYTES} are accepted")))
        }
        _ => Ok(()),
    }
}

/// Validates a new graph's metadata: its name and algorithm label, the stake it asks of
/// providers, how it verifies results, and its whole size.
pub fn meta(meta: &GraphMeta) -> Result<()> {
    name("the graph's name", &meta.name)?;
    let stake = meta.requirements.min_stake;
    if stake > ravproto::ledger::MAX_AMOUNT {
        return Err(Error::BadRequest(format!(
            "a graph may ask a stake of at most {} units, not {stake}",
            ravproto::ledger::MAX_AMOUNT
        )));
    }
    if let Some(problem) = meta.requirements.verify.problem() {
        return Err(Error::BadRequest(problem));
    }
    if meta.approach == ravproto::messages::Approach::Federated && !meta.requirements.verify.is_none() {
        return Err(Error::BadRequest(
            "verify applies to distributed graphs: a federated graph's answers are each provider's own data".into(),
        ));
    }
    if let Some(algorithm) = &meta.algorithm {
        name("the graph's algorithm label", algorithm)?;
    }
    let len = serde_json::to_vec(meta).map_err(|e| Error::Internal(e.to_string()))?.len();
    if len > MAX_META_BYTES {
        return Err(Error::BadRequest(format!(
            "the graph's metadata is {len} bytes as JSON; at most {MAX_META_BYTES} are accepted"
        )));
    }
    Ok(())
}

/// Validates one chunk against the ops already stored for the graph (`known`: local → server
/// ids) and returns nothing or the first problem.
pub fn chunk(records: &[OpRecord], known: &BTreeMap<u64, OpId>) -> Result<()> {
    if records.len() > MAX_CHUNK_OPS {
        return Err(Error::BadRequest(format!("a chunk holds at most {MAX_CHUNK_OPS} ops, got {}", records.len())));
    }
    // Only the chunk's own ids are collected: copying `known` for every chunk made uploads
    // of big graphs quadratic. Server ids are looked up (rare) through a set built on demand.
    let mut chunk_ids: BTreeSet<u64> = BTreeSet::new();
    let mut server_ids: Option<BTreeSet<OpId>> = None;
    for record in records {
        let invalid = |reason: String| Error::InvalidOp { op: OpRef::Local(record.local_id), reason };
        let kind = record.operation.kind();
        let seen = |local: &u64| known.contains_key(local) || chunk_ids.contains(local);
        if seen(&record.local_id) {
            return Err(invalid("this local id was already uploaded".into()));
        }
        if !kind.arity().accepts(record.inputs.len()) {
            return Err(invalid(format!("`{kind}` takes {} inputs, got {}", kind.arity(), record.inputs.len())));
        }
        for input in &record.inputs {
            let exists = match input {
                OpRef::Local(local) => seen(local),
                OpRef::Server(id) => server_ids.get_or_insert_with(|| known.values().copied().collect()).contains(id),
            };
            if !exists {
                return Err(invalid(format!("input {input:?} is not an earlier op of this graph")));
            }
        }
        for referenced in record.operation.param_refs() {
            if !seen(&referenced.0) {
                return Err(invalid(format!("params refer to local op {}, which is not an earlier op", referenced.0)));
            }
        }
        if let Some(persist) = &record.persist {
            if persist.trim().is_empty() {
                return Err(invalid("a persist name cannot be empty".into()));
            }
            name("a persist name", persist).map_err(|e| invalid(e.to_string()))?;
        }
        if let Some(name) = &record.value_file {
            if record.value.is_some() {
                return Err(invalid("an op carries either a value or a value file, not both".into()));
            }
            if !ravproto::files::valid_file_name(name) {
                return Err(invalid(format!("invalid value file name {name:?}")));
            }
            if !matches!(record.operation, Operation::Lin(_) | Operation::PytorchModel(_)) {
                return Err(invalid(format!("`{kind}` is computed, it cannot carry a value")));
            }
            chunk_ids.insert(record.local_id);
            continue;
        }
        match (&record.operation, &record.value) {
            (Operation::Lin(params), Some(Value::Tensor(tensor))) => {
                if tensor.dtype() != params.dtype || tensor.shape() != params.shape.as_slice() {
                    return Err(invalid(format!(
                        "value is {}{:?} but the op declares {}{:?}",
                        tensor.dtype(),
                        tensor.shape(),
                        params.dtype,
                        params.shape
                    )));
                }
            }
            (Operation::Lin(_), _) => return Err(invalid("a `lin` op needs a tensor value".into())),
            (Operation::PytorchModel(_), Some(Value::Tensor(_))) => {}
            (Operation::PytorchModel(_), _) => {
                return Err(invalid("a `pytorch_model` op needs the model bytes".into()));
            }
            (_, Some(_)) => return Err(invalid(format!("`{kind}` is computed, it cannot carry a value"))),
            (_, None) => {}
        }
        chunk_ids.insert(record.local_id);
    }
    Ok(())
}

/// Refuses an inline value longer than `limit` bytes encoded: what is bigger goes through
/// ravftp (`value_file`), so that no op record, database row or assignment frame carries it.
pub fn inline_values(records: &[OpRecord], limit: u64) -> Result<()> {
    for record in records {
        let Some(value) = &record.value else { continue };
        let len = value.encoded_len();
        if len > limit {
            return Err(Error::InvalidOp {
                op: OpRef::Local(record.local_id),
                reason: format!(
                    "its value is {len} bytes encoded; values over {limit} bytes are uploaded through ravftp (value_file)"
                ),
            });
        }
    }
    Ok(())
}

/// Refuses an op whose memory bound ([`ravexec::budget::op_bytes`], the bound every provider
/// checks before running it) is over `max` bytes, where the upload alone decides it: ops
/// without inputs (sized by their params: `random`, `arange`…) and ops whose every input is a
/// small inline value of the same chunk (`zeros` of a shape, `tile` by its reps…). Such an op
/// would be refused by every provider, or fail the graph once none could hold it; here the
/// requester hears it at once. Other ops are bounded when a provider gets them.
pub fn op_sizes(records: &[OpRecord], max: u64) -> Result<()> {
    let mut sizing: BTreeMap<u64, ravexec::tensor::TensorValue> = BTreeMap::new();
    for record in records {
        if let Some(value) = &record.value {
            if value.encoded_len() <= SIZING_VALUE_BYTES {
                sizing.insert(record.local_id, ravexec::tensor::TensorValue::from_wire(value));
            }
            // An input's size is its value's, checked against the inline limit or the quota.
            continue;
        }
        let inputs: Option<Vec<_>> = record
            .inputs
            .iter()
            .map(|input| match input {
                OpRef::Local(local) => sizing.get(local).cloned(),
                OpRef::Server(_) => None,
            })
            .collect();
        let Some(inputs) = inputs else { continue };
        let needed = ravexec::budget::op_bytes(&record.operation, &inputs);
        if needed > u128::from(max) {
            return Err(Error::InvalidOp {
                op: OpRef::Local(record.local_id),
                reason: format!(
                    "`{}` needs up to {needed} bytes, over this server's limit of {max} bytes per op (--max-op-bytes)",
                    record.operation.kind()
                ),
            });
        }
    }
    Ok(())
}
