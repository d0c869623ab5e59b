//! Training checkpoints: the layer weights, optimizer state and seed counter of one graph's
//! training session, as they stand after a training step.
//!
//! The original kept this state only in one provider's memory and made every provider compute
//! every subgraph in lock-step as its failover (§4.3 of the reference). Here the provider that
//! computed a step sends a checkpoint with its results; ravsock stores it in the same
//! transaction as the results, and hands it to whichever provider computes the next step when
//! the one holding the state is gone.
//!
//! Binary form ([`crate::blob`]): a frame whose header is the checkpoint's JSON with every tensor emptied
//! and whose values are those tensors, in the order [`Checkpoint::tensors_mut`] visits them
//! (weights travel as bytes, never as JSON numbers). Inside protocol messages a checkpoint is
//! one `u8` tensor of those bytes ([`Checkpoint::to_value`]).

use crate::blob::{BlobError, bytes_value, decode_blob, encode_blob, value_bytes};
use crate::ids::OpId;
use crate::ops::{OpKind, OptimizerSpec};
use crate::tensor::{TensorData, Value};
use serde::{Deserialize, Serialize};

/// The training state of one graph after `version` training steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Training assignments completed so far (0: nothing trained yet).
    pub version: u64,
    /// Seeds the session has handed out (default weights, dropout masks).
    pub seeds: u64,
    /// Layers by the forward op that created them.
    pub layers: Vec<LayerCheckpoint>,
    /// Each forward op and the layer it used, so later ops can name any of them in
    /// `previous_forward_pass`.
    pub layer_of: Vec<(OpId, OpId)>,
}

/// One layer's weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerCheckpoint {
    /// The forward op that created it.
    pub id: OpId,
    /// That op's operator: only forward ops of the same kind reuse the layer.
    pub kind: OpKind,
    /// Weights by name.
    pub params: Vec<ParamCheckpoint>,
    /// Running statistics of a batch norm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batchnorm: Option<BatchNormCheckpoint>,
}

/// One weight and its optimizer state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamCheckpoint {
    /// `w`, `b`, `gamma`, `beta`.
    pub name: String,
    /// Its value (`f64`).
    pub value: TensorData,
    /// The optimizer's state, when the layer trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerCheckpoint>,
}

/// An optimizer's state for one weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerCheckpoint {
    /// Hyper-parameters.
    pub spec: OptimizerSpec,
    /// Steps taken.
    pub step: u64,
    /// Buffers by PyTorch's names (`exp_avg`, `momentum_buffer`, ...).
    pub buffers: Vec<(String, TensorData)>,
}

/// A batch norm's running statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormCheckpoint {
    /// Running-statistics momentum.
    pub momentum: f64,
    /// Stability term.
    pub eps: f64,
    /// Running mean per channel.
    pub running_mean: TensorData,
    /// Running variance per channel.
    pub running_var: TensorData,
}

/// Why bytes are not a checkpoint.
pub type CheckpointError = BlobError;

impl Checkpoint {
    /// The state before any training: what a fresh session holds.
    pub fn empty() -> Checkpoint {
        Checkpoint { version: 0, seeds: 0, layers: Vec::new(), layer_of: Vec::new() }
    }

    /// Every tensor, in the order of the binary form.
    fn tensors_mut(&mut self) -> Vec<&mut TensorData> {
        let mut out = Vec::new();
        for layer in &mut self.layers {
            for param in &mut layer.params {
                out.push(&mut param.value);
                if let Some(optimizer) = &mut param.optimizer {
                    out.extend(optimizer.buffers.iter_mut().map(|(_, t)| t));
                }
            }
            if let Some(bn) = &mut layer.batchnorm {
                out.push(&mut bn.running_mean);
                out.push(&mut bn.running_var);
            }
        }
        out
    }

    /// The binary form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        encode_blob(self, Checkpoint::tensors_mut)
    }

    /// Reads [`Checkpoint::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        decode_blob(bytes, Checkpoint::tensors_mut)
    }

    /// The checkpoint as one protocol value: a `u8` vector of [`Checkpoint::encode`].
    pub fn to_value(&self) -> Value {
        bytes_value(self.encode())
    }

    /// Reads [`Checkpoint::to_value`]'s form.
    pub fn from_value(value: &Value) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::decode(value_bytes(value)?)
    }
}
