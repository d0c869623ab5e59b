//! ravsock's errors and how each reaches a client.
//!
//! Every variant maps to an [`ErrorCode`] and an HTTP status. Database and other internal
//! details are logged and replaced by a generic message before they leave the server.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ravproto::messages::{ErrorBody, ErrorCode, OpRef};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or unknown token.
    #[error("missing or invalid token")]
    Unauthorized,
    /// The caller may not touch this resource.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (also used for other people's graphs, so ids leak nothing).
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// The body is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// An uploaded op is invalid.
    #[error("op {op:?}: {reason}")]
    InvalidOp {
        /// The op, by the client's id.
        op: OpRef,
        /// Why.
        reason: String,
    },
    /// The value is too big for a JSON reply.
    #[error("{0}")]
    TooLarge(String),
    /// A database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Anything else that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of ravsock.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::BadRequest(_) | Error::InvalidOp { .. } => ErrorCode::BadRequest,
            Error::Database(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(cause = %self, "request failed");
                "internal server error (details are in the server log)".to_string()
            }
            other => other.to_string(),
        };
        let op = if let Error::InvalidOp { op, .. } = self { Some(*op) } else { None };
        ErrorBody { code: self.code(), message, op }
    }
}

/// HTTP status of a wire error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = self.body();
        (status_of(body.code), Json(body)).into_response()
    }
}
