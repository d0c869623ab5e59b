//! Every route of the API, from `ravproto::routes::ALL` (ravsock registers no other: the tidy
//! test checks), called with each HTTP method: without a token or with a bad one it is 401
//! (405 for a method it does not serve), the health probes excepted; the admin routes and the
//! metrics refuse requesters and providers (403); and another requester's graph is neither
//! seen (the answer is the one about a graph that does not exist) nor changed through any
//! route that names it. A route added to the list
//! without its checks fails here; one registered outside it fails the tidy test.

use crate::http::{Server, seven_chunk};
use axum::http::StatusCode;
use ravproto::messages::{CreateGraphResponse, ErrorBody};
use ravproto::routes;
use ravsock::auth::Role;
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
/// Answered without a token: load balancers probe them.
const PUBLIC: [&str; 2] = [routes::HEALTHZ, routes::READYZ];
/// Only an admin token is served.
const ADMIN: [&str; 5] =
    [routes::ADMIN_TOKENS, routes::ADMIN_TOKEN_REVOKE, routes::ADMIN_CREDIT, routes::METRICS, routes::DASH_PROVIDERS];
/// The dashboard's pages, for browsers: without a session the page redirects to the login
/// page (303), the login page is shown (and refuses a form without a valid token), logging
/// out of nothing redirects to the login page. None of them answers any data.
const PAGES: [&str; 3] = [routes::DASH, routes::DASH_LOGIN, routes::DASH_LOGOUT];
/// The dashboard's data routes, which refuse provider tokens.
const DASH_DATA: [&str; 4] = [routes::DASH_OVERVIEW, routes::DASH_GRAPHS, routes::DASH_GRAPH, routes::DASH_OP];

/// `method path` as `token` with a JSON `body`: the status and the body (JSON, `null` when
/// empty, or a string holding a body that is not JSON, which a refusal never is).
async fn call(server: &Server, method: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request =
        axum::http::Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(axum::body::Body::from(body.to_string())).unwrap();
    let response = ravsock::api::router(server.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, json)
}

/// `pattern` with `{id}` as `graph` (or topic), `{name}` as `name`, `{round}` as 1 and `{op}`
/// as the graph's first op (a graph's first op has the graph's id in these tests' databases:
/// one op per graph, created in step).
fn path(pattern: &str, graph: u64, name: &str) -> String {
    pattern
        .replace("{id}", &graph.to_string())
        .replace("{name}", name)
        .replace("{round}", "1")
        .replace("{op}", &graph.to_string())
}

#[tokio::test]
async fn every_route_refuses_the_unauthenticated_the_unprivileged_and_other_owners() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let bob = server.token("bob", Role::Requester).await;
    let worker = server.token("worker", Role::Provider).await;
    let (_, created) = server.call("POST", routes::GRAPHS, Some(&alice), Some(json!({"name": "secret"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
    let (status, _) = server.call("POST", &routes::graph_ops(graph), Some(&alice), Some(seven_chunk())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = server.call("GET", &routes::graph(graph), Some(&alice), None).await;
    // Alice's topic has the graph's id: the topic routes are checked against another owner too.
    let spec = json!({"name": "t", "cadence_ms": 60_000, "deadline_ms": 1_000, "workers": 1, "aggregation": "mean"});
    let (status, topic) = server.call("POST", routes::TOPICS, Some(&alice), Some(spec)).await;
    assert_eq!((status, &topic["id"]), (StatusCode::OK, &json!(graph.0)), "{topic}");

    let mut checked = 0;
    for &(pattern, _) in routes::ALL {
        // A result name for the graph routes, an account for the admin one.
        let name = if pattern == routes::ADMIN_TOKEN_REVOKE { "alice" } else { "seven" };
        let path = path(pattern, graph.0, name);
        let mut served = Vec::new();
        for method in METHODS {
            let (status, body) = call(&server, method, &path, None, json!({})).await;
            if PAGES.contains(&pattern) {
                match (pattern, method, status) {
                    (_, _, StatusCode::METHOD_NOT_ALLOWED) => continue,
                    (routes::DASH | routes::DASH_LOGOUT, _, StatusCode::SEE_OTHER)
                    | (routes::DASH_LOGIN, "GET", StatusCode::OK)
                    | (routes::DASH_LOGIN, "POST", StatusCode::BAD_REQUEST) => {
                        assert!(body.is_null() || body.is_string(), "{method} {path}: a page, not data: {body}");
                    }
                    other => panic!("{method} {path} without a session: {other:?} {body}"),
                }
                served.push(method);
                continue;
            }
            match status {
                StatusCode::METHOD_NOT_ALLOWED => continue,
                StatusCode::UNAUTHORIZED if !PUBLIC.contains(&pattern) => {
                    let refusal: ErrorBody = serde_json::from_value(body.clone())
                        .unwrap_or_else(|_| panic!("{method} {path}: a refusal that is not typed: {body}"));
                    assert_eq!(refusal.code, ravproto::messages::ErrorCode::Unauthorized, "{method} {path}");
                }
                StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE if PUBLIC.contains(&pattern) => {}
                other => panic!("{method} {path} without a token: {other} {body}"),
            }
            let (status, body) = call(&server, method, &path, Some("rav_not_a_token"), json!({})).await;
            if !PUBLIC.contains(&pattern) {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with a bad token: {body}");
            }
            served.push(method);
        }
        assert!(!served.is_empty(), "{pattern} is in routes::ALL but the router serves it with no method");

        for &method in &served {
            if PAGES.contains(&pattern) {
                checked += 1;
                continue;
            }
            if DASH_DATA.contains(&pattern) {
                let (status, body) = call(&server, method, &path, Some(&worker), json!({})).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} by a provider: {body}");
            }
            if ADMIN.contains(&pattern) {
                for (who, token) in [("a requester", &bob), ("a provider", &worker)] {
                    let (status, body) = call(&server, method, &path, Some(token), json!({})).await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} by {who}: {body}");
                }
            }
            if pattern.contains("{id}") {
                // A body the route would take from the owner, so that what refuses it is the
                // ownership; and the same call on a graph that does not exist, which the
                // answer about alice's graph must not be told apart from.
                let body = if pattern == routes::GRAPH_OPS { seven_chunk() } else { json!({}) };
                let (status, refusal) = call(&server, method, &path, Some(&bob), body.clone()).await;
                let nowhere = self::path(pattern, graph.0 + 1_000, name);
                let (status_nowhere, refusal_nowhere) = call(&server, method, &nowhere, Some(&bob), body).await;
                assert!(status.is_client_error(), "{method} {path} by another requester: {status} {refusal}");
                let typed = |body: Value| {
                    serde_json::from_value::<ErrorBody>(body.clone())
                        .unwrap_or_else(|_| panic!("{method} {path}: a refusal that is not typed: {body}"))
                        .code
                };
                let (code, code_nowhere) = (typed(refusal), typed(refusal_nowhere));
                assert_eq!(
                    (status, code),
                    (status_nowhere, code_nowhere),
                    "{method} {path}: another requester tells alice's graph from a missing one"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= routes::ALL.len(), "every route was called with at least one method");

    // Nothing bob sent changed alice's graph or her account.
    let (_, after) = server.call("GET", &routes::graph(graph), Some(&alice), None).await;
    assert_eq!(before, after, "another requester's calls left the graph as it was");
    let (status, listed) = server.call("GET", routes::GRAPHS, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "alice's token still works");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let (_, listed) = server.call("GET", routes::GRAPHS, Some(&bob), None).await;
    assert_eq!(listed, json!([]), "bob's calls made no graph of his own either");
}
