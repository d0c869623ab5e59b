//! Graphs paid through the ledger (`ravsock --accounting on`), on the real binary: executing
//! one moves its cost to escrow (402 with nothing started when the balance is short); each
//! subgraph pays the provider that computed it from that escrow in the transaction that stores
//! its results, so SIGKILLs of ravsock mid-graph neither lose nor repeat a payment; what is left
//! returns when the graph ends, with every provider's stake. Afterwards every balance matches a
//! hand computation and `ravsock ledger check` passes. The same chain verified by two replicas
//! pays each subgraph to exactly two accounts through the kills (answers held when the server
//! died are asked for again, never paid twice).

use crate::kill::{Fixture, Server, connect, fixture, ravsock, spawn_provider};
use ravop::{Graph, LocalExecutor};
use ravproto::ledger::{Reason, op_price};
use ravproto::messages::{ErrorCode, GraphMeta, Requirements};
use ravproto::status::GraphStatus;
use ravproto::verify::Verify;
use ravsock::auth::Role;
use ravsock::db::Db;
use std::path::Path;
use std::process::Stdio;

fn start(data_dir: &Path, database_url: &str, port: u16) -> Server {
    let child = ravsock(data_dir, database_url, port, "warn")
        .args(["--window", "2", "--accounting", "on"])
        .stdout(Stdio::null())
        .spawn()
        .expect("ravsock starts");
    Server(child)
}

