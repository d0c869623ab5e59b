//! A panic in ravsock's scheduler task (injected by `ravsock::dispatch::faults`, feature
//! `fault-injection`, a test build only): the supervisor logs and counts it, closes the
//! provider connections, starts a new task from the database, and the graph completes with
//! the same values as computed locally. The provider, dropped by the server, connects again
//! by itself and says why it was dropped.

use crate::stack::Stack;
use ravop::{Graph, LocalExecutor};
use ravproto::routes;
use ravsock::auth::Role;
use ravsock::db::Db;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_scheduler_task_is_started_again_and_the_graph_completes() {
    let stack = Stack::start(30_000).await;
    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let client = stack.client().await;
    crate::stack::known_to_the_server(&client, &mut provider).await;

    // A chain cut into several subgraphs: the panic hits while results are still coming.
    let graph = Graph::new("through a panic");
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..60 {
        x = if i % 2 == 0 { &x * 1.5 + 0.25 } else { (&x - 1.0).abs() };
    }
    x.persist("end");
    ravsock::dispatch::faults::panic_on_next_result();
    let id = client.run(&graph, |_| {}).await.expect("the graph completes after the panic");
    let end = client.fetch(id, "end").await.unwrap();
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&end, local.get("end").unwrap(), "same value as computed locally");

    // The provider was dropped by the restart and came back.
    let mut dropped = false;
    while let Ok(event) = provider.events.try_recv() {
        dropped |= matches!(event, ravpy::ProviderEvent::Dropped { .. });
    }
    assert!(dropped, "the provider saw its connection closed and connected again");
    let db = Db::connect(&stack.database_url).await.unwrap();
    let admin = db.create_account("root", Role::Admin).await.unwrap();
    let scrape = crate::stack::http()
        .get(format!("{}{}", stack.url, routes::metrics()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scrape.lines().any(|l| l == "ravsock_scheduler_restarts_total 1"), "{scrape}");
    provider.stop().await.expect("the provider leaves cleanly");
}
