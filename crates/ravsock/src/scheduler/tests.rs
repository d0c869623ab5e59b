//! Scheduler policy tests: partitioning, parallel dispatch, readiness, deadlines (with mocked
//! time), retries, late results and eligibility.

use super::*;
use ravproto::OpKind;
use ravproto::provider::OverBudget;

pub(super) fn op(id: u64, kind: OpKind, inputs: &[u64]) -> OpInfo {
    OpInfo { id: OpId(id), kind, inputs: inputs.iter().map(|&i| OpId(i)).collect(), computed: false, persisted: false }
}

pub(super) fn constant(id: u64) -> OpInfo {
    OpInfo { computed: true, ..op(id, OpKind::Lin, &[]) }
}

/// `n` independent `neg` ops on two constants (ids 0 and 1).
pub(super) fn wide(n: u64) -> Vec<OpInfo> {
    let mut ops = vec![constant(0), constant(1)];
    ops.extend((0..n).map(|i| op(2 + i, OpKind::Neg, &[i % 2])));
    ops
}

/// A chain of `n` dependent ops after one constant.
pub(super) fn chain(n: u64) -> Vec<OpInfo> {
    let mut ops = vec![constant(0)];
    ops.extend((1..=n).map(|i| op(i, OpKind::Neg, &[i - 1])));
    ops
}

pub(super) fn bench(score: f64) -> Benchmark {
    Benchmark { ram_bytes: 8 << 30, cores: 2, gpu: false, speed_score: score, onnx: false, memory_budget_bytes: None }
}

pub(super) fn config(window: usize) -> SchedulerConfig {
    SchedulerConfig {
        window,
        max_attempts: 2,
        deadline_base_ms: 1_000,
        deadline_per_op_ms: 10,
        slots_per_provider: 1,
        quarantine_after: 3,
        quarantine_ms: 60_000,
    }
}

pub(super) fn assignments(actions: &[Action]) -> Vec<Assignment> {
    actions.iter().filter_map(|a| if let Action::Assign(x) = a { Some(x.clone()) } else { None }).collect()
}

pub(super) fn join(s: &mut Scheduler, provider: u64, score: f64) -> Vec<Action> {
    let account = provider as Account;
    s.handle(
        0,
        Event::ProviderJoined {
            provider: ProviderId(provider),
            account,
            benchmark: bench(score),
            graph: None,
            groups: Default::default(),
        },
    )
}

pub(super) fn submit(s: &mut Scheduler, graph: u64, ops: Vec<OpInfo>) -> Vec<Action> {
    s.handle(0, Event::GraphSubmitted { graph: GraphId(graph), ops, requirements: Requirements::default() })
}

pub(super) fn complete(s: &mut Scheduler, a: &Assignment) -> Vec<Action> {
    s.handle(0, Event::SubgraphCompleted { provider: a.provider, assignment: a.id })
}

#[test]
fn partition_cuts_windows_and_backward_markers() {
    let mut ops = chain(5);
    ops[3].kind = OpKind::StartBackwardMarker;
    ops[5].persisted = true;
    let parts = partition(&ops, 4);
    let ids: Vec<Vec<u64>> = parts.iter().map(|p| p.ops.iter().map(|o| o.0).collect()).collect();
    assert_eq!(ids, vec![vec![1, 2, 3], vec![4, 5]], "the marker closes a window early");
    assert_eq!(parts[0].external_inputs, BTreeSet::from([OpId(0)]));
    assert_eq!(parts[0].outputs, vec![OpId(3)], "op 3 feeds the next subgraph");
    assert_eq!(parts[1].external_inputs, BTreeSet::from([OpId(3)]));
    assert_eq!(parts[1].outputs, vec![OpId(5)], "op 5 is persisted");
    assert!(partition(&[constant(0)], 10).is_empty(), "computed ops are never scheduled");
}

