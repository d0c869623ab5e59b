//! Verification by replicas (`Requirements::verify`, `replicas(2)`) on a paid stack: a liar
//! built on the ravpy library (test code) answers every subgraph with the right dtype and
//! shape and every number one more, and is the fastest provider on the grid. Three honest
//! providers of their own accounts answer too. The graph's results equal the
//! `LocalExecutor`'s, the liar is slashed once and paid nothing, each subgraph is paid to
//! exactly two honest accounts (the escrow, twice the price, is spent whole), and the ledger
//! check finds nothing. A spot check replicates new accounts and only samples trusted ones.

use crate::liars::{Lie, liar};
use crate::stack::Stack;
use ravop::{Graph, LocalExecutor};
use ravproto::ledger::{Reason, op_price, slash_amount};
use ravproto::messages::{GraphMeta, Requirements};
use ravproto::status::GraphStatus;
use ravproto::verify::{TRUSTED_AFTER, Verify};
use ravsock::auth::Role;
use ravsock::db::Db;

const STAKE: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_liar_among_replicas_is_outvoted_slashed_and_unpaid_and_the_results_are_the_honest_ones() {
    let stack = Stack::start_paid(30_000).await;
    let db = Db::connect(&stack.database_url).await.unwrap();
    db.credit("alice", 100_000, "grant").await.unwrap();
    let liar_token = db.create_account("liar", Role::Provider).await.unwrap();
    db.credit("liar", 100, "liar-grant").await.unwrap();
    let mut honest_tokens = Vec::new();
    for name in ["honest-1", "honest-2", "honest-3"] {
        honest_tokens.push(db.create_account(name, Role::Provider).await.unwrap());
        db.credit(name, 100, &format!("{name}-grant")).await.unwrap();
    }
    let client = stack.client().await;
    let requirements = Requirements { min_stake: STAKE, verify: Verify::Replicas(2), ..Requirements::default() };
    let graph = Graph::with_meta(GraphMeta { name: "verified".into(), requirements, ..GraphMeta::default() });
    let mut x = graph.t(vec![0.5, -0.25, 2.0]);
    for i in 0..48 {
        x = if i % 2 == 0 { &x * 1.01 + 0.1 } else { (&x - 0.05).abs() };
    }
    x.persist("end");
    let price: u64 =
        graph.to_records().iter().filter(|op| op.value.is_none()).map(|op| op_price(op.operation.kind())).sum();

    // The liar is alone when the graph starts: it gets a copy of the first subgraph (its join
    // is not acknowledged, so the honest providers start only once it holds that copy).
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    let (liar, (_refusals, mut assigned)) = liar(&stack, &liar_token, Lie::Numbers).await;
    assigned.recv().await.expect("the liar got a copy of the first subgraph");
    // Providers see how the graph is verified before they take part.
    let open = ravpy::list_graphs(&stack.url, &honest_tokens[0], &stack.trust, None).await.unwrap();
    let table = ravpy::view::table(&open);
    assert!(table.contains("stake 40 units") && table.contains("verify replicas(2)"), "{table}");
    let honest: Vec<_> = honest_tokens.iter().map(|token| stack.provider_with(token, 1.0)).collect();
    let done = client.wait(id, |_| {}).await.expect("the graph completes");
    assert_eq!(done.status, GraphStatus::Computed, "{done:?}");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&client.fetch(id, "end").await.unwrap(), local.get("end").unwrap(), "only agreed values are stored");
    let _ = liar.disconnect().await;
    for provider in honest {
        provider.stop().await.unwrap();
    }

    let balance = |name: &'static str| {
        let db = db.clone();
        async move { db.balance(db.account_id(name).await.unwrap(), name).await.unwrap() }
    };
    let liar_now = balance("liar").await;
    let slashed = slash_amount(STAKE);
    assert_eq!(
        (liar_now.available, liar_now.staked, liar_now.slashed),
        (100 - slashed, 0, slashed),
        "slashed once for its lies, paid nothing: {liar_now:?}"
    );
    let liar_id = db.account_id("liar").await.unwrap();
    let reasons: Vec<Reason> =
        db.entries_of(liar_id, 0, 100).await.unwrap().entries.iter().map(|entry| entry.reason).collect();
    assert_eq!(reasons, [Reason::Credit, Reason::Stake, Reason::Slash, Reason::StakeReturn]);
    let mut earned = 0;
    for name in ["honest-1", "honest-2", "honest-3"] {
        let now = balance(name).await;
        assert_eq!((now.staked, now.slashed), (0, 0), "{name}: {now:?}");
        earned += now.available - 100;
    }
    assert_eq!(earned, 2 * price, "every subgraph paid to two agreeing accounts");
    let alice = client.balance().await.unwrap();
    assert_eq!((alice.available, alice.escrowed), (100_000 - 2 * price, 0), "{alice:?}");
    let report = db.check_ledger().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Adaptive replication (`spot_check`): two honest accounts are new, so each answer of theirs
