//! Resuming after a restart when a graph can no longer be loaded: one of its stored ops was
//! damaged while the server was down. The restarted `ravsock` fails that graph with the reason
//! (its requester hears why instead of waiting for good) and resumes the others.

use crate::kill::{Fixture, Server, connect, fixture, ravsock};
use ravop::Graph;
use ravproto::status::GraphStatus;
use std::process::Stdio;

fn start(fixture: &Fixture) -> Server {
    let child = ravsock(fixture.dir.path(), &fixture.database_url, fixture.port, "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ravsock starts");
    Server(child)
}

/// Overwrites the stored operation of every op of `graph` with JSON no op reads as.
async fn damage(database_url: &str, graph: u64) {
    use sqlx::Connection;
    let sql = format!("UPDATE ops SET operation = '{{\"no such op\": 1}}' WHERE graph_id = {graph}");
    let sql = sqlx::AssertSqlSafe(sql);
    if database_url.starts_with("postgres") {
        let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut connection).await.unwrap();
    } else {
        let mut connection = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut connection).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graph_that_cannot_be_loaded_fails_with_the_reason_and_the_others_resume() {
    let fixture = fixture().await;
    let url = format!("http://127.0.0.1:{}", fixture.port);
    let server = start(&fixture);
    let client = connect(&url, &fixture.requester).await;
    // Two executing graphs and no provider: both wait.
    let mut ids = Vec::new();
    for name in ["damaged", "intact"] {
        let graph = Graph::new(name);
        (graph.t(vec![1.0, 2.0]) * 3.0).persist("y");
        let id = client.submit(&graph).await.unwrap();
        client.execute(id).await.unwrap();
        ids.push(id);
    }
    drop(server);
    damage(&fixture.database_url, ids[0].0).await;

    let _server = start(&fixture);
    let client = connect(&url, &fixture.requester).await;
    let failed = client.wait(ids[0], |_| {}).await.expect_err("the graph failed");
    let ravop::Error::GraphFailed { failure: Some(failure), .. } = failed else { panic!("{failed:?}") };
    let reason = failure.reason;
    assert_eq!(client.progress(ids[0]).await.unwrap().status, GraphStatus::Failed);
    assert!(reason.contains("the server cannot load this graph") && reason.contains("unreadable JSON"), "{reason}");
    // The intact graph was resumed: a provider that joins now computes it.
    let (stop, provider) = crate::kill::spawn_provider(url.clone(), fixture.provider.clone());
    let done = client.wait(ids[1], |_| {}).await.unwrap();
    assert_eq!(done.status, GraphStatus::Computed);
    let y = client.fetch(ids[1], "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![3.0, 6.0]);
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}