#[test]
fn independent_subgraphs_go_to_every_provider_at_once() {
    let mut s = Scheduler::new(SchedulerConfig { slots_per_provider: 2, ..config(10) });
    join(&mut s, 1, 100.0);
    join(&mut s, 2, 50.0);
    let actions = submit(&mut s, 7, wide(60));
    let out = assignments(&actions);
    assert_eq!(out.len(), 4, "two providers, two slots each: {out:?}");
    assert_eq!(out.iter().filter(|a| a.provider == ProviderId(1)).count(), 2);
    // Completing one hands out the next right away, and all six finish the graph.
    let mut pending = out;
    let mut done = 0;
    let mut computed = false;
    while let Some(a) = pending.pop() {
        // The server stores the graph's status with the results that finish it.
        let finishes = s.completes(a.id);
        let actions = complete(&mut s, &a);
        done += 1;
        pending.extend(assignments(&actions));
        let finished = actions.contains(&Action::GraphComputed { graph: GraphId(7) });
        assert_eq!(finishes, finished, "completes() foretold assignment {done}");
        computed |= finished;
    }
    assert!(!s.completes(AssignmentId(999)), "an unknown assignment finishes nothing");
    assert_eq!(done, 6);
    assert!(computed);
    assert_eq!(s.graph_status(GraphId(7)), Some(GraphStatus::Computed));
}

#[test]
fn dependent_subgraphs_wait_for_their_inputs() {
    let mut s = Scheduler::new(config(3));
    join(&mut s, 1, 1.0);
    join(&mut s, 2, 1.0);
    let first = assignments(&submit(&mut s, 1, chain(9)));
    assert_eq!(first.len(), 1, "only the head of a chain is ready");
    assert_eq!(first[0].external_inputs, vec![OpId(0)]);
    let next = complete(&mut s, &first[0]);
    assert!(next.contains(&Action::Progress { graph: GraphId(1), computed: 4, total: 10 }));
    let second = assignments(&next);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].ops, vec![OpId(4), OpId(5), OpId(6)]);
    assert_eq!(second[0].external_inputs, vec![OpId(3)]);
}

#[test]
fn the_biggest_subgraph_goes_to_the_fastest_provider() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 10.0);
    join(&mut s, 2, 500.0);
    let out = assignments(&submit(&mut s, 1, wide(13)));
    let fast = out.iter().find(|a| a.provider == ProviderId(2)).expect("fast provider got work");
    let slow = out.iter().find(|a| a.provider == ProviderId(1)).expect("slow provider got work");
    assert_eq!((fast.ops.len(), slow.ops.len()), (10, 3));
}

#[test]
fn a_silent_provider_loses_its_work_at_the_deadline_and_late_results_are_ignored() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 1_000.0);
    let first = assignments(&submit(&mut s, 1, wide(5)));
    assert_eq!(first[0].deadline, 1_000 + 5 * 10);
    assert_eq!(s.next_deadline(), Some(1_050));
    assert!(s.handle(1_049, Event::Tick).is_empty(), "nothing expires early");
    join(&mut s, 2, 1.0);
    let actions = s.handle(1_050, Event::Tick);
    assert!(actions.contains(&Action::Withdraw { provider: ProviderId(1), assignment: first[0].id }));
    assert!(actions.iter().any(|a| matches!(a, Action::Evict { provider: ProviderId(1), .. })));
    let retry = assignments(&actions);
    assert_eq!(retry.len(), 1, "reassigned at once");
    assert_eq!(retry[0].provider, ProviderId(2), "not to the provider that missed its deadline");
    // The first provider answers late: ignored, and the graph is not finished by it.
    assert!(complete(&mut s, &first[0]).iter().all(|a| !matches!(a, Action::GraphComputed { .. })));
    assert_eq!(s.graph_status(GraphId(1)), Some(GraphStatus::Computing));
    let actions = complete(&mut s, &retry[0]);
    assert!(actions.contains(&Action::GraphComputed { graph: GraphId(1) }));
}

#[test]
fn a_disconnect_sends_work_back_to_ready() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 100.0);
    let first = assignments(&submit(&mut s, 1, wide(5)));
    assert!(assignments(&s.handle(5, Event::ProviderLeft { provider: ProviderId(1) })).is_empty());
    let again = assignments(&join(&mut s, 2, 10.0));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].ops, first[0].ops);
    assert_ne!(again[0].id, first[0].id, "a new hand-out gets a new id");
}

