//! `kill -9` of the real ravsock process in the middle of a graph: the restarted server resumes
//! it from the database, the provider reconnects, the requester's wait rides out the gap, and
//! the results equal the local ones.

use ravop::{Client, Graph, LocalExecutor};
use ravproto::messages::Benchmark;
use ravproto::status::GraphStatus;
use ravsock::auth::Role;
use ravsock::db::Db;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A ravsock process, killed with SIGKILL when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &Path, database_url: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_ravsock"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--database-url", database_url])
        .args(["--bind", &format!("127.0.0.1:{port}"), "--ftp-bind", "127.0.0.1:0", "--window", "2"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ravsock starts");
    Server(child)
}

async fn connect(url: &str, token: &str) -> Client {
    // The process needs a moment to bind; connecting is the readiness check.
    for _ in 0..400 {
        if let Ok(client) = Client::connect(url, token).await {
            return client;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("ravsock did not come up at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_resumes_the_graph_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = ravsock::db::scratch_database_url(dir.path()).await.unwrap();
    let db = Db::connect(&database_url).await.unwrap();
    let requester = db.create_account("alice", Role::Requester).await.unwrap();
    let provider_token = db.create_account("worker", Role::Provider).await.unwrap();
    db.close().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let provider = tokio::spawn(ravpy::participate(
        ravpy::ParticipateConfig {
            server: url.clone(),
            token: provider_token,
            graph: None,
            benchmark: Some(Benchmark { ram_bytes: 1 << 30, cores: 1, gpu: false, speed_score: 1.0, onnx: false }),
            events: None,
            max_subgraphs: None,
        },
        async move {
            let _ = stopped.await;
        },
    ));

    // A chain of 1,200 ops in windows of 2: 600 round trips, long enough to kill in between.
    let graph = Graph::new("chain");
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..1_200 {
        x = if i % 2 == 0 { &x * 1.001 + 0.01 } else { (&x - 0.005).abs() };
    }
    x.persist("end");
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    // SIGKILL (no shutdown path runs) as soon as a tenth is computed, and a new process on the
    // same address: the requester's wait rides out the gap and follows the resumed graph.
    let mut server = Some(server);
    let mut at_kill = None;
    let mut after_restart = Vec::new();
    let waited = client
        .wait(id, |progress| match at_kill {
            None if progress.percent >= 10.0 => {
                at_kill = Some(progress.percent);
                drop(server.take());
                server = Some(start(dir.path(), &database_url, port));
            }
            None => {}
            Some(_) => after_restart.push((progress.status, progress.percent)),
        })
        .await
        .expect("the wait outlives the killed server and the resumed graph completes");
    assert_eq!(waited.status, GraphStatus::Computed);
    let at_kill = at_kill.expect("killed mid-graph");
    assert!(
        after_restart.first().is_some_and(|&(status, percent)| status == GraphStatus::Computing && percent >= at_kill),
        "resumed from the {at_kill}% computed before the kill, not restarted: {after_restart:?}"
    );
    let end = client.fetch(id, "end").await.unwrap();
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&end, local.get("end").unwrap(), "same value as computed locally");

    // A request whose connection is refused never arrived, so even a submission is sent again
    // until the server is back.
    drop(server.take());
    let small = Graph::new("after the restart");
    (small.t(vec![1.0, 2.0]) * 3.0).persist("y");
    let submitting = tokio::spawn({
        let (client, small) = (client.clone(), small.clone());
        async move { client.submit(&small).await }
    });
    let _server = start(dir.path(), &database_url, port);
    let submitted = submitting.await.unwrap().expect("submitted once the server is back");
    client.execute(submitted).await.unwrap();
    client.wait(submitted, |_| {}).await.unwrap();
    let y = client.fetch(submitted, "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![3.0, 6.0]);
    assert_eq!(client.list_graphs().await.unwrap().len(), 2, "the retried submission created one graph");

    // A server that stays away fails the request once the window has passed, saying so.
    drop(_server);
    let gone = client.clone().reconnect_for(std::time::Duration::from_millis(300)).progress(id).await;
    assert!(matches!(&gone, Err(ravop::Error::Transport(message)) if message.contains("no answer for")), "{gone:?}");
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}
