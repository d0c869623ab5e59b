//! The provider protocol over socket.io (namespace [`NAMESPACE`]).
//!
//! Port of the original's `/client` events (§3.4), reshaped: assignments carry their input
//! values as binary attachments in Raven's own value encoding (never pickles, never JSON text
//! of numbers), results come back the same way, and every message names its assignment, so a
//! late answer to a withdrawn assignment is recognised.
//!
//! | event | direction | payload |
//! |---|---|---|
//! | connect | provider → server | auth `{"token": ..., "protocol_version": 1}` |
//! | [`EVENT_JOIN`] | provider → server | [`JoinRequest`] JSON (its benchmark and chosen graph) |
//! | [`EVENT_ASSIGN`] | server → provider | binary [`Frame`] of [`AssignHeader`] + input values |
//! | [`EVENT_RESULT`] | provider → server | [`ResultMessage`] JSON: a [`Frame`] of [`ResultHeader`] + output values, in base64 |
//! | [`EVENT_OP_FAILED`] | provider → server | [`OpFailedReport`] JSON |
//! | [`EVENT_WITHDRAW`] | server → provider | [`Withdraw`] JSON |
//! | [`EVENT_REJECTED`] | server → provider | [`Rejected`] JSON |
//! | [`EVENT_CREDENTIALS`] | server → provider | [`crate::messages::FtpCredentials`] JSON, once after connect |
//!
//! A subgraph that trains names the training state it starts from ([`TrainingState`]) and may
//! carry the graph's [`Checkpoint`]; its result carries the checkpoint after it.
//!
//! Values whose encoding is longer than the credentials' `inline_limit` travel through ravftp
//! instead of the frame: the header lists them in `files` and each is a file in the provider's
//! FTP home ([`crate::messages::FileValue`]). So do the values past a frame's [`InlineBudget`]:
//! many values each under the limit must not add up to a message over socket.io's limit.
//!
//! Replies are separate events rather than socket.io acks, because the Rust client cannot
//! answer a server-to-client ack (../shared/design/DEPS.md).

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::frame::{Frame, FrameError};
use crate::ids::{GraphId, OpId};
use crate::ops::Operation;
use crate::tensor::Value;
use serde::{Deserialize, Serialize};

/// The socket.io namespace of providers.
pub const NAMESPACE: &str = "/provider";
/// Provider → server: which graph it wants to work on.
pub const EVENT_JOIN: &str = "join";
/// Server → provider: a subgraph to compute.
pub const EVENT_ASSIGN: &str = "assign";
/// Provider → server: the outputs of an assignment.
pub const EVENT_RESULT: &str = "result";
/// Provider → server: an op of an assignment failed.
pub const EVENT_OP_FAILED: &str = "op_failed";
/// Server → provider: drop an assignment.
pub const EVENT_WITHDRAW: &str = "withdraw";
/// Server → provider: the provider may not join what it asked for.
pub const EVENT_REJECTED: &str = "rejected";
/// Server → provider: its ravftp credentials for this connection.
pub const EVENT_CREDENTIALS: &str = "ftp_credentials";
/// Server → provider: an event it sent was malformed or unknown, and was dropped (an
/// [`crate::messages::ErrorBody`]; a connection that keeps sending such events is closed).
pub const EVENT_REFUSED: &str = "refused";

/// The operator an [`OpFailedReport`] (and the failure a requester sees) names when the
/// failure concerns the subgraph as a whole rather than one of its ops: inputs that could not
/// be fetched, a checkpoint that does not fit, results the server could not store.
pub const SUBGRAPH: &str = "subgraph";

/// Encoded bytes of inline values one frame carries at most, whatever the inline limit: far
/// under the 64 MiB socket.io message limit, also once a result's values are base64 text.
pub const MAX_INLINE_PER_FRAME: u64 = 8 << 20;

/// Which values of one frame go inline, in the frame's order: each no longer than the inline
/// limit, while their total stays within 8 values at the limit (at most
/// [`MAX_INLINE_PER_FRAME`]); the others travel through ravftp. Both sides use it: ravsock for
/// an assignment's inputs, the provider for its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlineBudget {
    limit: u64,
    left: u64,
}

impl InlineBudget {
    /// The budget of one frame under `inline_limit` (the credentials' or the server's).
    pub fn new(inline_limit: u64) -> InlineBudget {
        InlineBudget { limit: inline_limit, left: inline_limit.saturating_mul(8).min(MAX_INLINE_PER_FRAME) }
    }

    /// Whether a value of `len` encoded bytes goes inline; if so it is counted.
    pub fn admit(&mut self, len: u64) -> bool {
        let inline = len <= self.limit && len <= self.left;
        if inline {
            self.left -= len;
        }
        inline
    }
}

/// The socket.io auth payload of a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderAuth {
    /// The provider's token.
    pub token: String,
    /// [`crate::PROTOCOL_VERSION`] of the provider.
    pub protocol_version: u32,
}

/// A provider's benchmark and the graph it wants (any when `None`). One message, because
/// the server handles events concurrently: a separate benchmark event could arrive second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The provider's self-measurement.
    pub benchmark: crate::messages::Benchmark,
    /// The graph.
    #[serde(default)]
    pub graph: Option<GraphId>,
    /// The compute groups it joins (`ravpy participate --group key:secret`): it also computes
    /// the jobs limited to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<crate::jobs::ComputeGroup>,
}

/// One op of an assignment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignedOp {
    /// Server id.
    pub id: OpId,
    /// Operator and params.
    pub operation: Operation,
    /// Inputs: ops of this assignment or values sent along.
    pub inputs: Vec<OpId>,
}

