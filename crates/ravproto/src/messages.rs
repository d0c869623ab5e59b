//! HTTP bodies shared by the requester SDK and the scheduler server.
//!
//! Port of the original's requester endpoints (§3.3) with its weaknesses removed: the server
//! allocates graph ids, ops reference each other by a tagged local or server id instead of the
//! `{"global_flag": "True"}` strings, and params are typed instead of JSON strings inside JSON.

use crate::ids::{GraphId, OpId};
use crate::ops::Operation;
use crate::status::{GraphStatus, OpStatus};
use crate::tensor::Value;
use crate::verify::Verify;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::federated::{ColumnRule, FederatedRules, Privacy};

/// How a graph is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approach {
    /// Subgraphs computed by providers.
    #[default]
    Distributed,
    /// Statistics over providers' private data.
    Federated,
}

/// What a provider must offer to take part in a graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Least total RAM, in bytes.
    #[serde(default)]
    pub min_ram_bytes: Option<u64>,
    /// A GPU must be present.
    #[serde(default)]
    pub gpu_required: bool,
    /// Least benchmark score.
    #[serde(default)]
    pub min_speed_score: Option<f64>,
    /// The provider must run ONNX models (built with the `onnx` feature). ravsock sets it for
    /// graphs with `forward_pass` ops; a requester need not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub onnx_required: bool,
    /// Units a provider's account stakes to take part, when the graph pays (ravsock's
    /// `--accounting on`): moved from its available balance to staked at its first subgraph,
    /// returned when the graph ends, and [`crate::ledger::slash_amount`] of it kept if it leaves
    /// holding work or misses a deadline. 0: no stake.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_stake: u64,
    /// How its results are verified across providers ([`crate::verify`]); not serialized when
    /// [`Verify::None`], so graphs without it read the same to older providers.
    #[serde(default, skip_serializing_if = "Verify::is_none")]
    pub verify: Verify,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Requester-chosen description of a graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphMeta {
    /// Free-text name.
    pub name: String,
    /// Free-text algorithm label.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Distributed or federated.
    #[serde(default)]
    pub approach: Approach,
    /// Federated rules.
    #[serde(default)]
    pub rules: Option<FederatedRules>,
    /// Provider requirements.
    #[serde(default)]
    pub requirements: Requirements,
}

/// `POST /graphs` body.
pub type CreateGraphRequest = GraphMeta;

/// `POST /graphs` reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateGraphResponse {
    /// The id the server allocated.
    pub graph_id: GraphId,
}

/// A reference to an op from another op of the same upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpRef {
    /// An op of this or an earlier chunk, by the client's own number.
    Local(u64),
    /// An op the server already knows.
    Server(OpId),
}

/// One op in an upload chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecord {
    /// The client's number for this op (unique within the graph's uploads).
    pub local_id: u64,
    /// Operator and typed params.
    pub operation: Operation,
    /// Positional inputs.
    #[serde(default)]
    pub inputs: Vec<OpRef>,
    /// Name under which the result is kept for fetching.
    #[serde(default)]
    pub persist: Option<String>,
    /// Inline value of a `lin` op (small tensors; big ones are uploaded separately).
    #[serde(default)]
    pub value: Option<Value>,
    /// Value of a `lin` op uploaded through ravftp: a file name in the requester's FTP home
    /// holding [`Value::encode_binary`] (used for tensors above [`FtpCredentials::inline_limit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_file: Option<String>,
}

/// `POST /graphs/{id}/ops` body: one chunk of ops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpChunkRequest {
    /// Ops in dependency order.
    pub ops: Vec<OpRecord>,
}

/// `POST /graphs/{id}/ops` reply: the client's numbers mapped to server ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpChunkResponse {
    /// Local id → server id.
    pub id_map: BTreeMap<u64, OpId>,
}

/// `POST /graphs/run` body: a whole small graph in one request. The server creates it, stores
/// its ops and starts it in one transaction, then answers when the graph ends (or after
/// `wait_ms`), with its persisted results when asked: a single-op round trip is one request.
/// A graph bigger than one chunk, or with values uploaded through ravftp, goes the long way
/// (`POST /graphs`, `POST /graphs/{id}/ops`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunGraphRequest {
    /// The graph's description (not federated: those open to providers instead).
    pub meta: GraphMeta,
    /// Every op, in dependency order.
    pub ops: Vec<OpRecord>,
    /// Longest wait for the graph to end, in milliseconds (the server caps it; 0 answers at
    /// once, with the graph computing).
    #[serde(default)]
    pub wait_ms: u64,
    /// Whether the reply carries the persisted results of a computed graph.
    #[serde(default)]
    pub with_results: bool,
}

/// `POST /graphs/run` reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunGraphResponse {
    /// The graph's id and where it stands: still computing when the wait ran out.
    pub progress: GraphProgress,
    /// Persisted results by name, when asked for and the graph is computed; only those short
    /// enough to travel inline.
    #[serde(default)]
    pub results: BTreeMap<String, Value>,
    /// Names of persisted results too long to travel inline: fetch them through ravftp.
    #[serde(default)]
    pub large_results: Vec<String>,
}

