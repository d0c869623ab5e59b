//! The federated routes' handlers: each reads its request and calls
//! [`crate::service::Federated`]. Key uploads and submissions have body limits of their own.

use super::AppState;
use super::extract::{GraphCall, Json, LaterBody, body_limit};
use crate::error::Result;
use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post, put};
use ravproto::federated::{FederatedAggregate, FederatedPayload, FederatedSpec};
use ravproto::routes;

/// Largest evaluation-key upload (a compressed tfhe server key is about 60 MB).
pub const MAX_KEYS_BYTES: usize = 256 << 20;
/// Largest submission body (a few KB of ciphertext in practice).
pub const MAX_SUBMISSION_BYTES: usize = 4 << 20;

/// The federated routes (merged into [`super::router`]).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::FEDERATED, get(spec))
        .route(routes::FEDERATED_WAIT, get(wait))
        .route(routes::FEDERATED_KEYS, put(upload_keys).layer(body_limit(MAX_KEYS_BYTES)))
        .route(routes::FEDERATED_PUBLIC_KEY, get(public_key))
        .route(routes::FEDERATED_SUBMISSIONS, post(submit).layer(body_limit(MAX_SUBMISSION_BYTES)))
        .route(routes::FEDERATED_CLOSE, post(close))
}

async fn spec(call: GraphCall) -> Result<Json<FederatedSpec>> {
    Ok(Json(call.state.federated.spec(&call.caller, call.id).await?))
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    #[serde(default)]
    contributors_above: u32,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

async fn wait(call: GraphCall, Query(query): Query<WaitQuery>) -> Result<Json<FederatedSpec>> {
    let GraphCall { state, caller, id } = call;
    Ok(Json(state.federated.wait(&caller, id, query.contributors_above, query.timeout_ms).await?))
}

/// The caller, the graph and its mode are checked before the body (up to 256 MiB) is read.
async fn upload_keys(call: GraphCall, body: LaterBody) -> Result<Json<FederatedSpec>> {
    let (graph, spec) = call.state.federated.keys_accepted(&call.caller, call.id).await?;
    let keys = body.read().await?;
    Ok(Json(call.state.federated.store_keys(graph, spec, keys).await?))
}

async fn public_key(call: GraphCall) -> Result<axum::response::Response> {
    let key = call.state.federated.public_key(&call.caller, call.id).await?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        key,
    )))
}

async fn submit(call: GraphCall, Json(payload): Json<FederatedPayload>) -> Result<Json<FederatedSpec>> {
    Ok(Json(call.state.federated.submit(&call.caller, call.id, payload).await?))
}

async fn close(call: GraphCall) -> Result<Json<FederatedAggregate>> {
    Ok(Json(call.state.federated.close(&call.caller, call.id).await?))
}
