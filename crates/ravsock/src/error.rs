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
    /// Missing, unknown, expired or revoked token; the message says which.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not touch this resource.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (also used for other people's graphs, so ids leak nothing).
    #[error("{0}")]
    NotFound(String),
    /// The account's available balance is short of what the request would spend.
    #[error("{0}")]
    InsufficientFunds(String),
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
    /// A request body did not arrive within its deadline.
    #[error("{0}")]
    Timeout(String),
    /// The graph's values were removed after the result retention.
    #[error("{0}")]
    Expired(String),
    /// The value is too big for a JSON reply.
    #[error("{0}")]
    TooLarge(String),
    /// The data directory failed a read or write (a disk gone read-only or full).
    #[error("storage: {0}")]
    Storage(String),
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
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::InsufficientFunds(_) => ErrorCode::InsufficientFunds,
            Error::Expired(_) => ErrorCode::Expired,
            Error::Timeout(_) => ErrorCode::Timeout,
            Error::BadRequest(_) | Error::InvalidOp { .. } => ErrorCode::BadRequest,
            Error::Storage(_) => ErrorCode::Unavailable,
            Error::Database(error) if storage_fault(error) => ErrorCode::Unavailable,
            Error::Database(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether this is the server's storage failing (a database or disk that refuses writes,
    /// is full, or cannot be reached), which [`crate::health`] reports and which may pass.
    pub fn is_storage_fault(&self) -> bool {
        match self {
            Error::Storage(_) => true,
            Error::Database(error) => storage_fault(error),
            _ => false,
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            error if error.is_storage_fault() => {
                tracing::error!(cause = %self, "request failed: storage fault");
                format!("the server cannot use its storage now (see GET {}); try again later", ravproto::routes::READYZ)
            }
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

/// Whether a database error is its storage failing rather than a bad statement or a broken
/// invariant: SQLite's READONLY, IOERR, CORRUPT, FULL and CANTOPEN (the primary code is the
/// extended code's low byte), PostgreSQL's classes 53 (insufficient resources), 58 (system
/// error), 08 (connection), 57P (shutting down) and 25006 (read-only transaction), and a pool
/// or socket that cannot reach the database.
fn storage_fault(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(error) => {
            let Some(code) = error.code() else { return false };
            if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<i32>().is_ok_and(|extended| matches!(extended & 0xff, 8 | 10 | 11 | 13 | 14))
            } else {
                ["53", "58", "08", "57P"].iter().any(|class| code.starts_with(class)) || code == "25006"
            }
        }
        _ => false,
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
