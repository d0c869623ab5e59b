//! Extractors of the HTTP front door: axum's `Json` and `Path`, whose refusals become JSON
//! [`Error`]s instead of plain text, the authenticated [`Caller`], and [`GraphCall`] (both, with
//! the graph id of the path).

use super::AppState;
use crate::db::Account;
use crate::error::{Error, Result};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

/// `axum::Json`, but a malformed body becomes a JSON [`Error`] instead of plain text.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Json<T>> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, but a malformed id becomes a JSON [`Error`].
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}

/// The authenticated caller: the account of the bearer token.
pub struct Caller(pub Account);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(Error::Unauthorized)?;
        let token = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or(Error::Unauthorized)?;
        let account = state.db.account_by_token(token.trim()).await?.ok_or(Error::Unauthorized)?;
        Ok(Caller(account))
    }
}

/// What most handlers take: the state, the caller and the graph id of a `…/{id}/…` route
/// (the caller is checked first, so a bad token answers 401 whatever the path).
pub struct GraphCall {
    /// The handlers' state.
    pub state: AppState,
    /// The authenticated caller.
    pub caller: Account,
    /// The graph id in the path.
    pub id: u64,
}

impl FromRequestParts<AppState> for GraphCall {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<GraphCall> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        let Path(id) = Path::<u64>::from_request_parts(parts, state).await?;
        Ok(GraphCall { state: state.clone(), caller, id })
    }
}
