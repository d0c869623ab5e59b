//! `GET /metrics` on a grid at work: its counters match what the grid did (subgraphs handed
//! out and computed, ops computed, providers connected, graphs by status, a requester's bytes
//! through ravftp), only an admin may
//! read it, and the whole scrape is written to `target/tmp/metrics-scrape.txt`, which CI parses
//! with the Prometheus project's own Python parser (`scripts/check_metrics.py`).

use crate::stack::Stack;
use ravop::Graph;
use ravproto::accounts::Role;
use ravproto::routes;
use ravsock::db::Db;

/// The value of the sample `name` (with its labels, as written in the text) in `text`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample `{name}` in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_metrics_count_what_the_grid_did() {
    let stack = Stack::start(30_000).await;
    let db = Db::connect(&stack.database_url).await.unwrap();
    let admin = db.create_account("root", Role::Admin).await.unwrap();
    let http = crate::stack::http();
    let scrape = || async {
        let answer = http.get(format!("{}{}", stack.url, routes::metrics())).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let kind = answer.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        answer.text().await.unwrap()
    };
    let before = scrape().await;
    assert_eq!(sample(&before, "ravsock_providers_connected"), 0.0);
    assert_eq!(sample(&before, "ravsock_subgraphs_computed_total"), 0.0);

    // Only an admin reads it.
    for token in [None, Some(stack.requester.as_str()), Some(stack.provider_token.as_str())] {
        let mut request = http.get(format!("{}{}", stack.url, routes::metrics()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status, if token.is_none() { 401 } else { 403 });
    }

    // A chain longer than the stack's window of 16 ops: several subgraphs, one ready at a time.
    let graph = Graph::new("counted");
    let mut x = graph.t(vec![0.5, -0.25, 2.0]);
    for i in 0..40 {
        x = if i % 2 == 0 { (&x * 1.5).abs() } else { &x - 0.25 };
    }
    x.persist("end");
    let computed_by_providers = (graph.len() - graph.values().len()) as f64;
    let client = stack.client().await;
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    // No provider yet: its first subgraph waits (a scrape reads the scheduler after the
    // execution it was sent).
    let waiting = scrape().await;
    assert_eq!(sample(&waiting, "ravsock_ready_subgraphs"), 1.0, "{waiting}");
    assert_eq!(sample(&waiting, "ravsock_assigned_subgraphs"), 0.0, "{waiting}");

    let mut providers = [stack.provider(1.0), stack.provider(1.0)];
    for provider in &mut providers {
        provider.joined().await;
    }
    client.wait(id, |_| {}).await.expect("the graph runs");
    let failing = Graph::new("fails");
    graph_that_fails(&failing);
    assert!(client.compute(&failing).await.is_err(), "a graph whose op cannot run fails");

    let after = scrape().await;
    assert_eq!(sample(&after, "ravsock_providers_connected"), 2.0);
    assert_eq!(sample(&after, "ravsock_ready_subgraphs"), 0.0, "{after}");
    assert_eq!(sample(&after, "ravsock_assigned_subgraphs"), 0.0, "{after}");
    assert_eq!(sample(&after, "ravsock_graphs{status=\"computed\"}"), 1.0);
    assert_eq!(sample(&after, "ravsock_graphs{status=\"failed\"}"), 1.0);
    assert_eq!(sample(&after, "ravsock_graphs{status=\"pending\"}"), 0.0);
    assert!(sample(&after, "ravsock_failures_total{reason=\"graph\"}") >= 1.0, "{after}");
    let assigned = sample(&after, "ravsock_subgraphs_assigned_total");
    let done = sample(&after, "ravsock_subgraphs_computed_total");
    assert!(done >= 3.0, "40 ops in windows of 16: {after}");
    assert_eq!(sample(&after, "ravsock_ops_computed_total"), computed_by_providers, "{after}");
    assert!(assigned >= done + 1.0, "the failing graph's subgraph was handed out too: {after}");
    assert_eq!(sample(&after, "ravsock_subgraph_seconds_count"), done);
    assert_eq!(sample(&after, "ravsock_db_write_seconds_count"), done);
    assert_eq!(sample(&after, "ravsock_assign_seconds_count"), assigned);
    let scrape_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-scrape.txt");
    std::fs::write(&scrape_file, &after).unwrap();

    // A requester's own values through ravftp: an input of 100,000 f64 (past the stack's
    // inline limit) goes up as a file, and the persisted result, as big, comes down as one.
    let big = Graph::new("big values");
    (big.t(vec![1.0; 100_000]) * 2.0).persist("y");
    let big_id = client.run(&big, |_| {}).await.expect("the big graph runs");
    let y = client.fetch(big_id, "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().len(), 100_000);
    let moved = scrape().await;
    for direction in ["from_requesters", "to_requesters"] {
        let bytes = sample(&moved, &format!("ravsock_ftp_bytes_total{{direction=\"{direction}\"}}"));
        assert!(bytes >= 800_000.0, "{direction}: {bytes} bytes\n{moved}");
    }

    for provider in providers {
        provider.stop().await.unwrap();
    }
    // The server hears the disconnects after the providers' tasks end: wait for them (bounded).
    let drained = async {
        while sample(&scrape().await, "ravsock_providers_connected") != 0.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), drained).await.expect("both disconnects counted");
}

/// An op every provider's kernel refuses: the inverse of a singular matrix.
fn graph_that_fails(graph: &Graph) {
    graph.t(ndarray::array![[1.0, 2.0], [2.0, 4.0]]).inv().persist("never");
}