/// Op counts and overall status of a graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphProgress {
    /// The graph.
    pub graph_id: GraphId,
    /// Overall status.
    pub status: GraphStatus,
    /// Ops per status.
    pub ops: BTreeMap<OpStatus, u64>,
    /// Computed share of all ops, 0 to 100.
    pub percent: f64,
    /// Why the graph failed, naming the op.
    #[serde(default)]
    pub failure: Option<OpFailure>,
}

impl GraphProgress {
    /// A graph's progress from its op counts (stored ones, or the scheduler's while it runs):
    /// `percent` is the computed share, 100 for a graph without ops.
    pub fn from_counts(
        graph_id: GraphId,
        status: GraphStatus,
        ops: BTreeMap<OpStatus, u64>,
        failure: Option<OpFailure>,
    ) -> GraphProgress {
        let total: u64 = ops.values().sum();
        let computed = ops.get(&OpStatus::Computed).copied().unwrap_or(0);
        let percent = if total == 0 { 100.0 } else { 100.0 * computed as f64 / total as f64 };
        GraphProgress { graph_id, status, ops, percent, failure }
    }
}

/// An op that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpFailure {
    /// The op.
    pub op_id: OpId,
    /// Its operator's short name.
    pub operator: String,
    /// The reason, as the kernel reported it.
    pub reason: String,
}

/// Kind of an error reply; maps to an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is malformed or an op is invalid.
    BadRequest,
    /// 401: missing or wrong token.
    Unauthorized,
    /// 403: the resource belongs to someone else.
    Forbidden,
    /// 404: no such resource.
    NotFound,
    /// 408: the request's body did not arrive in time (a big body is read at no less than a
    /// minimum rate, so a slow sender cannot hold the server's body budget).
    Timeout,
    /// 402: the account's available balance is short of what the request would spend (the
    /// message says how much is needed and how much is there).
    InsufficientFunds,
    /// 409: the request conflicts with the current state.
    Conflict,
    /// 410: the graph's results were removed: the server keeps an ended graph's values for a
    /// limited time (its result retention); the message says when they went.
    Expired,
    /// 413: too large: a request body over its route's limit, or a value too big for a JSON
    /// reply (fetch it through ravftp instead); the message names the limit.
    TooLarge,
    /// 426: protocol versions differ.
    VersionMismatch,
    /// 500: a server fault (details are in the server log only).
    Internal,
    /// 503: the server cannot do this now (its storage is failing: see `GET /readyz`); the
    /// same request may succeed later.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status of this kind of error (also reported for refusals over socket.io).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Timeout => 408,
            ErrorCode::InsufficientFunds => 402,
            ErrorCode::Conflict => 409,
            ErrorCode::Expired => 410,
            ErrorCode::TooLarge => 413,
            ErrorCode::VersionMismatch => 426,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// Whether the fault is the server's, so the same request may succeed later.
    pub fn is_server_fault(self) -> bool {
        matches!(self, ErrorCode::Internal | ErrorCode::Unavailable)
    }
}

/// `GET /readyz`: whether the server can take work now, check by check (503 when not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Every check passed.
    pub ready: bool,
    /// Each check, in a fixed order.
    pub checks: Vec<ReadinessCheck>,
    /// The last time the server failed to store something, and what, even if storage works
    /// again since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_storage_fault: Option<String>,
}

/// One check of [`Readiness`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessCheck {
    /// What was checked (`database`, `data_dir`, `scheduler`).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Body of every error reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Kind.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
    /// The op concerned, for validation errors.
    #[serde(default)]
    pub op: Option<OpRef>,
}

impl ErrorBody {
    /// The refusal of a socket.io connection, as the text of its CONNECT_ERROR packet: this
    /// body's JSON, so the client reads the code back with [`ErrorBody::from_connect_error`]
    /// instead of matching words.
    pub fn to_connect_error(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }

    /// The refusal in a socket.io client's connect error: `text` holds the CONNECT_ERROR
    /// packet's data (`{"message": "<to_connect_error's JSON>"}`), possibly after words of the
    /// client's own. `None` when it holds no refusal (a dropped connection, an older server).
    pub fn from_connect_error(text: &str) -> Option<ErrorBody> {
        let start = text.find('{')?;
        let data: serde_json::Value = serde_json::Deserializer::from_str(&text[start..]).into_iter().next()?.ok()?;
        match data.get("message") {
            Some(serde_json::Value::String(message)) if data.get("code").is_none() => {
                serde_json::from_str(message).ok()
            }
            _ => serde_json::from_value(data).ok(),
        }
    }
}