/// Header of an [`EVENT_ASSIGN`] frame; the frame's values are those of `inputs`, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignHeader {
    /// The assignment (answer with it).
    pub assignment: u64,
    pub graph: GraphId,
    /// Ops to compute, in order.
    pub ops: Vec<AssignedOp>,
    /// Ids of the values that follow in the frame.
    pub inputs: Vec<OpId>,
    /// Ops whose values must be sent back.
    pub outputs: Vec<OpId>,
    /// Input values too big for the frame: files in the provider's ravftp home (download, then
    /// delete them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::messages::FileValue>,
    /// For a subgraph that trains: the training state it starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TrainingState>,
}

/// The training state an assignment starts from.
///
/// The server attaches the graph's [`Checkpoint`] (as the frame's last value, after the
/// inputs) unless this provider is known to hold exactly `version`: a provider that does not
/// hold that version and got no checkpoint gives the assignment back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingState {
    /// Training assignments of the graph completed before this one.
    pub version: u64,
    /// Whether the checkpoint of `version` follows the inputs.
    #[serde(default)]
    pub checkpoint: bool,
}

/// Header of an [`EVENT_RESULT`] frame; the frame's values are those of `outputs`, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultHeader {
    /// The assignment answered.
    pub assignment: u64,
    /// Ids of the values that follow.
    pub outputs: Vec<OpId>,
    /// Output values too big for the frame, uploaded to the provider's ravftp home first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::messages::FileValue>,
    /// Whether the training state after this assignment follows the outputs as the frame's
    /// last value (every assignment that trains sends one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checkpoint: bool,
}

impl Frame<AssignHeader> {
    /// Removes and decodes the checkpoint the header announces, if any.
    pub fn take_checkpoint(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let announced = self.header.state.as_ref().is_some_and(|s| s.checkpoint);
        take_last_checkpoint(&mut self.values, announced, self.header.inputs.len())
    }

    /// Appends a checkpoint after the inputs and announces it.
    pub fn attach_checkpoint(&mut self, checkpoint: &Checkpoint) {
        self.values.push(checkpoint.to_value());
        self.header.state = Some(TrainingState { version: checkpoint.version, checkpoint: true });
    }
}

impl Frame<ResultHeader> {
    /// Removes and decodes the checkpoint the header announces, if any.
    pub fn take_checkpoint(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let announced = std::mem::take(&mut self.header.checkpoint);
        take_last_checkpoint(&mut self.values, announced, self.header.outputs.len())
    }

    /// Appends a checkpoint after the outputs and announces it.
    pub fn attach_checkpoint(&mut self, checkpoint: &Checkpoint) {
        self.values.push(checkpoint.to_value());
        self.header.checkpoint = true;
    }
}

fn take_last_checkpoint(
    values: &mut Vec<Value>,
    announced: bool,
    listed: usize,
) -> Result<Option<Checkpoint>, CheckpointError> {
    if !announced {
        return Ok(None);
    }
    if values.len() != listed + 1 {
        return Err(CheckpointError::TensorCount { expected: listed + 1, got: values.len() });
    }
    let value = values.pop().expect("counted");
    Checkpoint::from_value(&value).map(Some)
}

/// An [`EVENT_RESULT`] message: the result frame in base64, in one text message.
///
/// Not a binary socket.io event: the Rust client sends a binary event as two websocket
/// messages (a placeholder, then the attachment), and the second small write waits for the
/// server's delayed ACK under Nagle's algorithm, which the client does not let us turn off:
/// 40 ms added to every round trip. Big values go through ravftp, so what is encoded here
/// is at most the inline limit per value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultMessage {
    /// [`Frame::encode`] of the result, in standard base64.
    pub frame: String,
}

impl ResultMessage {
    /// Wraps a result frame.
    pub fn new(frame: &Frame<ResultHeader>) -> ResultMessage {
        use base64::Engine;
        ResultMessage { frame: base64::engine::general_purpose::STANDARD.encode(frame.encode()) }
    }

    /// Unwraps the result frame.
    pub fn decode(&self) -> Result<Frame<ResultHeader>, FrameError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.frame)
            .map_err(|_| FrameError::Layout("result frame is not base64"))?;
        Frame::decode(&bytes)
    }
}

/// An op of an assignment failed on the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpFailedReport {
    pub assignment: u64,
    /// The op.
    pub op_id: OpId,
    /// Its operator's short name.
    pub operator: String,
    /// The kernel's message.
    pub reason: String,
    /// Whether another attempt may succeed (false for a kernel refusing its inputs).
    pub retryable: bool,
    /// Set when the op was refused, before it allocated anything, for needing more memory
    /// than this provider's budget: a provider with a bigger budget may compute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<OverBudget>,
}

/// An op needs more memory than a provider's budget ([`crate::messages::Benchmark::memory_budget_bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverBudget {
    /// The bound of what the op would take (its result and its kernel's working memory).
    pub needed_bytes: u64,
    /// The provider's budget.
    pub budget_bytes: u64,
}

/// Drop an assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    pub assignment: u64,
}

/// The provider may not do what it asked, or may no longer do what it was doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    /// Why, for people.
    pub reason: String,
    /// Why, for programs: what the provider should do next depends on it.
    pub code: RejectionCode,
}

/// Why a provider was rejected, and so what it should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The chosen graph exists but is not executing yet: join again later.
    NotExecuting,
    /// The chosen graph has ended (computed, failed or cancelled), or the graph this provider
    /// was bound to just ended: choose another.
    Finished,
    /// No such graph.
    NotFound,
    /// This provider does not meet the chosen graph's requirements.
    Requirements,
    /// The provider's account is quarantined for failures it caused; the reason says until when.
    Quarantined,
    /// The provider missed a deadline; the server closes its connection after this message
    /// (the provider may connect again at once).
    Evicted,
    /// A compute group it named does not exist or its secret is wrong.
    Group,
}
