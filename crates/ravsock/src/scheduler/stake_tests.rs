//! Stakes in the scheduler: an account that cannot stake gets none of the graph's work (its
//! subgraph goes to another, uncharged; a provider that chose the graph is rejected), and work
//! of a staked graph abandoned by a disconnect or a missed deadline is slashed, while work of a
//! graph without a stake is not.

use super::tests::{assignments, complete, config, join, join_graph, rejection, wide};
use super::*;

/// `wide(n)` submitted as graph `graph`, asking each provider for `stake` units.
fn submit_staked(s: &mut Scheduler, graph: u64, n: u64, stake: u64) -> Vec<Action> {
    let requirements = Requirements { min_stake: stake, ..Requirements::default() };
    s.handle(0, Event::GraphSubmitted { graph: GraphId(graph), ops: wide(n), requirements })
}

fn slashes(actions: &[Action]) -> Vec<(Account, GraphId, u64, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Slash { account, graph, amount, why } => Some((*account, *graph, *amount, *why)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_account_short_of_the_stake_gets_none_of_the_graphs_work() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 100.0);
    join(&mut s, 2, 10.0);
    let out = assignments(&submit_staked(&mut s, 7, 20, 40));
    assert_eq!(out.len(), 2, "{out:?}");
    let (poor, rich) = (&out[0], &out[1]);
    assert_eq!(poor.provider, ProviderId(1), "the fastest first");
    // Provider 1's account cannot stake: its subgraph is ready again, and only provider 2
    // (busy now) may take it.
    let reason = "short".to_string();
    let actions = s.handle(1, Event::StakeShort { provider: poor.provider, assignment: poor.id, reason });
    assert!(assignments(&actions).is_empty(), "nobody else is free: {actions:?}");
    assert!(slashes(&actions).is_empty(), "not staking is no broken promise");
    let next = assignments(&complete(&mut s, rich));
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].provider, &next[0].ops), (ProviderId(2), &poor.ops), "the handed-back subgraph");
    let actions = complete(&mut s, &next[0]);
    assert!(actions.contains(&Action::GraphComputed { graph: GraphId(7) }));
    // Graphs without a stake still go to provider 1.
    let other = assignments(
        &s.handle(2, Event::GraphSubmitted { graph: GraphId(8), ops: wide(5), requirements: Requirements::default() }),
    );
    assert_eq!(other.first().map(|a| a.provider), Some(ProviderId(1)));
}

#[test]
fn a_provider_that_chose_a_graph_it_cannot_stake_for_is_rejected() {
    let mut s = Scheduler::new(config(10));
    submit_staked(&mut s, 3, 5, 40);
    let out = assignments(&join_graph(&mut s, 9, 3));
    assert_eq!(out.len(), 1);
    let actions =
        s.handle(1, Event::StakeShort { provider: out[0].provider, assignment: out[0].id, reason: "short".into() });
    assert_eq!(rejection(&actions, 9), Some(RejectionCode::Requirements));
    assert!(assignments(&actions).is_empty());
    // The subgraph waits for someone else, uncharged.
    let again = assignments(&join(&mut s, 4, 1.0));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].ops, out[0].ops);
}

#[test]
fn abandoning_work_of_a_staked_graph_is_slashed_and_of_another_is_not() {
    let mut s = Scheduler::new(SchedulerConfig { slots_per_provider: 2, ..config(10) });
    join(&mut s, 1, 100.0);
    submit_staked(&mut s, 1, 10, 40);
    s.handle(0, Event::GraphSubmitted { graph: GraphId(2), ops: wide(10), requirements: Requirements::default() });
    assert_eq!(s.in_flight(ProviderId(1)).len(), 2, "one subgraph of each graph");
    let actions = s.handle(5, Event::ProviderLeft { provider: ProviderId(1) });
    assert_eq!(slashes(&actions), vec![(1, GraphId(1), 20, "it left holding work")]);

    // A missed deadline slashes too.
    let mut s = Scheduler::new(config(10));
    join(&mut s, 5, 100.0);
    let out = assignments(&submit_staked(&mut s, 4, 5, 7));
    let actions = s.handle(out[0].deadline, Event::Tick);
    assert_eq!(slashes(&actions), vec![(5, GraphId(4), 3, "it missed a deadline")]);
    // Leaving with nothing in hand is no broken promise.
    let taken = assignments(&join(&mut s, 6, 1.0));
    assert_eq!(taken.len(), 1, "the work missed goes to the next provider");
    assert!(complete(&mut s, &taken[0]).contains(&Action::GraphComputed { graph: GraphId(4) }));
    assert!(slashes(&s.handle(9_000, Event::ProviderLeft { provider: ProviderId(6) })).is_empty());
}
