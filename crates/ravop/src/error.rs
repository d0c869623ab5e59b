//! Errors of the requester SDK.

use ravproto::OpId;

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
}

/// Result alias of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;
