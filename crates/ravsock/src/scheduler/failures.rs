//! What a failed hand-out does: a provider that left or was quarantined gives its work back,
//! an attempt that failed is retried or fails the graph once enough accounts have failed it, a
//! kernel refusal waits for a second account's word, and an op over a provider's memory budget
//! goes to a provider with more, and a fault of the server's own storage pauses the graph with
//! backoff without counting against anyone.

use super::handout::may_take;
use super::{
    Account, Action, AssignmentId, CONFIRMATIONS, HANDOUTS_PER_ATTEMPT, InFlight, Millis, SERVER_RETRIES,
    SERVER_RETRY_BASE_MS, Scheduler, SubgraphStatus,
};
use ravproto::messages::OpFailure;
use ravproto::provider::OverBudget;
use ravproto::{OpId, ProviderId};

impl Scheduler {
    /// A provider left: what it held is retried elsewhere, and leaving with work counts
    /// against its account.
    pub(super) fn left(&mut self, provider: ProviderId, now: Millis, actions: &mut Vec<Action>) {
        let Some(state) = self.providers.remove(&provider) else { return };
        let held_bundles = self.jobs.release_provider(provider, false, actions);
        if !state.in_flight.is_empty() || held_bundles {
            self.abandoned(state.account, "a disconnect while holding work", now, actions);
            self.slash_abandoned(state.account, state.in_flight.iter().copied(), "it left holding work", actions);
        }
        for assignment in state.in_flight {
            self.attempt_failed(assignment, None, "provider disconnected", actions);
        }
    }

    /// `account` abandoned work: a strike, and at [`SchedulerConfig::quarantine_after`] in a
    /// row a quarantine: its connected providers are evicted, and their joins refused.
    pub(super) fn abandoned(&mut self, account: Account, what: &str, now: Millis, actions: &mut Vec<Action>) {
        let (after, duration) = (self.config.quarantine_after, self.config.quarantine_ms);
        if self.conduct.abandoned(account, what, now, after, duration) {
            tracing::warn!(account, what, "provider account quarantined");
            let connected: Vec<ProviderId> =
                self.providers.iter().filter(|(_, p)| p.account == account).map(|(id, _)| *id).collect();
            for provider in connected {
                self.drop_provider(provider, actions);
                actions.push(Action::Evict { provider, reason: format!("its account is quarantined after {what}") });
            }
        }
    }

    /// Takes a provider off the grid without a strike: its assignments are withdrawn and
    /// retried elsewhere.
    pub(super) fn drop_provider(&mut self, provider: ProviderId, actions: &mut Vec<Action>) {
        let Some(state) = self.providers.remove(&provider) else { return };
        self.jobs.release_provider(provider, true, actions);
        for assignment in state.in_flight {
            actions.push(Action::Withdraw { provider, assignment });
            self.attempt_failed(assignment, None, "provider quarantined", actions);
        }
    }

    /// One hand-out failed: retry, or fail the graph once [`SchedulerConfig::max_attempts`]
    /// accounts have failed it (or the hand-outs reach their cap).
    pub(super) fn attempt_failed(
        &mut self,
        assignment: AssignmentId,
        op: Option<OpId>,
        reason: &str,
        actions: &mut Vec<Action>,
    ) {
        let Some(flight) = self.release(assignment) else { return };
        let Some(graph) = self.graphs.get_mut(&flight.graph) else { return };
        let sub = &mut graph.subgraphs[flight.subgraph];
        sub.failed_by.insert(flight.account);
        let op_id = op.unwrap_or(sub.subgraph.ops[0]);
        let operator = graph.operators.get(&op_id).copied().unwrap_or("unknown").to_string();
        let max = self.config.max_attempts;
        // Hand-outs that answered (a verified graph's replicas) or are still out did not fail.
        let failed = sub.attempts.saturating_sub((sub.answered_by.len() + sub.out_to.len()) as u32);
        if sub.failed_by.len() >= max as usize || failed >= max.saturating_mul(HANDOUTS_PER_ATTEMPT) {
            let reason = match sub.failed_by.len() {
                1 => format!("{reason} (after {} attempts by one provider)", sub.attempts),
                n => format!("{reason} (after {} attempts by {n} providers)", sub.attempts),
            };
            self.fail_graph(flight.graph, OpFailure { op_id, operator, reason }, actions);
        } else {
            sub.status = SubgraphStatus::Ready;
            let failure = OpFailure { op_id, operator, reason: reason.to_string() };
            actions.push(Action::AttemptFailed { graph: flight.graph, failure });
        }
    }

