//! A verified graph's replicas in the scheduler: a subgraph goes to as many distinct accounts
//! as it wants answers (never two connections of one account, never an account that already
//! answered), a disagreement hands it out once more, a settled subgraph withdraws the copies
//! still out, a dispute fails the graph, and agreeing answers build an account's record.

use super::tests::{assignments, complete, config, join, wide};
use super::*;
use ravproto::verify::{TRUSTED_AFTER, Verify};

fn submit_verified(s: &mut Scheduler, graph: u64, n: u64, verify: Verify) -> Vec<Action> {
    let requirements = Requirements { verify, ..Requirements::default() };
    s.handle(0, Event::GraphSubmitted { graph: GraphId(graph), ops: wide(n), requirements })
}

fn held(s: &mut Scheduler, a: &Assignment, answers_wanted: u32) -> Vec<Action> {
    s.handle(1, Event::ReplicaHeld { provider: a.provider, assignment: a.id, answers_wanted })
}

fn providers(out: &[Assignment]) -> Vec<u64> {
    out.iter().map(|a| a.provider.0).collect()
}

#[test]
fn replicas_go_to_distinct_accounts_and_settle_when_enough_answer() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 100.0);
    // Provider 5 is a second connection of account 1: it never gets a copy account 1 holds.
    s.handle(
        0,
        Event::ProviderJoined {
            provider: ProviderId(5),
            account: 1,
            benchmark: super::tests::bench(90.0),
            graph: None,
            groups: Default::default(),
        },
    );
    join(&mut s, 2, 10.0);
    let out = assignments(&submit_verified(&mut s, 7, 10, Verify::Replicas(2)));
    assert_eq!(providers(&out), [1, 2], "two accounts, the fastest first");
    assert_eq!(out[0].ops, out[1].ops, "the same subgraph");
    assert_eq!(s.depth(), QueueDepth { ready_subgraphs: 0, assigned_subgraphs: 2 });
    // The first answer is held: nothing more is wanted yet, and account 1 never gets it again.
    let actions = held(&mut s, &out[0], 2);
    assert!(assignments(&actions).is_empty(), "{actions:?}");
    let actions = complete(&mut s, &out[1]);
    assert!(actions.contains(&Action::GraphComputed { graph: GraphId(7) }), "{actions:?}");
}

#[test]
fn a_disagreement_hands_the_subgraph_to_one_more_account() {
    let mut s = Scheduler::new(config(10));
    for provider in 1..=3 {
        join(&mut s, provider, 100.0 - provider as f64);
    }
    let out = assignments(&submit_verified(&mut s, 7, 10, Verify::Replicas(2)));
    assert_eq!(providers(&out), [1, 2]);
    assert!(assignments(&held(&mut s, &out[0], 2)).is_empty());
    // The second answer disagrees with the first: three answers are wanted, and only account
    // 3 has not answered (account 1, free, does not get it back).
    let third = assignments(&held(&mut s, &out[1], 3));
    assert_eq!(providers(&third), [3]);
    let actions = complete(&mut s, &third[0]);
    assert!(actions.contains(&Action::GraphComputed { graph: GraphId(7) }));
    // The judgement: account 2 takes a strike, and three in a row quarantine it.
    for _ in 0..2 {
        let actions = s.handle(2, Event::Judged { right: vec![1, 3], wrong: vec![2] });
        assert!(!actions.iter().any(|a| matches!(a, Action::Evict { .. })));
    }
    let actions = s.handle(2, Event::Judged { right: vec![1], wrong: vec![2] });
    assert!(actions.contains(&Action::Evict {
        provider: ProviderId(2),
        reason: "its account is quarantined after a result the other providers disagreed with".into()
    }));
}

#[test]
fn a_settled_subgraph_withdraws_the_copies_still_out_and_a_dispute_fails_the_graph() {
    let mut s = Scheduler::new(config(10));
    for provider in 1..=3 {
        join(&mut s, provider, 100.0 - provider as f64);
    }
    let out = assignments(&submit_verified(&mut s, 7, 10, Verify::Replicas(3)));
    assert_eq!(providers(&out), [1, 2, 3]);
    let actions = complete(&mut s, &out[0]);
    for other in &out[1..] {
        assert!(actions.contains(&Action::Withdraw { provider: other.provider, assignment: other.id }));
    }
    assert_eq!(s.depth().assigned_subgraphs, 0);
    // Another graph whose answers cannot agree fails, with the dispatch task's reason.
    let out = assignments(&submit_verified(&mut s, 8, 10, Verify::Replicas(2)));
    let failure = OpFailure { op_id: out[0].ops[0], operator: "subgraph".into(), reason: "they disagree".into() };
    let actions =
        s.handle(3, Event::Disputed { provider: out[0].provider, assignment: out[0].id, failure: failure.clone() });
    assert!(actions.contains(&Action::GraphFailed { graph: GraphId(8), failure }));
    assert!(actions.contains(&Action::Withdraw { provider: out[1].provider, assignment: out[1].id }));
}

#[test]
fn a_replica_whose_provider_leaves_goes_to_an_account_that_has_not_answered() {
    let mut s = Scheduler::new(config(10));
    for provider in 1..=3 {
        join(&mut s, provider, 100.0 - provider as f64);
    }
    let out = assignments(&submit_verified(&mut s, 7, 10, Verify::Replicas(2)));
    assert!(assignments(&held(&mut s, &out[0], 2)).is_empty());
    let again = assignments(&s.handle(2, Event::ProviderLeft { provider: out[1].provider }));
    assert_eq!(providers(&again), [3], "not account 1, which answered");
    assert!(complete(&mut s, &again[0]).contains(&Action::GraphComputed { graph: GraphId(7) }));
}

#[test]
fn agreeing_answers_in_a_row_make_an_account_trusted_and_a_wrong_one_resets_it() {
    let mut s = Scheduler::new(config(10));
    assert!(!s.trusted(1));
    for _ in 0..TRUSTED_AFTER {
        s.handle(0, Event::Judged { right: vec![1], wrong: vec![] });
    }
    assert!(s.trusted(1));
    s.handle(0, Event::Judged { right: vec![], wrong: vec![1] });
    assert!(!s.trusted(1));
    // A spot check hands a subgraph out once: the dispatch task asks for a second answer.
    join(&mut s, 2, 10.0);
    join(&mut s, 3, 5.0);
    let out = assignments(&submit_verified(&mut s, 9, 10, Verify::SpotCheck(0.5)));
    assert_eq!(providers(&out), [2]);
    assert_eq!(providers(&assignments(&held(&mut s, &out[0], 2))), [3]);
}

#[test]
fn a_failed_store_starts_the_subgraphs_replicas_afresh() {
    let mut s = Scheduler::new(config(10));
    for provider in 1..=3 {
        join(&mut s, provider, 100.0 - provider as f64);
    }
    let out = assignments(&submit_verified(&mut s, 7, 10, Verify::Replicas(2)));
    assert!(assignments(&held(&mut s, &out[0], 2)).is_empty());
    // The held answer went with the store that failed: after the pause, account 1 may answer
    // again, and two copies go out, not one.
    let reason = "storage".to_string();
    s.handle(2, Event::ServerFault { provider: out[1].provider, assignment: out[1].id, reason });
    let again = assignments(&s.handle(SERVER_RETRY_BASE_MS + 2, Event::Tick));
    assert_eq!(providers(&again), [1, 2]);
}
