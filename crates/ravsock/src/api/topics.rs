//! The topic routes' handlers: each reads its request and calls [`crate::service::Topics`].
//! Every body is small (a spec, one number).

use super::AppState;
use super::extract::{Caller, GraphCall, Json, Path};
use crate::error::Result;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use ravproto::routes;
use ravproto::topics::{AnswerReceipt, AnswerRequest, Round, RoundList, Topic, TopicList, TopicSpec, TruthRequest};

/// The topic routes (merged into [`super::router`]).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::TOPICS, post(open).get(list))
        .route(routes::TOPIC, get(topic))
        .route(routes::TOPIC_CLOSE, post(close))
        .route(routes::TOPIC_ROUNDS, get(rounds))
        .route(routes::TOPIC_ROUND_WAIT, get(wait))
        .route(routes::TOPIC_ANSWERS, post(answer))
        .route(routes::TOPIC_TRUTH, post(truth))
        .layer(super::extract::body_limit(super::MAX_SMALL_BODY_BYTES))
}

async fn open(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(spec): Json<TopicSpec>,
) -> Result<Json<Topic>> {
    Ok(Json(state.topics.open(&caller, spec).await?))
}

async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<TopicList>> {
    Ok(Json(state.topics.list(&caller).await?))
}

async fn topic(call: GraphCall) -> Result<Json<Topic>> {
    Ok(Json(call.state.topics.get(&call.caller, call.id).await?))
}

async fn close(call: GraphCall) -> Result<Json<Topic>> {
    Ok(Json(call.state.topics.close(&call.caller, call.id).await?))
}

#[derive(serde::Deserialize)]
struct RangeQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    to: Option<u64>,
}

async fn rounds(call: GraphCall, Query(range): Query<RangeQuery>) -> Result<Json<RoundList>> {
    Ok(Json(call.state.topics.rounds(&call.caller, call.id, range.from, range.to).await?))
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    #[serde(default)]
    timeout_ms: Option<u64>,
}

async fn wait(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, round)): Path<(u64, u64)>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<RoundList>> {
    Ok(Json(state.topics.wait_round(&caller, id, round, query.timeout_ms).await?))
}

async fn answer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, round)): Path<(u64, u64)>,
    Json(body): Json<AnswerRequest>,
) -> Result<Json<AnswerReceipt>> {
    Ok(Json(state.topics.answer(&caller, id, round, body.value).await?))
}

async fn truth(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, round)): Path<(u64, u64)>,
    Json(body): Json<TruthRequest>,
) -> Result<Json<Round>> {
    Ok(Json(state.topics.truth(&caller, id, round, body.value).await?))
}