#[test]
fn retries_are_bounded_and_the_failure_names_the_op() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 100.0);
    join(&mut s, 2, 50.0);
    let mut current = assignments(&submit(&mut s, 1, wide(3)));
    let failure = |a: &Assignment| Event::SubgraphFailed {
        provider: a.provider,
        assignment: a.id,
        failure: OpFailure { op_id: OpId(3), operator: "neg".into(), reason: "out of memory".into() },
        retryable: true,
        over_budget: None,
    };
    assert_eq!(current[0].provider, ProviderId(1));
    let actions = s.handle(1, failure(&current[0]));
    let retried = OpFailure { op_id: OpId(3), operator: "neg".into(), reason: "out of memory".into() };
    assert!(actions.contains(&Action::AttemptFailed { graph: GraphId(1), failure: retried }), "{actions:?}");
    // The retry goes to the other account, although provider 1 is faster and idle.
    current = assignments(&actions);
    assert_eq!(current.len(), 1, "second hand-out: {current:?}");
    assert_eq!(current[0].provider, ProviderId(2));
    let actions = s.handle(3, failure(&current[0]));
    let expected = OpFailure {
        op_id: OpId(3),
        operator: "neg".into(),
        reason: "out of memory (after 2 attempts by 2 providers)".into(),
    };
    assert!(actions.contains(&Action::GraphFailed { graph: GraphId(1), failure: expected }), "{actions:?}");
    assert_eq!(s.graph_status(GraphId(1)), Some(GraphStatus::Failed));
}

#[test]
fn a_kernel_refusal_with_nobody_to_confirm_it_fails_the_graph_at_once() {
    let mut s = Scheduler::new(SchedulerConfig { slots_per_provider: 2, ..config(2) });
    join(&mut s, 1, 100.0);
    let out = assignments(&submit(&mut s, 1, wide(4)));
    assert_eq!(out.len(), 2);
    let failure = OpFailure { op_id: OpId(2), operator: "inv".into(), reason: "op `inv`: singular matrix".into() };
    let actions = s.handle(
        1,
        Event::SubgraphFailed {
            provider: ProviderId(1),
            assignment: out[0].id,
            failure: failure.clone(),
            retryable: false,
            over_budget: None,
        },
    );
    assert!(actions.contains(&Action::GraphFailed { graph: GraphId(1), failure }));
    assert!(
        actions.contains(&Action::Withdraw { provider: ProviderId(1), assignment: out[1].id }),
        "the rest is withdrawn"
    );
    assert!(assignments(&actions).is_empty());
}

#[test]
fn requirements_decide_who_may_compute() {
    let mut s = Scheduler::new(config(10));
    let gpu_graph = Requirements { gpu_required: true, ..Requirements::default() };
    s.handle(0, Event::GraphSubmitted { graph: GraphId(1), ops: wide(3), requirements: gpu_graph });
    assert!(assignments(&join(&mut s, 1, 100.0)).is_empty(), "a CPU provider gets nothing");
    let refused = s.handle(
        0,
        Event::ProviderJoined {
            provider: ProviderId(2),
            account: 2,
            benchmark: bench(1.0),
            graph: Some(GraphId(1)),
            groups: Default::default(),
        },
    );
    assert!(
        matches!(&refused[..], [Action::Rejected { provider: ProviderId(2), reason, code: RejectionCode::Requirements, .. }] if reason.ends_with("it needs a GPU")),
        "{refused:?}"
    );
    let gpu = Benchmark { gpu: true, ..bench(1.0) };
    let out = s.handle(
        0,
        Event::ProviderJoined {
            provider: ProviderId(3),
            account: 3,
            benchmark: gpu,
            graph: Some(GraphId(1)),
            groups: Default::default(),
        },
    );
    assert_eq!(assignments(&out).len(), 1);
}

#[test]
fn a_restored_graph_recomputes_nothing_already_computed() {
    let mut s = Scheduler::new(config(3));
    join(&mut s, 1, 1.0);
    let mut ops = chain(9);
    for op in ops.iter_mut().take(7) {
        op.computed = true;
    }
    let out = assignments(&submit(&mut s, 1, ops));
    assert_eq!(out[0].ops, vec![OpId(7), OpId(8), OpId(9)]);
    assert_eq!(out[0].external_inputs, vec![OpId(6)]);
    let done = complete(&mut s, &out[0]);
    // The end alone: a last progress would only send waiting requesters back for another call.
    assert_eq!(done, vec![Action::GraphComputed { graph: GraphId(1) }]);
    let nothing_left = submit(&mut s, 2, vec![constant(0)]);
    assert_eq!(nothing_left, vec![Action::GraphComputed { graph: GraphId(2) }]);
}

