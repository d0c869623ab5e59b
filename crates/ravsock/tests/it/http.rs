//! The requester API through `tower::ServiceExt::oneshot`: authentication, ownership, op
//! upload with id mapping and validation, execution and results.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ravproto::messages::{CreateGraphResponse, ErrorBody, ErrorCode, GraphMeta, GraphProgress, OpChunkResponse, OpRef};
use ravproto::status::GraphStatus;
use ravsock::api::{AppState, router};
use ravsock::auth::Role;
use ravsock::bulk::Bulk;
use ravsock::db::Db;
use ravsock::dispatch::spawn_scheduler;
use ravsock::scheduler::SchedulerConfig;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A ravsock API in-process over a scratch database (shared with the retention tests).
pub(crate) struct Server {
    pub(crate) state: AppState,
    pub(crate) scheduler: ravsock::dispatch::SchedulerHandle,
    pub(crate) bulk: Bulk,
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    pub(crate) async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = ravsock::db::scratch_database_url(dir.path()).await.expect("scratch database");
        let db = Db::connect(&url).await.expect("database");
        // No FTP server runs here: tests put files in the homes directly.
        let bulk = Bulk::new(dir.path(), 0, 1 << 20).expect("bulk storage");
        let scheduler = spawn_scheduler(db.clone(), bulk.clone(), SchedulerConfig::default()).await.expect("scheduler");
        Server { state: AppState::new(db, scheduler.clone(), bulk.clone()), scheduler, bulk, dir }
    }

    pub(crate) async fn token(&self, name: &str, role: Role) -> String {
        self.state.db.create_account(name, role).await.expect("account")
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_raw(method, path, token, body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).await
    }

    pub(crate) async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = router(self.state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        (status, json)
    }
}

/// A chunk of one persisted `i64` constant, 7, named `seven` (a graph of it needs no provider).
pub(crate) fn seven_chunk() -> Value {
    json!({"ops": [{"local_id": 0, "operation": {"operator": "lin", "params": {"dtype": "i64", "shape": []}},
        "value": {"tensor": {"dtype": "i64", "shape": [], "data": [7]}}, "persist": "seven"}]})
}

pub(crate) fn hello_chunk() -> Value {
    json!({"ops": [
        {"local_id": 0, "operation": {"operator": "lin", "params": {"dtype": "f64", "shape": [3]}},
         "value": {"tensor": {"dtype": "f64", "shape": [3], "data": [1.0, 2.0, 3.0]}}, "persist": "a"},
        {"local_id": 1, "operation": {"operator": "lin", "params": {"dtype": "f64", "shape": [3]}},
         "value": {"tensor": {"dtype": "f64", "shape": [3], "data": [5.0, 22.0, 7.0]}}},
        {"local_id": 2, "operation": {"operator": "add"}, "inputs": [{"local": 0}, {"local": 1}], "persist": "c"}
    ]})
}

