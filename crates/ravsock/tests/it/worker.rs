//! A worker node (`ravpy::node`, as `ravpy run --config` runs it) against the real `ravsock`
//! binary: started while ravsock is down, it joins once ravsock is up; its entry bound to a
//! graph that is not executing waits for it, computes it and then is done; its federated entry
//! contributes once the query is open; and when ravsock is SIGKILLed and restarted, the node
//! connects again by itself and computes the next graph. Its status file says all of this.

use crate::kill::{Fixture, Server, connect, fixture, ravsock};
use ravop::ops::FederatedParams;
use ravop::{Graph, Privacy, Rules};
use ravpy::node::status::{EntryState, NodeStatus};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The ravsock binary on `port`, its log at warn.
pub(crate) fn start(dir: &Path, database_url: &str, port: u16) -> Server {
    let child = ravsock(dir, database_url, port, "warn").stdout(Stdio::null()).spawn().expect("ravsock starts");
    Server(child)
}

/// Waits (up to a minute) for the node's status file to satisfy `ready`; the file is the
/// node's own report, so reading it is how an operator would wait too.
pub(crate) async fn status_until(file: &Path, what: &str, ready: impl Fn(&NodeStatus) -> bool) -> NodeStatus {
    let mut last = None;
    for _ in 0..1_200 {
        if let Ok((status, _)) = ravpy::node::status::read(file) {
            if ready(&status) {
                return status;
            }
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the worker node never reported {what}: {last:#?}");
}

/// The status row of the entry called `name`.
pub(crate) fn row<'a>(status: &'a NodeStatus, name: &str) -> &'a ravpy::node::status::EntryStatus {
    status.entries.iter().find(|e| e.name == name).expect("entry listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_node_waits_for_ravsock_follows_its_entries_and_rides_out_a_kill() {
    let Fixture { dir, database_url, requester, provider, port } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");

    // Graphs the worker file will name: one stored but not executing, and a federated query.
    let server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    let chosen = Graph::new("chosen");
    (chosen.t(vec![1.0, 2.0]) + 1.0).persist("y");
    let chosen_id = client.submit(&chosen).await.unwrap();
    let census = Rules::new(1).column("age", Some(0.0), Some(150.0)).privacy(Privacy::Plain).graph("census");
    census.federated_mean(FederatedParams { column: Some("age".into()) }).persist("mean_age");
    let mut query = client.federated(&census).await.unwrap();
    drop(server);

    std::fs::write(dir.path().join("ages.csv"), "age\n30\n50\n").unwrap();
    let file = dir.path().join("worker.toml");
    std::fs::write(
        &file,
        format!(
            r#"
server = "{url}"
token_env = "WORKER_TOKEN"
metrics_bind = "127.0.0.1:0"

[retry]
first_delay = "100ms"
max_delay = "500ms"

[[participate]]
name = "any"

[[participate]]
name = "chosen"
graphs = [{chosen}]

[[federated]]
name = "census"
graph = {census}
file = "ages.csv"
"#,
            chosen = chosen_id.0,
            census = query.graph_id().0
        ),
    )
    .unwrap();
    let loaded =
        ravpy::node::config::load(&file, |name| (name == "WORKER_TOKEN").then(|| provider.clone())).expect("valid");
    let status_file = loaded.status_file();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(ravpy::node::run(loaded, async {
        let _ = stopped.await;
    }));

    // ravsock is down: the entries try, and say so.
    let down = status_until(&status_file, "connecting while ravsock is down", |s| {
        s.entries.iter().all(|e| e.attempts >= 1 && e.state == EntryState::Connecting)
    })
    .await;
    assert!(down.stopped.is_none() && down.entries.iter().all(|e| e.last_success.is_none()), "{down:#?}");

    let server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    // The federated entry contributes once ravsock is back; the query has its one provider.
    let mean = query.fetch("mean_age", |_| {}).await.expect("the node contributed");
    assert_eq!(mean.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![40.0]);
    // The entry bound to a stored graph waits for it to execute, then computes it and is done.
    status_until(&status_file, "the chosen entry waiting", |s| row(s, "chosen").state == EntryState::Waiting).await;
    client.execute(chosen_id).await.unwrap();
    client.wait(chosen_id, |_| {}).await.unwrap();
    let done =
        status_until(&status_file, "the chosen entry done", |s| row(s, "chosen").state == EntryState::Done).await;
    assert!(row(&done, "chosen").detail.contains("every graph it chose has ended"), "{done:#?}");
    assert_eq!(row(&done, "census").state, EntryState::Done, "{done:#?}");
    assert!(row(&done, "census").detail.contains("contributed the statistics of 2 of 2 rows"), "{done:#?}");

    // SIGKILL and a new process: the "any" entry connects again by itself and computes.
    drop(server);
    let _server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    let after = Graph::new("after the kill");
    (after.t(vec![2.0]) * 5.0).persist("y");
    let id = client.run(&after, |_| {}).await.expect("computed by the reconnected node");
    let y = client.fetch(id, "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![10.0]);
    let any = status_until(&status_file, "the any entry computing after the kill", |s| {
        row(s, "any").subgraphs + row(s, "chosen").subgraphs >= 2 && row(s, "any").state == EntryState::Running
    })
    .await;
    assert!(any.entries.iter().all(|e| e.panics == 0), "{any:#?}");
    // The node's metrics (`metrics_bind`, its address in the status) count the same work.
    let url = any.metrics.clone().expect("the status names the metrics' address");
    let http = ravclient::Trust::system().reqwest().expect("an HTTP client");
    let text = http.get(&url).send().await.unwrap().text().await.unwrap();
    let counted = |entry: &str| {
        let prefix = format!("ravpy_subgraphs_computed_total{{entry=\"{entry}\"}} ");
        text.lines().find_map(|line| line.strip_prefix(&prefix)).map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let computed = row(&any, "any").subgraphs + row(&any, "chosen").subgraphs;
    assert_eq!(counted("any") + counted("chosen"), computed, "{text}");

    let _ = stop.send(());
    node.await.unwrap().expect("the node stops cleanly on request");
    let (last, running) = ravpy::node::status::read(&status_file).unwrap();
    assert!(!running);
    assert_eq!(last.stopped.as_deref(), Some("stopped on request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_token_stops_the_node_with_the_reason() {
    let Fixture { dir, database_url, port, .. } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");
    let _server = start(dir.path(), &database_url, port);
    let file = dir.path().join("worker.toml");
    std::fs::write(&file, format!("server = \"{url}\"\ntoken = \"not-a-token\"\n[[participate]]\n[[participate]]\n"))
        .unwrap();
    let loaded = ravpy::node::config::load(&file, |_| None).expect("valid");
    let ended = tokio::time::timeout(Duration::from_secs(60), ravpy::node::run(loaded, std::future::pending()))
        .await
        .expect("a refused token ends the node, not a retry loop");
    let reason = ended.expect_err("fatal");
    assert!(reason.starts_with("participate-") && reason.contains("refused"), "{reason}");
}