#[test]
fn cancelling_withdraws_everything_out() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 1.0);
    let out = assignments(&submit(&mut s, 1, wide(5)));
    let actions = s.handle(3, Event::GraphCancelled { graph: GraphId(1) });
    assert_eq!(actions, vec![Action::Withdraw { provider: ProviderId(1), assignment: out[0].id }]);
    assert_eq!(s.graph_status(GraphId(1)), Some(GraphStatus::Cancelled));
    assert!(s.in_flight(ProviderId(1)).is_empty());
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn a_training_graph_stays_with_the_provider_holding_its_weights() {
    let mut s = Scheduler::new(SchedulerConfig { slots_per_provider: 2, ..config(3) });
    join(&mut s, 1, 10.0);
    join(&mut s, 2, 100.0);
    // Two independent training chains: without affinity they would go to both providers.
    let mut ops = vec![constant(0)];
    for start in [1u64, 20] {
        ops.push(op(start, OpKind::ForwardPassDense, &[0]));
        ops.extend((start + 1..start + 6).map(|i| op(i, OpKind::ForwardPassActivation, &[i - 1])));
    }
    let mut pending = assignments(&submit(&mut s, 3, ops));
    let holder = pending[0].provider;
    let mut seen = BTreeSet::new();
    while let Some(a) = pending.pop() {
        seen.insert(a.provider);
        pending.extend(assignments(&complete(&mut s, &a)));
    }
    assert_eq!(seen, BTreeSet::from([holder]), "every subgraph went to the holder");
    assert_eq!(s.graph_status(GraphId(3)), Some(GraphStatus::Computed));

    // When the holder leaves, another provider takes the graph over.
    let mut ops = vec![constant(0)];
    ops.extend((1..=6).map(|i| op(i, OpKind::ForwardPassActivation, &[i - 1])));
    let first = assignments(&submit(&mut s, 4, ops));
    let holder = first[0].provider;
    let other = if holder == ProviderId(1) { 2 } else { 1 };
    assert!(s.in_flight(ProviderId(other)).is_empty());
    s.handle(0, Event::ProviderLeft { provider: holder });
    assert_eq!(s.in_flight(ProviderId(other)).len(), 1, "the remaining provider took the training graph over");
}

#[test]
fn a_training_step_is_never_cut_and_training_subgraphs_go_out_one_at_a_time() {
    // Window 2, but a step of 4 training ops stays whole up to its marker; plain ops after
    // the marker are cut by the window again.
    let mut ops = vec![constant(0)];
    ops.push(op(1, OpKind::ForwardPassDense, &[0]));
    ops.push(op(2, OpKind::ForwardPassActivation, &[1]));
    ops.push(op(3, OpKind::SquareLoss, &[0, 2]));
    ops.push(op(4, OpKind::StartBackwardMarker, &[3]));
    ops.extend((5..=8).map(|i| op(i, OpKind::Neg, &[0])));
    let parts = partition(&ops, 2);
    let ids: Vec<Vec<u64>> = parts.iter().map(|p| p.ops.iter().map(|o| o.0).collect()).collect();
    assert_eq!(ids, vec![vec![1, 2, 3, 4], vec![5, 6], vec![7, 8]]);
    assert_eq!(parts.iter().map(|p| p.trains).collect::<Vec<_>>(), vec![true, false, false]);

    // Two independent training chains of one graph: their steps share the graph's state, so
    // only one is out at a time, even with free slots.
    let mut s = Scheduler::new(SchedulerConfig { slots_per_provider: 2, ..config(8) });
    join(&mut s, 1, 10.0);
    let mut ops = vec![constant(0)];
    for start in [1u64, 20] {
        ops.push(op(start, OpKind::ForwardPassDense, &[0]));
        ops.push(op(start + 1, OpKind::StartBackwardMarker, &[start]));
    }
    let first = assignments(&submit(&mut s, 5, ops));
    assert_eq!(first.len(), 1, "one training subgraph out: {first:?}");
    assert!(first[0].trains);
    let second = assignments(&complete(&mut s, &first[0]));
    assert_eq!(second.len(), 1, "the other step follows once the first is back");
    assert_ne!(second[0].ops, first[0].ops);
    complete(&mut s, &second[0]);
    assert_eq!(s.graph_status(GraphId(5)), Some(GraphStatus::Computed));
}

