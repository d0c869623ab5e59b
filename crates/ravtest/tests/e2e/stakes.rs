//! Stakes in a paid graph (`--accounting on`, `Requirements::min_stake`) on the in-process
//! stack: a provider whose account cannot stake is rejected from the graph it chose and
//! computes nothing; a provider that takes a subgraph stakes once and, leaving while holding
//! it, is slashed once while its work goes to another; the honest provider is paid every
//! subgraph, and every stake that is left comes back when the graph ends. Afterwards the
//! balances match a hand computation and the ledger check finds nothing.

use crate::stack::{Stack, silent_provider};
use ravop::{Graph, LocalExecutor};
use ravproto::ledger::{Reason, op_price, slash_amount};
use ravproto::messages::{GraphMeta, Requirements};
use ravproto::provider::RejectionCode;
use ravproto::status::GraphStatus;
use ravsock::auth::Role;
use ravsock::db::Db;

const STAKE: u64 = 40;

/// A chain of `n` ops asking each provider for [`STAKE`] units.
fn staked_chain(n: usize) -> Graph {
    let requirements = Requirements { min_stake: STAKE, ..Requirements::default() };
    let graph = Graph::with_meta(GraphMeta { name: "staked".into(), requirements, ..GraphMeta::default() });
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..n {
        x = if i % 2 == 0 { &x * 1.01 + 0.1 } else { (&x - 0.05).abs() };
    }
    x.persist("end");
    graph
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn providers_stake_to_take_part_one_that_leaves_holding_work_is_slashed_once_and_the_rest_returns() {
    let stack = Stack::start_paid(30_000).await;
    let db = Db::connect(&stack.database_url).await.unwrap();
    let poor = db.create_account("poor", Role::Provider).await.unwrap();
    let flaky = db.create_account("flaky", Role::Provider).await.unwrap();
    db.credit("alice", 100_000, "grant").await.unwrap();
    db.credit("worker", 100, "worker-grant").await.unwrap();
    db.credit("flaky", 100, "flaky-grant").await.unwrap();
    let client = stack.client().await;
    let graph = staked_chain(60);
    let price: u64 =
        graph.to_records().iter().filter(|op| op.value.is_none()).map(|op| op_price(op.operation.kind())).sum();
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();

    // Providers see the stake before they choose (`ravpy list-graphs`).
    let open = ravpy::list_graphs(&stack.url, &poor, &stack.trust, None).await.unwrap();
    assert_eq!(open.iter().find(|g| g.graph_id == id).map(|g| g.requirements.min_stake), Some(STAKE));
    assert!(ravpy::view::table(&open).contains("stake 40 units"), "{}", ravpy::view::table(&open));

    // An account with nothing to stake that chose the graph is told why, and gets no work.
    // (Kept whole: dropping a provider's handle asks it to stop.)
    let mut chooser = stack.provider_choosing(&poor, id);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), &mut chooser.task).await;
    let refused = ended.expect("the provider ends").unwrap().unwrap_err();
    match &refused {
        ravpy::Error::Rejected { code: RejectionCode::Requirements, reason } => {
            assert!(reason.contains("stake of 40 units"), "{reason}")
        }
        other => panic!("expected a rejection for the stake, got {other}"),
    }

    // A provider takes the first subgraph (staking for it) and vanishes holding it.
    let (silent, mut assigned) = silent_provider(&stack, &flaky).await;
    assigned.recv().await.expect("the flaky provider got work");
    silent.disconnect().await.unwrap();
    let worker = stack.provider(1.0);
    let done = client.wait(id, |_| {}).await.expect("the graph completes");
    assert_eq!(done.status, GraphStatus::Computed);
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&client.fetch(id, "end").await.unwrap(), local.get("end").unwrap());
    assert!(worker.stop().await.unwrap().subgraphs > 0);

    // Balances, read as the end was announced (the graph settles first).
    let balance = |name: &'static str| {
        let db = db.clone();
        async move { db.balance(db.account_id(name).await.unwrap(), name).await.unwrap() }
    };
    let slashed = slash_amount(STAKE);
    let flaky_now = balance("flaky").await;
    assert_eq!(
        (flaky_now.available, flaky_now.staked, flaky_now.slashed),
        (100 - slashed, 0, slashed),
        "staked once, slashed once, the rest returned: {flaky_now:?}"
    );
    let worker_now = balance("worker").await;
    assert_eq!((worker_now.available, worker_now.staked, worker_now.slashed), (100 + price, 0, 0), "{worker_now:?}");
    let poor_now = balance("poor").await;
    assert_eq!((poor_now.available, poor_now.staked), (0, 0));
    let alice = client.balance().await.unwrap();
    assert_eq!((alice.available, alice.escrowed), (100_000 - price, 0), "{alice:?}");

    let flaky_id = db.account_id("flaky").await.unwrap();
    let reasons: Vec<Reason> =
        db.entries_of(flaky_id, 0, 100).await.unwrap().entries.iter().map(|entry| entry.reason).collect();
    assert_eq!(reasons, [Reason::Credit, Reason::Stake, Reason::Slash, Reason::StakeReturn]);
    let report = db.check_ledger().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
