//! The ledger's routes: `GET /v1/account` and `/v1/account/entries` for any caller (its own
//! account only), and the admin's `POST /v1/admin/credit`; each a call of
//! [`crate::service::ledger`].

use super::AppState;
use super::extract::{Admin, Caller, Json};
use crate::error::Result;
use crate::service::ledger;
use axum::extract::{Query, State};
use ravproto::ledger::{Balance, CreditRequest, Entry, EntryPage};

pub(super) async fn balance(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Balance>> {
    Ok(Json(ledger::balance(&state.db, &caller).await?))
}

#[derive(serde::Deserialize)]
pub(super) struct PageQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

pub(super) async fn entries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<EntryPage>> {
    Ok(Json(ledger::entries(&state.db, &caller, page.after, page.limit).await?))
}

pub(super) async fn credit(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(request): Json<CreditRequest>,
) -> Result<Json<Entry>> {
    Ok(Json(ledger::credit(&state.db, &caller, request).await?))
}