fn failed(a: &Assignment, retryable: bool, over_budget: Option<OverBudget>) -> Event {
    Event::SubgraphFailed {
        provider: a.provider,
        assignment: a.id,
        failure: OpFailure { op_id: a.ops[0], operator: "neg".into(), reason: "refused".into() },
        retryable,
        over_budget,
    }
}

fn join_as(s: &mut Scheduler, now: Millis, provider: u64, account: Account, benchmark: Benchmark) -> Vec<Action> {
    s.handle(
        now,
        Event::ProviderJoined {
            provider: ProviderId(provider),
            account,
            benchmark,
            graph: None,
            groups: Default::default(),
        },
    )
}

fn graph_failure(actions: &[Action]) -> Option<&OpFailure> {
    actions.iter().find_map(|a| if let Action::GraphFailed { failure, .. } = a { Some(failure) } else { None })
}

#[test]
fn one_accounts_failures_count_once_and_its_hand_outs_are_capped() {
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 1.0);
    let mut current = assignments(&submit(&mut s, 1, wide(3)));
    let cap = 2 * HANDOUTS_PER_ATTEMPT;
    for attempt in 1..cap {
        let actions = s.handle(u64::from(attempt), failed(&current[0], true, None));
        assert!(graph_failure(&actions).is_none(), "attempt {attempt} of one account failed the graph: {actions:?}");
        current = assignments(&actions);
        assert_eq!(current.len(), 1);
    }
    let actions = s.handle(100, failed(&current[0], true, None));
    let failure = graph_failure(&actions).expect("the cap fails the graph");
    assert_eq!(failure.reason, format!("refused (after {cap} attempts by one provider)"));
}

#[test]
fn a_kernel_refusal_is_confirmed_by_a_second_provider() {
    // A lie: provider 1 refuses, provider 2 computes, and the graph is computed.
    let mut s = Scheduler::new(config(10));
    join(&mut s, 1, 100.0);
    join(&mut s, 2, 1.0);
    let first = assignments(&submit(&mut s, 1, wide(3)));
    assert_eq!(first[0].provider, ProviderId(1));
    let actions = s.handle(1, failed(&first[0], false, None));
    assert!(graph_failure(&actions).is_none(), "{actions:?}");
    let second = assignments(&actions);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].provider, ProviderId(2), "never back to the account that refused it");
    assert!(complete(&mut s, &second[0]).contains(&Action::GraphComputed { graph: GraphId(1) }));

    // A true refusal: both refuse, and the graph fails naming the confirmation.
    let first = assignments(&submit(&mut s, 2, wide(3)));
    let second = assignments(&s.handle(2, failed(&first[0], false, None)));
    let actions = s.handle(3, failed(&second[0], false, None));
    let failure = graph_failure(&actions).expect("confirmed");
    assert_eq!(failure.reason, format!("refused (confirmed by {CONFIRMATIONS} providers)"));
}

#[test]
fn an_account_that_keeps_abandoning_work_is_quarantined_without_failing_the_graph() {
    let mut s = Scheduler::new(config(10));
    let mut connection = 10;
    submit(&mut s, 1, wide(3));
    // Account 7 takes the work and disconnects, three times, on new connections.
    for now in 0..3 {
        connection += 1;
        let out = assignments(&join_as(&mut s, now, connection, 7, bench(1.0)));
        assert_eq!(out.len(), 1, "hand-out {now}");
        let actions = s.handle(now, Event::ProviderLeft { provider: ProviderId(connection) });
        assert!(graph_failure(&actions).is_none(), "one account's disconnects count once: {actions:?}");
    }
    let refused = join_as(&mut s, 10, 99, 7, bench(1.0));
    assert!(
        matches!(&refused[..], [Action::Rejected { reason, .. }] if reason.contains("quarantined") && reason.contains("disconnect")),
        "{refused:?}"
    );
    // An honest provider finishes the graph.
    let out = assignments(&join_as(&mut s, 11, 50, 8, bench(1.0)));
    assert!(complete(&mut s, &out[0]).contains(&Action::GraphComputed { graph: GraphId(1) }));
    // The quarantine ends.
    assert!(join_as(&mut s, 60_011, 100, 7, bench(1.0)).is_empty(), "account 7 may join again");
}