/// What a provider reports about itself after connecting (its own timed kernel suite).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    /// Total RAM, in bytes.
    pub ram_bytes: u64,
    /// CPU cores available to the provider.
    pub cores: u32,
    /// Whether a GPU is present.
    pub gpu: bool,
    /// Speed score: higher is faster (GFLOP/s of the benchmark's matmul).
    pub speed_score: f64,
    /// Whether the provider runs ONNX models (`forward_pass`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub onnx: bool,
    /// The most memory one op may take on this provider (its `--max-memory`); absent: half
    /// of `ram_bytes`. The scheduler sends an op that needs more only to a provider that has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget_bytes: Option<u64>,
}

impl Benchmark {
    /// The provider's memory budget for one op: [`Benchmark::memory_budget_bytes`], or half of
    /// its RAM (no limit when the RAM could not be measured: a budget of zero would refuse
    /// every op).
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget_bytes.unwrap_or(match self.ram_bytes {
            0 => u64::MAX,
            ram => ram / 2,
        })
    }
}

impl Requirements {
    /// What a provider needs to meet these requirements, as a person reads each one
    /// (`ram >= 2.0 GiB`, `verify replicas(2)`); empty when anyone may compute.
    pub fn needs(&self) -> Vec<String> {
        let mut needs = Vec::new();
        if let Some(ram) = self.min_ram_bytes {
            needs.push(format!("ram >= {:.1} GiB", ram as f64 / (1u64 << 30) as f64));
        }
        if self.gpu_required {
            needs.push("gpu".into());
        }
        if self.onnx_required {
            needs.push("onnx".into());
        }
        if let Some(score) = self.min_speed_score {
            needs.push(format!("speed >= {score}"));
        }
        if self.min_stake > 0 {
            needs.push(format!("stake {} units", self.min_stake));
        }
        if !self.verify.is_none() {
            needs.push(format!("verify {}", self.verify));
        }
        needs
    }

    /// Whether a provider with this benchmark may take part.
    pub fn accepts(&self, benchmark: &Benchmark) -> bool {
        self.shortfalls(benchmark).is_empty()
    }

    /// What a provider with this benchmark lacks, in words (empty: it may take part).
    pub fn shortfalls(&self, benchmark: &Benchmark) -> Vec<String> {
        let mut missing = Vec::new();
        if let Some(min) = self.min_ram_bytes.filter(|&min| benchmark.ram_bytes < min) {
            missing.push(format!("{min} bytes of RAM (it has {})", benchmark.ram_bytes));
        }
        if self.gpu_required && !benchmark.gpu {
            missing.push("a GPU".to_string());
        }
        if let Some(min) = self.min_speed_score.filter(|&min| benchmark.speed_score < min) {
            missing.push(format!("a speed score of {min} (it has {:.1})", benchmark.speed_score));
        }
        if self.onnx_required && !benchmark.onnx {
            missing.push("ONNX models (a provider built with `--features onnx`)".to_string());
        }
        missing
    }
}

/// Credentials for ravftp, the bulk-data server embedded in ravsock.
///
/// Encoded bytes of a value a client may always send inline (in an op chunk), whatever the
/// server's [`FtpCredentials::inline_limit`]; a bigger one only up to that limit, and through
/// ravftp above it.
pub const ALWAYS_INLINE_BYTES: u64 = 64 << 10;

/// Issued by ravsock: to a provider once per connection (event
/// [`crate::provider::EVENT_CREDENTIALS`]), to a requester by `POST /v1/ftp/credentials`. The
/// password is random and shown only here; ravftp keeps a salted hash. Each user has a home
/// directory of its own and cannot name a path outside it. Connect to the host of the ravsock
/// URL on `port`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpCredentials {
    /// The FTP port (on the ravsock host).
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password (never logged: `Debug` redacts it).
    pub password: String,
    /// Encoded values longer than this many bytes travel through ravftp, shorter ones inline.
    pub inline_limit: u64,
}

impl std::fmt::Debug for FtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpCredentials")
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("inline_limit", &self.inline_limit)
            .finish()
    }
}

/// A value that travels as a file in the receiver's (or sender's) ravftp home, holding
/// [`Value::encode_binary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileValue {
    /// The op whose value it is.
    pub op: OpId,
    /// File name in the home directory (see [`crate::files::valid_file_name`]).
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
}

/// `GET /graphs/{id}/results/{name}/file` reply: the result was placed in the caller's ravftp
/// home under `name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultFile {
    /// File name in the caller's home directory.
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
}

/// `GET /v1/open-graphs` reply item: a graph that providers may join now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenGraph {
    /// The graph.
    pub graph_id: GraphId,
    pub name: String,
    /// Distributed or federated.
    pub approach: Approach,
    /// What a provider needs to be given work.
    pub requirements: Requirements,
    /// Federated rules (shown to providers before they join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<FederatedRules>,
    /// Ops in the graph.
    pub ops: u64,
    /// Computed share, 0 to 100.
    pub percent: f64,
    /// Units it pays its providers in all, when it pays (ravsock's `--accounting on`): each
    /// subgraph pays the prices of its ops (`crate::ledger::op_price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pays: Option<u64>,
}
