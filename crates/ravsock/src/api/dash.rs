//! The dashboard's pages and data routes (`/dash`), behind one access check: a session cookie
//! from the login page, or a bearer token like the rest of the API ([`DashCaller`]).
//!
//! The pages and their script are built from `dash/` (npm, esbuild) into
//! `crates/ravsock/assets/dash`, committed, and embedded here, so the binary needs nothing
//! beside it. The login page is the only page served without a session; `/dash` without one
//! redirects to it, and the script, the style sheet and every data route answer 401.

use super::AppState;
use super::extract::{Caller, Path};
use crate::db::Account;
use crate::error::{Error, Result};
use crate::service::Dash;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ravproto::dash::{GraphPage, GraphView, OpView, Overview, ProviderRow, SESSION_COOKIE};
use ravproto::routes;

/// The built front end, embedded.
const INDEX_HTML: &str = include_str!("../../assets/dash/index.html");
const LOGIN_HTML: &str = include_str!("../../assets/dash/login.html");
const APP_JS: &str = include_str!("../../assets/dash/app.js");
const APP_CSS: &str = include_str!("../../assets/dash/app.css");
/// Where the login page's message goes.
const MESSAGE_SLOT: &str = "<!--message-->";
/// Longest token accepted by the login form (tokens are 68 characters).
const MAX_TOKEN_CHARS: usize = 256;

/// The session id in a request's `Cookie` header, if any.
pub(super) fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, id)| id.trim().to_string())
}

/// The caller of a dashboard route: a bearer token if one is sent, else the session cookie;
/// a provider token is refused (403).
pub(super) struct DashCaller(pub(super) Account);

impl FromRequestParts<AppState> for DashCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<DashCaller> {
        let caller = if parts.headers.contains_key(header::AUTHORIZATION) {
            Caller::from_request_parts(parts, state).await?.0
        } else {
            let Some(session) = session_of(&parts.headers) else {
                return Err(Error::Unauthorized(
                    "no dashboard session: log in at /dash/login, or send `Authorization: Bearer <token>`".into(),
                ));
            };
            state.dash.session_caller(&session).await?
        };
        Dash::check(&caller)?;
        Ok(DashCaller(caller))
    }
}

/// `GET /dash`: the dashboard, or a redirect to the login page without a session.
pub(super) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = match session_of(&headers) {
        Some(session) => state.dash.session_caller(&session).await.is_ok(),
        None => false,
    };
    if !signed_in {
        return Redirect::to(routes::DASH_LOGIN).into_response();
    }
    html(StatusCode::OK, INDEX_HTML.to_string(), APP_POLICY)
}

/// `GET /dash/login`.
pub(super) async fn login_page() -> Response {
    html(StatusCode::OK, LOGIN_HTML.replace(MESSAGE_SLOT, ""), LOGIN_POLICY)
}

/// The login form's fields.
#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

/// `POST /dash/login`: a session cookie and a redirect to the dashboard, or the login page
/// again with the reason.
pub(super) async fn login(
    State(state): State<AppState>,
    form: std::result::Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = match &form {
        Ok(axum::Form(form)) if form.token.trim().len() <= MAX_TOKEN_CHARS => form.token.trim(),
        _ => return login_refused(StatusCode::BAD_REQUEST, "Paste an API token (it starts with rav_)."),
    };
    match state.dash.login(token).await {
        Ok(session) => {
            let secure = if state.dash.secure { "; Secure" } else { "" };
            // Path `/`: the page's socket.io connection (`/socket.io/…`) must carry it too.
            // Only the dashboard's routes and namespace read it; the API takes bearer tokens.
            let cookie = format!(
                "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                crate::service::sessions::SESSION_LIFETIME.as_secs()
            );
            let mut response = Redirect::to(routes::DASH).into_response();
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                    response
                }
                Err(_) => Error::Internal("cannot write the session cookie".into()).into_response(),
            }
        }
        Err(Error::Unauthorized(_)) => {
            login_refused(StatusCode::UNAUTHORIZED, "That token is not valid (unknown, revoked or expired).")
        }
        Err(Error::Forbidden(_)) => login_refused(
            StatusCode::FORBIDDEN,
            "Provider tokens cannot open the dashboard: use a requester's or an admin's.",
        ),
        Err(error) => error.into_response(),
    }
}