#[test]
fn a_missed_deadline_strikes_and_finished_work_clears_the_record() {
    let mut s = Scheduler::new(config(10));
    submit(&mut s, 1, wide(3));
    let out = assignments(&join_as(&mut s, 0, 1, 7, bench(1.0)));
    let actions = s.handle(out[0].deadline, Event::Tick);
    assert!(actions.iter().any(|a| matches!(a, Action::Evict { provider: ProviderId(1), .. })));
    let out = assignments(&join_as(&mut s, 1, 2, 7, bench(1.0)));
    let _ = s.handle(2, Event::ProviderLeft { provider: ProviderId(2) });
    // Two strikes; a finished assignment clears them, so two more do not quarantine.
    let out = if out.is_empty() { out } else { assignments(&join_as(&mut s, 3, 3, 7, bench(1.0))) };
    assert!(complete(&mut s, &out[0]).contains(&Action::GraphComputed { graph: GraphId(1) }));
    let _ = s.handle(4, Event::ProviderLeft { provider: ProviderId(3) });
    submit(&mut s, 2, wide(3));
    for (now, connection) in [(10, 4), (11, 5)] {
        let out = assignments(&join_as(&mut s, now, connection, 7, bench(1.0)));
        assert_eq!(out.len(), 1);
        let _ = s.handle(now, Event::ProviderLeft { provider: ProviderId(connection) });
    }
    assert_eq!(assignments(&join_as(&mut s, 12, 6, 7, bench(1.0))).len(), 1, "not quarantined");
}

#[test]
fn an_op_over_a_providers_memory_budget_goes_to_one_with_more_or_fails_the_graph() {
    let small = Benchmark { memory_budget_bytes: Some(1_000), ..bench(100.0) };
    let big = Benchmark { memory_budget_bytes: Some(1 << 20), ..bench(1.0) };
    let mut s = Scheduler::new(config(10));
    join_as(&mut s, 0, 1, 1, small.clone());
    join_as(&mut s, 0, 2, 2, big);
    let first = assignments(&submit(&mut s, 1, wide(3)));
    assert_eq!(first[0].provider, ProviderId(1), "the fastest first");
    let over = OverBudget { needed_bytes: 5_000, budget_bytes: 1_000 };
    // Refused again and again by the small one, never charged, and it goes to the big one.
    let second = assignments(&s.handle(1, failed(&first[0], true, Some(over))));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].provider, ProviderId(2));
    assert!(complete(&mut s, &second[0]).contains(&Action::GraphComputed { graph: GraphId(1) }));

    // Nobody connected has the memory: the graph fails with the sizes named.
    let mut s = Scheduler::new(config(10));
    join_as(&mut s, 0, 1, 1, small);
    let first = assignments(&submit(&mut s, 1, wide(3)));
    let actions = s.handle(1, failed(&first[0], true, Some(over)));
    let failure = graph_failure(&actions).expect("fails at once");
    assert_eq!(failure.reason, "refused; no connected provider has that much (the largest budget is 1000 bytes)");
}

