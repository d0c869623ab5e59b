//! The original's call form, `R.<name>(*inputs, **params)`, for scripts ported from the
//! Python ravop: [`Graph::call`] with [`Kwargs`].
//!
//! The typed methods ([`Op::where_`](crate::Op), [`Op::sum`](crate::Op), …) are the way to
//! write new code; this is for translating old code line by line. The translation rules are
//! [`ravproto::original`]'s: a param that is an input here (`where`'s `condition`, `average`'s
//! and `bincount`'s `weights`) may be a constant or an op and becomes that input; `"True"` and
//! `"False"` are booleans; an op given for a param that names an earlier op
//! (`previous_forward_pass`, `model`) is referenced.

use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use ravexec::Tensor;
use ravproto::OpKind;
use ravproto::original::{self, param_as_input};
use serde_json::{Map, Value as Json};

/// Keyword params of an original call: JSON constants and ops.
#[derive(Clone, Debug, Default)]
pub struct Kwargs {
    values: Map<String, Json>,
    ops: Vec<(String, Op)>,
}

impl Kwargs {
    /// No params.
    pub fn new() -> Kwargs {
        Kwargs::default()
    }

    /// A constant param (`axis=1`, `keepdims="True"`, `condition=[[True, False]]`).
    pub fn set(mut self, name: &str, value: impl Into<Json>) -> Kwargs {
        self.values.insert(name.to_string(), value.into());
        self
    }

    /// A param that held an op in the original (`condition=mask`, `previous_forward_pass=f`).
    pub fn op(mut self, name: &str, op: &Op) -> Kwargs {
        self.ops.push((name.to_string(), op.clone()));
        self
    }
}

impl Graph {
    /// Records `R.<name>(*inputs, **kwargs)` as the original's scripts wrote it: the op by
    /// its short or wire name, the params translated by [`ravproto::original::translate`].
    /// An unknown name or params that fit no catalogue op are refused here, with nothing
    /// recorded; other mistakes are reported by [`Graph::validate`] as for typed calls.
    pub fn call(&self, name: &str, inputs: &[&Op], kwargs: Kwargs) -> Result<Op> {
        let refused = |reason: String| Error::Call { name: name.to_string(), reason };
        let kind = OpKind::from_name(name).ok_or_else(|| refused("no op of the catalogue has this name".into()))?;
        let mut values = kwargs.values;
        let mut moved: Vec<(usize, Op)> = Vec::new();
        for (param, op) in kwargs.ops {
            match param_as_input(kind, &param) {
                Some(as_input) => moved.push((as_input.position, op)),
                None => {
                    // A param naming an earlier op (`previous_forward_pass`, `model`) holds its id.
                    values.insert(param, serde_json::to_value(op.id).expect("an id is JSON"));
                }
            }
        }
        let translated = original::translate(name, &values).map_err(|e| refused(e.to_string()))?;
        let constants =
            translated.inputs.into_iter().map(|(position, data)| (position, self.t(Tensor::from_data_owned(data))));
        moved.extend(constants);
        moved.sort_by_key(|(position, _)| *position);
        let mut all: Vec<&Op> = inputs.to_vec();
        for (position, op) in &moved {
            if *position > all.len() {
                let signature = original::PARAMS_AS_INPUTS.iter().find(|p| p.kind == kind).map_or("", |p| p.inputs);
                return Err(refused(format!(
                    "a param here is input {position} of {signature}, but {} inputs were given before it",
                    all.len()
                )));
            }
            all.insert(*position, op);
        }
        Ok(self.push(translated.operation, &all))
    }
}