fn login_refused(status: StatusCode, message: &str) -> Response {
    let paragraph = format!("<p class=\"refusal\" role=\"alert\">{message}</p>");
    html(status, LOGIN_HTML.replace(MESSAGE_SLOT, &paragraph), LOGIN_POLICY)
}

/// `POST /dash/logout`: ends the session and clears its cookie.
pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = session_of(&headers) {
        state.dash.sessions.end(&session);
    }
    let mut response = Redirect::to(routes::DASH_LOGIN).into_response();
    let cleared = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /dash/assets/{name}`: the script and the style sheet.
pub(super) async fn asset(_caller: DashCaller, Path(name): Path<String>) -> Result<Response> {
    let (body, kind) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return Err(Error::NotFound(format!("no dashboard asset `{}`", name.escape_debug()))),
    };
    Ok(([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response())
}

/// The dashboard page's content security policy: everything from here, no inline script or
/// style, nothing may frame it.
const APP_POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";
/// The login page's: its own inline style and nothing else.
const LOGIN_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'";

fn html(status: StatusCode, body: String, policy: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (status, headers, body).into_response()
}

/// `GET /dash/api/overview`.
pub(super) async fn overview(
    State(state): State<AppState>,
    DashCaller(caller): DashCaller,
) -> Result<axum::Json<Overview>> {
    Ok(axum::Json(state.dash.overview(&caller).await?))
}

/// `GET /dash/api/providers` (admins).
pub(super) async fn providers(
    State(state): State<AppState>,
    DashCaller(caller): DashCaller,
) -> Result<axum::Json<Vec<ProviderRow>>> {
    Ok(axum::Json(state.dash.providers(&caller).await?))
}

/// The graphs table's query.
#[derive(serde::Deserialize)]
pub(super) struct GraphQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: u64,
    #[serde(default = "default_per_page")]
    per_page: u64,
}

fn default_per_page() -> u64 {
    25
}

/// `GET /dash/api/graphs?q=&page=&per_page=`.
pub(super) async fn graphs(
    State(state): State<AppState>,
    DashCaller(caller): DashCaller,
    query: std::result::Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<GraphPage>> {
    let Query(query) = query.map_err(|e| Error::BadRequest(format!("bad graphs query: {}", e.body_text())))?;
    Ok(axum::Json(state.dash.graphs(&caller, &query.q, query.page, query.per_page).await?))
}

/// `GET /dash/api/graphs/{id}`.
pub(super) async fn graph(
    State(state): State<AppState>,
    DashCaller(caller): DashCaller,
    Path(id): Path<u64>,
) -> Result<axum::Json<GraphView>> {
    Ok(axum::Json(state.dash.graph(&caller, id).await?))
}

/// `GET /dash/api/graphs/{id}/ops/{op}`.
pub(super) async fn op(
    State(state): State<AppState>,
    DashCaller(caller): DashCaller,
    Path((id, op)): Path<(u64, u64)>,
) -> Result<axum::Json<OpView>> {
    Ok(axum::Json(state.dash.op(&caller, id, op).await?))
}

/// The dashboard's routes.
pub(super) fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(routes::DASH, get(page))
        .route(routes::DASH_LOGIN, get(login_page).post(login))
        .route(routes::DASH_LOGOUT, post(logout))
        .route(routes::DASH_ASSET, get(asset))
        .route(routes::DASH_OVERVIEW, get(overview))
        .route(routes::DASH_PROVIDERS, get(providers))
        .route(routes::DASH_GRAPHS, get(graphs))
        .route(routes::DASH_GRAPH, get(graph))
        .route(routes::DASH_OP, get(op))
}