#[test]
fn a_server_fault_pauses_the_graph_with_backoff_and_blames_no_provider() {
    let mut s = Scheduler::new(config(10));
    join_as(&mut s, 0, 1, 7, bench(1.0));
    let mut out = assignments(&submit(&mut s, 1, wide(3)));
    let mut now = 0;
    let mut waited = Vec::new();
    for fault in 1..SERVER_RETRIES {
        let fault_event =
            Event::ServerFault { provider: out[0].provider, assignment: out[0].id, reason: "disk".into() };
        let actions = s.handle(now, fault_event);
        assert!(graph_failure(&actions).is_none(), "fault {fault}: {actions:?}");
        assert!(assignments(&actions).is_empty(), "the graph pauses: {actions:?}");
        let paused_until = s.next_deadline().expect("wakes up when the pause ends");
        waited.push(paused_until - now);
        assert!(assignments(&s.handle(paused_until - 1, Event::Tick)).is_empty(), "not before the pause ends");
        now = paused_until;
        out = assignments(&s.handle(now, Event::Tick));
        assert_eq!(out.len(), 1, "the same account gets it again: it is not to blame");
        assert_eq!(out[0].provider, ProviderId(1));
    }
    assert_eq!(waited, [500, 1_000, 2_000, 4_000, 8_000]);
    let fault_event = Event::ServerFault { provider: out[0].provider, assignment: out[0].id, reason: "disk".into() };
    let actions = s.handle(now, fault_event);
    let failure = graph_failure(&actions).expect("the last fault fails the graph");
    assert_eq!(failure.reason, format!("disk; {SERVER_RETRIES} times in a row"));
    assert_eq!(s.next_deadline(), None, "a failed graph's pause is no deadline");
    // The account was never struck: it takes and finishes the next graph.
    let out = assignments(&submit(&mut s, 2, wide(3)));
    assert!(complete(&mut s, &out[0]).contains(&Action::GraphComputed { graph: GraphId(2) }));
}

#[test]
fn the_depth_counts_subgraphs_waiting_and_out() {
    let mut s = Scheduler::new(config(1));
    assert_eq!(s.depth(), QueueDepth::default());
    // Five independent ops in windows of one, nobody to take them: five wait.
    assert!(assignments(&submit(&mut s, 1, wide(5))).is_empty());
    assert_eq!(s.depth(), QueueDepth { ready_subgraphs: 5, assigned_subgraphs: 0 });
    // A provider takes as many as it has slots.
    let out = assignments(&join(&mut s, 1, 100.0));
    let slots = out.len() as u64;
    assert!(slots >= 1);
    assert_eq!(s.depth(), QueueDepth { ready_subgraphs: 5 - slots, assigned_subgraphs: slots });
    // Its leaving sends them back.
    s.handle(5, Event::ProviderLeft { provider: ProviderId(1) });
    assert_eq!(s.depth(), QueueDepth { ready_subgraphs: 5, assigned_subgraphs: 0 });
}

pub(super) fn join_graph(s: &mut Scheduler, provider: u64, graph: u64) -> Vec<Action> {
    let event = Event::ProviderJoined {
        provider: ProviderId(provider),
        account: provider as Account,
        benchmark: bench(1.0),
        graph: Some(GraphId(graph)),
        groups: Default::default(),
    };
    s.handle(0, event)
}

pub(super) fn rejection(actions: &[Action], provider: u64) -> Option<RejectionCode> {
    actions.iter().find_map(|a| match a {
        Action::Rejected { provider: p, code, .. } if *p == ProviderId(provider) => Some(*code),
        _ => None,
    })
}

#[test]
fn providers_that_chose_a_graph_are_told_when_it_ends_and_which_graphs_they_cannot_join() {
    let mut s = Scheduler::new(config(10));
    // Not in the scheduler's memory: the dispatch task asks the database what that means.
    assert_eq!(rejection(&join_graph(&mut s, 1, 7), 1), Some(RejectionCode::NotExecuting));
    submit(&mut s, 7, wide(1));
    let out = join_graph(&mut s, 1, 7);
    let unbound = join(&mut s, 2, 1.0);
    assert_eq!(rejection(&out, 1), None);
    let work = assignments(&out);
    assert_eq!(work.len(), 1, "{out:?} {unbound:?}");
    // Its graph is computed: the bound provider is released with `finished`, the other
    // provider (any graph) hears nothing.
    let done = complete(&mut s, &work[0]);
    assert!(done.contains(&Action::GraphComputed { graph: GraphId(7) }), "{done:?}");
    assert_eq!(rejection(&done, 1), Some(RejectionCode::Finished));
    assert_eq!(rejection(&done, 2), None);
    // Joining it again is refused as finished, not waited for.
    assert_eq!(rejection(&join_graph(&mut s, 3, 7), 3), Some(RejectionCode::Finished));
    // A later graph goes to the provider that took any graph, not the released one.
    let next = submit(&mut s, 8, wide(1));
    assert_eq!(assignments(&next).iter().map(|a| a.provider).collect::<Vec<_>>(), [ProviderId(2)]);
}
