//! Hand-outs: which ready subgraph goes to which provider. The fastest provider with a free
//! slot takes the biggest ready subgraph it may compute: its graph's requirements, its chosen
//! graph, the training holder, its memory budget against what the subgraph is known to need,
//! never a subgraph its account already refused, and a subgraph its account already failed
//! only when every provider that may take it has failed it too. A verified graph's subgraph
//! is handed out until it has as many answers and hand-outs as it wants, each to an account
//! that has not answered it and holds no other copy of it.

use super::{
    Account, Action, Assignment, AssignmentId, InFlight, Millis, ProviderState, Scheduler, SubgraphState,
    SubgraphStatus,
};
use ravproto::GraphId;
use ravproto::ProviderId;
use ravproto::messages::Requirements;
use ravproto::status::GraphStatus;

impl Scheduler {
    /// Hands ready subgraphs to providers with free slots: the fastest provider first, each
    /// taking the biggest ready subgraph it is eligible for.
    pub(super) fn dispatch(&mut self, now: Millis, actions: &mut Vec<Action>) {
        let mut providers: Vec<(ProviderId, f64)> =
            self.providers.iter().map(|(id, p)| (*id, p.benchmark.speed_score)).collect();
        providers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        // A pause that has passed is over (and no longer a deadline to wake up for).
        for graph in self.graphs.values_mut() {
            graph.paused_until = graph.paused_until.filter(|until| *until > now);
        }
        // The ready subgraphs, found once: each provider then looks only at these. Scanning
        // every subgraph of every graph for each idle provider made a grid of 1,000 providers
        // spend seconds of CPU at the end of a graph, when all of them are idle and each
        // completion dispatches again (the swarm benchmark).
        let mut ready: Vec<(usize, GraphId, usize)> = self
            .graphs
            .iter()
            .filter(|(_, g)| g.status == GraphStatus::Computing && g.paused_until.is_none())
            .flat_map(|(id, g)| {
                g.subgraphs
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.status == SubgraphStatus::Ready)
                    .map(move |(index, s)| (s.subgraph.ops.len(), *id, index))
            })
            .collect();
        loop {
            if ready.is_empty() {
                return;
            }
            let mut assigned_any = false;
            for &(provider_id, _) in &providers {
                let provider = &self.providers[&provider_id];
                if provider.in_flight.len() >= self.config.slots_per_provider {
                    continue;
                }
                let providers_now = &self.providers;
                let graphs = &self.graphs;
                let best = ready
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, id, index))| {
                        let g = &graphs[id];
                        let s = &g.subgraphs[*index];
                        may_take(*id, &g.requirements, provider)
                            // A training graph stays with the provider holding its weights.
                            && (!g.pinned || g.holder.is_none_or(|h| h == provider_id || !providers_now.contains_key(&h)))
                            && !(s.subgraph.trains && g.training_out)
                            && !s.closed_to(provider.account)
                            && provider.benchmark.memory_budget() >= s.needs_bytes
                            // A retry goes to another account while one may take it:
                            // a liar that is fastest must not get its lie back.
                            && (!s.failed_by.contains(&provider.account)
                                || providers_now.values().all(|p| {
                                    s.failed_by.contains(&p.account) || !may_take(*id, &g.requirements, p)
                                }))
                    })
                    .max_by(|(_, a), (_, b)| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)))
                    .map(|(position, candidate)| (position, *candidate));
                let Some((position, (size, graph_id, index))) = best else { continue };
                ready.swap_remove(position);
                let id = AssignmentId(self.next_assignment);
                self.next_assignment += 1;
                let deadline = now + self.config.deadline_base_ms + self.config.deadline_per_op_ms * size as u64;
                let graph = self.graphs.get_mut(&graph_id).expect("picked from graphs");
                if graph.pinned {
                    graph.holder = Some(provider_id);
                }
                let account = self.providers[&provider_id].account;
                let sub = &mut graph.subgraphs[index];
                sub.attempts += 1;
                sub.out_to.insert(account);
                if sub.answered_by.len() + sub.out_to.len() < sub.wanted as usize {
                    // Another replica to hand out, to another account.
                    ready.push((size, graph_id, index));
                } else {
                    sub.status = SubgraphStatus::Assigned;
                }
                let trains = sub.subgraph.trains;
                graph.training_out |= trains;
                self.in_flight.insert(
                    id,
                    InFlight { provider: provider_id, account, graph: graph_id, subgraph: index, deadline, trains },
                );
                self.providers.get_mut(&provider_id).expect("listed").in_flight.insert(id);
                actions.push(Action::Assign(Assignment {
                    id,
                    provider: provider_id,
                    graph: graph_id,
                    subgraph: index,
                    ops: sub.subgraph.ops.clone(),
                    external_inputs: sub.subgraph.external_inputs.iter().copied().collect(),
                    outputs: sub.subgraph.outputs.clone(),
                    deadline,
                    trains,
                }));
                assigned_any = true;
            }
            if !assigned_any {
                return;
            }
        }
    }
}

impl SubgraphState {
    /// Whether `account` may not get this subgraph: its kernel refused it, it answered it (a
    /// verified graph's replica), or it holds a copy now.
    fn closed_to(&self, account: Account) -> bool {
        self.refused_by.contains(&account) || self.answered_by.contains(&account) || self.out_to.contains(&account)
    }
}

/// Whether `provider` may work on `graph` at all: the graph it chose (if any), the graph's
/// requirements, and a stake its account could pay.
pub(super) fn may_take(id: GraphId, requirements: &Requirements, provider: &ProviderState) -> bool {
    provider.graph.is_none_or(|chosen| chosen == id)
        && requirements.accepts(&provider.benchmark)
        && !provider.short_of_stake.contains(&id)
}