/// What computing `graph` costs: the prices of its ops that are not uploaded values.
fn cost(graph: &Graph) -> u64 {
    graph
        .to_records()
        .iter()
        .filter(|op| op.value.is_none() && op.value_file.is_none())
        .map(|op| op_price(op.operation.kind()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_graph_pays_each_subgraph_once_through_kills_of_the_server() {
    paid_chain_through_kills(Verify::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verified_paid_graph_pays_each_subgraph_to_two_accounts_through_kills_of_the_server() {
    paid_chain_through_kills(Verify::Replicas(2)).await;
}

async fn paid_chain_through_kills(verify: Verify) {
    let Fixture { dir, database_url, requester, provider, port } = fixture().await;
    let db = Db::connect(&database_url).await.unwrap();
    let mut providers = vec![provider];
    for name in ["w2", "w3", "w4"] {
        providers.push(db.create_account(name, Role::Provider).await.unwrap());
    }
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Some(start(dir.path(), &database_url, port));
    let client = connect(&url, &requester).await;

    // A chain of 3,200 ops in subgraphs of 2, one after another: long enough (1,600 round
    // trips, progress reported every 100 ms) to see it at 20% and again at 60% after the first
    // restart. A shorter one (800 ops in subgraphs of 4) once ran its last 40% between two reports.
    // Each provider stakes 25 units in it (credited below), once, also across the restarts.
    let requirements = Requirements { min_stake: 25, verify, ..Requirements::default() };
    let graph = Graph::with_meta(GraphMeta { name: "paid chain".into(), requirements, ..GraphMeta::default() });
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..1_600 {
        x = if i % 2 == 0 { &x * 1.001 + 0.01 } else { (&x - 0.005).abs() };
    }
    x.persist("end");
    // Each subgraph is paid to as many accounts as verify asks answers of.
    let answers = verify.cost_factor();
    let price = cost(&graph) * answers;
    assert!(price > 3_000, "every computed op costs at least a unit: {price}");

    // Short of the price: refused with a typed 402, and the graph stays pending.
    db.credit("alice", price - 1, "grant-1").await.unwrap();
    let id = client.submit(&graph).await.unwrap();
    let short = client.execute(id).await.unwrap_err();
    assert!(matches!(&short, ravop::Error::Server { code: ErrorCode::InsufficientFunds, .. }), "{short}");
    assert_eq!(client.progress(id).await.unwrap().status, GraphStatus::Pending);
    db.credit("alice", 1_000, "grant-2").await.unwrap();
    client.execute(id).await.unwrap();
    // A provider choosing work sees what the graph pays (`ravpy list-graphs`).
    let open = ravpy::list_graphs(&url, &providers[0], &Default::default(), None).await.unwrap();
    assert_eq!(open.iter().find(|g| g.graph_id == id).and_then(|g| g.pays), Some(price));
    assert_eq!(ravpy::view::table(&open).lines().nth(1).map(|line| line.contains(&price.to_string())), Some(true));

    for name in ["worker", "w2", "w3", "w4"] {
        db.credit(name, 25, &format!("stake-{name}")).await.unwrap();
    }
    let stops: Vec<_> = providers.iter().map(|token| spawn_provider(url.clone(), token.clone())).collect();
    // SIGKILL at 20% and at 60%, each time a new process on the same address.
    let mut kills = 0;
    let waited = client
        .wait(id, |progress| {
            let due = [20.0, 60.0].get(kills).is_some_and(|&at| progress.percent >= at);
            if due && progress.status == GraphStatus::Computing {
                kills += 1;
                drop(server.take());
                server = Some(start(dir.path(), &database_url, port));
            }
        })
        .await
        .expect("the graph completes through the kills");
    assert_eq!(waited.status, GraphStatus::Computed);
    assert_eq!(kills, 2, "killed twice mid-graph");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&client.fetch(id, "end").await.unwrap(), local.get("end").unwrap());

    // The requester paid exactly the price; the providers got all of it between them; the
    // escrow is empty; each subgraph was paid once (its own key), and nothing was refunded.
    let balance = client.balance().await.unwrap();
    assert_eq!((balance.available, balance.escrowed), (999, 0), "{balance:?}");
    let entries = client.entries().await.unwrap();
    let paid: Vec<_> = entries.iter().filter(|e| e.reason == Reason::SubgraphPayment).collect();
    assert_eq!(paid.iter().map(|e| e.amount).sum::<u64>(), price);
    let keys: std::collections::BTreeSet<_> = paid.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys.len(), paid.len(), "no subgraph paid twice");
    assert!(paid.len() as u64 >= price / 2, "a payment per answer to a subgraph of at most 2 ops: {}", paid.len());
    let mut per_subgraph: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for entry in &paid {
        let subgraph = entry.key.split(":by:").next().unwrap_or(&entry.key);
        *per_subgraph.entry(subgraph).or_default() += 1;
    }
    assert!(per_subgraph.values().all(|n| *n == answers), "{answers} answers paid per subgraph: {per_subgraph:?}");
    assert!(entries.iter().all(|e| e.reason != Reason::GraphRefund), "nothing left to refund");
    // Every stake came back whole (the server's crashes are no provider's fault), and was
    // taken at most once per provider whatever the restarts (`ledger check` below counts).
    let mut earned = 0;
    for name in ["worker", "w2", "w3", "w4"] {
        let balance = db.balance(db.account_id(name).await.unwrap(), name).await.unwrap();
        assert_eq!((balance.staked, balance.slashed), (0, 0), "{balance:?}");
        earned += balance.available - 25;
    }
    assert_eq!(earned, price);

    // A cancelled graph returns what its subgraphs did not spend (here, with no provider
    // left, all of it).
    for (stop, provider) in stops {
        let _ = stop.send(());
        provider.await.unwrap().unwrap();
    }
    let idle = Graph::new("cancelled");
    (idle.t(vec![1.0]) + 1.0).persist("y");
    let second = client.submit(&idle).await.unwrap();
    client.execute(second).await.unwrap();
    assert_eq!(client.balance().await.unwrap().escrowed, cost(&idle));
    // The cancel is answered once the server has handled it, refund included.
    client.cancel(second).await.unwrap();
    let settled = client.balance().await.unwrap();
    assert_eq!((settled.available, settled.escrowed), (999, 0), "{settled:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ravsock"))
        .args(["--data-dir", &dir.path().display().to_string(), "--database-url", &database_url, "ledger", "check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ledger ok"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    drop(server);
}
