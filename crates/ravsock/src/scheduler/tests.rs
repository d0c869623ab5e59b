//! Scheduler policy tests: partitioning, parallel dispatch, readiness, deadlines (with mocked
//! time), retries, late results and eligibility.

use super::*;
use ravproto::OpKind;

fn op(id: u64, kind: OpKind, inputs: &[u64]) -> OpInfo {
    OpInfo { id: OpId(id), kind, inputs: inputs.iter().map(|&i| OpId(i)).collect(), computed: false, persisted: false }
}

fn constant(id: u64) -> OpInfo {
    OpInfo { computed: true, ..op(id, OpKind::Lin, &[]) }
}

/// `n` independent `neg` ops on two constants (ids 0 and 1).
fn wide(n: u64) -> Vec<OpInfo> {
    let mut ops = vec![constant(0), constant(1)];
    ops.extend((0..n).map(|i| op(2 + i, OpKind::Neg, &[i % 2])));
    ops
}

/// A chain of `n` dependent ops after one constant.
fn chain(n: u64) -> Vec<OpInfo> {
    let mut ops = vec![constant(0)];
    ops.extend((1..=n).map(|i| op(i, OpKind::Neg, &[i - 1])));
    ops
}

fn bench(score: f64) -> Benchmark {
    Benchmark { ram_bytes: 8 << 30, cores: 2, gpu: false, speed_score: score, onnx: false }
}

fn config(window: usize) -> SchedulerConfig {
    SchedulerConfig { window, max_attempts: 2, deadline_base_ms: 1_000, deadline_per_op_ms: 10, slots_per_provider: 1 }
}

fn assignments(actions: &[Action]) -> Vec<Assignment> {
    actions.iter().filter_map(|a| if let Action::Assign(x) = a { Some(x.clone()) } else { None }).collect()
}

fn join(s: &mut Scheduler, provider: u64, score: f64) -> Vec<Action> {
    s.handle(0, Event::ProviderJoined { provider: ProviderId(provider), benchmark: bench(score), graph: None })
}

fn submit(s: &mut Scheduler, graph: u64, ops: Vec<OpInfo>) -> Vec<Action> {
    s.handle(0, Event::GraphSubmitted { graph: GraphId(graph), ops, requirements: Requirements::default() })
}

fn complete(s: &mut Scheduler, a: &Assignment) -> Vec<Action> {
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
    assert!(actions.contains(&Action::Evict { provider: ProviderId(1) }));
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
    let mut current = assignments(&submit(&mut s, 1, wide(3)));
    let failure = |a: &Assignment| Event::SubgraphFailed {
        provider: a.provider,
        assignment: a.id,
        failure: OpFailure { op_id: OpId(3), operator: "neg".into(), reason: "out of memory".into() },
        retryable: true,
    };
    let actions = s.handle(1, failure(&current[0]));
    let retried = OpFailure { op_id: OpId(3), operator: "neg".into(), reason: "out of memory".into() };
    assert!(actions.contains(&Action::AttemptFailed { graph: GraphId(1), failure: retried }), "{actions:?}");
    current = assignments(&actions);
    assert_eq!(current.len(), 1, "second attempt");
    let actions = s.handle(2, failure(&current[0]));
    let expected =
        OpFailure { op_id: OpId(3), operator: "neg".into(), reason: "out of memory (after 2 attempts)".into() };
    assert!(actions.contains(&Action::GraphFailed { graph: GraphId(1), failure: expected }), "{actions:?}");
    assert_eq!(s.graph_status(GraphId(1)), Some(GraphStatus::Failed));
}

#[test]
fn a_kernel_refusal_fails_the_graph_without_retrying() {
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
    let refused =
        s.handle(0, Event::ProviderJoined { provider: ProviderId(2), benchmark: bench(1.0), graph: Some(GraphId(1)) });
    assert!(
        matches!(&refused[..], [Action::Rejected { provider: ProviderId(2), reason }] if reason.ends_with("it needs a GPU")),
        "{refused:?}"
    );
    let gpu = Benchmark { gpu: true, ..bench(1.0) };
    let out = s.handle(0, Event::ProviderJoined { provider: ProviderId(3), benchmark: gpu, graph: Some(GraphId(1)) });
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
