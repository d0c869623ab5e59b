//! A graph's life in the scheduler: submitted and cut into subgraphs, each completed subgraph
//! readying the ones that wait for its outputs, and the end (computed, failed or cancelled),
//! which withdraws what is still out and lets go of the providers bound to it.

use super::{Action, AssignmentId, GraphState, InFlight, OpInfo, Scheduler, SubgraphState, SubgraphStatus, partition};
use ravproto::messages::{OpFailure, Requirements};
use ravproto::provider::RejectionCode;
use ravproto::status::GraphStatus;
use ravproto::{GraphId, OpId, ProviderId};
use std::collections::{BTreeMap, BTreeSet};

impl Scheduler {
    pub(super) fn submit(
        &mut self,
        graph: GraphId,
        ops: Vec<OpInfo>,
        requirements: Requirements,
        actions: &mut Vec<Action>,
    ) {
        if self.graphs.get(&graph).is_some_and(|g| g.status == GraphStatus::Computing) {
            return;
        }
        let subgraphs = partition(&ops, self.config.window);
        let computed: BTreeSet<OpId> = ops.iter().filter(|op| op.computed).map(|op| op.id).collect();
        let mut consumers: BTreeMap<OpId, Vec<usize>> = BTreeMap::new();
        let states: Vec<SubgraphState> = subgraphs
            .into_iter()
            .enumerate()
            .map(|(index, subgraph)| {
                let missing: Vec<OpId> =
                    subgraph.external_inputs.iter().filter(|id| !computed.contains(id)).copied().collect();
                for id in &missing {
                    consumers.entry(*id).or_default().push(index);
                }
                let status = if missing.is_empty() { SubgraphStatus::Ready } else { SubgraphStatus::NotReady };
                SubgraphState {
                    subgraph,
                    status,
                    attempts: 0,
                    missing_inputs: missing.len(),
                    failed_by: BTreeSet::new(),
                    refused_by: BTreeSet::new(),
                    needs_bytes: 0,
                    wanted: requirements.verify.first_handouts(),
                    answered_by: BTreeSet::new(),
                    out_to: BTreeSet::new(),
                }
            })
            .collect();
        let state = GraphState {
            requirements,
            status: GraphStatus::Computing,
            consumers,
            total_ops: ops.len() as u64,
            computed_ops: computed.len() as u64,
            operators: ops.iter().filter(|op| !op.computed).map(|op| (op.id, op.kind.short_name())).collect(),
            subgraphs: states,
            pinned: ops.iter().any(|op| op.kind.pinned()),
            holder: None,
            training_out: false,
            server_faults: 0,
            paused_until: None,
        };
        let done = state.subgraphs.is_empty();
        self.graphs.insert(graph, state);
        if done {
            self.finish(graph, GraphStatus::Computed, actions);
        }
    }

    pub(super) fn completed(&mut self, assignment: AssignmentId, actions: &mut Vec<Action>) {
        let Some(flight) = self.release(assignment) else { return };
        // Other replicas of it still out are not needed now (looked for only when a verified
        // graph's subgraph has some: not a scan per completion).
        let others_out = self
            .graphs
            .get(&flight.graph)
            .and_then(|g| g.subgraphs.get(flight.subgraph))
            .is_some_and(|sub| !sub.out_to.is_empty());
        let replicas: Vec<AssignmentId> = match others_out {
            true => self
                .in_flight
                .iter()
                .filter(|(_, f)| f.graph == flight.graph && f.subgraph == flight.subgraph)
                .map(|(id, _)| *id)
                .collect(),
            false => Vec::new(),
        };
        for replica in replicas {
            if let Some(other) = self.release(replica) {
                actions.push(Action::Withdraw { provider: other.provider, assignment: replica });
            }
        }
        let Some(graph) = self.graphs.get_mut(&flight.graph) else { return };
        let sub = &mut graph.subgraphs[flight.subgraph];
        sub.status = SubgraphStatus::Computed;
        graph.computed_ops += sub.subgraph.ops.len() as u64;
        graph.server_faults = 0;
        let produced = sub.subgraph.ops.clone();
        for op in produced {
            for waiting in graph.consumers.remove(&op).unwrap_or_default() {
                let dependant = &mut graph.subgraphs[waiting];
                dependant.missing_inputs -= 1;
                if dependant.missing_inputs == 0 && dependant.status == SubgraphStatus::NotReady {
                    dependant.status = SubgraphStatus::Ready;
                }
            }
        }
        if graph.subgraphs.iter().all(|s| s.status == SubgraphStatus::Computed) {
            // No last progress at 100%: the end is announced with the graph's counts, and a
            // progress first would wake every waiting requester for one more round trip.
            self.finish(flight.graph, GraphStatus::Computed, actions);
        } else {
            actions.push(Action::Progress {
                graph: flight.graph,
                computed: graph.computed_ops,
                total: graph.total_ops,
            });
        }
    }

    pub(super) fn fail_graph(&mut self, graph: GraphId, failure: OpFailure, actions: &mut Vec<Action>) {
        if self.graphs.get(&graph).is_some_and(|g| g.status == GraphStatus::Computing) {
            self.finish(graph, GraphStatus::Failed, actions);
            actions.push(Action::GraphFailed { graph, failure });
        }
    }

    /// Ends a graph: withdraws whatever is still out and reports completion.
    pub(super) fn finish(&mut self, graph: GraphId, status: GraphStatus, actions: &mut Vec<Action>) {
        let Some(state) = self.graphs.get_mut(&graph) else { return };
        if state.status != GraphStatus::Computing {
            return;
        }
        state.status = status;
        // A finished graph keeps only its status; its subgraphs are no longer needed.
        state.subgraphs.clear();
        state.consumers.clear();
        state.operators.clear();
        let out: Vec<AssignmentId> =
            self.in_flight.iter().filter(|(_, f)| f.graph == graph).map(|(id, _)| *id).collect();
        for assignment in out {
            if let Some(flight) = self.release(assignment) {
                actions.push(Action::Withdraw { provider: flight.provider, assignment });
            }
        }
        if status == GraphStatus::Computed {
            actions.push(Action::GraphComputed { graph });
        }
        // Providers that chose this graph have nothing more to do here: they are told, and
        // forgotten, so they can choose another.
        let bound: Vec<ProviderId> =
            self.providers.iter().filter(|(_, p)| p.graph == Some(graph)).map(|(id, _)| *id).collect();
        for provider in bound {
            self.providers.remove(&provider);
            let reason = format!("{graph} has ended ({status:?})");
            actions.push(Action::Rejected { provider, graph: Some(graph), reason, code: RejectionCode::Finished });
        }
    }

    pub(super) fn release(&mut self, assignment: AssignmentId) -> Option<InFlight> {
        let flight = self.in_flight.remove(&assignment)?;
        if let Some(graph) = self.graphs.get_mut(&flight.graph) {
            graph.training_out &= !flight.trains;
            if let Some(sub) = graph.subgraphs.get_mut(flight.subgraph) {
                sub.out_to.remove(&flight.account);
            }
        }
        if let Some(provider) = self.providers.get_mut(&flight.provider) {
            provider.in_flight.remove(&assignment);
        }
        Some(flight)
    }
}
