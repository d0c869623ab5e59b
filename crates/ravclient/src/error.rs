//! Why a request to ravsock failed.

use ravproto::messages::{ErrorBody, ErrorCode, OpRef};

/// A request that got no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The server refused the request, with its typed reason.
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
    /// The server could not be reached or answered something that is not its API.
    #[error("cannot talk to the server: {0}")]
    Transport(String),
    /// The client will not talk to the server: a plain `http://` URL to another machine, a
    /// server certificate it does not trust, or a CA file it cannot use.
    #[error("{0}")]
    Trust(String),
}

impl Error {
    /// The refusal `body`, answered with HTTP `status`.
    pub fn refused(status: u16, body: ErrorBody) -> Error {
        Error::Server { status, code: body.code, message: body.message, op: body.op }
    }
}

/// Result alias of the client layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