    /// A provider's kernel refused its inputs. Another provider (account) that may take the
    /// subgraph gets it to confirm; the graph fails once [`CONFIRMATIONS`] have refused it, or
    /// at once when nobody else could take it.
    pub(super) fn refused(&mut self, assignment: AssignmentId, failure: OpFailure, actions: &mut Vec<Action>) {
        let Some(flight) = self.release(assignment) else { return };
        let Some(graph) = self.graphs.get_mut(&flight.graph) else { return };
        let sub = &mut graph.subgraphs[flight.subgraph];
        sub.refused_by.insert(flight.account);
        let confirmed = sub.refused_by.len() >= CONFIRMATIONS;
        let someone_else = self
            .providers
            .values()
            .any(|p| may_take(flight.graph, &graph.requirements, p) && !sub.refused_by.contains(&p.account));
        if confirmed || !someone_else {
            let failure = match confirmed {
                true => OpFailure {
                    reason: format!("{} (confirmed by {CONFIRMATIONS} providers)", failure.reason),
                    ..failure
                },
                false => failure,
            };
            self.fail_graph(flight.graph, failure, actions);
        } else {
            sub.status = SubgraphStatus::Ready;
            actions.push(Action::AttemptFailed { graph: flight.graph, failure });
        }
    }

    /// Takes `assignment` back uncharged (its provider is not to blame): released, its
    /// hand-out not counted, its subgraph ready again. The hand-out, if it was out.
    pub(super) fn hand_back(&mut self, assignment: AssignmentId) -> Option<InFlight> {
        let flight = self.release(assignment)?;
        if let Some(sub) = self.graphs.get_mut(&flight.graph).and_then(|g| g.subgraphs.get_mut(flight.subgraph)) {
            sub.attempts = sub.attempts.saturating_sub(1);
            sub.status = SubgraphStatus::Ready;
        }
        Some(flight)
    }

    /// An op of the subgraph needs more memory than the provider's budget: it goes to a
    /// provider with a budget that big, uncharged, or fails the graph when none is connected.
    pub(super) fn over_budget(
        &mut self,
        assignment: AssignmentId,
        failure: OpFailure,
        over: OverBudget,
        actions: &mut Vec<Action>,
    ) {
        let Some(flight) = self.hand_back(assignment) else { return };
        let Some(graph) = self.graphs.get_mut(&flight.graph) else { return };
        let sub = &mut graph.subgraphs[flight.subgraph];
        sub.needs_bytes = sub.needs_bytes.max(over.needed_bytes);
        let largest = self
            .providers
            .values()
            .filter(|p| may_take(flight.graph, &graph.requirements, p))
            .map(|p| p.benchmark.memory_budget())
            .max()
            .unwrap_or(0);
        if largest < sub.needs_bytes {
            let reason = format!(
                "{}; no connected provider has that much (the largest budget is {largest} bytes)",
                failure.reason
            );
            self.fail_graph(flight.graph, OpFailure { reason, ..failure }, actions);
        } else {
            actions.push(Action::AttemptFailed { graph: flight.graph, failure });
        }
    }

    /// The server failed to store what an assignment produced: the provider did its work, so
    /// nothing counts against it; the graph pauses (0.5 s, doubling) and fails after
    /// [`SERVER_RETRIES`] faults in a row.
    pub(super) fn server_fault(
        &mut self,
        assignment: AssignmentId,
        reason: &str,
        now: Millis,
        actions: &mut Vec<Action>,
    ) {
        let Some(flight) = self.hand_back(assignment) else { return };
        let Some(graph) = self.graphs.get_mut(&flight.graph) else { return };
        graph.server_faults += 1;
        let faults = graph.server_faults;
        let first_handouts = graph.requirements.verify.first_handouts();
        let sub = &mut graph.subgraphs[flight.subgraph];
        // A verified graph's answers held for it went with the failed store: it starts afresh.
        sub.attempts = sub.attempts.saturating_sub(sub.answered_by.len() as u32);
        sub.answered_by.clear();
        sub.wanted = first_handouts;
        let op_id = sub.subgraph.ops[0];
        let operator = graph.operators.get(&op_id).copied().unwrap_or("unknown").to_string();
        if faults >= SERVER_RETRIES {
            let reason = format!("{reason}; {faults} times in a row");
            self.fail_graph(flight.graph, OpFailure { op_id, operator, reason }, actions);
            return;
        }
        let pause = SERVER_RETRY_BASE_MS << (faults - 1);
        graph.paused_until = Some(now + pause);
        let reason = format!("{reason}; the graph waits {pause} ms");
        actions.push(Action::AttemptFailed { graph: flight.graph, failure: OpFailure { op_id, operator, reason } });
    }
}