/// is checked by the other until each has [`TRUSTED_AFTER`] agreeing answers in a row; after
/// that only the subgraphs the spot check samples (1% here) get a second answer. Each
/// subgraph is paid once or twice accordingly, and what was escrowed for second answers that
/// were never asked returns when the graph ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spot_check_replicates_new_accounts_and_then_only_samples_trusted_ones() {
    let stack = Stack::start_paid(30_000).await;
    let db = Db::connect(&stack.database_url).await.unwrap();
    db.credit("alice", 100_000, "grant").await.unwrap();
    let tokens = [
        db.create_account("honest-1", Role::Provider).await.unwrap(),
        db.create_account("honest-2", Role::Provider).await.unwrap(),
    ];
    let client = stack.client().await;
    let requirements = Requirements { verify: Verify::SpotCheck(0.01), ..Requirements::default() };
    let graph = Graph::with_meta(GraphMeta { name: "spot-checked".into(), requirements, ..GraphMeta::default() });
    // A chain of 640 ops, in subgraphs one after another (80 with the stack's window).
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..640 {
        x = if i % 2 == 0 { &x * 1.001 + 0.01 } else { (&x - 0.005).abs() };
    }
    x.persist("end");
    let providers: Vec<_> = tokens.iter().map(|token| stack.provider_with(token, 1.0)).collect();
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    let done = client.wait(id, |_| {}).await.expect("the graph completes");
    assert_eq!(done.status, GraphStatus::Computed, "{done:?}");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&client.fetch(id, "end").await.unwrap(), local.get("end").unwrap());
    for provider in providers {
        provider.stop().await.unwrap();
    }

    let entries = client.entries().await.unwrap();
    let paid: Vec<_> = entries.iter().filter(|e| e.reason == Reason::SubgraphPayment).collect();
    let mut answers: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for entry in &paid {
        // graph:{id}:op:{first}:by:{account}
        let first = entry.key.split(':').nth(3).and_then(|op| op.parse().ok()).expect("a subgraph payment key");
        *answers.entry(first).or_default() += 1;
    }
    let in_order: Vec<u64> = answers.values().copied().collect();
    assert!(in_order.len() >= 40, "{in_order:?}");
    // Both accounts are new: at least the first TRUSTED_AFTER subgraphs are checked.
    let checked_first = in_order.iter().take_while(|n| **n == 2).count();
    assert!(checked_first >= TRUSTED_AFTER as usize, "{in_order:?}");
    // Then trusted: most later subgraphs take one answer.
    let once = in_order.iter().filter(|n| **n == 1).count();
    assert!(once >= (in_order.len() - TRUSTED_AFTER as usize) / 2, "{once} subgraphs paid once: {in_order:?}");
    // Escrowed twice the price; what second answers did not cost came back.
    let spent: u64 = paid.iter().map(|e| e.amount).sum();
    let alice = client.balance().await.unwrap();
    assert_eq!((alice.available, alice.escrowed), (100_000 - spent, 0), "{alice:?}");
    let report = db.check_ledger().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// A verified graph's values past the inline limit: the providers upload them through ravftp,
/// the server reads both answers in to compare them, and keeps the agreed one in the blob
/// store (not inline in the database), from which the requester fetches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_agreed_values_are_kept_as_files() {
    let stack = Stack::start(30_000).await;
    let db = Db::connect(&stack.database_url).await.unwrap();
    let tokens =
        [db.create_account("a", Role::Provider).await.unwrap(), db.create_account("b", Role::Provider).await.unwrap()];
    let providers: Vec<_> = tokens.iter().map(|token| stack.provider_with(token, 1.0)).collect();
    let client = stack.client().await;
    let requirements = Requirements { verify: Verify::Replicas(2), ..Requirements::default() };
    let graph = Graph::with_meta(GraphMeta { name: "large".into(), requirements, ..GraphMeta::default() });
    let values: Vec<f64> = (0..100_000).map(|i| i as f64 / 7.0).collect();
    ((graph.t(values) * 2.0).abs() + 1.0).persist("y");
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    let done = client.wait(id, |_| {}).await.expect("the graph completes");
    assert_eq!(done.status, GraphStatus::Computed, "{done:?}");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&client.fetch(id, "y").await.unwrap(), local.get("y").unwrap());
    let stored = db.persisted_values(id).await.unwrap();
    assert!(matches!(stored[0].2, Some(ravsock::db::StoredValue::File { .. })), "{:?}", stored[0].2.is_some());
    for provider in providers {
        assert!(provider.stop().await.unwrap().subgraphs > 0, "both answered");
    }
}
