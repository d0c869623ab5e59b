//! Retention: an ended graph's values and blobs are removed once the result retention has
//! passed (a fetch then answers 410 `expired`), files in the ftp homes once theirs has, and
//! nothing of a graph that has not ended. Sweeps are run at chosen times ("eight days later"),
//! not waited for.

use crate::http::{Server, seven_chunk};
use axum::http::StatusCode;
use ravproto::messages::CreateGraphResponse;
use ravproto::{TensorData, Value as Wire};
use ravsock::auth::Role;
use ravsock::dispatch::retention::{Retention, Swept, sweep, unix_now};
use serde_json::json;

const DAY: i64 = 24 * 3600;
const RETENTION: Retention = Retention { results_secs: 7 * DAY as u64, ftp_files_secs: DAY as u64 };

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

#[tokio::test]
async fn ended_graphs_values_and_old_ftp_files_go_after_their_retention() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let (_, credentials) = server.call("POST", "/v1/ftp/credentials", Some(&alice), None).await;
    let home = server.bulk.users().home(credentials["user"].as_str().unwrap()).unwrap();
    let blobs = server.dir.path().join("blobs");
    let matrix = Wire::Tensor(TensorData::from_f64(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap());
    std::fs::write(home.join("m.ravv"), matrix.encode_binary()).unwrap();
    std::fs::write(home.join("never-named.ravv"), matrix.encode_binary()).unwrap();

    let graph_of = |name: &str| json!({"name": name});
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(graph_of("ends"))).await;
    let ends = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(graph_of("waits"))).await;
    let waits = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    let big = json!({"ops": [{"local_id": 1, "operation": {"operator": "lin", "params": {"dtype": "f64", "shape": [2, 2]}},
        "value_file": "m.ravv", "persist": "big"}]});
    for (graph, chunk) in [(ends, seven_chunk()), (ends, big), (waits, seven_chunk())] {
        let (status, body) = server.call("POST", &format!("/v1/graphs/{graph}/ops"), Some(&alice), Some(chunk)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.call("POST", &format!("/v1/graphs/{ends}/execute"), Some(&alice), None).await;
    server.scheduler.flush().await.unwrap();
    let result = |graph: u64, name: &'static str| {
        let server = &server;
        let alice = &alice;
        async move { server.call("GET", &format!("/v1/graphs/{graph}/results/{name}"), Some(alice), None).await }
    };
    assert_eq!(result(ends, "seven").await.1, json!({"tensor": {"dtype": "i64", "shape": [], "data": [7]}}));
    let (status, placed) = server.call("GET", &format!("/v1/graphs/{ends}/results/big/file"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{placed}");
    assert_eq!(
        (files_in(&blobs), files_in(&home)),
        (1, 2),
        "the big value's blob; the placed result and the stray upload"
    );

    // Today: everything is within its retention. The next sweep is due when the oldest ftp
    // file is a day old (to the second: the file was written a moment before `now`, which may
    // be in the next second).
    let now = unix_now();
    let swept = sweep(&server.state.db, &server.bulk, RETENTION, now).await.unwrap();
    assert_eq!((swept.graphs, swept.ftp_files), (0, 0));
    let due = swept.next_due.unwrap();
    assert!((now + DAY - 2..=now + DAY + 5).contains(&due), "next sweep at {due}, now {now}");

    // Two days later: the ftp files go (the placed result too: it was fetched long ago); the
    // values stay. With no file left, the next sweep is due a day on (a file uploaded just
    // after this sweep is due then at the earliest).
    let swept = sweep(&server.state.db, &server.bulk, RETENTION, now + 2 * DAY).await.unwrap();
    assert_eq!((swept.graphs, swept.ftp_files), (0, 2), "{swept:?}");
    assert_eq!(files_in(&home), 0);
    assert_eq!(result(ends, "seven").await.0, StatusCode::OK);
    let due = swept.next_due.unwrap();
    assert_eq!(due, now + 3 * DAY, "next sweep at {due}, now {now}");

    // Eight days later: the ended graph's values and blob are gone and a fetch says so; its
    // progress is still there. The graph that never ran keeps its values, and runs.
    let swept = sweep(&server.state.db, &server.bulk, RETENTION, now + 8 * DAY).await.unwrap();
    assert_eq!((swept.graphs, swept.blobs), (1, 1), "{swept:?}");
    assert_eq!(files_in(&blobs), 0);
    let again = sweep(&server.state.db, &server.bulk, RETENTION, now + 8 * DAY).await.unwrap();
    assert_eq!((again.graphs, again.blobs, again.ftp_files), (0, 0, 0), "nothing more to remove");
    for path in [format!("/v1/graphs/{ends}/results/seven"), format!("/v1/graphs/{ends}/results/big/file")] {
        let (status, body) = server.call("GET", &path, Some(&alice), None).await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(body["code"], json!("expired"));
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("were removed") && message.contains("--result-retention-secs"), "{message}");
    }
    let (status, progress) = server.call("GET", &format!("/v1/graphs/{ends}"), Some(&alice), None).await;
    assert_eq!((status, &progress["status"]), (StatusCode::OK, &json!("computed")));
    server.call("POST", &format!("/v1/graphs/{waits}/execute"), Some(&alice), None).await;
    server.scheduler.flush().await.unwrap();
    assert_eq!(result(waits, "seven").await.0, StatusCode::OK, "a graph that had not ended kept its values");
}

#[tokio::test]
async fn a_retention_of_zero_keeps_everything() {
    let server = Server::start().await;
    let alice = server.token("alice", Role::Requester).await;
    let (_, created) = server.call("POST", "/v1/graphs", Some(&alice), Some(json!({"name": "kept"}))).await;
    let graph = serde_json::from_value::<CreateGraphResponse>(created).unwrap().graph_id.0;
    server.call("POST", &format!("/v1/graphs/{graph}/ops"), Some(&alice), Some(seven_chunk())).await;
    server.call("POST", &format!("/v1/graphs/{graph}/execute"), Some(&alice), None).await;
    server.scheduler.flush().await.unwrap();
    let off = Retention { results_secs: 0, ftp_files_secs: 0 };
    let swept = sweep(&server.state.db, &server.bulk, off, unix_now() + 1000 * DAY).await.unwrap();
    assert_eq!(swept, Swept::default(), "nothing removed and no sweep ever due");
    let (status, _) = server.call("GET", &format!("/v1/graphs/{graph}/results/seven"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
}
