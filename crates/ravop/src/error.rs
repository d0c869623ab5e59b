//! Errors of the requester SDK.

use ravproto::messages::{ErrorCode, OpFailure, OpRef};
use ravproto::{GraphId, OpId};

/// Everything that can go wrong building, validating or running a graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An op was built wrongly (recorded while building, reported before running).
    #[error("{op} (`{operator}`): {reason}")]
    Build {
        /// The op that was being built.
        op: OpId,
        /// Its operator's short name.
        operator: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An op could take more memory than the executor's budget
    /// ([`crate::LocalExecutor::with_memory_budget`]); refused before it allocated anything.
    #[error("{op} (`{operator}`) needs up to {needed} bytes, over the memory budget of {budget} bytes")]
    OverBudget {
        /// The refused op.
        op: OpId,
        /// Its operator's short name.
        operator: &'static str,
        /// The bound of what it would take.
        needed: u128,
        /// The budget.
        budget: u64,
    },
    /// A call in the original's form ([`crate::Graph::call`]) names no catalogue op or
    /// cannot be translated; nothing was recorded.
    #[error("`{name}`: {reason}")]
    Call {
        /// The name called.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A kernel refused its inputs at run time.
    #[error("{op_id} failed: {source}")]
    Exec {
        /// The failing op.
        op_id: OpId,
        /// The kernel's error (names the operator and the reason).
        source: ravexec::ExecError,
    },
    /// No persisted result has this name.
    #[error("no persisted result named `{0}`")]
    UnknownResult(String),
    /// The persisted result is a list, not a tensor.
    #[error("result `{0}` is a list, not a tensor")]
    NotATensor(String),
    /// The server refused a request.
    #[error("server refused the request ({status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Kind of refusal.
        code: ErrorCode,
        /// The server's reason.
        message: String,
        /// The uploaded op it concerns, by the client's id.
        op: Option<OpRef>,
    },
    /// A bulk transfer through ravftp failed.
    #[error("bulk transfer failed: {0}")]
    Ftp(String),
    /// [`crate::Client::from_env`] found no token in the environment or `.env`.
    #[error("no token: set RAVSOCK_TOKEN (or the original's TOKEN) in the environment or in .env")]
    NoToken,
    /// The `.env` file cannot be read.
    #[error("{0}")]
    Settings(String),
    /// The server could not be reached or answered garbage.
    #[error("cannot talk to the server: {0}")]
    Transport(String),
    /// The client will not talk to the server: plain HTTP to another machine, a certificate
    /// it does not trust, or a CA file it cannot use.
    #[error("{0}")]
    Trust(String),
    /// The graph failed on the grid.
    #[error("{graph} failed{}", failure.as_ref().map(|f| format!(" at {} (`{}`): {}", f.op_id, f.operator, f.reason)).unwrap_or_default())]
    GraphFailed {
        graph: GraphId,
        /// The op and the reason.
        failure: Option<OpFailure>,
    },
    /// The graph was cancelled.
    #[error("{0} was cancelled")]
    Cancelled(GraphId),
    /// A federated query cannot be made or answered (keys, rules, a missing feature).
    #[error("federated query: {0}")]
    Federated(String),
}

/// Result alias of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ravclient::Error> for Error {
    fn from(error: ravclient::Error) -> Error {
        match error {
            ravclient::Error::Server { status, code, message, op } => Error::Server { status, code, message, op },
            ravclient::Error::Transport(message) => Error::Transport(message),
            ravclient::Error::Trust(message) => Error::Trust(message),
        }
    }
}
