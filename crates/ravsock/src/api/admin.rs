//! The admin routes (`/v1/admin/…`): token management, each a call of
//! [`crate::service::tokens`]. Every other role is answered 403 (by the [`Admin`] extractor,
//! before a body is read; the services check again).

use super::AppState;
use super::extract::{Admin, Json, Path};
use crate::error::Result;
use crate::service::tokens;
use axum::extract::State;
use axum::http::StatusCode;
use ravproto::accounts::{CreateTokenRequest, CreatedToken, TokenList};

pub(super) async fn list_tokens(State(state): State<AppState>, Admin(caller): Admin) -> Result<Json<TokenList>> {
    Ok(Json(tokens::list(&state.db, &caller).await?))
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(request): Json<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    Ok((StatusCode::CREATED, Json(tokens::create(&state.db, &caller, request).await?)))
}

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    tokens::revoke(&state.db, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