#[tokio::test]
async fn every_call_needs_a_valid_token() {
    let server = Server::start().await;
    let (status, body) = server.call("GET", "/v1/graphs", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: ErrorBody = serde_json::from_value(body).unwrap();
    assert_eq!(body.code, ErrorCode::Unauthorized);
    let (status, body) = server.call("GET", "/v1/graphs/not-a-number", Some("rav_not_a_token"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = server.call("GET", "/v1/graphs", Some("rav_not_a_token"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let provider = server.token("worker", Role::Provider).await;
    let (status, _) = server.call("POST", "/v1/graphs", Some(&provider), Some(json!({"name": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "providers cannot submit graphs");
}

#[tokio::test]
async fn upload_maps_ids_and_refuses_bad_ops_with_their_id() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let (status, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "hello"}))).await;
    assert_eq!(status, StatusCode::OK);
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
    let path = format!("/v1/graphs/{}/ops", graph.0);

    let (status, mapped) = server.call("POST", &path, Some(&alice), Some(hello_chunk())).await;
    assert_eq!(status, StatusCode::OK, "{mapped}");
    let mapped: OpChunkResponse = serde_json::from_value(mapped).unwrap();
    assert_eq!(mapped.id_map.len(), 3);

    // A later chunk may refer to earlier ops by local id; a wrong arity names the op.
    let bad =
        json!({"ops": [{"local_id": 3, "operation": {"operator": "neg"}, "inputs": [{"local": 2}, {"local": 1}]}]});
    let (status, body) = server.call("POST", &path, Some(&alice), Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: ErrorBody = serde_json::from_value(body).unwrap();
    assert_eq!(body.op, Some(OpRef::Local(3)));
    assert!(body.message.contains("takes 1 inputs, got 2"), "{}", body.message);

    for (bad, why) in [
        (
            json!({"ops": [{"local_id": 4, "operation": {"operator": "neg"}, "inputs": [{"local": 99}]}]}),
            "not an earlier op",
        ),
        (
            json!({"ops": [{"local_id": 0, "operation": {"operator": "neg"}, "inputs": [{"local": 1}]}]}),
            "already uploaded",
        ),
        (
            json!({"ops": [{"local_id": 5, "operation": {"operator": "lin", "params": {"dtype": "i64", "shape": [2]}},
                "value": {"tensor": {"dtype": "f64", "shape": [2], "data": [1.0, 2.0]}}}]}),
            "declares i64[2]",
        ),
        (json!({"ops": [{"local_id": 6, "operation": {"operator": "frobnicate"}}]}), "unknown operator"),
        (
            json!({"ops": [{"local_id": 7, "operation": {"operator": "sum", "params": {"axes": 1}}, "inputs": [{"local": 0}]}]}),
            "unknown field `axes`",
        ),
        (
            json!({"ops": [{"local_id": 8, "operation": {"operator": "neg"}, "inputs": [{"local": 0}], "persist": "c"}]}),
            "persist name `c` is used twice",
        ),
    ] {
        let (status, body) = server.call("POST", &path, Some(&alice), Some(bad)).await;
        assert!(status.is_client_error(), "{body}");
        assert!(body.to_string().contains(why), "expected `{why}` in {body}");
    }
    // Refused chunks stored nothing: the next good chunk gets the next ids, in order.
    let good = json!({"ops": [
        {"local_id": 8, "operation": {"operator": "neg"}, "inputs": [{"local": 0}], "persist": "d"},
        {"local_id": 9, "operation": {"operator": "neg"}, "inputs": [{"local": 8}]}
    ]});
    let (status, mapped) = server.call("POST", &path, Some(&alice), Some(good)).await;
    assert_eq!(status, StatusCode::OK, "{mapped}");
    let mapped: OpChunkResponse = serde_json::from_value(mapped).unwrap();
    assert_eq!(mapped.id_map[&9].0, mapped.id_map[&8].0 + 1);
}

#[tokio::test]
async fn requesters_see_only_their_own_graphs() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let bob = server.token("bob", Role::Requester).await;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "secret"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    server.call("POST", &format!("/v1/graphs/{graph}/ops"), Some(&alice), Some(hello_chunk())).await;
    for (method, path) in [
        ("GET", format!("/v1/graphs/{graph}")),
        ("POST", format!("/v1/graphs/{graph}/execute")),
        ("POST", format!("/v1/graphs/{graph}/cancel")),
        ("GET", format!("/v1/graphs/{graph}/results/a")),
        ("POST", format!("/v1/graphs/{graph}/ops")),
    ] {
        let (status, _) = server.call(method, &path, Some(&bob), Some(json!({"ops": []}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, listed) = server.call("GET", "/v1/graphs", Some(&bob), None).await;
    assert_eq!(listed, json!([]));
    let (_, listed) = server.call("GET", "/v1/graphs", Some(&alice), None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn execute_freezes_the_graph_and_results_wait_for_computation() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "hello"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    server.call("POST", &format!("/v1/graphs/{graph}/ops"), Some(&alice), Some(hello_chunk())).await;

    let (status, progress) = server.call("POST", &format!("/v1/graphs/{graph}/execute"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    let progress: GraphProgress = serde_json::from_value(progress).unwrap();
    assert_eq!(progress.status, GraphStatus::Computing);
    assert!((progress.percent - 200.0 / 3.0).abs() < 1e-9, "the two inputs count as computed");

    // Input values are readable at once; the sum waits for a provider.
    let (status, value) = server.call("GET", &format!("/v1/graphs/{graph}/results/a"), Some(&alice), None).await;
    assert_eq!((status, value["tensor"]["data"].clone()), (StatusCode::OK, json!([1.0, 2.0, 3.0])));
    let (status, _) = server.call("GET", &format!("/v1/graphs/{graph}/results/c"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server.call("GET", &format!("/v1/graphs/{graph}/results/nope"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = server.call("POST", &format!("/v1/graphs/{graph}/ops"), Some(&alice), Some(hello_chunk())).await;
    assert_eq!(status, StatusCode::CONFLICT, "no ops after execute");
    let (status, _) = server.call("POST", &format!("/v1/graphs/{graph}/execute"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "execute once");

    let (_, progress) = server.call("POST", &format!("/v1/graphs/{graph}/cancel"), Some(&alice), None).await;
    assert_eq!(progress["status"], json!("cancelled"));

    // The last chunk may start the graph itself (one request instead of two).
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "at-once"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    let path = format!("/v1/graphs/{graph}/ops?execute=true");
    let (status, _) = server.call("POST", &path, Some(&alice), Some(hello_chunk())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, progress) = server.call("GET", &format!("/v1/graphs/{graph}"), Some(&alice), None).await;
    assert_eq!(progress["status"], json!("computing"));
    // The same chunk again is a repeat (its answer lost) and gets the same answer; new ops
    // after execute are a conflict.
    let (status, _) = server.call("POST", &path, Some(&alice), Some(hello_chunk())).await;
    assert_eq!(status, StatusCode::OK);
    let more = json!({"ops": [{"local_id": 3, "operation": {"operator": "neg"}, "inputs": [{"local": 2}]}]});
    let (status, _) = server.call("POST", &path, Some(&alice), Some(more)).await;
    assert_eq!(status, StatusCode::CONFLICT, "no ops after execute");
}

#[tokio::test]
async fn a_graph_of_only_inputs_completes_without_providers() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!(GraphMeta::default()))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    server.call("POST", &format!("/v1/graphs/{graph}/ops"), Some(&alice), Some(seven_chunk())).await;
    server.call("POST", &format!("/v1/graphs/{graph}/execute"), Some(&alice), None).await;
    server.scheduler.flush().await.unwrap();
    let (_, progress) = server.call("GET", &format!("/v1/graphs/{graph}"), Some(&alice), None).await;
    assert_eq!(progress["status"], json!("computed"));
    assert_eq!(progress["percent"], json!(100.0));
}

#[tokio::test]
async fn account_names_are_unique_and_tokens_resolve_to_their_account() {
    let server = Server::start().await;
    let token = server.token("carol", Role::Admin).await;
    assert!(token.starts_with("rav_") && token.len() == 4 + 64);
    assert!(server.state.db.create_account("carol", Role::Requester).await.is_err());
    let account = server.state.db.authenticate(&token).await.unwrap();
    assert_eq!((account.name.as_str(), account.role), ("carol", Role::Admin));
}

#[tokio::test]
async fn big_values_arrive_as_files_in_the_requesters_ftp_home() {
    use ravproto::{TensorData, Value as Wire};
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let worker = server.token("worker", Role::Provider).await;
    let (status, _) = server.call("POST", "/v1/ftp/credentials", Some(&worker), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "providers get credentials on connect");
    let (status, credentials) = server.call("POST", "/v1/ftp/credentials", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    let user = credentials["user"].as_str().unwrap().to_string();
    let home = server.bulk.users().home(&user).expect("home made at issue");

    let tensor = TensorData::from_f64(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    std::fs::write(home.join("m.ravv"), Wire::Tensor(tensor.clone()).encode_binary()).unwrap();
    std::fs::write(home.join("short.ravv"), &Wire::Tensor(tensor).encode_binary()[..30]).unwrap();
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "big"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    let path = format!("/v1/graphs/{graph}/ops");
    let lin = |local: u64, shape: Value, file: &str| {
        json!({"ops": [{"local_id": local, "operation": {"operator": "lin", "params": {"dtype": "f64", "shape": shape}},
            "value_file": file, "persist": format!("v{local}")}]})
    };
    for (chunk, why) in [
        (lin(1, json!([4]), "m.ravv"), "does not hold a f64[4] tensor"),
        (lin(2, json!([2, 2]), "short.ravv"), "header announces"),
        (lin(3, json!([2, 2]), "absent.ravv"), "cannot open"),
        (lin(4, json!([2, 2]), "../m.ravv"), "invalid value file name"),
    ] {
        let (status, body) = server.call("POST", &path, Some(&alice), Some(chunk)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(why), "expected `{why}` in {body}");
    }
    let (status, body) = server.call("POST", &path, Some(&alice), Some(lin(0, json!([2, 2]), "m.ravv"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!home.join("m.ravv").exists(), "the file moved into the blob store");

    // Too big for JSON: the plain fetch says where to look, the file fetch places a copy.
    server.call("POST", &format!("/v1/graphs/{graph}/execute"), Some(&alice), None).await;
    let (status, body) = server.call("GET", &format!("/v1/graphs/{graph}/results/v0"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], json!("too_large"));
    let (status, file) = server.call("GET", &format!("/v1/graphs/{graph}/results/v0/file"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    let bytes = std::fs::read(home.join(file["name"].as_str().unwrap())).unwrap();
    assert_eq!(bytes.len() as u64, file["len"].as_u64().unwrap());
    let back = Wire::decode_binary(&bytes).unwrap();
    assert_eq!(back, Wire::Tensor(TensorData::from_f64(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap()));
}

#[tokio::test]
async fn a_whole_graph_runs_in_one_request() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let bob = server.token("bob", Role::Requester).await;
    let seven = json!({"local_id": 0, "operation": {"operator": "lin", "params": {"dtype": "i64", "shape": []}},
        "value": {"tensor": {"dtype": "i64", "shape": [], "data": [7]}}, "persist": "seven"});
    // Only inputs: computed at once, and the answer carries the persisted value.
    let request = json!({"meta": {"name": "inputs"}, "ops": [seven], "wait_ms": 5000, "with_results": true});
    let (status, answer) = server.call("POST", "/v1/graphs/run", Some(&alice), Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["progress"]["status"], json!("computed"));
    assert_eq!(answer["results"]["seven"], json!({"tensor": {"dtype": "i64", "shape": [], "data": [7]}}));
    assert_eq!(answer["large_results"], json!([]));
    let graph = answer["progress"]["graph_id"].as_u64().unwrap();
    let (status, _) = server.call("GET", &format!("/v1/graphs/{graph}/results/seven"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "stored like any other graph");
    let (status, _) = server.call("GET", &format!("/v1/graphs/{graph}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "and only its owner sees it");

    // An op to compute and no provider: the wait runs out and the graph goes on computing.
    let twice = json!({"local_id": 1, "operation": {"operator": "add"}, "inputs": [{"local": 0}, {"local": 0}],
        "persist": "fourteen"});
    let request = json!({"meta": {"name": "waits"}, "ops": [seven, twice], "wait_ms": 0, "with_results": true});
    let (status, answer) = server.call("POST", "/v1/graphs/run", Some(&alice), Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["progress"]["status"], json!("computing"));
    assert_eq!(answer["progress"]["ops"], json!({"computed": 1, "pending": 1}));
    assert_eq!(answer["results"], json!({}));
    let graph = answer["progress"]["graph_id"].as_u64().unwrap();
    let (status, body) = server.call("GET", &format!("/v1/graphs/{graph}/results/fourteen"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Refusals: a bad op names its id and stores nothing; a federated graph must be opened;
    // providers cannot submit.
    let before = server.call("GET", "/v1/graphs", Some(&alice), None).await.1.as_array().unwrap().len();
    let reused = json!({"local_id": 1, "operation": {"operator": "neg"}, "inputs": [{"local": 0}], "persist": "seven"});
    let request = json!({"meta": {"name": "bad"}, "ops": [seven, reused]});
    let (status, body) = server.call("POST", "/v1/graphs/run", Some(&alice), Some(request)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["op"], json!({"local": 1}), "{body}");
    let after = server.call("GET", "/v1/graphs", Some(&alice), None).await.1.as_array().unwrap().len();
    assert_eq!(after, before, "a refused graph is not created");
    let request = json!({"meta": {"name": "fed", "approach": "federated"}, "ops": []});
    let (status, body) = server.call("POST", "/v1/graphs/run", Some(&alice), Some(request)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let worker = server.token("worker", Role::Provider).await;
    let request = json!({"meta": {"name": "p"}, "ops": []});
    let (status, _) = server.call("POST", "/v1/graphs/run", Some(&worker), Some(request)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Everything kept or listed has a limit, and going past it is a 4xx that names the limit.
#[tokio::test]
async fn names_and_bodies_over_their_limits_are_refused_with_the_limit_named() {
    use ravsock::validate::{MAX_META_BYTES, MAX_NAME_BYTES};
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let refused = |status: StatusCode, body: Value, code: ErrorCode, words: &str| {
        let body: ErrorBody = serde_json::from_value(body).unwrap();
        assert_eq!((status.as_u16(), body.code), (code.http_status(), code), "{}", body.message);
        assert!(body.message.contains(words), "{:?} does not say {words:?}", body.message);
    };
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    for meta in [json!({"name": long}), json!({"name": "ok", "algorithm": long})] {
        for route in ["/v1/graphs", "/v1/graphs/run"] {
            let body = if route == "/v1/graphs" { meta.clone() } else { json!({"meta": meta, "ops": []}) };
            let (status, body) = server.call("POST", route, Some(&alice), Some(body)).await;
            refused(status, body, ErrorCode::BadRequest, &format!("at most {MAX_NAME_BYTES} are accepted"));
        }
    }
    let columns: serde_json::Map<String, Value> = (0..200).map(|i| (format!("column-{i:0>100}"), json!({}))).collect();
    let federated = json!({"name": "wide", "approach": "federated", "rules": {"columns": columns, "min_clients": 1, "privacy": "plain"}});
    let (status, body) = server.call("POST", "/v1/graphs", Some(&alice), Some(federated)).await;
    refused(status, body, ErrorCode::BadRequest, &format!("at most {MAX_META_BYTES} are accepted"));
    let (_, listed) = server.call("GET", "/v1/graphs", Some(&alice), None).await;
    assert_eq!(listed, json!([]), "nothing was stored");

    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "fine"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
    let mut chunk = hello_chunk();
    chunk["ops"][2]["persist"] = json!(long);
    let (status, body) = server.call("POST", &ravproto::routes::graph_ops(graph), Some(&alice), Some(chunk)).await;
    refused(status, body, ErrorCode::BadRequest, "a persist name is 257 bytes long");

    // Bodies: the federated submission route takes 4 MiB.
    let provider = server.token("worker", Role::Provider).await;
    let limit = ravsock::api::MAX_SUBMISSION_BYTES;
    let big = Body::from(vec![b' '; limit + 1]);
    let (status, body) =
        server.call_raw("POST", &ravproto::routes::federated_submissions(graph), Some(&provider), big).await;
    refused(status, body, ErrorCode::TooLarge, &format!("over this route's limit of {limit} bytes"));

    // A graph's metadata takes 64 KiB at most: a 50 MB name is refused unread.
    let limit = ravsock::api::MAX_SMALL_BODY_BYTES;
    let named = Body::from(json!({"name": "n".repeat(50_000_000)}).to_string());
    let (status, body) = server.call_raw("POST", "/v1/graphs", Some(&alice), named).await;
    refused(status, body, ErrorCode::TooLarge, &format!("over this route's limit of {limit} bytes"));
}

#[tokio::test]
async fn readyz_names_the_check_that_fails_and_healthz_needs_no_token() {
    let server = Server::start().await;
    let request = Request::builder().uri(ravproto::routes::HEALTHZ).body(Body::empty()).unwrap();
    let response = router(server.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (status, body) = server.call("GET", ravproto::routes::READYZ, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ready: ravproto::messages::Readiness = serde_json::from_value(body).unwrap();
    let names: Vec<&str> = ready.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["database", "data_dir", "scheduler"]);
    assert!(ready.ready && ready.checks.iter().all(|c| c.ok && c.detail.is_none()));

    // The blob store deleted under the server (root ignores permissions, so a test cannot
    // make it unwritable with chmod): not ready, and the check says why.
    let blobs = server.bulk.blob_path(ravproto::OpId(1)).parent().unwrap().to_path_buf();
    let aside = blobs.with_extension("aside");
    std::fs::rename(&blobs, &aside).unwrap();
    let (status, body) = server.call("GET", ravproto::routes::READYZ, None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let ready: ravproto::messages::Readiness = serde_json::from_value(body).unwrap();
    let data_dir = &ready.checks[1];
    assert!(!ready.ready && !data_dir.ok, "{ready:?}");
    assert!(data_dir.detail.as_deref().is_some_and(|d| d.contains("does not take writes")), "{data_dir:?}");
    std::fs::rename(&aside, &blobs).unwrap();
    assert_eq!(server.call("GET", ravproto::routes::READYZ, None, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_chunk_sent_again_is_answered_with_the_stored_id_map() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "again"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
    let path = format!("/v1/graphs/{}/ops", graph.0);
    let (status, first) = server.call("POST", &path, Some(&alice), Some(hello_chunk())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // The answer was lost (a restart, a dropped connection) and the client sends it again.
    let (status, again) = server.call("POST", &path, Some(&alice), Some(hello_chunk())).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first, "the same ids, nothing stored twice");

    // Not the same chunk under those ids: refused, naming the op.
    let mut other = hello_chunk();
    other["ops"][2]["operation"] = json!({"operator": "sub"});
    let (status, body) = server.call("POST", &path, Some(&alice), Some(other)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: ErrorBody = serde_json::from_value(body).unwrap();
    assert_eq!(body.op, Some(OpRef::Local(2)));
    assert!(body.message.contains("must be the same chunk"), "{}", body.message);

    // The last chunk, with execute, sent twice: the second gets the same answer, not a
    // conflict, and the graph holds its ops once.
    let last =
        json!({"ops": [{"local_id": 3, "operation": {"operator": "neg"}, "inputs": [{"local": 2}], "persist": "n"}]});
    let execute = format!("{path}?execute=true");
    let (status, first) = server.call("POST", &execute, Some(&alice), Some(last.clone())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = server.call("POST", &execute, Some(&alice), Some(last.clone())).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    let (status, _) = server.call("POST", &path, Some(&alice), Some(last)).await;
    assert_eq!(status, StatusCode::CONFLICT, "without execute, a chunk for an executing graph is a conflict");
    let (_, progress) = server.call("GET", &format!("/v1/graphs/{}", graph.0), Some(&alice), None).await;
    let progress: GraphProgress = serde_json::from_value(progress).unwrap();
    assert_eq!(progress.ops.values().sum::<u64>(), 4, "{progress:?}");
}

#[tokio::test]
async fn a_keys_upload_is_refused_before_its_body_is_read() {
    use futures_util::StreamExt;
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let bob = server.token("bob", Role::Requester).await;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "not yours"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
    // A body that never ends: a handler that reads it before checking would never answer.
    let endless = || {
        let first = futures_util::stream::once(async { Ok::<_, std::io::Error>(vec![0u8; 1 << 20]) });
        Body::from_stream(first.chain(futures_util::stream::pending()))
    };
    let keys = ravproto::routes::federated_keys(graph);
    let answer = |token: String| {
        let keys = keys.clone();
        let server = &server;
        async move {
            let call = server.call_raw("PUT", &keys, Some(&token), endless());
            tokio::time::timeout(std::time::Duration::from_secs(30), call).await.expect("answered without the body")
        }
    };
    let (status, body) = answer(bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = answer(alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not a federated query: {body}");
    assert!(body.to_string().contains("not a federated graph"), "{body}");
}

/// An op whose size the upload alone decides (its params, or small inline inputs of the same
/// chunk) is refused over `--max-op-bytes`, naming the op, its size and the flag; one within
/// it, and an op whose inputs are data, are stored.
#[tokio::test]
async fn ops_sized_by_their_upload_are_refused_over_the_max_op_bytes() {
    let mut server = Server::start().await;
    server.state = server.state.clone().with_max_op_bytes(1 << 20);
    let alice = server.token("alice", Role::Requester).await;
    let lin = |local: u64, dtype: &str, data: Value| {
        let shape = [data.as_array().map_or(0, Vec::len)];
        json!({"local_id": local, "operation": {"operator": "lin", "params": {"dtype": dtype, "shape": shape}},
            "value": {"tensor": {"dtype": dtype, "shape": shape, "data": data}}})
    };
    let random =
        |local: u64, n: u64| json!({"local_id": local, "operation": {"operator": "random", "params": {"shape": [n]}}});
    for (ops, words) in [
        (vec![random(0, 1 << 18)], "`random` needs up to 2097152 bytes"),
        (
            vec![
                lin(0, "i64", json!([1024, 1024])),
                json!({"local_id": 1, "operation": {"operator": "zeros"}, "inputs": [{"local": 0}]}),
            ],
            "`zeros` needs up to",
        ),
        (
            vec![
                lin(0, "f64", json!([1.0])),
                lin(1, "i64", json!([1000, 1000])),
                json!({"local_id": 2, "operation": {"operator": "tile"}, "inputs": [{"local": 0}, {"local": 1}]}),
            ],
            "`tile` needs up to",
        ),
    ] {
        let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "big"}))).await;
        let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id;
        let last = ops.last().unwrap()["local_id"].as_u64().unwrap();
        let (status, body) =
            server.call("POST", &ravproto::routes::graph_ops(graph), Some(&alice), Some(json!({"ops": ops}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let body: ErrorBody = serde_json::from_value(body).unwrap();
        assert_eq!(body.op, Some(OpRef::Local(last)));
        for part in [words, "over this server's limit of 1048576 bytes per op (--max-op-bytes)"] {
            assert!(body.message.contains(part), "{:?} does not say {part:?}", body.message);
        }
    }
    // Within the limit, and data that is not a size (a big inline vector added to itself).
    let data: Vec<f64> = (0..1000).map(f64::from).collect();
    let ops = vec![
        random(0, 1 << 10),
        lin(1, "f64", json!(data)),
        json!({"local_id": 2, "operation": {"operator": "add"}, "inputs": [{"local": 1}, {"local": 1}]}),
    ];
    let request = json!({"meta": {"name": "fits"}, "ops": ops});
    let (status, body) = server.call("POST", "/v1/graphs/run", Some(&alice), Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
