//! The requester API's handlers (JSON bodies from `ravproto::messages`): each reads its
//! request and calls [`crate::service::Graphs`].

use super::AppState;
use super::extract::{Caller, GraphCall, Json, Path};
use crate::error::Result;
use axum::extract::{Query, State};
use ravproto::Value;
use ravproto::messages::{
    Approach, CreateGraphResponse, FtpCredentials, GraphMeta, GraphProgress, OpChunkRequest, OpChunkResponse,
    OpenGraph, ResultFile, RunGraphRequest, RunGraphResponse,
};

pub(super) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(meta): Json<GraphMeta>,
) -> Result<Json<CreateGraphResponse>> {
    Ok(Json(state.graphs.create(&caller, &meta).await?))
}

pub(super) async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Vec<GraphProgress>>> {
    Ok(Json(state.graphs.list(&caller).await?))
}

#[derive(serde::Deserialize)]
pub(super) struct UploadQuery {
    /// Execute the graph once this (last) chunk is stored: one request instead of two.
    #[serde(default)]
    execute: bool,
}

pub(super) async fn upload(
    call: GraphCall,
    Query(query): Query<UploadQuery>,
    Json(chunk): Json<OpChunkRequest>,
) -> Result<Json<OpChunkResponse>> {
    Ok(Json(call.state.graphs.upload(&call.caller, call.id, chunk, query.execute).await?))
}

pub(super) async fn run(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(request): Json<RunGraphRequest>,
) -> Result<Json<RunGraphResponse>> {
    Ok(Json(state.graphs.run(&caller, request).await?))
}

pub(super) async fn execute(call: GraphCall) -> Result<Json<GraphProgress>> {
    Ok(Json(call.state.graphs.execute(&call.caller, call.id).await?))
}

pub(super) async fn cancel(call: GraphCall) -> Result<Json<GraphProgress>> {
    Ok(Json(call.state.graphs.cancel(&call.caller, call.id).await?))
}

pub(super) async fn progress(call: GraphCall) -> Result<Json<GraphProgress>> {
    Ok(Json(call.state.graphs.progress(&call.caller, call.id).await?))
}

#[derive(serde::Deserialize)]
pub(super) struct WaitQuery {
    #[serde(default)]
    timeout_ms: Option<u64>,
}

pub(super) async fn wait(call: GraphCall, Query(query): Query<WaitQuery>) -> Result<Json<GraphProgress>> {
    Ok(Json(call.state.graphs.wait(&call.caller, call.id, query.timeout_ms).await?))
}

pub(super) async fn result(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(u64, String)>,
) -> Result<Json<Value>> {
    Ok(Json(state.graphs.result(&caller, id, &name).await?))
}

pub(super) async fn result_file(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(u64, String)>,
) -> Result<Json<ResultFile>> {
    Ok(Json(state.graphs.result_file(&caller, id, &name).await?))
}

#[derive(serde::Deserialize)]
pub(super) struct OpenQuery {
    #[serde(default)]
    approach: Option<Approach>,
}

/// Graphs that providers may join now (a requester sees only its own).
pub(super) async fn open_graphs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<OpenQuery>,
) -> Result<Json<Vec<OpenGraph>>> {
    Ok(Json(state.graphs.open_graphs(&caller, query.approach).await?))
}

pub(super) async fn ftp_credentials(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<FtpCredentials>> {
    Ok(Json(state.graphs.ftp_credentials(&caller)?))
}
