//! The admin token routes through the router: only an admin manages tokens; a token created
//! there works at once, one created expired or later revoked is refused with a 401 that says
//! why; the listing holds no secret and records last uses.

use crate::http::Server;
use axum::http::StatusCode;
use ravproto::messages::ErrorCode;
use ravproto::routes;
use ravsock::auth::Role;
use serde_json::{Value, json};

fn code(body: &Value) -> ErrorCode {
    serde_json::from_value(body["code"].clone()).expect("a typed error code")
}

#[tokio::test]
async fn only_an_admin_manages_tokens() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let worker = server.token("worker", Role::Provider).await;
    let create = json!({"name": "bob", "role": "requester"});
    let calls = [
        ("GET", routes::admin_tokens(), None),
        ("POST", routes::admin_tokens(), Some(create.clone())),
        ("POST", routes::admin_token_revoke("alice"), None),
    ];
    for (method, path, body) in &calls {
        let (status, reply) = server.call(method, path, None, body.clone()).await;
        assert_eq!((status, code(&reply)), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized), "{method} {path}");
        assert!(reply["message"].as_str().unwrap().contains("missing token"), "{reply}");
        let (status, reply) = server.call(method, path, Some("rav_0000"), body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(reply["message"], "missing or invalid token");
        for token in [&alice, &worker] {
            let (status, reply) = server.call(method, path, Some(token), body.clone()).await;
            assert_eq!((status, code(&reply)), (StatusCode::FORBIDDEN, ErrorCode::Forbidden), "{method} {path}");
        }
    }
    // None of those calls created or revoked anything.
    let (status, _) = server.call("GET", &routes::graphs(), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    let root = server.token("root", Role::Admin).await;
    let (_, list) = server.call("GET", &routes::admin_tokens(), Some(&root), None).await;
    let names: Vec<&str> = list["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "root", "worker"]);
}

#[tokio::test]
async fn tokens_are_created_expired_revoked_and_listed_without_secrets() {
    let server = Server::start().await;
    let root = server.token("root", Role::Admin).await;
    let admin = |method: &'static str, path: String, body: Option<Value>| {
        let (server, root) = (&server, &root);
        async move { server.call(method, &path, Some(root), body).await }
    };

    // Created: the token works at once.
    let (status, created) =
        admin("POST", routes::admin_tokens(), Some(json!({"name": "bob", "role": "requester"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let bob = created["token"].as_str().unwrap().to_string();
    assert!(created.get("expires_at").is_none(), "{created}");
    assert_eq!(server.call("GET", &routes::graphs(), Some(&bob), None).await.0, StatusCode::OK);

    // Refused with a reason: a name that cannot stand in a path, a taken name, an unknown role.
    for (body, status, words) in [
        (json!({"name": "a/b", "role": "requester"}), StatusCode::BAD_REQUEST, "an account name is 1 to 64"),
        (json!({"name": "", "role": "requester"}), StatusCode::BAD_REQUEST, "an account name is 1 to 64"),
        (json!({"name": "bob", "role": "provider"}), StatusCode::CONFLICT, "`bob` already exists"),
        (json!({"name": "eve", "role": "root"}), StatusCode::BAD_REQUEST, "unknown variant `root`"),
        (
            json!({"name": "eve", "role": "requester", "expires_in_secs": u64::MAX}),
            StatusCode::BAD_REQUEST,
            "a token may last at most 100 years",
        ),
    ] {
        let (got, reply) = admin("POST", routes::admin_tokens(), Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains(words), "{body}: {reply}");
    }

    // A token whose time is already up is refused, saying so.
    let (_, created) =
        admin("POST", routes::admin_tokens(), Some(json!({"name": "brief", "role": "provider", "expires_in_secs": 0})))
            .await;
    let brief = created["token"].as_str().unwrap().to_string();
    assert!(created["expires_at"].as_u64().is_some());
    let (status, reply) = server.call("GET", &routes::open_graphs(), Some(&brief), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(reply["message"].as_str().unwrap().contains("token of `brief` expired at 20"), "{reply}");

    // Revoked: refused from the next request on; revoking again keeps the first time.
    assert_eq!(admin("POST", routes::admin_token_revoke("bob"), None).await.0, StatusCode::NO_CONTENT);
    let (status, reply) = server.call("GET", &routes::graphs(), Some(&bob), None).await;
    assert_eq!((status, code(&reply)), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized));
    assert!(reply["message"].as_str().unwrap().contains("token of `bob` was revoked"), "{reply}");
    let (_, before) = admin("GET", routes::admin_tokens(), None).await;
    assert_eq!(admin("POST", routes::admin_token_revoke("bob"), None).await.0, StatusCode::NO_CONTENT);
    let (status, reply) = admin("POST", routes::admin_token_revoke("nobody"), None).await;
    assert_eq!((status, code(&reply)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));

    // The listing: every account, no secret, last uses once written.
    server.state.db.flush_last_use().await.unwrap();
    let (status, list) = admin("GET", routes::admin_tokens(), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    for secret in [&root, &bob, &brief] {
        assert!(!text.contains(secret.as_str()), "a secret in the listing: {text}");
    }
    let token = |name: &str| list["tokens"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap().clone();
    assert_eq!(token("bob")["revoked_at"], before["tokens"][0]["revoked_at"], "the first revocation's time stays");
    assert!(token("bob")["last_used_at"].as_u64().is_some(), "bob called once before his revocation");
    assert!(token("brief")["last_used_at"].is_null(), "an expired token is never used");
    assert!(token("brief")["expires_at"].as_u64().is_some() && token("brief")["revoked_at"].is_null());
    assert_eq!(token("root")["role"], "admin");
}

/// Runs `ravsock token …` on the database in `dir`.
fn token_command(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ravsock"))
        .arg("token")
        .args(args)
        .env_remove("RAVSOCK_DATABASE_URL")
        .env_remove("RAVENVERSE_DATABASE_URI")
        .env_remove("RDF_DATABASE_URI")
        .env("RAVSOCK_DATA_DIR", dir)
        .current_dir(dir)
        .output()
        .expect("ravsock runs")
}

#[test]
fn the_token_command_creates_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let out = token_command(dir.path(), &["create", "--name", "lab", "--role", "provider", "--expires-in", "30d"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("rav_"), "{token}");
    let out = token_command(dir.path(), &["create", "--name", "alice", "--role", "requester"]);
    assert!(out.status.success());

    let out = token_command(dir.path(), &["revoke", "--name", "lab"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "revoked the token of `lab`\n");

    // One row per account: never the secret; `lab` expires in 30 days and is revoked, `alice`
    // neither.
    let out = token_command(dir.path(), &["list"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(!table.contains(&token), "{table}");
    let lines: Vec<Vec<&str>> = table.lines().map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "ROLE", "CREATED", "LAST", "USED", "EXPIRES", "REVOKED"]);
    assert_eq!((lines[1][0], lines[1][1], lines[1][3], lines[1][4]), ("alice", "requester", "-", "-"));
    assert_eq!(lines[1][5], "-", "{table}");
    assert_eq!((lines[2][0], lines[2][1], lines[2][3]), ("lab", "provider", "-"));
    let (created, expires) = (lines[2][2], lines[2][4]);
    assert!(created.ends_with('Z') && expires.ends_with('Z') && expires > created, "{table}");
    assert!(lines[2][5].ends_with('Z'), "{table}");

    // Mistakes read as sentences.
    let out = token_command(dir.path(), &["revoke", "--name", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account is named `nobody`"));
    let out = token_command(dir.path(), &["create", "--name", "x", "--role", "provider", "--expires-in", "soon"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'soon' for '--expires-in"));
}
