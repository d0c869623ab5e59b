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

/// `error` and the errors under it, joined by `: ` (reqwest's and rust_socketio's own messages
/// leave out why, such as a refused connection or a refused certificate).
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

/// The refusal of a server certificate the client does not trust, for `server`, because of
/// `why`: the same sentence whichever connection (HTTP, socket.io) met it.
pub(crate) fn untrusted(server: &str, why: &str) -> Error {
    Error::Trust(format!(
        "the server at {server} presented a certificate this client does not trust ({why}): pass --ca-cert with \
         the CA that signed it"
    ))
}
