//! The dashboard's pages and data routes with a browser's session cookie: the login page
//! refuses bad and provider tokens, a good one gets an HttpOnly, SameSite=Strict cookie that
//! opens the page, its script and the data; a requester sees only its own graphs (another's
//! answers like a missing one), with search and pages; a revoked token and a logout end the
//! session. (The browser itself, Chromium through Playwright, is in ravtest's e2e `dash`.)

use crate::http::{Server, seven_chunk};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use ravproto::dash::{GraphPage, GraphView, OpView, Overview, SESSION_COOKIE};
use ravproto::messages::CreateGraphResponse;
use ravproto::routes;
use ravproto::status::OpStatus;
use ravsock::api::router;
use ravsock::auth::Role;
use serde_json::json;
use tower::ServiceExt;

/// A browser's answer: status, headers and the body as text.
struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

/// `method path` with `cookie` (a `name=value`) and a form body.
async fn browse(server: &Server, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Page {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let body = form.map_or_else(Body::empty, |form| Body::from(form.to_string()));
    let response = router(server.state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// Logs in with `token`: the session cookie as the browser sends it back.
async fn login(server: &Server, token: &str) -> String {
    let page = browse(server, "POST", routes::DASH_LOGIN, None, Some(&format!("token={token}"))).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.headers[header::LOCATION], routes::DASH);
    let set = page.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/;"] {
        assert!(set.contains(attribute), "the cookie has {attribute}: {set}");
    }
    assert!(!set.contains(token), "the cookie is not the token");
    set.split(';').next().unwrap().to_string()
}

async fn graph_of(server: &Server, token: &str, name: &str) -> u64 {
    let (_, created) = server.call("POST", routes::GRAPHS, Some(token), Some(json!({ "name": name }))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
    let (status, _) = server.call("POST", &routes::graph_ops(graph), Some(token), Some(seven_chunk())).await;
    assert_eq!(status, StatusCode::OK);
    graph.0
}

#[tokio::test]
async fn a_session_opens_the_dashboard_for_its_own_graphs_until_it_ends() {
    let server = Server::start().await;
    let admin = server.token("root", Role::Admin).await;
    let alice = server.token("alice", Role::Requester).await;
    let bob = server.token("bob", Role::Requester).await;
    let worker = server.token("worker", Role::Provider).await;
    let mine = [graph_of(&server, &alice, "first").await, graph_of(&server, &alice, "second 100%").await];
    let third = graph_of(&server, &alice, "third").await;
    let theirs = graph_of(&server, &bob, "bob's").await;

    // The login page refuses what is not a dashboard token, and says why.
    let page = browse(&server, "GET", routes::DASH_LOGIN, None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"token\""), "{}", page.body);
    let refused = browse(&server, "POST", routes::DASH_LOGIN, None, Some("token=rav_not_a_token")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("not valid"), "{}", refused.body);
    assert!(!refused.headers.contains_key(header::SET_COOKIE));
    let provider = browse(&server, "POST", routes::DASH_LOGIN, None, Some(&format!("token={worker}"))).await;
    assert_eq!(provider.status, StatusCode::FORBIDDEN);
    assert!(provider.body.contains("Provider tokens cannot"), "{}", provider.body);
    let forged = format!("{SESSION_COOKIE}={}", "ab".repeat(32));
    assert_eq!(browse(&server, "GET", routes::DASH, Some(&forged), None).await.status, StatusCode::SEE_OTHER);
    assert_eq!(browse(&server, "GET", routes::DASH_GRAPHS, Some(&forged), None).await.status, StatusCode::UNAUTHORIZED);

    let cookie = login(&server, &alice).await;
    let page = browse(&server, "GET", routes::DASH, Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("/dash/assets/app.js"), "{}", page.body);
    let policy = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let script = browse(&server, "GET", &routes::dash_asset("app.js"), Some(&cookie), None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.body.contains("/dash/api/"), "the built script");
    assert_eq!(
        browse(&server, "GET", &routes::dash_asset("app.js"), None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browse(&server, "GET", &routes::dash_asset("../Cargo.toml"), Some(&cookie), None).await.status,
        StatusCode::NOT_FOUND
    );

    // Her graphs, newest first, searched and paged; never bob's.
    let read = |path: String| {
        let cookie = cookie.clone();
        let server = &server;
        async move {
            let page = browse(server, "GET", &path, Some(&cookie), None).await;
            (page.status, page.body)
        }
    };
    let (status, body) = read(format!("{}?per_page=2", routes::DASH_GRAPHS)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: GraphPage = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.total, 3);
    assert_eq!(listed.rows.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![third, mine[1]]);
    assert!(listed.rows.iter().all(|r| r.owner == "alice"));
    let (_, body) = read(format!("{}?per_page=2&page=1", routes::DASH_GRAPHS)).await;
    let second: GraphPage = serde_json::from_str(&body).unwrap();
    assert_eq!(second.rows.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![mine[0]]);
    // A search's wildcards are the characters themselves.
    let (_, body) = read(format!("{}?q=100%25", routes::DASH_GRAPHS)).await;
    let found: GraphPage = serde_json::from_str(&body).unwrap();
    assert_eq!(found.rows.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![mine[1]]);
    let (_, body) = read(format!("{}?q=%25", routes::DASH_GRAPHS)).await;
    assert_eq!(serde_json::from_str::<GraphPage>(&body).unwrap().total, 1, "only the name with a percent sign");
    let (_, body) = read(format!("{}?q=bob", routes::DASH_GRAPHS)).await;
    assert_eq!(serde_json::from_str::<GraphPage>(&body).unwrap().total, 0, "bob's graph is not found by her");

    let (status, body) = read(routes::dash_graph(ravproto::GraphId(third))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: GraphView = serde_json::from_str(&body).unwrap();
    assert_eq!(view.ops.len(), 1);
    assert_eq!((view.ops[0].op.as_str(), view.ops[0].status), ("lin", OpStatus::Computed));
    let op = view.ops[0].id.0;
    let (status, body) = read(routes::dash_op(ravproto::GraphId(third), op)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail: OpView = serde_json::from_str(&body).unwrap();
    assert_eq!(detail.operation["operator"], "lin");
    assert!(detail.preview.as_deref().is_some_and(|p| p.contains('7')), "{detail:?}");

    let (theirs_status, theirs_body) = read(routes::dash_graph(ravproto::GraphId(theirs))).await;
    let (missing_status, _) = read(routes::dash_graph(ravproto::GraphId(theirs + 100))).await;
    assert_eq!((theirs_status, missing_status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "{theirs_body}");
    assert!(!theirs_body.contains("bob"), "{theirs_body}");
    let (status, _) = read(routes::DASH_PROVIDERS.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "providers are for admins");
    let (_, body) = read(routes::DASH_OVERVIEW.to_string()).await;
    let overview: Overview = serde_json::from_str(&body).unwrap();
    assert_eq!((overview.caller.as_str(), overview.role.as_str()), ("alice", "requester"));
    assert_eq!(overview.graphs.values().sum::<u64>(), 3, "her graphs only: {overview:?}");

    // An admin sees every graph and the providers.
    let root = login(&server, &admin).await;
    let page = browse(&server, "GET", routes::DASH_GRAPHS, Some(&root), None).await;
    assert_eq!(serde_json::from_str::<GraphPage>(&page.body).unwrap().total, 4);
    assert_eq!(browse(&server, "GET", routes::DASH_PROVIDERS, Some(&root), None).await.status, StatusCode::OK);
    let page = browse(&server, "GET", &routes::dash_graph(ravproto::GraphId(theirs)), Some(&root), None).await;
    assert_eq!(page.status, StatusCode::OK);

    // Logging out ends the session; revoking a token ends its sessions.
    let again = login(&server, &alice).await;
    let out = browse(&server, "POST", routes::DASH_LOGOUT, Some(&cookie), None).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(read(routes::DASH_OVERVIEW.to_string()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(browse(&server, "GET", routes::DASH_OVERVIEW, Some(&again), None).await.status, StatusCode::OK);
    server.state.db.revoke_token("alice").await.unwrap();
    assert_eq!(
        browse(&server, "GET", routes::DASH_OVERVIEW, Some(&again), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(browse(&server, "GET", routes::DASH, Some(&again), None).await.status, StatusCode::SEE_OTHER);
}
