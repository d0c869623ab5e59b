//! The job routes' handlers: each reads its request and calls [`crate::service::Jobs`]. A
//! new job carries its module, files and first slices, so its body may be as big as an op
//! chunk's; the others are small.

use super::AppState;
use super::extract::{Caller, GraphCall, Json, Path};
use crate::error::Result;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use ravproto::jobs::{AddSlices, EventPage, Job, JobList, JobSpec, ResultPage, SliceFile, SlicesAdded};
use ravproto::routes;

/// The job routes (merged into [`super::router`]).
pub(super) fn routes() -> Router<AppState> {
    let small = || super::extract::body_limit(super::MAX_SMALL_BODY_BYTES);
    Router::new()
        .route(routes::JOBS, post(create).get(list))
        .route(routes::JOB_SLICES, post(add_slices))
        .layer(super::extract::body_limit(super::MAX_BODY_BYTES))
        .route(routes::JOB, get(job).layer(small()))
        .route(routes::JOB_CLOSE, post(close).layer(small()))
        .route(routes::JOB_CANCEL, post(cancel).layer(small()))
        .route(routes::JOB_RESULTS, get(results).layer(small()))
        .route(routes::JOB_RESULT_FILE, get(result_file).layer(small()))
        .route(routes::JOB_EVENTS, get(events).layer(small()))
}

async fn create(State(state): State<AppState>, Caller(caller): Caller, Json(spec): Json<JobSpec>) -> Result<Json<Job>> {
    Ok(Json(state.jobs.create(&caller, spec).await?))
}

async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<JobList>> {
    Ok(Json(state.jobs.list(&caller).await?))
}

async fn job(call: GraphCall) -> Result<Json<Job>> {
    Ok(Json(call.state.jobs.get(&call.caller, call.id).await?))
}

async fn add_slices(call: GraphCall, Json(body): Json<AddSlices>) -> Result<Json<SlicesAdded>> {
    Ok(Json(call.state.jobs.add_slices(&call.caller, call.id, body).await?))
}

async fn close(call: GraphCall) -> Result<Json<Job>> {
    Ok(Json(call.state.jobs.end(&call.caller, call.id, false).await?))
}

async fn cancel(call: GraphCall) -> Result<Json<Job>> {
    Ok(Json(call.state.jobs.end(&call.caller, call.id, true).await?))
}

#[derive(serde::Deserialize)]
struct RangeQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    to: Option<u64>,
}

async fn results(call: GraphCall, Query(range): Query<RangeQuery>) -> Result<Json<ResultPage>> {
    Ok(Json(call.state.jobs.results(&call.caller, call.id, range.from, range.to).await?))
}

async fn result_file(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, slice)): Path<(u64, u64)>,
) -> Result<Json<SliceFile>> {
    Ok(Json(state.jobs.result_file(&caller, id, slice).await?))
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

async fn events(call: GraphCall, Query(query): Query<EventsQuery>) -> Result<Json<EventPage>> {
    Ok(Json(call.state.jobs.events(&call.caller, call.id, query.after, query.timeout_ms).await?))
}
