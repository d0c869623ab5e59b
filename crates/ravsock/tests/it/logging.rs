//! Logging never takes ravsock down: with standard output and error both on a full device
//! (`/dev/full`: every write fails with ENOSPC), the server starts, logs at debug level and
//! serves; `token create` whose output cannot be written exits with a sentence, not a panic.
//! And no token reaches the log, whatever the level.

use crate::kill::{Fixture, Server, connect, fixture, ravsock, spawn_provider};
use ravop::Graph;
use std::fs::File;
use std::process::{Command, Stdio};

fn full() -> File {
    File::options().write(true).open("/dev/full").expect("/dev/full exists on Linux")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_output_cannot_be_written_keeps_serving() {
    let Fixture { dir, database_url, requester, port, .. } = fixture().await;
    let mut server =
        Server(ravsock(dir.path(), &database_url, port, "debug").stdout(full()).stderr(full()).spawn().unwrap());
    let client = connect(&format!("http://127.0.0.1:{port}"), &requester).await;
    let graph = Graph::new("logged");
    let a = graph.t(vec![1.0, 2.0]);
    (&a + &a).persist("b");
    let id = client.submit(&graph).await.expect("the graph is stored while every log line fails");
    client.execute(id).await.expect("and executed");
    assert!(client.list_graphs().await.unwrap().iter().any(|g| g.graph_id == id));
    assert!(server.0.try_wait().unwrap().is_none(), "ravsock is still running");

    let out = Command::new(env!("CARGO_BIN_EXE_ravsock"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", &database_url, "token", "create", "--name", "t", "--role", "provider"])
        .stdout(full())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an error, not a panic (101): {stderr}");
    assert!(stderr.contains("could not write the new token to standard output"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_the_log_at_any_level() {
    let Fixture { dir, database_url, requester, provider, port } = fixture().await;
    let log = dir.path().join("ravsock.log");
    let logged = ravsock(dir.path(), &database_url, port, "trace").stdout(File::create(&log).unwrap()).spawn();
    let server = Server(logged.unwrap());
    let url = format!("http://127.0.0.1:{port}");
    let client = connect(&url, &requester).await;
    // A provider connects with its token in the socket.io auth payload and is sent its ravftp
    // credentials; the requester's token crosses in HTTP headers.
    let (stop, participating) = spawn_provider(url, provider.clone());
    let graph = Graph::new("logged at trace");
    let a = graph.t(vec![1.0, 2.0]);
    (&a + &a).persist("b");
    let (_, results) = client.compute(&graph).await.expect("the graph runs");
    assert_eq!(results.array::<f64>("b").unwrap().into_raw_vec_and_offset().0, vec![2.0, 4.0]);
    let _ = stop.send(());
    participating.await.unwrap().expect("the provider leaves cleanly");
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(" TRACE ") && text.contains(" DEBUG "), "ravsock logged at trace level:\n{text}");
    for (who, token) in [("requester", &requester), ("provider", &provider)] {
        // Shown masked, so the failure says where without repeating the secret.
        let lines: Vec<String> = text
            .lines()
            .filter(|line| line.contains(token.as_str()))
            .map(|line| line.replace(token.as_str(), "<TOKEN>"))
            .collect();
        assert!(lines.is_empty(), "the {who}'s token is in the log:\n{}", lines.join("\n"));
    }
}
