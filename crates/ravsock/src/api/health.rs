//! `GET /healthz` and `GET /readyz`: no token, so a load balancer or an orchestrator may ask;
//! `GET /metrics` (Prometheus, an admin token: `authorization` in the scrape config).

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// The process serves requests.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// 200 with every check when the server can take work, 503 with the failing ones named.
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ravproto::messages::Readiness>) {
    let readiness = state.graphs.readiness().await;
    let status = match readiness.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(readiness))
}

/// The metrics in the OpenMetrics text format.
pub(super) async fn metrics(
    State(state): State<AppState>,
    super::extract::Caller(caller): super::extract::Caller,
) -> crate::error::Result<([(axum::http::HeaderName, &'static str); 1], String)> {
    let text = state.graphs.metrics(&caller).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}
